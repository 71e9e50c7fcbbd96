/*
 * Balancers.
 */
#include "balancer.h"

#include <string.h>

/*
 * Smooth weighted round robin: every pick, each usable target's current
 * weight grows by its weight; the largest wins and drops by the total. With
 * weights 5:1:1 the order is a a b a c a a, not a a a a a b c.
 */
static size_t rr_state_size(size_t n)
{
    return n * sizeof(int64_t);
}

static void rr_init(void *state, const struct sl_lb_target *t, size_t n)
{
    (void)t;
    memset(state, 0, n * sizeof(int64_t));
}

static int rr_pick(void *state, const struct sl_lb_target *t, size_t n)
{
    int64_t *cur = state, total = 0;
    int best = -1;

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
