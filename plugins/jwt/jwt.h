/*
 * jwt plugin: what its phases, its config reader, its verifier and its cache
 * share.
 *
 * A token is checked in this order: found (token_from), small enough, three
 * base64url parts, a JOSE header we accept (jose.c), a signature that
 * verifies with one configured key or one key of the route's JWKS
 * (verify.c; JWKS keys are read by jwks.c, fetched and shared by
 * jwks_source.c), then its claims: times, issuer and audience (claims.c),
 * and last what the route asks of it (scopes, claims, per-method rules:
 * sluice/bearer.h, shared with oauth_introspection). Verified tokens are kept per
 * worker (cache.c) so a repeated token costs no signature check.
 */
#ifndef SL_PLUGIN_JWT_H
#define SL_PLUGIN_JWT_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/bearer.h"
#include "sluice/plugin.h"

#include "claims.h"
#include "jose.h"

/* One key, configured or from a JWKS. The key pins the algorithm: a token
 * is verified with a key only when the token's alg is one the key allows
 * (a configured key allows exactly its alg:; a JWKS key its "alg" member,
 * or without one the algs its type and curve can check). */
struct jwt_key {
    enum jwt_alg alg;            /* the first (or only) alg it allows */
    unsigned algs;               /* every alg it allows, bit (1u << enum jwt_alg) */
    const char *kid;             /* or NULL */
    EVP_PKEY *pkey;              /* a file key (freed by conf_free), or NULL */
    const unsigned char *secret; /* an HMAC secret (in the arena), or NULL */
    size_t secret_len;
};

struct jwks_source;

struct jwt_conf {
    uint64_t serial; /* unique per conf ever parsed: part of the cache key */
    struct jwt_key *keys;
    size_t nkeys;
    /* Keys from a JWKS (jwks_uri:, or issuer: with discovery: true), shared
     * by every config and worker that names the same document; or NULL. */
    struct jwks_source *jwks;
    const char *jwks_url; /* the JWKS, or with discovery the discovery document */
    bool discovery;
    const char *ca_file;
    uint64_t refresh_ms;
    bool refresh_set;
    unsigned algs; /* allowed algorithms, bit (1u << enum jwt_alg) */
    struct jwt_time_rules times;
    const char *const *issuers; /* NULL-terminated, or NULL: any */
    size_t nissuers;
    const char *const *audiences;
    size_t naudiences;
    size_t max_token_size;
    /* Scopes, claims, rules, forward_claims, token_from, realm. */
    const struct sl_bearer *bearer;
};

void *sl__jwt_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);
void sl__jwt_conf_free(void *conf);

extern const struct sl_plugin sl_plugin_jwt;
extern const struct sl_counter sl__jwt_decisions;

#endif
