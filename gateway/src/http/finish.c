/*
 * The end of a request: one path, whichever way it ended.
 */
#include "http/finish.h"

#include "base/util.h"
#include "config/config.h"
#include "core/worker.h"
#include "http/access_log.h"
#include "http/metrics.h"
#include "http/connection.h"
#include "http/phases.h"

void sl__req_finish(struct sl_req *req)
{
    sl__req_log_phase(req);
    sl__access_log(req);
    sl__metrics_request(sl__req_worker(req)->metrics, req->route ? req->route->name : "-",
                        req->status, (sl__mono_ns() - req->start_ns) / 1000);
}
