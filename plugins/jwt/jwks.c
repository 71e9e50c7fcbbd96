/*
 * jwt plugin: JWKS and discovery documents into key sets, with OpenSSL 3's
 * EVP_PKEY_fromdata (no deprecated RSA_ or EC_KEY_ calls).
 */
#include "jwks.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"

#define RSA_ALGS                                                                                   \
    ((1u << JWT_RS256) | (1u << JWT_RS384) | (1u << JWT_RS512) | (1u << JWT_PS256) |               \
     (1u << JWT_PS384) | (1u << JWT_PS512))

/* The longest member we decode: an 8192-bit modulus. */
#define MAX_MEMBER 1024

/* Member name of o, base64url-decoded into out (room for MAX_MEMBER bytes).
 * Returns the length, or -1 when it is missing, not a string or too long. */
static ssize_t member(const json_t *o, const char *name, unsigned char *out)
{
    const json_t *v = json_object_get(o, name);
    size_t len;

    if (!json_is_string(v))
        return -1;
    len = json_string_length(v);
    if (len == 0 || len > MAX_MEMBER * 4 / 3)
        return -1;
    return sl__jwt_b64url_decode(json_string_value(v), len, out);
}

/* EVP_PKEY_fromdata for a public key of type name with params. */
static EVP_PKEY *from_params(const char *name, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
    EVP_PKEY *pkey = NULL;

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(const json_t *o, unsigned *algs, const char **why)
{
    unsigned char n[MAX_MEMBER], e[MAX_MEMBER];
    ssize_t nl = member(o, "n", n), el = member(o, "e", e);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn = nl > 0 ? BN_bin2bn(n, (int)nl, NULL) : NULL;
    BIGNUM *be = el > 0 && el <= 8 ? BN_bin2bn(e, (int)el, NULL) : NULL;
    EVP_PKEY *pkey = NULL;

    *why = "an RSA key needs n and e";
    if (bld != NULL && bn != NULL && be != NULL &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        pkey = from_params("RSA", bld);
    if (pkey != NULL && EVP_PKEY_get_bits(pkey) < 2048) {
        *why = "an RSA key must have at least 2048 bits";
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    *algs = RSA_ALGS;
    return pkey;
}

static EVP_PKEY *ec_key(const json_t *o, unsigned *algs, const char **why)
{
    static const struct {
        const char *crv, *group;
        size_t size;
        enum jwt_alg alg;
    } curves[] = {{"P-256", "prime256v1", 32, JWT_ES256},
                  {"P-384", "secp384r1", 48, JWT_ES384},
                  {"P-521", "secp521r1", 66, JWT_ES512}};
    const char *crv = json_string_value(json_object_get(o, "crv"));
    unsigned char x[MAX_MEMBER], y[MAX_MEMBER], point[1 + 2 * 66];
    OSSL_PARAM_BLD *bld;
    EVP_PKEY *pkey = NULL;
    size_t c = 0;

    while (c < 3 && (crv == NULL || strcmp(crv, curves[c].crv) != 0))
        c++;
    if (c == 3) {
        *why = "an EC key's crv must be P-256, P-384 or P-521";
        return NULL;
    }
    *algs = 1u << curves[c].alg;
    /* RFC 7518 6.2.1.2: x and y are exactly the curve's size, leading
     * zeros kept. */
    if (member(o, "x", x) != (ssize_t)curves[c].size ||
        member(o, "y", y) != (ssize_t)curves[c].size) {
        *why = "an EC key's x and y must be the curve's size";
        return NULL;
    }
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, curves[c].size);
    memcpy(point + 1 + curves[c].size, y, curves[c].size);
    *why = "the EC key's point is not on its curve";
    bld = OSSL_PARAM_BLD_new();
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[c].group, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                         1 + 2 * curves[c].size) == 1)
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static EVP_PKEY *okp_key(const json_t *o, unsigned *algs, const char **why)
{
    const char *crv = json_string_value(json_object_get(o, "crv"));
    unsigned char x[MAX_MEMBER];

    *algs = 1u << JWT_EDDSA;
    if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
        *why = "an OKP key's crv must be Ed25519";
        return NULL;
    }
    if (member(o, "x", x) != 32) {
        *why = "an Ed25519 key's x must be 32 bytes";
        return NULL;
    }
    *why = "the Ed25519 key is not valid";
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
}

