/*
 * split plugin: shared between its phase handler and its config reader.
 */
#ifndef SL_PLUGIN_SPLIT_H
#define SL_PLUGIN_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pick.h"
#include "sluice/plugin.h"

/* A pin: requests whose header or cookie `key` is exactly value go to upstream. */
struct split_pin {
    struct sl_key key; /* SL_KEY_HEADER or SL_KEY_COOKIE */
    struct sl_str value;
    unsigned upstream;
    const char *name;
};

struct split_conf {
    struct split_target *to; /* in the order written: the ranges' order */
    size_t n;
    uint64_t total; /* the weights' sum, > 0 */
    bool keyed;     /* sticky: by key's value */
    struct sl_key key;
    struct split_pin *pins; /* checked in order, before the weights */
    size_t n_pins;
};

void *sl__split_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_split;

#endif
