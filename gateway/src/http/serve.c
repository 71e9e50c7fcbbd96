/*
 * The HTTP layer's part of a worker (struct sl_worker_hooks): what a worker
 * does with an accepted connection, with its per-worker state (keep-alive
 * pools, counters, buffered access-log lines), and with its connections
 * when it stops.
 */
#include "http/serve.h"

#include <stdlib.h>

#include "base/log.h"
#include "http/access_log.h"
#include "http/conn.h"
#include "http/request_parse.h"
#include "http/metrics.h"
#include "http/pool.h"
#include "http/proxy.h"
#include "http/req.h"

static void init(struct sl_worker *w)
{
    w->pools = sl__pools_new();
    w->metrics = sl__metrics_worker_new();
}

static void drain(struct sl_worker *w)
{
    struct sl_conn *c, *next;

    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        sl__conn_stop(c);
    }
}

static void deadline(struct sl_worker *w)
{
    struct sl_conn *c, *next;

    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        sl__conn_abort(c);
    }
}

static void stop(struct sl_worker *w)
{
    sl__pools_close_all(w->pools, sl__upconn_close);
    sl__access_log_flush(w);
}

static void thread_done(struct sl_worker *w)
{
    (void)w;
    sl__conn_rx_thread_done();
    sl__access_log_thread_done();
}

static void fini(struct sl_worker *w)
{
    sl__pools_free(w->pools);
    w->pools = NULL;
    free(w->alog);
    w->alog = NULL;
}

const struct sl_worker_hooks sl__http_worker_hooks = {
    .init = init,
    .accept = sl__conn_accept,
    .turn = sl__access_log_flush,
    .drain = drain,
    .deadline = deadline,
    .stop = stop,
    .thread_done = thread_done,
    .fini = fini,
};

void sl__http_install(void)
{
    sl__workers_set_hooks(&sl__http_worker_hooks);
    sl__log_set_context(sl__req_log_context, sl__req_log_context_json);
}
