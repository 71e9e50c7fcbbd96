/*
 * jwt plugin: what a verified token's claims must say. Times (exp, nbf,
 * iat) against a clock with leeway, issuer and audience, then what the
 * route asks: scopes, claim values, per-method rules. Pure: the caller
 * passes the clock; unit-tested by test_claims.c.
 */
#ifndef SL_PLUGIN_JWT_CLAIMS_H
#define SL_PLUGIN_JWT_CLAIMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct jwt_time_rules {
    double leeway_s;
    bool require_exp;
};

/* A claim that must hold one of values: path is a claim name or a dotted
 * path into nested objects ("org.id"). */
struct jwt_claim_req {
    const char *path;
    const char *const *values;
    size_t n;
};

/* What a request's token must carry: every scope, and each claim. */
struct jwt_authz {
    const char *const *scopes;
    size_t nscopes;
    const struct jwt_claim_req *claims;
    size_t nclaims;
};

enum jwt_verdict { JWT_VALID, JWT_EXPIRED, JWT_INVALID };

/*
 * Check exp (required unless !require_exp; a number > now - leeway), nbf and
 * iat (when present, numbers <= now + leeway). now is Unix time in seconds.
 * On failure *why says what is wrong. *exp is set to the token's exp, or
 * to 0 when it has none.
 */
enum jwt_verdict sl__jwt_check_times(const json_t *claims, const struct jwt_time_rules *r,
                                     double now, const char **why, double *exp);

/* iss is a string equal to one of issuers (n of them; n == 0: any). */
bool sl__jwt_check_iss(const json_t *claims, const char *const *issuers, size_t n);

/* aud, a string or an array of strings, holds one of audiences (n == 0: any). */
bool sl__jwt_check_aud(const json_t *claims, const char *const *audiences, size_t n);

/* The claim at path ("sub", "org.id"), borrowed from claims, or NULL. */
const json_t *sl__jwt_claim(const json_t *claims, const char *path);

/*
 * A claim's value as text for comparing and forwarding, in buf (size n):
 * strings as they are (borrowed, not copied), integers, reals and booleans
 * as JSON writes them. NULL for null, objects, arrays, and for what does
 * not fit.
 */
const char *sl__jwt_claim_text(const json_t *v, char *buf, size_t n);

/* The token grants scope: one word of the space-separated "scope", or an
 * element of "scp" (an array, or a space-separated string). */
bool sl__jwt_has_scope(const json_t *claims, const char *scope);

/* Every scope and every claim of a holds. A claim holds when its value (or,
 * for an array, one of its elements) is one of the listed values. */
bool sl__jwt_authz_ok(const json_t *claims, const struct jwt_authz *a);

/* A claim path is usable: dot-separated names, none empty. */
bool sl__jwt_claim_path_ok(const char *path);

#endif
