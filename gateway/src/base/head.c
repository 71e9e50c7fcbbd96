/*
 * Message heads from llhttp pieces.
 */
#include "base/head.h"

#include <string.h>

#include "base/util.h"

void sl__head_reset(struct sl_head *h)
{
    h->len = 0;
    h->start_off = h->start_len = 0;
    h->fields = NULL; /* the arena it lived in was reset with the request */
    h->n = h->cap = 0;
    h->trailers_from = 0;
    h->last = 0;
    h->in_trailers = false;
}

void sl__head_free(struct sl_head *h)
{
    if (h->buf != NULL)
        sl__buf_unref(h->buf);
    h->buf = NULL;
    sl__head_reset(h);
}

static char *room(struct sl_head *h, struct sl_bufpool *pool, size_t len)
{
    char *p;

    if (h->buf == NULL)
        h->buf = sl__buf_get(pool, h->max);
    if (len > h->max - h->len || len > h->buf->cap - h->len)
        return NULL;
    p = h->buf->data + h->len;
    h->len += (uint32_t)len;
    return p;
}

int sl__head_start(struct sl_head *h, struct sl_bufpool *pool, const char *at, size_t len)
{
    char *p = room(h, pool, len);

    if (p == NULL)
        return -1;
    if (h->start_len == 0)
        h->start_off = (uint32_t)(p - h->buf->data);
    memcpy(p, at, len);
    h->start_len += (uint32_t)len;
    return 0;
}

struct sl_header *sl__head_new_field(struct sl_head *h, struct sl_arena *a)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        struct sl_header *nf = sl_arena_alloc(a, cap * sizeof(*nf));

        if (nf == NULL)
            return NULL;
        if (h->n)
            memcpy(nf, h->fields, h->n * sizeof(*nf));
        h->fields = nf;
        h->cap = cap;
    }
    return &h->fields[h->n++];
}

int sl__head_name(struct sl_head *h, struct sl_bufpool *pool, struct sl_arena *a, const char *at,
                  size_t len)
{
    char *p = room(h, pool, len);
    struct sl_header *f;

    if (p == NULL)
        return -1;
    memcpy(p, at, len);
    if (h->last != 1) {
        if ((f = sl__head_new_field(h, a)) == NULL)
            return -1;
        f->name = (struct sl_str){p, 0};
        f->value = (struct sl_str){p + len, 0}; /* an empty value stays valid */
        f->drop = false;
        h->last = 1;
    }
    h->fields[h->n - 1].name.len += len;
    return 0;
}

int sl__head_value(struct sl_head *h, struct sl_bufpool *pool, const char *at, size_t len)
{
    char *p = room(h, pool, len);
    struct sl_header *f;

    if (p == NULL || h->n == 0)
        return -1;
    memcpy(p, at, len);
    f = &h->fields[h->n - 1];
    if (h->last != 2)
        f->value = (struct sl_str){p, 0};
    f->value.len += len;
    h->last = 2;
    return 0;
}

void sl__head_trim(struct sl_head *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        struct sl_str *v = &h->fields[i].value;

        while (v->len > 0 && (v->p[v->len - 1] == ' ' || v->p[v->len - 1] == '\t'))
            v->len--;
    }
}

static bool trailer_allowed(struct sl_str name)
{
    return name.len > 0 && !sl__http_is_hop_by_hop(name) &&
           !sl_str_caseeq_lit(name, "Content-Length") && !sl_str_caseeq_lit(name, "Host") &&
           !sl_str_caseeq_lit(name, "Trailer") && !sl_str_caseeq_lit(name, "Authorization") &&
           !sl_str_caseeq_lit(name, "Cookie") && !sl_str_caseeq_lit(name, "Set-Cookie");
}

void sl__head_end_chunked(struct sl_out *o, const struct sl_head *h, sl_head_keep_fn *keep,
                          const void *arg)
{
    sl__out_copy(o, "0\r\n", 3);
    for (uint32_t i = h->in_trailers ? h->trailers_from : h->n; i < h->n; i++) {
        const struct sl_header *f = &h->fields[i];

        if (!trailer_allowed(f->name) || (keep != NULL && !keep(f->name, arg)))
            continue;
        sl__out_copy(o, f->name.p, f->name.len);
        sl__out_copy(o, ": ", 2);
        sl__out_copy(o, f->value.p, f->value.len);
        sl__out_copy(o, "\r\n", 2);
    }
    sl__out_copy(o, "\r\n", 2);
}

struct sl_header *sl__head_find(struct sl_head *h, const char *name, uint32_t from, uint32_t to)
{
    size_t len = strlen(name);

    for (uint32_t i = from; i < to && i < h->n; i++)
        if (h->fields[i].name.len == len && strncasecmp(h->fields[i].name.p, name, len) == 0)
            return &h->fields[i];
    return NULL;
}
