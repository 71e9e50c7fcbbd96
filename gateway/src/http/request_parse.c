/*
 * Parsing and checking client requests: the llhttp callbacks, the checks
 * of a complete head, and the parse loop that feeds a connection's read
 * buffer to llhttp and acts on where it pauses (conn.c says when it does).
 *
 * llhttp (in strict mode) rejects most malformed input by itself; what it
 * lets through is checked here: bare LF line endings at the request line and
 * the blank line, obs-fold, double spaces in the request line, protocols
 * other than HTTP, empty header names, and every framing rule about
 * Content-Length, Transfer-Encoding and Host.
 */
#include "http/request_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/addr.h"
#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "config/gen.h"
#include "core/worker.h"
#include "http/conn.h"
#include "http/proxy.h"
#include "http/request_check.h"
#include "http/respond.h"

static llhttp_settings_t settings;
static uv_once_t settings_once = UV_ONCE_INIT;

static inline struct sl_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

/* -- parser callbacks ------------------------------------------------------ */

/* The byte k places before at, which may lie in bytes parsed by an earlier
 * llhttp_execute() call; -1 when that is further back than we remember. */
static int back(const struct sl_conn *c, const char *at, size_t k)
{
    size_t in_buf = (size_t)(at - c->rx->exec_start);

    if (k <= in_buf)
        return (unsigned char)at[-(ptrdiff_t)k];
    k -= in_buf;
    if (k > sizeof(c->rx->hist))
        return -1;
    return (unsigned char)c->rx->hist[sizeof(c->rx->hist) - k];
}

static int fail(struct sl_conn *c, int status, const char *msg)
{
    if (c->rx->perr_status == 0) {
        c->rx->perr_status = status;
        c->rx->perr_msg = msg;
    }
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    struct sl_conn *c = conn_of(p);

    if (c->rx->req.gen == NULL)
        sl__req_init(&c->rx->req, c);
    sl__conn_enter(c, SL_CS_HEAD);
    c->rx->in_version = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->rx->req;

    /* One space between method and target: "GET  /" is refused. */
    if (req->head.start_len == 0 && back(c, at, 2) == ' ')
        return fail(c, 400, "malformed request line");
    if (sl__head_start(&req->head, &c->w->bufs, at, len) != 0)
        return fail(c, 414, "the request target is too long");
    return 0;
}

