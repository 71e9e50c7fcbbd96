/*
 * Balancers.
 */
#include "upstream/balancer.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

uint64_t sl__lb_hash_bytes(const void *p, size_t len)
{
    /* FNV-1a, then a 64-bit finaliser (splitmix64) so that nearby keys
     * spread over the whole table. */
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

/* xorshift64*: per-worker randomness for p2c and tie-breaking. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* -- round robin ------------------------------------------------------------ */

/*
 * Smooth weighted round robin: every pick, each usable target's current
 * weight grows by its weight; the largest wins and drops by the total. With
 * weights 5:1:1 the order is a a b a c a a, not a a a a a b c.
 */
static size_t rr_state_size(size_t n)
{
    return n * sizeof(int64_t);
}

static void rr_init(void *state, const struct sl_lb_target *t, size_t n, uint64_t seed)
{
    (void)t;
    (void)seed;
    memset(state, 0, n * sizeof(int64_t));
}

static int rr_pick(const void *shared, void *state, const struct sl_lb_target *t, size_t n,
                   const struct sl_lb_input *in)
{
    int64_t *cur = state, total = 0;
    int best = -1;

    (void)shared;
    (void)in;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].usable)
            continue;
        cur[i] += t[i].weight;
        total += t[i].weight;
        if (best < 0 || cur[i] > cur[best])
            best = (int)i;
    }
    if (best >= 0)
        cur[best] -= total;
    return best;
}

const struct sl_lb_ops sl__lb_round_robin = {
    .name = "round_robin",
    .state_size = rr_state_size,
    .init = rr_init,
    .pick = rr_pick,
};

/* -- least connections ---------------------------------------------------------- */

struct lc_state {
    uint64_t next; /* where the tie-breaking scan starts */
};

static size_t lc_state_size(size_t n)
{
    (void)n;
    return sizeof(struct lc_state);
}

static void lc_init(void *state, const struct sl_lb_target *t, size_t n, uint64_t seed)
{
    struct lc_state *s = state;

    (void)t;
    s->next = n ? seed % n : 0;
}

static int lc_pick(const void *shared, void *state, const struct sl_lb_target *t, size_t n,
                   const struct sl_lb_input *in)
{
    struct lc_state *s = state;
    int best = -1;

    (void)shared;
    (void)in;
    if (n == 0)
        return -1;
    /* Compare inflight/weight without division: a.in * b.w < b.in * a.w.
     * Starting the scan at a moving offset spreads ties. */
    for (size_t k = 0; k < n; k++) {
        size_t i = (s->next + k) % n;

        if (!t[i].usable)
            continue;
        if (best < 0 ||
            (uint64_t)t[i].inflight * t[best].weight < (uint64_t)t[best].inflight * t[i].weight)
            best = (int)i;
    }
    s->next++;
    return best;
}

const struct sl_lb_ops sl__lb_least_conn = {
    .name = "least_conn",
    .state_size = lc_state_size,
    .init = lc_init,
    .pick = lc_pick,
};

/* -- consistent hashing (Maglev) ------------------------------------------------- */

/*
 * Maglev hashing (Eisenbud et al., NSDI 2016): every target walks its own
 * permutation of a prime-sized table, and targets take turns claiming their
 * next free slot, each as many turns per round as its weight. A key maps to
 * table[key % M]. Adding a target to n moves about 1/(n+1) of the keys, and
 * the load stays even.
 *
 * A key whose target cannot be used (unhealthy, already tried) is rehashed,
 * so keys of healthy targets never move when another target fails.
 */
struct maglev {
    uint16_t slot[SL_MAGLEV_SIZE];
};

static void *hash_build(struct sl_arena *a, const struct sl_lb_target *t, size_t n)
{
    struct maglev *m;
    uint64_t *offset, *skip, *next;
    size_t filled = 0;

    if (n == 0 || n > 65535)
        return NULL;
    m = sl_arena_alloc(a, sizeof(*m));
    offset = sl__xcalloc(n, sizeof(*offset));
    skip = sl__xcalloc(n, sizeof(*skip));
    next = sl__xcalloc(n, sizeof(*next));
    for (size_t i = 0; i < n; i++) {
        offset[i] = t[i].id_hash % SL_MAGLEV_SIZE;
        skip[i] = ((t[i].id_hash >> 32) ^ (t[i].id_hash * 31)) % (SL_MAGLEV_SIZE - 1) + 1;
    }
    memset(m->slot, 0xff, sizeof(m->slot));
    while (filled < SL_MAGLEV_SIZE) {
        for (size_t i = 0; i < n && filled < SL_MAGLEV_SIZE; i++) {
            for (uint32_t turn = 0; turn < t[i].weight && filled < SL_MAGLEV_SIZE; turn++) {
                uint64_t c;

                do {
                    c = (offset[i] + next[i] * skip[i]) % SL_MAGLEV_SIZE;
                    next[i]++;
                } while (m->slot[c] != 0xffff);
                m->slot[c] = (uint16_t)i;
                filled++;
            }
        }
    }
    free(offset);
    free(skip);
    free(next);
    return m;
}

