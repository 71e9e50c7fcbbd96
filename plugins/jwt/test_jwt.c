/*
 * The pure parts of the jwt plugin: base64url (plugins/jwt/jose.c), the
 * token's parts and JOSE header, the claim checks and authorization
 * (claims.c), the verified-token cache (cache.c), and JWKS and discovery
 * documents (jwks.c) with keys made here by OpenSSL.
 */
#include "cache.h"
#include "claims.h"
#include "jose.h"
#include "jwks.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

#define ALL_ALGS ((1u << JWT_NALGS) - 1)

static ssize_t decode(const char *s, unsigned char *out)
{
    return sl__jwt_b64url_decode(s, strlen(s), out);
}

static void test_base64url_decodes_the_url_alphabet_without_padding(void)
{
    unsigned char out[16];

    CHECK_EQ_INT(decode("aGk", out), 2);
    CHECK(memcmp(out, "hi", 2) == 0);
    CHECK_EQ_INT(decode("-_8", out), 2);
    CHECK_EQ_INT(out[0], 0xfb);
    CHECK_EQ_INT(out[1], 0xff);
    CHECK_EQ_INT(decode("", out), 0);
}

static void test_base64url_refuses_padding_other_alphabets_and_loose_bits(void)
{
    unsigned char out[16];

    CHECK_EQ_INT(decode("aGk=", out), -1);
    CHECK_EQ_INT(decode("+/8", out), -1);
    CHECK_EQ_INT(decode("aGkha", out), -1); /* a lone last character */
    CHECK_EQ_INT(decode("aGl", out), -1);   /* "hi" with a stray low bit */
    CHECK_EQ_INT(decode("aG k", out), -1);
}

/* A token of header h and payload p (JSON), with a signature "c2ln". */
static const char *token_of(const char *h, const char *p, char *buf, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *parts[2] = {h, p};
    size_t o = 0;

    for (int k = 0; k < 2; k++) {
        const unsigned char *s = (const unsigned char *)parts[k];
        size_t len = strlen(parts[k]);

        for (size_t i = 0; i < len; i += 3) {
            unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) |
                         (i + 2 < len ? s[i + 2] : 0);

            buf[o++] = tbl[v >> 18];
            buf[o++] = tbl[(v >> 12) & 63];
            if (i + 1 < len)
                buf[o++] = tbl[(v >> 6) & 63];
            if (i + 2 < len)
                buf[o++] = tbl[v & 63];
        }
        buf[o++] = '.';
    }
    snprintf(buf + o, n - o, "c2ln");
    return buf;
}

static const char *decode_header(const char *h, unsigned algs, struct jwt_token *t)
{
    /* Static: t points into the token text, and tests decode its payload
     * after this returns. */
    static char buf[512];
    const char *tok = token_of(h, "{}", buf, sizeof(buf));

    return sl__jwt_decode(tok, strlen(tok), algs, t);
}

static void test_a_token_is_three_nonempty_parts(void)
{
    struct jwt_token t;

    CHECK(sl__jwt_decode("a.b", 3, ALL_ALGS, &t) != NULL);
    CHECK(sl__jwt_decode("a.b.c.d", 7, ALL_ALGS, &t) != NULL);
    CHECK(sl__jwt_decode("..c2ln", 6, ALL_ALGS, &t) != NULL);
    CHECK(sl__jwt_decode("e30.e30.", 8, ALL_ALGS, &t) != NULL);
}

static void test_a_good_header_gives_its_alg_and_kid(void)
{
    struct jwt_token t;

    CHECK(decode_header("{\"alg\":\"ES256\",\"kid\":\"k1\"}", ALL_ALGS, &t) == NULL);
    CHECK_EQ_INT(t.alg, JWT_ES256);
    CHECK_STREQ(t.kid, "k1");
    CHECK_EQ_INT(t.sig_len, 3);
    CHECK(sl__jwt_decode_payload(&t) == NULL);
    CHECK(json_is_object(t.payload));
    sl__jwt_token_clear(&t);
}

