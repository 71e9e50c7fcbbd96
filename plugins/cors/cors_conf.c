/*
 * cors plugin: its YAML.
 *
 *   cors:
 *     origins: [https://app.example.com, "*.example.org"]   # or ["*"]; *.x: https only
 *     methods: [GET, HEAD, POST]       # the default; ["*"]: whichever is asked
 *     headers: [Authorization]         # absent: whichever are asked
 *     expose_headers: [RateLimit-Remaining]
 *     credentials: false               # never with origins: ["*"]
 *     max_age: 10m                     # whole seconds, at most 1d
 */
#include "cors.h"

#include <string.h>

#define MAX_AGE_MS (24ull * 3600 * 1000)

/* Each item of a list as text, and all of them joined with ", ". what
 * names what each item must be, an HTTP token (NULL: any string). */
struct list {
    const char **items; /* NULL-terminated */
    size_t n;
    const char *text; /* NULL when n is 0 */
};

static int read_list(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                     const char *what, struct list *out)
{
    const struct sl_node *seq = sl_node_get(map, key);
    struct sl_arena *a = sl_conf_arena(ctx);
    size_t len = 0;
    int bad = 0;
    char *p;

    if (seq == NULL)
        return 1;
    if (seq->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, seq, "expected a list, found %s", sl_node_type_name(seq));
        return -1;
    }
    out->items = sl_arena_calloc(a, (seq->n + 1) * sizeof(*out->items));
    out->n = seq->n;
    for (size_t i = 0; i < seq->n; i++) {
        if (sl_conf_node_str(ctx, seq->items[i], &out->items[i]) != 0) {
            bad = -1;
            continue;
        }
        if (what != NULL && !sl__cors_is_token(sl_str_from(out->items[i]))) {
            sl_conf_error(ctx, seq->items[i], "expected %s (an HTTP token), found \"%s\"", what,
                          out->items[i]);
            bad = -1;
            continue;
        }
        len += strlen(out->items[i]) + 2;
    }
    if (bad != 0 || out->n == 0)
        return bad;
    p = sl_arena_alloc(a, len);
    out->text = p;
    for (size_t i = 0; i < out->n; i++) {
        size_t l = strlen(out->items[i]);

        memcpy(p, out->items[i], l);
        p += l;
        if (i + 1 < out->n)
            *p++ = ',', *p++ = ' ';
    }
    *p = '\0';
    return 0;
}

/* Whether list holds just "*" (which must then be alone). */
static bool wildcard(struct sl_conf_ctx *ctx, const struct sl_node *map, const char *key,
                     const struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], "*") == 0) {
            if (l->n == 1)
                return true;
            sl_conf_error(ctx, sl_node_get(map, key)->items[i],
                          "\"*\" already means every one: list it alone");
        }
    return false;
}

static void read_origins(struct sl_conf_ctx *ctx, const struct sl_node *node, struct cors_conf *c)
{
    struct list l = {0};
    const char *why;

    if (read_list(ctx, node, "origins", NULL, &l) != 0)
        return;
    if (l.n == 0) {
        sl_conf_error(ctx, sl_node_get(node, "origins"), "expected at least one origin");
        return;
    }
    c->any_origin = wildcard(ctx, node, "origins", &l);
    if (c->any_origin) {
        /* Browsers refuse credentials with "*", and echoing every origin
         * instead would let any site read answers made with the user's
         * cookies. */
        if (c->credentials)
            sl_conf_error(ctx, sl_node_get(node, "origins")->items[0],
                          "credentials: true needs the origins listed: a browser never sends "
                          "credentials to \"*\", and every origin is not safe with them");
        return;
    }
    c->origins = sl_arena_calloc(sl_conf_arena(ctx), l.n * sizeof(*c->origins));
    c->n_origins = l.n;
    for (size_t i = 0; i < l.n; i++) {
        const struct sl_node *item = sl_node_get(node, "origins")->items[i];

        if (strcmp(l.items[i], "*") == 0)
            continue;
        if (sl__cors_origin_parse(l.items[i], &c->origins[i], &why) != 0)
            sl_conf_error(ctx, item, "%s, found \"%s\"", why, l.items[i]);
        else if (c->credentials && sl__cors_origin_plaintext(&c->origins[i]))
            sl_conf_warn(ctx, item,
                         "%s is plain http: anyone on the network path of its pages can change "
                         "them, and with credentials: true they read answers made with the "
                         "user's cookies (use https://)",
                         l.items[i]);
    }
}

static void read_max_age(struct sl_conf_ctx *ctx, const struct sl_node *node, struct cors_conf *c)
{
    uint64_t ms = 0;

    if (sl_conf_duration(ctx, node, "max_age", &ms, false) != 0)
        return;
    if (ms % 1000 != 0 || ms > MAX_AGE_MS) {
        sl_conf_error(ctx, sl_node_get(node, "max_age"),
                      "expected whole seconds, at most 1d (browsers keep a preflight 2h at most)");
        return;
    }
    c->max_age_text = sl_arena_printf(sl_conf_arena(ctx), "%llu", (unsigned long long)(ms / 1000));
}

void *sl__cors_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node)
{
    static const char *const keys[] = {"origins",     "methods", "headers", "expose_headers",
                                       "credentials", "max_age", NULL};
    static const char *default_methods[] = {"GET", "HEAD", "POST", NULL};
    struct cors_conf *c = sl_arena_calloc(sl_conf_arena(ctx), sizeof(*c));
    struct list methods = {default_methods, 3, "GET, HEAD, POST"}, headers = {0}, expose = {0};
    int errors = sl_conf_errors(ctx);

    if (sl_conf_keys(ctx, node, keys) != 0 && node->type != SL_NODE_MAP)
        return NULL;
    sl_conf_bool(ctx, node, "credentials", &c->credentials, false);
    if (sl_node_get(node, "origins") == NULL)
        sl_conf_error(ctx, node, "origins: is required (the origins allowed, or [\"*\"])");
    read_origins(ctx, node, c);
    if (read_list(ctx, node, "methods", "a method", &methods) == 0) {
        if (methods.n == 0)
            sl_conf_error(ctx, sl_node_get(node, "methods"), "expected at least one method");
        c->any_method = wildcard(ctx, node, "methods", &methods);
    }
    c->methods = methods.items;
    c->methods_text = methods.text;
    /* Absent: whichever headers a preflight asks for; [] none but the ones
     * browsers always allow. */
    if (read_list(ctx, node, "headers", "a header name", &headers) == 0 &&
        !wildcard(ctx, node, "headers", &headers)) {
        c->headers = headers.items;
        c->headers_text = headers.text;
    }
    read_list(ctx, node, "expose_headers", "a header name", &expose);
    c->expose_text = expose.text;
    read_max_age(ctx, node, c);
    return sl_conf_errors(ctx) == errors ? c : NULL;
}
