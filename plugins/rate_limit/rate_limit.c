/*
 * rate_limit plugin: token buckets per (route, limit, key), in memory or in
 * Redis, with pacing instead of rejection when max_delay allows.
 *
 * ACCESS: build the request's bucket keys, ask the store. A token now lets
 * the request through; a token within max_delay holds it on a timer (nothing
 * blocks) and then lets it through; otherwise 429 with Retry-After. A client
 * that leaves while held gives its reserved token back. When Redis cannot
 * decide within redis.timeout, on_store_failure decides: limit in memory,
 * allow, or deny (503).
 *
 * RESPONSE: RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset on
 * every response of a limited route.
 */
#include "rate_limit.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/log.h"

_Static_assert(RL_MAX_LIMITS <= 10, "a limit's index is one digit of its bucket key");

struct rl_worker {
    struct rl_redis *redis;
};

/* A request's dealings with the plugin, in its arena. */
struct rl_state {
    struct sl_req *req;
    const struct rl_conf *conf;
    const char *keys[RL_MAX_LIMITS];
    struct sl_gcra_limit limits[RL_MAX_LIMITS];
    struct sl_gcra_result result;
    int64_t tats[RL_MAX_LIMITS]; /* what our reservation stored, for a refund */
    bool decided;                /* result holds a store's answer */
    bool waiting;                /* a Redis decision is on its way */
    bool redis;                  /* the token was taken in Redis (for a refund) */
    uv_timer_t *hold;            /* the pacing timer while held, or NULL */
};

static void *worker_init(uv_loop_t *loop)
{
    struct rl_worker *w = sl_calloc(1, sizeof(*w), "the rate_limit plugin");
    w->redis = sl__rl_redis_new(loop);
    return w;
}

static void worker_fini(void *wdata)
{
    struct rl_worker *w = wdata;

    sl__rl_redis_free(w->redis);
    free(w);
}

static struct rl_worker *worker_of(struct sl_req *req)
{
    return sl_req_worker_data(req, &sl_plugin_rate_limit);
}

/* "sl:rl:<route>:<limit>:<source>:<value>" in the request arena, by hand:
 * this runs for every limited request. */
static const char *join_key(struct sl_req *req, size_t i, const char *source, struct sl_str v)
{
    const char *route = sl_req_route(req);
    size_t rl = strlen(route), sl = strlen(source), len = 6 + rl + 3 + sl + 1 + v.len;
    char *k = sl_arena_alloc(sl_req_arena(req), len + 1), *p = k;

    if (k == NULL)
        return NULL;
    memcpy(p, "sl:rl:", 6);
    p += 6;
    memcpy(p, route, rl);
    p += rl;
    *p++ = ':';
    *p++ = (char)('0' + i); /* i < RL_MAX_LIMITS */
    *p++ = ':';
    memcpy(p, source, sl);
    p += sl;
    *p++ = ':';
    memcpy(p, v.p, v.len);
    p[v.len] = '\0';
    return k;
}

/* The bucket of limit i for this request. A request without the header,
 * cookie or claim its key names is counted by its address. */
static const char *bucket_key(struct sl_req *req, const struct rl_limit *l, size_t i)
{
    struct sl_str v = l->key.source == SL_KEY_ROUTE ? SL_STR("-") : sl_req_key(req, &l->key);

    if (v.p == NULL || v.len == 0 || l->key.source == SL_KEY_IP)
        return join_key(req, i, "ip", sl_str_from(sl_req_real_ip(req)));
    if (v.len > 512)
        v.len = 512;
    return join_key(req, i, l->key.text, v);
}

/* -- holding (pacing) ------------------------------------------------------------ */

static void hold_closed(uv_handle_t *h)
{
    free(h);
}

static void end_hold(struct rl_state *rs)
{
    if (rs->hold != NULL) {
        uv_timer_stop(rs->hold);
        uv_close((uv_handle_t *)rs->hold, hold_closed);
        rs->hold = NULL;
    }
}

static void on_hold_done(uv_timer_t *t)
{
    struct rl_state *rs = t->data;

    end_hold(rs);
    sl_req_resume(rs->req, SL_NEXT);
}

/* The client went away while waiting: give back what it reserved. */
static void cancel(void *arg)
{
    struct rl_state *rs = arg;
    struct rl_worker *w = worker_of(rs->req);

    if (rs->waiting) {
        sl__rl_redis_forget(w->redis, rs);
        rs->waiting = false;
    }
    if (rs->hold != NULL) {
        end_hold(rs);
        if (rs->redis) {
            if (sl__rl_redis_decide(w->redis, rs->conf->redis, rs->limits, rs->keys, rs->tats,
                                    rs->conf->n, -1, NULL, NULL) != 0)
                sl_log(SL_LOG_DEBUG, NULL, "rate_limit: could not give a token back to redis");
        } else {
            sl__rl_local(rs->limits, rs->keys, rs->conf->n, -1, NULL, rs->tats);
        }
    }
}

/* -- deciding ---------------------------------------------------------------------- */

