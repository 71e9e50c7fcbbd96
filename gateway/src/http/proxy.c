/*
 * The upstream side of a request.
 *
 * Connection life: CONNECTING -> ACTIVE (one request) -> IDLE in the
 * worker's keep-alive pool -> ACTIVE again ... -> CLOSED. A pooled connection
 * keeps reading so that an upstream close is noticed while it is idle.
 *
 * Streaming: request body bytes go from the client's read buffer to this
 * connection's write queue without copies; response bytes go from this
 * connection's read buffer to the client's write queue. Whichever side's
 * write queue passes SL_OUT_HIGH stops the other side from reading until it
 * drains below SL_OUT_LOW, so a slow reader never makes the gateway buffer a
 * body whole.
 */
#include "http/proxy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "http/conn.h"
#include "config/gen.h"
#include "config/header_policy.h"
#include "base/log.h"
#include "http/pool.h"
#include "http/upstream_request.h"
#include "http/req.h"
#include "http/respond.h"
#include "config/router.h"
#include "tls/tls.h"
#include "http/tunnel.h"
#include "http/upstream_response.h"
#include "base/util.h"
#include "core/worker.h"

/* How long an idle pooled connection is kept. */
#define IDLE_TIMEOUT_MS 60000

static void on_up_timer(uv_timer_t *t);

static uint64_t loop_now(struct sl_upconn *uc)
{
    return uv_now(&uc->w->loop);
}

static bool may_enter(enum sl_up_state from, enum sl_up_state to)
{
    switch (from) {
    case SL_UP_CONNECTING:
        return to == SL_UP_ACTIVE || to == SL_UP_CLOSED;
    case SL_UP_ACTIVE:
        return to != SL_UP_CONNECTING;
    case SL_UP_IDLE:
        return to == SL_UP_ACTIVE || to == SL_UP_CLOSED;
    case SL_UP_TUNNEL:
        return to == SL_UP_CLOSED;
    default:
        return false; /* CLOSED is the end */
    }
}

void sl__upconn_enter(struct sl_upconn *uc, enum sl_up_state to)
{
    SL_BUG_ON(!may_enter(uc->state, to));
    uc->state = to;
}

void sl__upconn_set_deadline(struct sl_upconn *uc, uint64_t ms)
{
    if (ms == 0) {
        uc->deadline = 0;
        return;
    }
    uc->deadline = loop_now(uc) + ms;
    if (uc->timer_at == 0 || uc->timer_at > uc->deadline) {
        uc->timer_at = uc->deadline;
        uv_timer_start(&uc->timer, on_up_timer, ms, 0);
    }
}

/* Re-arm the active connection's timer: `send` while request bytes wait to
 * be written, `read` once the request is complete; nothing while the body is
 * still coming from the client (its own timeout covers that). */
void sl__upconn_touch(struct sl_upconn *uc)
{
    const struct sl_upstream_conf *u;

    if (uc->req == NULL || uc->state != SL_UP_ACTIVE)
        return;
    u = uc->req->upstream->conf;
    if (uc->client_bp)
        sl__upconn_set_deadline(uc, 0); /* waiting for the client, not for the upstream */
    else if (uc->out.pending > 0)
        sl__upconn_set_deadline(uc, u->send_ms);
    else if (uc->req->body_done || uc->got_bytes)
        sl__upconn_set_deadline(uc, u->read_ms);
    else
        sl__upconn_set_deadline(uc, 0);
}

/* -- closing ---------------------------------------------------------------- */

static void on_up_closed(uv_handle_t *h)
{
    struct sl_upconn *uc = h->data;

    if (h == (uv_handle_t *)&uc->tcp) {
        uv_close((uv_handle_t *)&uc->timer, on_up_closed);
        return;
    }
    sl__out_discard(&uc->out);
    if (uc->rbuf != NULL)
        sl__buf_unref(uc->rbuf);
    if (uc->ssl != NULL) {
        sl__tls_free(uc->ssl);
        free(uc->ssl);
    }
    free(uc);
}

void sl__upconn_close(struct sl_upconn *uc)
{
    if (uc->state == SL_UP_CLOSED)
        return;
    if (uc->state == SL_UP_IDLE)
        sl__pool_remove(uc->pool, uc);
    sl__upconn_enter(uc, SL_UP_CLOSED);
    uc->req = NULL;
    uv_timer_stop(&uc->timer);
    uv_close((uv_handle_t *)&uc->tcp, on_up_closed);
}

