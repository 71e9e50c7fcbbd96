/*
 * Metrics.
 */
#include "http/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/gen.h"
#include "config/plugins.h"
#include "base/sbuf.h"
#include "upstream/target_state.h"
#include "base/util.h"
#include "core/worker.h"
#include "http/access_log.h"

#ifndef SL_VERSION
#define SL_VERSION "0"
#endif

#define MAX_WORKERS 1024
#define BUCKETS     64 /* route table buckets per worker */
#define MIN_CODE    100
#define N_CODES     500 /* 100..599 */

/* Request duration histogram bounds, in microseconds. */
static const uint64_t bounds_us[] = {1000,   5000,   10000,   25000,   50000,   100000,
                                     250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define N_BOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

/* A plugin's counter series (sl_req_count()) on one route of one worker. */
struct plugin_count {
    _Atomic(struct plugin_count *) next;
    const struct sl_counter *c;
    _Atomic uint64_t n[SL_COUNTER_MAX_VALUES]; /* by index in c->values */
};

/* One route's counters on one worker. Written by that worker only. */
struct route_stats {
    _Atomic(struct route_stats *) next;
    _Atomic uint64_t codes[N_CODES];
    _Atomic uint64_t le[N_BOUNDS]; /* requests at most bounds_us[i] (not cumulative) */
    _Atomic uint64_t count, sum_us;
    _Atomic(struct plugin_count *) plugin_counts;
    char name[];
};

struct sl_wmetrics {
    _Atomic(struct route_stats *) bucket[BUCKETS];
    _Atomic int64_t active; /* requests in progress */
};

static struct sl_wmetrics *all[MAX_WORKERS];
static atomic_uint n_all;
static _Atomic uint64_t reloads_ok, reloads_failed;

/* Single-writer counter: no read-modify-write instruction needed. */
static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static inline uint64_t get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct sl_wmetrics *sl__metrics_worker_new(void)
{
    struct sl_wmetrics *m = sl__xcalloc(1, sizeof(*m));
    unsigned i = atomic_fetch_add(&n_all, 1);

    SL_BUG_ON(i >= MAX_WORKERS);
    all[i] = m;
    return m;
}

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The route's counters, created on first use (by the worker, the only
 * writer; a new entry is published with a release store for the reader). */
static struct route_stats *route_stats(struct sl_wmetrics *m, const char *name)
{
    _Atomic(struct route_stats *) *head = &m->bucket[hash(name) % BUCKETS];
    struct route_stats *r;
    size_t len = strlen(name);

