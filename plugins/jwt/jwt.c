/*
 * jwt plugin: bearer tokens (RFC 7519, compact JWS) verified with
 * configured keys, then checked against what the route asks.
 *
 * ACCESS: find the token (sluice/bearer.h: which also takes out the
 * client's copies of the headers we forward claims in), and answer 401
 * invalid_token unless it is well formed, signed by a configured key with
 * the alg that key pins, unexpired and from the right issuer for the right
 * audience; then sl_bearer_decide() answers 403 insufficient_scope when its
 * scopes and claims do not satisfy the route and the rule for the
 * request's method, or lets it through with its claims in request
 * variables (jwt:sub, jwt:org.id) and in the configured headers.
 *
 * Keys from a JWKS (jwks_source.c) may not be there yet: a request that
 * needs a key set that was never loaded, or a kid the set does not know,
 * waits for the next fetch (SL_AGAIN), once; then it is checked again with
 * what that fetch brought, and answered 503 auth_unavailable when there is
 * still no key set at all (never let through).
 *
 * The outcome goes to the access log ("auth", and "sub", never the token)
 * and to sluice_auth_decisions_total.
 */
#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/alloc.h"
#include "sluice/log.h"

#include "cache.h"
#include "jwks_source.h"
#include "verify.h"

static const char *const results[] = SL_BEARER_RESULTS;
const struct sl_counter sl__jwt_decisions = {
    .name = "sluice_auth_decisions_total",
    .help = "Authentication decisions, by route, plugin and result.",
    .label = "result",
    .values = results,
    .fixed_labels = "plugin=\"jwt\"",
};
static const struct sl_counter *const counters[] = {&sl__jwt_decisions, NULL};

struct jwt_worker {
    struct jwt_cache *cache;
    struct jwks_worker *jwks;
};

/* A request waiting for a JWKS fetch, in the request arena. */
struct pending {
    struct jwks_wait wait; /* first: the done callback gets it back */
    struct sl_req *req;
    const struct jwt_conf *c;
    struct sl_bearer_token t;
};

static void *worker_init(uv_loop_t *loop)
{
    struct jwt_worker *w = sl_calloc(1, sizeof(*w), "the jwt plugin");

    w->cache = sl__jwt_cache_new();
    /* Starts the first fetch of every JWKS the config names at once. */
    w->jwks = sl__jwks_worker_new(loop);
    return w;
}