/* Detach the upstream connection from req (and the client's backpressure
 * flag that it may have set). */
static struct sl_upconn *detach(struct sl_req *req)
{
    struct sl_upconn *uc = req->up;

    if (req->inflight_st != NULL) {
        atomic_fetch_sub_explicit(&req->inflight_st->inflight, 1, memory_order_relaxed);
        if (req->trial) /* no verdict either way: let another request try */
            sl__tstate_trial_abandoned(req->inflight_st);
        req->trial = false;
        req->inflight_st = NULL;
    }
    req->up = NULL;
    if (uc != NULL)
        uc->req = NULL;
    req->down->resume(req); /* reading the request body, if it was stopped */
    sl__head_free(&req->resp);
    return uc;
}

void sl__proxy_abort(struct sl_req *req)
{
    struct sl_upconn *uc = detach(req);

    if (uc != NULL)
        sl__upconn_close(uc);
}

/* -- choosing a target -------------------------------------------------------- */

static bool tried(const struct sl_req *req, size_t i)
{
    return (req->tried[i / 64] >> (i % 64)) & 1;
}

static void mark_tried(struct sl_req *req, size_t i, bool on)
{
    if (on)
        req->tried[i / 64] |= 1ull << (i % 64);
    else
        req->tried[i / 64] &= ~(1ull << (i % 64));
}

/* The request's hash key for balance: hash; the client's address (as rate
 * limits see it: through trusted_proxies) when the header, cookie or claim
 * is missing. */
static uint64_t hash_key(struct sl_req *req, const struct sl_key *k)
{
    struct sl_str v = sl_req_key(req, k);

    if (v.p == NULL)
        v = sl_str_from(sl_req_real_ip(req));
    return sl__lb_hash_bytes(v.p, v.len);
}

/*
 * Choose a target: a primary that is healthy, not ejected and not yet tried
 * by this request, or else a backup. A target back from an ejection takes
 * one trial request; whoever claims it first sends it.
 */
static int pick_target(struct sl_req *req)
{
    struct sl_upstream *u = req->upstream;
    struct sl_lb_target stack[64], *view = stack;
    struct sl_worker *w = req->conn->w;
    void *state = u->lb_state + w->id * u->lb_stride;
    struct sl_lb_input in = {0};
    uint64_t now = sl__mono_ns() / 1000000, trials[4] = {0};
    int idx = -1;

    if (u->n_targets > SL_ARRAY_LEN(stack)) {
        view = sl_arena_alloc(&req->arena, u->n_targets * sizeof(*view));
        if (view == NULL)
            return -1;
    }
    if (u->conf->balance == SL_BALANCE_HASH)
        in.key_hash = hash_key(req, &u->conf->hash_key);
    for (int backup = 0; backup < 2 && idx < 0; backup++) {
        for (size_t i = 0; i < u->n_targets; i++) {
            struct sl_target *t = &u->targets[i];
            bool trial = false;

            view[i].weight = t->conf->weight;
            view[i].id_hash = t->id_hash;
            view[i].inflight = atomic_load_explicit(&t->st->inflight, memory_order_relaxed);
            view[i].ewma_us = sl__tstate_latency(t->st, now);
            view[i].usable = t->conf->backup == (backup == 1) && !tried(req, i) &&
                             sl__tstate_usable(t->st, now, &trial);
            if (trial)
                trials[i / 64] |= 1ull << (i % 64);
        }
        for (size_t attempt = 0; attempt <= u->n_targets; attempt++) {
            idx = u->lb->pick(u->lb_shared, state, view, u->n_targets, &in);
            if (idx < 0 || !((trials[idx / 64] >> (idx % 64)) & 1))
                break;
            if (sl__tstate_claim_trial(u->targets[idx].st)) {
                req->trial = true;
                sl_log(SL_LOG_INFO, req,
                       "sending a trial request to ejected target %s of "
                       "upstream \"%s\"",
                       u->targets[idx].conf->ip, u->conf->name);
                break;
            }
            view[idx].usable = false; /* another worker took the trial */
            idx = -1;
        }
    }
    return idx;
}

/*
 * The retry budget: retries that repeat work may be at most about 20% of an
 * upstream's recent requests on this worker, plus a few per second so that a
 * quiet upstream can still retry. Stops a failing upstream from doubling its
 * own load. (Retries after a refused connect are free: nothing was sent.)
 */
#define BUDGET_RATIO   0.2
#define BUDGET_PER_SEC 5.0
#define BUDGET_CAP     20.0

