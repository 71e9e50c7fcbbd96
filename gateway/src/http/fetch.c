/*
 * HTTP(S) requests the gateway makes itself (sluice/fetch.h): one request
 * per connection (Connection: close), on the caller's loop. The pieces are
 * the ones the proxy's upstream connections use: libuv for DNS and TCP, the
 * TLS layer's BIOs (tls/io.h) over our write queue (base/buf.h), llhttp for
 * the response. Certificates are always verified for https; the name in
 * the URL must match the certificate (or its IP address, for a literal).
 */
#include "sluice/fetch.h"

#include <llhttp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "tls/io.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_BODY   (1024 * 1024)
#define MIN_READ           4096

struct sl_fetch {
    uv_loop_t *loop;
    sl_fetch_done_fn *done;
    void *arg;
    bool canceled, finished;
    int open_handles; /* tcp, timer: freed when both closed */

    char *host; /* as in the URL, brackets stripped */
    char port[8];
    bool https;
    char *request; /* the request bytes */
    size_t request_len;
    size_t max_body;

    uv_getaddrinfo_t dns;
    bool resolving;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t timer;
    struct sl_bufpool pool;
    struct sl_out out;
    struct sl_buf *rbuf;
    uint32_t rpos;
    SSL_CTX *ctx;
    struct sl_tls tls;
    bool tls_on;

    llhttp_t parser;
    llhttp_settings_t settings;
    struct sl_sbuf body;
    struct sl_sbuf field; /* the header field being read */
    bool in_cache_control;
    bool too_large;
    struct sl_fetch_result result;
};

/* -- URLs ------------------------------------------------------------------ */

struct url {
    bool https;
    const char *host; /* into buf */
    char port[8];
    const char *path; /* "/..." with the query, into the URL */
    char buf[256];
};

static int parse_url(const char *s, struct url *u)
{
    const char *h, *end, *colon;
    size_t hlen;

    if (strncmp(s, "https://", 8) == 0) {
        u->https = true;
        h = s + 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        u->https = false;
        h = s + 7;
    } else {
        return -1;
    }
    end = h + strcspn(h, "/?#");
    u->path = *end == '\0' || *end == '#' ? "/" : end;
    /* No user:password@ (the gateway never sends credentials in a URL). */
    if (memchr(h, '@', (size_t)(end - h)) != NULL)
        return -1;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));

        if (rb == NULL)
            return -1;
        hlen = (size_t)(rb - h - 1);
        if (hlen == 0 || hlen >= sizeof(u->buf))
            return -1;
        memcpy(u->buf, h + 1, hlen);
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hlen = (size_t)((colon ? colon : end) - h);
        if (hlen == 0 || hlen >= sizeof(u->buf))
            return -1;
        memcpy(u->buf, h, hlen);
    }
    u->buf[hlen] = '\0';
    u->host = u->buf;
    if (colon != NULL) {
        size_t plen = (size_t)(end - colon - 1);

        if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen ||
            atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
            return -1;
        memcpy(u->port, colon + 1, plen);
        u->port[plen] = '\0';
    } else {
        strcpy(u->port, u->https ? "443" : "80");
    }
    if (strchr(u->path, '#') != NULL || strpbrk(u->path, " \r\n") != NULL ||
        strpbrk(u->host, " \r\n/") != NULL)
        return -1;
    return 0;
}

bool sl_fetch_url_ok(const char *url)
{
    struct url u;

    return parse_url(url, &u) == 0;
}

