/*
 * split plugin: the choice itself, pure and unit-tested (test_split.c).
 *
 * The weights of `to` lay ranges side by side on [0, total): the first
 * target owns [0, w0), the next [w0, w0 + w1), and so on. A request is a
 * point on that line: a hash of its key (sticky) or a random number. Since
 * the point is the hash's place as a fraction of the whole line, a change of
 * weights moves only the points between a range's old and new boundary: with
 * 95/5 becoming 90/10, every key that was in the 5 stays there.
 */
#ifndef SL_PLUGIN_SPLIT_PICK_H
#define SL_PLUGIN_SPLIT_PICK_H

#include <stddef.h>
#include <stdint.h>

/* Most a route's weights may add up to. */
#define SPLIT_MAX_TOTAL 1000000u

struct split_target {
    unsigned upstream; /* index for sl_req_set_upstream() */
    const char *name;  /* the upstream's name, for the log and the metric */
    uint32_t weight;
    uint64_t end; /* the sum of this weight and those before it */
};

/*
 * The hash of a key's value (len bytes at p) salted with salt (the route's
 * name, NUL-terminated): 64-bit FNV-1a over the salt, its NUL and the
 * value, through MurmurHash3's finaliser. Fixed and byte-wise: the same
 * in every worker, process, config generation, version and machine (any
 * byte order), so that a user keeps their variant across reloads and
 * instances. The salt keeps routes apart: the users in one route's first
 * 5% are not every route's first 5%.
 */
uint64_t sl__split_hash(const char *salt, const char *p, size_t len);

/* A uniform random 64-bit number from this thread's own generator (seeded
 * on first use; no lock). */
uint64_t sl__split_random(void);

/*
 * The index in to[] of the target whose range holds the point h (any 64-bit
 * value, read as the fraction h / 2^64 of total). total is the last end and
 * is more than 0. Never a target of weight 0.
 */
size_t sl__split_pick(const struct split_target *to, size_t n, uint64_t total, uint64_t h);

#endif
