/*
 * split plugin: its YAML.
 *
 *   split:
 *     to:                          # the ranges, in this order
 *       - {upstream: v1, weight: 95}
 *       - {upstream: v2, weight: 5}
 *     key: header:X-User-Id        # optional: sticky by this key (not route); else random
 *     pin:                         # optional: checked first, first match wins
 *       - {header: X-Canary, value: "1", upstream: v2}
 *       - {cookie: canary, value: "1", upstream: v2}
 */
#include "split.h"

#include <stdio.h>
#include <string.h>

/* RFC 9110 tchar: what a header or cookie name is made of. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s) != NULL))
            return false;
    return true;
}

/* One {upstream, weight} of to:, at index i; 0 or -1 (reported). */
static int read_target(struct sl_conf_ctx *ctx, const struct sl_node *item, struct split_conf *c,
                       size_t i)
{
    static const char *const keys[] = {"upstream", "weight", NULL};
    struct split_target *t = &c->to[i];
    int errors = sl_conf_errors(ctx);
    uint64_t w = 0;

    if (sl_conf_keys(ctx, item, keys) != 0 && item->type != SL_NODE_MAP)
        return -1;
    if (sl_conf_upstream(ctx, item, "upstream", &t->upstream, true) == 0) {
        t->name = sl_node_get(item, "upstream")->text;
        for (size_t j = 0; j < i; j++)
            if (c->to[j].name != NULL && c->to[j].upstream == t->upstream) {
                sl_conf_error(ctx, sl_node_get(item, "upstream"),
                              "upstream \"%s\" is already in to[%zu]: each upstream once", t->name,
                              j);
                t->name = NULL;
                break;
            }
    }
    if (sl_conf_uint(ctx, item, "weight", 0, SPLIT_MAX_TOTAL, &w, true) == 0)
        t->weight = (uint32_t)w;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

static void read_to(struct sl_conf_ctx *ctx, const struct sl_node *node, struct split_conf *c)
{
    const struct sl_node *to = sl_node_get(node, "to");
    bool ok = true;

    if (to == NULL) {
        sl_conf_error(ctx, node,
                      "required key \"to\" is missing: the upstreams to split between, as a "
                      "list of {upstream: NAME, weight: N}");
        return;
    }
    if (to->invalid)
        return;
    if (to->type != SL_NODE_SEQ || to->n == 0) {
        sl_conf_error(ctx, to, "expected a list of {upstream: NAME, weight: N}, found %s",
                      to->type == SL_NODE_SEQ ? "an empty list" : sl_node_type_name(to));
        return;
    }
    c->to = sl_arena_calloc(sl_conf_arena(ctx), to->n * sizeof(*c->to));
    c->n = to->n;
    for (size_t i = 0; i < to->n; i++) {
        if (read_target(ctx, to->items[i], c, i) != 0) {
            ok = false;
            continue;
        }
        c->total += c->to[i].weight;
        c->to[i].end = c->total;
    }
    if (!ok)
        return;
    if (c->total == 0)
        sl_conf_error(ctx, to, "every weight is 0: at least one upstream must take traffic");
    else if (c->total > SPLIT_MAX_TOTAL)
        sl_conf_error(ctx, to, "the weights add up to %llu, more than %u",
                      (unsigned long long)c->total, SPLIT_MAX_TOTAL);
}

/* One {header|cookie: NAME, value: V, upstream: U} of pin:. */
static void read_pin(struct sl_conf_ctx *ctx, const struct sl_node *item, struct split_pin *p)
{
    static const char *const keys[] = {"header", "cookie", "value", "upstream", NULL};
    const char *name = NULL, *value;
    bool header = sl_node_get(item, "header") != NULL, cookie = sl_node_get(item, "cookie") != NULL;
    const char *kind = header ? "header" : "cookie";

    if (sl_conf_keys(ctx, item, keys) != 0 && item->type != SL_NODE_MAP)
        return;
    if (header == cookie) {
        sl_conf_error(ctx, item, "expected one of header: NAME or cookie: NAME, found %s",
                      header ? "both" : "neither");
    } else if (sl_conf_str(ctx, item, kind, &name, true) == 0) {
        if (is_token(name))
            p->key = (struct sl_key){header ? SL_KEY_HEADER : SL_KEY_COOKIE, name,
                                     sl_arena_printf(sl_conf_arena(ctx), "%s:%s", kind, name)};
        else
            sl_conf_error(ctx, sl_node_get(item, kind),
                          "expected a %s name (letters, digits and !#$%%&'*+-.^_`|~), found \"%s\"",
                          kind, name);
    }
    if (sl_conf_str(ctx, item, "value", &value, true) == 0) {
        if (value[0] == '\0')
            sl_conf_error(ctx, sl_node_get(item, "value"),
                          "expected a value of at least one character: an empty %s would pin "
                          "every request that sends it empty",
                          kind);
        p->value = sl_str_from(value);
    }
    if (sl_conf_upstream(ctx, item, "upstream", &p->upstream, true) == 0)
        p->name = sl_node_get(item, "upstream")->text;
}

static void read_pins(struct sl_conf_ctx *ctx, const struct sl_node *node, struct split_conf *c)
{
    const struct sl_node *pins = sl_node_get(node, "pin");

    if (pins == NULL || pins->invalid)
        return;
    if (pins->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, pins,
                      "expected a list of {header: NAME, value: V, upstream: U} or {cookie: "
                      "NAME, value: V, upstream: U}, found %s",
                      sl_node_type_name(pins));
        return;
    }
    c->pins = sl_arena_calloc(sl_conf_arena(ctx), (pins->n ? pins->n : 1) * sizeof(*c->pins));
    c->n_pins = pins->n;
    for (size_t i = 0; i < pins->n; i++)
        read_pin(ctx, pins->items[i], &c->pins[i]);
}

void *sl__split_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"to", "key", "pin", NULL};
    struct split_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);

    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    read_to(ctx, node, c);
    /* Not route: one value for every request would send them all to one
     * upstream, whatever the weights say. */
    c->keyed =
        sl_conf_key(ctx, node, "key", SL_KEYS_ALL & ~(1u << SL_KEY_ROUTE), &c->key, false) == 0;
    read_pins(ctx, node, c);
    return sl_conf_errors(ctx) == errors ? c : NULL;
}
