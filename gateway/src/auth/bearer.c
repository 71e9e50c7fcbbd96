/*
 * auth: a bearer token on a request: finding it, and answering for it.
 *
 * sl_bearer_find() takes the client's copies of the forwarded-claim
 * headers out first, token or not, and answers 401 when there is no token
 * (no error code: RFC 6750 3.1), when its header came twice (which copy
 * would the upstream believe?), when it is empty and when it is too large
 * to be checked. A token in the query is decoded as a form is (RFC 6750
 * 2.3).
 * sl_bearer_decide() answers 403 insufficient_scope naming every scope the
 * request needs, or lets it through with its claims forwarded. Every
 * answer is logged ("auth", "sub") and counted in the plugin's decisions.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/bearer.h"
#include "base/http.h"
#include "sluice/log.h"

/* Request variables made from one token, at most: the request arena is
 * shared with everything else. */
#define MAX_VARS 128

static struct sl_str trim(struct sl_str s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* The token in the header of source s, {NULL, 0} when there is none, or
 * *twice set when the header came more than once. */
static struct sl_str from_header(struct sl_req *req, const struct sl_token_source *s, bool *twice)
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

/* Answer 401 or 403, with its WWW-Authenticate, log field and count. */
static enum sl_status deny(struct sl_req *req, const struct sl_bearer *b, const char *result,
                           const char *www, int status, const char *why)
{
    sl_req_log_field(req, "auth", result);
    sl_req_count(req, b->decisions, result);
    sl_log(SL_LOG_DEBUG, req, "%s: %s", b->plugin, why);
    if (sl_resp_header_add(req, "WWW-Authenticate", www) != 0)
        return SL_ERROR;
    if (sl_req_respond(req, status, status == 401 ? "invalid_token" : "insufficient_scope", why) !=
        0)
        return SL_ERROR;
    return SL_DONE;
}

enum sl_status sl_bearer_find(struct sl_req *req, const struct sl_bearer *b, size_t max_size,
                              struct sl_bearer_token *t)
{
    bool twice = false;

    /* The client's own copies never reach the upstream, token or not. */
    for (size_t i = 0; i < b->nforwards; i++)
        if (sl_req_header_set(req, b->forwards[i].header, NULL) != 0)
            return SL_ERROR;
    for (size_t i = 0; i < b->nsources; i++) {
        const struct sl_token_source *s = &b->sources[i];
        struct sl_str v = SL_STR_NULL;

        if (s->kind == SL_TOKEN_HEADER)
            v = from_header(req, s, &twice);
        else if (s->kind == SL_TOKEN_COOKIE)
            v = sl_req_key(req, &s->key);
        else
            v = sl_req_query_param(req, s->name);
        if (twice)
            return deny(req, b, "invalid", b->www_invalid, 401, "more than one token header");
        if (v.p == NULL)
            continue;
        if (v.len == 0)
            return deny(req, b, "invalid", b->www_invalid, 401, "the token is empty");
        if (v.len > max_size)
            return deny(req, b, "invalid", b->www_invalid, 401, "the token is too large");
        *t = (struct sl_bearer_token){v, s};
        return SL_NEXT;
    }
    return deny(req, b, "missing", b->www_missing, 401, "a bearer token is required");
}

enum sl_status sl_bearer_reject(struct sl_req *req, const struct sl_bearer *b, const char *result,
                                const char *why)
{
    return deny(req, b, result, b->www_invalid, 401, why);
}

enum sl_status sl_bearer_unavailable(struct sl_req *req, const struct sl_bearer *b, const char *why)
{
    sl_req_log_field(req, "auth", "unavailable");
    sl_req_count(req, b->decisions, "unavailable");
    sl_log(SL_LOG_WARN, req, "%s: %s", b->plugin, why);
    if (sl_resp_header_add(req, "Retry-After", "1") != 0 ||
        sl_req_respond(req, 503, "auth_unavailable",
                       "the token cannot be checked right now; try again") != 0)
        return SL_ERROR;
    return SL_DONE;
}

/* The first rule for the request's method, or NULL. */
static const struct sl_authz_rule *rule_for(const struct sl_bearer *b, struct sl_str method)
{
    for (size_t i = 0; i < b->nrules; i++)
        for (size_t m = 0; m < b->rules[i].nmethods; m++)
            if (sl_str_eq(method, sl_str_from(b->rules[i].methods[m])))
                return &b->rules[i];
    return NULL;
}

/* 403 insufficient_scope naming every scope the request needs. */
static enum sl_status forbid(struct sl_req *req, const struct sl_bearer *b,
                             const struct sl_authz_rule *r)
{
    const struct sl_authz *a[2] = {&b->authz, r != NULL ? &r->authz : NULL};
    size_t base = strlen(b->www_forbidden), len = base + 16, o;
    char *www;

    for (int k = 0; k < 2; k++)
        for (size_t i = 0; a[k] != NULL && i < a[k]->nscopes; i++)
            len += strlen(a[k]->scopes[i]) + 1;
    www = sl_arena_alloc(sl_req_arena(req), len);
    if (www == NULL)
        return SL_ERROR;
    o = (size_t)snprintf(www, len, "%s", b->www_forbidden);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; a[k] != NULL && i < a[k]->nscopes; i++)
            o += (size_t)snprintf(www + o, len - o, "%s%s", o == base ? ", scope=\"" : " ",
                                  a[k]->scopes[i]);
    if (o > base)
        snprintf(www + o, len - o, "\"");
    return deny(req, b, "forbidden", www, 403, "the token does not grant what this request needs");
}

