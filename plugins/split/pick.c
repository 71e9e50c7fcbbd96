/*
 * split plugin: where on the weights' line a request falls (pick.h).
 */
#include "pick.h"

#include "sluice/str.h"

/* Changing this moves every sticky user: never do. */
#define SPLIT_SEED 0x73706c6974u /* "split" */

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

uint64_t sl__split_hash(const char *p, size_t len)
{
    return mix(sl_hash(SPLIT_SEED, p, len));
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
