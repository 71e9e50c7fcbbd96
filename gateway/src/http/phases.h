/*
 * The RESPONSE and LOG phases (phases.c).
 */
#ifndef SL_HTTP_PHASES_H
#define SL_HTTP_PHASES_H

struct sl_req;

/* After ACCESS, before balancing: the plugins may choose the upstream. */
void sl__req_upstream_phase(struct sl_req *req);

/* The plugins add their response headers (the status is decided). */
void sl__req_response_phase(struct sl_req *req);

/* After the response, once per request (http/finish.c runs it). */
void sl__req_log_phase(struct sl_req *req);

#endif
