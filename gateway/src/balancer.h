/*
 * Load balancing: a pure selector over a view of an upstream's targets.
 *
 * A balancer sees, per target, its weight and whether it may be used now
 * (healthy, not ejected, not already tried by this request), and returns the
 * index to use. It does no I/O and takes no locks, so unit tests drive it
 * directly (tests/unit/test_balancer.c). Its state is per worker.
 */
#ifndef SL_BALANCER_H
#define SL_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_lb_target {
    uint32_t weight;
    bool usable;
};

struct sl_lb_ops {
    const char *name;
    /* Bytes of per-worker state for n targets. */
    size_t (*state_size)(size_t n);
    /* Initialise zeroed state for targets t[0..n). */
    void (*init)(void *state, const struct sl_lb_target *t, size_t n);
    /* Pick a usable target: its index, or -1 when none is usable. */
    int (*pick)(void *state, const struct sl_lb_target *t, size_t n);
};

/* Smooth weighted round robin (as nginx): spreads each target's turns evenly. */
extern const struct sl_lb_ops sl__lb_round_robin;

#endif
