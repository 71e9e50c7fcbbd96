/*
 * oauth_introspection plugin: opaque bearer tokens checked by asking the
 * IdP (RFC 7662), then held to what the route asks of their claims, as the
 * jwt plugin's are (sluice/bearer.h).
 *
 * The IdP's answers are kept and shared by every worker (store.c), and a
 * token nobody asked about yet is asked about once however many requests
 * bring it at the same time. What a call sends and what an answer means is
 * answer.c's; the YAML introspection_conf.c's.
 */
#ifndef SL_PLUGIN_OI_H
#define SL_PLUGIN_OI_H

#include <stddef.h>

#include "sluice/bearer.h"
#include "sluice/plugin.h"

#include "store.h"

struct oi_conf {
    struct oi_call call;
    char *headers; /* call.headers, malloc'd (freed by conf_free): it holds the secret */
    const char *client_id, *client_secret; /* in the generation arena */
    size_t max_token_size;
    /* Scopes, claims, rules, forward_claims, token_from, realm. */
    const struct sl_bearer *bearer;
};

void *sl__oi_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);
void sl__oi_conf_free(void *conf);

extern const struct sl_plugin sl_plugin_oauth_introspection;
extern const struct sl_counter sl__oi_decisions;

#endif
