/*
 * The target state registry.
 */
#include "upstream/target_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/util.h"

static struct sl_tstate *registry;
static uv_mutex_t lock;
static uv_once_t lock_once = UV_ONCE_INIT;

static void init_lock(void)
{
    uv_mutex_init(&lock);
}

struct sl_tstate *sl__tstate_get(const char *upstream, const char *addr)
{
    struct sl_tstate *st;

    uv_once(&lock_once, init_lock);
    uv_mutex_lock(&lock);
    for (st = registry; st != NULL; st = st->next) {
        if (strcmp(st->upstream, upstream) == 0 && strcmp(st->addr, addr) == 0) {
            st->refs++;
            uv_mutex_unlock(&lock);
            return st;
        }
    }
    st = sl__xcalloc(1, sizeof(*st));
    snprintf(st->upstream, sizeof(st->upstream), "%s", upstream);
    snprintf(st->addr, sizeof(st->addr), "%s", addr);
    st->refs = 1;
    atomic_init(&st->healthy, true);
    st->next = registry;
    registry = st;
    uv_mutex_unlock(&lock);
    return st;
}

void sl__tstate_ref(struct sl_tstate *st)
{
    uv_mutex_lock(&lock);
    st->refs++;
    uv_mutex_unlock(&lock);
}

void sl__tstate_put(struct sl_tstate *st)
{
    struct sl_tstate **pp;

    if (st == NULL)
        return;
    uv_mutex_lock(&lock);
    if (--st->refs > 0) {
        uv_mutex_unlock(&lock);
        return;
    }
    for (pp = &registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    uv_mutex_unlock(&lock);
    free(st);
}

void sl__tstate_each(void (*fn)(struct sl_tstate *st, void *arg), void *arg)
{
    uv_once(&lock_once, init_lock);
    uv_mutex_lock(&lock);
    for (struct sl_tstate *st = registry; st != NULL; st = st->next)
        fn(st, arg);
    uv_mutex_unlock(&lock);
}

bool sl__tstate_usable(struct sl_tstate *st, uint64_t now_ms, bool *trial)
{
    uint64_t until = atomic_load_explicit(&st->ejected_until, memory_order_relaxed);

    *trial = false;
    if (!atomic_load_explicit(&st->healthy, memory_order_relaxed))
        return false;
    if (until == 0)
        return true;
    if (now_ms < until || atomic_load_explicit(&st->trial, memory_order_relaxed))
        return false;
    *trial = true;
    return true;
}

bool sl__tstate_claim_trial(struct sl_tstate *st)
{
    bool expected = false;

    return atomic_compare_exchange_strong(&st->trial, &expected, true);
}

void sl__tstate_success(struct sl_tstate *st, uint64_t latency_us, bool trial, uint64_t now_ms)
{
    unsigned old = sl__tstate_latency(st, now_ms);
    uint64_t lat = latency_us > UINT32_MAX ? UINT32_MAX : latency_us;

    /* Exponentially weighted, alpha 1/8; a lost update between workers
     * only delays the average a little. */
    atomic_store_explicit(&st->ewma_us,
                          old == 0 ? (unsigned)lat : (unsigned)(old + ((int64_t)lat - old) / 8),
                          memory_order_relaxed);
    atomic_store_explicit(&st->ewma_at, now_ms, memory_order_relaxed);
    atomic_store_explicit(&st->fails, 0, memory_order_relaxed);
    if (trial) {
        /* The trial went through: back in rotation. */
        atomic_store(&st->ejected_until, 0);
        atomic_store(&st->trial, false);
    }
}

bool sl__tstate_failure(struct sl_tstate *st, const struct sl_passive_conf *p, bool trial,
                        uint64_t now_ms)
{
    unsigned fails = atomic_fetch_add_explicit(&st->fails, 1, memory_order_relaxed) + 1;

    atomic_fetch_add_explicit(&st->failures, 1, memory_order_relaxed);
    if (p == NULL || p->failures == 0) {
        if (trial)
            atomic_store(&st->trial, false);
        return false;
    }
    if (trial) {
        /* The trial failed: out again for another period. */
        atomic_store(&st->ejected_until, now_ms + p->eject_ms);
        atomic_store(&st->trial, false);
        atomic_fetch_add_explicit(&st->ejections, 1, memory_order_relaxed);
        return true;
    }
    if (fails == p->failures && atomic_load(&st->ejected_until) == 0) {
        atomic_store(&st->ejected_until, now_ms + p->eject_ms);
        atomic_fetch_add_explicit(&st->ejections, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

void sl__tstate_trial_abandoned(struct sl_tstate *st)
{
    atomic_store(&st->trial, false);
}

uint32_t sl__tstate_latency(struct sl_tstate *st, uint64_t now_ms)
{
    uint32_t v = atomic_load_explicit(&st->ewma_us, memory_order_relaxed);
    uint64_t at = atomic_load_explicit(&st->ewma_at, memory_order_relaxed);
    uint64_t halvings = now_ms > at ? (now_ms - at) / 200 : 0;

    /* Halve every 200 ms without a sample: a spike fades fast, and a target
     * that is really slow still gets a request now and then to show it. */
    return halvings >= 32 ? 0 : v >> halvings;
}

void sl__tstate_count_status(struct sl_tstate *st, int status)
{
    if (status >= 100 && status < 100 + SL_TSTATE_CODES)
        atomic_fetch_add_explicit(&st->codes[status - 100], 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&st->no_response, 1, memory_order_relaxed);
}
