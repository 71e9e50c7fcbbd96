/*
 * jwt plugin: checks on a verified token's claims.
 */
#include "claims.h"

#include "sluice/bearer.h"

#include <stdio.h>
#include <string.h>

enum jwt_verdict sl__jwt_check_times(const json_t *claims, const struct jwt_time_rules *r,
                                     double now, const char **why, double *exp)
{
    double v = 0;
    int rc = sl_claim_number(claims, "exp", &v);

    *exp = 0;
    if (rc < 0 || (rc > 0 && r->require_exp)) {
        *why = rc < 0 ? "the token's exp is not a number" : "the token has no exp";
        return JWT_INVALID;
    }
    if (rc == 0) {
        *exp = v;
        if (!(v > now - r->leeway_s)) {
            *why = "the token has expired";
            return JWT_EXPIRED;
        }
    }
    rc = sl_claim_number(claims, "nbf", &v);
    if (rc < 0 || (rc == 0 && !(v <= now + r->leeway_s))) {
        *why = rc < 0 ? "the token's nbf is not a number" : "the token is not valid yet";
        return JWT_INVALID;
    }
    rc = sl_claim_number(claims, "iat", &v);
    if (rc < 0 || (rc == 0 && !(v <= now + r->leeway_s))) {
        *why = rc < 0 ? "the token's iat is not a number" : "the token is issued in the future";
        return JWT_INVALID;
    }
    return JWT_VALID;
}

static bool one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

bool sl__jwt_check_iss(const json_t *claims, const char *const *issuers, size_t n)
{
    const json_t *iss = json_object_get(claims, "iss");

    return n == 0 || (json_is_string(iss) && one_of(json_string_value(iss), issuers, n));
}

bool sl__jwt_check_aud(const json_t *claims, const char *const *audiences, size_t n)
{
    const json_t *aud = json_object_get(claims, "aud"), *v;
    size_t i;

    if (n == 0)
        return true;
    if (json_is_string(aud))
        return one_of(json_string_value(aud), audiences, n);
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && one_of(json_string_value(v), audiences, n))
            return true;
    }
    return false;
}
