/*
 * request_id plugin: shared between its phases and its config reader.
 */
#ifndef SL_PLUGIN_REQUEST_ID_H
#define SL_PLUGIN_REQUEST_ID_H

#include <stdbool.h>

#include "sluice/plugin.h"

struct request_id_conf {
    const char *header;  /* default X-Request-Id */
    bool trust_incoming; /* keep a sane id the client sent (default true) */
};

void *sl__request_id_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_request_id;

#endif