    for (r = atomic_load_explicit(head, memory_order_acquire); r != NULL;
         r = atomic_load_explicit(&r->next, memory_order_acquire))
        if (strcmp(r->name, name) == 0)
            return r;
    r = sl__xcalloc(1, sizeof(*r) + len + 1);
    memcpy(r->name, name, len + 1);
    atomic_store_explicit(&r->next, atomic_load_explicit(head, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(head, r, memory_order_release);
    return r;
}

void sl__metrics_request(struct sl_wmetrics *m, const char *route, int code, uint64_t duration_us)
{
    struct route_stats *r = route_stats(m, route);

    if (code >= MIN_CODE && code < MIN_CODE + N_CODES)
        bump(&r->codes[code - MIN_CODE], 1);
    bump(&r->count, 1);
    bump(&r->sum_us, duration_us);
    for (size_t i = 0; i < N_BOUNDS; i++) {
        if (duration_us <= bounds_us[i]) {
            bump(&r->le[i], 1);
            break;
        }
    }
}

void sl__metrics_count(struct sl_wmetrics *m, const char *route, const struct sl_counter *c,
                       const char *value)
{
    struct route_stats *r = route_stats(m, route);
    struct plugin_count *pc;
    size_t i;

    for (i = 0; i < SL_COUNTER_MAX_VALUES && c->values[i] != NULL; i++)
        if (c->values[i] == value || strcmp(c->values[i], value) == 0)
            break;
    if (i == SL_COUNTER_MAX_VALUES || c->values[i] == NULL)
        return;
    for (pc = atomic_load_explicit(&r->plugin_counts, memory_order_acquire); pc != NULL;
         pc = atomic_load_explicit(&pc->next, memory_order_acquire))
        if (pc->c == c)
            break;
    if (pc == NULL) {
        pc = sl__xcalloc(1, sizeof(*pc));
        pc->c = c;
        atomic_store_explicit(&pc->next,
                              atomic_load_explicit(&r->plugin_counts, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&r->plugin_counts, pc, memory_order_release);
    }
    bump(&pc->n[i], 1);
}

void sl__metrics_active(struct sl_wmetrics *m, int delta)
{
    atomic_store_explicit(&m->active,
                          atomic_load_explicit(&m->active, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

void sl__metrics_reload(bool ok)
{
    atomic_fetch_add(ok ? &reloads_ok : &reloads_failed, 1);
}

/* -- rendering (main thread) --------------------------------------------------- */

/* A label value, escaped as the text format wants. */
static void label(struct sl_sbuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sl__sbuf_add(b, "\\", 1);
        if (*v == '\n')
            sl__sbuf_add(b, "\\n", 2);
        else
            sl__sbuf_add(b, v, 1);
    }
}

/* Sum one route's counters over every worker; the names seen are the union. */
struct route_sum {
    const char *name;
    uint64_t codes[N_CODES], le[N_BOUNDS], count, sum_us;
    struct route_stats **stats; /* this route's counters on each worker that has some */
    size_t n_stats;
};

static struct route_sum *sum_routes(size_t *n_out)
{
    struct route_sum *sums = NULL;
    size_t n = 0, cap = 0;
    unsigned workers = atomic_load(&n_all);

    for (unsigned w = 0; w < workers; w++) {
        for (size_t b = 0; b < BUCKETS; b++) {
            for (struct route_stats *r =
                     atomic_load_explicit(&all[w]->bucket[b], memory_order_acquire);
                 r != NULL; r = atomic_load_explicit(&r->next, memory_order_acquire)) {
                struct route_sum *s = NULL;

                for (size_t i = 0; i < n; i++)
                    if (strcmp(sums[i].name, r->name) == 0)
                        s = &sums[i];
                if (s == NULL) {
                    if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        sums = sl__xrealloc(sums, cap * sizeof(*sums));
                    }
                    s = &sums[n++];
                    memset(s, 0, sizeof(*s));
                    s->name = r->name;
                }
                for (size_t c = 0; c < N_CODES; c++)
                    s->codes[c] += get(&r->codes[c]);
                for (size_t i = 0; i < N_BOUNDS; i++)
                    s->le[i] += get(&r->le[i]);
                s->count += get(&r->count);
                s->sum_us += get(&r->sum_us);
                s->stats = sl__xrealloc(s->stats, (s->n_stats + 1) * sizeof(*s->stats));
                s->stats[s->n_stats++] = r;
            }
        }
    }
    *n_out = n;
    return sums;
}

static void render_requests(struct sl_sbuf *b, struct route_sum *sums, size_t n)
{
    sl__sbuf_lit(b, "# HELP sluice_http_requests_total Requests answered, by route and status.\n"
                    "# TYPE sluice_http_requests_total counter\n");
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < N_CODES; c++) {
            if (sums[i].codes[c] == 0)
                continue;
            sl__sbuf_lit(b, "sluice_http_requests_total{route=\"");
            label(b, sums[i].name);
            sl__sbuf_printf(b, "\",code=\"%zu\"} %llu\n", c + MIN_CODE,
                            (unsigned long long)sums[i].codes[c]);
        }
    sl__sbuf_lit(b, "# HELP sluice_http_request_duration_seconds Time from the first byte of a "
                    "request to the end of its response.\n"
                    "# TYPE sluice_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        uint64_t cum = 0;

        for (size_t k = 0; k < N_BOUNDS; k++) {
            cum += sums[i].le[k];
            sl__sbuf_lit(b, "sluice_http_request_duration_seconds_bucket{route=\"");
            label(b, sums[i].name);
            sl__sbuf_printf(b, "\",le=\"%g\"} %llu\n", (double)bounds_us[k] / 1e6,
                            (unsigned long long)cum);
        }
        sl__sbuf_lit(b, "sluice_http_request_duration_seconds_bucket{route=\"");
        label(b, sums[i].name);
        sl__sbuf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)sums[i].count);
        sl__sbuf_lit(b, "sluice_http_request_duration_seconds_sum{route=\"");
        label(b, sums[i].name);
        sl__sbuf_printf(b, "\"} %.6f\n", (double)sums[i].sum_us / 1e6);
        sl__sbuf_lit(b, "sluice_http_request_duration_seconds_count{route=\"");
        label(b, sums[i].name);
        sl__sbuf_printf(b, "\"} %llu\n", (unsigned long long)sums[i].count);
    }
}

/* One plugin counter series: its help, then every value for each route
 * that counted any. */
static void render_samples(struct sl_sbuf *b, const struct sl_counter *c, struct route_sum *sums,
                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v[SL_COUNTER_MAX_VALUES] = {0}, any = 0;

        for (size_t w = 0; w < sums[i].n_stats; w++)
            for (struct plugin_count *pc =
                     atomic_load_explicit(&sums[i].stats[w]->plugin_counts, memory_order_acquire);
                 pc != NULL; pc = atomic_load_explicit(&pc->next, memory_order_acquire))
                if (pc->c == c)
                    for (size_t k = 0; k < SL_COUNTER_MAX_VALUES; k++)
                        v[k] += get(&pc->n[k]), any += get(&pc->n[k]);
        for (size_t k = 0; any != 0 && k < SL_COUNTER_MAX_VALUES && c->values[k] != NULL; k++) {
            sl__sbuf_printf(b, "%s{route=\"", c->name);
            label(b, sums[i].name);
            sl__sbuf_printf(b, "\",%s%s%s=\"%s\"} %llu\n", c->fixed_labels ? c->fixed_labels : "",
                            c->fixed_labels ? "," : "", c->label, c->values[k],
                            (unsigned long long)v[k]);
        }
    }
}

