/*
 * The routes and the plugins of two configs compared: a route's match,
 * upstream and rewrite as the core parsed them; a plugin's settings as the
 * YAML subtree it was read from (plugin configs are opaque to the core).
 */
#include "config/diff_routes.h"

#include <llhttp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/diff_fields.h"
#include "config/plugins.h"

/* -- plugins ------------------------------------------------------------------------ */

static bool uses(const struct sl_plugin_use *u, size_t n, const struct sl_plugin *p)
{
    for (size_t i = 0; i < n; i++)
        if (u[i].plugin == p)
            return true;
    return false;
}

static bool off(const struct sl_node *n)
{
    return n != NULL && n->type == SL_NODE_SCALAR && !n->quoted &&
           (strcmp(n->text, "false") == 0 || strcmp(n->text, "off") == 0);
}

static const struct sl_node *default_node(const struct sl_config *c, const char *name)
{
    return sl_node_get(sl_node_get(sl__diff_root(c), "plugins"), name);
}

/* A route's own entry for a plugin (its plugins: map), or NULL. */
static const struct sl_node *own_node(const struct sl_route_conf *r, const char *name)
{
    return sl_node_get(sl_node_get(r->node, "plugins"), name);
}

/* The settings a route's plugin was read from: its own, else the default
 * (NULL: the plugin's defaults, as request_id's when nothing names it). */
static const struct sl_node *route_node(const struct sl_config *c, const struct sl_route_conf *r,
                                        const char *name)
{
    const struct sl_node *own = own_node(r, name);

    return own != NULL && !off(own) ? own : default_node(c, name);
}

static void plugin_set(struct sl_sbuf *b, bool was, bool is, const char *name)
{
    if (was != is)
        sl__sbuf_printf(b, "%s%c%s", b->len ? ", " : "", is ? '+' : '-', name);
}

void sl__diff_default_plugins(struct sl_diff *d, const struct sl_diff_side *sa,
                              const struct sl_diff_side *sb)
{
    const struct sl_config *a = sa->conf, *b = sb->conf;
    struct sl_diff_change *c = sl__diff_begin(d, "plugins", "defaults", SL_DIFF_CHANGED);
    struct sl_sbuf set = {0};

    for (size_t i = 0; i < sl__n_plugins; i++)
        plugin_set(&set, uses(a->default_plugins, a->n_default_plugins, sl__plugins[i]),
                   uses(b->default_plugins, b->n_default_plugins, sl__plugins[i]),
                   sl__plugins[i]->name);
    if (set.len)
        sl__diff_detail(d, c, "%.*s", (int)set.len, set.p);
    sl__sbuf_free(&set);
    for (size_t i = 0; i < sl__n_plugins; i++) {
        const struct sl_plugin *p = sl__plugins[i];

        if (uses(a->default_plugins, a->n_default_plugins, p) &&
            uses(b->default_plugins, b->n_default_plugins, p))
            sl__diff_nodes(d, c, p->name, default_node(a, p->name), default_node(b, p->name));
    }
    sl__diff_end(d, c);
}

/* The plugins a route names itself, in either config. */
static void route_plugins(struct sl_diff *d, struct sl_diff_change *c,
                          const struct sl_route_conf *a, const struct sl_diff_side *sa,
                          const struct sl_route_conf *b, const struct sl_diff_side *sb)
{
    struct sl_sbuf set = {0};

    for (size_t i = 0; i < sl__n_plugins; i++) {
        const char *name = sl__plugins[i]->name;

        if (own_node(a, name) != NULL || own_node(b, name) != NULL)
            plugin_set(&set, uses(a->plugins, a->n_plugins, sl__plugins[i]),
                       uses(b->plugins, b->n_plugins, sl__plugins[i]), name);
    }
    if (set.len)
        sl__diff_detail(d, c, "plugins %.*s", (int)set.len, set.p);
    sl__sbuf_free(&set);
    for (size_t i = 0; i < sl__n_plugins; i++) {
        const struct sl_plugin *p = sl__plugins[i];

        if ((own_node(a, p->name) != NULL || own_node(b, p->name) != NULL) &&
            uses(a->plugins, a->n_plugins, p) && uses(b->plugins, b->n_plugins, p))
            sl__diff_nodes(d, c, p->name, route_node(sa->conf, a, p->name),
                           route_node(sb->conf, b, p->name));
    }
}

/* -- routes ------------------------------------------------------------------------- */

