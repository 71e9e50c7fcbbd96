/*
 * headers plugin: its YAML.
 *
 *   headers:
 *     request:                                  # what goes upstream
 *       set: {X-Client-Ip: "$client_ip"}        # replace every line of that name
 *       add: {X-Via: sluice}                    # one more line
 *       remove: [X-Internal]
 *     response:                                 # what the client gets
 *       set: {Strict-Transport-Security: "max-age=63072000"}
 *       remove: [Server]
 *
 * Names are checked as RFC 9110 tokens and against the fields the gateway
 * (or another plugin: X-Consumer, the request id's) writes itself; values are read into templates
 * (template.h), refused if they hold a control character. Every mistake is reported at its key or
 * value.
 */
#include "headers.h"

#include <strings.h>

/* n, but placed at its key, for errors about the key itself. */
static const struct sl_node *at_key(const struct sl_node *n, struct sl_node *copy)
{
    *copy = *n;
    if (n->key_line > 0) {
        copy->line = n->key_line;
        copy->col = n->key_col;
    }
    return copy;
}

/* One direction being read: request (upstream) or response. */
struct dir {
    bool request;
    /* The header the request_id plugin carries the id in, when the config
     * names one (X-Request-Id is refused anyway): in requests, not ours. */
    const char *request_id;
};

/* The request_id plugin's header: that of the request_id section beside
 * this headers section (the route's plugins, or the top level's), else
 * the top level's; NULL when none names one. Only read, from the tree:
 * that plugin parses and checks it. */
static const char *request_id_header(const struct sl_node *node)
{
    const struct sl_node *root = node, *rid = sl_node_get(node->parent, "request_id"), *h;

    while (root->parent != NULL)
        root = root->parent;
    if (rid == NULL)
        rid = sl_node_get(sl_node_get(root, "plugins"), "request_id");
    h = sl_node_get(rid, "header");
    return h != NULL && h->type == SL_NODE_SCALAR ? h->text : NULL;
}

/* Whether name may be used in that direction; reported at where if not. */
static bool name_ok(struct sl_conf_ctx *ctx, const struct sl_node *where, const char *name,
                    const struct dir *d)
{
    bool request = d->request;
    const char *why;

    if (!sl__hdr_name_valid(name)) {
        sl_conf_error(ctx, where,
                      "\"%s\" is not a header name (RFC 9110: letters, digits and "
                      "!#$%%&'*+-.^_`|~, at least one)",
                      name);
        return false;
    }
    why = sl__hdr_name_owned(name, request);
    if (why == NULL && request && d->request_id != NULL && strcasecmp(name, d->request_id) == 0)
        why = "the request_id plugin sets it (its header:) to the id the logs have, and the "
              "upstream would get another";
    if (why != NULL) {
        sl_conf_error(ctx, where, "the headers plugin cannot change %s: %s", name, why);
        return false;
    }
    return true;
}

/* Whether name is already one of the n ops (any case); reported if so. */
static bool repeated(struct sl_conf_ctx *ctx, const struct sl_node *where, const struct hdr_op *ops,
                     size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(ops[i].name, name) == 0) {
            sl_conf_error(ctx, where, "%s is named twice (header names ignore case)", name);
            return true;
        }
    }
    return false;
}

/* dir.set or dir.add: a map of names to value templates. */
static void read_values(struct sl_conf_ctx *ctx, const struct sl_node *dir, const char *key,
                        const struct dir *d, struct hdr_op **out, size_t *n_out)
{
    const struct sl_node *m = sl_node_get(dir, key);
    struct sl_arena *a = sl_conf_arena(ctx);
    struct hdr_op *ops;
    size_t n = 0;

    if (m == NULL)
        return;
    if (m->type != SL_NODE_MAP) {
        sl_conf_error(ctx, m, "expected a map of header names to values, found %s",
                      sl_node_type_name(m));
        return;
    }
    ops = sl_arena_calloc(a, (m->n ? m->n : 1) * sizeof(*ops));
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_node *item = m->items[i];
        struct sl_node k;
        const char *text;
        char why[256];

        if (!name_ok(ctx, at_key(item, &k), item->key, d) ||
            repeated(ctx, at_key(item, &k), ops, n, item->key) ||
            sl_conf_node_str(ctx, item, &text) != 0)
            continue;
        /* item->len, not strlen(): a "\0" in the YAML is in the text. */
        if (sl__hdr_tmpl_parse(a, text, item->len, &ops[n].value, why, sizeof(why)) != 0) {
            sl_conf_error(ctx, item, "%s", why);
            continue;
        }
        ops[n++].name = item->key;
    }
    *out = ops;
    *n_out = n;
}

/* dir.remove: a list of names. */
static void read_removals(struct sl_conf_ctx *ctx, const struct sl_node *dir, const struct dir *d,
                          struct hdr_ops *ops)
{
    const struct sl_node *l = sl_node_get(dir, "remove");
    size_t n = 0;

    if (l == NULL)
        return;
    if (l->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, l, "expected a list of header names, found %s", sl_node_type_name(l));
        return;
    }
    ops->remove = sl_arena_calloc(sl_conf_arena(ctx), (l->n ? l->n : 1) * sizeof(*ops->remove));
    for (size_t i = 0; i < l->n; i++) {
        const char *name;

        if (sl_conf_node_str(ctx, l->items[i], &name) != 0 || !name_ok(ctx, l->items[i], name, d) ||
            repeated(ctx, l->items[i], ops->remove, n, name))
            continue;
        ops->remove[n++].name = name;
    }
    ops->n_remove = n;
}

/* request: or response: */
static void read_dir(struct sl_conf_ctx *ctx, const struct sl_node *node, const char *key,
                     bool request, struct hdr_ops *ops)
{
    static const char *const keys[] = {"set", "add", "remove", NULL};
    const struct sl_node *dir = sl_node_get(node, key);
    struct dir d = {request, request ? request_id_header(node) : NULL};

    if (dir == NULL || (sl_conf_keys(ctx, dir, keys) != 0 && dir->type != SL_NODE_MAP))
        return;
    read_removals(ctx, dir, &d, ops);
    read_values(ctx, dir, "set", &d, &ops->set, &ops->n_set);
    read_values(ctx, dir, "add", &d, &ops->add, &ops->n_add);
    /* What a client sends under these names (or their underscore twins,
     * X_Client_Ip) must not reach the upstream as if the gateway had. */
    for (size_t i = 0; request && i < ops->n_set; i++)
        sl_conf_header_owned(ctx, ops->set[i].name);
    for (size_t i = 0; request && i < ops->n_remove; i++)
        sl_conf_header_owned(ctx, ops->remove[i].name);
}

void *sl__headers_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"request", "response", NULL};
    struct hdr_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);

    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    read_dir(ctx, node, "request", true, &c->request);
    read_dir(ctx, node, "response", false, &c->response);
    if (sl_conf_errors(ctx) != errors)
        return NULL;
    if (c->request.n_remove + c->request.n_set + c->request.n_add + c->response.n_remove +
            c->response.n_set + c->response.n_add ==
        0)
        sl_conf_warn(ctx, node, "nothing to set, add or remove");
    return c;
}
