/*
 * jwt plugin: the per-worker verified-token cache.
 *
 * Entries live in a ring (insertion order, so the oldest is the next to be
 * overwritten) and are found through a chained hash of the token
 * (sl_hash(), seeded per cache). The
 * whole token, the serial of the config that verified the token and the
 * generation of the JWKS key set it was verified with are compared: a token
 * verified for one route's keys means nothing for another's, nor for a
 * reloaded config's, nor once the IdP's keys changed.
 */
#include "cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/str.h"

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
    uint64_t seed; /* sl_hash()'s */
};

struct jwt_cache *sl__jwt_cache_new(void)
{
    struct jwt_cache *c = sl_calloc(1, sizeof(*c), "the jwt plugin's token cache");

    for (size_t i = 0; i < NBUCKETS; i++)
        c->buckets[i] = NONE;
    c->seed = sl_hash_seed();
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

    h = sl_hash(c->seed, token, len);
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
    e->hash = sl_hash(c->seed, token, len);
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
