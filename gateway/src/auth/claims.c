/*
 * auth: reading a token's claims: a claim by dotted path, its value as
 * text, scopes, and whether the claims grant what a route asks.
 */
#include "auth/bearer.h"

#include <stdio.h>
#include <string.h>

static bool one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

int sl_claim_number(const json_t *claims, const char *name, double *v)
{
    const json_t *j = json_object_get(claims, name);

    if (j == NULL)
        return 1;
    if (!json_is_number(j))
        return -1;
    *v = json_number_value(j);
    return 0;
}

const json_t *sl_claim(const json_t *claims, const char *path)
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

const char *sl_claim_text(const json_t *v, char *buf, size_t n)
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

bool sl__claims_have_scope(const json_t *claims, const char *scope)
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

static bool value_matches(const json_t *v, const struct sl_claim_req *c)
{
    char buf[64];
    const char *text = sl_claim_text(v, buf, sizeof(buf));

    return text != NULL && one_of(text, c->values, c->n);
}

static bool claim_holds(const json_t *claims, const struct sl_claim_req *c)
{
    const json_t *v = sl_claim(claims, c->path), *e;
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

bool sl__claims_grant(const json_t *claims, const struct sl_authz *a)
{
    for (size_t i = 0; i < a->nscopes; i++)
        if (!sl__claims_have_scope(claims, a->scopes[i]))
            return false;
    for (size_t i = 0; i < a->nclaims; i++)
        if (!claim_holds(claims, &a->claims[i]))
            return false;
    return true;
}

bool sl__claim_path_ok(const char *path)
{
    size_t len = strlen(path);

    return len > 0 && path[0] != '.' && path[len - 1] != '.' && strstr(path, "..") == NULL;
}
