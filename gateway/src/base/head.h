/*
 * Accumulating a message head from llhttp's pieces.
 *
 * llhttp hands over the URL, status text and header fields in pieces that may
 * straddle reads, and the read buffer they point into may be recycled before
 * the head is complete. The pieces are copied into one buffer of fixed
 * capacity (the head size limit), which never moves, so the struct sl_str
 * values built from it stay valid until the head is reset.
 */
#ifndef SL_HEAD_H
#define SL_HEAD_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/arena.h"

#include "base/buf.h"
#include "base/http.h"

struct sl_head {
    struct sl_buf *buf; /* from the worker pool; NULL until the first byte */
    uint32_t max;       /* capacity: bytes of text allowed */
    uint32_t len;
    uint32_t start_off, start_len; /* URL (request) or reason (response) */
    struct sl_header *fields;      /* arena array */
    uint32_t n, cap;
    uint32_t trailers_from; /* fields[trailers_from..n) are trailers */
    uint8_t last;           /* 0 nothing, 1 a name piece, 2 a value piece */
    bool in_trailers;
};

/* Make h empty; keeps its buffer. */
void sl__head_reset(struct sl_head *h);

/* Give the buffer back to its pool. */
void sl__head_free(struct sl_head *h);

/*
 * Append a piece of the start line's variable part (URL or reason phrase),
 * a header name or a header value. The field array grows in arena a. Return
 * 0, or -1 when the head would exceed its capacity (or the arena is full).
 */
int sl__head_start(struct sl_head *h, struct sl_bufpool *pool, const char *at, size_t len);
int sl__head_name(struct sl_head *h, struct sl_bufpool *pool, struct sl_arena *a, const char *at,
                  size_t len);
int sl__head_value(struct sl_head *h, struct sl_bufpool *pool, const char *at, size_t len);

/* A new field at the end of h's array (grown in arena a), uninitialised;
 * NULL when the arena is full. */
struct sl_header *sl__head_new_field(struct sl_head *h, struct sl_arena *a);

/* The URL or reason phrase gathered so far. */
static inline struct sl_str sl__head_start_line(const struct sl_head *h)
{
    return (struct sl_str){h->buf ? h->buf->data + h->start_off : "", h->start_len};
}

/* Trim trailing whitespace from every value (llhttp keeps it). */
void sl__head_trim(struct sl_head *h);

/*
 * End a chunked body on o: the last chunk, then those of h's trailer fields
 * that may cross the gateway, then the blank line. Fields that decide
 * framing, routing or authentication (RFC 9110 6.5.1) are not forwarded as
 * trailers, in either direction; when keep is not NULL, a field must also
 * pass keep(name, arg) (the request side's header policy).
 */
typedef bool sl_head_keep_fn(struct sl_str name, const void *arg);
void sl__head_end_chunked(struct sl_out *o, const struct sl_head *h, sl_head_keep_fn *keep,
                          const void *arg);

/* First header called name among fields[0..n), or NULL. */
struct sl_header *sl__head_find(struct sl_head *h, const char *name, uint32_t from, uint32_t to);

#endif