/* A non-negative number as text, in buf (room for 22). */
static const char *itoa(char *buf, int64_t v)
{
    char *p = buf + 21;
    uint64_t u = v < 0 ? 0 : (uint64_t)v;

    *p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    return p;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

static const char *const decisions_values[] = {"allowed", "delayed", "rejected", NULL};
static const struct sl_counter decisions = {
    .name = "sluice_ratelimit_decisions_total",
    .help = "Rate limit decisions, by route.",
    .label = "decision",
    .values = decisions_values,
};

/* A decision goes to the access log and to the decisions counter. */
static void decided(struct sl_req *req, const char *what)
{
    sl_req_log_field(req, "ratelimit", what);
    sl_req_count(req, &decisions, what);
}

/* Act on rs->result: through, held, or 429. */
static enum sl_status apply(struct rl_state *rs)
{
    struct sl_req *req = rs->req;
    char v[32];

    rs->decided = true;
    switch (rs->result.decision) {
    case SL_GCRA_ALLOW:
        decided(req, "allowed");
        return SL_NEXT;
    case SL_GCRA_DELAY: {
        uint64_t ms = (uint64_t)ceil_div(rs->result.wait_us, 1000);

        decided(req, "delayed");
        rs->hold = sl_malloc(sizeof(*rs->hold), "the rate_limit plugin");
        uv_timer_init(sl_req_loop(req), rs->hold);
        rs->hold->data = rs;
        uv_timer_start(rs->hold, on_hold_done, ms, 0);
        sl_req_suspend(req, cancel, rs);
        return SL_AGAIN;
    }
    default:
        decided(req, "rejected");
        snprintf(v, sizeof(v), "%lld", (long long)(ceil_div(rs->result.wait_us, 1000000) ?: 1));
        sl_resp_header_add(req, "Retry-After", v);
        sl_req_respond(req, 429, "rate_limited", "too many requests: rate limit exceeded");
        return SL_DONE;
    }
}

static void decide_local(struct rl_state *rs)
{
    rs->redis = false;
    sl__rl_local(rs->limits, rs->keys, rs->conf->n, 1, &rs->result, rs->tats);
}

/* Redis could not decide: on_store_failure says what happens. */
static enum sl_status store_failed(struct rl_state *rs)
{
    switch (rs->conf->on_failure) {
    case RL_FAIL_ALLOW:
        sl_req_log_field(rs->req, "ratelimit", "allowed_store_down");
        sl_req_count(rs->req, &decisions, "allowed");
        return SL_NEXT;
    case RL_FAIL_DENY:
        sl_req_log_field(rs->req, "ratelimit", "denied_store_down");
        sl_req_count(rs->req, &decisions, "rejected");
        sl_resp_header_add(rs->req, "Retry-After", "1");
        sl_req_respond(rs->req, 503, "rate_limit_unavailable",
                       "the rate limit store is unavailable");
        return SL_DONE;
    default:
        decide_local(rs);
        return apply(rs);
    }
}

static void on_redis(void *arg, bool ok, const struct sl_gcra_result *r, const int64_t *tats)
{
    struct rl_state *rs = arg;
    enum sl_status st;

    rs->waiting = false;
    if (ok) {
        rs->redis = true;
        rs->result = *r;
        memcpy(rs->tats, tats, rs->conf->n * sizeof(*tats));
        st = apply(rs);
    } else {
        st = store_failed(rs);
    }
    /* SL_AGAIN: Redis said wait, and the hold timer runs (still cancellable). */
    sl_req_resume(rs->req, st);
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct rl_conf *c = conf;
    struct rl_state *rs = sl_arena_calloc(sl_req_arena(req), sizeof(*rs));

    if (rs == NULL || sl_req_set_ctx(req, &sl_plugin_rate_limit, rs) != 0)
        return SL_ERROR;
    rs->req = req;
    rs->conf = c;
    for (size_t i = 0; i < c->n; i++) {
        rs->limits[i] = c->limits[i].gcra;
        rs->keys[i] = bucket_key(req, &c->limits[i], i);
        if (rs->keys[i] == NULL)
            return SL_ERROR;
    }
    if (c->store == RL_STORE_REDIS) {
        struct rl_worker *w = worker_of(req);

        if (sl__rl_redis_decide(w->redis, c->redis, rs->limits, rs->keys, NULL, c->n, 1, on_redis,
                                rs) != 0)
            return store_failed(rs);
        rs->waiting = true;
        sl_req_suspend(req, cancel, rs);
        return SL_AGAIN;
    }
    decide_local(rs);
    return apply(rs);
}

static void on_response(struct sl_req *req, void *conf)
{
    const struct rl_conf *c = conf;
    struct rl_state *rs = sl_req_ctx(req, &sl_plugin_rate_limit);
    int64_t burst = c->limits[0].gcra.burst;
    char v[32];

    if (rs == NULL || !rs->decided)
        return;
    for (size_t i = 1; i < c->n; i++)
        if (c->limits[i].gcra.burst < burst)
            burst = c->limits[i].gcra.burst;
    sl_resp_header_add(req, "RateLimit-Limit", itoa(v, burst));
    sl_resp_header_add(req, "RateLimit-Remaining",
                       itoa(v, rs->result.remaining < 0 ? 0 : rs->result.remaining));
    sl_resp_header_add(req, "RateLimit-Reset", itoa(v, ceil_div(rs->result.reset_us, 1000000)));
}

static void metrics(void (*emit)(void *ctx, const char *text), void *ctx)
{
    char line[160];

    snprintf(line, sizeof(line),
             "# HELP sluice_redis_errors_total Rate limit decisions Redis could not make.\n"
             "# TYPE sluice_redis_errors_total counter\n"
             "sluice_redis_errors_total %llu\n",
             (unsigned long long)atomic_load(&sl__rl_redis_errors));
    emit(ctx, line);
}

static const struct sl_counter *const counters[] = {&decisions, NULL};

static const char *versions(void)
{
    static char v[32];

    snprintf(v, sizeof(v), "hiredis %d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    return v;
}

static unsigned id;

const struct sl_plugin sl_plugin_rate_limit = {
    .abi = SL_PLUGIN_ABI,
    .name = "rate_limit",
    .id = &id,
    .conf_parse = sl__rate_limit_conf_parse,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = on_access,
    .response = on_response,
    .metrics = metrics,
    .counters = counters,
    .versions = versions,
};
