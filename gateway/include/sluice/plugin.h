/*
 * sluice - the plugin interface.
 *
 * A plugin is one constant struct sl_plugin: its name (which is also its YAML
 * key under "plugins:"), how to read its config, optional per-worker state,
 * and one handler per phase it takes part in. The built-in plugins are listed
 * in gateway/src/plugins.c, in the fixed order in which their handlers run.
 *
 * Phases of a request:
 *   ACCESS    after routing, before an upstream is chosen. A handler may let
 *             the request through (SL_NEXT), answer it itself with
 *             sl_req_respond() (SL_DONE), or suspend it (SL_AGAIN) to wait for
 *             something asynchronous and call sl_req_resume() later.
 *   UPSTREAM  after ACCESS let the request through, before a target is
 *             balanced to: choose the upstream group with
 *             sl_req_set_upstream() (split). Cannot fail or suspend.
 *   RESPONSE  when the response head is ready to go to the client (proxied or
 *             made by the gateway): add or change response headers. It
 *             cannot fail the request (the status is decided), so it
 *             returns nothing. It may route a proxied body through a
 *             filter (sl_resp_body_filter(), sluice/req.h): compress.
 *   LOG       after the response is complete: count, record.
 *
 * Handlers run on the worker loop that owns the request and must never block.
 *
 * A plugin includes only the headers in sluice/ (the build gives it no
 * other include path) and lives in plugins/<name>/, whose meson.build names
 * its sources, its library dependencies and its unit tests; adding one
 * touches nothing else but the -Dplugins list.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <uv.h>

#include "sluice/conf.h"
#include "sluice/req.h"

/* Bumped whenever struct sl_plugin or a handler's contract changes; the
 * core refuses to start with a plugin built for another. */
#define SL_PLUGIN_ABI 3

/*
 * A counter series a plugin owns, by route and one label of its own
 * ("sluice_ratelimit_decisions_total", label "decision", values allowed,
 * delayed, rejected). Count with sl_req_count(); the core keeps the counts
 * per worker and writes them to /metrics with this help text: every value,
 * zeros included, for each route that counted any.
 */
#define SL_COUNTER_MAX_VALUES 8

struct sl_counter {
    const char *name;
    const char *help;
    const char *label;
    const char *const *values; /* NULL-terminated, at most SL_COUNTER_MAX_VALUES */
    /* Labels of fixed value written between route and label, or NULL:
     * "plugin=\"jwt\"" for sluice_auth_decisions_total{route,plugin,result}. */
    const char *fixed_labels;
};

struct sl_plugin {
    int abi; /* SL_PLUGIN_ABI */
    const char *name;

    /*
     * Where the core writes the plugin's id at start (a static unsigned of
     * the plugin's own): what makes sl_req_ctx() and sl_req_worker_data()
     * one array index.
     */
    unsigned *id;

    /*
     * Read the plugin's node (a map) from the top-level "plugins:" defaults or
     * from a route. Returns the plugin's config, allocated in the generation
     * arena (sl_conf_arena()), or NULL after reporting errors through ctx.
     */
    void *(*conf_parse)(struct sl_conf_ctx *ctx, const struct sl_node *node);

    /* Release what conf_parse() took outside the arena, when the generation
     * that holds conf is freed (or its load failed). Optional. */
    void (*conf_free)(void *conf);

    /*
     * Per-worker state, created on the worker's loop before it accepts and
     * destroyed on it after its last request. Optional; the pointer comes back
     * through sl_req_worker_data().
     */
    void *(*worker_init)(uv_loop_t *loop);
    void (*worker_fini)(void *wdata);

    /* Phase handlers; NULL when the plugin takes no part in a phase. */
    enum sl_status (*access)(struct sl_req *req, void *conf);
    void (*response)(struct sl_req *req, void *conf);
    void (*log)(struct sl_req *req, void *conf);

    /*
     * Metrics the plugin keeps itself (optional): pass Prometheus text (with
     * its # HELP and # TYPE lines) to emit(ctx, text). Called on the main
     * thread when the admin API's /metrics is read.
     */
    void (*metrics)(void (*emit)(void *ctx, const char *text), void *ctx);

    /* Counter series the plugin counts with sl_req_count(), NULL-terminated;
     * optional. Written to /metrics whether or not anything was counted. */
    const struct sl_counter *const *counters;

    /* The versions of the libraries the plugin links, for sluice -V
     * ("hiredis 0.14.1"); optional. */
    const char *(*versions)(void);

    /* The UPSTREAM phase (see above); NULL when the plugin takes no part. */
    void (*upstream)(struct sl_req *req, void *conf);
};

#endif