static int set_var(struct sl_req *req, const char *name, const json_t *v, int *left)
{
    char var[256], buf[64];
    const char *text;

    if (!(json_is_string(v) || json_is_number(v)) || *left <= 0)
        return 0;
    text = sl_claim_text(v, buf, sizeof(buf));
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

/* The token passed: claims upstream (a value holding CR LF would start a
 * header of its own: not forwarded), variables, the token removed where
 * asked, the log. */
static enum sl_status admit(struct sl_req *req, const struct sl_bearer *b, const json_t *claims,
                            const struct sl_token_source *from)
{
    char buf[64];

    for (size_t i = 0; i < b->nforwards; i++) {
        const char *v = sl_claim_text(sl_claim(claims, b->forwards[i].claim), buf, sizeof(buf));

        if (v != NULL && sl__http_valid_value(sl_str_from(v)) &&
            sl_req_header_set(req, b->forwards[i].header, v) != 0)
            return SL_ERROR;
    }
    if (set_vars(req, claims) != 0)
        return SL_ERROR;
    if (from->kind == SL_TOKEN_QUERY && sl_req_query_param_remove(req, from->name) < 0)
        return SL_ERROR;
    if (from->kind == SL_TOKEN_HEADER && b->strip_authorization &&
        sl_req_header_set(req, from->name, NULL) != 0)
        return SL_ERROR;
    sl_req_log_field(req, "auth", "allowed");
    sl_req_count(req, b->decisions, "allowed");
    return SL_NEXT;
}

enum sl_status sl_bearer_decide(struct sl_req *req, const struct sl_bearer *b,
                                const struct sl_bearer_token *t, const json_t *claims)
{
    const struct sl_authz_rule *rule = rule_for(b, sl_req_method(req));
    char buf[64];
    const char *sub = sl_claim_text(json_object_get(claims, "sub"), buf, sizeof(buf));

    if (sub != NULL && sl__http_valid_value(sl_str_from(sub)))
        sl_req_log_field(req, "sub", sub);
    if (!sl__claims_grant(claims, &b->authz) ||
        (rule != NULL && !sl__claims_grant(claims, &rule->authz)))
        return forbid(req, b, rule);
    return admit(req, b, claims, t->from);
}
