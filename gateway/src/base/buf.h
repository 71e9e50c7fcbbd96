/*
 * Pooled, refcounted I/O buffers and batched writes.
 *
 * Bytes read from one socket are parsed in place and the body slices are
 * written to the other socket straight out of the read buffer: each write
 * holds a reference on the buffers it points into, and a buffer goes back to
 * its worker's pool when the last reference drops. Everything here belongs to
 * one worker loop; nothing is shared between threads.
 */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sluice/str.h"

#define SL_BUF_SIZE (32 * 1024)

struct sl_bufpool;

struct sl_buf {
    struct sl_buf *next; /* free list */
    struct sl_bufpool *pool;
    uint32_t refs;
    uint32_t cap;
    uint32_t len; /* bytes filled */
    char data[];
};

struct sl_bufpool {
    struct sl_buf *free;
    size_t n_free, max_free;
    size_t in_use; /* buffers handed out and not yet back */
    struct sl_wreq *free_wreqs;
};

void sl__bufpool_init(struct sl_bufpool *p, size_t max_free);
void sl__bufpool_destroy(struct sl_bufpool *p);

/* A buffer with one reference, len 0 and at least size bytes of room. */
struct sl_buf *sl__buf_get(struct sl_bufpool *p, size_t size);

static inline void sl__buf_ref(struct sl_buf *b)
{
    b->refs++;
}

void sl__buf_unref(struct sl_buf *b);

/*
 * Room to read into at the end of *bp, a read buffer whose bytes
 * [*pos, len) are not consumed yet. The buffer comes from pool at first; it
 * is rewound when all was consumed and no write points into it; and when
 * less than `min` bytes are left, the unconsumed bytes move to a fresh
 * buffer (writes in flight keep the old one alive until they complete).
 */
uv_buf_t sl__buf_room(struct sl_bufpool *pool, struct sl_buf **bp, uint32_t *pos, size_t min);

/*
 * Output side of a stream: slices gathered while a read is parsed, then
 * written with one uv_write(). Framing text (chunk sizes, heads) goes into a
 * buffer of its own that the batch also holds.
 */
#define SL_OUT_IOV  32
#define SL_OUT_BUFS 8

struct sl_out {
    uv_stream_t *stream;
    struct sl_bufpool *pool;
    struct sl_wreq *cur; /* batch being gathered, or NULL */
    /* After each write that had to wait in libuv's queue completes (may be
     * NULL). A write the socket takes at once is done when sl__out_flush()
     * returns, with `pending` unchanged and no callback. */
    void (*written)(void *owner);
    void *owner;
    uint32_t pending; /* uv_writes in flight */
    int error;        /* first write error, 0 if none */
    uint64_t bytes;   /* payload bytes flushed so far (before encryption) */
    /* TLS: the SSL object flushes encrypt through, and the ciphertext it
     * produced, gathered by sl__out_raw() (tls.c's BIO calls it). */
    void *tls;
    struct sl_wreq *raw;
};

void sl__out_init(struct sl_out *o, uv_stream_t *stream, struct sl_bufpool *pool,
                  void (*written)(void *), void *owner);

/* Add len bytes at p, which lie in buffer b (a reference is taken). */
void sl__out_slice(struct sl_out *o, struct sl_buf *b, const char *p, size_t len);

/* Add a copy of len bytes (small framing text, or a head). */
void sl__out_copy(struct sl_out *o, const char *p, size_t len);

/* Room for exactly len bytes of text, which the caller fills at once: one
 * call for a whole header line instead of four copies. */
char *sl__out_reserve(struct sl_out *o, size_t len);

/* "NAME: VALUE\r\n" */
void sl__out_field(struct sl_out *o, struct sl_str name, struct sl_str value);

/* An unsigned number in base 10 or 16, without printf. */
void sl__out_uint(struct sl_out *o, uint64_t v, unsigned base);

/* Add printf-formatted text. */
void sl__out_printf(struct sl_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Write what was gathered (through TLS when o->tls is set). Returns 0 or a
 * negative libuv error.
 */
int sl__out_flush(struct sl_out *o);

/* Ciphertext for the socket, bypassing TLS (tls.c's output BIO). */
void sl__out_raw(struct sl_out *o, const char *p, size_t len);

/* Write the gathered ciphertext (handshake messages, alerts). */
int sl__out_flush_raw(struct sl_out *o);

/* Drop what was gathered and not yet flushed. */
void sl__out_discard(struct sl_out *o);

/* Drop the plaintext gathered and not yet encrypted, and keep the ciphertext:
 * after a fatal TLS error nothing can be encrypted any more, and the alert
 * OpenSSL left in the ciphertext is all that may still be sent. */
void sl__out_discard_plain(struct sl_out *o);

/* Bytes queued in the kernel-facing write queue of the stream. */
static inline size_t sl__out_queued(const struct sl_out *o)
{
    return o->stream ? uv_stream_get_write_queue_size(o->stream) : 0;
}

/* Backpressure thresholds on a stream's write queue. */
#define SL_OUT_HIGH (256 * 1024)
#define SL_OUT_LOW  (64 * 1024)

#endif
