/*
 * Responses the gateway makes itself: the JSON error bodies of the contract,
 * {"error": "<code>", "message": "<text>", "request_id": "..."}.
 */
#ifndef SL_RESPOND_H
#define SL_RESPOND_H

#include <stdbool.h>

struct sl_req;

/*
 * Answer req with status and a JSON error body, run the RESPONSE phase (so
 * X-Request-Id and RateLimit headers are added), then end the request. The
 * connection is closed afterwards when the error is about the connection
 * itself (400, 408, 413, 431, 505) or an unread request body is pending.
 * With code NULL the response has no body (a plugin's 204).
 * Nothing is sent if a response has already started; the connection is
 * aborted instead. Runs on the request's loop.
 */
void sl__respond_error(struct sl_req *req, int status, const char *code, const char *message);

#endif
