/*
 * Response body filters (sluice/req.h): the plugins' filters stand between
 * the upstream's body and the client side, as a struct sl_downstream that
 * passes every operation on to the real one (the protocol's) but routes
 * the body through the filters first. Installed in the RESPONSE phase,
 * switched in when the head goes out.
 */
#ifndef SL_HTTP_BODY_FILTER_H
#define SL_HTTP_BODY_FILTER_H

#include <stdbool.h>

struct sl_req;
struct sl_resp_head;

/* Filters were installed for req's response: drop the upstream's
 * Content-Length, make the length unknown and put the filtering client
 * side in front of req->down. Call after the RESPONSE phase, before the
 * head is sent. */
void sl__body_filters_start(struct sl_req *req, struct sl_resp_head *rh);

/* The request ends: each filter's done(), once. */
void sl__body_filters_release(struct sl_req *req);

#endif
