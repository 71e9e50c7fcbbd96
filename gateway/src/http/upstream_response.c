/*
 * The upstream's response: reading it (plain or TLS), parsing it with
 * llhttp, sending its head to the client and streaming its body there, and
 * what it means when the upstream closes the connection. proxy.c says how
 * the two sides hold each other back.
 */
#include "http/upstream_response.h"

#include <string.h>

#include "config/config.h"
#include "http/body_filter.h"
#include "http/conn.h"
#include "config/gen.h"
#include "base/log.h"
#include "http/pool.h"
#include "http/proxy.h"
#include "http/req.h"
#include "http/respond.h"
#include "tls/tls.h"
#include "http/tunnel.h"
#include "base/util.h"
#include "core/worker.h"

#define MIN_READ 4096
/* Upstream response heads may be this large. */
#define MAX_RESPONSE_HEAD (32 * 1024)

static llhttp_settings_t settings;
static uv_once_t settings_once = UV_ONCE_INIT;

/* -- the response parser --------------------------------------------------------- */

static inline struct sl_upconn *up_of(llhttp_t *p)
{
    return p->data;
}

static int on_resp_begin(llhttp_t *p)
{
    struct sl_upconn *uc = up_of(p);

    if (uc->req == NULL)
        return -1; /* bytes on an idle connection */
    sl__head_reset(&uc->req->resp);
    uc->req->resp.max = MAX_RESPONSE_HEAD;
    return 0;
}

static int on_resp_status(llhttp_t *p, const char *at, size_t len)
{
    struct sl_upconn *uc = up_of(p);

    return sl__head_start(&uc->req->resp, &uc->w->bufs, at, len) == 0 ? 0 : -1;
}

static int on_resp_field(llhttp_t *p, const char *at, size_t len)
{
    struct sl_upconn *uc = up_of(p);
    struct sl_req *req = uc->req;

    return sl__head_name(&req->resp, &uc->w->bufs, &req->arena, at, len) == 0 ? 0 : -1;
}

static int on_resp_value(llhttp_t *p, const char *at, size_t len)
{
    struct sl_upconn *uc = up_of(p);

    return sl__head_value(&uc->req->resp, &uc->w->bufs, at, len) == 0 ? 0 : -1;
}

/*
 * Whether the final response head went to the client. resp_started alone
 * also covers forwarded interim (1xx) responses: bytes the client has, which
 * rule out a retry or a gateway-made answer from then on. req->status is set
 * with the final head only.
 */
static bool final_head_sent(const struct sl_req *req)
{
    return req->resp_started && req->status != 0;
}

static bool drop_listed(struct sl_str tok, void *arg)
{
    struct sl_head *h = arg;

    /* Connection options, not header names; Upgrade must survive a 101. */
    if (sl_str_caseeq_lit(tok, "close") || sl_str_caseeq_lit(tok, "keep-alive") ||
        sl_str_caseeq_lit(tok, "upgrade"))
        return false;

    for (uint32_t i = 0; i < h->n; i++)
        if (sl_str_caseeq(h->fields[i].name, tok))
            h->fields[i].drop = true;
    return false;
}

/* The fields the upstream's Connection header names are hop-by-hop too. */
static void drop_connection_listed(struct sl_head *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        struct sl_header *f = &h->fields[i];

        if (sl_str_caseeq_lit(f->name, "Connection"))
            sl__http_tokens(f->value, drop_listed, h);
    }
}

/*
 * Mark what of the upstream's head does not go to the client: the
 * hop-by-hop fields (Upgrade excepted for a 101), those its Connection
 * header names, and its Via when the gateway writes its own (via()).
 */
static void mark_forwarded(const struct sl_req *req, struct sl_head *h, bool upgrade)
{
    bool own_via = req->gen->conf->headers.via != NULL;

    drop_connection_listed(h);
    for (uint32_t i = 0; i < h->n; i++) {
        struct sl_header *f = &h->fields[i];

        if ((sl__http_is_hop_by_hop(f->name) &&
             !(upgrade && sl_str_caseeq_lit(f->name, "Upgrade"))) ||
            (own_via && sl_str_caseeq_lit(f->name, "Via")))
            f->drop = true;
    }
}

/*
 * A proxy adds itself to Via on responses too (RFC 9110 7.6.3): one field
 * with the upstream's own Via values, all its lines in order, then ours,
 * naming the protocol version the upstream answered with. Empty with
 * via: off, when the upstream's Via lines pass through as they are.
 */
