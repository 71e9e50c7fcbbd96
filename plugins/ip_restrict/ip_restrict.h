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

/*
 * Whether the client at ip (text, as sl_req_real_ip() gives it; may be
 * NULL) may pass: not denied, and allowed when there is an allow list. An
 * ip that is not an IP address (a Unix socket's peer) never passes,
 * whatever the lists: it cannot be shown to be outside deny.
 */
bool sl__ipr_passes(const struct ipr_conf *c, const char *ip);

void *sl__ip_restrict_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_ip_restrict;

#endif