static size_t hash_state_size(size_t n)
{
    (void)n;
    return sizeof(uint64_t);
}

static void hash_init(void *state, const struct sl_lb_target *t, size_t n, uint64_t seed)
{
    (void)t;
    (void)n;
    *(uint64_t *)state = seed | 1;
}

static int hash_pick(const void *shared, void *state, const struct sl_lb_target *t, size_t n,
                     const struct sl_lb_input *in)
{
    const struct maglev *m = shared;
    uint64_t h = in ? in->key_hash : rnd(state);

    if (m == NULL || n == 0)
        return -1;
    for (int attempt = 0; attempt < 32; attempt++) {
        uint16_t i = m->slot[h % SL_MAGLEV_SIZE];

        if (i < n && t[i].usable)
            return i;
        h = sl__lb_hash_bytes(&h, sizeof(h));
    }
    /* Almost nothing is usable: take the first that is. */
    for (size_t i = 0; i < n; i++)
        if (t[i].usable)
            return (int)i;
    return -1;
}

const struct sl_lb_ops sl__lb_hash = {
    .name = "hash",
    .build = hash_build,
    .state_size = hash_state_size,
    .init = hash_init,
    .pick = hash_pick,
};

/* -- power of two choices ------------------------------------------------------ */

/* Lower is better: in-flight requests (plus this one) times latency, per
 * unit of weight. */
static uint64_t p2c_cost(const struct sl_lb_target *t)
{
    return ((uint64_t)t->inflight + 1) * ((uint64_t)t->ewma_us + 1) * 1000 / t->weight;
}

static int p2c_pick(const void *shared, void *state, const struct sl_lb_target *t, size_t n,
                    const struct sl_lb_input *in)
{
    size_t usable = 0, a, b, ia = 0, ib = 0;
    uint64_t r;

    (void)shared;
    (void)in;
    for (size_t i = 0; i < n; i++)
        usable += t[i].usable;
    if (usable == 0)
        return -1;
    if (usable == 1) {
        for (size_t i = 0; i < n; i++)
            if (t[i].usable)
                return (int)i;
    }
    /* Two distinct usable targets, uniformly: the a-th and b-th usable. */
    r = rnd(state);
    a = r % usable;
    b = (r >> 32) % (usable - 1);
    if (b >= a)
        b++;
    for (size_t i = 0, seen = 0; i < n; i++) {
        if (!t[i].usable)
            continue;
        if (seen == a)
            ia = i;
        if (seen == b)
            ib = i;
        seen++;
    }
    {
        /* Latency decides only when it really differs (by more than 4x):
         * below that it is noise, and the less loaded target wins. A target
         * without a latency yet (new, or idle until its average faded) is
         * judged by its load too, so it gets traffic and a measurement
         * instead of being starved. */
        uint64_t la = t[ia].ewma_us, lb = t[ib].ewma_us, ca, cb;

        if (la == 0 || lb == 0 || (la <= 4 * lb && lb <= 4 * la)) {
            ca = ((uint64_t)t[ia].inflight + 1) * 1000 / t[ia].weight;
            cb = ((uint64_t)t[ib].inflight + 1) * 1000 / t[ib].weight;
        } else {
            ca = p2c_cost(&t[ia]);
            cb = p2c_cost(&t[ib]);
        }
        if (ca == cb)
            return (r >> 63) ? (int)ib : (int)ia;
        return cb < ca ? (int)ib : (int)ia;
    }
}

const struct sl_lb_ops sl__lb_p2c = {
    .name = "p2c",
    .state_size = hash_state_size,
    .init = hash_init,
    .pick = p2c_pick,
};

const struct sl_lb_ops *sl__lb_find(const char *name)
{
    static const struct sl_lb_ops *const all[] = {&sl__lb_round_robin, &sl__lb_least_conn,
                                                  &sl__lb_hash, &sl__lb_p2c};

    for (size_t i = 0; i < SL_ARRAY_LEN(all); i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}
