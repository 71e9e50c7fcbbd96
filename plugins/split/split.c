/*
 * split plugin: weighted traffic splitting between upstreams on one route
 * (canary releases, blue/green, A/B tests). In the UPSTREAM phase, after
 * ACCESS let the request through and before a target is balanced to, it
 * picks one of `to`'s upstreams in proportion to the weights and sets it
 * with sl_req_set_upstream(): the route's own upstream is then not used.
 *
 * In order: the first pin whose header or cookie has its value; else, with
 * a key, the hash of the key's value salted with the route's name (sticky:
 * a user keeps their variant, across workers, instances and reloads, and a
 * change of weights moves only the users near a moved boundary, pick.h;
 * each route places its users on its own); else (no key, or a request
 * without one) a random point. The choice is logged as split=<upstream> and
 * counted in sluice_split_requests_total{route,upstream} (counts.h).
 *
 * A reload's new weights apply to the requests that start on the new
 * generation; those in flight keep the choice they made.
 */
#include "split.h"

#include "counts.h"
#include "sluice/log.h"

static unsigned id;

/* The pin that matches the request, or NULL. */
static const struct split_pin *pinned(struct sl_req *req, const struct split_conf *c)
{
    for (size_t i = 0; i < c->n_pins; i++) {
        struct sl_str v = sl_req_key(req, &c->pins[i].key);

        if (v.p != NULL && sl_str_eq(v, c->pins[i].value))
            return &c->pins[i];
    }
    return NULL;
}

static void on_upstream(struct sl_req *req, void *conf)
{
    const struct split_conf *c = conf;
    const struct split_pin *p = pinned(req, c);
    const char *name, *route = sl_req_route(req);
    unsigned upstream;

    if (route == NULL)
        route = "-";
    if (p != NULL) {
        upstream = p->upstream;
        name = p->name;
    } else {
        struct sl_str v = c->keyed ? sl_req_key(req, &c->key) : SL_STR_NULL;
        uint64_t h = v.len > 0 ? sl__split_hash(route, v.p, v.len) : sl__split_random();
        const struct split_target *t = &c->to[sl__split_pick(c->to, c->n, c->total, h)];

        upstream = t->upstream;
        name = t->name;
    }
    if (sl_req_set_upstream(req, upstream) != 0) {
        /* The conf comes from the request's own generation: a core bug. */
        sl_log(SL_LOG_ERROR, req, "split: upstream \"%s\" refused; the route's is used", name);
        return;
    }
    sl_req_log_field(req, "split", name);
    sl__split_count(sl_req_worker_data(req, &sl_plugin_split), route, name);
}

static void *worker_init(uv_loop_t *loop)
{
    (void)loop;
    return sl__split_cache_new();
}

static void worker_fini(void *wdata)
{
    sl__split_cache_free(wdata);
}

const struct sl_plugin sl_plugin_split = {
    .abi = SL_PLUGIN_ABI,
    .name = "split",
    .id = &id,
    .conf_parse = sl__split_conf_parse,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .metrics = sl__split_metrics,
    .upstream = on_upstream,
};
