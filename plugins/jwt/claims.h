/*
 * jwt plugin: what a verified token's registered claims must say: times
 * (exp, nbf, iat) against a clock with leeway, issuer and audience. What
 * the route asks beyond that (scopes, claim values, per-method rules) is
 * sluice/bearer.h's. Pure: the caller passes the clock; unit-tested by
 * test_jwt.c.
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

#endif