static int on_version(llhttp_t *p, const char *at, size_t len)
{
    struct sl_conn *c = conn_of(p);
    static const char proto[] = "HTTP/";

    (void)len;
    /* What comes before the version is checked once, at its first piece: a
     * version split over two reads comes in two. */
    if (c->rx->in_version)
        return 0;
    c->rx->in_version = true;
    /* llhttp also takes RTSP/1.0 and ICE/1.0 and reports them as 1.0; and
     * it takes two spaces before the version. */
    for (size_t k = 1; k <= 5; k++)
        if (back(c, at, k) != proto[5 - k])
            return fail(c, 400, "malformed request line: not HTTP");
    if (back(c, at, 6) != ' ' || back(c, at, 7) == ' ')
        return fail(c, 400, "malformed request line");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->rx->req;

    if (req->head.last != 1 && !req->head.in_trailers) {
        /* A new header line must follow CRLF; llhttp accepts a bare LF after
         * the request line. */
        if (back(c, at, 1) != '\n' || back(c, at, 2) != '\r')
            return fail(c, 400, "malformed request: bare LF line ending");
    }
    if (sl__head_name(&req->head, &c->w->bufs, &req->arena, at, len) != 0)
        return fail(c, 431, "the request head is too large");
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->rx->req;

    /* A value piece that starts a line is a folded continuation (obs-fold,
     * RFC 9112 5.2), which a proxy must reject or rewrite. */
    if (req->head.last == 2 && back(c, at, 1) == '\n')
        return fail(c, 400, "malformed request: folded header line");
    if (sl__head_value(&req->head, &c->w->bufs, at, len) != 0)
        return fail(c, 431, "the request head is too large");
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct sl_conn *c = conn_of(p);

    c->rx->pause = SL_PAUSE_HEAD;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->rx->req;
    uint64_t max = sl__conn_conf(c)->max_body_bytes;

    req->body_bytes += len;
    if (max != 0 && req->body_bytes > max)
        return fail(c, 413, "the request body is larger than limits.max_body_bytes");
    sl__proxy_body(req, c->rbuf, at, len); /* nobody wants it before proxying: discarded */
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->rx->req;

    if (p->content_length == 0) {
        /* The last chunk: header callbacks from here on are trailers. */
        req->head.in_trailers = true;
        req->head.trailers_from = req->head.n;
        req->head.last = 0;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->rx->req;

    if (req->finished) {
        /* The gateway already answered this bodiless request before its
         * message was complete: on with the next one. */
        sl__req_release(req);
        sl__conn_enter(c, SL_CS_IDLE);
        return 0;
    }
    req->body_done = true;
    sl__proxy_body_end(req);
    c->rx->pause = SL_PAUSE_MESSAGE;
    return HPE_PAUSED;
}

static void init_settings(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_version = on_version;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_chunk_header = on_chunk_header;
    settings.on_message_complete = on_message_complete;
}

/* Released parsers and requests, kept per worker thread for the next
 * connection with bytes: no malloc per busy period. */
#define RX_CACHE_MAX 64

static _Thread_local struct sl_conn_rx *rx_cache[RX_CACHE_MAX];
static _Thread_local unsigned rx_cached;

struct sl_conn_rx *sl__conn_rx(struct sl_conn *c)
{
    struct sl_conn_rx *rx = c->rx;

    if (rx != NULL)
        return rx;
    uv_once(&settings_once, init_settings);
    rx = rx_cached > 0 ? rx_cache[--rx_cached] : sl__xcalloc(1, sizeof(*rx));
    llhttp_init(&rx->parser, HTTP_REQUEST, &settings);
    rx->parser.data = c;
    rx->pause = SL_PAUSE_NONE;
    rx->perr_status = 0;
    rx->perr_msg = NULL;
    rx->exec_start = NULL;
    memset(rx->hist, 0, sizeof(rx->hist));
    rx->in_version = false;
    /* Made once per busy period, not kept by an idle connection. */
    sl__addr_str(&c->peer.sa, false, rx->ip, sizeof(rx->ip));
    c->rx = rx;
    return rx;
}

void sl__conn_rx_thread_done(void)
{
    while (rx_cached > 0)
        free(rx_cache[--rx_cached]);
}

void sl__conn_rx_release(struct sl_conn *c)
{
    struct sl_conn_rx *rx = c->rx;

    if (rx == NULL)
        return;
    SL_BUG_ON(rx->req.gen != NULL);
    c->rx = NULL;
    sl__head_free(&rx->req.head);
    sl_arena_destroy(&rx->req.arena);
    if (rx_cached == RX_CACHE_MAX) {
        free(rx);
        return;
    }
    /* The request is cleared when the next message begins (sl__req_init);
     * the rest is set again when the rx is taken. */
    rx_cache[rx_cached++] = rx;
}

/* -- validating a complete head -------------------------------------------- */

/*
 * Body bytes that arrived with the head are checked before anything goes
 * upstream: a malformed chunk or an oversized body is refused with nothing
 * sent. A copy of the parser (a plain struct) runs over them with callbacks
 * that only count; the real parser is untouched. Returns 0 or a status.
 */
struct precheck {
    uint64_t bytes, max;
};

static int pre_body(llhttp_t *p, const char *at, size_t len)
{
    struct precheck *pc = p->data;

    (void)at;
    pc->bytes += len;
    return pc->max != 0 && pc->bytes > pc->max ? -1 : 0;
}

static int pre_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED; /* what follows is the next request's business */
}

static llhttp_settings_t pre_settings;
static uv_once_t pre_once = UV_ONCE_INIT;

static void init_pre_settings(void)
{
    llhttp_settings_init(&pre_settings);
    pre_settings.on_body = pre_body;
    pre_settings.on_message_complete = pre_complete;
}

