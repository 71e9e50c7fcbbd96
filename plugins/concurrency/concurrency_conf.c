/*
 * concurrency plugin: its YAML.
 *
 *   concurrency:
 *     max: 100              # requests of the route in flight at once, per instance
 *     queue: 50             # up to this many more wait for a slot...
 *     queue_timeout: 1s     # ...this long at most, then 503 with Retry-After
 */
#include "concurrency.h"

void *sl__concurrency_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"max", "queue", "queue_timeout", NULL};
    struct cc_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);
    uint64_t v;

    c->queue_timeout_ms = 1000;
    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    if (sl_conf_uint(ctx, node, "max", 1, 10000000, &v, true) == 0)
        c->max = (uint32_t)v;
    if (sl_conf_uint(ctx, node, "queue", 0, 10000000, &v, false) == 0)
        c->queue = (uint32_t)v;
    sl_conf_duration(ctx, node, "queue_timeout", &c->queue_timeout_ms, false);
    return sl_conf_errors(ctx) == errors ? c : NULL;
}
