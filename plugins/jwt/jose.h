/*
 * jwt plugin: the JOSE layer. base64url without padding, the three parts of
 * a compact JWS, and the header checks that come before any key is touched.
 * Pure: no I/O, no clock; unit-tested by test_jose.c.
 */
#ifndef SL_PLUGIN_JWT_JOSE_H
#define SL_PLUGIN_JWT_JOSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum jwt_alg {
    JWT_HS256,
    JWT_HS384,
    JWT_HS512,
    JWT_RS256,
    JWT_RS384,
    JWT_RS512,
    JWT_PS256,
    JWT_PS384,
    JWT_PS512,
    JWT_ES256,
    JWT_ES384,
    JWT_ES512,
    JWT_EDDSA,
    JWT_NALGS
};

/* The longest signature we decode: an 8192-bit RSA key's. */
#define JWT_MAX_SIG 1024

/* The alg called name (as JOSE spells it: "RS256", "EdDSA"), or -1. */
int sl__jwt_alg_parse(const char *name);

/* The JOSE name of alg. */
const char *sl__jwt_alg_name(enum jwt_alg alg);

/*
 * Decode len bytes of unpadded base64url from in into out, which has room
 * for len * 3 / 4 bytes. Strict: only the URL alphabet, no '=', no length
 * that leaves a lone character, and the unused bits of the last character
 * zero (so each byte string has exactly one encoding). Returns the decoded
 * length, or -1.
 */
ssize_t sl__jwt_b64url_decode(const char *in, size_t len, unsigned char *out);

/* A compact JWS taken apart. The strings point into the token. */
struct jwt_token {
    const char *input; /* "header.payload", what the signature covers */
    size_t input_len;
    const char *payload_b64;
    size_t payload_b64_len;
    unsigned char sig[JWT_MAX_SIG];
    size_t sig_len;
    json_t *header; /* owned; released by sl__jwt_token_clear() */
    json_t *payload;
    enum jwt_alg alg;
    const char *kid; /* borrowed from header, or NULL */
};

/*
 * Split token (len bytes) into its parts, decode the header and the
 * signature and check the header: a JSON object whose alg is known, is not
 * "none" in any spelling and has its bit (1u << alg) in algs, no crit (we
 * understand no extension), and a kid, if any, that is a string. jku, x5u,
 * jwk and x5c are never looked at: only configured keys verify. Returns
 * NULL and fills t, or a message saying what is wrong (t then holds nothing
 * to release). The payload is not decoded yet: see sl__jwt_decode_payload().
 */
const char *sl__jwt_decode(const char *token, size_t len, unsigned algs, struct jwt_token *t);

/* Decode the payload of t (after its signature verified): NULL, or why it
 * is not a JSON object. */
const char *sl__jwt_decode_payload(struct jwt_token *t);

/* Release what t holds. */
void sl__jwt_token_clear(struct jwt_token *t);

#endif
