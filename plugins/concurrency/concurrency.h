/*
 * concurrency plugin: shared between its phases and its config reader.
 */
#ifndef SL_PLUGIN_CONCURRENCY_H
#define SL_PLUGIN_CONCURRENCY_H

#include <stdint.h>

#include "sluice/plugin.h"

struct cc_conf {
    uint32_t max;              /* requests of the route in flight at once */
    uint32_t queue;            /* more may wait... */
    uint64_t queue_timeout_ms; /* ...this long, then 503 */
};

void *sl__concurrency_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_concurrency;

#endif
