/*
 * What the parts of sluice-origin share: its connections and workers, its
 * options and counters, and the helpers of conn.c (buffers, output,
 * closing, resuming the parser, request headers) that the files building
 * responses use too.
 */
#ifndef ORIGIN_H
#define ORIGIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <uv.h>

#include "ws.h"

enum {
    READ_SIZE = 64 * 1024, /* per-thread read buffer */
    HEAD_MAX = 16 * 1024,  /* request line plus header fields */
    HDR_MAX = 100,
};

enum route { R_DEFAULT, R_HEALTH, R_STATS, R_ECHO, R_HEADERS, R_SINK, R_WS, R_NOWS };

struct buf {
    char *p;
    size_t len, cap;
};

/* What the request asked for; reset for every request. */
struct req {
    enum route route;
    int status; /* 0: the route's own status */
    uint64_t size, delay, chunk, cut, body;
    bool query, has_size, has_cut, chunked, json, trailer, close, reset, hang;
    bool keep, http10, head, in_body;
};

/* The response being sent.  Bodies come from `src`, wrapping every
 * `period` bytes when generated, or from the request itself for /echo. */
struct resp {
    const char *src;
    char *owned;
    uint64_t left, sent, cut; /* cut: reset once this much body is out */
    size_t period, chunk, chunk_left;
    bool active, echo, discard, chunked, trailer, keep;
};

struct hdr {
    uint16_t name, nlen, val, vlen; /* offsets into conn.head */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* delay, linger or reset drain */
    uv_shutdown_t shut;
    llhttp_t parser;
    int handles; /* open handles; freed when both closed */
    bool closing, shutting, reading, paused, eof, hanging, resetting, ws;
    int err; /* status for a request we reject */
    unsigned ticks;
    struct buf pend; /* input held back while paused */
    struct buf xh;   /* response headers from ?header= */
    struct req req;
    struct resp resp;
    struct wsf wsf;
    unsigned nhdr;
    size_t hlen, url_len;
    struct hdr hdr[HDR_MAX + 1];
    char head[HEAD_MAX]; /* last: not zeroed on accept */
};

struct worker {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t stop;
    uv_thread_t tid;
    struct buf scratch;   /* response heads, used synchronously */
    char rbuf[READ_SIZE]; /* parsed before the next read, so shared */
};

struct cfg {
    const char *addr, *name;
    int port, threads;
    bool quiet, debug;
    char *hello; /* the whole default response */
    size_t hello_len;
};

extern struct cfg cfg;

/* Requests and connections seen by all workers, for /stats and the exit
 * line; counted with relaxed atomics, since only the totals matter. */
extern _Atomic uint64_t nreq, nconn;

void buf_put(struct buf *b, const void *s, size_t n);
__attribute__((format(printf, 2, 3))) void buf_fmt(struct buf *b, const char *fmt, ...);

/* Send n bufs on c in order; those flagged in keep (bit i: b[i]) are static
 * memory, the others are copied if they cannot be written at once. */
void out(struct conn *c, uv_buf_t *b, unsigned n, unsigned keep);

/* Close c at once; rst: with a TCP reset, which drops what is unsent.  c
 * is freed when its handles have closed. */
void conn_close(struct conn *c, bool rst);

/* Close c once everything queued has been written. */
void shut(struct conn *c);

/* The response that paused parsing on c is handed off: parse the input
 * held back meanwhile, and read again. */
void resume(struct conn *c);

/* Header field name of the current request (any case): true with its
 * value, trailing blanks cut, in *v and *n; false when absent. */
bool find_hdr(struct conn *c, const char *name, const char **v, size_t *n);

/* A worker's listener has a connection (uv_connection_cb): accept it on the
 * listener's loop and start reading requests. */
void on_accept(uv_stream_t *server, int status);

#endif
