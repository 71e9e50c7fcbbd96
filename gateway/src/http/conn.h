/*
 * Client connections: accepting, reading requests (parsed and checked in
 * request_parse.c), keep-alive and pipelining, timeouts, and writing
 * responses back.
 *
 * A connection handles one request at a time; pipelined requests wait in its
 * read buffer and are answered in order. Its parser is paused whenever the
 * request must wait (plugins, upstream connect) and resumed to stream the
 * body once the upstream is ready.
 */
#ifndef SL_CONN_H
#define SL_CONN_H

#include <llhttp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http/connection.h"
#include "http/req.h"

struct sl_tls_server;

/* Accept a connection from server on worker w; tls: the listener's TLS
 * config (the generation's), or NULL for plain HTTP. */
void sl__conn_accept(struct sl_worker *w, uv_stream_t *server, struct sl_tls_server *tls);

/*
 * The upstream is ready for the body: send "100 Continue" if the client
 * asked, then stream the body (or notice its absence) through the parser.
 */
void sl__conn_start_body(struct sl_conn *c);

/* Recompute whether to read from the client (backpressure, buffer space). */
void sl__conn_update_reading(struct sl_conn *c);

/*
 * The request is over (response complete, or answered by the gateway): run
 * the LOG phase, then go on with the next request or close.
 */
void sl__conn_request_done(struct sl_conn *c);

/* Close after flushing what is queued, lingering to read what the client sends. */
void sl__conn_close_graceful(struct sl_conn *c);

/* Send FIN once queued writes are out (the other side of a tunnel ended). */
void sl__conn_shutdown_write(struct sl_conn *c);

/* Close now, dropping whatever is queued. */
void sl__conn_abort(struct sl_conn *c);

/*
 * Move c to state `to`. The only way a connection's state changes: a
 * transition the state machine does not have is a bug (SL_BUG_ON), caught
 * where it happens instead of as a stuck or misparsed connection later.
 *
 *   IDLE -> HEAD -> WAIT -> BODY -> RESPONSE -> IDLE ...  (keep-alive)
 *   WAIT -> RESPONSE (no body to stream), WAIT/BODY/RESPONSE -> TUNNEL,
 *   WAIT/BODY/RESPONSE -> IDLE (answered early), any -> CLOSING (the end).
 */
void sl__conn_enter(struct sl_conn *c, enum sl_conn_state to);

/*
 * The upstream's write queue is full (on) or drained (off): stop or resume
 * reading the client's request body. While stopped, the client is not held
 * to timeouts.client_body (it waits for the upstream, whose send timeout
 * watches the stall).
 */
void sl__conn_upstream_backpressure(struct sl_conn *c, bool on);

/*
 * Hold what is queued for the client for at most ms (a response head whose
 * body has not come yet) instead of flushing it now, so that the head and
 * the first body bytes go out together: one write and, over TLS, one
 * record (nginx's postpone_output does this by size). Any flush of c->out
 * ends the hold; the timer flushes what is still held.
 */
void sl__conn_hold_output(struct sl_conn *c, uint64_t ms);

/* Time c out ms_from_now ms from now (0: no deadline): a head or body that
 * is late gets 408, anything else is closed. */
void sl__conn_set_deadline(struct sl_conn *c, uint64_t ms_from_now);

/* The config in force for c: its request's generation while it has one,
 * else the worker's current one. Borrowed, for the current callback. */
const struct sl_config *sl__conn_conf(const struct sl_conn *c);

/* Close idle keep-alive connections and ask busy ones to close after their
 * response: the worker is stopping. */
void sl__conn_stop(struct sl_conn *c);

/*
 * TCP_NODELAY, set once, when it starts to matter (nginx's tcp_nodelay):
 * the connection stays for another request, or a response goes out in
 * more than one write (streamed), or it becomes a tunnel. A connection
 * that carries one response written at once never needs the syscall.
 */
void sl__conn_nodelay(struct sl_conn *c);

/* An idle keep-alive connection with nothing buffered gives its read buffer
 * and request memory back (they come back with its next bytes). */
void sl__conn_trim_idle(struct sl_conn *c);

#endif
