/*
 * jwt plugin: the per-worker verified-token cache.
 *
 * Entries live in a ring (insertion order, so the oldest is the next to be
 * overwritten) and are found through a chained hash of the token. The
 * whole token, the serial of the config that verified the token and the
 * generation of the JWKS key set it was verified with are compared: a token
 * verified for one route's keys means nothing for another's, nor for a
 * reloaded config's, nor once the IdP's keys changed.
 */
#include "cache.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sluice/alloc.h"

#define NBUCKETS 2048 /* a power of two, twice the entries */
#define NONE     -1

struct entry {
    uint64_t hash;
    char *token; /* a copy, compared whole (heap) */
    size_t len;
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
    for (size_t i = 0; i < JWT_CACHE_ENTRIES; i++) {
        json_decref(c->e[i].claims);
        free(c->e[i].token);
    }
    free(c);
}

static uint64_t seed;
static uv_once_t seed_once = UV_ONCE_INIT;

/* A per-process random seed, so that which tokens share a bucket cannot be
 * chosen from outside. */
static void init_seed(void)
{
    if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
        seed = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15ull;
}

/*
 * Which bucket a token goes in: a fast seeded hash of its bytes (8 at a
 * time, multiply-xorshift mixed). The entry keeps the token itself and the
 * lookup compares it whole, so the hash only spreads entries; a SHA-256
 * here cost some 12,000 instructions per request (callgrind, a 700-byte
 * token), more than the rest of the plugin together.
 */
static uint64_t hash(const char *p, size_t len)
{
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull), w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static size_t bucket_of(uint64_t h)
{
    return (size_t)(h & (NBUCKETS - 1));
}

/* Take slot i out of its chain and release it. */
static void drop(struct jwt_cache *c, int i)
{
    int *p = &c->buckets[bucket_of(c->e[i].hash)];

    while (*p != NONE && *p != i)
        p = &c->e[*p].next;
    if (*p == i)
        *p = c->e[i].next;
    json_decref(c->e[i].claims);
    c->e[i].claims = NULL;
    free(c->e[i].token);
    c->e[i].token = NULL;
}

const json_t *sl__jwt_cache_get(struct jwt_cache *c, uint64_t serial, uint64_t gen,
                                const char *token, size_t len, double now)
{
    uint64_t h;

    uv_once(&seed_once, init_seed);
    h = hash(token, len);
    for (int i = c->buckets[bucket_of(h)]; i != NONE; i = c->e[i].next) {
        struct entry *e = &c->e[i];

        if (e->hash != h || e->len != len || e->serial != serial || e->gen != gen ||
            memcmp(e->token, token, len) != 0)
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
    uv_once(&seed_once, init_seed);
    e->hash = hash(token, len);
    e->token = sl_malloc(len ? len : 1, "the jwt plugin's token cache");
    memcpy(e->token, token, len);
    e->len = len;
    e->serial = serial;
    e->gen = gen;
    e->until = until;
    e->claims = json_incref(claims);
    b = bucket_of(e->hash);
    e->next = c->buckets[b];
    c->buckets[b] = i;
    c->oldest = (c->oldest + 1) % JWT_CACHE_ENTRIES;
}
