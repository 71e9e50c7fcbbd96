/*
 * Parsing and checking client requests: llhttp in strict mode, the checks
 * it leaves to us, routing a complete head and answering what is malformed.
 */
#ifndef SL_REQUEST_PARSE_H
#define SL_REQUEST_PARSE_H

struct sl_conn;

/* Set up the request parser of a connection being accepted (on its worker's
 * loop). */
void sl__request_parse_init(struct sl_conn *c);

/* Parse whatever is buffered, if the connection's state allows it. This may
 * answer the request, start it on its way upstream, or close c. */
void sl__request_parse(struct sl_conn *c);

#endif
