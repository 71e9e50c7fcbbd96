/*
 * jwt plugin: the per-worker verified-token cache.
 *
 * Entries live in a ring (insertion order, so the oldest is the next to be
 * overwritten) and are found through a chained hash on the token's SHA-256.
 * The full digest, the serial of the config that verified the token and the
 * generation of the JWKS key set it was verified with are compared: a token
 * verified for one route's keys means nothing for another's, nor for a
 * reloaded config's, nor once the IdP's keys changed.
 */
#include "cache.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sluice/alloc.h"

#define NBUCKETS 2048 /* a power of two, twice the entries */
#define NONE     -1

struct entry {
    unsigned char digest[32];
    uint64_t serial;
    uint64_t gen;
    double until;
    json_t *claims; /* NULL: the slot is free */
    int next;       /* the next entry in the bucket's chain, or NONE */
};

struct jwt_cache {
    struct entry e[JWT_CACHE_ENTRIES];
    int buckets[NBUCKETS];
    size_t oldest; /* the ring slot the next put takes */
};

struct jwt_cache *sl__jwt_cache_new(void)
{
    struct jwt_cache *c = sl_calloc(1, sizeof(*c), "the jwt plugin's token cache");

    for (size_t i = 0; i < NBUCKETS; i++)
        c->buckets[i] = NONE;
    return c;
}

void sl__jwt_cache_free(struct jwt_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < JWT_CACHE_ENTRIES; i++)
        json_decref(c->e[i].claims);
    free(c);
}

static EVP_MD *sha256;
static uv_once_t sha256_once = UV_ONCE_INIT;

/* EVP_sha256() makes OpenSSL 3 look the implementation up in its provider
 * tables (under a lock) on every digest: fetched once, it does not. */
static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void digest(const char *token, size_t len, unsigned char out[32])
{
    unsigned int n = 32;

    uv_once(&sha256_once, fetch_sha256);
    if (sha256 == NULL || EVP_Digest(token, len, out, &n, sha256, NULL) != 1)
        memset(out, 0, 32); /* cannot happen; an all-zero digest matches nothing kept */
}

static size_t bucket_of(const unsigned char d[32])
{
    uint32_t h;

    memcpy(&h, d, sizeof(h));
    return h & (NBUCKETS - 1);
}

/* Take slot i out of its chain and release it. */
static void drop(struct jwt_cache *c, int i)
{
    int *p = &c->buckets[bucket_of(c->e[i].digest)];

    while (*p != NONE && *p != i)
        p = &c->e[*p].next;
    if (*p == i)
        *p = c->e[i].next;
    json_decref(c->e[i].claims);
    c->e[i].claims = NULL;
}

const json_t *sl__jwt_cache_get(struct jwt_cache *c, uint64_t serial, uint64_t gen,
                                const char *token, size_t len, double now)
{
    unsigned char d[32];

    digest(token, len, d);
    for (int i = c->buckets[bucket_of(d)]; i != NONE; i = c->e[i].next) {
        struct entry *e = &c->e[i];

        if (e->serial != serial || e->gen != gen || memcmp(e->digest, d, 32) != 0)
            continue;
        if (!(now < e->until)) {
            drop(c, i);
            return NULL;
        }
        return e->claims;
    }
    return NULL;
}

void sl__jwt_cache_put(struct jwt_cache *c, uint64_t serial, uint64_t gen, const char *token,
                       size_t len, double until, json_t *claims)
{
    int i = (int)c->oldest;
    struct entry *e = &c->e[i];
    size_t b;

    if (e->claims != NULL)
        drop(c, i);
    digest(token, len, e->digest);
    e->serial = serial;
    e->gen = gen;
    e->until = until;
    e->claims = json_incref(claims);
    b = bucket_of(e->digest);
    e->next = c->buckets[b];
    c->buckets[b] = i;
    c->oldest = (c->oldest + 1) % JWT_CACHE_ENTRIES;
}
