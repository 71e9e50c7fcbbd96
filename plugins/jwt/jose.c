/*
 * jwt plugin: base64url, the three parts of a token and its JOSE header.
 */
#include "jose.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/alloc.h"

static const char *const alg_names[JWT_NALGS] = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256",
    "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
};

int sl__jwt_alg_parse(const char *name)
{
    for (int i = 0; i < JWT_NALGS; i++)
        if (strcmp(name, alg_names[i]) == 0)
            return i;
    return -1;
}

const char *sl__jwt_alg_name(enum jwt_alg alg)
{
    return alg < JWT_NALGS ? alg_names[alg] : "?";
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

ssize_t sl__jwt_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    size_t o = 0, i;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 1)
        return -1;
    for (i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: "AB" and "AC" must not both mean one byte. */
    if (acc != 0)
        return -1;
    return (ssize_t)o;
}

/* Decode one part as a JSON object, or NULL. */
static json_t *decode_object(const char *b64, size_t len)
{
    unsigned char *buf = sl_malloc(len * 3 / 4 + 1, "the jwt plugin's decoder");
    ssize_t n = sl__jwt_b64url_decode(b64, len, buf);
    json_t *j = NULL;

    /* Duplicate members are refused: two "alg"s or two "sub"s could be read
     * differently by another parser down the line. */
    if (n > 0)
        j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* The JOSE header checks, on t->header. */
static const char *check_header(struct jwt_token *t, unsigned algs)
{
    const json_t *alg = json_object_get(t->header, "alg"), *kid;
    int a;

    if (!json_is_string(alg))
        return "the token's header has no alg";
    if (strcasecmp(json_string_value(alg), "none") == 0)
        return "unsigned tokens (alg none) are never accepted";
    a = sl__jwt_alg_parse(json_string_value(alg));
    if (a < 0)
        return "the token's alg is unknown";
    if (!(algs & (1u << a)))
        return "the token's alg is not allowed";
    /* RFC 7515 4.1.11: a recipient that does not understand a listed
     * extension must reject the token; we understand none. */
    if (json_object_get(t->header, "crit") != NULL)
        return "the token has a crit header";
    kid = json_object_get(t->header, "kid");
    if (kid != NULL && !json_is_string(kid))
        return "the token's kid is not a string";
    t->alg = (enum jwt_alg)a;
    t->kid = kid != NULL ? json_string_value(kid) : NULL;
    return NULL;
}

const char *sl__jwt_decode(const char *token, size_t len, unsigned algs, struct jwt_token *t)
{
    const char *d1 = memchr(token, '.', len), *d2, *end = token + len;
    const char *why;
    ssize_t n;

    memset(t, 0, sizeof(*t));
    if (d1 == NULL || (d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1))) == NULL ||
        memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return "the token is not three dot-separated parts";
    if (d1 == token || d2 == d1 + 1 || d2 + 1 == end)
        return "a part of the token is empty";
    if ((size_t)(end - d2 - 1) > JWT_MAX_SIG / 3 * 4)
        return "the token's signature is too long";
    n = sl__jwt_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), t->sig);
    if (n <= 0)
        return "the token's signature is not base64url";
    t->sig_len = (size_t)n;
    t->header = decode_object(token, (size_t)(d1 - token));
    if (t->header == NULL)
        return "the token's header is not a base64url JSON object";
    t->input = token;
    t->input_len = (size_t)(d2 - token);
    t->payload_b64 = d1 + 1;
    t->payload_b64_len = (size_t)(d2 - d1 - 1);
    why = check_header(t, algs);
    if (why != NULL)
        sl__jwt_token_clear(t);
    return why;
}

const char *sl__jwt_decode_payload(struct jwt_token *t)
{
    t->payload = decode_object(t->payload_b64, t->payload_b64_len);
    return t->payload == NULL ? "the token's payload is not a base64url JSON object" : NULL;
}

void sl__jwt_token_clear(struct jwt_token *t)
{
    json_decref(t->header);
    json_decref(t->payload);
    t->header = t->payload = NULL;
    t->kid = NULL;
}
