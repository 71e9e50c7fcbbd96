/*
 * GET /routes and the last reload's outcome (admin_data.h).
 */
#include "server/admin_data.h"

#include <llhttp.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "base/sbuf.h"
#include "base/util.h"
#include "config/config.h"
#include "config/gen.h"
#include "config/plugins.h"

static struct {
    bool done, ok;
    time_t at;
    uint64_t generation;
    char *errors; /* owned; NULL after a good reload */
} last;

static void json_opt(struct sl_sbuf *b, const char *key, const char *value)
{
    sl__sbuf_printf(b, ", \"%s\": ", key);
    sl__sbuf_json(b, sl_str_from(value));
}

static void plugin_names(struct sl_sbuf *b, const struct sl_plugin_use *uses, size_t n)
{
    sl__sbuf_lit(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl__sbuf_lit(b, ", ");
        sl__sbuf_json(b, sl_str_from(uses[i].plugin->name));
    }
    sl__sbuf_lit(b, "]");
}

static void route_json(struct sl_sbuf *b, const struct sl_route_conf *r)
{
    bool first = true;

    sl__sbuf_lit(b, "{\"name\": ");
    sl__sbuf_json(b, sl_str_from(r->name));
    sl__sbuf_lit(b, ", \"match\": {\"host\": ");
    sl__sbuf_json(b, sl_str_from(r->host));
    json_opt(b, "path", r->path);
    json_opt(b, "path_exact", r->path_exact);
    json_opt(b, "path_regex", r->path_regex);
    sl__sbuf_lit(b, ", \"methods\": [");
    for (unsigned k = 0; k < 64; k++) {
        if ((r->methods & (1ull << k)) == 0)
            continue;
        if (!first)
            sl__sbuf_lit(b, ", ");
        first = false;
        sl__sbuf_json(b, sl_str_from(llhttp_method_name((llhttp_method_t)k)));
    }
    sl__sbuf_lit(b, "], \"headers\": {");
    for (size_t i = 0; i < r->n_headers; i++) {
        if (i)
            sl__sbuf_lit(b, ", ");
        sl__sbuf_json(b, sl_str_from(r->headers[i].name));
        sl__sbuf_lit(b, ": ");
        sl__sbuf_json(b, sl_str_from(r->headers[i].value));
    }
    sl__sbuf_lit(b, "}}");
    json_opt(b, "upstream", r->upstream ? r->upstream->name : NULL);
    json_opt(b, "strip_prefix", r->strip_prefix);
    sl__sbuf_lit(b, ", \"plugins\": ");
    plugin_names(b, r->plugins, r->n_plugins);
    sl__sbuf_lit(b, "}");
}

void sl__admin_routes_json(struct sl_sbuf *b)
{
    struct sl_gen *g = sl__gen_acquire_current();
    const struct sl_config *c = g->conf;

    sl__sbuf_printf(b, "{\"generation\": %llu, \"routes\": [", (unsigned long long)g->id);
    for (size_t i = 0; i < c->n_routes; i++) {
        if (i)
            sl__sbuf_lit(b, ", ");
        route_json(b, &c->routes[i]);
    }
    sl__sbuf_lit(b, "], \"default_plugins\": ");
    plugin_names(b, c->default_plugins, c->n_default_plugins);
    sl__sbuf_lit(b, "}\n");
    sl__gen_unref(g);
}

void sl__admin_reload_note(bool ok, const char *errors)
{
    struct sl_gen *g = sl__gen_acquire_current();

    free(last.errors);
    last.errors = !ok && errors ? sl__xstrdup(errors) : NULL;
    last.done = true;
    last.ok = ok;
    last.at = time(NULL);
    last.generation = g->id;
    sl__gen_unref(g);
}

void sl__admin_reload_json(struct sl_sbuf *b)
{
    struct tm tm;
    char when[32];

    if (!last.done) {
        sl__sbuf_lit(b, "null");
        return;
    }
    gmtime_r(&last.at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    sl__sbuf_printf(b, "{\"result\": \"%s\", \"at\": \"%s\", \"generation\": %llu, \"errors\": ",
                    last.ok ? "ok" : "failed", when, (unsigned long long)last.generation);
    sl__sbuf_json(b, sl_str_from(last.errors));
    sl__sbuf_lit(b, "}");
}
