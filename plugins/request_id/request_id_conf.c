/*
 * request_id plugin: its YAML.
 *
 *   request_id:
 *     header: X-Request-Id      # the header carrying the id both ways
 *     trust_incoming: true      # keep a sane id the client sent
 */
#include "request_id.h"

void *sl__request_id_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"header", "trust_incoming", NULL};
    struct request_id_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);

    c->header = "X-Request-Id";
    c->trust_incoming = true;
    sl_conf_keys(ctx, node, keys);
    sl_conf_str(ctx, node, "header", &c->header, false);
    sl_conf_bool(ctx, node, "trust_incoming", &c->trust_incoming, false);
    sl_conf_header_owned(ctx, c->header); /* X_Request_Id never goes upstream */
    return sl_conf_errors(ctx) == errors ? c : NULL;
}
