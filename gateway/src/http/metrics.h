/*
 * Metrics: per-worker counters, summed when the admin API is scraped.
 *
 * Each worker writes only its own counters, with relaxed atomic loads and
 * stores (a plain increment: no lock, no shared cache line); the main thread
 * reads them all when rendering /metrics. Target and Redis counters live
 * where their state lives (upstream.h, the rate_limit plugin).
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_req;
struct sl_sbuf;
struct sl_wmetrics;

/* A worker's counters, created on the main thread before it starts. */
struct sl_wmetrics *sl__metrics_worker_new(void);

/* Count a finished request of route ("-": none matched) with its status. */
void sl__metrics_request(struct sl_wmetrics *m, const char *route, int code, uint64_t duration_us);

/* Count one event of a plugin's series for a route (sl_req_count()). */
struct sl_counter;
void sl__metrics_count(struct sl_wmetrics *m, const char *route, const struct sl_counter *c,
                       const char *value);

/* Requests in progress on the worker (for sluice_connections). */
void sl__metrics_active(struct sl_wmetrics *m, int delta);

/* Config reloads (main thread). */
void sl__metrics_reload(bool ok);

/* Render every metric in the Prometheus text format. Main thread. */
void sl__metrics_render(struct sl_sbuf *out);

#endif
