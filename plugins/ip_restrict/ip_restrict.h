/*
 * ip_restrict plugin: shared between its phase and its config reader.
 */
#ifndef SL_PLUGIN_IP_RESTRICT_H
#define SL_PLUGIN_IP_RESTRICT_H

#include <stdbool.h>

#include "sluice/plugin.h"

#include "cidr.h"

struct ipr_conf {
    struct ipr_set allow; /* empty: every address not denied passes */
    struct ipr_set deny;
    bool has_allow; /* an allow list was given */
};

void *sl__ip_restrict_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_ip_restrict;

#endif
