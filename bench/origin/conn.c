/*
 * sluice-origin's connections: buffers, output with backpressure, closing
 * (at once, with a reset, or gracefully with a linger), the request parser
 * (llhttp callbacks, the query string, the route), and reading and
 * accepting.  Responses are built in respond.c; /echo, /headers, /sink and
 * /stats in echo.c; the WebSocket echo (/ws) is in ws.c; the options, the
 * listeners and the workers are in main.c.
 */
#include "origin.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>
#include <uv.h>

#include "echo.h"
#include "respond.h"
#include "ws.h"

enum {
    WQ_HIGH = 1024 * 1024,  /* stop reading above this queue... */
    WQ_LOW = 256 * 1024,    /* ...and start again below this one */
    PEND_MAX = 1024 * 1024, /* pipelined input we hold while busy */
    LINGER_MS = 2000,
};

struct wreq {
    uv_write_t req;
    struct conn *c;
    char data[]; /* copies of the caller's transient bytes */
};

_Atomic uint64_t nreq, nconn;

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b);
static void update_reading(struct conn *c);

/* ---- small helpers ---------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fputs("sluice-origin: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void buf_reserve(struct buf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    b->cap = b->cap ? b->cap : 256;
    while (b->cap < b->len + n)
        b->cap *= 2;
    b->p = xrealloc(b->p, b->cap);
}

void buf_put(struct buf *b, const void *s, size_t n)
{
    if (n == 0)
        return;
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

__attribute__((format(printf, 2, 3))) void buf_fmt(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    buf_reserve(b, 128);
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, room, fmt, ap);
        va_end(ap);
        if ((size_t)n < room) {
            b->len += n;
            return;
        }
        buf_reserve(b, n + 1);
    }
}

/* ---- output ----------------------------------------------------------- */

/* Send bufs in order.  A synchronous write is tried first: on an idle
 * socket it usually takes everything and costs no allocation.  What is
 * left goes to uv_write; bufs not flagged in `keep` (static memory) are
 * copied, since callers build framing on the stack and request bytes live
 * in the shared read buffer. */
void out(struct conn *c, uv_buf_t *b, unsigned n, unsigned keep)
{
    uv_stream_t *s = (uv_stream_t *)&c->tcp;

    if (c->closing)
        return;
    if (c->tcp.write_queue_size == 0) {
        int r = uv_try_write(s, b, n);
        if (r < 0 && r != UV_EAGAIN)
            goto fail;
        size_t skip = r > 0 ? (size_t)r : 0;
        while (n > 0 && skip >= b->len) {
            skip -= b->len;
            b++, n--, keep >>= 1;
        }
        if (n == 0)
            return;
        b->base += skip;
        b->len -= skip;
    }

    size_t copy = 0;
    for (unsigned i = 0; i < n; i++)
        if (!(keep >> i & 1))
            copy += b[i].len;
    struct wreq *w = xrealloc(NULL, sizeof *w + copy);
    char *d = w->data;
    for (unsigned i = 0; i < n; i++) {
        if (!(keep >> i & 1)) {
            memcpy(d, b[i].base, b[i].len);
            b[i].base = d;
            d += b[i].len;
        }
    }
    w->c = c;
    if (uv_write(&w->req, s, b, n, on_write) == 0)
        return;
    free(w);
fail:
    conn_close(c, false);
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;

    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c, false);
        return;
    }
    if (c->resp.active && !c->resp.echo)
        pump(c);
    update_reading(c);
}

/* Read while there is room: the write queue bounds echo and pipelining
 * clients that do not read, `pend` bounds input held while paused. */
static void update_reading(struct conn *c)
{
    size_t wq = c->tcp.write_queue_size;
    bool want = !c->eof &&
                (c->shutting || (c->pend.len < PEND_MAX && wq <= (c->reading ? WQ_HIGH : WQ_LOW)));

    if (c->closing || want == c->reading)
        return;
    if (want)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = want;
}

