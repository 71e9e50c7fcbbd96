/*
 * The checks of a complete request head (request_check.c).
 */
#ifndef SL_HTTP_REQUEST_CHECK_H
#define SL_HTTP_REQUEST_CHECK_H

#include <llhttp.h>

#include "http/request.h"

/*
 * Check req's head as llhttp p parsed it, and fill in what the rest of the
 * gateway reads (method, target, host, framing); mark the fields not to be
 * forwarded. Returns 0, or the status to answer with (400, 417, 431, 505)
 * and *why, the message.
 */
int sl__request_check(struct sl_req *req, const llhttp_t *p, const char **why);

#endif
