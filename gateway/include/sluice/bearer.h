/*
 * sluice - bearer tokens (RFC 6750) and what their claims must say: the part
 * that every plugin checking tokens shares (jwt, oauth_introspection), so a
 * route asks the same of a token however it was checked.
 *
 * A plugin reads the shared keys of its YAML map (SL_BEARER_KEYS: scopes,
 * claims, rules, forward_claims, strip_authorization, token_from, realm)
 * with sl_bearer_conf(); on a request, sl_bearer_find() removes the client's
 * copies of the forwarded headers and finds the token (or answers 401);
 * once the plugin knows the token's claims (a verified JWT's payload, an
 * introspection answer), sl_bearer_decide() answers 403 insufficient_scope
 * or lets the request through with the claims forwarded upstream and in
 * request variables (jwt:CLAIM, for rate_limit's and hash_key's keys).
 * Every answer puts "auth" (the result) and "sub" in the access log (never
 * the token) and counts the result in the plugin's
 * sluice_auth_decisions_total.
 */
#ifndef SLUICE_BEARER_H
#define SLUICE_BEARER_H

#include <jansson.h>
#include <stddef.h>

#include "sluice/conf.h"
#include "sluice/plugin.h"
#include "sluice/req.h"

/* The keys sl_bearer_conf() reads, for the plugin's own sl_conf_keys() list. */
#define SL_BEARER_KEYS                                                                             \
    "scopes", "claims", "rules", "forward_claims", "strip_authorization", "token_from", "realm"

/* The results a decision is counted as (the plugin's counter's values). */
#define SL_BEARER_RESULTS                                                                          \
    {                                                                                              \
        "allowed", "missing", "invalid", "expired", "forbidden", "unavailable", NULL               \
    }

struct sl_bearer;

/*
 * Read the SL_BEARER_KEYS of node (the plugin's map; the other keys are the
 * plugin's). plugin names it in log lines; decisions is its
 * sluice_auth_decisions_total (values SL_BEARER_RESULTS, fixed label
 * plugin="NAME"). Returns NULL after reporting what is wrong. Lives in the
 * generation's arena.
 */
const struct sl_bearer *sl_bearer_conf(struct sl_conf_ctx *ctx, const struct sl_node *node,
                                       const char *plugin, const struct sl_counter *decisions);

/* A token found in a request, and where (for sl_bearer_decide()). */
struct sl_bearer_token {
    struct sl_str token;
    const void *from;
};

/*
 * Take the client's copies of the forwarded-claim headers out (always,
 * whatever happens next), then find the token in the first source that has
 * one. SL_NEXT with *t set, or the request was answered 401 invalid_token
 * (no token: without an error code, RFC 6750 3.1; the token header twice;
 * longer than max_size) and that status is returned.
 */
enum sl_status sl_bearer_find(struct sl_req *req, const struct sl_bearer *b, size_t max_size,
                              struct sl_bearer_token *t);

/* Answer 401 invalid_token. result is "invalid" or "expired"; why goes to
 * the debug log. */
enum sl_status sl_bearer_reject(struct sl_req *req, const struct sl_bearer *b, const char *result,
                                const char *why);

/* Answer 503 auth_unavailable with Retry-After (the token could not be
 * checked: never a pass); why is logged as a warning. */
enum sl_status sl_bearer_unavailable(struct sl_req *req, const struct sl_bearer *b,
                                     const char *why);

/*
 * The token t carries claims (a JSON object) known to be genuine and
 * current. 403 insufficient_scope, naming the scopes needed, when they do
 * not grant the route's scopes and claims and those of the rule for the
 * request's method; else SL_NEXT: the forward_claims headers set, jwt:CLAIM
 * request variables for string and number claims (and one level into
 * objects), a query token removed from the URL, an Authorization token
 * removed with strip_authorization.
 */
enum sl_status sl_bearer_decide(struct sl_req *req, const struct sl_bearer *b,
                                const struct sl_bearer_token *t, const json_t *claims);

/* The claim at path (a name, or a dotted path into nested objects:
 * "org.id"; a flat name holding dots wins), borrowed from claims, or NULL. */
const json_t *sl_claim(const json_t *claims, const char *path);

/* A numeric claim (exp, nbf, iat): 0 with *v set, 1 when absent, -1 when
 * it is not a number. */
int sl_claim_number(const json_t *claims, const char *name, double *v);

/*
 * A claim's value as text, in buf (size n): strings as they are (borrowed),
 * integers, reals and booleans as JSON writes them. NULL for null, objects,
 * arrays, and for what does not fit.
 */
const char *sl_claim_text(const json_t *v, char *buf, size_t n);

#endif
