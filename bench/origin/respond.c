/*
 * sluice-origin's responses: the head, bodies generated from a pattern or
 * held in memory, plain or chunked with a trailer, and what the query asks
 * of them: ?status, ?delay, ?close, ?reset, ?reset_after and ?hang.  Bodies
 * are handed to libuv only while its write queue is short, so memory stays
 * flat whatever size is asked for.  ?json=1 makes the body JSON: cut from a
 * 64 KiB document (an array of records with varied values, compressible
 * about as much as an API's answers are), repeated past 64 KiB.
 */
#include "respond.h"

#include <inttypes.h>
#include <linux/sockios.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <llhttp.h>
#include <uv.h>

#include "echo.h"
#include "origin.h"

enum {
    PIECE = 64 * 1024,       /* largest single body write */
    PERIOD = 26,             /* generated bodies repeat "a".."z" */
    PUMP_HIGH = 256 * 1024,  /* generate body only below this queue */
    CHUNK = 16 * 1024,       /* default chunk size for ?chunked=1 */
    JSON_PERIOD = 64 * 1024, /* ?json=1 bodies repeat this document */
};

/* Generated bodies are sliced from here at their offset modulo PERIOD, so
 * it runs PERIOD bytes past one PIECE for a write to start anywhere. */
static char pattern[PIECE + PERIOD];
static char json_doc[PIECE + JSON_PERIOD];

/* A JSON array of exactly JSON_PERIOD bytes: records whose values come
 * from a fixed LCG (the same bytes every run), padded with spaces. */
static void json_init(void)
{
    static const char *const names[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
    uint32_t x = 2463534242u;
    size_t n = 1, room = JSON_PERIOD - 2;

    json_doc[0] = '[';
    for (unsigned i = 0;; i++) {
        char rec[256];
        int len;

        x = x * 1664525u + 1013904223u;
        len = snprintf(
            rec, sizeof rec,
            "%s{\"id\":%u,\"user\":\"%s%u\",\"email\":\"%s%u@example.com\","
            "\"active\":%s,\"score\":%u.%02u,\"created\":\"2026-%02u-%02uT%02u:%02u:00Z\"}",
            i ? "," : "", 100000 + i, names[x % 6], (x >> 8) % 1000, names[(x >> 3) % 6],
            (x >> 12) % 1000, (x >> 20) & 1 ? "true" : "false", (x >> 9) % 100, (x >> 16) % 100,
            1 + (x >> 4) % 12, 1 + (x >> 14) % 28, (x >> 18) % 24, (x >> 22) % 60);
        if (n + (size_t)len > room)
            break;
        memcpy(json_doc + n, rec, (size_t)len);
        n += (size_t)len;
    }
    memset(json_doc + n, ' ', JSON_PERIOD - 1 - n);
    json_doc[JSON_PERIOD - 1] = ']';
    for (size_t k = JSON_PERIOD; k < sizeof json_doc; k++)
        json_doc[k] = json_doc[k - JSON_PERIOD];
}

void respond_init(void)
{
    for (size_t k = 0; k < sizeof pattern; k++)
        pattern[k] = 'a' + k % PERIOD;
    json_init();
}

static const char *reason(int status)
{
    static const struct {
        int code;
        const char *text;
    } tab[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {418, "I'm a teapot"},
        {421, "Misdirected Request"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].code == status)
            return tab[i].text;
    return "Unknown";
}

/* A reset throws away what the kernel has not delivered, so wait until
 * the peer has acknowledged every byte (SIOCOUTQ), for up to ~2 s. */
static void on_reset_tick(uv_timer_t *t)
{
    struct conn *c = t->data;
    int fd, unacked = 0;
    bool busy = c->tcp.write_queue_size > 0;

    if (!busy && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &unacked) == 0)
        busy = unacked > 0;
    if (busy && ++c->ticks < 2000)
        return;
    conn_close(c, true);
}

/* Start a new response, dropping whatever the previous one owned. */
void resp_reset(struct resp *r)
{
    free(r->owned);
    memset(r, 0, sizeof *r);
    r->cut = NO_LEN;
}

bool bodyless(int status)
{
    return status == 204 || status == 304;
}

void send_head(struct conn *c, int status, const char *ctype, uint64_t clen)
{
    struct buf *h = &((struct worker *)c->tcp.loop->data)->scratch;
    struct resp *r = &c->resp;

    h->len = 0;
    buf_fmt(h, "HTTP/1.1 %d %s\r\nX-Origin: %s\r\n", status, reason(status), cfg.name);
    if (!bodyless(status)) {
        buf_fmt(h, "Content-Type: %s\r\n", ctype);
        if (r->chunked)
            buf_fmt(h, "Transfer-Encoding: chunked\r\n%s",
                    r->trailer ? "Trailer: X-Checksum\r\n" : "");
        else if (clen != NO_LEN)
            buf_fmt(h, "Content-Length: %" PRIu64 "\r\n", clen);
        else
            r->keep = false; /* the body ends when the connection does */
    }
    if (r->echo)
        buf_fmt(h, "X-Request-Method: %s\r\n", llhttp_method_name(c->parser.method));
    buf_put(h, c->xh.p, c->xh.len);
    if (!r->keep)
        buf_fmt(h, "Connection: close\r\n");
    else if (c->req.http10)
        buf_fmt(h, "Connection: keep-alive\r\n");
    buf_put(h, "\r\n", 2);

    uv_buf_t b = uv_buf_init(h->p, h->len);
    out(c, &b, 1, 0);
}