static struct sl_budget *budget_of(struct sl_req *req)
{
    struct sl_upstream *u = req->upstream;

    return (struct sl_budget *)(u->budget + req->conn->w->id * u->budget_stride);
}

static void budget_deposit(struct sl_req *req)
{
    struct sl_budget *b = budget_of(req);
    uint64_t now = uv_now(&req->conn->w->loop);

    if (b->last_ms != 0)
        b->tokens += (double)(now - b->last_ms) / 1000.0 * BUDGET_PER_SEC;
    else
        b->tokens = BUDGET_PER_SEC; /* a new upstream starts with a second's worth */
    b->last_ms = now;
    b->tokens += BUDGET_RATIO;
    if (b->tokens > BUDGET_CAP)
        b->tokens = BUDGET_CAP;
}

static bool budget_withdraw(struct sl_req *req)
{
    struct sl_budget *b = budget_of(req);

    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/* -- failures and retries ------------------------------------------------------- */

static bool idempotent(int method)
{
    return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
           method == HTTP_PUT || method == HTTP_DELETE || method == HTTP_TRACE;
}

/*
 * May the failed attempt be retried on another target? A connect failure
 * sent nothing, so any request may; a reset, a timeout or a 502/503/504 only
 * an idempotent one; and never a request whose body has started to flow
 * (it is gone). Within `retries` and the retry budget.
 */
/* Whether a target this request has not tried yet could take it now. */
static bool another_target(struct sl_req *req)
{
    struct sl_upstream *u = req->upstream;
    uint64_t now = sl__mono_ns() / 1000000;

    for (size_t i = 0; i < u->n_targets; i++) {
        bool trial;

        if (!tried(req, i) && sl__tstate_usable(u->targets[i].st, now, &trial))
            return true;
    }
    return false;
}

bool sl__proxy_may_retry(struct sl_req *req, enum sl_fail kind)
{
    if (kind == SL_FAIL_PROTOCOL)
        return false;
    if (kind != SL_FAIL_CONNECT && !idempotent(req->method))
        return false;
    if (req->body_started && req->has_body)
        return false;
    if (req->tries > req->upstream->conf->retries)
        return false;
    if (!another_target(req))
        return false; /* nowhere else to go: the upstream's own answer stands */
    /* A refused connect sent no work to anyone: only retries that repeat
     * work (after a reset, a timeout or a 5xx) spend the budget. */
    if (kind != SL_FAIL_CONNECT && !budget_withdraw(req)) {
        sl_log(SL_LOG_WARN, req, "retry budget of upstream \"%s\" exhausted: not retrying",
               req->upstream->conf->name);
        return false;
    }
    return true;
}

/* What the client's 502 or 504 says about the last attempt. */
static const char *failure_message(enum sl_fail kind)
{
    switch (kind) {
    case SL_FAIL_CONNECT:
        return "the upstream server could not be reached";
    case SL_FAIL_RESET:
        return "the upstream server closed the connection without a response";
    case SL_FAIL_TIMEOUT:
        return "the upstream server did not answer in time";
    case SL_FAIL_PROTOCOL:
        return "the upstream server sent an invalid response";
    default:
        return "the upstream server failed";
    }
}

/*
 * The attempt on req->up failed before any response byte reached the client.
 * Count it against the target (passive checks), then retry elsewhere when
 * sl__proxy_may_retry() allows it, else answer 502 (504 after a timeout).
 */
void sl__proxy_attempt_failed(struct sl_req *req, enum sl_fail kind, const char *fmt, ...)
{
    struct sl_upconn *uc = req->up;
    struct sl_target *t = req->target;
    bool stale = uc != NULL && uc->reused && !uc->got_bytes && kind == SL_FAIL_RESET;
    bool retry, ejected = false;
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t != NULL && kind != SL_FAIL_STATUS)
        sl__tstate_count_status(t->st, 0); /* no response at all */
    if (t != NULL && !stale && req->status == 0) {
        /* Judge the target before letting go of the attempt (which would
         * take a trial verdict as abandoned); a forwarded 1xx is no final
         * answer, so a failure after one counts. */
        ejected =
            sl__tstate_failure(t->st, &req->upstream->passive, req->trial, sl__mono_ns() / 1000000);
        req->trial = false;
    }
    sl__proxy_abort(req);
    if (req->resp_started) {
        if (req->status == 0)
            req->status = 502; /* only interim responses went out: the upstream failed */
        sl_log(SL_LOG_ERROR, req, "%s (upstream \"%s\", target %s)", msg, req->upstream->conf->name,
               t ? t->conf->ip : "?");
        req->down->abort(req);
        return;
    }
    if (stale && !req->stale_retried && idempotent(req->method) &&
        !(req->body_started && req->has_body)) {
        /* A pooled connection the upstream had closed while it sat idle: not
         * the target's fault. One retry on a fresh connection to the same
         * target, which does not count as a try (nginx does the same). */
        sl_log(SL_LOG_DEBUG, req, "%s on a reused connection to %s: retrying on a new one", msg,
               t->conf->ip);
        req->stale_retried = true;
        req->fresh_connection = true;
        mark_tried(req, (size_t)(t - req->upstream->targets), false);
        req->tries--;
        req->body_started = false;
        sl__proxy_start(req);
        return;
    }
    if (stale && t != NULL) {
        ejected =
            sl__tstate_failure(t->st, &req->upstream->passive, false, sl__mono_ns() / 1000000);
    }
    if (ejected)
        sl_log(SL_LOG_WARN, req,
               "target %s of upstream \"%s\" ejected for %llums after %u "
               "failure%s",
               t->conf->ip, req->upstream->conf->name,
               (unsigned long long)req->upstream->passive.eject_ms, req->upstream->passive.failures,
               req->upstream->passive.failures == 1 ? "" : "s");
    retry = kind == SL_FAIL_STATUS || sl__proxy_may_retry(req, kind);
    sl_log(retry ? SL_LOG_WARN : SL_LOG_ERROR, req, "%s (upstream \"%s\", target %s)%s", msg,
           req->upstream->conf->name, t ? t->conf->ip : "?",
           retry ? ": trying another target" : "");
    if (retry) {
        req->body_started = false;
        sl__proxy_start(req);
        return;
    }
    sl__respond_error(req, kind == SL_FAIL_TIMEOUT ? 504 : 502,
                      kind == SL_FAIL_TIMEOUT ? "upstream_timeout" : "bad_gateway",
                      failure_message(kind));
}

