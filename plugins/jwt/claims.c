/*
 * jwt plugin: checks on a verified token's claims.
 */
#include "claims.h"

#include <stdio.h>
#include <string.h>

/* A numeric claim: 0 and *v set, 1 when absent, -1 when not a number. */
static int number(const json_t *claims, const char *name, double *v)
{
    const json_t *j = json_object_get(claims, name);

    if (j == NULL)
        return 1;
    if (!json_is_number(j))
        return -1;
    *v = json_number_value(j);
    return 0;
}

enum jwt_verdict sl__jwt_check_times(const json_t *claims, const struct jwt_time_rules *r,
                                     double now, const char **why, double *exp)
{
    double v = 0;
    int rc = number(claims, "exp", &v);

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
    rc = number(claims, "nbf", &v);
    if (rc < 0 || (rc == 0 && !(v <= now + r->leeway_s))) {
        *why = rc < 0 ? "the token's nbf is not a number" : "the token is not valid yet";
        return JWT_INVALID;
    }
    rc = number(claims, "iat", &v);
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

const json_t *sl__jwt_claim(const json_t *claims, const char *path)
{
    const json_t *j = claims;
    const char *p = path;

    /* A flat claim named with dots ("https://example.com/role") wins over a
     * path: that is how IdPs namespace custom claims. */
    if (json_object_get(claims, path) != NULL)
        return json_object_get(claims, path);
    while (j != NULL) {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);

        if (!json_is_object(j))
            return NULL;
        j = json_object_getn(j, p, len);
        if (dot == NULL)
            return j;
        p = dot + 1;
    }
    return NULL;
}

const char *sl__jwt_claim_text(const json_t *v, char *buf, size_t n)
{
    int len;

    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        len = snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        len = snprintf(buf, n, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        len = snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return len > 0 && (size_t)len < n ? buf : NULL;
}

/* scope is one of the space-separated words of list. */
static bool has_word(const char *list, const char *scope)
{
    size_t n = strlen(scope);

    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, " ");

        if (len == n && memcmp(p, scope, n) == 0)
            return true;
        p += len;
        p += strspn(p, " ");
    }
    return false;
}

bool sl__jwt_has_scope(const json_t *claims, const char *scope)
{
    const json_t *s = json_object_get(claims, "scope"), *scp = json_object_get(claims, "scp"), *v;
    size_t i;

    if (json_is_string(s) && has_word(json_string_value(s), scope))
        return true;
    if (json_is_string(scp))
        return has_word(json_string_value(scp), scope);
    json_array_foreach(scp, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), scope) == 0)
            return true;
    }
    return false;
}

static bool value_matches(const json_t *v, const struct jwt_claim_req *c)
{
    char buf[64];
    const char *text = sl__jwt_claim_text(v, buf, sizeof(buf));

    return text != NULL && one_of(text, c->values, c->n);
}

static bool claim_holds(const json_t *claims, const struct jwt_claim_req *c)
{
    const json_t *v = sl__jwt_claim(claims, c->path), *e;
    size_t i;

    if (!json_is_array(v))
        return v != NULL && value_matches(v, c);
    json_array_foreach(v, i, e)
    {
        if (value_matches(e, c))
            return true;
    }
    return false;
}

bool sl__jwt_authz_ok(const json_t *claims, const struct jwt_authz *a)
{
    for (size_t i = 0; i < a->nscopes; i++)
        if (!sl__jwt_has_scope(claims, a->scopes[i]))
            return false;
    for (size_t i = 0; i < a->nclaims; i++)
        if (!claim_holds(claims, &a->claims[i]))
            return false;
    return true;
}

bool sl__jwt_claim_path_ok(const char *path)
{
    size_t len = strlen(path);

    return len > 0 && path[0] != '.' && path[len - 1] != '.' && strstr(path, "..") == NULL;
}
