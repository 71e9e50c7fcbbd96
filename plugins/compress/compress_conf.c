/*
 * compress plugin: its YAML.
 *
 *   compress:
 *     algorithms: [br, gzip]      # which codings, preferred first on equal q
 *     types: [text/\*, application/json, application/javascript,
 *             application/xml, image/svg+xml]
 *     min_size: 1k                # a smaller Content-Length is left alone
 *     level: 5                    # gzip level and brotli quality, 1-9
 *     gzip_level: 6               # or each on its own (gzip 1-9,
 *     br_level: 4                 #  brotli 0-11)
 */
#include "compress.h"

#include <string.h>

static const char *const default_types[] = {
    "text/*",          "application/json", "application/javascript",
    "application/xml", "image/svg+xml",    NULL};

/* The n-th item of a list node (a single scalar stands for a list of one). */
static const struct sl_node *item(const struct sl_node *list, size_t i)
{
    return list->type == SL_NODE_SEQ ? list->items[i] : list;
}

static void read_algorithms(struct sl_conf_ctx *ctx, const struct sl_node *node, struct cz_conf *c)
{
    const char **names;
    size_t n, k = 0;
    bool seen[CZ_CODINGS] = {false};

    if (sl_conf_strlist(ctx, node, "algorithms", &names, &n, false) != 0)
        return;
    if (n == 0) {
        sl_conf_error(ctx, sl_node_get(node, "algorithms"),
                      "expected at least one of br, gzip (to compress nothing, leave the "
                      "plugin out)");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        enum cz_coding a = strcmp(names[i], "br") == 0     ? CZ_BR
                           : strcmp(names[i], "gzip") == 0 ? CZ_GZIP
                                                           : CZ_IDENTITY;

        if (a == CZ_IDENTITY)
            sl_conf_error(ctx, item(sl_node_get(node, "algorithms"), i),
                          "unknown algorithm \"%s\" (expected br or gzip)", names[i]);
        else if (seen[a])
            sl_conf_error(ctx, item(sl_node_get(node, "algorithms"), i),
                          "algorithm \"%s\" is listed twice", names[i]);
        else {
            c->order[k++] = a;
            seen[a] = true;
        }
    }
    c->n_order = k;
}

static void read_types(struct sl_conf_ctx *ctx, const struct sl_node *node, struct cz_conf *c)
{
    const char **types;
    size_t n;

    if (sl_conf_strlist(ctx, node, "types", &types, &n, false) != 0)
        return;
    if (n == 0) {
        sl_conf_error(ctx, sl_node_get(node, "types"),
                      "expected at least one media type, such as text/*");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        /* A copy: the check lowers its case in place. */
        char *t = sl_arena_strndup(sl_conf_arena(ctx), types[i], strlen(types[i]));
        const char *why = sl__cz_type_check(t);

        if (why != NULL)
            sl_conf_error(ctx, item(sl_node_get(node, "types"), i), "%s, found \"%s\"", why,
                          types[i]);
        types[i] = t;
    }
    c->types = types;
    c->n_types = n;
}

void *sl__compress_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"algorithms", "types",    "min_size", "level",
                                       "gzip_level", "br_level", NULL};
    struct cz_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);
    uint64_t v;

    c->order[0] = CZ_BR;
    c->order[1] = CZ_GZIP;
    c->n_order = 2;
    c->types = default_types;
    c->n_types = sizeof(default_types) / sizeof(default_types[0]) - 1;
    c->min_size = 1024;
    c->level[CZ_GZIP] = c->level[CZ_BR] = 5;
    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    read_algorithms(ctx, node, c);
    read_types(ctx, node, c);
    sl_conf_size(ctx, node, "min_size", &c->min_size, false);
    if (sl_conf_uint(ctx, node, "level", 1, 9, &v, false) == 0)
        c->level[CZ_GZIP] = c->level[CZ_BR] = (int)v;
    if (sl_conf_uint(ctx, node, "gzip_level", 1, 9, &v, false) == 0)
        c->level[CZ_GZIP] = (int)v;
    if (sl_conf_uint(ctx, node, "br_level", 0, 11, &v, false) == 0)
        c->level[CZ_BR] = (int)v;
    return sl_conf_errors(ctx) == errors ? c : NULL;
}