/* ---- connection teardown ---------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->handles > 0)
        return;
    free(c->pend.p);
    free(c->xh.p);
    free(c->resp.owned);
    free(c);
}

void conn_close(struct conn *c, bool rst)
{
    if (c->closing)
        return;
    c->closing = true;
    if (!rst || uv_tcp_close_reset(&c->tcp, on_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void on_linger(uv_timer_t *t)
{
    conn_close(t->data, false);
}

static void on_shut(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;

    if (status < 0 || c->eof) {
        conn_close(c, false);
        return;
    }
    /* Closing with unread input makes the kernel send RST, which can
     * destroy the response before the client reads it: drain until EOF,
     * for a while. */
    uv_timer_start(&c->timer, on_linger, LINGER_MS, 0);
    update_reading(c);
}

/* Close gracefully once everything queued has been written. */
void shut(struct conn *c)
{
    if (c->closing || c->shutting)
        return;
    c->shutting = true;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shut) != 0)
        conn_close(c, false);
}

/* ---- request parsing -------------------------------------------------- */

bool find_hdr(struct conn *c, const char *name, const char **v, size_t *n)
{
    for (unsigned i = 0; i < c->nhdr; i++) {
        struct hdr *h = &c->hdr[i];
        if (h->nlen == strlen(name) && !strncasecmp(c->head + h->name, name, h->nlen)) {
            *v = c->head + h->val;
            *n = h->vlen;
            while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
                (*n)--;
            return true;
        }
    }
    return false;
}

static int head_put(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = p->data;

    if (c->req.in_body)
        return 0; /* trailer fields are not recorded */
    if (n > HEAD_MAX - c->hlen || c->nhdr >= HDR_MAX) {
        c->err = 431;
        return -1;
    }
    memcpy(c->head + c->hlen, at, n);
    c->hlen += n;
    return 0;
}

static int on_begin(llhttp_t *p)
{
    struct conn *c = p->data;

    memset(&c->req, 0, sizeof c->req);
    c->xh.len = c->hlen = c->url_len = 0;
    c->nhdr = 0;
    c->hdr[0].name = 0;
    return 0;
}

static int on_url_done(llhttp_t *p)
{
    struct conn *c = p->data;

    c->url_len = c->hdr[0].name = c->hlen;
    return 0;
}

static int on_field_done(llhttp_t *p)
{
    struct conn *c = p->data;
    struct hdr *h = &c->hdr[c->nhdr];

    if (!c->req.in_body) {
        h->nlen = c->hlen - h->name;
        h->val = c->hlen;
    }
    return 0;
}

static int on_value_done(llhttp_t *p)
{
    struct conn *c = p->data;

    if (!c->req.in_body) {
        c->hdr[c->nhdr].vlen = c->hlen - c->hdr[c->nhdr].val;
        c->hdr[++c->nhdr].name = c->hlen;
    }
    return 0;
}

/* Parse a count with an optional binary suffix: 64k, 10m, 1g. */
static bool num(const char *s, bool suffix, uint64_t *v)
{
    char *end;
    int shift = 0;

    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    *v = strtoull(s, &end, 10);
    if (errno)
        return false;
    if (suffix && *end) {
        switch (tolower((unsigned char)*end++)) {
        case 'k':
            shift = 10;
            break;
        case 'm':
            shift = 20;
            break;
        case 'g':
            shift = 30;
            break;
        default:
            return false;
        }
    }
    if (*end || *v > UINT64_MAX >> shift)
        return false;
    *v <<= shift;
    return true;
}