static const char *methods(struct sl_diff *d, uint64_t bits)
{
    struct sl_sbuf b = {0};
    const char *out;

    if (bits == 0)
        return "(any)";
    for (int k = 0; k <= HTTP_FLUSH; k++)
        if (bits & (1ull << k))
            sl__sbuf_printf(&b, "%s%s", b.len ? ", " : "[", llhttp_method_name((llhttp_method_t)k));
    sl__sbuf_lit(&b, "]");
    out = sl_arena_strndup(d->arena, b.p, b.len);
    sl__sbuf_free(&b);
    return out;
}

static bool has_header(const struct sl_route_conf *r, const struct sl_header_match *h)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, h->name) == 0 &&
            strcmp(r->headers[i].value, h->value) == 0)
            return true;
    return false;
}

/* The headers a route matches, those whose names look secret
 * (Authorization, X-Api-Key...) without their values. */
static const char *headers(struct sl_diff *d, const struct sl_route_conf *r)
{
    struct sl_sbuf b = {0};
    const char *out;

    if (r->n_headers == 0)
        return "(none)";
    sl__sbuf_lit(&b, "{");
    for (size_t i = 0; i < r->n_headers; i++) {
        sl__sbuf_printf(&b, "%s%s: ", i ? ", " : "", r->headers[i].name);
        if (sl__diff_secret_header(r->headers[i].name))
            sl__sbuf_lit(&b, "(not shown)");
        else
            sl__sbuf_json(&b, sl_str_from(r->headers[i].value));
    }
    sl__sbuf_lit(&b, "}");
    out = sl_arena_strndup(d->arena, b.p, b.len);
    sl__sbuf_free(&b);
    return out;
}

static void match(struct sl_diff *d, struct sl_diff_change *c, const struct sl_route_conf *a,
                  const struct sl_route_conf *b)
{
    bool same_headers = a->n_headers == b->n_headers;

    sl__diff_str(d, c, "match.host", a->host, b->host);
    sl__diff_str(d, c, "match.path", a->path, b->path);
    sl__diff_str(d, c, "match.path_exact", a->path_exact, b->path_exact);
    sl__diff_str(d, c, "match.path_regex", a->path_regex, b->path_regex);
    if (a->methods != b->methods)
        sl__diff_str(d, c, "match.methods", methods(d, a->methods), methods(d, b->methods));
    for (size_t i = 0; same_headers && i < b->n_headers; i++)
        same_headers = has_header(a, &b->headers[i]);
    if (!same_headers)
        sl__diff_str(d, c, "match.headers", headers(d, a), headers(d, b));
}

static void route(struct sl_diff *d, struct sl_diff_change *c, const struct sl_route_conf *a,
                  const struct sl_diff_side *sa, const struct sl_route_conf *b,
                  const struct sl_diff_side *sb)
{
    match(d, c, a, b);
    sl__diff_str(d, c, "upstream", a->upstream ? a->upstream->name : NULL,
                 b->upstream ? b->upstream->name : NULL);
    sl__diff_str(d, c, "strip_prefix", a->strip_prefix, b->strip_prefix);
    /* Only regex routes are tried in file order; moving a prefix or an
     * exact route changes nothing. */
    if ((a->path_regex != NULL || b->path_regex != NULL) && a->index != b->index)
        sl__diff_detail(d, c, "position %u -> %u (path_regex routes are tried in file order)",
                        a->index + 1, b->index + 1);
    route_plugins(d, c, a, sa, b, sb);
}

/* A route's name, unless that came from ${VAR}. */
static const char *route_name(const struct sl_route_conf *r)
{
    return sl__diff_name(r->name, sl__diff_env(sl_node_get(r->node, "name")));
}

static const struct sl_route_conf *find_route(const struct sl_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_routes; i++)
        if (strcmp(c->routes[i].name, name) == 0)
            return &c->routes[i];
    return NULL;
}

void sl__diff_routes(struct sl_diff *d, const struct sl_diff_side *sa,
                     const struct sl_diff_side *sb)
{
    const struct sl_config *a = sa->conf, *b = sb->conf;

    for (size_t i = 0; i < b->n_routes; i++) {
        const struct sl_route_conf *r = &b->routes[i], *o = find_route(a, r->name);
        struct sl_diff_change *c =
            sl__diff_begin(d, "route", route_name(r), o ? SL_DIFF_CHANGED : SL_DIFF_ADDED);

        if (o != NULL) {
            /* The core's fields are read under the route's node (match.path...). */
            sl__diff_from(d, o->node, r->node);
            route(d, c, o, sa, r, sb);
        }
        sl__diff_end(d, c);
    }
    for (size_t i = 0; i < a->n_routes; i++)
        if (find_route(b, a->routes[i].name) == NULL)
            sl__diff_end(d, sl__diff_begin(d, "route", route_name(&a->routes[i]), SL_DIFF_REMOVED));
}