/* -- sending the request ----------------------------------------------------------- */

void sl__proxy_send_request(struct sl_req *req)
{
    struct sl_upconn *uc = req->up;

    sl__upconn_enter(uc, SL_UP_ACTIVE);
    uc->got_bytes = false;
    uc->resp_done = false;
    uc->skip_message = false;
    uc->retry_status = 0;
    uc->bad = NULL;
    req->up_start_ns = sl__mono_ns();
    req->action = "sending the request to the upstream";
    sl__upstream_request_head(req, &uc->out);
    if (sl__out_flush(&uc->out) != 0) {
        sl__proxy_attempt_failed(req, SL_FAIL_RESET, "writing to the upstream failed: %s",
                                 uv_strerror(uc->out.error));
        return;
    }
    sl__upconn_read_start(uc);
    sl__upconn_touch(uc);
    /* Stream the body; for a bodiless request this completes the message. */
    sl__conn_start_body(req->conn);
}

void sl__proxy_body(struct sl_req *req, struct sl_buf *b, const char *at, size_t len)
{
    struct sl_out *o;

    if (req->up == NULL)
        return;
    o = &req->up->out;
    if (req->chunked) {
        sl__out_uint(o, len, 16);
        sl__out_copy(o, "\r\n", 2);
    }
    sl__out_slice(o, b, at, len);
    if (req->chunked)
        sl__out_copy(o, "\r\n", 2);
}

static bool names(struct sl_str tok, void *arg)
{
    return sl__header_fold_eq(tok, *(const struct sl_str *)arg);
}

/* A request trailer goes upstream if the header policy lets it, and if no
 * Connection line of the head named it (hop-by-hop, wherever it comes). */
static bool trailer_ok(struct sl_str name, const void *arg)
{
    const struct sl_req *req = arg;
    uint32_t end = req->head.in_trailers ? req->head.trailers_from : req->head.n;

    if (!sl__header_trailer_ok(name, &req->gen->conf->headers))
        return false;
    for (uint32_t i = 0; i < end; i++)
        if (sl_str_caseeq_lit(req->head.fields[i].name, "Connection") &&
            sl__http_tokens(req->head.fields[i].value, names, &name))
            return false;
    return true;
}

void sl__proxy_body_end(struct sl_req *req)
{
    if (req->chunked && req->up != NULL)
        sl__head_end_chunked(&req->up->out, &req->head, trailer_ok, req);
}