static struct sl_str via(struct sl_req *req, const struct sl_head *h, uint8_t minor)
{
    const struct sl_header_policy *hp = &req->gen->conf->headers;
    size_t len = hp->via_len + 5;
    char *v, *p;

    if (hp->via == NULL)
        return SL_STR_NULL;
    for (uint32_t i = 0; i < h->n; i++)
        if (sl_str_caseeq_lit(h->fields[i].name, "Via"))
            len += h->fields[i].value.len + 2;
    p = v = sl_arena_alloc(&req->arena, len);
    if (v == NULL)
        return SL_STR_NULL;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct sl_header *f = &h->fields[i];

        if (f->value.len == 0 || !sl_str_caseeq_lit(f->name, "Via"))
            continue;
        memcpy(p, f->value.p, f->value.len);
        p += f->value.len;
        memcpy(p, ", ", 2);
        p += 2;
    }
    *p++ = '1';
    *p++ = '.';
    *p++ = (char)('0' + (minor > 9 ? 9 : minor));
    *p++ = ' ';
    memcpy(p, hp->via, hp->via_len);
    p += hp->via_len;
    return (struct sl_str){v, (size_t)(p - v)};
}

/* Hand the response head to the client side: the upstream's end-to-end
 * fields, Via, and the plugins' headers; the framing is the downstream's. */
static void send_response_head(struct sl_req *req, llhttp_t *p)
{
    struct sl_head *h = &req->resp;
    int status = req->status;
    struct sl_resp_head rh = {
        .status = status,
        .reason = sl__head_start_line(h),
        .fields = h,
        .content_length = -1,
        .length_known = (p->flags & F_CONTENT_LENGTH) != 0,
        .upgrade = status == 101,
    };

    rh.no_body = req->method == HTTP_HEAD || status == 204 || status == 304 || rh.upgrade;
    req->resp_no_body = rh.no_body;
    mark_forwarded(req, h, rh.upgrade);
    rh.via = via(req, h, p->http_minor);
    req->resp_proxied = true;
    sl__req_response_phase(req);
    sl__body_filters_start(req, &rh);
    req->down->head(req, &rh);
}

/*
 * An interim (1xx) response other than 101. A proxy forwards them to an
 * HTTP/1.1 client (RFC 9110 15.2), 103 Early Hints among them, with their
 * end-to-end fields and our Via; the downstream drops them where its
 * protocol has none (HTTP/1.0), and a 100 Continue answers the Expect the
 * gateway already answered itself (sl__conn_start_body()), so it is
 * dropped. An interim response has no body and says nothing about the
 * final response's framing. The plugins' RESPONSE phase, the access log and
 * the target's health see only the final response, which follows on the
 * same connection. Returns 1: no body.
 */
static int on_interim_headers(struct sl_upconn *uc, llhttp_t *p)
{
    struct sl_req *req = uc->req;
    struct sl_head *h = &req->resp;
    struct sl_resp_head rh = {.status = p->status_code, .fields = h, .content_length = -1};

    uc->skip_message = true; /* on_resp_complete() waits for the final response */
    if (p->status_code == 100 && req->expect_continue)
        return 1;
    sl__head_trim(h);
    mark_forwarded(req, h, false);
    rh.reason = sl__head_start_line(h);
    rh.via = via(req, h, p->http_minor);
    /* Once the client has bytes, a failure cuts its connection
     * (sl__proxy_attempt_failed()) instead of retrying or answering 502. */
    req->down->interim(req, &rh);
    return 1;
}

/*
 * Chunked is the only transfer coding the gateway takes apart and puts back
 * together. Any other (gzip, chunked; gzip; identity; chunked twice; two
 * Transfer-Encoding lines) would reach the client as plain chunked or as a
 * close-delimited body with no label: a corrupted body. Such a response is
 * refused with 502, as sluice(8) says. Returns what is wrong, for the log (a
 * static string or a string in req's arena), or NULL when all is well.
 */
static const char *bad_transfer_encoding(struct sl_req *req)
{
    const struct sl_head *h = &req->resp;
    const struct sl_header *te = NULL;
    const char *why;

    for (uint32_t i = 0; i < h->n; i++) {
        if (!sl_str_caseeq_lit(h->fields[i].name, "Transfer-Encoding"))
            continue;
        if (te != NULL)
            return "more than one Transfer-Encoding header; only one, saying chunked, is accepted";
        te = &h->fields[i];
    }
    /* llhttp took the leading whitespace off, sl__head_trim() the trailing. */
    if (te == NULL || sl_str_caseeq_lit(te->value, "chunked"))
        return NULL;
    why = sl_arena_printf(&req->arena, "Transfer-Encoding: %.*s; only chunked is accepted",
                          te->value.len > 100 ? 100 : (int)te->value.len, te->value.p);
    return why ? why : "a Transfer-Encoding other than chunked";
}

