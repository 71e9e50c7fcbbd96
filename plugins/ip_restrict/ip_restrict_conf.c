/*
 * ip_restrict plugin: its YAML.
 *
 *   ip_restrict:
 *     allow: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]   # only these pass
 *     deny: [10.9.0.0/16]                               # never these
 *
 * Each list is read once into sorted ranges (cidr.h); a mistake in one
 * entry is reported at that entry, and every entry is checked.
 */
#include "ip_restrict.h"

#include <stdio.h>

static void report(struct sl_conf_ctx *ctx, const struct sl_node *item, enum ipr_parse r,
                   const struct ipr_cidr *c)
{
    char net[64];

    switch (r) {
    case IPR_OK:
        break;
    case IPR_BAD_ADDR:
        sl_conf_error(ctx, item, "expected an IPv4 or IPv6 address or CIDR, found \"%s\"",
                      item->text);
        break;
    case IPR_BAD_PREFIX:
        sl_conf_error(ctx, item, "\"%s\": the prefix length is 0 to %s, without leading zeros",
                      item->text, c->family == 4 ? "32 for IPv4" : "128 for IPv6");
        break;
    case IPR_HOST_BITS:
        /* Fail closed: 10.1.2.3/8 may mean 10.0.0.0/8 or the one address,
         * and the two differ by sixteen million clients. */
        sl__ipr_cidr_str(c, net, sizeof(net));
        sl_conf_error(ctx, item,
                      "\"%s\" has bits set after its prefix: write %s for the network, or "
                      "the address alone for one client",
                      item->text, net);
        break;
    }
}

/* An IPv6 entry over all of ::ffff:0:0/96 (::/0) in a list without IPv4
 * entries may have been meant to take in IPv4 clients too: a v4-mapped
 * client is read as IPv4 and meets the IPv4 entries only. */
static void warn_v4mapped(struct sl_conf_ctx *ctx, const struct ipr_set *s,
                          const struct ipr_cidr *c, const struct sl_node *const *at, size_t n)
{
    for (size_t i = 0; i < n && s->n4 == 0; i++)
        if (sl__ipr_cidr_covers_v4mapped(&c[i]))
            sl_conf_warn(ctx, at[i],
                         "\"%s\" matches IPv6 clients only: IPv4 clients, a dual-stack "
                         "listener's (::ffff:a.b.c.d) too, meet the IPv4 entries, and this list "
                         "has none (add 0.0.0.0/0 for all of them)",
                         at[i]->text);
}

/* One list, allow or deny, into s (*given set when there is one); errors
 * are reported through ctx. */
static void read_list(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                      struct ipr_set *s, bool *given)
{
    const struct sl_node *list = sl_node_get(map, key);
    struct sl_arena *a = sl_conf_arena(ctx);
    struct ipr_cidr *c;
    const struct sl_node **at; /* each entry's node, for warnings */
    size_t n = 0;
    bool ok = true;

    if (list == NULL)
        return;
    if (list->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, list, "expected a list of addresses or CIDRs, found %s",
                      sl_node_type_name(list));
        return;
    }
    if (list->n == 0) {
        /* An empty allow list could mean "no one" or "no restriction". */
        sl_conf_error(ctx, list,
                      "expected at least one address or CIDR (leave the key out for none; "
                      "deny: [0.0.0.0/0, \"::/0\"] lets no one through)");
        return;
    }
    c = sl_arena_alloc(a, list->n * sizeof(*c));
    at = sl_arena_alloc(a, list->n * sizeof(*at));
    for (size_t i = 0; i < list->n; i++) {
        const char *text;
        enum ipr_parse r;

        if (sl_conf_node_str(ctx, list->items[i], &text) != 0) {
            ok = false;
            continue;
        }
        r = sl__ipr_cidr_parse(text, &c[n]);
        report(ctx, list->items[i], r, &c[n]);
        if (r != IPR_OK)
            ok = false;
        else
            at[n++] = list->items[i];
    }
    if (!ok)
        return;
    s->v4 = sl_arena_alloc(a, n * sizeof(*s->v4));
    s->v6 = sl_arena_alloc(a, n * sizeof(*s->v6));
    sl__ipr_set_build(s, c, n);
    *given = true;
    warn_v4mapped(ctx, s, c, at, n);
}

void *sl__ip_restrict_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"allow", "deny", NULL};
    struct ipr_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    int errors = sl_conf_errors(ctx);
    bool denies = false;

    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    read_list(ctx, node, "allow", &c->allow, &c->has_allow);
    read_list(ctx, node, "deny", &c->deny, &denies);
    if (sl_conf_errors(ctx) != errors)
        return NULL;
    if (!c->has_allow && !denies)
        sl_conf_warn(ctx, node, "neither allow nor deny is set: every client passes");
    return c;
}