static void test_alg_none_in_any_case_is_refused(void)
{
    struct jwt_token t;

    CHECK_CONTAINS(decode_header("{\"alg\":\"none\"}", ALL_ALGS, &t), "none");
    CHECK_CONTAINS(decode_header("{\"alg\":\"None\"}", ALL_ALGS, &t), "none");
    CHECK_CONTAINS(decode_header("{\"alg\":\"NONE\"}", ALL_ALGS, &t), "none");
}

static void test_an_unknown_disallowed_or_missing_alg_is_refused(void)
{
    struct jwt_token t;

    CHECK(decode_header("{\"alg\":\"HS1\"}", ALL_ALGS, &t) != NULL);
    CHECK(decode_header("{\"alg\":\"rs256\"}", ALL_ALGS, &t) != NULL);
    CHECK(decode_header("{\"alg\":\"HS256\"}", 1u << JWT_RS256, &t) != NULL);
    CHECK(decode_header("{\"typ\":\"JWT\"}", ALL_ALGS, &t) != NULL);
    CHECK(decode_header("{\"alg\":256}", ALL_ALGS, &t) != NULL);
}

static void test_crit_a_non_string_kid_and_duplicates_are_refused(void)
{
    struct jwt_token t;

    CHECK(decode_header("{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}", ALL_ALGS, &t) != NULL);
    CHECK(decode_header("{\"alg\":\"RS256\",\"kid\":7}", ALL_ALGS, &t) != NULL);
    CHECK(decode_header("{\"alg\":\"HS256\",\"alg\":\"RS256\"}", ALL_ALGS, &t) != NULL);
    CHECK(decode_header("[\"alg\"]", ALL_ALGS, &t) != NULL);
}

static json_t *json(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);

    CHECK(j != NULL);
    return j;
}

static enum jwt_verdict times(const char *claims, double leeway, bool require_exp)
{
    const struct jwt_time_rules r = {leeway, require_exp};
    json_t *j = json(claims);
    const char *why = NULL;
    double exp;
    enum jwt_verdict v = sl__jwt_check_times(j, &r, 1000, &why, &exp);

    CHECK(v == JWT_VALID ? why == NULL : why != NULL);
    json_decref(j);
    return v;
}

static void test_exp_nbf_and_iat_are_checked_with_leeway(void)
{
    CHECK_EQ_INT(times("{\"exp\":1001}", 0, true), JWT_VALID);
    CHECK_EQ_INT(times("{\"exp\":1000}", 0, true), JWT_EXPIRED);
    CHECK_EQ_INT(times("{\"exp\":990}", 30, true), JWT_VALID);
    CHECK_EQ_INT(times("{\"exp\":970}", 30, true), JWT_EXPIRED);
    CHECK_EQ_INT(times("{\"exp\":2000,\"nbf\":1020}", 30, true), JWT_VALID);
    CHECK_EQ_INT(times("{\"exp\":2000,\"nbf\":1031}", 30, true), JWT_INVALID);
    CHECK_EQ_INT(times("{\"exp\":2000,\"iat\":1031.5}", 30, true), JWT_INVALID);
    CHECK_EQ_INT(times("{\"exp\":\"2000\"}", 30, true), JWT_INVALID);
}

static void test_exp_is_required_unless_configured_otherwise(void)
{
    CHECK_EQ_INT(times("{\"sub\":\"a\"}", 30, true), JWT_INVALID);
    CHECK_EQ_INT(times("{\"sub\":\"a\"}", 30, false), JWT_VALID);
    CHECK_EQ_INT(times("{\"exp\":1}", 30, false), JWT_EXPIRED);
}

