/*
 * rate_limit's local store: TATs in a hash table shared by every worker.
 *
 * 256 shards, each a chained hash table with its own mutex, so workers
 * rarely wait for each other. A bucket whose TAT has passed is full again
 * and is the same as no bucket: such entries are dropped whenever a shard
 * fills up, and if a shard is still full the entry closest to full goes, so
 * memory stays within MAX_ENTRIES.
 */
#include "rate_limit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "sluice/alloc.h"

#define SHARDS      256
#define MAX_ENTRIES (1 << 20)
#define SHARD_MAX   (MAX_ENTRIES / SHARDS)
#define BUCKETS     1024 /* per shard; chains stay short up to SHARD_MAX */

#define LEFT_MAX 64 /* refunds kept per bucket until they can apply */

struct entry {
    struct entry *next;
    uint64_t hash;
    int64_t tat;
    int64_t *left; /* reservations given back early (sl__gcra_refund_chain), or NULL */
    uint32_t n_left;
    size_t len;
    char key[];
};

static void entry_free(struct entry *e)
{
    free(e->left);
    free(e);
}

struct shard {
    uv_mutex_t lock;
    struct entry *bucket[BUCKETS];
    size_t n;
};

static struct shard *shards;
static uv_once_t init_once = UV_ONCE_INIT;

static void init(void)
{
    shards = sl_calloc(SHARDS, sizeof(*shards), "the rate_limit plugin");
    for (int i = 0; i < SHARDS; i++)
        uv_mutex_init(&shards[i].lock);
}

int64_t sl__rl_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static struct entry **find(struct shard *sh, uint64_t h, const char *key, size_t len)
{
    struct entry **pp = &sh->bucket[(h >> 8) % BUCKETS];

    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
            return pp;
    return pp;
}

/* Make room in a full shard: drop full buckets, else the one closest to
 * full (the smallest TAT). */
static void trim(struct shard *sh, int64_t now)
{
    struct entry **victim = NULL;

    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct entry **pp = &sh->bucket[b]; *pp != NULL;) {
            if ((*pp)->tat <= now) {
                struct entry *e = *pp;

                *pp = e->next;
                entry_free(e);
                sh->n--;
                continue;
            }
            if (victim == NULL || (*pp)->tat < (*victim)->tat)
                victim = pp;
            pp = &(*pp)->next;
        }
    }
    if (sh->n >= SHARD_MAX && victim != NULL) {
        struct entry *e = *victim;

        *victim = e->next;
        entry_free(e);
        sh->n--;
    }
}

void sl__rl_local(const struct sl_gcra_limit *limits, const char *const *keys, size_t n, int cost,
                  struct sl_gcra_result *r, int64_t *reserved)
{
    uint64_t h[8];
    int64_t tats[8], news[8], now;
    unsigned idx[8], order[8], locked = 0;

    uv_once(&init_once, init);
    if (n > 8)
        n = 8; /* the config allows at most 8 limits per route */
    for (size_t i = 0; i < n; i++) {
        h[i] = hash(keys[i], strlen(keys[i]));
        idx[i] = (unsigned)(h[i] % SHARDS);
    }
    /* Lock every shard involved once, in ascending order (no deadlock). */
    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        for (unsigned k = 0; k < locked; k++)
            dup |= order[k] == idx[i];
        if (!dup)
            order[locked++] = idx[i];
    }
    for (unsigned a = 1; a < locked; a++)
        for (unsigned b = a; b > 0 && order[b - 1] > order[b]; b--) {
            unsigned t = order[b];

            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    for (unsigned k = 0; k < locked; k++)
        uv_mutex_lock(&shards[order[k]].lock);

    now = sl__rl_now_us();
    for (size_t i = 0; i < n; i++) {
        struct entry *e = *find(&shards[idx[i]], h[i], keys[i], strlen(keys[i]));

        tats[i] = e ? e->tat : 0;
    }
    if (cost < 0) {
        for (size_t i = 0; i < n; i++) {
            struct entry *e = *find(&shards[idx[i]], h[i], keys[i], strlen(keys[i]));

            news[i] = tats[i];
            if (e == NULL)
                continue; /* the bucket is full again: nothing to give back */
            if (e->left == NULL)
                e->left = sl_malloc(LEFT_MAX * sizeof(*e->left), "the rate_limit plugin");
            news[i] = sl__gcra_refund_chain(&limits[i], e->tat, reserved[i], now, e->left,
                                            &e->n_left, LEFT_MAX);
        }
        if (r != NULL)
            memset(r, 0, sizeof(*r));
    } else {
        sl__gcra_check_all(limits, tats, n, now, news, r);
        for (size_t i = 0; i < n; i++)
            reserved[i] = news[i];
    }
    for (size_t i = 0; i < n; i++) {
        struct shard *sh = &shards[idx[i]];
        size_t len = strlen(keys[i]);
        struct entry **pp = find(sh, h[i], keys[i], len), *e = *pp;

        if (news[i] == tats[i])
            continue;
        if (e != NULL) {
            e->tat = news[i];
            continue;
        }
        if (news[i] <= now)
            continue; /* a full bucket needs no entry */
        if (sh->n >= SHARD_MAX) {
            trim(sh, now);
            pp = find(sh, h[i], keys[i], len);
        }
        e = sl_malloc(sizeof(*e) + len + 1, "the rate_limit plugin");
        e->hash = h[i];
        e->tat = news[i];
        e->left = NULL;
        e->n_left = 0;
        e->len = len;
        memcpy(e->key, keys[i], len + 1);
        e->next = *pp;
        *pp = e;
        sh->n++;
    }
    for (unsigned k = locked; k-- > 0;)
        uv_mutex_unlock(&shards[order[k]].lock);
}
