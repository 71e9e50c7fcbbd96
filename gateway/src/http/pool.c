/*
 * Keep-alive pools: a small chained hash table of idle lists.
 */
#include "http/pool.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/upconn.h"
#include "base/util.h"

#define N_BUCKETS 256

struct sl_pools {
    struct sl_pool *buckets[N_BUCKETS];
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

struct sl_pools *sl__pools_new(void)
{
    return sl__xcalloc(1, sizeof(struct sl_pools));
}

struct sl_pool *sl__pool_get(struct sl_pools *ps, const char *key)
{
    uint32_t b = hash(key) % N_BUCKETS;
    struct sl_pool *p;

    for (p = ps->buckets[b]; p != NULL; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p;
    p = sl__xcalloc(1, sizeof(*p));
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->next = ps->buckets[b];
    ps->buckets[b] = p;
    return p;
}

struct sl_upconn *sl__pool_take(struct sl_pool *p)
{
    struct sl_upconn *uc = p->idle;

    if (uc != NULL)
        sl__pool_remove(p, uc);
    return uc;
}

int sl__pool_put(struct sl_pool *p, struct sl_upconn *uc, uint32_t max)
{
    if (p->n_idle >= max)
        return -1;
    uc->prev = NULL;
    uc->next = p->idle;
    if (p->idle != NULL)
        p->idle->prev = uc;
    p->idle = uc;
    p->n_idle++;
    return 0;
}

void sl__pool_remove(struct sl_pool *p, struct sl_upconn *uc)
{
    if (uc->prev != NULL)
        uc->prev->next = uc->next;
    else
        p->idle = uc->next;
    if (uc->next != NULL)
        uc->next->prev = uc->prev;
    uc->prev = uc->next = NULL;
    p->n_idle--;
}

void sl__pools_close_all(struct sl_pools *ps, void (*close)(struct sl_upconn *uc))
{
    for (size_t b = 0; b < N_BUCKETS; b++)
        for (struct sl_pool *p = ps->buckets[b]; p != NULL; p = p->next)
            while (p->idle != NULL)
                close(p->idle); /* which takes it out of the pool */
}

void sl__pools_free(struct sl_pools *ps)
{
    for (size_t b = 0; b < N_BUCKETS; b++) {
        struct sl_pool *p = ps->buckets[b], *next;

        for (; p != NULL; p = next) {
            next = p->next;
            if (p->session != NULL)
                SSL_SESSION_free(p->session);
            free(p);
        }
    }
    free(ps);
}
