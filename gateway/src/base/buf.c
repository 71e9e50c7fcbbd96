/*
 * Buffers and gathered writes.
 */
#include "base/buf.h"

#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct sl_wreq {
    uv_write_t req;
    struct sl_out *out;
    struct sl_wreq *next; /* free list */
    struct sl_buf *bufs[SL_OUT_BUFS];
    uint32_t n_bufs;
    struct sl_buf *text; /* framing and heads, copied */
    uv_buf_t iov[SL_OUT_IOV];
    uint32_t n_iov;
};

void sl__bufpool_init(struct sl_bufpool *p, size_t max_free)
{
    memset(p, 0, sizeof(*p));
    p->max_free = max_free;
}

void sl__bufpool_destroy(struct sl_bufpool *p)
{
    struct sl_buf *b, *nb;
    struct sl_wreq *w, *nw;

    for (b = p->free; b; b = nb) {
        nb = b->next;
        free(b);
    }
    for (w = p->free_wreqs; w; w = nw) {
        nw = w->next;
        free(w);
    }
    p->free = NULL;
    p->free_wreqs = NULL;
    p->n_free = 0;
}

struct sl_buf *sl__buf_get(struct sl_bufpool *p, size_t size)
{
    struct sl_buf *b;

    if (size <= SL_BUF_SIZE && p->free != NULL) {
        b = p->free;
        p->free = b->next;
        p->n_free--;
    } else {
        size_t cap = size <= SL_BUF_SIZE ? SL_BUF_SIZE : size;

        b = sl__xmalloc(sizeof(*b) + cap);
        b->cap = (uint32_t)cap;
        b->pool = p;
    }
    b->next = NULL;
    b->refs = 1;
    b->len = 0;
    p->in_use++;
    return b;
}

void sl__buf_unref(struct sl_buf *b)
{
    struct sl_bufpool *p = b->pool;

    SL_BUG_ON(b->refs == 0);
    if (--b->refs > 0)
        return;
    p->in_use--;
    if (b->cap == SL_BUF_SIZE && p->n_free < p->max_free) {
        b->next = p->free;
        p->free = b;
        p->n_free++;
        return;
    }
    free(b);
}

uv_buf_t sl__buf_room(struct sl_bufpool *pool, struct sl_buf **bp, uint32_t *pos, size_t min)
{
    struct sl_buf *b = *bp;

    if (b == NULL) {
        b = *bp = sl__buf_get(pool, SL_BUF_SIZE);
        *pos = 0;
    } else if (*pos == b->len && b->refs == 1) {
        b->len = *pos = 0;
    }
    if (b->cap - b->len < min) {
        struct sl_buf *nb = sl__buf_get(pool, SL_BUF_SIZE);
        uint32_t left = b->len - *pos;

        memcpy(nb->data, b->data + *pos, left);
        nb->len = left;
        sl__buf_unref(b);
        b = *bp = nb;
        *pos = 0;
    }
    return uv_buf_init(b->data + b->len, b->cap - b->len);
}

void sl__out_init(struct sl_out *o, uv_stream_t *stream, struct sl_bufpool *pool,
                  void (*written)(void *), void *owner)
{
    memset(o, 0, sizeof(*o));
    o->stream = stream;
    o->pool = pool;
    o->written = written;
    o->owner = owner;
}

static struct sl_wreq *new_wreq(struct sl_out *o)
{
    struct sl_wreq *w;

    if (o->pool->free_wreqs != NULL) {
        w = o->pool->free_wreqs;
        o->pool->free_wreqs = w->next;
    } else {
        w = sl__xmalloc(sizeof(*w));
    }
    w->out = o;
    w->n_bufs = 0;
    w->n_iov = 0;
    w->text = NULL;
    return w;
}

static struct sl_wreq *batch(struct sl_out *o)
{
    if (o->cur == NULL)
        o->cur = new_wreq(o);
    return o->cur;
}

static void release(struct sl_wreq *w)
{
    struct sl_bufpool *pool = w->out->pool;

    for (uint32_t i = 0; i < w->n_bufs; i++)
        sl__buf_unref(w->bufs[i]);
    if (w->text != NULL)
        sl__buf_unref(w->text);
    w->next = pool->free_wreqs;
    pool->free_wreqs = w;
}

/* The batch to add to, with room for at least one more iovec. */
static struct sl_wreq *room(struct sl_out *o)
{
    struct sl_wreq *w = batch(o);