static void test_iss_and_aud_must_match_one_of_the_configured(void)
{
    const char *const iss[] = {"https://a/", "https://b/"}, *const aud[] = {"api"};
    json_t *j = json("{\"iss\":\"https://b/\",\"aud\":[\"x\",\"api\"]}");
    json_t *k = json("{\"iss\":\"https://c/\",\"aud\":\"apis\"}");

    CHECK(sl__jwt_check_iss(j, iss, 2));
    CHECK(sl__jwt_check_aud(j, aud, 1));
    CHECK(!sl__jwt_check_iss(k, iss, 2));
    CHECK(!sl__jwt_check_aud(k, aud, 1));
    CHECK(sl__jwt_check_iss(k, NULL, 0));
    json_decref(j);
    json_decref(k);
}

static void test_the_cache_keeps_a_token_until_its_exp_per_config(void)
{
    struct jwt_cache *c = sl__jwt_cache_new();
    json_t *j = json("{\"sub\":\"alice\"}");

    sl__jwt_cache_put(c, 1, 0, "tok", 3, 2000, j);
    CHECK(sl__jwt_cache_get(c, 1, 0, "tok", 3, 1999) == j);
    CHECK(sl__jwt_cache_get(c, 2, 0, "tok", 3, 1999) == NULL);
    CHECK(sl__jwt_cache_get(c, 1, 7, "tok", 3, 1999) == NULL); /* another key set */
    CHECK(sl__jwt_cache_get(c, 1, 0, "tok2", 4, 1999) == NULL);
    CHECK(sl__jwt_cache_get(c, 1, 0, "tok", 3, 2000) == NULL);
    CHECK(sl__jwt_cache_get(c, 1, 0, "tok", 3, 1000) == NULL); /* dropped once past */
    json_decref(j);
    sl__jwt_cache_free(c);
}

static void test_a_full_cache_forgets_the_oldest_token(void)
{
    struct jwt_cache *c = sl__jwt_cache_new();
    json_t *j = json("{}");
    char tok[32];

    for (int i = 0; i < JWT_CACHE_ENTRIES + 10; i++) {
        int n = snprintf(tok, sizeof(tok), "t%d", i);

        sl__jwt_cache_put(c, 1, 0, tok, (size_t)n, 5000, j);
    }
    CHECK(sl__jwt_cache_get(c, 1, 0, "t0", 2, 1000) == NULL);
    CHECK(sl__jwt_cache_get(c, 1, 0, "t9", 2, 1000) == NULL);
    CHECK(sl__jwt_cache_get(c, 1, 0, "t10", 3, 1000) == j);
    snprintf(tok, sizeof(tok), "t%d", JWT_CACHE_ENTRIES + 9);
    CHECK(sl__jwt_cache_get(c, 1, 0, tok, strlen(tok), 1000) == j);
    json_decref(j);
    sl__jwt_cache_free(c);
}

/* Unpadded base64url of n bytes, into out. */
static char *b64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);

        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
    return out;
}

static char *bn_b64(EVP_PKEY *k, const char *name, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;

    EVP_PKEY_get_bn_param(k, name, &bn);
    n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (size_t)n, out);
}

static struct jwks_set *parse(const char *json, size_t *skipped, const char **why)
{
    return sl__jwks_parse(json, strlen(json), skipped, why);
}

