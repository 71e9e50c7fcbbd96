/*
 * The token bucket as GCRA (generic cell rate algorithm): a bucket of
 * capacity `burst` refilled at one token per `t_us` is kept as one number,
 * the theoretical arrival time (TAT) of the next request. Pure arithmetic,
 * shared by the local store and (as Lua) by the Redis script, and unit tested
 * in test_gcra.c beside it. All times are microseconds.
 */
#ifndef SL_GCRA_H
#define SL_GCRA_H

#include <stddef.h>
#include <stdint.h>

enum sl_gcra_decision {
    SL_GCRA_ALLOW = 0, /* a token now */
    SL_GCRA_DELAY = 1, /* a token reserved `wait_us` from now (<= max_delay) */
    SL_GCRA_REJECT = 2 /* no token within max_delay: nothing reserved */
};

struct sl_gcra_limit {
    int64_t t_us;         /* emission interval: period / count */
    int64_t burst;        /* bucket size, >= 1 */
    int64_t max_delay_us; /* longest wait for a token; 0 = never wait */
};

struct sl_gcra_result {
    enum sl_gcra_decision decision;
    int64_t wait_us;   /* DELAY: the wait; REJECT: until a token would be free */
    int64_t remaining; /* tokens left after this request */
    int64_t reset_us;  /* until the bucket is full again */
};

/*
 * Decide one request against one limit. tat is the stored TAT (0 when the
 * bucket is unknown, which is a full bucket). On ALLOW and DELAY, *new_tat is
 * what to store; on REJECT, *new_tat = tat (nothing changes).
 */
void sl__gcra_check(const struct sl_gcra_limit *l, int64_t tat, int64_t now, int64_t *new_tat,
                    struct sl_gcra_result *r);

/*
 * Decide one request against n limits at once: it takes a token from every
 * bucket or from none. tats[] in, new_tats[] out (unchanged on REJECT). The
 * result is the strictest: REJECT if any rejects, else DELAY with the longest
 * wait if any delays; remaining is the smallest, reset the longest.
 */
void sl__gcra_check_all(const struct sl_gcra_limit *l, const int64_t *tats, size_t n, int64_t now,
                        int64_t *new_tats, struct sl_gcra_result *r);

/*
 * Give back the token a held client reserved, which moved the TAT to
 * `reserved`. It applies at once only when nobody reserved after it (tat
 * is still `reserved`): taking a slot out of the middle of the schedule
 * would let the next arrival share a later client's slot. The refunds that
 * cannot apply yet are remembered instead: left[] holds the
 * reservations (their TATs) of held clients that left while a later
 * reservation stood, *n_left of them, room for cap. A refund that cannot
 * apply goes there; one that can rolls the TAT back through every
 * reservation in left[] directly below it, so clients that give up oldest
 * first hand back every slot once the newest has gone too. Entries whose
 * time has passed are dropped. Returns the new TAT.
 */
int64_t sl__gcra_refund_chain(const struct sl_gcra_limit *l, int64_t tat, int64_t reserved,
                              int64_t now, int64_t *left, uint32_t *n_left, uint32_t cap);

#endif
