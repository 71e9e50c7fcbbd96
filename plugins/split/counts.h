/*
 * split plugin: sluice_split_requests_total{route,upstream}.
 *
 * The core's counters (struct sl_counter) take label values fixed when the
 * plugin is built; upstream names come from the config, so the plugin keeps
 * these counts itself. One cell per (route, upstream) ever counted, shared
 * by every worker and never freed: a series outlives reloads and never goes
 * backwards. Each worker finds a cell through its own table (no lock), so
 * a request costs a lookup and an atomic add; a lock is taken only the
 * first time a worker meets a pair.
 */
#ifndef SL_PLUGIN_SPLIT_COUNTS_H
#define SL_PLUGIN_SPLIT_COUNTS_H

struct split_cache;

/* A worker's table, made and freed on its loop (worker_init, worker_fini). */
struct split_cache *sl__split_cache_new(void);
void sl__split_cache_free(struct split_cache *c);

/* Count one request of route sent to upstream. c is the worker's table, or
 * NULL (then the shared list is searched under its lock). */
void sl__split_count(struct split_cache *c, const char *route, const char *upstream);

/* Write the series as Prometheus text (main thread, while workers count). */
void sl__split_metrics(void (*emit)(void *ctx, const char *text), void *ctx);

#endif