static int on_resp_headers(llhttp_t *p)
{
    struct sl_upconn *uc = up_of(p);
    struct sl_req *req = uc->req;
    int status = p->status_code;

    if (status < 100 || status > 599) {
        uc->bad = "status code out of range";
        return -1;
    }
    /* llhttp takes any digit.digit version in a status line. */
    if (p->http_major != 1 || p->http_minor > 1) {
        uc->bad = "not an HTTP/1.0 or HTTP/1.1 response";
        return -1;
    }
    if (status < 200 && status != 101)
        return on_interim_headers(uc, p);
    if (status == 101 && !req->upgrade) {
        uc->bad = "101 Switching Protocols to a request without Upgrade";
        return -1;
    }
    sl__head_trim(&req->resp);
    if (status != 101 && (uc->bad = bad_transfer_encoding(req)) != NULL)
        return -1;
    req->up_ms = (sl__mono_ns() - req->up_start_ns) / 1000;
    sl__tstate_count_status(req->target->st, status);
    if (status >= 500) {
        /* No retry once an interim response went to the client. */
        if ((status == 502 || status == 503 || status == 504) && !req->resp_started &&
            sl__proxy_may_retry(req, SL_FAIL_RESET)) {
            /* Swallow it and try another target (sl__proxy_attempt_failed() counts it). */
            uc->retry_status = status;
            return -1;
        }
        if (sl__tstate_failure(req->target->st, &req->upstream->passive, req->trial,
                               sl__mono_ns() / 1000000))
            sl_log(SL_LOG_WARN, req, "target %s of upstream \"%s\" ejected after %u failures",
                   req->target->conf->ip, req->upstream->conf->name,
                   req->upstream->passive.failures);
        req->trial = false; /* the verdict is in */
    } else {
        sl__tstate_success(req->target->st, req->up_ms, req->trial, sl__mono_ns() / 1000000);
        req->trial = false;
    }
    req->status = status;
    send_response_head(req, p);
    req->action = "reading the upstream response body";
    if (status == 101)
        return 2; /* a tunnel from here on */
    return req->resp_no_body ? 1 : 0;
}

static int on_resp_body(llhttp_t *p, const char *at, size_t len)
{
    struct sl_upconn *uc = up_of(p);
    struct sl_req *req = uc->req;

    req->resp_body_bytes += len;
    req->down->body(req, uc->rbuf, at, len);
    return 0;
}

static int on_resp_chunk_header(llhttp_t *p)
{
    struct sl_upconn *uc = up_of(p);
    struct sl_head *h = &uc->req->resp;

    if (p->content_length == 0) {
        h->in_trailers = true;
        h->trailers_from = h->n;
        h->last = 0;
    }
    return 0;
}

static int on_resp_complete(llhttp_t *p)
{
    struct sl_upconn *uc = up_of(p);
    struct sl_req *req = uc->req;

    if (uc->skip_message) {
        uc->skip_message = false;
        sl__head_reset(&req->resp);
        return 0;
    }
    if (req->status == 101)
        return 0; /* llhttp now returns HPE_PAUSED_UPGRADE: the tunnel starts */
    req->down->end(req, &req->resp);
    uc->resp_keepalive = llhttp_should_keep_alive(p);
    uc->resp_done = true;
    return HPE_PAUSED;
}

static void init_settings(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_resp_begin;
    settings.on_status = on_resp_status;
    settings.on_header_field = on_resp_field;
    settings.on_header_value = on_resp_value;
    settings.on_headers_complete = on_resp_headers;
    settings.on_body = on_resp_body;
    settings.on_chunk_header = on_resp_chunk_header;
    settings.on_message_complete = on_resp_complete;
}

void sl__upstream_response_init(struct sl_upconn *uc)
{
    uv_once(&settings_once, init_settings);
    llhttp_init(&uc->parser, HTTP_RESPONSE, &settings);
    uc->parser.data = uc;
}

/* -- reading the response ------------------------------------------------------ */

/* Room at the end of the read buffer for response bytes. */
static uv_buf_t up_room(struct sl_upconn *uc)
{
    return sl__buf_room(&uc->w->bufs, &uc->rbuf, &uc->rpos, MIN_READ);
}

