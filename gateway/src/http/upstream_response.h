/*
 * The upstream's response: reading it from an upstream connection (plain or
 * TLS), parsing it, and passing its head and body on to the client.
 */
#ifndef SL_UPSTREAM_RESPONSE_H
#define SL_UPSTREAM_RESPONSE_H

struct sl_upconn;

/* Set up the response parser of a new upstream connection. */
void sl__upstream_response_init(struct sl_upconn *uc);

/* Read from uc unless it already does. On TLS, decrypt at once what came in
 * before reading stopped. */
void sl__upconn_read_start(struct sl_upconn *uc);

/* TLS: finish the handshake (then send the request), or decrypt as much as
 * the client side can take. */
void sl__upconn_tls_pump(struct sl_upconn *uc);

#endif
