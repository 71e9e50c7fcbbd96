/*
 * An upstream as a config generation holds it at run time: its targets with
 * their shared state (health, ejection, requests in flight), its balancer
 * with per-worker state, and per-worker retry budgets. Built by gen.c from
 * the upstreams: section; used by the proxy.
 */
#ifndef SL_CONFIG_UPSTREAM_H
#define SL_CONFIG_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "upstream/balancer.h"
#include "upstream/target_state.h"

/* An upstream target as the runtime sees it. */
struct sl_target {
    const struct sl_target_conf *conf;
    struct sl_tstate *st; /* shared state: health, ejection, in flight */
    char pool_key[96];    /* per-worker keep-alive pools are found by this */
    uint64_t id_hash;     /* hash of the address, for consistent hashing */
};

/* A worker's retry budget for one upstream (see proxy.c). */
struct sl_budget {
    double tokens;
    uint64_t last_ms;
};

struct sl_upstream {
    const struct sl_upstream_conf *conf;
    struct sl_target *targets;
    size_t n_targets;
    struct sl_passive_conf passive;
    const struct sl_lb_ops *lb;
    void *lb_shared; /* read-only, built once (the Maglev table) */
    /* Per-worker balancer state: lb_state + worker * lb_stride. */
    char *lb_state;
    size_t lb_stride;
    /* Per-worker retry budgets, one cache line apart. */
    char *budget;
    size_t budget_stride;
};

#endif