static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    *out = up_room(h->data);
}

static void client_backpressure(struct sl_upconn *uc, struct sl_req *req)
{
    if (req->down->queued(req) > SL_OUT_HIGH && uc->reading) {
        uv_read_stop((uv_stream_t *)&uc->tcp);
        uc->reading = false;
        uc->client_bp = true;
        /* Now the upstream waits for the client: its read timer stops and
         * the client must take bytes within timeouts.client_send. */
        sl__upconn_set_deadline(uc, 0);
        req->down->stalled(req, true);
    }
}

/* Feed what was read to the response parser and act on the outcome. */
static void parse_response(struct sl_upconn *uc)
{
    struct sl_req *req = uc->req;
    const char *data = uc->rbuf->data + uc->rpos;
    size_t avail = uc->rbuf->len - uc->rpos, used;
    bool head_before = final_head_sent(req);
    llhttp_errno_t err;

    err = llhttp_execute(&uc->parser, data, avail);
    used = err == HPE_OK ? avail : (size_t)(llhttp_get_error_pos(&uc->parser) - data);
    uc->rpos += (uint32_t)used;
    /* A head that came alone waits a moment for its body, usually just
     * behind, to leave with it. */
    if (req->down->flush(req, err == HPE_OK && !head_before && final_head_sent(req) &&
                                  req->resp_body_bytes == 0 && !req->resp_no_body) != 0)
        return;
    switch (err) {
    case HPE_OK:
        client_backpressure(uc, req);
        sl__upconn_touch(uc);
        return;
    case HPE_PAUSED:
        if (uc->resp_done) {
            req->action = NULL;
            req->down->done(req);
        }
        return;
    case HPE_PAUSED_UPGRADE:
        sl__tunnel_start(req);
        return;
    default:
        if (uc->retry_status != 0) {
            int st = uc->retry_status;

            req->action = "reading the upstream response head";
            sl__proxy_attempt_failed(req, SL_FAIL_STATUS, "upstream answered %d", st);
            return;
        }
        if (!final_head_sent(req)) {
            const char *why = uc->bad ? uc->bad : llhttp_get_error_reason(&uc->parser);

            uc->got_bytes = true; /* an answer, if a broken one: no retry */
            req->action = "reading the upstream response head";
            sl__proxy_attempt_failed(req, SL_FAIL_PROTOCOL, "upstream sent an invalid response: %s",
                                     why ? why : llhttp_errno_name(err));
        } else {
            req->action = "reading the upstream response body";
            sl_log(SL_LOG_ERROR, req, "upstream sent an invalid response body: %s",
                   llhttp_errno_name(err));
            req->down->abort(req);
        }
        return;
    }
}

static void up_eof(struct sl_upconn *uc, int err)
{
    struct sl_req *req = uc->req;

    uc->eof = true;
    if (uc->state == SL_UP_IDLE) {
        sl__upconn_close(uc); /* the upstream closed a pooled connection */
        return;
    }
    if (req == NULL)
        return;
    if (uc->state == SL_UP_TUNNEL) {
        if (err != 0) {
            sl__conn_abort(req->conn);
            return;
        }
        sl__out_flush(&req->conn->out);
        sl__conn_shutdown_write(req->conn);
        sl__tunnel_maybe_end(req);
        return;
    }
    if (err == 0 && final_head_sent(req) && llhttp_message_needs_eof(&uc->parser)) {
        /* A response delimited by the close: this is its end. */
        llhttp_errno_t fin = llhttp_finish(&uc->parser);

        /* on_resp_complete pauses the parser, which llhttp_finish() reports
         * as HPE_PAUSED: the message did complete. */
        if ((fin == HPE_OK || fin == HPE_PAUSED) && uc->resp_done) {
            uc->resp_keepalive = false;
            if (req->down->flush(req, false) == 0)
                req->down->done(req);
            return;
        }
    }
    if (!uc->got_bytes) {
        req->action = "waiting for the upstream response";
        sl__proxy_attempt_failed(req, SL_FAIL_RESET,
                                 "upstream closed the connection before responding%s%s",
                                 err ? ": " : "", err ? uv_strerror(err) : "");
        return;
    }
    if (!final_head_sent(req)) {
        req->action = "reading the upstream response head";
        sl__proxy_attempt_failed(req, SL_FAIL_PROTOCOL, "upstream closed the connection %s%s%s",
                                 req->resp_started
                                     ? "after an interim response, before the final one"
                                     : "in the middle of the response head",
                                 err ? ": " : "", err ? uv_strerror(err) : "");
        return;
    }
    req->action = "reading the upstream response body";
    sl_log(SL_LOG_ERROR, req, "upstream closed the connection before the response was complete%s%s",
           err ? ": " : "", err ? uv_strerror(err) : "");
    req->down->abort(req);
}

