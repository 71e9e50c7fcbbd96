/*
 * headers plugin: shared between its phases and its config reader.
 */
#ifndef SL_PLUGIN_HEADERS_H
#define SL_PLUGIN_HEADERS_H

#include "sluice/plugin.h"

#include "template.h"

struct hdr_op {
    const char *name;
    struct hdr_tmpl value; /* unused for remove */
};

/* What to do to one direction's head, in this order: remove, set, add. */
struct hdr_ops {
    struct hdr_op *remove, *set, *add;
    size_t n_remove, n_set, n_add;
};

struct hdr_conf {
    struct hdr_ops request;  /* on the way upstream (ACCESS phase) */
    struct hdr_ops response; /* on the way to the client (RESPONSE phase) */
};

void *sl__headers_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_headers;

#endif
