/*
 * A connection to an upstream target. Life: CONNECTING -> ACTIVE (one
 * request) -> IDLE in the worker's keep-alive pool -> ACTIVE again ... ->
 * CLOSED, changed only through sl__upconn_enter() (http/proxy.h). Only the
 * type: the pool and the proxy's readers include it.
 */
#ifndef SL_HTTP_UPCONN_H
#define SL_HTTP_UPCONN_H

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

struct sl_req;
struct sl_worker;
struct sl_pool;
struct sl_tls;

enum sl_up_state {
    SL_UP_CONNECTING,
    SL_UP_ACTIVE, /* serving a request */
    SL_UP_IDLE,   /* in a keep-alive pool */
    SL_UP_TUNNEL,
    SL_UP_CLOSED,
};

struct sl_upconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    struct sl_worker *w;
    struct sl_pool *pool;          /* the pool it returns to */
    struct sl_upconn *prev, *next; /* in the pool's idle list */
    enum sl_up_state state;
    llhttp_t parser;
    struct sl_buf *rbuf;
    uint32_t rpos;
    struct sl_out out;
    struct sl_req *req; /* while active */
    uint64_t deadline;
    uint64_t timer_at;
    bool reused;    /* served a request before this one */
    bool got_bytes; /* some response byte arrived for this request */
    bool resp_done;
    bool resp_keepalive;
    bool skip_message; /* inside a 1xx response (forwarded or dropped): the final one follows */
    int retry_status;  /* a 502/503/504 swallowed for a retry */
    const char *bad;   /* what a callback found wrong in the response, or NULL */
    bool reading;
    bool client_bp; /* reading stopped: the client write queue is full */
    bool eof;
    bool shut;
    uint32_t requests;
    uv_shutdown_t shutdown_req;
    struct sl_tls *ssl; /* TLS to the target, or NULL */
};

#endif
