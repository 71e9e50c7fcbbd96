/*
 * jwt plugin: JWKS documents (RFC 7517) and OIDC discovery documents, read
 * into key sets. Pure: no I/O, no clock, no lock; unit-tested by
 * test_jwt.c. Fetching and sharing them is jwks_source.c's job.
 */
#ifndef SL_PLUGIN_JWT_JWKS_H
#define SL_PLUGIN_JWT_JWKS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

/* The most keys a set keeps: an IdP publishes a handful. */
#define JWKS_MAX_KEYS 64

/*
 * An immutable key set, refcounted: a worker verifying with it holds a
 * reference while another thread swaps a newer set in, and the last
 * reference frees it (and its EVP_PKEYs) on whichever thread drops it.
 */
struct jwks_set {
    atomic_uint refs;
    uint64_t gen; /* set by the source when it takes the set in */
    size_t nkeys;
    struct jwt_key *keys; /* kids and pkeys owned by the set */
    char *fingerprint;    /* what the kept keys were made from, to tell a change */
};

/*
 * Read a JWKS document (len bytes of JSON). Keys of kty RSA (n, e; at
 * least 2048 bits), EC (crv P-256, P-384 or P-521; x, y) and OKP (crv
 * Ed25519; x) are kept; "oct" (an HMAC secret never comes from a URL),
 * "use": "enc", an unknown kty or curve, and an "alg" that does not fit the
 * key are skipped, and counted in *skipped. A key without "alg" allows
 * every alg its type can check: RS* and PS* for RSA, the curve's ES alg,
 * EdDSA. Returns a set with one reference, or NULL with *why set when the
 * document is not a JWKS or holds no usable key.
 */
struct jwks_set *sl__jwks_parse(const char *body, size_t len, size_t *skipped, const char **why);

struct jwks_set *sl__jwks_set_ref(struct jwks_set *s);

/* Drop a reference; NULL is ignored. */
void sl__jwks_set_unref(struct jwks_set *s);

/*
 * Read an OIDC discovery document: its "issuer" must be issuer (OpenID
 * Connect Discovery 4.3: the IdP vouches for the name it is asked for) and
 * its "jwks_uri" an http:// or https:// URL. Returns that URL (owned: the
 * caller frees it), or NULL with *why set.
 */
char *sl__jwks_discovered_uri(const char *body, size_t len, const char *issuer, const char **why);

#endif
