/*
 * Client connections.
 *
 * Reading: bytes land in the connection's pooled read buffer and are parsed
 * in place by llhttp. The parser pauses when a head is complete (the request
 * must be routed and may wait for plugins and an upstream connection) and
 * when a message is complete (the next pipelined request waits for this
 * response). While paused, reading goes on until the buffer is full, so a
 * client that goes away is noticed.
 *
 * llhttp (in strict mode) rejects most malformed input by itself; what it
 * lets through is checked here: bare LF line endings at the request line and
 * the blank line, obs-fold, double spaces in the request line, protocols
 * other than HTTP, empty header names, and every framing rule about
 * Content-Length, Transfer-Encoding and Host.
 */
#include "conn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "config.h"
#include "gen.h"
#include "log.h"
#include "proxy.h"
#include "respond.h"
#include "router.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* Read only when at least this much room is left in the read buffer. */
#define MIN_READ 4096
/* How long a closing connection reads and discards what the client still sends. */
#define LINGER_MS 2000

static llhttp_settings_t settings;
static uv_once_t settings_once = UV_ONCE_INIT;

static void process(struct sl_conn *c);
static void close_now(struct sl_conn *c);
static void on_timer(uv_timer_t *t);

static inline struct sl_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static const struct sl_config *conf_of(struct sl_conn *c)
{
    if (c->req.gen != NULL)
        return c->req.gen->conf;
    return c->w->wgen->gen->conf;
}