static void test_a_jwks_gives_rsa_ec_and_ed25519_keys_with_their_algs(void)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    unsigned char pub[200], x[32];
    size_t plen = 0, xlen = 32, skipped = 9;
    char n[400], e[16], xs[100], ys[100], es[100], json[2000];
    const char *why = NULL;
    struct jwks_set *s;

    EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &plen);
    EVP_PKEY_get_raw_public_key(ed, x, &xlen);
    snprintf(json, sizeof(json),
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"alg\":\"EdDSA\"},"
             "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"%s\",\"e\":\"%s\"},"
             "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"RS256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
             bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N, n), bn_b64(rsa, OSSL_PKEY_PARAM_RSA_E, e),
             b64url(pub + 1, 32, xs), b64url(pub + 33, 32, ys), b64url(x, 32, es), n, e, xs, ys);
    s = parse(json, &skipped, &why);
    CHECK(s != NULL);
    CHECK_EQ_INT(skipped, 3); /* enc, oct, an alg that does not fit */
    if (s != NULL) {
        CHECK_EQ_INT(s->nkeys, 3);
        CHECK_STREQ(s->keys[0].kid, "r");
        CHECK(EVP_PKEY_eq(s->keys[0].pkey, rsa) == 1);
        CHECK(s->keys[0].algs & (1u << JWT_RS256) && s->keys[0].algs & (1u << JWT_PS512));
        CHECK(!(s->keys[0].algs & (1u << JWT_HS256)));
        CHECK(EVP_PKEY_eq(s->keys[1].pkey, ec) == 1);
        CHECK_EQ_INT(s->keys[1].algs, 1u << JWT_ES256);
        CHECK(EVP_PKEY_eq(s->keys[2].pkey, ed) == 1);
        CHECK_EQ_INT(s->keys[2].algs, 1u << JWT_EDDSA);
        CHECK(s->keys[2].kid == NULL);
    }
    sl__jwks_set_unref(s);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

static void test_a_jwks_without_usable_keys_or_not_a_jwks_is_refused(void)
{
    const char *why = NULL;
    size_t skipped;

    CHECK(parse("{\"keys\":[]}", &skipped, &why) == NULL);
    CHECK_CONTAINS(why, "no usable");
    CHECK(parse("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", &skipped, &why) == NULL);
    CHECK(parse("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
                &skipped, &why) == NULL);
    CHECK(parse("[]", &skipped, &why) == NULL);
    CHECK_CONTAINS(why, "not a JWKS");
    CHECK(parse("not json", &skipped, &why) == NULL);
}

static void test_discovery_gives_the_jwks_uri_of_the_named_issuer_only(void)
{
    const char *doc = "{\"issuer\":\"https://idp/\",\"jwks_uri\":\"https://idp/jwks\"}";
    const char *why = NULL;
    char *uri = sl__jwks_discovered_uri(doc, strlen(doc), "https://idp/", &why);

    CHECK_STREQ(uri, "https://idp/jwks");
    free(uri);
    CHECK(sl__jwks_discovered_uri(doc, strlen(doc), "https://other/", &why) == NULL);
    CHECK_CONTAINS(why, "another issuer");
    doc = "{\"issuer\":\"https://idp/\",\"jwks_uri\":\"file:///etc/passwd\"}";
    CHECK(sl__jwks_discovered_uri(doc, strlen(doc), "https://idp/", &why) == NULL);
}

int main(void)
{
    RUN(test_base64url_decodes_the_url_alphabet_without_padding);
    RUN(test_base64url_refuses_padding_other_alphabets_and_loose_bits);
    RUN(test_a_token_is_three_nonempty_parts);
    RUN(test_a_good_header_gives_its_alg_and_kid);
    RUN(test_alg_none_in_any_case_is_refused);
    RUN(test_an_unknown_disallowed_or_missing_alg_is_refused);
    RUN(test_crit_a_non_string_kid_and_duplicates_are_refused);
    RUN(test_exp_nbf_and_iat_are_checked_with_leeway);
    RUN(test_exp_is_required_unless_configured_otherwise);
    RUN(test_iss_and_aud_must_match_one_of_the_configured);
    RUN(test_the_cache_keeps_a_token_until_its_exp_per_config);
    RUN(test_a_full_cache_forgets_the_oldest_token);
    RUN(test_a_jwks_gives_rsa_ec_and_ed25519_keys_with_their_algs);
    RUN(test_a_jwks_without_usable_keys_or_not_a_jwks_is_refused);
    RUN(test_discovery_gives_the_jwks_uri_of_the_named_issuer_only);
    return check_done();
}