    if (w->n_iov == SL_OUT_IOV) {
        sl__out_flush(o);
        w = batch(o);
    }
    return w;
}

/* Append an iovec to w (which has room), merging with the previous one when
 * the bytes are contiguous. */
static void push_iov(struct sl_wreq *w, const char *p, size_t len)
{
    if (w->n_iov > 0) {
        uv_buf_t *last = &w->iov[w->n_iov - 1];

        if (last->base + last->len == p) {
            last->len += len;
            return;
        }
    }
    w->iov[w->n_iov++] = uv_buf_init((char *)p, (unsigned)len);
}

void sl__out_slice(struct sl_out *o, struct sl_buf *b, const char *p, size_t len)
{
    struct sl_wreq *w;
    uint32_t i;

    if (len == 0)
        return;
    w = room(o);
    for (i = 0; i < w->n_bufs; i++)
        if (w->bufs[i] == b)
            break;
    if (i == w->n_bufs) {
        if (w->n_bufs == SL_OUT_BUFS) {
            sl__out_flush(o);
            w = batch(o);
        }
        sl__buf_ref(b);
        w->bufs[w->n_bufs++] = b;
    }
    push_iov(w, p, len);
}

char *sl__out_reserve(struct sl_out *o, size_t len)
{
    struct sl_wreq *w = o->cur;
    struct sl_buf *t;
    char *p;

    /* The common case first: more text right after the last text. */
    if (w != NULL && (t = w->text) != NULL && t->cap - t->len >= len && w->n_iov > 0 &&
        w->iov[w->n_iov - 1].base + w->iov[w->n_iov - 1].len == t->data + t->len) {
        p = t->data + t->len;
        w->iov[w->n_iov - 1].len += (unsigned)len;
        t->len += (uint32_t)len;
        return p;
    }
    w = room(o);
    t = w->text;
    if (t != NULL && t->cap - t->len < len) {
        /* The text buffer is full: send what we have and start over. */
        sl__out_flush(o);
        w = batch(o);
        t = NULL;
    }
    if (t == NULL)
        t = w->text = sl__buf_get(o->pool, len);
    p = t->data + t->len;
    push_iov(w, p, len);
    t->len += (uint32_t)len;
    return p;
}

void sl__out_copy(struct sl_out *o, const char *p, size_t len)
{
    if (len != 0)
        memcpy(sl__out_reserve(o, len), p, len);
}

void sl__out_field(struct sl_out *o, struct sl_str name, struct sl_str value)
{
    char *p = sl__out_reserve(o, name.len + value.len + 4);

    memcpy(p, name.p, name.len);
    p += name.len;
    *p++ = ':';
    *p++ = ' ';
    if (value.len != 0)
        memcpy(p, value.p, value.len);
    p += value.len;
    *p++ = '\r';
    *p = '\n';
}

void sl__out_uint(struct sl_out *o, uint64_t v, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[24], *e = tmp + sizeof(tmp), *p = e;

    do {
        *--p = digits[v % base];
        v /= base;
    } while (v != 0);
    sl__out_copy(o, p, (size_t)(e - p));
}

void sl__out_printf(struct sl_out *o, const char *fmt, ...)
{
    char tmp[512], *big;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        sl__out_copy(o, tmp, (size_t)n);
        return;
    }
    big = sl__xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sl__out_copy(o, big, (size_t)n);
    free(big);
}

static void write_cb(uv_write_t *req, int status)
{
    struct sl_wreq *w = SL_CONTAINER_OF(req, struct sl_wreq, req);
    struct sl_out *o = w->out;

    o->pending--;
    if (status < 0 && o->error == 0)
        o->error = status;
    release(w);
    if (o->written != NULL)
        o->written(o->owner);
}

/* Drop the first n written bytes from w's iovecs; true if nothing is left. */
static bool skip_written(struct sl_wreq *w, size_t n)
{
    uint32_t i = 0;

    while (i < w->n_iov && n >= w->iov[i].len)
        n -= w->iov[i++].len;
    if (i == w->n_iov)
        return true;
    w->iov[i].base += n;
    w->iov[i].len -= n;
    memmove(w->iov, w->iov + i, (w->n_iov - i) * sizeof(w->iov[0]));
    w->n_iov -= i;
    return false;
}

