/*
 * auth: the YAML every token-checking plugin shares (SL_BEARER_KEYS):
 *
 *     scopes: [users:read]                   # all required
 *     claims: {role: [admin, editor]}        # each must hold one of its values
 *     rules: [{methods: [POST], scopes: [users:write], claims: {...}}]
 *     forward_claims: {sub: X-User-Id}
 *     strip_authorization: false
 *     token_from: [header:Authorization]     # header:NAME | cookie:NAME | query:NAME
 *     realm: api
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/bearer.h"
#include "base/http.h"

#define MAX_LIST    64
#define MAX_SOURCES 8

static bool is_token(const char *s)
{
    return sl__http_valid_name(sl_str_from(s));
}

/* A scope (RFC 6749 3.3): printable ASCII but space, '"' and '\'. It goes
 * into a quoted WWW-Authenticate parameter as it is. */
static bool is_scope(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* claims: {PATH: VALUE or [VALUES]} */
static int read_claims(struct sl_conf_ctx *ctx, const struct sl_node *map, struct sl_authz *a)
{
    const struct sl_node *m = sl_node_get(map, "claims");
    struct sl_claim_req *reqs;
    int errors = sl_conf_errors(ctx);

    if (m == NULL)
        return 0;
    if (m->type != SL_NODE_MAP || m->n == 0 || m->n > MAX_LIST) {
        sl_conf_error(ctx, m, "expected a map of 1 to %d claims to values, found %s", MAX_LIST,
                      sl_node_type_name(m));
        return -1;
    }
    reqs = sl_arena_calloc(sl_conf_arena(ctx), m->n * sizeof(*reqs));
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_node *item = m->items[i];
        const char **values = NULL;

        reqs[i].path = item->key;
        if (!sl__claim_path_ok(item->key))
            sl_conf_error(ctx, item, "bad claim name \"%s\" (names, dot-separated)", item->key);
        else if (sl_conf_strlist(ctx, m, item->key, &values, &reqs[i].n, true) == 0 &&
                 reqs[i].n == 0)
            sl_conf_error(ctx, item, "expected at least one value");
        else
            reqs[i].values = values;
    }
    a->claims = reqs;
    a->nclaims = m->n;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

static int read_scopes(struct sl_conf_ctx *ctx, const struct sl_node *map, struct sl_authz *a)
{
    const char **scopes;
    size_t n;
    bool ok = true;

    if (sl_conf_strlist(ctx, map, "scopes", &scopes, &n, false) != 0)
        return sl_node_get(map, "scopes") == NULL ? 0 : -1;
    for (size_t i = 0; i < n; i++)
        if (!is_scope(scopes[i])) {
            const struct sl_node *s = sl_node_get(map, "scopes");

            sl_conf_error(ctx, s->type == SL_NODE_SEQ ? s->items[i] : s,
                          "a scope is printable ASCII without spaces, quotes or backslashes");
            ok = false;
        }
    a->scopes = scopes;
    a->nscopes = n;
    return ok ? 0 : -1;
}

static int read_rules(struct sl_conf_ctx *ctx, const struct sl_node *node, struct sl_bearer *b)
{
    static const char *const keys[] = {"methods", "scopes", "claims", NULL};
    const struct sl_node *list = sl_node_get(node, "rules");
    struct sl_authz_rule *rules;
    int errors = sl_conf_errors(ctx);

    if (list == NULL)
        return 0;
    if (list->type != SL_NODE_SEQ || list->n == 0 || list->n > MAX_LIST) {
        sl_conf_error(ctx, list, "expected a list of 1 to %d rules, found %s", MAX_LIST,
                      sl_node_type_name(list));
        return -1;
    }
    rules = sl_arena_calloc(sl_conf_arena(ctx), list->n * sizeof(*rules));
    for (size_t i = 0; i < list->n; i++) {
        const struct sl_node *r = list->items[i];
        const char **methods;

        if (sl_conf_keys(ctx, r, keys) != 0 && r->type != SL_NODE_MAP)
            continue;
        if (sl_conf_strlist(ctx, r, "methods", &methods, &rules[i].nmethods, true) == 0) {
            rules[i].methods = methods;
            const struct sl_node *ms = sl_node_get(r, "methods");

            for (size_t m = 0; m < rules[i].nmethods; m++)
                if (!is_token(methods[m]))
                    sl_conf_error(ctx, ms->type == SL_NODE_SEQ ? ms->items[m] : ms,
                                  "\"%s\" is not a method", methods[m]);
        }
        read_scopes(ctx, r, &rules[i].authz);
        read_claims(ctx, r, &rules[i].authz);
    }
    b->rules = rules;
    b->nrules = list->n;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

static int read_forwards(struct sl_conf_ctx *ctx, const struct sl_node *node, struct sl_bearer *b)
{
    const struct sl_node *m = sl_node_get(node, "forward_claims");
    struct sl_claim_forward *f;
    int errors = sl_conf_errors(ctx);

    if (m == NULL)
        return 0;
    if (m->type != SL_NODE_MAP || m->n > MAX_LIST) {
        sl_conf_error(ctx, m, "expected a map of claims to header names, found %s",
                      sl_node_type_name(m));
        return -1;
    }
    f = sl_arena_calloc(sl_conf_arena(ctx), (m->n + 1) * sizeof(*f));
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_node *item = m->items[i];

        f[i].claim = item->key;
        if (!sl__claim_path_ok(item->key))
            sl_conf_error(ctx, item, "bad claim name \"%s\" (names, dot-separated)", item->key);
        if (sl_conf_node_str(ctx, item, &f[i].header) != 0)
            continue;
        if (!is_token(f[i].header)) {
            sl_conf_error(ctx, item, "\"%s\" is not a header name", f[i].header);
            continue;
        }
        /* The client's X_User_Id never reaches the upstream either. */
        sl_conf_header_owned(ctx, f[i].header);
    }
    b->forwards = f;
    b->nforwards = m->n;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

static int read_sources(struct sl_conf_ctx *ctx, const struct sl_node *node, struct sl_bearer *b)
{
    static const char *const fallback[] = {"header:Authorization", NULL};
    static const char *const kinds[] = {"header:", "cookie:", "query:"};
    const struct sl_node *list = sl_node_get(node, "token_from");
    const char *const *names = fallback;
    const char **got;
    struct sl_token_source *s;
    size_t n = 1;
    int errors = sl_conf_errors(ctx);

    if (sl_conf_strlist(ctx, node, "token_from", &got, &n, false) == 0) {
        names = got;
        if (n == 0 || n > MAX_SOURCES) {
            sl_conf_error(ctx, list, "expected 1 to %d places to look for the token", MAX_SOURCES);
            return -1;
        }
    } else if (list != NULL) {
        return -1;
    }
    s = sl_arena_calloc(sl_conf_arena(ctx), n * sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        int k = 0;

        while (k < 3 && strncmp(names[i], kinds[k], strlen(kinds[k])) != 0)
            k++;
        if (k == 3 || !is_token(names[i] + strlen(kinds[k]))) {
            sl_conf_error(ctx, list->type == SL_NODE_SEQ ? list->items[i] : list,
                          "expected header:NAME, cookie:NAME or query:NAME, found \"%s\"",
                          names[i]);
            continue;
        }
        s[i].kind = (enum sl_token_from)k;
        s[i].name = names[i] + strlen(kinds[k]);
        s[i].bearer = k == SL_TOKEN_HEADER && strcasecmp(s[i].name, "Authorization") == 0;
        s[i].key = (struct sl_key){SL_KEY_COOKIE, s[i].name, names[i]};
    }
    b->sources = s;
    b->nsources = n;
    return sl_conf_errors(ctx) == errors ? 0 : -1;
}

/* The WWW-Authenticate values (RFC 6750 3): no error code when the request
 * had no token at all. */
static int read_realm(struct sl_conf_ctx *ctx, const struct sl_node *node, struct sl_bearer *b)
{
    struct sl_arena *a = sl_conf_arena(ctx);
    const char *realm = NULL;
    char *r = NULL;

    if (sl_conf_str(ctx, node, "realm", &realm, false) < 0)
        return -1;
    if (realm != NULL) {
        for (const char *p = realm; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\') {
                sl_conf_error(ctx, sl_node_get(node, "realm"),
                              "a realm has no quotes, backslashes or control characters");
                return -1;
            }
        r = sl_arena_printf(a, "realm=\"%s\"", realm);
    }
    b->www_missing = r != NULL ? sl_arena_printf(a, "Bearer %s", r) : "Bearer";
    b->www_invalid =
        sl_arena_printf(a, "Bearer %s%serror=\"invalid_token\"", r ? r : "", r ? ", " : "");
    b->www_forbidden =
        sl_arena_printf(a, "Bearer %s%serror=\"insufficient_scope\"", r ? r : "", r ? ", " : "");
    return 0;
}

const struct sl_bearer *sl_bearer_conf(struct sl_conf_ctx *ctx, const struct sl_node *node,
                                       const char *plugin, const struct sl_counter *decisions)
{
    struct sl_bearer *b = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*b));
    int errors = sl_conf_errors(ctx);

    if (b == NULL)
        return NULL;
    b->plugin = plugin;
    b->decisions = decisions;
    read_scopes(ctx, node, &b->authz);
    read_claims(ctx, node, &b->authz);
    read_rules(ctx, node, b);
    read_forwards(ctx, node, b);
    read_sources(ctx, node, b);
    read_realm(ctx, node, b);
    sl_conf_bool(ctx, node, "strip_authorization", &b->strip_authorization, false);
    return sl_conf_errors(ctx) == errors ? b : NULL;
}
