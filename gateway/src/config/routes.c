/*
 * The routes: section (match, upstream, strip_prefix, plugins) and the
 * top-level plugins: defaults each route starts from.
 */
#include "config/config.h"

#include <ctype.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "conf/conf_read.h"
#include "conf/key_trace.h"
#include "config/plugins.h"
#include "base/util.h"

/* An empty map standing where at is: a plugin's defaults. */
static const struct sl_node *empty_map(struct sl_conf_ctx *ctx, const struct sl_node *at)
{
    struct sl_node *e = sl_arena_calloc(ctx->arena, sizeof(*e));

    e->type = SL_NODE_MAP;
    e->line = at->line;
    e->col = at->col;
    e->key = at->key;
    e->parent = at->parent;
    e->index = -1;
    return e;
}

static void parse_use(struct sl_conf_ctx *ctx, const struct sl_plugin *pl, const struct sl_node *p,
                      struct sl_plugin_use *use)
{
    use->plugin = pl;
    use->conf = pl->conf_parse(ctx, p);
    if (use->conf == NULL)
        use->plugin = NULL; /* its errors were reported */
    else if (pl->conf_free != NULL)
        sl__conf_on_free(ctx, pl->conf_free, use->conf);
}

/*
 * Read a "plugins:" map into uses (one slot per built-in plugin, indexed by
 * plugin id). A plugin set to false is recorded with conf == NULL and the
 * plugin pointer set, which a route uses to turn a default off.
 */
static void read_plugins(struct sl_conf_ctx *ctx, const struct sl_node *n,
                         struct sl_plugin_use *uses)
{
    if (n->type != SL_NODE_MAP) {
        sl_conf_error(ctx, n, "expected a map of plugin names to their settings");
        return;
    }
    for (size_t i = 0; sl__key_trace_on && i < sl__n_plugins; i++)
        sl__key_trace_key(n, sl__plugins[i]->name);
    for (size_t i = 0; i < n->n; i++) {
        const struct sl_node *p = n->items[i];
        const struct sl_plugin *pl;
        size_t id;

        pl = sl__plugin_find(p->key, &id);
        if (pl == NULL) {
            char known[256] = "";
            size_t len = 0;

            for (size_t j = 0; j < sl__n_plugins && len < sizeof(known); j++) {
                int r = snprintf(known + len, sizeof(known) - len, "%s%s", j ? ", " : "",
                                 sl__plugins[j]->name);

                if (r > 0)
                    len += (size_t)r;
            }
            sl__conf_error_key(ctx, p, "unknown plugin (built in: %s)", known[0] ? known : "none");
            continue;
        }
        uses[id].plugin = pl;
        if (p->type == SL_NODE_SCALAR && !p->quoted &&
            (strcmp(p->text, "false") == 0 || strcmp(p->text, "off") == 0)) {
            uses[id].conf = NULL;
            continue;
        }
        /* "request_id:" with nothing after it means defaults. */
        parse_use(ctx, pl, p->type == SL_NODE_NULL ? empty_map(ctx, p) : p, &uses[id]);
    }
}

/*
 * Every proxied request gets an X-Request-Id (DESIGN.md): request_id is on
 * unless the top-level plugins: (or a route's) says request_id: off.
 */
static void default_on(struct sl_conf_ctx *ctx, const struct sl_node *root,
                       struct sl_plugin_use *defaults)
{
    size_t id;
    const struct sl_plugin *pl = sl__plugin_find("request_id", &id);

    if (pl != NULL && defaults[id].plugin == NULL)
        parse_use(ctx, pl, empty_map(ctx, root), &defaults[id]);
}

/* Compact a per-id array of uses into the enabled ones, in table order. */
static void compact_uses(struct sl_conf_ctx *ctx, const struct sl_plugin_use *uses,
                         struct sl_plugin_use **out, size_t *n)
{
    size_t count = 0;

    for (size_t i = 0; i < sl__n_plugins; i++)
        if (uses[i].plugin != NULL && uses[i].conf != NULL)
            count++;
    *out = sl_arena_alloc(ctx->arena, (count ? count : 1) * sizeof(**out));
    *n = 0;
    for (size_t i = 0; i < sl__n_plugins; i++)
        if (uses[i].plugin != NULL && uses[i].conf != NULL)
            (*out)[(*n)++] = uses[i];
}

static void free_regex(void *code)
{
    pcre2_code_free(code);
}

