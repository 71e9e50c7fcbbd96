/*
 * jwt plugin: bearer tokens (RFC 7519, compact JWS) verified with
 * configured keys, then checked against what the route asks.
 *
 * ACCESS: take out the client's copies of the headers we forward claims in
 * (always, whatever happens next), find the token, and answer 401
 * invalid_token (no error code when there is no token at all: RFC 6750 3.1)
 * unless it is well formed, signed by a configured key with the alg that key
 * pins, unexpired and from the right issuer for the right audience; answer
 * 403 insufficient_scope when its scopes and claims do not satisfy the route
 * and the rule for the request's method. A token that passes leaves its
 * claims in request variables (jwt:sub, jwt:org.id) for other plugins and
 * in the configured headers for the upstream.
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

/* Request variables made from one token, at most: a token is at most
 * max_token_size, but the request arena is shared with everything else. */
#define MAX_VARS 128

static const char *const results[] = {"allowed",   "missing",     "invalid", "expired",
                                      "forbidden", "unavailable", NULL};
static const struct sl_counter decisions = {
    .name = "sluice_auth_decisions_total",
    .help = "Authentication decisions, by route, plugin and result.",
    .label = "result",
    .values = results,
    .fixed_labels = "plugin=\"jwt\"",
};
static const struct sl_counter *const counters[] = {&decisions, NULL};

struct jwt_worker {
    struct jwt_cache *cache;
    struct jwks_worker *jwks;
};

