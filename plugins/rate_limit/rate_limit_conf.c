/*
 * rate_limit plugin: its YAML. One limit, or a list of limits that must all
 * pass:
 *
 *   rate_limit:
 *     key: jwt:sub             # ip | header:NAME | jwt:CLAIM | route
 *     rate: 100/s              # N/s | N/m | N/h | N/d
 *     burst: 200               # bucket size (default: N of the rate)
 *     max_delay: 500ms         # wait up to this for a token instead of 429
 *     store: redis             # local | redis (default: redis when redis: is set)
 *     on_store_failure: local  # local | allow | deny
 */
#include "rate_limit.h"

#include <stdio.h>
#include <string.h>

#define MAX_SPAN_US (100LL * 365 * 24 * 3600 * 1000000) /* 100 years */

static int read_limit(struct sl_conf_ctx *ctx, const struct sl_node *n, struct rl_limit *l,
                      int *store, int *failure)
{
    static const char *const keys[] = {
        "key", "rate", "burst", "max_delay", "store", "on_store_failure", NULL};
    static const char *const stores[] = {"local", "redis", NULL};
    static const char *const failures[] = {"local", "allow", "deny", NULL};
    int errors = sl_conf_errors(ctx);
    uint64_t burst = 0, delay_ms = 0;

    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return -1;
    l->key = (struct sl_key){SL_KEY_IP, NULL, "ip"};
    sl_conf_key(ctx, n, "key",
                (1u << SL_KEY_IP) | (1u << SL_KEY_ROUTE) | (1u << SL_KEY_HEADER) |
                    (1u << SL_KEY_JWT) | (1u << SL_KEY_VAR),
                &l->key, false);
    sl_conf_rate(ctx, n, "rate", &l->count, &l->period_ms, true);
    sl_conf_uint(ctx, n, "burst", 1, 1000000000, &burst, false);
    sl_conf_duration(ctx, n, "max_delay", &delay_ms, false);
    sl_conf_enum(ctx, n, "store", stores, store, false);
    sl_conf_enum(ctx, n, "on_store_failure", failures, failure, false);
    if (sl_conf_errors(ctx) != errors)
        return -1;
    /* One token every period/count; the bucket holds `burst`, by default one
     * period's worth. Microseconds, with at least 1 us between tokens. */
    l->gcra.t_us = (int64_t)(l->period_ms * 1000 / l->count);
    if (l->gcra.t_us < 1)
        l->gcra.t_us = 1;
    l->gcra.burst = burst ? (int64_t)burst : (int64_t)l->count;
    l->gcra.max_delay_us = (int64_t)delay_ms * 1000;
    /* Bucket arithmetic is in microseconds, in int64 here and in the
     * doubles of the Redis script (exact below 2^53 us, 285 years): keep
     * every span it adds well inside that. */
    if (l->gcra.burst > MAX_SPAN_US / l->gcra.t_us) {
        sl_conf_error(ctx, burst ? sl_node_get(n, "burst") : sl_node_get(n, "rate"),
                      "a bucket of %lld at %s takes over 100 years to refill",
                      (long long)l->gcra.burst, sl_node_get(n, "rate")->text);
        return -1;
    }
    if (delay_ms > MAX_SPAN_US / 1000) {
        sl_conf_error(ctx, sl_node_get(n, "max_delay"), "expected at most 100 years");
        return -1;
    }
    return 0;
}

void *sl__rate_limit_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    struct rl_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    size_t n = node->type == SL_NODE_SEQ ? node->n : 1;
    int store = -1, failure = -1;
    bool ok = true;

    if (node->type == SL_NODE_SEQ && (node->n == 0 || node->n > RL_MAX_LIMITS)) {
        sl_conf_error(ctx, node, "expected 1 to %d limits, found %zu", RL_MAX_LIMITS, node->n);
        return NULL;
    }
    c->limits = sl_arena_calloc(sl_conf_arena(ctx), n * sizeof(*c->limits));
    for (size_t i = 0; i < n; i++) {
        const struct sl_node *item = node->type == SL_NODE_SEQ ? node->items[i] : node;
        int s = -1, f = -1;

        if (read_limit(ctx, item, &c->limits[i], &s, &f) != 0) {
            ok = false;
            continue;
        }
        /* One store and one failure mode per route: a request's limits are
         * decided together, all or nothing. */
        if (s >= 0 && store >= 0 && s != store) {
            sl_conf_error(ctx, sl_node_get(item, "store"), "all limits of a route use one store");
            ok = false;
        } else if (s >= 0) {
            store = s;
        }
        if (f >= 0 && failure >= 0 && f != failure) {
            sl_conf_error(ctx, sl_node_get(item, "on_store_failure"),
                          "all limits of a route use one on_store_failure");
            ok = false;
        } else if (f >= 0) {
            failure = f;
        }
    }
    if (!ok)
        return NULL;
    c->n = n;
    c->redis = sl_conf_redis(ctx);
    c->store = store >= 0 ? (enum rl_store)store : c->redis ? RL_STORE_REDIS : RL_STORE_LOCAL;
    c->on_failure = failure >= 0 ? (enum rl_failure)failure : RL_FAIL_LOCAL;
    if (c->store == RL_STORE_REDIS && c->redis == NULL) {
        sl_conf_error(ctx, node, "store: redis needs the top-level redis: settings");
        return NULL;
    }
    return c;
}
