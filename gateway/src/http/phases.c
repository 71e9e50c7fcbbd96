/*
 * The UPSTREAM, RESPONSE and LOG phases: every plugin of the request's route (or the
 * top-level defaults, for a request no route took) in the fixed order of
 * config/plugins.c. The ACCESS phase, which may suspend and resume, is
 * req.c's.
 */
#include "http/phases.h"

#include "sluice/plugin.h"

#include "config/config.h"
#include "config/gen.h"
#include "config/upstream.h"
#include "http/request.h"

/* The plugins of req's route, or the defaults for a request without one. */
static const struct sl_plugin_use *uses(const struct sl_req *req, size_t *n)
{
    if (req->route != NULL) {
        *n = req->route->n_plugins;
        return req->route->plugins;
    }
    if (req->gen == NULL) {
        *n = 0;
        return NULL;
    }
    *n = req->gen->conf->n_default_plugins;
    return req->gen->conf->default_plugins;
}

void sl__req_upstream_phase(struct sl_req *req)
{
    size_t n;
    const struct sl_plugin_use *u = uses(req, &n);

    for (size_t i = 0; i < n; i++)
        if (u[i].plugin->upstream != NULL)
            u[i].plugin->upstream(req, u[i].conf);
}

const char *sl_req_upstream(const struct sl_req *req)
{
    return req->upstream != NULL ? req->upstream->conf->name : NULL;
}

int sl_req_set_upstream(struct sl_req *req, unsigned index)
{
    if (req->gen == NULL || index >= req->gen->conf->n_upstreams)
        return -1;
    req->upstream = sl__gen_upstream(req->gen, &req->gen->conf->upstreams[index]);
    return 0;
}

void sl__req_response_phase(struct sl_req *req)
{
    size_t n;
    const struct sl_plugin_use *u = uses(req, &n);

    for (size_t i = 0; i < n; i++)
        if (u[i].plugin->response != NULL)
            u[i].plugin->response(req, u[i].conf);
}

void sl__req_log_phase(struct sl_req *req)
{
    size_t n;
    const struct sl_plugin_use *u = uses(req, &n);

    for (size_t i = 0; i < n; i++)
        if (u[i].plugin->log != NULL)
            u[i].plugin->log(req, u[i].conf);
}
