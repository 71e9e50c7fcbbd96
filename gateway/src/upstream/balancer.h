/*
 * Load balancing: pure selectors over a view of an upstream's targets.
 *
 * A balancer sees, per target, its weight, whether it may be used now
 * (healthy, not ejected, not already tried by this request), how many
 * requests it has in flight across all workers and an average of its
 * latency, and returns the index to use. It does no I/O and takes no locks,
 * so unit tests drive it directly (tests/unit/upstream/test_balancer.c).
 *
 * Data: `shared` is built once per config generation and only read (the
 * Maglev table of the hash balancer); `state` is per worker and mutable (the
 * round-robin counters, a random generator).
 */
#ifndef SL_BALANCER_H
#define SL_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/arena.h"

struct sl_lb_target {
    uint32_t weight;   /* 1..1000 */
    bool usable;       /* may be picked for this request */
    uint32_t inflight; /* requests in flight, all workers */
    uint32_t ewma_us;  /* latency average (response head), 0 = unknown */
    uint64_t id_hash;  /* hash of the target's address, for the hash balancer */
};

struct sl_lb_input {
    uint64_t key_hash; /* the request's hash key (balance: hash) */
};

struct sl_lb_ops {
    const char *name;
    /* Read-only data shared by every worker, or NULL. */
    void *(*build)(struct sl_arena *a, const struct sl_lb_target *t, size_t n);
    /* Bytes of per-worker state for n targets, and its initialisation. */
    size_t (*state_size)(size_t n);
    void (*init)(void *state, const struct sl_lb_target *t, size_t n, uint64_t seed);
    /* A usable target's index, or -1 when none is usable. */
    int (*pick)(const void *shared, void *state, const struct sl_lb_target *t, size_t n,
                const struct sl_lb_input *in);
};

/* Smooth weighted round robin (as nginx): each target's turns spread evenly. */
extern const struct sl_lb_ops sl__lb_round_robin;
/* Fewest requests in flight per unit of weight; ties go round robin. */
extern const struct sl_lb_ops sl__lb_least_conn;
/* Consistent hashing (Maglev) on the request's key; weights respected. */
extern const struct sl_lb_ops sl__lb_hash;
/* Power of two random choices, scored by in-flight requests and latency. */
extern const struct sl_lb_ops sl__lb_p2c;

/* The balancer called name, or NULL. */
const struct sl_lb_ops *sl__lb_find(const char *name);

/* A 64-bit hash of bytes (for hash keys and target addresses). */
uint64_t sl__lb_hash_bytes(const void *p, size_t len);

/* The size of the Maglev lookup table (a prime). */
#define SL_MAGLEV_SIZE 65537

#endif
