/*
 * jwt plugin: the verified-token cache, one per worker (no lock). An entry
 * is a token that passed every check under one config (its serial) and one
 * JWKS key set (its generation, 0 without one: a key the IdP removed must
 * stop verifying at once, cached or not), with
 * its decoded claims, kept until the token's exp and never past it, so a
 * repeated token costs a hash and a compare instead of a signature check.
 * Bounded: when full, the oldest entry goes. Pure apart from the seed of
 * its hash (OpenSSL's RAND_bytes); the caller
 * passes the clock; unit-tested by test_cache.c.
 */
#ifndef SL_PLUGIN_JWT_CACHE_H
#define SL_PLUGIN_JWT_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_CACHE_ENTRIES 1024

/* How long a token without exp (require_exp: false) is kept. */
#define JWT_CACHE_MAX_S 300

struct jwt_cache;

struct jwt_cache *sl__jwt_cache_new(void);
void sl__jwt_cache_free(struct jwt_cache *c);

/* The claims of token (len bytes) verified under serial and key set gen,
 * borrowed until the next sl__jwt_cache_put() or free, or NULL when unknown
 * or past until. */
const json_t *sl__jwt_cache_get(struct jwt_cache *c, uint64_t serial, uint64_t gen,
                                const char *token, size_t len, double now);

/* Keep claims (a reference is taken) for token under serial and gen until
 * the Unix time until. */
void sl__jwt_cache_put(struct jwt_cache *c, uint64_t serial, uint64_t gen, const char *token,
                       size_t len, double until, json_t *claims);

#endif