bool sl_fetch_url_is_loopback(const char *url)
{
    struct url u;
    struct in_addr a4;
    struct in6_addr a6;

    if (parse_url(url, &u) != 0)
        return false;
    if (strcmp(u.host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, u.host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, u.host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* -- the end ----------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    struct sl_fetch *f = h->data;

    if (--f->open_handles > 0)
        return;
    sl__out_discard(&f->out);
    if (f->rbuf != NULL)
        sl__buf_unref(f->rbuf);
    if (f->tls_on)
        sl__tls_free(&f->tls);
    if (f->ctx != NULL)
        SSL_CTX_free(f->ctx);
    sl__bufpool_destroy(&f->pool);
    sl__sbuf_free(&f->body);
    sl__sbuf_free(&f->field);
    free(f->host);
    /* The request may hold credentials (an introspection's Basic). */
    if (f->request != NULL)
        OPENSSL_cleanse(f->request, f->request_len);
    free(f->request);
    free(f);
}

static void close_all(struct sl_fetch *f)
{
    if (f->resolving) {
        /* The DNS request ends in on_resolved(), which closes what is left. */
        uv_cancel((uv_req_t *)&f->dns);
        return;
    }
    uv_timer_stop(&f->timer);
    if (!uv_is_closing((uv_handle_t *)&f->timer))
        uv_close((uv_handle_t *)&f->timer, on_closed);
    if (!uv_is_closing((uv_handle_t *)&f->tcp))
        uv_close((uv_handle_t *)&f->tcp, on_closed);
}

/* Report once (unless canceled) and let go of everything. */
static void finish(struct sl_fetch *f, const char *error)
{
    if (f->finished)
        return;
    f->finished = true;
    if (!f->canceled) {
        f->result.error = error;
        if (error != NULL)
            f->result.status = f->result.status ? f->result.status : 0;
        f->result.body = f->body.p ? f->body.p : "";
        f->result.body_len = f->body.len;
        f->done(f->arg, &f->result);
    }
    close_all(f);
}

void sl_fetch_cancel(struct sl_fetch *f)
{
    f->canceled = true;
    finish(f, "canceled");
}

static void on_timeout(uv_timer_t *t)
{
    finish(t->data, "timed out");
}

/* -- the response ------------------------------------------------------------- */

static struct sl_fetch *fetch_of(llhttp_t *p)
{
    return p->data;
}

static int on_field(llhttp_t *p, const char *at, size_t len)
{
    struct sl_fetch *f = fetch_of(p);

    if (f->in_cache_control || f->field.len > 64)
        f->field.len = 0; /* a new field, or one too long to matter */
    f->in_cache_control = false;
    sl__sbuf_add(&f->field, at, len);
    return 0;
}

/* Cache-Control: ..., max-age=N, ... */
static int on_value(llhttp_t *p, const char *at, size_t len)
{
    struct sl_fetch *f = fetch_of(p);
    const char *m, *end = at + len;

    if (!f->in_cache_control) {
        f->in_cache_control =
            f->field.len == 13 && strncasecmp(f->field.p, "Cache-Control", 13) == 0;
        f->field.len = 0;
    }
    if (!f->in_cache_control)
        return 0;
    for (m = at; m + 8 <= end; m++) {
        if (strncasecmp(m, "max-age=", 8) == 0) {
            uint64_t v = 0;
            const char *d = m + 8;

            while (d < end && *d >= '0' && *d <= '9' && v < 100000000)
                v = v * 10 + (uint64_t)(*d++ - '0');
            if (d > m + 8) {
                f->result.has_max_age = true;
                f->result.max_age_s = v;
            }
        }
    }
    return 0;
}

static int on_headers(llhttp_t *p)
{
    struct sl_fetch *f = fetch_of(p);

    f->in_cache_control = false;
    f->result.status = p->status_code;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct sl_fetch *f = fetch_of(p);

    if (f->body.len + len > f->max_body) {
        f->too_large = true;
        return -1;
    }
    sl__sbuf_add(&f->body, at, len);
    f->body.p[f->body.len] = '\0'; /* sl__sbuf_add keeps room for it */
    return 0;
}

static int on_complete(llhttp_t *p)
{
    struct sl_fetch *f = fetch_of(p);

    if (f->result.status >= 100 && f->result.status < 200) {
        f->result.status = 0; /* an interim response: the final one follows */
        return 0;
    }
    if (f->body.p == NULL)
        sl__sbuf_add(&f->body, "", 0);
    finish(f, NULL);
    return HPE_PAUSED;
}

/* Bytes of response in f->rbuf from f->rpos: parse them. */
static void parse(struct sl_fetch *f)
{
    llhttp_errno_t err;

    if (f->finished)
        return;
    err = llhttp_execute(&f->parser, f->rbuf->data + f->rpos, f->rbuf->len - f->rpos);
    f->rpos = f->rbuf->len;
    if (err != HPE_OK && err != HPE_PAUSED && !f->finished)
        finish(f, f->too_large ? "the response is too large" : "the response is not valid HTTP");
}

static void got_eof(struct sl_fetch *f)
{
    if (f->finished)
        return;
    llhttp_finish(&f->parser); /* completes a body delimited by the close */
    finish(f, f->result.status ? "the response was cut short"
                               : "the server closed the connection without a response");
}

/* -- reading and TLS ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct sl_fetch *f = h->data;

    (void)suggested;
    if (f->tls_on)
        sl__tls_alloc(&f->tls, out);
    else
        *out = sl__buf_room(&f->pool, &f->rbuf, &f->rpos, MIN_READ);
}

/* Run the handshake (then send the request), then decrypt and parse. */
static void tls_pump(struct sl_fetch *f)
{
    if (!f->tls.done) {
        int r = sl__tls_handshake(&f->tls);

        sl__out_flush_raw(&f->out);
        if (r < 0) {
            finish(f, f->tls.error[0] ? f->tls.error : "the TLS handshake failed");
            return;
        }
        if (r == 0)
            return;
        sl__out_copy(&f->out, f->request, f->request_len);
        if (sl__out_flush(&f->out) != 0) {
            finish(f, "could not send the request");
            return;
        }
    }
    while (!f->finished) {
        uv_buf_t room = sl__buf_room(&f->pool, &f->rbuf, &f->rpos, MIN_READ);
        int n = sl__tls_read(&f->tls, room.base, room.len);

        if (n > 0) {
            f->rbuf->len += (uint32_t)n;
            parse(f);
            continue;
        }
        if (n == SL_TLS_EOF)
            got_eof(f);
        else if (n < 0)
            finish(f, f->tls.error[0] ? f->tls.error : "TLS error");
        break;
    }
    if (!f->finished)
        sl__out_flush_raw(&f->out);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_fetch *f = s->data;

    (void)buf;
    if (f->finished)
        return;
    if (nread > 0) {
        if (f->tls_on) {
            sl__tls_received(&f->tls, (size_t)nread);
            tls_pump(f);
        } else {
            f->rbuf->len += (uint32_t)nread;
            parse(f);
        }
    } else if (nread == UV_EOF) {
        got_eof(f);
    } else if (nread < 0) {
        finish(f, uv_strerror((int)nread));
    }
}

static void on_written(void *arg)
{
    struct sl_fetch *f = arg;

    if (f->out.error != 0 && !f->finished)
        finish(f, "could not send the request");
}

/* -- connecting ------------------------------------------------------------------ */

static SSL_CTX *client_ctx(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int start_tls(struct sl_fetch *f)
{
    SSL *ssl = SSL_new(f->ctx);
    unsigned char ip[16];
    bool literal = inet_pton(AF_INET, f->host, ip) == 1 || inet_pton(AF_INET6, f->host, ip) == 1;

    if (ssl == NULL || sl__tls_attach(&f->tls, ssl, &f->out, &f->pool) != 0)
        return -1;
    f->tls_on = true;
    SSL_set_connect_state(ssl);
    if (literal) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), f->host);
    } else {
        SSL_set_tlsext_host_name(ssl, f->host);
        SSL_set1_host(ssl, f->host);
    }
    return 0;
}