static size_t unescape(char *d, const char *s, const char *end)
{
    char *start = d;

    for (; s < end; s++) {
        if (*s == '%' && end - s > 2 && isxdigit((unsigned char)s[1]) &&
            isxdigit((unsigned char)s[2])) {
            char hex[3] = {s[1], s[2], 0};
            *d++ = strtol(hex, NULL, 16);
            s += 2;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
    return d - start;
}

/* ?header=Name:Value, validated so a test cannot split our response. */
static bool add_header(struct buf *xh, const char *v, size_t n)
{
    const char *colon = memchr(v, ':', n), *end = v + n, *val;

    if (!colon || colon == v)
        return false;
    for (const char *s = v; s < colon; s++)
        if (!isalnum((unsigned char)*s) && !(*s && strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    for (val = colon + 1; val < end && (*val == ' ' || *val == '\t'); val++)
        ;
    for (const char *s = val; s < end; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;
    buf_put(xh, v, colon - v);
    buf_put(xh, ": ", 2);
    buf_put(xh, val, end - val);
    buf_put(xh, "\r\n", 2);
    return true;
}

static bool parse_query(struct conn *c, const char *s, const char *end)
{
    struct req *q = &c->req;
    char v[HEAD_MAX];
    uint64_t x = 0;

    for (const char *e; s < end; s = e + 1) {
        e = memchr(s, '&', end - s);
        e = e ? e : end;
        const char *eq = memchr(s, '=', e - s);
        size_t kn = (eq ? eq : e) - s, vn = eq ? unescape(v, eq + 1, e) : 0;
        bool on = !eq || strcmp(v, "0") != 0;
        bool ok = true;
#define KEY(k) (kn == sizeof k - 1 && !memcmp(s, k, kn))
        if (KEY("size"))
            ok = num(v, true, &q->size), q->has_size = true;
        else if (KEY("status"))
            ok = num(v, false, &x) && x >= 200 && x <= 599, q->status = x;
        else if (KEY("delay"))
            ok = num(v, false, &q->delay);
        else if (KEY("chunked"))
            q->chunked = on;
        else if (KEY("json"))
            q->json = on;
        else if (KEY("chunk"))
            ok = num(v, true, &q->chunk) && q->chunk > 0;
        else if (KEY("trailer"))
            q->trailer = on;
        else if (KEY("header"))
            ok = add_header(&c->xh, v, vn);
        else if (KEY("close"))
            q->close = on;
        else if (KEY("reset"))
            q->reset = on;
        else if (KEY("hang"))
            q->hang = on;
        else if (KEY("reset_after"))
            ok = num(v, true, &q->cut), q->has_cut = true;
#undef KEY
        if (!ok)
            return false;
    }
    return true;
}

static enum route route_of(const char *path, size_t n, bool upgrade)
{
    static const struct {
        const char *path;
        enum route route;
    } tab[] = {
        {"/healthz", R_HEALTH},  {"/stats", R_STATS}, {"/echo", R_ECHO},
        {"/headers", R_HEADERS}, {"/sink", R_SINK},   {"/ws", R_WS},
    };

    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strlen(tab[i].path) == n && !memcmp(path, tab[i].path, n))
            return tab[i].route != R_WS || upgrade ? tab[i].route : R_NOWS;
    return R_DEFAULT;
}

static void log_req(struct conn *c)
{
    fprintf(stderr, "REQ %" PRIu64 " %s %.*s\n", uv_hrtime() / 1000,
            llhttp_method_name(c->parser.method), (int)c->url_len, c->head);
    fflush(stderr);
}

static int on_headers(llhttp_t *p)
{
    struct conn *c = p->data;
    struct req *q = &c->req;
    const char *url = c->head, *qs = memchr(url, '?', c->url_len);
    const char *v;
    size_t n;

    atomic_fetch_add_explicit(&nreq, 1, memory_order_relaxed);
    if (cfg.debug)
        log_req(c);
    q->in_body = true;
    q->http10 = p->http_major == 1 && p->http_minor == 0;
    q->head = p->method == HTTP_HEAD;
    q->route = route_of(url, qs ? (size_t)(qs - url) : c->url_len, p->upgrade);
    q->query = qs != NULL;
    if (qs && !parse_query(c, qs + 1, url + c->url_len))
        return -1;
    q->keep = llhttp_should_keep_alive(p) && !q->close;

    /* Clients holding a large body until told to go ahead (curl waits a
     * second) would stall every upload test. */
    if (!q->http10 && (p->flags & F_CHUNKED || p->content_length > 0) &&
        find_hdr(c, "expect", &v, &n) && n == 12 && !strncasecmp(v, "100-continue", 12)) {
        uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
        out(c, &b, 1, 1);
    }
    if (q->route == R_ECHO)
        echo_start(c);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    struct resp *r = &c->resp;

    c->req.body += n;
    if (r->echo && !r->discard)
        body_out(c, at, n, false, r->chunked ? n : 0, r->chunked);
    return 0;
}

static int on_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    struct req *q = &c->req;

    if (q->route == R_WS) {
        ws_accept(c); /* llhttp now returns HPE_PAUSED_UPGRADE */
        return c->shutting ? HPE_PAUSED : 0;
    }
    if (q->route == R_ECHO) {
        finish(c);
    } else if (q->route == R_DEFAULT && !q->query && q->keep && !q->http10 && !q->head) {
        /* The hot path: one precomputed buffer, usually one write(). */
        uv_buf_t b = uv_buf_init(cfg.hello, cfg.hello_len);
        out(c, &b, 1, 1);
    } else {
        prepare(c);
        if (q->delay) {
            uv_timer_start(&c->timer, on_delay, q->delay, 0);
            c->paused = true;
            return HPE_PAUSED;
        }
        respond(c);
    }
    /* Pipelined requests wait until this response is fully handed off. */
    c->paused = c->resp.active || c->hanging || c->resetting;
    return c->paused || c->closing || c->shutting ? HPE_PAUSED : 0;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_begin,
    .on_url = head_put,
    .on_header_field = head_put,
    .on_header_value = head_put,
    .on_url_complete = on_url_done,
    .on_header_field_complete = on_field_done,
    .on_header_value_complete = on_value_done,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* Parse input; returns how much was consumed, which is less than n when
 * a response is in progress and pipelined requests must wait. */
static size_t feed(struct conn *c, char *p, size_t n)
{
    size_t done = 0;

    while (done < n && !c->paused && !c->closing && !c->shutting) {
        if (c->ws) {
            ws_feed(c, p + done, n - done);
            return n;
        }
        llhttp_errno_t e = llhttp_execute(&c->parser, p + done, n - done);
        if (e == HPE_OK)
            return n;
        done = llhttp_get_error_pos(&c->parser) - p;
        if (e == HPE_PAUSED_UPGRADE && !c->ws)
            llhttp_resume_after_upgrade(&c->parser); /* not ours: stay HTTP */
        else if (e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE)
            reject(c);
    }
    return done;
}

/* The peer will send nothing more. */
static void at_eof(struct conn *c)
{
    if (c->shutting)
        return; /* on_shut sees c->eof */
    if (c->ws || c->hanging || (!c->paused && llhttp_finish(&c->parser) != HPE_OK))
        conn_close(c, false);
    else if (!c->paused)
        shut(c); /* flush the responses, then close */
}

void resume(struct conn *c)
{
    c->paused = false;
    llhttp_resume(&c->parser);
    size_t n = feed(c, c->pend.p, c->pend.len);
    if (c->closing)
        return;
    if (n > 0) {
        c->pend.len -= n;
        memmove(c->pend.p, c->pend.p + n, c->pend.len);
    }
    if (c->eof)
        at_eof(c);
    update_reading(c);
}

/* ---- reading and accepting -------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    struct worker *w = h->loop->data;

    (void)size;
    *b = uv_buf_init(w->rbuf, sizeof w->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (n == 0)
        return;
    if (n < 0) {
        c->reading = false; /* libuv stops reading at EOF */
        if (n != UV_EOF || c->shutting) {
            conn_close(c, false);
        } else {
            c->eof = true;
            at_eof(c);
        }
        return;
    }
    if (c->shutting)
        return; /* lingering: discard */
    size_t done = c->paused ? 0 : feed(c, b->base, n);
    if (done < (size_t)n && !c->closing && !c->shutting)
        buf_put(&c->pend, b->base + done, n - done);
    update_reading(c);
}

void on_accept(uv_stream_t *server, int status)
{
    struct conn *c;

    if (status < 0)
        return;
    c = xrealloc(NULL, sizeof *c);
    memset(c, 0, offsetof(struct conn, head));
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, false);
        return;
    }
    atomic_fetch_add_explicit(&nconn, 1, memory_order_relaxed);
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    update_reading(c);
}