/* n bytes of response (plaintext) were added to the read buffer. */
static void up_got_plain(struct sl_upconn *uc, size_t n)
{
    uc->rbuf->len += (uint32_t)n;
    if (uc->state == SL_UP_IDLE || uc->req == NULL) {
        sl__upconn_close(uc); /* bytes nobody asked for */
        return;
    }
    if (uc->state == SL_UP_TUNNEL) {
        struct sl_conn *c = uc->req->conn;

        sl__out_slice(&c->out, uc->rbuf, uc->rbuf->data + uc->rpos, uc->rbuf->len - uc->rpos);
        uc->rpos = uc->rbuf->len;
        if (sl__out_flush(&c->out) != 0) {
            sl__conn_abort(c);
            return;
        }
        client_backpressure(uc, uc->req);
        sl__upconn_set_deadline(uc, uc->req->upstream->conf->read_ms);
        return;
    }
    uc->got_bytes = true;
    parse_response(uc);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_upconn *uc = s->data;

    (void)buf;
    if (uc->state == SL_UP_CLOSED)
        return;
    if (nread > 0)
        up_got_plain(uc, (size_t)nread);
    else if (nread < 0)
        up_eof(uc, nread == UV_EOF ? 0 : (int)nread);
}

/* -- TLS to upstreams ------------------------------------------------------------ */

static void on_up_alloc_tls(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct sl_upconn *uc = h->data;

    (void)suggested;
    sl__tls_alloc(uc->ssl, out);
}

/* Finish the handshake, then decrypt what the client side can take. */
void sl__upconn_tls_pump(struct sl_upconn *uc)
{
    struct sl_tls *t = uc->ssl;

    if (!t->done) {
        int r = sl__tls_handshake(t);

        sl__out_flush_raw(&uc->out);
        if (r == 0)
            return;
        if (r < 0) {
            sl__proxy_attempt_failed(uc->req, SL_FAIL_CONNECT,
                                     "TLS handshake with the upstream failed: %s", t->error);
            return;
        }
        /* Keep the session for the next connection to this target. */
        if (uc->pool->session != NULL)
            SSL_SESSION_free(uc->pool->session);
        uc->pool->session = sl__tls_session(t);
        sl__proxy_send_request(uc->req);
        return;
    }
    while (uc->state != SL_UP_CLOSED && !uc->client_bp) {
        uv_buf_t room = up_room(uc);
        int n = sl__tls_read(t, room.base, room.len);

        if (n > 0) {
            up_got_plain(uc, (size_t)n);
            continue;
        }
        if (n == SL_TLS_EOF) {
            up_eof(uc, 0);
        } else if (n < 0) {
            if (uc->req != NULL)
                sl_log(SL_LOG_ERROR, uc->req, "TLS error from the upstream: %s", t->error);
            sl__out_flush_raw(&uc->out); /* the alert (RFC 8446 section 5) */
            up_eof(uc, UV_EPROTO);
        }
        break;
    }
}

static void on_up_read_tls(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_upconn *uc = s->data;

    (void)buf;
    if (uc->state == SL_UP_CLOSED)
        return;
    if (nread > 0) {
        sl__tls_received(uc->ssl, (size_t)nread);
        sl__upconn_tls_pump(uc);
    } else if (nread < 0) {
        if (!uc->ssl->done && uc->req != NULL) {
            sl__proxy_attempt_failed(uc->req, SL_FAIL_CONNECT,
                                     "the upstream closed the connection during "
                                     "the TLS handshake");
            return;
        }
        up_eof(uc, nread == UV_EOF ? 0 : (int)nread);
    }
}

void sl__upconn_read_start(struct sl_upconn *uc)
{
    int rc;

    if (uc->reading)
        return;
    rc = uc->ssl ? uv_read_start((uv_stream_t *)&uc->tcp, on_up_alloc_tls, on_up_read_tls)
                 : uv_read_start((uv_stream_t *)&uc->tcp, on_up_alloc, on_up_read);
    if (rc == 0)
        uc->reading = true;
    if (uc->ssl != NULL && uc->ssl->done && sl__tls_has_input(uc->ssl))
        sl__upconn_tls_pump(uc); /* input that arrived before we stopped reading */
}
