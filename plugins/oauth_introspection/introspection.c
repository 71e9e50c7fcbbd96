/*
 * oauth_introspection plugin: opaque bearer tokens (RFC 7662).
 *
 * ACCESS: find the token (sluice/bearer.h: which also takes out the
 * client's copies of the headers we forward claims in), then look up what
 * the IdP said about it (store.c). A kept answer decides at once; else the
 * request waits (SL_AGAIN) for the one call that asks about this token,
 * started now or by an earlier request, on any worker. Active: its exp and
 * nbf are checked against the clock on every use, then sl_bearer_decide()
 * answers 403 insufficient_scope or lets the request through with the
 * answer's claims forwarded and in request variables (jwt:sub). Inactive:
 * 401 invalid_token. The IdP down, slow past timeout, refusing the
 * gateway's credentials or answering nonsense: 503 auth_unavailable, never
 * a pass.
 *
 * The outcome goes to the access log ("auth", and "sub", never the token)
 * and to sluice_auth_decisions_total{plugin="oauth_introspection"}.
 */
#include "introspection.h"

#include <time.h>

#include "sluice/alloc.h"

static const char *const results[] = SL_BEARER_RESULTS;
const struct sl_counter sl__oi_decisions = {
    .name = "sluice_auth_decisions_total",
    .help = "Authentication decisions, by route, plugin and result.",
    .label = "result",
    .values = results,
    .fixed_labels = "plugin=\"oauth_introspection\"",
};
static const struct sl_counter *const counters[] = {&sl__oi_decisions, NULL};

/* A request waiting for a call, in the request arena. */
struct pending {
    struct oi_wait wait; /* first: the done callback gets it back */
    struct sl_req *req;
    const struct oi_conf *c;
    struct sl_bearer_token t;
};

static void *worker_init(uv_loop_t *loop)
{
    return sl__oi_worker_new(loop);
}

static void worker_fini(void *wdata)
{
    sl__oi_worker_free(wdata);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Answer from o (whose claims this releases). */
static enum sl_status decide(struct sl_req *req, const struct oi_conf *c,
                             const struct sl_bearer_token *t, struct oi_outcome *o)
{
    enum sl_status st;
    double v = 0, now = now_s();
    int rc;

    if (o->kind == OI_FAILED)
        return sl_bearer_unavailable(req, c->bearer, o->why);
    if (o->kind == OI_INACTIVE)
        return sl_bearer_reject(req, c->bearer, o->result, o->why);
    /* Kept no longer than exp, but the clock is checked on every use. */
    if (sl_claim_number(o->claims, "exp", &v) == 0 && !(v + c->call.times.leeway_s > now))
        st = sl_bearer_reject(req, c->bearer, "expired", "the token has expired");
    else if ((rc = sl_claim_number(o->claims, "nbf", &v)) < 0 ||
             (rc == 0 && v > now + c->call.times.leeway_s))
        st = sl_bearer_reject(req, c->bearer, "invalid", "the token is not valid yet");
    else
        st = sl_bearer_decide(req, c->bearer, t, o->claims);
    sl__oi_outcome_clear(o);
    return st;
}

/* The call the request waited for ended. */
static void resume(struct oi_wait *wt)
{
    struct pending *p = (struct pending *)wt;

    sl_req_resume(p->req, decide(p->req, p->c, &p->t, &wt->out));
}

/* The client left while its request waited. */
static void cancel(void *arg)
{
    struct pending *p = arg;

    sl__oi_unwait(&p->wait);
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct oi_conf *c = conf;
    struct oi_worker *w = sl_req_worker_data(req, &sl_plugin_oauth_introspection);
    struct oi_outcome out = {0};
    struct sl_bearer_token t;
    enum sl_status st = sl_bearer_find(req, c->bearer, c->max_token_size, &t);
    struct pending *p;

    if (st != SL_NEXT)
        return st;
    p = sl_arena_calloc(sl_req_arena(req), sizeof(*p));
    if (p == NULL)
        return SL_ERROR;
    *p = (struct pending){.req = req, .c = c, .t = t};
    p->wait.done = resume;
    if (sl__oi_lookup(w, &c->call, t.token.p, t.token.len, now_s(), &p->wait, &out) == OI_HIT)
        return decide(req, c, &t, &out);
    sl_req_suspend(req, cancel, p);
    return SL_AGAIN;
}

static void metrics(void (*emit)(void *ctx, const char *text), void *ctx)
{
    sl__oi_metrics(emit, ctx);
}

static const char *versions(void)
{
    return "jansson " JANSSON_VERSION;
}

static unsigned id;

const struct sl_plugin sl_plugin_oauth_introspection = {
    .abi = SL_PLUGIN_ABI,
    .name = "oauth_introspection",
    .id = &id,
    .conf_parse = sl__oi_conf_parse,
    .conf_free = sl__oi_conf_free,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = on_access,
    .metrics = metrics,
    .counters = counters,
    .versions = versions,
};
