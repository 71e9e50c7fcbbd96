/*
 * A client connection: its socket, TLS state, read buffer, write queue,
 * parser, state machine (changed only through sl__conn_enter(), in
 * http/conn.h) and the request it carries. Only the type, with the accessors
 * that read it.
 */
#ifndef SL_HTTP_CONNECTION_H
#define SL_HTTP_CONNECTION_H

#include <llhttp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "http/request.h"

struct sl_config;
struct sl_worker;

enum sl_conn_state {
    SL_CS_IDLE,     /* keep-alive: waiting for a request */
    SL_CS_HEAD,     /* reading a request head */
    SL_CS_WAIT,     /* head read: plugins, balancer, upstream connect */
    SL_CS_BODY,     /* streaming the request body upstream */
    SL_CS_RESPONSE, /* request complete: response on its way */
    SL_CS_TUNNEL,   /* after an Upgrade: bytes both ways */
    SL_CS_CLOSING,  /* flushing, then lingering close */
};

/* Why the parser paused, read after llhttp_execute() returns. */
enum sl_pause {
    SL_PAUSE_NONE,
    SL_PAUSE_HEAD,    /* head complete */
    SL_PAUSE_MESSAGE, /* request message complete */
};

/*
 * What a connection needs only while it has request bytes in hand: the
 * parser and the request. Taken (sl__conn_rx()) when bytes arrive, given
 * back when the connection is idle with nothing left to parse, so an idle
 * keep-alive connection is only struct sl_conn.
 */
struct sl_conn_rx {
    llhttp_t parser;
    enum sl_pause pause;
    int perr_status; /* set by a callback that failed the request */
    const char *perr_msg;
    const char *exec_start; /* start of the bytes given to llhttp_execute() */
    char hist[8];           /* the bytes fed to the parser just before exec_start */
    bool in_version;        /* the request line's version has begun (it may come in pieces) */
    char ip[48];            /* the client's address as text (made with the rx) */
    struct sl_req req;
};

/* The client's address: TCP only, so no sockaddr_storage (128 bytes). */
union sl_peer_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct sl_conn {
    uv_tcp_t tcp; /* first: the handle's data is the connection */
    uv_timer_t timer;
    struct sl_worker *w;
    struct sl_conn *prev, *next; /* the worker's list */

    struct sl_conn_rx *rx; /* while a request is being read or served, else NULL */

    struct sl_buf *rbuf; /* bytes read; [rpos, rbuf->len) not parsed yet */
    uint32_t rpos;

    struct sl_out out;

    enum sl_conn_state state;
    uint64_t deadline; /* loop time (ms) the timer acts at; 0 = none */
    uint64_t timer_at; /* when the timer is armed for; 0 = not armed */
    bool reading;
    bool eof;
    bool closed;      /* uv_close() called */
    bool shut;        /* uv_shutdown() sent */
    bool upstream_bp; /* reading stopped: the upstream write queue is full */
    bool out_held;    /* a response head waits (briefly) for its first body bytes */
    bool in_process;
    bool again;
    bool tls;
    bool pumping;           /* inside tls_pump() */
    bool no_linger;         /* closing after a complete exchange: no shutdown, no lingering */
    bool nodelay;           /* TCP_NODELAY is set (sl__conn_nodelay()) */
    struct sl_tls *ssl;     /* TLS state, or NULL on a plain listener */
    struct sl_wgen *tls_wg; /* the config held until the handshake is done */
    uint32_t requests;
    uint64_t bytes_in;

    union sl_peer_addr peer;

    uv_shutdown_t *shutdown_req; /* once a shutdown is sent (heap) */
};

/* A request's client address as text. */
static inline const char *sl__req_ip(const struct sl_req *req)
{
    return req->conn->rx->ip;
}

/* The connection's current request, or NULL when it has none. */
static inline struct sl_req *sl__conn_req(struct sl_conn *c)
{
    return c->rx != NULL ? &c->rx->req : NULL;
}

/* The worker a request runs on, and the response bytes handed to its
 * client so far. */
static inline struct sl_worker *sl__req_worker(const struct sl_req *req)
{
    return req->conn->w;
}

static inline uint64_t sl__req_bytes_out(const struct sl_req *req)
{
    return req->conn->out.bytes - req->bytes_out_start;
}

#endif