/* Send n body bytes.  When chunked, `start` opens a chunk of that size
 * and `end` closes the current one; pump splits large chunks. */
void body_out(struct conn *c, const char *p, size_t n, bool stable, size_t start, bool end)
{
    char hex[24];
    uv_buf_t b[3];
    unsigned nb = 0, keep = 0;

    if (start)
        b[nb++] = uv_buf_init(hex, snprintf(hex, sizeof hex, "%zx\r\n", start));
    keep |= (unsigned)stable << nb;
    b[nb++] = uv_buf_init((char *)p, n);
    if (end) {
        keep |= 1u << nb;
        b[nb++] = uv_buf_init("\r\n", 2);
    }
    c->resp.sent += n;
    out(c, b, nb, keep);
}

/* The body is complete: terminate it and move on to the next request. */
void finish(struct conn *c)
{
    struct resp *r = &c->resp;

    if (r->chunked) {
        char t[64];
        int n = r->trailer ? snprintf(t, sizeof t, "0\r\nX-Checksum: %" PRIu64 "\r\n\r\n", r->sent)
                           : snprintf(t, sizeof t, "0\r\n\r\n");
        uv_buf_t b = uv_buf_init(t, n);
        out(c, &b, 1, 0);
    }
    r->active = r->echo = false;
    free(r->owned);
    r->owned = NULL;
    if (!r->keep)
        shut(c);
    else if (c->paused)
        resume(c);
}

/* Hand body to libuv until the queue is comfortably full; on_write calls
 * back in as it drains, which is what keeps a 1 GiB response at 256 KiB. */
void pump(struct conn *c)
{
    struct resp *r = &c->resp;

    while (r->left > 0 && r->sent != r->cut && !c->closing && c->tcp.write_queue_size < PUMP_HIGH) {
        size_t n = r->left < PIECE ? r->left : PIECE, start = 0;
        if (n > r->cut - r->sent)
            n = r->cut - r->sent;
        if (r->chunked) {
            if (r->chunk_left == 0)
                start = r->chunk_left = r->left < r->chunk ? r->left : r->chunk;
            if (n > r->chunk_left)
                n = r->chunk_left;
            r->chunk_left -= n;
        }
        /* A body the response owns is freed when it finishes, maybe before
         * its write does: copy it (it is small); static bodies are not. */
        body_out(c, r->src + (r->period ? r->sent % r->period : r->sent), n, r->owned == NULL,
                 start, r->chunked && r->chunk_left == 0);
        r->left -= n;
    }
    if (c->closing)
        return;
    if (r->sent == r->cut) {
        r->active = false;
        c->resetting = true;
        uv_timer_start(&c->timer, on_reset_tick, 0, 1);
    } else if (r->left == 0) {
        finish(c);
    }
}

/* Decide the body for the request just completed; it is sent by
 * respond(), now or after ?delay. */
void prepare(struct conn *c)
{
    struct req *q = &c->req;
    struct resp *r = &c->resp;
    struct buf j = {0};

    resp_reset(r);
    switch (q->route) {
    case R_HEALTH:
        r->src = "ok\n";
        break;
    case R_NOWS:
        r->src = "websocket upgrade required\n";
        break;
    case R_STATS:
    case R_SINK:
    case R_HEADERS:
        echo_report(c, &j);
        break;
    default:
        if (q->json) {
            r->src = json_doc;
            r->period = JSON_PERIOD;
            r->left = q->has_size ? q->size : JSON_PERIOD;
        } else if (q->has_size) {
            r->src = pattern;
            r->period = PERIOD;
            r->left = q->size;
        } else {
            r->src = "Hello, world!";
        }
    }
    if (j.p)
        r->src = r->owned = j.p, r->left = j.len;
    else if (!r->period)
        r->left = strlen(r->src);
    if (q->has_cut) {
        /* Promise more than we will send, from the pattern if need be. */
        if (r->left <= q->cut) {
            r->src = pattern, r->period = PERIOD, r->left = q->cut + 1;
            free(r->owned);
            r->owned = NULL;
        }
        r->cut = q->cut;
    }
}

void respond(struct conn *c)
{
    struct req *q = &c->req;
    struct resp *r = &c->resp;
    int status = q->status ? q->status : q->route == R_NOWS ? 426 : 200;

    if (q->reset) {
        conn_close(c, true);
        return;
    }
    if (q->hang) {
        c->hanging = true;
        return;
    }
    r->keep = q->keep;
    r->chunked = q->chunked && !q->http10 && !bodyless(status);
    r->chunk = q->chunk ? q->chunk : CHUNK;
    r->trailer = q->trailer && r->chunked;
    send_head(c, status,
              (q->route == R_DEFAULT && !q->json) || q->route == R_HEALTH || q->route == R_NOWS
                  ? "text/plain"
                  : "application/json",
              r->left);
    if (q->head || bodyless(status))
        r->left = 0, r->chunked = false;
    r->active = true;
    pump(c);
}

void reject(struct conn *c)
{
    struct resp *r = &c->resp;
    int status = c->err ? c->err : 400;

    if (r->active) { /* mid-response: nothing sane left to say */
        conn_close(c, false);
        return;
    }
    resp_reset(r);
    r->src = status == 431 ? "request header too large\n" : "bad request\n";
    r->left = strlen(r->src);
    c->xh.len = 0;
    send_head(c, status, "text/plain", r->left);
    r->active = true;
    pump(c);
}

void on_delay(uv_timer_t *t)
{
    /* If this completes synchronously, finish() resumes parsing. */
    respond(t->data);
}
