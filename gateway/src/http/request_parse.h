/*
 * Parsing and checking client requests: llhttp in strict mode, the checks
 * it leaves to us, routing a complete head and answering what is malformed.
 */
#ifndef SL_REQUEST_PARSE_H
#define SL_REQUEST_PARSE_H

struct sl_conn;
struct sl_conn_rx;

/* The connection's parser and request (http/connection.h), taken now if it
 * has none: fresh, the parser at the start of a message. On c's loop. */
struct sl_conn_rx *sl__conn_rx(struct sl_conn *c);

/* Give them back (c has no request in progress): an idle connection keeps
 * no parser, request, head buffer or arena. */
void sl__conn_rx_release(struct sl_conn *c);

/* Free the ones this thread keeps for reuse (a worker thread ending). */
void sl__conn_rx_thread_done(void);

/* Parse whatever is buffered, if the connection's state allows it. This may
 * answer the request, start it on its way upstream, or close c. */
void sl__request_parse(struct sl_conn *c);

#endif