void sl__proxy_body_flush(struct sl_req *req)
{
    struct sl_upconn *uc = req->up;

    if (uc == NULL || uc->state != SL_UP_ACTIVE)
        return;
    if (sl__out_flush(&uc->out) != 0) {
        sl__proxy_attempt_failed(req, SL_FAIL_RESET,
                                 "writing the request body to the upstream failed: %s",
                                 uv_strerror(uc->out.error));
        return;
    }
    if (sl__out_queued(&uc->out) > SL_OUT_HIGH) {
        /* The client waits for the upstream now: its body timer stops, the
         * upstream's send timer watches the stall. */
        req->down->pause(req);
    }
    if (req->body_done)
        req->action = "waiting for the upstream response";
    sl__upconn_touch(uc);
}

static void on_up_written(void *arg)
{
    struct sl_upconn *uc = arg;
    struct sl_req *req = uc->req;

    if (uc->state == SL_UP_CLOSED || req == NULL)
        return;
    if (uc->out.error != 0) {
        if (uc->got_bytes && uc->state == SL_UP_ACTIVE)
            return; /* it answered, then stopped reading: the response decides */
        if (uc->state == SL_UP_TUNNEL) {
            sl__conn_abort(req->conn);
            return;
        }
        sl__proxy_attempt_failed(req, SL_FAIL_RESET, "writing to the upstream failed: %s",
                                 uv_strerror(uc->out.error));
        return;
    }
    if (sl__out_queued(&uc->out) <= SL_OUT_LOW)
        req->down->resume(req);
    if (uc->state == SL_UP_TUNNEL)
        sl__tunnel_maybe_end(req);
    else
        sl__upconn_touch(uc);
}

/* -- connecting -------------------------------------------------------------- */

