/*
 * The one end of every request.
 */
#ifndef SL_HTTP_FINISH_H
#define SL_HTTP_FINISH_H

struct sl_req;

/*
 * Whichever way a request ended (answered, or its client gone: status 499):
 * the LOG phase, the access-log line and the request metrics. The
 * connection calls it once per request.
 */
void sl__req_finish(struct sl_req *req);

#endif
