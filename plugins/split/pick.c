/*
 * split plugin: where on the weights' line a request falls (pick.h).
 */
#include "pick.h"

#include <string.h>

#include "sluice/str.h"

/* 64-bit FNV-1a. Changing either moves every sticky user: never do. */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

/* MurmurHash3's finaliser: every input bit reaches every output bit, so
 * keys that differ in one character land anywhere on the line. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

uint64_t sl__split_hash(const char *salt, const char *p, size_t len)
{
    /* Byte by byte, so the same on every machine; the salt's NUL ends it,
     * so that "ab" + "c" and "a" + "bc" differ. */
    uint64_t h = fnv1a(FNV_OFFSET, (const unsigned char *)salt, strlen(salt) + 1);

    return mix(fnv1a(h, (const unsigned char *)p, len));
}

uint64_t sl__split_random(void)
{
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;

    if (!seeded) {
        state = sl_hash_seed();
        seeded = 1;
    }
    /* SplitMix64 as Java's SplittableRandom has it: a counter stepped by
     * the golden ratio, through the finaliser above. */
    state += 0x9e3779b97f4a7c15ull;
    return mix(state);
}

size_t sl__split_pick(const struct split_target *to, size_t n, uint64_t total, uint64_t h)
{
    /* floor(h * total / 2^64): in [0, total), the same fraction of the line
     * whatever the total is. */
    uint64_t x = (uint64_t)(((unsigned __int128)h * total) >> 64);
    size_t i = 0;

    while (i + 1 < n && x >= to[i].end)
        i++;
    return i;
}