static void on_connect(uv_connect_t *cr, int status)
{
    struct sl_fetch *f = cr->data;

    if (f->finished)
        return;
    if (status < 0) {
        finish(f, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&f->tcp, 1);
    if (uv_read_start((uv_stream_t *)&f->tcp, on_alloc, on_read) != 0) {
        finish(f, "cannot read from the connection");
        return;
    }
    if (f->https) {
        if (start_tls(f) != 0) {
            finish(f, "cannot start TLS");
            return;
        }
        tls_pump(f);
        return;
    }
    sl__out_copy(&f->out, f->request, f->request_len);
    if (sl__out_flush(&f->out) != 0)
        finish(f, "could not send the request");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct sl_fetch *f = req->data;
    int rc;

    f->resolving = false;
    if (f->finished || status < 0) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        if (!f->finished)
            finish(f, uv_strerror(status));
        else
            close_all(f);
        return;
    }
    f->connect.data = f;
    rc = uv_tcp_connect(&f->connect, &f->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc != 0)
        finish(f, uv_strerror(rc));
}

/* The caller's header lines name Accept themselves. */
static bool has_accept(const char *h)
{
    while (h != NULL && *h != '\0') {
        if (strncasecmp(h, "Accept:", 7) == 0)
            return true;
        h = strstr(h, "\r\n");
        if (h != NULL)
            h += 2;
    }
    return false;
}