static int submit(struct sl_out *o, struct sl_wreq *w)
{
    int rc;

    if (w->n_iov == 0) {
        release(w);
        return 0;
    }
    if (o->error != 0) {
        release(w);
        return o->error;
    }
    /*
     * With nothing queued ahead, write at once and hand libuv only what the
     * socket did not take. A uv_write() that completes at once is not free
     * in libuv 1.44: draining its queue re-arms the watcher with an
     * epoll_ctl() even though nothing changed, one per write (two per
     * proxied request). uv_try_write() refuses (EAGAIN) while a connect or
     * an earlier write is pending, so the order of bytes holds; an error is
     * left to uv_write() to report through write_cb like any other.
     */
    if (o->pending == 0) {
        rc = uv_try_write(o->stream, w->iov, w->n_iov);
        if (rc > 0 && skip_written(w, (size_t)rc)) {
            release(w);
            return 0;
        }
    }
    rc = uv_write(&w->req, o->stream, w->iov, w->n_iov, write_cb);
    if (rc < 0) {
        o->error = rc;
        release(w);
        return rc;
    }
    o->pending++;
    return 0;
}

void sl__out_raw(struct sl_out *o, const char *p, size_t len)
{
    while (len > 0) {
        struct sl_wreq *w = o->raw;
        struct sl_buf *t;
        size_t n;

        if (w == NULL)
            w = o->raw = new_wreq(o);
        t = w->n_bufs ? w->bufs[w->n_bufs - 1] : NULL;
        if (t == NULL || t->len == t->cap) {
            if (w->n_bufs == SL_OUT_BUFS) {
                sl__out_flush_raw(o);
                continue;
            }
            t = sl__buf_get(o->pool, SL_BUF_SIZE);
            w->bufs[w->n_bufs++] = t;
            w->iov[w->n_iov++] = uv_buf_init(t->data, 0);
        }
        n = SL_MIN(len, (size_t)(t->cap - t->len));
        memcpy(t->data + t->len, p, n);
        t->len += (uint32_t)n;
        w->iov[w->n_iov - 1].len += n;
        p += n;
        len -= n;
    }
}

int sl__out_flush_raw(struct sl_out *o)
{
    struct sl_wreq *w = o->raw;

    if (w == NULL)
        return o->error;
    o->raw = NULL;
    return submit(o, w);
}

/*
 * Encrypt a batch: the ciphertext lands in o->raw through tls.c's BIO, and
 * the plaintext buffers are free as soon as SSL_write() returns. Small
 * pieces (a response head, a short body, chunk framing) are gathered into
 * full records first, as nginx's ssl_buffer_size does: one record per piece
 * would cost an encryption and 22 bytes of overhead each.
 */
#define RECORD 16384

static void encrypt(struct sl_out *o, struct sl_wreq *w)
{
    char stage[RECORD];
    size_t staged = 0;

    for (uint32_t i = 0; i < w->n_iov && o->error == 0; i++) {
        const char *p = w->iov[i].base;
        size_t len = w->iov[i].len;

        while (len > 0 && o->error == 0) {
            size_t n;

            if (staged == 0 && len >= RECORD) {
                /* A full record straight from the buffer, no copy. */
                n = len - len % RECORD;
                if (SSL_write(o->tls, p, (int)n) <= 0)
                    o->error = UV_EPROTO;
            } else {
                n = SL_MIN(len, RECORD - staged);
                memcpy(stage + staged, p, n);
                staged += n;
                if (staged == RECORD) {
                    if (SSL_write(o->tls, stage, RECORD) <= 0)
                        o->error = UV_EPROTO;
                    staged = 0;
                }
            }
            p += n;
            len -= n;
        }
    }
    if (staged > 0 && o->error == 0 && SSL_write(o->tls, stage, (int)staged) <= 0)
        o->error = UV_EPROTO;
}

int sl__out_flush(struct sl_out *o)
{
    struct sl_wreq *w = o->cur;

    if (w == NULL)
        return o->tls ? sl__out_flush_raw(o) : 0;
    o->cur = NULL;
    for (uint32_t i = 0; i < w->n_iov; i++)
        o->bytes += w->iov[i].len;
    if (o->tls == NULL)
        return submit(o, w);
    encrypt(o, w);
    release(w);
    return sl__out_flush_raw(o);
}

void sl__out_discard_plain(struct sl_out *o)
{
    if (o->cur != NULL) {
        release(o->cur);
        o->cur = NULL;
    }
}

void sl__out_discard(struct sl_out *o)
{
    sl__out_discard_plain(o);
    if (o->raw != NULL) {
        release(o->raw);
        o->raw = NULL;
    }
}
