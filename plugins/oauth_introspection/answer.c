/*
 * oauth_introspection plugin: building a call, reading its answer.
 */
#include "answer.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"

/* application/x-www-form-urlencoded: unreserved bytes as they are, the
 * rest %XX (a space too: never '+', which some IdPs read as itself). */
static size_t form_encode(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

char *sl__oi_form_body(const char *token, size_t len, size_t *n)
{
    static const char head[] = "token=", tail[] = "&token_type_hint=access_token";
    char *b = sl_malloc(sizeof(head) + 3 * len + sizeof(tail), "an introspection call");
    size_t o = sizeof(head) - 1;

    memcpy(b, head, o);
    o += form_encode(b + o, token, len);
    memcpy(b + o, tail, sizeof(tail));
    *n = o + sizeof(tail) - 1;
    return b;
}

char *sl__oi_headers(const char *client_id, const char *client_secret)
{
    static const char head[] = "Authorization: Basic ",
                      tail[] = "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                               "Accept: application/json\r\n";
    size_t il = strlen(client_id), sl = strlen(client_secret), n, b;
    char *cred = sl_malloc(3 * (il + sl) + 2, "an introspection call"), *h;

    n = form_encode(cred, client_id, il);
    cred[n++] = ':';
    n += form_encode(cred + n, client_secret, sl);
    /* "Authorization: Basic " base64(cred) CRLF ...: base64 is 4 bytes per 3. */
    h = sl_malloc(sizeof(head) + 4 * (n / 3 + 1) + sizeof(tail), "an introspection call");
    memcpy(h, head, sizeof(head) - 1);
    b = (size_t)EVP_EncodeBlock((unsigned char *)h + sizeof(head) - 1, (const unsigned char *)cred,
                                (int)n);
    memcpy(h + sizeof(head) - 1 + b, tail, sizeof(tail));
    OPENSSL_cleanse(cred, n);
    free(cred);
    return h;
}

static struct oi_outcome failed(const char *why)
{
    return (struct oi_outcome){.kind = OI_FAILED, .why = why};
}

static struct oi_outcome inactive(const char *result, const char *why, double now, double ttl,
                                  double *until)
{
    *until = ttl > 0 ? now + ttl : 0;
    return (struct oi_outcome){.kind = OI_INACTIVE, .result = result, .why = why};
}

struct oi_outcome sl__oi_answer(int status, const char *body, size_t len, double now,
                                const struct oi_times *t, double *until)
{
    double cache_ttl_s = t->cache_ttl_s, negative_ttl_s = t->negative_ttl_s;
    json_t *j, *exp, *type;
    double e;

    *until = 0;
    if (status != 200)
        return failed(status == 401 || status == 403
                          ? "the introspection endpoint refused the gateway's client_id and "
                            "client_secret"
                          : "the introspection endpoint answered with an error");
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return failed("the introspection endpoint's answer is not a JSON object");
    }
    if (!json_is_true(json_object_get(j, "active"))) {
        json_decref(j);
        return inactive("invalid", "the token is not active", now, negative_ttl_s, until);
    }
    type = json_object_get(j, "token_type");
    if (json_is_string(type) && strcasestr(json_string_value(type), "refresh") != NULL) {
        json_decref(j);
        return inactive("invalid", "a refresh token is not an access token", now, negative_ttl_s,
                        until);
    }
    exp = json_object_get(j, "exp");
    if (exp != NULL && !json_is_number(exp)) {
        json_decref(j);
        return inactive("invalid", "the token's exp is not a number", now, negative_ttl_s, until);
    }
    e = exp != NULL ? json_number_value(exp) + t->leeway_s : 0;
    if (exp != NULL && !(e > now)) {
        json_decref(j);
        return inactive("expired", "the token has expired", now, negative_ttl_s, until);
    }
    *until = now + cache_ttl_s;
    if (exp != NULL && e < *until)
        *until = e;
    if (cache_ttl_s <= 0)
        *until = 0;
    return (struct oi_outcome){.kind = OI_ACTIVE, .claims = j};
}
