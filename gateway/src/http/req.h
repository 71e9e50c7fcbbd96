/*
 * Requests: their lifetime, the plugin API of sluice/req.h, routing and the
 * ACCESS phase runner: sl__req_access() runs the ACCESS handlers of the
 * route's plugins in order, suspending and resuming as they ask. The struct
 * is in http/request.h.
 */
#ifndef SL_REQ_PRIVATE_H
#define SL_REQ_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/req.h"

#include "http/phases.h"
#include "http/request.h"

/* Reset req for a new request on conn. */
void sl__req_init(struct sl_req *req, struct sl_conn *conn);

/* Release what the request holds (generation handle, arena contents). */
void sl__req_release(struct sl_req *req);

/*
 * A checked head: choose its route (404 when none matches) and its
 * upstream, then run the ACCESS phase. Runs on the request's loop.
 */
void sl__req_dispatch(struct sl_req *req);

/*
 * Run the route's ACCESS handlers from where the request stopped. When all
 * pass, the proxy is started; when one answers or fails, the response is
 * sent. Runs on the request's loop.
 */
void sl__req_access(struct sl_req *req);

/* Add name: v to list (replace: the first of that name gets v instead);
 * copies both into the request arena. 0, or -1 when it is full. */
int sl__req_kv_set(struct sl_req *req, struct sl_kv **list, const char *name, struct sl_str v,
                   bool replace);

/* Cancel a suspended handler (the client went away). */
void sl__req_cancel(struct sl_req *req);

/* The error log's request context (sl_log_context_fn in base/log.h). */
size_t sl__req_log_context(struct sl_req *req, char *buf, size_t size);
struct sl_sbuf;
void sl__req_log_context_json(struct sl_req *req, struct sl_sbuf *b);

#endif
