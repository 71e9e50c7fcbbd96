/*
 * Header safety rules and their YAML:
 *
 *   headers_with_underscores: drop   # drop | reject (400) | allow
 *   request_trailers: drop           # drop | forward
 *   via: sluice                      # the Via pseudonym, or off
 */
#include "config/header_policy.h"

#include <string.h>

#include "base/http.h"

bool sl__header_trailer_ok(struct sl_str name, const void *arg)
{
    const struct sl_header_policy *hp = arg;

    if (!hp->forward_trailers || sl__header_owned(&hp->owned, name))
        return false;
    if (hp->via != NULL && sl_str_caseeq_lit(name, "Via"))
        return false; /* the gateway's own, in the head */
    return hp->underscores == SL_UNDERSCORES_ALLOW || memchr(name.p, '_', name.len) == NULL;
}

/* A Via pseudonym is a token, or a host[:port] (RFC 9110 7.6.3). */
static bool valid_pseudonym(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!sl__http_valid_name((struct sl_str){s + i, 1}) && s[i] != ':' && s[i] != '[' &&
            s[i] != ']')
            return false;
    return true;
}

static void read_via(struct sl_conf_ctx *ctx, const struct sl_node *root,
                     struct sl_header_policy *hp)
{
    const struct sl_node *n = sl_node_get(root, "via");
    const char *via = "sluice";

    if (n != NULL && n->type == SL_NODE_SCALAR &&
        (strcmp(n->text, "off") == 0 || (!n->quoted && strcmp(n->text, "false") == 0))) {
        hp->via = NULL;
        hp->via_len = 0;
        return;
    }
    if (sl_conf_str(ctx, root, "via", &via, false) < 0)
        return;
    if (!valid_pseudonym(via)) {
        sl_conf_error(ctx, n,
                      "expected a pseudonym (a token such as sluice, or host:port) or off, "
                      "found \"%s\"",
                      via);
        return;
    }
    hp->via = via;
    hp->via_len = strlen(via);
}

void sl__header_policy_read(struct sl_conf_ctx *ctx, const struct sl_node *root,
                            struct sl_header_policy *hp)
{
    static const char *const underscores[] = {"drop", "reject", "allow", NULL};
    static const char *const trailers[] = {"drop", "forward", NULL};
    int u = SL_UNDERSCORES_DROP, t = 0;

    sl_conf_enum(ctx, root, "headers_with_underscores", underscores, &u, false);
    sl_conf_enum(ctx, root, "request_trailers", trailers, &t, false);
    hp->underscores = (enum sl_underscores)u;
    hp->forward_trailers = t == 1;
    hp->via = "sluice";
    hp->via_len = 6;
    read_via(ctx, root, hp);
}
