/*
 * The request head the upstream receives (upstream_request.c).
 */
#ifndef SL_HTTP_UPSTREAM_REQUEST_H
#define SL_HTTP_UPSTREAM_REQUEST_H

#include "http/request.h"

struct sl_out;

/* Write req's head for the upstream (its target chosen) to o. */
void sl__upstream_request_head(struct sl_req *req, struct sl_out *o);

#endif