static void worker_fini(void *wdata)
{
    struct jwt_worker *w = wdata;

    sl__jwks_worker_free(w->jwks);
    sl__jwt_cache_free(w->cache);
    free(w);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Verify token from scratch: its header, its signature, then its claims.
 * Returns the claims (owned: the caller releases them) or NULL with *result
 * ("invalid" or "expired") and *why set.
 */
static json_t *verify(const struct jwt_conf *c, const struct jwks_set *set, struct sl_str token,
                      double now, const char **result, const char **why, double *exp, bool *no_key)
{
    struct jwt_token t;
    json_t *claims = NULL;
    enum jwt_verdict v;

    *result = "invalid";
    *why = sl__jwt_decode(token.p, token.len, c->algs, &t);
    if (*why != NULL)
        return NULL;
    /* Configured keys first, then the JWKS's: a kid is looked up in both. */
    *why = sl__jwt_verify(c->keys, c->nkeys, &t, no_key);
    if (*why != NULL && *no_key && set != NULL)
        *why = sl__jwt_verify(set->keys, set->nkeys, &t, no_key);
    /* Nothing in the payload is read before the signature verifies. */
    if (*why != NULL || (*why = sl__jwt_decode_payload(&t)) != NULL)
        goto done;
    v = sl__jwt_check_times(t.payload, &c->times, now, why, exp);
    if (v != JWT_VALID) {
        *result = v == JWT_EXPIRED ? "expired" : "invalid";
        goto done;
    }
    if (!sl__jwt_check_iss(t.payload, c->issuers, c->nissuers))
        *why = "the token's iss is not an accepted issuer";
    else if (!sl__jwt_check_aud(t.payload, c->audiences, c->naudiences))
        *why = "the token's aud holds no accepted audience";
    else
        claims = json_incref(t.payload);
done:
    sl__jwt_token_clear(&t);
    return claims;
}

/* The token's claims, from the cache or verified now (then cached), with
 * the configured keys and set (NULL: no JWKS, or none loaded yet). */
static json_t *claims_of(struct jwt_worker *w, const struct jwt_conf *c, const struct jwks_set *set,
                         struct sl_str token, const char **result, const char **why, bool *no_key)
{
    uint64_t gen = set != NULL ? set->gen : 0;
    double now = now_s(), exp = 0;
    const json_t *hit = sl__jwt_cache_get(w->cache, c->serial, gen, token.p, token.len, now);
    json_t *claims;

    if (hit != NULL) {
        /* Kept no longer than exp, but the leeway and the clock are
         * checked again on every use all the same. */
        enum jwt_verdict v = sl__jwt_check_times(hit, &c->times, now, why, &exp);

        if (v == JWT_VALID)
            return json_incref((json_t *)hit);
        *result = v == JWT_EXPIRED ? "expired" : "invalid";
        return NULL;
    }
    claims = verify(c, set, token, now, result, why, &exp, no_key);
    if (claims != NULL)
        sl__jwt_cache_put(w->cache, c->serial, gen, token.p, token.len,
                          exp > 0 ? exp : now + JWT_CACHE_MAX_S, claims);
    return claims;
}

static void resume(struct jwks_wait *wt, bool timed_out);

/* The client left while its request waited for a fetch. */
static void cancel(void *arg)
{
    struct pending *p = arg;
    struct jwt_worker *w = sl_req_worker_data(p->req, &sl_plugin_jwt);

    sl__jwks_unwait(w->jwks, &p->wait);
}

/* Wait for the next fetch of c's JWKS, then check the token again. */
static enum sl_status wait_for_keys(struct sl_req *req, const struct jwt_conf *c,
                                    const struct sl_bearer_token *t, uint64_t seq)
{
    struct jwt_worker *w = sl_req_worker_data(req, &sl_plugin_jwt);
    struct pending *p = sl_arena_calloc(sl_req_arena(req), sizeof(*p));

    if (p == NULL)
        return SL_ERROR;
    *p = (struct pending){.req = req, .c = c, .t = *t};
    p->wait.src = c->jwks;
    p->wait.done = resume;
    sl__jwks_wait(w->jwks, &p->wait, seq);
    sl_req_suspend(req, cancel, p);
    return SL_AGAIN;
}

/*
 * Check the token and answer or let the request through. Without a key for
 * the token in a JWKS config, the first time round (!again) waits for a
 * fetch when one may run; again, after that fetch, the answer is final.
 */
static enum sl_status authenticate(struct sl_req *req, const struct jwt_conf *c,
                                   const struct sl_bearer_token *t, bool again)
{
    struct jwt_worker *w = sl_req_worker_data(req, &sl_plugin_jwt);
    struct jwks_set *set = c->jwks != NULL ? sl__jwks_source_set(c->jwks) : NULL;
    const char *result = "invalid", *why = NULL;
    bool no_key = false, loaded = set != NULL;
    enum sl_status st;
    json_t *claims;

    claims = claims_of(w, c, set, t->token, &result, &why, &no_key);
    sl__jwks_set_unref(set);
    if (claims == NULL && no_key && c->jwks != NULL) {
        uint64_t seq = 0;
        enum jwks_ask a = again ? JWKS_NO : sl__jwks_source_ask(c->jwks, w->jwks, loaded, &seq);

        if (a == JWKS_WAIT)
            return wait_for_keys(req, c, t, seq);
        if (!loaded)
            return sl_bearer_unavailable(req, c->bearer,
                                         "no key set could be loaded from the IdP yet (see the "
                                         "refresh failures logged)");
    }
    if (claims == NULL)
        return sl_bearer_reject(req, c->bearer, result, why);
    st = sl_bearer_decide(req, c->bearer, t, claims);
    json_decref(claims);
    return st;
}

/* A fetch that the request waited for completed, or the wait timed out. */
static void resume(struct jwks_wait *wt, bool timed_out)
{
    struct pending *p = (struct pending *)wt;
    enum sl_status st;

    if (timed_out)
        st = sl_bearer_unavailable(p->req, p->c->bearer,
                                   "the IdP did not answer in time for this request");
    else
        st = authenticate(p->req, p->c, &p->t, true);
    /* authenticate() never waits twice: again is set. */
    sl_req_resume(p->req, st);
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct jwt_conf *c = conf;
    struct sl_bearer_token t;
    enum sl_status st = sl_bearer_find(req, c->bearer, c->max_token_size, &t);

    return st != SL_NEXT ? st : authenticate(req, c, &t, false);
}

static void metrics(void (*emit)(void *ctx, const char *text), void *ctx)
{
    sl__jwks_metrics(emit, ctx);
}

static const char *versions(void)
{
    return "jansson " JANSSON_VERSION;
}

static unsigned id;

const struct sl_plugin sl_plugin_jwt = {
    .abi = SL_PLUGIN_ABI,
    .name = "jwt",
    .id = &id,
    .conf_parse = sl__jwt_conf_parse,
    .conf_free = sl__jwt_conf_free,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = on_access,
    .metrics = metrics,
    .counters = counters,
    .versions = versions,
};