/* The request's bytes: the line, Host, ours and the caller's headers, body. */
static char *request_text(const struct sl_fetch_opts *o, const struct url *u, size_t *len)
{
    struct sl_sbuf b = {0};
    bool default_port = strcmp(u->port, u->https ? "443" : "80") == 0;
    bool v6 = strchr(u->host, ':') != NULL;

    sl__sbuf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n", o->method ? o->method : "GET",
                    u->path, v6 ? "[" : "", u->host, v6 ? "]" : "", default_port ? "" : ":",
                    default_port ? "" : u->port);
    sl__sbuf_lit(&b, "User-Agent: sluice\r\nConnection: close\r\n");
    if (!has_accept(o->headers))
        sl__sbuf_lit(&b, "Accept: */*\r\n");
    if (o->headers != NULL)
        sl__sbuf_lit(&b, o->headers);
    if (o->body != NULL || (o->method != NULL && strcmp(o->method, "POST") == 0))
        sl__sbuf_printf(&b, "Content-Length: %zu\r\n", o->body ? o->body_len : 0);
    sl__sbuf_lit(&b, "\r\n");
    if (o->body != NULL)
        sl__sbuf_add(&b, o->body, o->body_len);
    *len = b.len;
    return b.p;
}

struct sl_fetch *sl_fetch(uv_loop_t *loop, const struct sl_fetch_opts *o, sl_fetch_done_fn *done,
                          void *arg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct sl_fetch *f;
    struct url u;

    if (o->url == NULL || parse_url(o->url, &u) != 0 ||
        (o->headers != NULL && strstr(o->headers, "\r\n\r\n") != NULL))
        return NULL;
    f = sl__xcalloc(1, sizeof(*f));
    f->https = u.https;
    if (f->https && (f->ctx = client_ctx(o->ca_file)) == NULL) {
        free(f);
        return NULL;
    }
    f->loop = loop;
    f->done = done;
    f->arg = arg;
    f->host = sl__xstrdup(u.host);
    memcpy(f->port, u.port, sizeof(f->port));
    f->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    f->request = request_text(o, &u, &f->request_len);
    sl__bufpool_init(&f->pool, 4);
    uv_tcp_init(loop, &f->tcp);
    f->tcp.data = f;
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    f->open_handles = 2;
    sl__out_init(&f->out, (uv_stream_t *)&f->tcp, &f->pool, on_written, f);
    llhttp_settings_init(&f->settings);
    f->settings.on_header_field = on_field;
    f->settings.on_header_value = on_value;
    f->settings.on_headers_complete = on_headers;
    f->settings.on_body = on_body;
    f->settings.on_message_complete = on_complete;
    llhttp_init(&f->parser, HTTP_RESPONSE, &f->settings);
    f->parser.data = f;
    uv_timer_start(&f->timer, on_timeout, o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS, 0);
    f->dns.data = f;
    f->resolving = true;
    if (uv_getaddrinfo(loop, &f->dns, on_resolved, f->host, f->port, &hints) != 0) {
        f->resolving = false;
        f->finished = true; /* the caller hears NULL, not the callback */
        close_all(f);
        return NULL;
    }
    return f;
}
