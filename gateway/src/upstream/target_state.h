/*
 * Upstream target state, kept in one place: health (active checks), passive
 * ejection, requests in flight, latency and counters. Each target of each
 * upstream has one struct sl_tstate for the whole gateway instance; workers
 * update it with atomics on the request path, the health checker from the
 * main thread. It outlives config generations: a reload that keeps a target
 * keeps its state. The admin API reads it from here.
 */
#ifndef SL_UPSTREAM_H
#define SL_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_req;

#define SL_TSTATE_CODES 500

struct sl_tstate {
    struct sl_tstate *next; /* the registry's list */
    char upstream[64];
    char addr[64]; /* ip:port */
    unsigned refs; /* generations and checks using it (registry lock) */

    atomic_bool healthy;            /* active checks; true when unchecked */
    atomic_uint inflight;           /* requests in flight, all workers */
    atomic_uint fails;              /* consecutive failures seen by requests */
    _Atomic uint64_t ejected_until; /* monotonic ms; 0 = in rotation */
    atomic_bool trial;              /* the one trial request after an ejection */
    atomic_uint ewma_us;            /* response head latency, smoothed */
    _Atomic uint64_t ewma_at;       /* monotonic ms of its last sample */
    _Atomic uint64_t requests;      /* attempts sent to this target */
    _Atomic uint64_t failures;      /* attempts that failed */
    _Atomic uint64_t ejections;
    _Atomic uint64_t codes[SL_TSTATE_CODES]; /* responses by status, 100..599 */
    _Atomic uint64_t no_response;            /* attempts that got no response at all */

    /* The health checker's own, on the main thread. */
    uint32_t check_ok, check_fail;
    char last_check[96]; /* what the last failed check saw */
};

/* Passive ejection settings of an upstream (failures 0 = off). */
struct sl_passive_conf {
    uint32_t failures;
    uint64_t eject_ms;
};

/* The state for (upstream, addr), created on first use; one reference. */
struct sl_tstate *sl__tstate_get(const char *upstream, const char *addr);
void sl__tstate_ref(struct sl_tstate *st);
void sl__tstate_put(struct sl_tstate *st);

/* Call fn for every target state (under the registry lock: fn must not
 * call back into the registry). */
void sl__tstate_each(void (*fn)(struct sl_tstate *st, void *arg), void *arg);

/*
 * Whether a request may be sent to st now. A target whose ejection has
 * expired is usable for exactly one trial request: *trial is set, and the
 * caller must sl__tstate_claim_trial() it once the balancer picks it.
 */
bool sl__tstate_usable(struct sl_tstate *st, uint64_t now_ms, bool *trial);
bool sl__tstate_claim_trial(struct sl_tstate *st);

/* An attempt on st got a response head after latency_us; trial: it was the
 * trial request after an ejection (which ends the ejection). */
void sl__tstate_success(struct sl_tstate *st, uint64_t latency_us, bool trial, uint64_t now_ms);

/*
 * An attempt on st failed (connect error, reset, timeout, 5xx). With passive
 * ejection on, the failures-th consecutive one ejects st for eject_ms; a
 * failed trial (trial: this attempt was it) ejects it again. Returns true
 * when this call ejected it.
 */
bool sl__tstate_failure(struct sl_tstate *st, const struct sl_passive_conf *p, bool trial,
                        uint64_t now_ms);

/* The trial request went away without an answer either way: another request
 * may be the trial. */
void sl__tstate_trial_abandoned(struct sl_tstate *st);

/*
 * The latency average as balancers should see it now: it halves for every
 * 200 ms without a sample, so a target that was slow once is tried again.
 */
uint32_t sl__tstate_latency(struct sl_tstate *st, uint64_t now_ms);

/* Count a response status, or an attempt without any (status 0), for the
 * metrics. */
void sl__tstate_count_status(struct sl_tstate *st, int status);

#endif
