/*
 * The upstream side of a request: choosing a target, taking a pooled
 * keep-alive connection or opening one, sending the head and streaming the
 * body, and retries. The response is read and passed on to the client in
 * upstream_response.c; tunnels after an Upgrade are in tunnel.c.
 */
#ifndef SL_PROXY_H
#define SL_PROXY_H

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

#include "http/upconn.h"

/*
 * Move uc to state `to`, the only way its state changes; a transition the
 * machine does not have is a bug (SL_BUG_ON):
 *   CONNECTING -> ACTIVE -> IDLE (pooled) -> ACTIVE ... ; ACTIVE -> TUNNEL;
 *   any -> CLOSED (the end).
 */
void sl__upconn_enter(struct sl_upconn *uc, enum sl_up_state to);

/* Choose a target and get a connection to it; the request continues from
 * there (head sent, body streamed) or fails with 502/503. */
void sl__proxy_start(struct sl_req *req);

/*
 * The one way request body bytes go upstream: len bytes at `at`, which lie
 * in buffer b (a reference is taken; no copy), framed as the upstream
 * request is (chunked or not). Dropped while no upstream connection takes
 * them. sl__proxy_body_end() ends a chunked body (the trailers the header
 * policy lets through, then the last chunk).
 */
struct sl_buf;
void sl__proxy_body(struct sl_req *req, struct sl_buf *b, const char *at, size_t len);
void sl__proxy_body_end(struct sl_req *req);

/* What the client parser produced so far: flush it upstream and apply
 * backpressure. */
void sl__proxy_body_flush(struct sl_req *req);

/* The request is over: return the upstream connection to its pool or close it. */
void sl__proxy_release(struct sl_req *req);

/* The client side went away: drop the upstream connection. */
void sl__proxy_abort(struct sl_req *req);

/* The client's write queue drained: resume reading the upstream. */
void sl__proxy_client_drained(struct sl_req *req);

/* Close an idle pooled connection (pool trimming, worker stop). */
void sl__upconn_close(struct sl_upconn *uc);

/* -- for upstream_response.c and tunnel.c ---------------------------------- */

/* How an attempt on a target failed, which decides whether it is retried. */
enum sl_fail {
    SL_FAIL_CONNECT,  /* no connection: nothing was sent */
    SL_FAIL_RESET,    /* closed or reset before any response byte */
    SL_FAIL_TIMEOUT,  /* no response within timeouts.read */
    SL_FAIL_STATUS,   /* answered 502/503/504, and a retry was granted */
    SL_FAIL_PROTOCOL, /* an invalid response */
};

/* May an attempt that failed this way be retried on another target? A yes
 * to a retry that repeats work spends the upstream's retry budget. */
bool sl__proxy_may_retry(struct sl_req *req, enum sl_fail kind);

/* The attempt on req->up failed (fmt: what happened, for the log): close
 * that connection, then retry elsewhere or answer 502/504; once the response
 * has started, abort the client connection instead. */
void sl__proxy_attempt_failed(struct sl_req *req, enum sl_fail kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* req->up is connected (and its TLS handshake done): send the request head,
 * then stream the body. */
void sl__proxy_send_request(struct sl_req *req);

/* Time uc out ms from now (0: no deadline); what that means depends on its
 * state (on_up_timer). */
void sl__upconn_set_deadline(struct sl_upconn *uc, uint64_t ms);

/* Re-arm the timer of an active connection for what it waits for now. */
void sl__upconn_touch(struct sl_upconn *uc);

#endif
