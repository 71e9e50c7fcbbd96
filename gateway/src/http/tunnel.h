/*
 * Tunnels after 101 Switching Protocols: bytes both ways between the client
 * and the upstream until both have ended.
 */
#ifndef SL_TUNNEL_H
#define SL_TUNNEL_H

struct sl_conn;
struct sl_req;

/* The upstream answered req's Upgrade with 101 and its head went to the
 * client: switch both connections to tunnelling. */
void sl__tunnel_start(struct sl_req *req);

/* Tunnel: bytes the client sent after an upgraded request head. */
void sl__tunnel_client_data(struct sl_conn *c);
void sl__tunnel_client_eof(struct sl_conn *c);

/* Both sides of a tunnel closed and everything was written: end it. */
void sl__tunnel_maybe_end(struct sl_req *req);

#endif