static int precheck_body(struct sl_conn *c)
{
    struct precheck pc = {0, sl__conn_conf(c)->max_body_bytes};
    llhttp_t probe;
    llhttp_errno_t err;

    if (!c->rx->req.has_body || c->rbuf == NULL || c->rpos == c->rbuf->len)
        return 0;
    uv_once(&pre_once, init_pre_settings);
    probe = c->rx->parser;
    probe.settings = &pre_settings;
    probe.data = &pc;
    llhttp_resume(&probe);
    err = llhttp_execute(&probe, c->rbuf->data + c->rpos, c->rbuf->len - c->rpos);
    if (err == HPE_OK || err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
        return 0;
    return pc.max != 0 && pc.bytes > pc.max ? 413 : 400;
}

/* The head is complete: check it, route it, run the ACCESS phase. */
static void head_done(struct sl_conn *c)
{
    struct sl_req *req = &c->rx->req;
    const struct sl_config *conf = req->gen->conf;
    const char *why = NULL;
    int status;

    sl__conn_enter(c, SL_CS_WAIT);
    sl__conn_set_deadline(c, 0);
    req->action = "reading client request head";
    status = sl__request_check(req, &c->rx->parser, &why);
    if (status != 0) {
        sl_log(SL_LOG_INFO, req, "bad request: %s", why);
        sl__respond_error(req, status,
                          status == 505   ? "http_version_not_supported"
                          : status == 417 ? "expectation_failed"
                                          : "bad_request",
                          why);
        return;
    }
    if (conf->max_body_bytes != 0 && req->content_length > conf->max_body_bytes) {
        sl__respond_error(req, 413, "payload_too_large",
                          "the request body is larger than limits.max_body_bytes");
        return;
    }
    status = precheck_body(c);
    if (status == 413) {
        sl__respond_error(req, 413, "payload_too_large",
                          "the request body is larger than limits.max_body_bytes");
        return;
    }
    if (status != 0) {
        sl_log(SL_LOG_INFO, req, "bad request: malformed body framing");
        sl__respond_error(req, 400, "bad_request", "malformed request body framing");
        return;
    }
    sl__req_dispatch(req);
}

static void message_done(struct sl_conn *c)
{
    struct sl_req *req = &c->rx->req;

    req->body_done = true;
    if (c->state == SL_CS_BODY || c->state == SL_CS_WAIT) {
        sl__conn_enter(c, SL_CS_RESPONSE);
        sl__conn_set_deadline(c, 0); /* not a closing connection's flush cap */
    }
    if (req->up != NULL)
        req->action = "waiting for the upstream response";
}

static void parse_error(struct sl_conn *c, llhttp_errno_t err)
{
    struct sl_req *req = &c->rx->req;
    int status = c->rx->perr_status ? c->rx->perr_status : 400;
    const char *msg = c->rx->perr_msg;
    char buf[160];

    if (req->gen == NULL)
        sl__req_init(req, c);
    if (msg == NULL) {
        switch (err) {
        case HPE_INVALID_METHOD:
            msg = "invalid method";
            break;
        case HPE_INVALID_URL:
            msg = "invalid request target";
            break;
        case HPE_INVALID_VERSION:
            status = 505;
            msg = "unsupported HTTP version";
            break;
        case HPE_PAUSED_H2_UPGRADE:
            status = 505;
            msg = "HTTP/2 is not supported on this listener";
            break;
        default:
            snprintf(buf, sizeof(buf), "malformed request: %s",
                     llhttp_get_error_reason(&c->rx->parser)
                         ? llhttp_get_error_reason(&c->rx->parser)
                         : llhttp_errno_name(err));
            msg = sl_arena_strndup(&req->arena, buf, strlen(buf));
            if (msg == NULL)
                msg = "malformed request";
        }
    }
    req->keepalive = false;
    req->action = c->state == SL_CS_BODY ? "reading client request body" : "reading client request";
    sl_log(SL_LOG_INFO, req, "%s", msg);
    sl__respond_error(req, status,
                      status == 413   ? "payload_too_large"
                      : status == 431 ? "request_header_fields_too_large"
                      : status == 414 ? "uri_too_long"
                      : status == 505 ? "http_version_not_supported"
                                      : "bad_request",
                      msg);
}

/* -- the parse loop --------------------------------------------------------- */

static void remember(struct sl_conn *c, const char *data, size_t n)
{
    size_t keep = sizeof(c->rx->hist);

    if (n >= keep) {
        memcpy(c->rx->hist, data + n - keep, keep);
    } else {
        memmove(c->rx->hist, c->rx->hist + n, keep - n);
        memcpy(c->rx->hist + keep - n, data, n);
    }
}

static bool may_parse(const struct sl_conn *c)
{
    return !c->closed &&
           (c->state == SL_CS_IDLE || c->state == SL_CS_HEAD || c->state == SL_CS_BODY);
}

static void process_once(struct sl_conn *c)
{
    struct sl_req *req = &c->rx->req;
    const char *data = c->rbuf->data + c->rpos;
    size_t avail = c->rbuf->len - c->rpos, used;
    bool in_head = c->state != SL_CS_BODY;
    llhttp_errno_t err;

    c->rx->exec_start = data;
    c->rx->pause = SL_PAUSE_NONE;
    err = llhttp_execute(&c->rx->parser, data, avail);
    used = err == HPE_OK ? avail : (size_t)(llhttp_get_error_pos(&c->rx->parser) - data);
    if (in_head && (c->state == SL_CS_HEAD || c->rx->pause == SL_PAUSE_HEAD)) {
        uint64_t max = sl__conn_conf(c)->max_header_bytes;

        req->head_bytes += used;
        if (c->rx->pause == SL_PAUSE_HEAD) {
            const char *end = data + used;

            /* The head must end in CRLF CRLF; llhttp takes a bare LF. */
            if (back(c, end, 1) != '\n' || back(c, end, 2) != '\r' || back(c, end, 3) != '\n' ||
                back(c, end, 4) != '\r') {
                fail(c, 400, "malformed request: bare LF line ending");
                err = HPE_USER;
            }
        }
        if (err != HPE_USER && req->head_bytes > max) {
            fail(c, 431, "the request head is larger than limits.max_header_bytes");
            err = HPE_USER;
        }
    }
    remember(c, data, used);
    c->rpos += (uint32_t)used;
    c->bytes_in += used;
    if (req->up != NULL && c->state == SL_CS_BODY)
        sl__proxy_body_flush(req);

    switch (err) {
    case HPE_OK:
        break;
    case HPE_PAUSED:
        if (c->rx->pause == SL_PAUSE_HEAD) {
            head_done(c);
        } else if (c->rx->pause == SL_PAUSE_MESSAGE) {
            message_done(c);
        }
        c->again = true;
        break;
    case HPE_PAUSED_UPGRADE:
        message_done(c);
        break;
    default:
        parse_error(c, err);
        break;
    }
}

void sl__request_parse(struct sl_conn *c)
{
    if (c->in_process) {
        c->again = true;
        return;
    }
    c->in_process = true;
    do {
        c->again = false;
        if (!may_parse(c) || c->rbuf == NULL)
            break;
        /* An idle connection takes its parser and request with its first
         * bytes. */
        if (c->rx == NULL && c->rpos == c->rbuf->len)
            break;
        sl__conn_rx(c);
        /* With nothing buffered there is nothing to parse, except that a
         * bodiless request paused at its head still owes llhttp's
         * on_message_complete, which a zero-length execute delivers. */
        if (c->rpos == c->rbuf->len &&
            !(c->state == SL_CS_BODY && !c->rx->req.body_done && !c->rx->req.has_body))
            break;
        process_once(c);
    } while (c->again && !c->closed);
    c->in_process = false;
    if (c->closed)
        return;
    /* A client that half-closed after its last complete request, or in the
     * middle of a head: what is still queued for it goes out first. */
    if (c->eof && ((c->state == SL_CS_IDLE && (c->rbuf == NULL || c->rpos == c->rbuf->len)) ||
                   c->state == SL_CS_HEAD)) {
        sl__conn_close_graceful(c);
        return;
    }
    sl__conn_update_reading(c);
}