static bool valid_host_pattern(const char *h)
{
    const char *p = h;

    if (p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0')
            return false;
        p += 2;
    }
    for (; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_'))
            return false;
    return p != h;
}

static void read_match(struct sl_conf_ctx *ctx, const struct sl_node *m, struct sl_route_conf *r)
{
    static const char *const keys[] = {"host",    "path",    "path_exact", "path_regex",
                                       "methods", "headers", NULL};
    const struct sl_node *n;
    const char **methods;
    size_t n_methods, paths = 0;

    if (sl_conf_keys(ctx, m, keys) != 0 && m->type != SL_NODE_MAP)
        return;
    if (sl_conf_str(ctx, m, "host", &r->host, false) == 0) {
        char *lower = sl_arena_strndup(ctx->arena, r->host, strlen(r->host));

        for (char *p = lower; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        r->host = lower;
        if (!valid_host_pattern(lower)) {
            sl_conf_error(ctx, sl_node_get(m, "host"),
                          "expected a host name such as api.example.com or *.example.com");
            r->host = NULL;
        }
    }
    if (sl_conf_str(ctx, m, "path", &r->path, false) == 0) {
        paths++;
        if (r->path[0] != '/')
            sl_conf_error(ctx, sl_node_get(m, "path"), "a path prefix must start with '/'");
    }
    if (sl_conf_str(ctx, m, "path_exact", &r->path_exact, false) == 0) {
        paths++;
        if (r->path_exact[0] != '/')
            sl_conf_error(ctx, sl_node_get(m, "path_exact"), "a path must start with '/'");
    }
    if (sl_conf_str(ctx, m, "path_regex", &r->path_regex, false) == 0) {
        int err;
        PCRE2_SIZE off;
        pcre2_code *code;

        paths++;
        code = pcre2_compile((PCRE2_SPTR)r->path_regex, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (code == NULL) {
            PCRE2_UCHAR msg[256];

            pcre2_get_error_message(err, msg, sizeof(msg));
            sl_conf_error(ctx, sl_node_get(m, "path_regex"),
                          "bad regular expression at offset %zu: %s", (size_t)off,
                          (const char *)msg);
        } else {
            pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
            r->regex = code;
            sl__conf_on_free(ctx, free_regex, code);
        }
    }
    if (paths > 1)
        sl_conf_error(ctx, m, "use only one of path, path_exact and path_regex");
    if (sl_conf_strlist(ctx, m, "methods", &methods, &n_methods, false) == 0) {
        for (size_t i = 0; i < n_methods; i++) {
            int k;

            for (k = 0; k <= HTTP_FLUSH; k++)
                if (strcmp(llhttp_method_name((llhttp_method_t)k), methods[i]) == 0)
                    break;
            if (k > HTTP_FLUSH) {
                const struct sl_node *mn = sl_node_get(m, "methods");

                sl_conf_error(ctx, mn->type == SL_NODE_SEQ ? mn->items[i] : mn,
                              "unknown HTTP method \"%s\" (methods are upper case)", methods[i]);
                continue;
            }
            r->methods |= 1ull << k;
        }
    }
    n = sl_node_get(m, "headers");
    if (n != NULL) {
        if (n->type != SL_NODE_MAP) {
            sl_conf_error(ctx, n, "expected a map of header names to values");
        } else {
            r->headers = sl_arena_calloc(ctx->arena, (n->n ? n->n : 1) * sizeof(*r->headers));
            for (size_t i = 0; i < n->n; i++) {
                if (sl_conf_node_str(ctx, n->items[i], &r->headers[r->n_headers].value) != 0)
                    continue;
                r->headers[r->n_headers++].name = n->items[i]->key;
            }
        }
    }
}

static void read_route(struct sl_conf_ctx *ctx, const struct sl_node *n, struct sl_config *c,
                       struct sl_route_conf *r, const struct sl_plugin_use *defaults)
{
    static const char *const keys[] = {"name",    "match", "upstream", "strip_prefix",
                                       "plugins", "log",   NULL};
    struct sl_plugin_use *uses;
    const struct sl_node *m, *p;
    unsigned up;

    r->node = n;
    r->name = sl_arena_printf(ctx->arena, "route%u", r->index);
    if (sl_conf_keys(ctx, n, keys) != 0 && n->type != SL_NODE_MAP)
        return;
    sl_conf_str(ctx, n, "name", &r->name, false);
    m = sl_node_get(n, "match");
    if (m != NULL)
        read_match(ctx, m, r);
    if (sl_conf_upstream(ctx, n, "upstream", &up, true) == 0)
        r->upstream = &c->upstreams[up];
    if (sl_conf_str(ctx, n, "strip_prefix", &r->strip_prefix, false) == 0 &&
        (r->strip_prefix[0] != '/' || strcmp(r->strip_prefix, "/") == 0))
        sl_conf_error(ctx, sl_node_get(n, "strip_prefix"), "expected a path prefix such as /v1");

    uses = sl_arena_alloc(ctx->arena, (sl__n_plugins + 1) * sizeof(*uses));
    memcpy(uses, defaults, sl__n_plugins * sizeof(*uses));
    p = sl_node_get(n, "plugins");
    if (p != NULL)
        read_plugins(ctx, p, uses);
    compact_uses(ctx, uses, &r->plugins, &r->n_plugins);
    if (sl_node_get(n, "log") != NULL)
        sl__config_read_route_log(ctx, sl_node_get(n, "log"), r);
}

void sl__config_read_routes(struct sl_conf_ctx *ctx, const struct sl_node *root,
                            struct sl_config *c)
{
    const struct sl_node *n = sl_node_get(root, "routes"), *p;
    struct sl_plugin_use *defaults;

    defaults = sl_arena_calloc(ctx->arena, (sl__n_plugins + 1) * sizeof(*defaults));
    p = sl_node_get(root, "plugins");
    if (p != NULL)
        read_plugins(ctx, p, defaults);
    default_on(ctx, root, defaults);
    compact_uses(ctx, defaults, &c->default_plugins, &c->n_default_plugins);

    if (n == NULL)
        return;
    if (n->type != SL_NODE_SEQ) {
        sl_conf_error(ctx, n, "expected a list of routes");
        return;
    }
    c->routes = sl_arena_calloc(ctx->arena, (n->n ? n->n : 1) * sizeof(*c->routes));
    for (size_t i = 0; i < n->n; i++) {
        struct sl_route_conf *r = &c->routes[i];

        r->index = (uint32_t)i;
        read_route(ctx, n->items[i], c, r, defaults);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->routes[j].name, r->name) == 0) {
                sl_conf_error(ctx, sl_node_get(n->items[i], "name"),
                              "route name \"%s\" is already used by routes[%zu]", r->name, j);
                break;
            }
        }
    }
    c->n_routes = n->n;
}