static void on_connect(uv_connect_t *cr, int status)
{
    struct sl_upconn *uc = cr->data;
    struct sl_req *req = uc->req;

    if (uc->state == SL_UP_CLOSED || req == NULL)
        return; /* the request went away meanwhile */
    if (status < 0) {
        sl__proxy_attempt_failed(req, SL_FAIL_CONNECT, "connect() failed: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&uc->tcp, 1);
    if (req->upstream->conf->tls != NULL) {
        /* The handshake first; sl__proxy_send_request() follows when it completes. */
        uc->ssl = sl__xcalloc(1, sizeof(*uc->ssl));
        if (sl__tls_connect(uc->ssl, req->upstream->conf->tls, &uc->out, &uc->w->bufs,
                            uc->pool->session, req->target->conf->ip) != 0) {
            sl__proxy_attempt_failed(req, SL_FAIL_CONNECT, "cannot start TLS to the upstream");
            return;
        }
        req->action = "TLS handshake with the upstream";
        sl__upconn_read_start(uc);
        sl__upconn_tls_pump(uc);
        return;
    }
    sl__proxy_send_request(req);
}

static struct sl_upconn *upconn_new(struct sl_worker *w, struct sl_pool *pool)
{
    struct sl_upconn *uc = sl__xcalloc(1, sizeof(*uc));

    uc->w = w;
    uc->pool = pool;
    uv_tcp_init(&w->loop, &uc->tcp);
    uc->tcp.data = uc;
    uv_timer_init(&w->loop, &uc->timer);
    uc->timer.data = uc;
    uc->connect_req.data = uc;
    sl__upstream_response_init(uc);
    sl__out_init(&uc->out, (uv_stream_t *)&uc->tcp, &w->bufs, on_up_written, uc);
    uc->state = SL_UP_CONNECTING;
    return uc;
}

void sl__proxy_start(struct sl_req *req)
{
    struct sl_worker *w = req->conn->w;
    struct sl_upstream *u = req->upstream;
    struct sl_target *t;
    struct sl_upconn *uc;
    struct sl_pool *pool;
    int idx, rc;

    req->action = "choosing an upstream target";
    idx = pick_target(req);
    if (idx < 0) {
        if (req->tries == 0)
            sl__respond_error(req, 503, "no_healthy_upstream",
                              "no healthy target is available for this upstream");
        else
            sl__respond_error(req, 502, "bad_gateway", "the upstream server could not be reached");
        return;
    }
    if (req->tries == 0)
        budget_deposit(req);
    mark_tried(req, (size_t)idx, true);
    req->tries++;
    req->target = t = &u->targets[idx];
    req->inflight_st = t->st;
    atomic_fetch_add_explicit(&t->st->inflight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->st->requests, 1, memory_order_relaxed);
    pool = sl__pool_get(w->pools, t->pool_key);
    uc = req->fresh_connection ? NULL : sl__pool_take(pool);
    req->fresh_connection = false;
    if (uc != NULL) {
        uc->reused = true;
        uc->req = req;
        req->up = uc;
        uv_timer_stop(&uc->timer);
        uc->timer_at = 0;
        sl__proxy_send_request(req);
        return;
    }
    uc = upconn_new(w, pool);
    uc->req = req;
    req->up = uc;
    req->action = "connecting to the upstream";
    rc = uv_tcp_connect(&uc->connect_req, &uc->tcp, (const struct sockaddr *)&t->conf->addr,
                        on_connect);
    if (rc != 0) {
        sl__proxy_attempt_failed(req, SL_FAIL_CONNECT, "connect() failed: %s", uv_strerror(rc));
        return;
    }
    sl__upconn_set_deadline(uc, u->conf->connect_ms);
}

/* -- backpressure and timeouts ------------------------------------------------ */

void sl__proxy_client_drained(struct sl_req *req)
{
    struct sl_upconn *uc = req->up;

    if (uc == NULL || !uc->client_bp)
        return;
    uc->client_bp = false;
    req->down->stalled(req, false); /* the client reads again */
    sl__upconn_read_start(uc);
    sl__upconn_touch(uc);
}

static void on_up_timer(uv_timer_t *t)
{
    struct sl_upconn *uc = t->data;
    struct sl_req *req = uc->req;
    uint64_t now = loop_now(uc);

    uc->timer_at = 0;
    if (uc->state == SL_UP_CLOSED || uc->deadline == 0)
        return;
    if (now < uc->deadline) {
        uc->timer_at = uc->deadline;
        uv_timer_start(&uc->timer, on_up_timer, uc->deadline - now, 0);
        return;
    }
    uc->deadline = 0;
    switch (uc->state) {
    case SL_UP_CONNECTING:
        req->action = "connecting to the upstream";
        sl__proxy_attempt_failed(req, SL_FAIL_CONNECT, "connect() timed out (timeouts.connect)");
        return;
    case SL_UP_ACTIVE:
        if (!req->resp_started) {
            req->action = "waiting for the upstream response";
            sl__proxy_attempt_failed(req, SL_FAIL_TIMEOUT, "upstream timed out (timeouts.%s)",
                                     uc->out.pending ? "send" : "read");
        } else {
            req->action = "reading the upstream response body";
            sl_log(SL_LOG_ERROR, req, "upstream timed out in the middle of the response");
            req->down->abort(req);
        }
        return;
    case SL_UP_TUNNEL:
        sl__conn_abort(req->conn);
        return;
    default:
        sl__upconn_close(uc); /* idle too long in the pool */
        return;
    }
}

/* -- the end of a request ------------------------------------------------------ */

void sl__proxy_release(struct sl_req *req)
{
    struct sl_upconn *uc = req->up;
    const struct sl_upstream_conf *u = req->upstream ? req->upstream->conf : NULL;
    bool reuse;

    if (uc == NULL)
        return;
    reuse = uc->state == SL_UP_ACTIVE && uc->resp_done && uc->resp_keepalive && req->body_done &&
            !uc->eof && uc->out.error == 0 && uc->out.pending == 0 && uc->rpos == uc->rbuf->len &&
            !req->conn->w->stopping && u != NULL && u->keepalive > 0;
    detach(req);
    if (!reuse || sl__pool_put(uc->pool, uc, u->keepalive) != 0) {
        sl__upconn_close(uc);
        return;
    }
    if (uc->ssl != NULL) {
        /* TLS 1.3 tickets arrive after the handshake: keep the freshest
         * resumable session for the next connection to this target. */
        SSL_SESSION *sess = sl__tls_session(uc->ssl);

        if (sess != NULL && SSL_SESSION_is_resumable(sess) && sess != uc->pool->session) {
            if (uc->pool->session != NULL)
                SSL_SESSION_free(uc->pool->session);
            uc->pool->session = sess;
        } else if (sess != NULL) {
            SSL_SESSION_free(sess);
        }
    }
    sl__upconn_enter(uc, SL_UP_IDLE);
    uc->requests++;
    uc->client_bp = false;
    llhttp_resume(&uc->parser);
    llhttp_reset(&uc->parser);
    sl__upconn_read_start(uc); /* to notice the upstream closing it */
    sl__upconn_set_deadline(uc, IDLE_TIMEOUT_MS);
}
