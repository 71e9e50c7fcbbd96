/*
 * rate_limit plugin: what its phases, its config reader and its two stores
 * share.
 */
#ifndef SL_PLUGIN_RATE_LIMIT_H
#define SL_PLUGIN_RATE_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/plugin.h"

#include "gcra.h"

/* Limits on one route, all of which must pass (one digit in bucket keys). */
#define RL_MAX_LIMITS 8

enum rl_store { RL_STORE_LOCAL, RL_STORE_REDIS };
enum rl_failure { RL_FAIL_LOCAL, RL_FAIL_ALLOW, RL_FAIL_DENY };

struct rl_limit {
    struct sl_key key;
    struct sl_gcra_limit gcra;
    uint64_t count, period_ms; /* the rate as written */
};

struct rl_conf {
    struct rl_limit *limits;
    size_t n;
    enum rl_store store;
    enum rl_failure on_failure;
    const struct sl_redis_conf *redis; /* the generation's, when store is redis */
};

void *sl__rate_limit_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_rate_limit;

/* Microseconds on CLOCK_MONOTONIC (the local store's clock). */
int64_t sl__rl_now_us(void);

/*
 * The local store: one table for the whole gateway instance, sharded with
 * one lock per shard, buckets that are full again forgotten, memory capped.
 * keys[i] is the bucket of limits[i]. Decides and commits atomically over
 * all n buckets, and leaves the TATs it stored in tats[]. Cost -1 refunds
 * instead the token whose reservation stored tats[] (see sl__gcra_refund_chain).
 */
void sl__rl_local(const struct sl_gcra_limit *limits, const char *const *keys, size_t n, int cost,
                  struct sl_gcra_result *r, int64_t *tats);

/* The Redis store, per worker: a decision arrives through done(arg, ...),
 * with the TATs it stored (per limit). ok false: Redis could not decide in
 * time (on_store_failure applies). */
typedef void rl_done_fn(void *arg, bool ok, const struct sl_gcra_result *r, const int64_t *tats);

struct rl_redis;

struct rl_redis *sl__rl_redis_new(uv_loop_t *loop);
void sl__rl_redis_free(struct rl_redis *rr);

/*
 * Queue a decision (cost 1) or a refund (cost -1 of the reservation that
 * stored tats[]; done may be NULL) for the next batch to Redis. Returns 0
 * (done() follows, within conf->timeout_ms), or -1 when Redis is known to be
 * down (nothing queued: decide otherwise).
 */
int sl__rl_redis_decide(struct rl_redis *rr, const struct sl_redis_conf *conf,
                        const struct sl_gcra_limit *limits, const char *const *keys,
                        const int64_t *tats, size_t n, int cost, rl_done_fn *done, void *arg);

/* Forget a queued decision's callback (its request went away). */
void sl__rl_redis_forget(struct rl_redis *rr, void *arg);

/* Decisions Redis could not make (errors, timeouts, outages), all workers. */
extern atomic_ullong sl__rl_redis_errors;

#endif
