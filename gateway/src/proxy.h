/*
 * The upstream side of a request: choosing a target, taking a pooled
 * keep-alive connection or opening one, sending the head and streaming the
 * body, parsing the response and streaming it to the client, retries, and
 * tunnels after an Upgrade.
 */
#ifndef SL_PROXY_H
#define SL_PROXY_H

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

struct sl_req;
struct sl_worker;
struct sl_pool;
struct sl_conn;
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
    struct sl_pool *pool;            /* the pool it returns to */
    struct sl_upconn *prev, *next;   /* in the pool's idle list */
    enum sl_up_state state;
    llhttp_t parser;
    struct sl_buf *rbuf;
    uint32_t rpos;
    struct sl_out out;
    struct sl_req *req; /* while active */
    uint64_t deadline;
    uint64_t timer_at;
    bool reused;        /* served a request before this one */
    bool got_bytes;     /* some response byte arrived for this request */
    bool resp_done;
    bool resp_keepalive;
    bool skip_message;  /* inside a 1xx response we drop */
    int retry_status;   /* a 502/503/504 swallowed for a retry */
    bool reading;
    bool client_bp;     /* reading stopped: the client write queue is full */
    bool eof;
    bool shut;
    uint32_t requests;
    uv_shutdown_t shutdown_req;
    struct sl_tls *ssl; /* TLS to the target, or NULL */
};

/* Choose a target and get a connection to it; the request continues from
 * there (head sent, body streamed) or fails with 502/503. */
void sl__proxy_start(struct sl_req *req);

/* The client parser produced body bytes / the request message is complete:
 * flush them upstream and apply backpressure. */
void sl__proxy_body_flush(struct sl_req *req);

/* The request is over: return the upstream connection to its pool or close it. */
void sl__proxy_release(struct sl_req *req);

/* The client side went away: drop the upstream connection. */
void sl__proxy_abort(struct sl_req *req);

/* The client's write queue drained: resume reading the upstream. */
void sl__proxy_client_drained(struct sl_req *req);

/* Tunnel: bytes the client sent after an upgraded request head. */
void sl__tunnel_client_data(struct sl_conn *c);
void sl__tunnel_client_eof(struct sl_conn *c);

/* Both sides of a tunnel closed and everything was written: end it. */
void sl__tunnel_maybe_end(struct sl_req *req);

/* Close an idle pooled connection (pool trimming, worker stop). */
void sl__upconn_close(struct sl_upconn *uc);

#endif
