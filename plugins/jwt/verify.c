/*
 * jwt plugin: signature checks with OpenSSL 3 (EVP_DigestVerify, HMAC).
 */
#include "verify.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <string.h>

/* The digest of alg; NULL for EdDSA (Ed25519 hashes internally). */
static const EVP_MD *digest_of(enum jwt_alg alg)
{
    switch (alg) {
    case JWT_HS256:
    case JWT_RS256:
    case JWT_PS256:
    case JWT_ES256:
        return EVP_sha256();
    case JWT_HS384:
    case JWT_RS384:
    case JWT_PS384:
    case JWT_ES384:
        return EVP_sha384();
    case JWT_HS512:
    case JWT_RS512:
    case JWT_PS512:
    case JWT_ES512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

/* The curve an ES alg names, as OpenSSL calls it, and its coordinate size. */
static const char *curve_of(enum jwt_alg alg, size_t *size)
{
    switch (alg) {
    case JWT_ES256:
        *size = 32;
        return "prime256v1";
    case JWT_ES384:
        *size = 48;
        return "secp384r1";
    case JWT_ES512:
        *size = 66;
        return "secp521r1";
    default:
        *size = 0;
        return NULL;
    }
}

static bool is_hmac(enum jwt_alg a)
{
    return a <= JWT_HS512;
}

static bool is_rsa(enum jwt_alg a)
{
    return a >= JWT_RS256 && a <= JWT_PS512;
}

const char *sl__jwt_key_fits(enum jwt_alg alg, EVP_PKEY *pkey)
{
    char group[64];
    size_t size;
    const char *curve = curve_of(alg, &size);

    if (is_hmac(alg))
        return "an HS alg takes a secret, not a key file";
    if (is_rsa(alg)) {
        /* An RSA-PSS key is restricted to PSS: it cannot check RS*. */
        if (!EVP_PKEY_is_a(pkey, "RSA") && !(alg >= JWT_PS256 && EVP_PKEY_is_a(pkey, "RSA-PSS")))
            return "the alg needs an RSA key";
        if (EVP_PKEY_get_bits(pkey) < 2048)
            return "an RSA key must have at least 2048 bits";
        return NULL;
    }
    if (alg == JWT_EDDSA)
        return EVP_PKEY_is_a(pkey, "ED25519") ? NULL : "EdDSA needs an Ed25519 key";
    if (!EVP_PKEY_is_a(pkey, "EC"))
        return "the alg needs an EC key";
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, curve) != 0)
        return alg == JWT_ES256   ? "ES256 needs a P-256 key"
               : alg == JWT_ES384 ? "ES384 needs a P-384 key"
                                  : "ES512 needs a P-521 key";
    return NULL;
}

/* JOSE sends an ECDSA signature as R and S, each of the curve's size, side
 * by side; OpenSSL wants DER. Returns the DER length in der, or -1. */
static int ecdsa_der(const unsigned char *sig, size_t len, size_t size, unsigned char **der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)size, NULL), *s = BN_bin2bn(sig + size, (int)size, NULL);
    int n = -1;

    if (len == 2 * size && es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them now */
        n = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n;
}

static bool verify_hmac(const struct jwt_key *k, const struct jwt_token *t)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (HMAC(digest_of(k->alg), k->secret, (int)k->secret_len, (const unsigned char *)t->input,
             t->input_len, mac, &len) == NULL)
        return false;
    return len == t->sig_len && CRYPTO_memcmp(mac, t->sig, len) == 0;
}

static bool verify_pkey(const struct jwt_key *k, const struct jwt_token *t)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const unsigned char *sig = t->sig;
    unsigned char *der = NULL;
    size_t sig_len = t->sig_len, size;
    bool ok = false;

    if (md == NULL)
        return false;
    if (curve_of(t->alg, &size) != NULL) {
        int n = ecdsa_der(t->sig, t->sig_len, size, &der);

        if (n < 0)
            goto done;
        sig = der;
        sig_len = (size_t)n;
    }
    if (EVP_DigestVerifyInit(md, &pctx, digest_of(t->alg), NULL, k->pkey) != 1)
        goto done;
    /* PS*: PSS with MGF1 of the same hash and a salt as long as the hash
     * (RFC 7518 3.5). */
    if (t->alg >= JWT_PS256 && t->alg <= JWT_PS512 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto done;
    ok = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)t->input, t->input_len) == 1;
done:
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return ok;
}

static bool verify_with(const struct jwt_key *k, const struct jwt_token *t)
{
    /* The key pins the alg: whatever the token's bytes, an HS256 token is
     * never checked against an RSA or EC key, nor RS256 against a secret. */
    if (!(k->algs & (1u << t->alg)))
        return false;
    return is_hmac(t->alg) ? k->secret != NULL && verify_hmac(k, t)
                           : k->pkey != NULL && verify_pkey(k, t);
}

const char *sl__jwt_verify(const struct jwt_key *keys, size_t n, const struct jwt_token *t,
                           bool *no_key)
{
    bool tried = false;

    *no_key = false;
    for (size_t i = 0; i < n; i++) {
        const struct jwt_key *k = &keys[i];
        bool allows = (k->algs & (1u << t->alg)) != 0;

        if (t->kid != NULL ? k->kid == NULL || strcmp(k->kid, t->kid) != 0 : !allows)
            continue;
        if (t->kid != NULL && !allows)
            return "the token's alg is not its key's";
        tried = true;
        if (verify_with(k, t))
            return NULL;
        if (t->kid != NULL)
            break;
    }
    if (!tried) {
        *no_key = true;
        return t->kid != NULL ? "the token's kid is unknown" : "no key for the token's alg";
    }
    /* OpenSSL keeps failures on the thread's error queue: leave it empty. */
    ERR_clear_error();
    return "the token's signature does not verify";
}