/* A request waiting for a JWKS fetch, in the request arena. */
struct pending {
    struct jwks_wait wait; /* first: the done callback gets it back */
    struct sl_req *req;
    const struct jwt_conf *c;
    struct sl_str token;
    const struct jwt_source *from;
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

static struct sl_str trim(struct sl_str s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* The token in the header of source s, {NULL, 0} when there is none, or
 * *twice set when the header came more than once (which copy would the
 * upstream believe?). */
static struct sl_str from_header(struct sl_req *req, const struct jwt_source *s, bool *twice)
{
    unsigned n = sl_req_header_count(req, s->name);
    struct sl_str v;

    if (n == 0)
        return SL_STR_NULL;
    if (n > 1) {
        *twice = true;
        return SL_STR_NULL;
    }
    v = trim(sl_req_header(req, s->name));
    if (!s->bearer)
        return v;
    /* "Bearer" is case-insensitive (RFC 9110 11.1); another scheme (Basic)
     * carries no bearer token, which is the same as no token. */
    if (v.len < 7 || strncasecmp(v.p, "Bearer", 6) != 0 || (v.p[6] != ' ' && v.p[6] != '\t'))
        return SL_STR_NULL;
    v = trim((struct sl_str){v.p + 7, v.len - 7});
    return v.len > 0 ? v : (struct sl_str){"", 0};
}

/* The request's token from the first source that has one; *from is set to
 * that source. */
static struct sl_str find_token(struct sl_req *req, const struct jwt_conf *c,
                                const struct jwt_source **from, bool *twice)
{
    for (size_t i = 0; i < c->nsources; i++) {
        const struct jwt_source *s = &c->sources[i];
        struct sl_str t = SL_STR_NULL;

        if (s->kind == JWT_FROM_HEADER)
            t = from_header(req, s, twice);
        else if (s->kind == JWT_FROM_COOKIE)
            t = sl_req_key(req, &s->key);
        else
            t = sl_req_query_param(req, s->name);
        if (*twice)
            return SL_STR_NULL;
        if (t.p != NULL) {
            *from = s;
            return t;
        }
    }
    return SL_STR_NULL;
}

/* Answer 401 or 403, with its WWW-Authenticate, log field and count. */
static enum sl_status deny(struct sl_req *req, const char *result, const char *www, int status,
                           const char *why)
{
    sl_req_log_field(req, "auth", result);
    sl_req_count(req, &decisions, result);
    sl_log(SL_LOG_DEBUG, req, "jwt: %s", why);
    if (sl_resp_header_add(req, "WWW-Authenticate", www) != 0)
        return SL_ERROR;
    if (sl_req_respond(req, status, status == 401 ? "invalid_token" : "insufficient_scope", why) !=
        0)
        return SL_ERROR;
    return SL_DONE;
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

/* The first rule for the request's method, or NULL. */
static const struct jwt_rule *rule_for(const struct jwt_conf *c, struct sl_str method)
{
    for (size_t i = 0; i < c->nrules; i++)
        for (size_t m = 0; m < c->rules[i].nmethods; m++)
            if (sl_str_eq(method, sl_str_from(c->rules[i].methods[m])))
                return &c->rules[i];
    return NULL;
}

/* 403 insufficient_scope naming every scope the request needs. */
static enum sl_status forbid(struct sl_req *req, const struct jwt_conf *c, const struct jwt_rule *r)
{
    const struct jwt_authz *a[2] = {&c->authz, r != NULL ? &r->authz : NULL};
    size_t len = strlen(c->www_forbidden) + 16, o;
    char *www;

    for (int k = 0; k < 2; k++)
        for (size_t i = 0; a[k] != NULL && i < a[k]->nscopes; i++)
            len += strlen(a[k]->scopes[i]) + 1;
    www = sl_arena_alloc(sl_req_arena(req), len);
    if (www == NULL)
        return SL_ERROR;
    o = (size_t)snprintf(www, len, "%s", c->www_forbidden);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; a[k] != NULL && i < a[k]->nscopes; i++)
            o += (size_t)snprintf(www + o, len - o, "%s%s",
                                  o == strlen(c->www_forbidden) ? ", scope=\"" : " ",
                                  a[k]->scopes[i]);
    if (o > strlen(c->www_forbidden))
        snprintf(www + o, len - o, "\"");
    return deny(req, "forbidden", www, 403, "the token does not grant what this request needs");
}

/* A header value we may forward: no control characters (a claim holding
 * CR LF must not start a header of its own). */
static bool header_safe(const char *v)
{
    for (; *v != '\0'; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
            return false;
    return true;
}

static int set_var(struct sl_req *req, const char *name, const json_t *v, int *left)
{
    char var[256], buf[64];
    const char *text;

    if (!(json_is_string(v) || json_is_number(v)) || *left <= 0)
        return 0;
    text = sl__jwt_claim_text(v, buf, sizeof(buf));
    if (text == NULL || snprintf(var, sizeof(var), "jwt:%s", name) >= (int)sizeof(var))
        return 0;
    (*left)--;
    return sl_req_var_set(req, var, sl_str_from(text));
}

/* jwt:CLAIM for each string or number claim, and jwt:CLAIM.MEMBER one level
 * into objects. */
static int set_vars(struct sl_req *req, const json_t *claims)
{
    const char *name, *member;
    const json_t *v, *m;
    int left = MAX_VARS;

    json_object_foreach((json_t *)claims, name, v)
    {
        if (set_var(req, name, v, &left) != 0)
            return -1;
        if (!json_is_object(v) || strlen(name) > 120)
            continue;
        json_object_foreach((json_t *)v, member, m)
        {
            char path[256];

            if (snprintf(path, sizeof(path), "%s.%s", name, member) < (int)sizeof(path) &&
                set_var(req, path, m, &left) != 0)
                return -1;
        }
    }
    return 0;
}

/* The token passed: claims upstream, variables, the log. */
static enum sl_status admit(struct sl_req *req, const struct jwt_conf *c, const json_t *claims,
                            const struct jwt_source *from)
{
    char buf[64];
    const char *sub;

    for (size_t i = 0; i < c->nforwards; i++) {
        const char *v =
            sl__jwt_claim_text(sl__jwt_claim(claims, c->forwards[i].claim), buf, sizeof(buf));

        if (v != NULL && header_safe(v) && sl_req_header_set(req, c->forwards[i].header, v) != 0)
            return SL_ERROR;
    }
    if (set_vars(req, claims) != 0)
        return SL_ERROR;
    if (from->kind == JWT_FROM_QUERY && sl_req_query_param_remove(req, from->name) < 0)
        return SL_ERROR;
    if (from->kind == JWT_FROM_HEADER && c->strip_authorization &&
        sl_req_header_set(req, from->name, NULL) != 0)
        return SL_ERROR;
    sub = sl__jwt_claim_text(json_object_get(claims, "sub"), buf, sizeof(buf));
    if (sub != NULL)
        sl_req_log_field(req, "sub", sub);
    sl_req_log_field(req, "auth", "allowed");
    sl_req_count(req, &decisions, "allowed");
    return SL_NEXT;
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

/* 503 auth_unavailable: no keys to check the token with. Never a pass. */
static enum sl_status unavailable(struct sl_req *req, const char *why)
{
    sl_req_log_field(req, "auth", "unavailable");
    sl_req_count(req, &decisions, "unavailable");
    sl_log(SL_LOG_WARN, req, "jwt: %s", why);
    if (sl_resp_header_add(req, "Retry-After", "1") != 0 ||
        sl_req_respond(req, 503, "auth_unavailable",
                       "the keys that check tokens cannot be loaded; try again") != 0)
        return SL_ERROR;
    return SL_DONE;
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
                                    struct sl_str token, const struct jwt_source *from,
                                    uint64_t seq)
{
    struct jwt_worker *w = sl_req_worker_data(req, &sl_plugin_jwt);
    struct pending *p = sl_arena_calloc(sl_req_arena(req), sizeof(*p));

    if (p == NULL)
        return SL_ERROR;
    *p = (struct pending){.req = req, .c = c, .token = token, .from = from};
    p->wait.src = c->jwks;
    p->wait.done = resume;
    sl__jwks_wait(w->jwks, &p->wait, seq);
    sl_req_suspend(req, cancel, p);
    return SL_AGAIN;
}

/*
 * Check the token (found in from) and answer or let the request through.
 * Without a key for the token in a JWKS config, the first time round
 * (!again) waits for a fetch when one may run; again, after that fetch,
 * the answer is final.
 */
static enum sl_status authenticate(struct sl_req *req, const struct jwt_conf *c,
                                   struct sl_str token, const struct jwt_source *from, bool again)
{
    struct jwt_worker *w = sl_req_worker_data(req, &sl_plugin_jwt);
    struct jwks_set *set = c->jwks != NULL ? sl__jwks_source_set(c->jwks) : NULL;
    const char *result = "invalid", *why = NULL;
    const struct jwt_rule *rule;
    bool no_key = false, loaded = set != NULL;
    enum sl_status st;
    json_t *claims;
    char buf[64];

    claims = claims_of(w, c, set, token, &result, &why, &no_key);
    sl__jwks_set_unref(set);
    if (claims == NULL && no_key && c->jwks != NULL) {
        uint64_t seq = 0;
        enum jwks_ask a = again ? JWKS_NO : sl__jwks_source_ask(c->jwks, w->jwks, loaded, &seq);

        if (a == JWKS_WAIT)
            return wait_for_keys(req, c, token, from, seq);
        if (!loaded)
            return unavailable(req, "no key set could be loaded from the IdP yet (see the "
                                    "refresh failures logged)");
    }
    if (claims == NULL)
        return deny(req, result, c->www_invalid, 401, why);
    rule = rule_for(c, sl_req_method(req));
    if (!sl__jwt_authz_ok(claims, &c->authz) ||
        (rule != NULL && !sl__jwt_authz_ok(claims, &rule->authz))) {
        const char *sub = sl__jwt_claim_text(json_object_get(claims, "sub"), buf, sizeof(buf));

        if (sub != NULL)
            sl_req_log_field(req, "sub", sub);
        st = forbid(req, c, rule);
    } else {
        st = admit(req, c, claims, from);
    }
    json_decref(claims);
    return st;
}

/* A fetch that the request waited for completed, or the wait timed out. */
static void resume(struct jwks_wait *wt, bool timed_out)
{
    struct pending *p = (struct pending *)wt;
    enum sl_status st;

    if (timed_out)
        st = unavailable(p->req, "the IdP did not answer in time for this request");
    else
        st = authenticate(p->req, p->c, p->token, p->from, true);
    /* authenticate() never waits twice: again is set. */
    sl_req_resume(p->req, st);
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    const struct jwt_conf *c = conf;
    const struct jwt_source *from = NULL;
    struct sl_str token;
    bool twice = false;

    /* The client's own copies never reach the upstream, token or not. */
    for (size_t i = 0; i < c->nforwards; i++)
        if (sl_req_header_set(req, c->forwards[i].header, NULL) != 0)
            return SL_ERROR;
    token = find_token(req, c, &from, &twice);
    if (twice)
        return deny(req, "invalid", c->www_invalid, 401, "more than one token header");
    if (token.p == NULL)
        return deny(req, "missing", c->www_missing, 401, "a bearer token is required");
    if (token.len > c->max_token_size)
        return deny(req, "invalid", c->www_invalid, 401, "the token is too large");
    return authenticate(req, c, token, from, false);
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