/* Whether a plugin before (p, k) in table order has a series called name. */
static bool named_before(size_t p, size_t k, const char *name)
{
    for (size_t i = 0; i <= p; i++)
        for (size_t j = 0; sl__plugins[i]->counters && sl__plugins[i]->counters[j]; j++) {
            if (i == p && j == k)
                return false;
            if (strcmp(sl__plugins[i]->counters[j]->name, name) == 0)
                return true;
        }
    return false;
}

/* Every plugin series, one family per name (plugins may share a name with
 * their own fixed labels: sluice_auth_decisions_total{plugin=...}): its help
 * once, then every plugin's samples together, as the text format wants. */
static void render_plugin_counters(struct sl_sbuf *b, struct route_sum *sums, size_t n)
{
    for (size_t i = 0; i < sl__n_plugins; i++)
        for (size_t k = 0; sl__plugins[i]->counters && sl__plugins[i]->counters[k]; k++) {
            const struct sl_counter *c = sl__plugins[i]->counters[k];

            if (named_before(i, k, c->name))
                continue;
            sl__sbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", c->name, c->help, c->name);
            for (size_t p = i; p < sl__n_plugins; p++)
                for (size_t j = 0; sl__plugins[p]->counters && sl__plugins[p]->counters[j]; j++)
                    if (strcmp(sl__plugins[p]->counters[j]->name, c->name) == 0)
                        render_samples(b, sl__plugins[p]->counters[j], sums, n);
        }
}

struct target_ctx {
    struct sl_sbuf *b;
    bool healthy_pass;
};

