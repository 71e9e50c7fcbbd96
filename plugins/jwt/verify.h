/*
 * jwt plugin: signatures, with OpenSSL 3 only. Which key may verify which
 * token, and the check itself for every JOSE algorithm we accept.
 */
#ifndef SL_PLUGIN_JWT_VERIFY_H
#define SL_PLUGIN_JWT_VERIFY_H

#include <openssl/evp.h>
#include <stdbool.h>

#include "jwt.h"

/*
 * Whether pkey (a public key read from a file) suits alg: an RSA key of at
 * least 2048 bits for RS and PS, an EC key on the curve the alg names for
 * ES (P-256, P-384, P-521), an Ed25519 key for EdDSA. HS algs take no file.
 * Returns NULL, or why not (for a config error).
 */
const char *sl__jwt_key_fits(enum jwt_alg alg, EVP_PKEY *pkey);

/*
 * Verify t's signature with one of keys (n of them: the configured ones, or
 * a JWKS key set's): the key whose kid the token names, or else each key
 * that allows the token's alg in turn. A key is used only when it allows
 * the token's alg. Returns NULL when one verifies, or why none does; then
 * *no_key says whether no key was even tried (the kid is unknown, or no key
 * allows the alg), which is what makes a JWKS worth fetching again. Runs on
 * any thread: keys are only read.
 */
const char *sl__jwt_verify(const struct jwt_key *keys, size_t n, const struct jwt_token *t,
                           bool *no_key);

#endif