/* One member of keys into k; returns false (and why) to skip it. */
static bool read_jwk(const json_t *o, struct jwt_key *k, const char **why)
{
    const char *kty = json_string_value(json_object_get(o, "kty"));
    const json_t *use = json_object_get(o, "use"), *alg = json_object_get(o, "alg");
    const json_t *kid = json_object_get(o, "kid");
    unsigned algs = 0;
    int a = -1;

    *why = "a key is not an object";
    if (!json_is_object(o))
        return false;
    *why = "a key for encryption (\"use\": \"enc\")";
    if (use != NULL && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
        return false;
    *why = "a kid that is not a string";
    if (kid != NULL && !json_is_string(kid))
        return false;
    *why = "an alg that is not a known JOSE alg";
    if (alg != NULL &&
        (!json_is_string(alg) || (a = sl__jwt_alg_parse(json_string_value(alg))) < 0))
        return false;
    if (kty != NULL && strcmp(kty, "RSA") == 0)
        k->pkey = rsa_key(o, &algs, why);
    else if (kty != NULL && strcmp(kty, "EC") == 0)
        k->pkey = ec_key(o, &algs, why);
    else if (kty != NULL && strcmp(kty, "OKP") == 0)
        k->pkey = okp_key(o, &algs, why);
    else
        *why = "a kty other than RSA, EC and OKP (HMAC secrets never come from a JWKS)";
    ERR_clear_error();
    if (k->pkey == NULL)
        return false;
    if (a >= 0 && !(algs & (1u << a))) {
        *why = "an alg that does not fit its key";
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
        return false;
    }
    k->algs = a >= 0 ? 1u << a : algs;
    for (a = 0; !(k->algs & (1u << a)); a++)
        ;
    k->alg = (enum jwt_alg)a;
    k->kid = kid != NULL ? sl_strdup(json_string_value(kid), "the jwt plugin's JWKS") : NULL;
    return true;
}

static void set_free(struct jwks_set *s)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        EVP_PKEY_free(s->keys[i].pkey);
        free((char *)s->keys[i].kid);
    }
    free(s->keys);
    free(s->fingerprint);
    free(s);
}

struct jwks_set *sl__jwks_parse(const char *body, size_t len, size_t *skipped, const char **why)
{
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *kept, *k;
    const json_t *keys = json_object_get(doc, "keys");
    struct jwks_set *s;
    size_t i;

    *skipped = 0;
    if (!json_is_array(keys)) {
        *why = "the document is not a JWKS (a JSON object with a keys array)";
        json_decref(doc);
        return NULL;
    }
    s = sl_calloc(1, sizeof(*s), "the jwt plugin's JWKS");
    atomic_init(&s->refs, 1);
    s->keys = sl_calloc(JWKS_MAX_KEYS, sizeof(*s->keys), "the jwt plugin's JWKS");
    kept = json_array();
    json_array_foreach(keys, i, k)
    {
        const char *skip;

        if (s->nkeys == JWKS_MAX_KEYS || !read_jwk(k, &s->keys[s->nkeys], &skip)) {
            (*skipped)++;
            continue;
        }
        s->nkeys++;
        json_array_append(kept, k);
    }
    /* Same keys, same text: sorted members, so member order and white
     * space in what the IdP sends make no change. */
    s->fingerprint = json_dumps(kept, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(kept);
    json_decref(doc);
    if (s->nkeys == 0 || s->fingerprint == NULL) {
        /* An empty set would reject every token: more likely a broken IdP
         * than a decision, so the last good set keeps serving. */
        *why = "the JWKS holds no usable signing key";
        set_free(s);
        return NULL;
    }
    return s;
}

struct jwks_set *sl__jwks_set_ref(struct jwks_set *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void sl__jwks_set_unref(struct jwks_set *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        set_free(s);
}

char *sl__jwks_discovered_uri(const char *body, size_t len, const char *issuer, const char **why)
{
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *iss = json_string_value(json_object_get(doc, "issuer"));
    const char *uri = json_string_value(json_object_get(doc, "jwks_uri"));
    char *out = NULL;

    if (!json_is_object(doc))
        *why = "the discovery document is not a JSON object";
    else if (iss == NULL || strcmp(iss, issuer) != 0)
        *why = "the discovery document names another issuer";
    else if (uri == NULL || (strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0))
        *why = "the discovery document has no http(s) jwks_uri";
    else
        out = sl_strdup(uri, "the jwt plugin's discovery");
    json_decref(doc);
    return out;
}