void sl__conn_set_deadline(struct sl_conn *c, uint64_t ms)
{
    uint64_t now = uv_now(&c->w->loop);

    if (ms == 0) {
        c->deadline = 0;
        return;
    }
    c->deadline = now + ms;
    /* Arm the timer only when it would fire too late; a timer that fires
     * early just re-arms for the rest (see on_timer). */
    if (c->timer_at == 0 || c->timer_at > c->deadline) {
        c->timer_at = c->deadline;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

/* -- parser callbacks ------------------------------------------------------ */

/* The byte k places before at, which may lie in bytes parsed by an earlier
 * llhttp_execute() call; -1 when that is further back than we remember. */
static int back(const struct sl_conn *c, const char *at, size_t k)
{
    size_t in_buf = (size_t)(at - c->exec_start);

    if (k <= in_buf)
        return (unsigned char)at[-(ptrdiff_t)k];
    k -= in_buf;
    if (k > sizeof(c->hist))
        return -1;
    return (unsigned char)c->hist[sizeof(c->hist) - k];
}

static int fail(struct sl_conn *c, int status, const char *msg)
{
    if (c->perr_status == 0) {
        c->perr_status = status;
        c->perr_msg = msg;
    }
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    struct sl_conn *c = conn_of(p);

    if (c->req.gen == NULL)
        sl__req_init(&c->req, c);
    c->state = SL_CS_HEAD;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->req;

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
    struct sl_req *req = &c->req;

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
    struct sl_req *req = &c->req;

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

    c->pause = SL_PAUSE_HEAD;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->req;
    uint64_t max = conf_of(c)->max_body_bytes;

    req->body_bytes += len;
    if (max != 0 && req->body_bytes > max)
        return fail(c, 413, "the request body is larger than limits.max_body_bytes");
    if (req->up == NULL)
        return 0; /* a body nobody wants: discarded */
    if (req->chunked) {
        sl__out_printf(&req->up->out, "%zx\r\n", len);
        sl__out_slice(&req->up->out, c->rbuf, at, len);
        sl__out_copy(&req->up->out, "\r\n", 2);
    } else {
        sl__out_slice(&req->up->out, c->rbuf, at, len);
    }
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->req;

    if (p->content_length == 0) {
        /* The last chunk: header callbacks from here on are trailers. */
        req->head.in_trailers = true;
        req->head.trailers_from = req->head.n;
        req->head.last = 0;
    }
    return 0;
}

/* Trailer fields that would change framing or routing are not forwarded. */
static bool trailer_allowed(struct sl_str name)
{
    return !(sl__http_is_hop_by_hop(name) || sl_str_caseeq_lit(name, "Content-Length") ||
             sl_str_caseeq_lit(name, "Host") || sl_str_caseeq_lit(name, "Trailer") ||
             sl_str_caseeq_lit(name, "Authorization") || sl_str_caseeq_lit(name, "Cookie"));
}

static int on_message_complete(llhttp_t *p)
{
    struct sl_conn *c = conn_of(p);
    struct sl_req *req = &c->req;

    if (req->finished) {
        /* The gateway already answered this bodiless request before its
         * message was complete: on with the next one. */
        sl__req_release(req);
        c->state = SL_CS_IDLE;
        return 0;
    }
    req->body_done = true;
    if (req->chunked && req->up != NULL) {
        struct sl_out *o = &req->up->out;

        sl__out_copy(o, "0\r\n", 3);
        for (uint32_t i = req->head.trailers_from; i < req->head.n; i++) {
            struct sl_header *h = &req->head.fields[i];

            if (!trailer_allowed(h->name) || h->name.len == 0)
                continue;
            sl__out_copy(o, h->name.p, h->name.len);
            sl__out_copy(o, ": ", 2);
            sl__out_copy(o, h->value.p, h->value.len);
            sl__out_copy(o, "\r\n", 2);
        }
        sl__out_copy(o, "\r\n", 2);
    }
    c->pause = SL_PAUSE_MESSAGE;
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

/* -- validating a complete head -------------------------------------------- */

static struct sl_str find_header(void *arg, const char *name)
{
    struct sl_req *req = arg;
    struct sl_header *h = sl__head_find(&req->head, name, 0, req->head.trailers_from
                                                                 ? req->head.trailers_from
                                                                 : req->head.n);

    return h ? h->value : SL_STR_NULL;
}

static bool drop_named(struct sl_str tok, void *arg)
{
    struct sl_req *req = arg;

    if (sl_str_caseeq_lit(tok, "close") || sl_str_caseeq_lit(tok, "keep-alive") ||
        sl_str_caseeq_lit(tok, "upgrade"))
        return false;
    for (uint32_t i = 0; i < req->head.n; i++)
        if (sl_str_caseeq(req->head.fields[i].name, tok))
            req->head.fields[i].drop = true;
    return false;
}

/* Split the request-target into path and query, normalising the path.
 * Returns NULL or what is wrong with it. */
static const char *parse_target(struct sl_req *req, struct sl_str *abs_host)
{
    struct sl_str t = req->uri, path;
    const char *q;
    char *norm;
    long n;

    if (memchr(t.p, '#', t.len) != NULL)
        return "a request target must not contain a fragment";
    if (t.len > 0 && t.p[0] != '/') {
        size_t skip;

        /* absolute-form (RFC 9112 3.2.2): the authority replaces Host. */
        if (t.len > 7 && strncasecmp(t.p, "http://", 7) == 0)
            skip = 7;
        else if (t.len > 8 && strncasecmp(t.p, "https://", 8) == 0)
            skip = 8;
        else
            return "unsupported request target form";
        t.p += skip;
        t.len -= skip;
        {
            const char *slash = memchr(t.p, '/', t.len);
            size_t alen = slash ? (size_t)(slash - t.p) : t.len;

            if (memchr(t.p, '@', alen) != NULL || alen == 0)
                return "bad authority in request target";
            *abs_host = (struct sl_str){t.p, alen};
            t.p += alen;
            t.len -= alen;
            if (t.len == 0)
                t = SL_STR("/");
        }
    }
    if (t.len == 0)
        return "empty request target";
    q = memchr(t.p, '?', t.len);
    path = (struct sl_str){t.p, q ? (size_t)(q - t.p) : t.len};
    req->query = q ? (struct sl_str){q + 1, t.len - path.len - 1} : (struct sl_str){"", 0};
    norm = sl_arena_alloc(&req->arena, path.len + 2);
    if (norm == NULL)
        return "request too large";
    n = sl__http_normalize_path(path.p, path.len, norm);
    if (n < 0)
        return "the path climbs above the root";
    req->path = (struct sl_str){norm, (size_t)n};
    return NULL;
}

/* Check the head's framing and connection headers; 0 or an HTTP status. */
static int check_head(struct sl_conn *c, const char **why)
{
    struct sl_req *req = &c->req;
    llhttp_t *p = &c->parser;
    struct sl_str abs_host = SL_STR_NULL;
    struct sl_header *host = NULL;
    uint32_t n_te = 0;
    char *hostkey;

    req->method = p->method;
    req->http_minor = p->http_minor;
    req->method_s = sl_str_from(llhttp_method_name((llhttp_method_t)p->method));
    req->uri = sl__head_start_line(&req->head);
    req->head_done = true;
    sl__head_trim(&req->head);

    if (p->http_major != 1 || p->http_minor > 1) {
        *why = "only HTTP/1.0 and HTTP/1.1 are supported";
        return 505;
    }
    if (p->method == HTTP_CONNECT || p->method == HTTP_PRI || p->method > HTTP_SOURCE) {
        *why = "this method is not supported by the gateway";
        return 400;
    }
    if ((*why = parse_target(req, &abs_host)) != NULL)
        return 400;

    req->keepalive = p->http_minor == 1;
    for (uint32_t i = 0; i < req->head.n; i++) {
        struct sl_header *h = &req->head.fields[i];
        struct sl_str n = h->name;

        if (n.len == 0) {
            *why = "empty header name";
            return 400;
        }
        if (sl__http_is_hop_by_hop(n)) {
            h->drop = true;
            if (sl_str_caseeq_lit(n, "Transfer-Encoding")) {
                n_te++;
                if (!sl_str_caseeq_lit(h->value, "chunked")) {
                    *why = "only Transfer-Encoding: chunked is accepted";
                    return 400;
                }
            } else if (sl_str_caseeq_lit(n, "Connection")) {
                if (sl__http_list_has(h->value, "close"))
                    req->keepalive = false;
                else if (p->http_minor == 0 && sl__http_list_has(h->value, "keep-alive"))
                    req->keepalive = true;
            }
            continue;
        }
        switch (n.len) {
        case 4:
            if (sl_str_caseeq_lit(n, "Host")) {
                if (host != NULL) {
                    *why = "more than one Host header";
                    return 400;
                }
                host = h;
                h->drop = true;
            }
            break;
        case 6:
            if (sl_str_caseeq_lit(n, "Expect")) {
                h->drop = true;
                if (!sl_str_caseeq_lit(h->value, "100-continue")) {
                    *why = "unsupported expectation";
                    return 417;
                }
                req->expect_continue = p->http_minor == 1;
            }
            break;
        case 14:
            if (sl_str_caseeq_lit(n, "Content-Length"))
                h->drop = true; /* re-sent from the parsed value */
            break;
        case 15:
            if (sl_str_caseeq_lit(n, "X-Forwarded-For"))
                h->drop = true; /* re-sent with the client appended */
            break;
        case 16:
            if (sl_str_caseeq_lit(n, "X-Forwarded-Host"))
                h->drop = true;
            break;
        case 17:
            if (sl_str_caseeq_lit(n, "X-Forwarded-Proto"))
                h->drop = true;
            break;
        case 21:
            if (sl_str_caseeq_lit(n, "X-Client-Cert-Subject"))
                h->drop = true; /* only the gateway says who the client is */
            break;
        default:
            break;
        }
    }
    if (n_te > 1) {
        *why = "more than one Transfer-Encoding header";
        return 400;
    }
    if (n_te == 1 && p->http_minor == 0) {
        *why = "Transfer-Encoding in an HTTP/1.0 request";
        return 400;
    }
    if (n_te == 1 && !(p->flags & F_CHUNKED)) {
        *why = "bad Transfer-Encoding";
        return 400;
    }
    {
        struct sl_header *conn_hdr = sl__head_find(&req->head, "Connection", 0, req->head.n);

        if (conn_hdr != NULL)
            sl__http_tokens(conn_hdr->value, drop_named, req);
    }
    if (host == NULL && p->http_minor == 1 && abs_host.p == NULL) {
        *why = "missing Host header";
        return 400;
    }
    if (host != NULL && !sl__http_valid_host(host->value)) {
        *why = "invalid Host header";
        return 400;
    }
    if (abs_host.p != NULL && !sl__http_valid_host(abs_host)) {
        *why = "invalid authority in request target";
        return 400;
    }
    req->host_hdr = abs_host.p ? abs_host : host ? host->value : SL_STR("");
    hostkey = sl_arena_alloc(&req->arena, req->host_hdr.len + 1);
    if (hostkey == NULL) {
        *why = "request too large";
        return 431;
    }
    req->host = sl__http_host_key(req->host_hdr, hostkey);

    req->chunked = (p->flags & F_CHUNKED) != 0;
    req->content_length_set = (p->flags & F_CONTENT_LENGTH) != 0;
    req->content_length = req->content_length_set ? p->content_length : 0;
    req->has_body = req->chunked || req->content_length > 0;
    req->upgrade = p->upgrade && p->method != HTTP_CONNECT;
    if (!req->has_body)
        req->expect_continue = false;
    return 0;
}

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
    struct precheck pc = {0, conf_of(c)->max_body_bytes};
    llhttp_t probe;
    llhttp_errno_t err;

    if (!c->req.has_body || c->rbuf == NULL || c->rpos == c->rbuf->len)
        return 0;
    uv_once(&pre_once, init_pre_settings);
    probe = c->parser;
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
    struct sl_req *req = &c->req;
    const struct sl_config *conf = req->gen->conf;
    struct sl_route_query q;
    const char *why = NULL;
    int status;

    c->state = SL_CS_WAIT;
    sl__conn_set_deadline(c, 0);
    req->action = "reading client request head";
    status = check_head(c, &why);
    if (status != 0) {
        sl_log(SL_LOG_INFO, req, "bad request: %s", why);
        sl__respond_error(req, status, status == 505 ? "http_version_not_supported" :
                                       status == 417 ? "expectation_failed" : "bad_request",
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
    q = (struct sl_route_query){
        .host = req->host, .path = req->path, .method = req->method,
        .header = find_header, .arg = req,
    };
    req->route = sl__router_match(req->gen->router, &q);
    if (req->route == NULL) {
        sl__respond_error(req, 404, "no_route", "no route matches this request");
        return;
    }
    req->upstream = sl__gen_upstream(req->gen, req->route->upstream);
    req->action = "running access plugins";
    sl__req_access(req);
}

static void message_done(struct sl_conn *c)
{
    struct sl_req *req = &c->req;

    req->body_done = true;
    if (c->state == SL_CS_BODY || c->state == SL_CS_WAIT)
        c->state = SL_CS_RESPONSE;
    sl__conn_set_deadline(c, 0);
    if (req->up != NULL)
        req->action = "waiting for the upstream response";
}

static void parse_error(struct sl_conn *c, llhttp_errno_t err)
{
    struct sl_req *req = &c->req;
    int status = c->perr_status ? c->perr_status : 400;
    const char *msg = c->perr_msg;
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
                     llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser)
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
    size_t keep = sizeof(c->hist);

    if (n >= keep) {
        memcpy(c->hist, data + n - keep, keep);
    } else {
        memmove(c->hist, c->hist + n, keep - n);
        memcpy(c->hist + keep - n, data, n);
    }
}

static bool may_parse(const struct sl_conn *c)
{
    return !c->closed && (c->state == SL_CS_IDLE || c->state == SL_CS_HEAD ||
                          c->state == SL_CS_BODY);
}

static void process_once(struct sl_conn *c)
{
    struct sl_req *req = &c->req;
    const char *data = c->rbuf->data + c->rpos;
    size_t avail = c->rbuf->len - c->rpos, used;
    bool in_head = c->state != SL_CS_BODY;
    llhttp_errno_t err;

    c->exec_start = data;
    c->pause = SL_PAUSE_NONE;
    err = llhttp_execute(&c->parser, data, avail);
    used = err == HPE_OK ? avail : (size_t)(llhttp_get_error_pos(&c->parser) - data);
    if (in_head && (c->state == SL_CS_HEAD || c->pause == SL_PAUSE_HEAD)) {
        uint64_t max = conf_of(c)->max_header_bytes;

        req->head_bytes += used;
        if (c->pause == SL_PAUSE_HEAD) {
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
        if (c->pause == SL_PAUSE_HEAD) {
            head_done(c);
        } else if (c->pause == SL_PAUSE_MESSAGE) {
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

static void process(struct sl_conn *c)
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
        /* With nothing buffered there is nothing to parse, except that a
         * bodiless request paused at its head still owes llhttp's
         * on_message_complete, which a zero-length execute delivers. */
        if (c->rpos == c->rbuf->len &&
            !(c->state == SL_CS_BODY && !c->req.body_done && !c->req.has_body))
            break;
        process_once(c);
    } while (c->again && !c->closed);
    c->in_process = false;
    if (c->closed)
        return;
    /* A client that half-closed after its last complete request. */
    if (c->eof && c->state == SL_CS_IDLE && (c->rbuf == NULL || c->rpos == c->rbuf->len)) {
        close_now(c);
        return;
    }
    if (c->eof && c->state == SL_CS_HEAD) {
        close_now(c); /* truncated head */
        return;
    }
    sl__conn_update_reading(c);
}

void sl__conn_process(struct sl_conn *c)
{
    process(c);
}

/* -- reading ---------------------------------------------------------------- */

/* Room at the end of the read buffer for plaintext, which may mean moving
 * the unparsed bytes to a fresh buffer. */
static uv_buf_t plain_room(struct sl_conn *c)
{
    struct sl_buf *b = c->rbuf;

    if (b == NULL) {
        b = c->rbuf = sl__buf_get(&c->w->bufs, SL_BUF_SIZE);
        c->rpos = 0;
    } else if (c->rpos == b->len && b->refs == 1) {
        b->len = c->rpos = 0; /* all parsed and nobody else points into it */
    }
    if (b->cap - b->len < MIN_READ) {
        /* Move the unparsed bytes to a fresh buffer; writes in flight keep
         * the old one alive until they complete. */
        struct sl_buf *nb = sl__buf_get(&c->w->bufs, SL_BUF_SIZE);
        uint32_t left = b->len - c->rpos;

        memcpy(nb->data, b->data + c->rpos, left);
        nb->len = left;
        sl__buf_unref(b);
        b = c->rbuf = nb;
        c->rpos = 0;
    }
    return uv_buf_init(b->data + b->len, b->cap - b->len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    *out = plain_room(h->data);
}

static void on_eof(struct sl_conn *c)
{
    struct sl_req *req = &c->req;

    c->eof = true;
    switch (c->state) {
    case SL_CS_IDLE:
    case SL_CS_HEAD:
        process(c); /* parse what is left, then close */
        if (!c->closed && (c->state == SL_CS_IDLE || c->state == SL_CS_HEAD))
            close_now(c);
        break;
    case SL_CS_WAIT:
        /* A client may half-close after sending its request; but one that
         * is held by a plugin has gone, and frees its place at once. */
        if (req->suspended)
            sl__conn_abort(c);
        else
            sl__conn_update_reading(c);
        break;
    case SL_CS_BODY:
        process(c);
        if (!c->closed && c->state == SL_CS_BODY) {
            req->action = "reading client request body";
            sl_log(SL_LOG_INFO, req, "client closed the connection before the body was complete");
            sl__conn_abort(c);
        }
        break;
    case SL_CS_RESPONSE:
        sl__conn_update_reading(c);
        break;
    case SL_CS_TUNNEL:
        sl__tunnel_client_eof(c);
        break;
    case SL_CS_CLOSING:
        close_now(c);
        break;
    }
}

/* n bytes of plaintext were added to the read buffer. */
static void got_plain(struct sl_conn *c, size_t n)
{
    c->rbuf->len += (uint32_t)n;
    switch (c->state) {
    case SL_CS_CLOSING:
        c->rbuf->len = c->rpos; /* lingering: discard */
        return;
    case SL_CS_TUNNEL:
        sl__tunnel_client_data(c);
        return;
    case SL_CS_IDLE:
        c->state = SL_CS_HEAD;
        sl__conn_set_deadline(c, conf_of(c)->client_header_ms);
        break;
    case SL_CS_BODY:
        sl__conn_set_deadline(c, conf_of(c)->client_body_ms);
        break;
    default:
        break;
    }
    process(c);
}

static void read_failed(struct sl_conn *c, const char *why)
{
    if (c->state != SL_CS_IDLE && c->state != SL_CS_CLOSING)
        sl_log(SL_LOG_INFO, c->req.gen ? &c->req : NULL, "client connection error: %s", why);
    sl__conn_abort(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_conn *c = s->data;

    (void)buf;
    if (nread > 0)
        got_plain(c, (size_t)nread);
    else if (nread == UV_EOF)
        on_eof(c);
    else if (nread < 0)
        read_failed(c, uv_strerror((int)nread));
}

/* -- TLS ---------------------------------------------------------------------- */

static bool want_read(const struct sl_conn *c)
{
    uint32_t unparsed = c->rbuf ? c->rbuf->len - c->rpos : 0;

    if (c->closed)
        return false;
    if (c->state == SL_CS_CLOSING)
        return c->shut && !c->eof;
    return !c->eof && !c->upstream_bp && unparsed + MIN_READ <= SL_BUF_SIZE;
}

/* Run the handshake, then decrypt as much as the read buffer takes. */
static void tls_pump(struct sl_conn *c)
{
    struct sl_tls *t = c->ssl;

    if (c->pumping)
        return;
    c->pumping = true;
    if (!t->done) {
        int r = sl__tls_handshake(t);

        sl__out_flush_raw(&c->out);
        if (r < 0) {
            sl_log(SL_LOG_INFO, NULL, "TLS handshake failed: %s, client: %s", t->error, c->ip);
            close_now(c);
            goto out;
        }
        if (r == 0)
            goto out;
        if (c->tls_wg != NULL) { /* SNI is settled: the config may go */
            sl__worker_gen_release(c->w, c->tls_wg);
            c->tls_wg = NULL;
        }
    }
    while (want_read(c)) {
        uv_buf_t room = plain_room(c);
        int n = sl__tls_read(t, room.base, room.len);

        if (n > 0) {
            got_plain(c, (size_t)n);
            continue;
        }
        if (n == SL_TLS_EOF)
            on_eof(c);
        else if (n < 0)
            read_failed(c, t->error);
        break;
    }
    if (!c->closed)
        sl__out_flush_raw(&c->out);
out:
    c->pumping = false;
}

static void on_alloc_tls(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct sl_conn *c = h->data;

    (void)suggested;
    sl__tls_alloc(c->ssl, out);
}

static void on_read_tls(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_conn *c = s->data;

    (void)buf;
    if (nread > 0) {
        sl__tls_received(c->ssl, (size_t)nread);
        tls_pump(c);
    } else if (nread == UV_EOF) {
        on_eof(c);
    } else if (nread < 0) {
        read_failed(c, uv_strerror((int)nread));
    }
}

void sl__conn_update_reading(struct sl_conn *c)
{
    bool want = want_read(c);

    if (want && !c->reading) {
        int rc = c->ssl ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc_tls, on_read_tls)
                        : uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);

        if (rc == 0)
            c->reading = true;
        /* Ciphertext already received, or plaintext OpenSSL still holds
         * from a record we only partly read, may be what the reader needs. */
        if (c->ssl != NULL && sl__tls_has_input(c->ssl))
            tls_pump(c);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* -- writing and closing ---------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct sl_conn *c = sr->data;

    if (c->closed)
        return;
    if (c->state == SL_CS_TUNNEL) {
        c->shut = true; /* the tunnel's other side ended: ours follows */
        return;
    }
    if (status < 0 || c->eof) {
        close_now(c);
        return;
    }
    /* Read and discard what the client still sends for a moment, so that a
     * reset does not destroy the response before the client has read it. */
    c->shut = true;
    sl__conn_set_deadline(c, LINGER_MS);
    sl__conn_update_reading(c);
}

static void start_shutdown(struct sl_conn *c)
{
    if (c->shut || c->closed || c->shutdown_req.data != NULL)
        return;
    if (c->ssl != NULL && c->ssl->done) {
        SSL_shutdown(c->ssl->ssl); /* close_notify, written before the FIN */
        sl__out_flush_raw(&c->out);
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        close_now(c);
}

static void on_written(void *arg)
{
    struct sl_conn *c = arg;
    struct sl_req *req = &c->req;

    if (c->closed)
        return;
    if (c->out.error != 0) {
        if (req->gen != NULL && !req->finished && req->head_done) {
            req->action = "sending the response to the client";
            sl_log(SL_LOG_INFO, req, "client write failed: %s", uv_strerror(c->out.error));
        }
        sl__conn_abort(c);
        return;
    }
    if (req->up != NULL && sl__out_queued(&c->out) <= SL_OUT_LOW)
        sl__proxy_client_drained(req);
    if (c->state == SL_CS_TUNNEL)
        sl__tunnel_maybe_end(req);
    if (c->state == SL_CS_CLOSING && c->out.pending == 0)
        start_shutdown(c);
}

static void on_timer(uv_timer_t *t)
{
    struct sl_conn *c = t->data;
    uint64_t now = uv_now(&c->w->loop);
    struct sl_req *req = &c->req;

    c->timer_at = 0;
    if (c->closed || c->deadline == 0)
        return;
    if (now < c->deadline) {
        c->timer_at = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    c->deadline = 0;
    switch (c->state) {
    case SL_CS_HEAD:
        if (req->gen == NULL)
            sl__req_init(req, c);
        req->action = "reading client request head";
        sl_log(SL_LOG_INFO, req, "client sent no complete request head within timeouts.client_header");
        req->keepalive = false;
        sl__respond_error(req, 408, "request_timeout",
                          "the request head was not received in time");
        break;
    case SL_CS_BODY:
        req->action = "reading client request body";
        sl_log(SL_LOG_INFO, req, "client body timed out (timeouts.client_body)");
        if (!req->resp_started) {
            sl__proxy_abort(req);
            req->keepalive = false;
            sl__respond_error(req, 408, "request_timeout",
                              "the request body was not received in time");
        } else {
            sl__conn_abort(c);
        }
        break;
    default:
        close_now(c); /* idle keep-alive, lingering close, stalled client */
        break;
    }
}

static void on_closed(uv_handle_t *h)
{
    struct sl_conn *c = h->data;
    struct sl_worker *w = c->w;

    if (h == (uv_handle_t *)&c->tcp) {
        uv_close((uv_handle_t *)&c->timer, on_closed);
        return;
    }
    sl__out_discard(&c->out);
    if (c->rbuf != NULL)
        sl__buf_unref(c->rbuf);
    if (c->ssl != NULL) {
        sl__tls_free(c->ssl);
        free(c->ssl);
    }
    sl_arena_destroy(&c->req.arena);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    atomic_fetch_sub(&sl__conn_count, 1);
    free(c);
    sl__worker_conn_gone(w);
}

static void close_now(struct sl_conn *c)
{
    struct sl_req *req = &c->req;

    if (c->closed)
        return;
    c->closed = true;
    if (req->gen != NULL) {
        if (req->suspended)
            sl__req_cancel(req);
        sl__proxy_abort(req);
        if (req->head_done && !req->finished) {
            /* The client went away before its response was complete. */
            req->finished = true;
            if (req->status == 0 || !req->resp_started)
                req->status = 499;
            sl__req_log_phase(req);
            sl__access_log(req);
        }
        sl__req_release(req);
    }
    sl__head_free(&req->head);
    if (c->tls_wg != NULL) {
        sl__worker_gen_release(c->w, c->tls_wg);
        c->tls_wg = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void sl__conn_abort(struct sl_conn *c)
{
    close_now(c);
}

void sl__conn_shutdown_write(struct sl_conn *c)
{
    start_shutdown(c);
}

void sl__conn_close_graceful(struct sl_conn *c)
{
    if (c->closed)
        return;
    if (c->state == SL_CS_CLOSING)
        return;
    if (c->shutdown_req.data != NULL) {
        close_now(c); /* a tunnel that already shut its side down */
        return;
    }
    c->state = SL_CS_CLOSING;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    sl__conn_set_deadline(c, LINGER_MS * 5); /* a cap on flushing to a slow client */
    if (sl__out_flush(&c->out) != 0) {
        close_now(c);
        return;
    }
    if (c->out.pending == 0)
        start_shutdown(c);
}

void sl__conn_request_done(struct sl_conn *c)
{
    struct sl_req *req = &c->req;
    bool keep, body_pending = !req->body_done;

    if (req->finished || c->closed)
        return;
    req->finished = true;
    /* Flush first: bytes_out counts what was handed to the socket. */
    if (sl__out_flush(&c->out) != 0) {
        close_now(c);
        return;
    }
    sl__req_log_phase(req);
    sl__access_log(req);
    sl__proxy_release(req);

    /* A bodiless request answered before llhttp saw its end is complete;
     * one with an unread body cannot be followed by another request. */
    if (body_pending && !req->has_body && !req->upgrade && c->state != SL_CS_BODY)
        body_pending = false;
    keep = req->keepalive && !body_pending && !c->w->stopping && c->state != SL_CS_CLOSING &&
           c->state != SL_CS_TUNNEL && (!c->eof || (c->rbuf && c->rpos < c->rbuf->len));
    c->requests++;
    if (!keep) {
        sl__req_release(req);
        sl__head_free(&req->head);
        sl__conn_close_graceful(c);
        return;
    }
    llhttp_resume(&c->parser);
    if (!req->body_done) {
        /* Paused at the head of a bodiless message: llhttp still owes its
         * on_message_complete, which sees req->finished and releases it. */
        c->exec_start = c->rbuf ? c->rbuf->data + c->rpos : "";
        llhttp_execute(&c->parser, c->exec_start, 0);
    } else {
        /* Paused at the end of the message; the next one may be buffered. */
        sl__req_release(req);
    }
    c->state = SL_CS_IDLE;
    sl__head_reset(&req->head);
    sl__conn_set_deadline(c, conf_of(c)->client_idle_ms);
    process(c);
}

void sl__conn_start_body(struct sl_conn *c)
{
    struct sl_req *req = &c->req;

    if (c->closed)
        return;
    if (req->body_done) {
        /* A retry: the message was complete before the first attempt. */
        c->state = SL_CS_RESPONSE;
        return;
    }
    if (req->expect_continue) {
        sl__out_copy(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        sl__out_flush(&c->out);
    }
    c->state = SL_CS_BODY;
    req->body_started = true;
    req->action = "sending the request body upstream";
    if (req->has_body)
        sl__conn_set_deadline(c, conf_of(c)->client_body_ms);
    llhttp_resume(&c->parser);
    process(c);
}

void sl__conn_stop(struct sl_conn *c)
{
    if (c->closed)
        return;
    if (c->state == SL_CS_IDLE && (c->rbuf == NULL || c->rpos == c->rbuf->len))
        close_now(c);
    /* Busy connections close after their current response (request_done
     * sees the worker stopping) or when the shutdown timeout ends. */
}

/* -- accepting -------------------------------------------------------------- */

static void reject_cb(uv_handle_t *h)
{
    free(h);
}

/* Refuse a connection over limits.max_connections: one 503 written with a
 * non-blocking try, then close. */
static void refuse(struct sl_conn *c, uint32_t max)
{
    static atomic_uint_fast64_t seq;
    char body[200], resp[512];
    uv_buf_t b;
    int blen, rlen;

    blen = snprintf(body, sizeof(body),
                    "{\"error\": \"too_many_connections\", \"message\": \"limits.max_connections "
                    "(%u) reached\", \"request_id\": \"refused-%llx\"}\n",
                    max, (unsigned long long)atomic_fetch_add(&seq, 1));
    rlen = snprintf(resp, sizeof(resp),
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s",
                    blen, body);
    b = uv_buf_init(resp, (unsigned)rlen);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    uv_close((uv_handle_t *)&c->tcp, reject_cb);
}

void sl__conn_accept(struct sl_worker *w, uv_stream_t *server, struct sl_tls_server *tls)
{
    const struct sl_config *conf = w->wgen->gen->conf;
    struct sl_conn *c = sl__xcalloc(1, sizeof(*c));
    int len = sizeof(c->peer);

    uv_once(&settings_once, init_settings);
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, reject_cb);
        return;
    }
    if (atomic_fetch_add(&sl__conn_count, 1) >= conf->max_connections) {
        atomic_fetch_sub(&sl__conn_count, 1);
        sl_log(SL_LOG_WARN, NULL, "limits.max_connections (%u) reached: refusing a connection",
               conf->max_connections);
        refuse(c, conf->max_connections);
        return;
    }
    c->w = w;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
    sl__addr_str((struct sockaddr *)&c->peer, false, c->ip, sizeof(c->ip));
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    sl__out_init(&c->out, (uv_stream_t *)&c->tcp, &w->bufs, on_written, c);
    if (tls != NULL) {
        c->ssl = sl__xcalloc(1, sizeof(*c->ssl));
        if (sl__tls_accept(c->ssl, tls, &c->out, &w->bufs) != 0) {
            sl_log(SL_LOG_ERROR, NULL, "cannot start TLS for a connection from %s", c->ip);
            free(c->ssl);
            c->ssl = NULL;
            atomic_fetch_sub(&sl__conn_count, 1);
            uv_close((uv_handle_t *)&c->timer, NULL);
            uv_close((uv_handle_t *)&c->tcp, reject_cb);
            return;
        }
        c->tls = true;
        /* The SNI callback uses the generation's TLS config: hold it until
         * the handshake is done. */
        c->tls_wg = sl__worker_gen_acquire(w);
    }
    c->state = SL_CS_IDLE;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    sl__conn_set_deadline(c, conf->client_header_ms);
    sl__conn_update_reading(c);
}