static void render_target(struct sl_tstate *st, void *arg)
{
    struct target_ctx *t = arg;
    struct sl_sbuf *b = t->b;

    if (t->healthy_pass) {
        uint64_t until = atomic_load(&st->ejected_until);
        bool up = atomic_load(&st->healthy) && (until == 0 || until <= sl__mono_ns() / 1000000);

        sl__sbuf_lit(b, "sluice_upstream_target_healthy{upstream=\"");
        label(b, st->upstream);
        sl__sbuf_lit(b, "\",target=\"");
        label(b, st->addr);
        sl__sbuf_printf(b, "\"} %d\n", up ? 1 : 0);
        return;
    }
    for (size_t c = 0; c < SL_TSTATE_CODES; c++) {
        uint64_t v = atomic_load_explicit(&st->codes[c], memory_order_relaxed);

        if (v == 0)
            continue;
        sl__sbuf_lit(b, "sluice_upstream_requests_total{upstream=\"");
        label(b, st->upstream);
        sl__sbuf_lit(b, "\",target=\"");
        label(b, st->addr);
        sl__sbuf_printf(b, "\",code=\"%zu\"} %llu\n", c + 100, (unsigned long long)v);
    }
    if (atomic_load(&st->no_response) != 0) {
        sl__sbuf_lit(b, "sluice_upstream_requests_total{upstream=\"");
        label(b, st->upstream);
        sl__sbuf_lit(b, "\",target=\"");
        label(b, st->addr);
        sl__sbuf_printf(b, "\",code=\"0\"} %llu\n",
                        (unsigned long long)atomic_load(&st->no_response));
    }
}

static void emit(void *ctx, const char *text)
{
    sl__sbuf_lit(ctx, text);
}

void sl__metrics_render(struct sl_sbuf *b)
{
    size_t n;
    struct route_sum *sums = sum_routes(&n);
    struct target_ctx t = {b, false};
    unsigned workers = atomic_load(&n_all);
    int64_t active = 0;
    unsigned open = atomic_load(&sl__conn_count);

    render_requests(b, sums, n);
    render_plugin_counters(b, sums, n);
    for (size_t i = 0; i < n; i++)
        free(sums[i].stats);
    free(sums);

    sl__sbuf_lit(b, "# HELP sluice_upstream_requests_total Attempts sent to upstream targets, "
                    "by the status they got (0: no response).\n"
                    "# TYPE sluice_upstream_requests_total counter\n");
    sl__tstate_each(render_target, &t);
    sl__sbuf_lit(b, "# HELP sluice_upstream_target_healthy 1 when a target takes traffic (up "
                    "and not ejected).\n"
                    "# TYPE sluice_upstream_target_healthy gauge\n");
    t.healthy_pass = true;
    sl__tstate_each(render_target, &t);

    for (unsigned w = 0; w < workers; w++)
        active += atomic_load_explicit(&all[w]->active, memory_order_relaxed);
    if (active < 0)
        active = 0;
    if ((uint64_t)active > open)
        active = open;
    sl__sbuf_printf(b,
                    "# HELP sluice_connections Client connections: open, and by whether a "
                    "request is in progress.\n"
                    "# TYPE sluice_connections gauge\n"
                    "sluice_connections{state=\"open\"} %u\n"
                    "sluice_connections{state=\"active\"} %lld\n"
                    "sluice_connections{state=\"idle\"} %lld\n",
                    open, (long long)active, (long long)(open - (uint64_t)active));
    sl__sbuf_printf(b,
                    "# HELP sluice_config_reloads_total Configuration reloads, by result.\n"
                    "# TYPE sluice_config_reloads_total counter\n"
                    "sluice_config_reloads_total{result=\"ok\"} %llu\n"
                    "sluice_config_reloads_total{result=\"failed\"} %llu\n",
                    (unsigned long long)atomic_load(&reloads_ok),
                    (unsigned long long)atomic_load(&reloads_failed));
    sl__sbuf_printf(b,
                    "# HELP sluice_access_log_dropped_total Access log lines dropped: the "
                    "writer's buffer was full (a slow or stuck sink), a write failed, or the "
                    "exit could not wait for the sink.\n"
                    "# TYPE sluice_access_log_dropped_total counter\n"
                    "sluice_access_log_dropped_total %llu\n",
                    (unsigned long long)sl__access_log_dropped());
    sl__sbuf_lit(b, "# HELP sluice_build_info The running sluice's version (always 1).\n"
                    "# TYPE sluice_build_info gauge\n"
                    "sluice_build_info{version=\"" SL_VERSION "\"} 1\n");
    for (size_t i = 0; i < sl__n_plugins; i++)
        if (sl__plugins[i]->metrics != NULL)
            sl__plugins[i]->metrics(emit, b);
}
