/*
 * GCRA. With emission interval T and bucket size b, a request at `now`
 * conforms when now >= max(TAT, now) + T - b*T; it then moves TAT on by T.
 * Waiting up to max_delay for conformance is pacing: the request reserves
 * its token in the future and is held until then.
 */
#include "gcra.h"

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

void sl__gcra_check(const struct sl_gcra_limit *l, int64_t tat, int64_t now, int64_t *new_tat,
                    struct sl_gcra_result *r)
{
    int64_t base = max64(tat, now), next = base + l->t_us, allow_at = next - l->burst * l->t_us;

    if (now >= allow_at) {
        r->decision = SL_GCRA_ALLOW;
        r->wait_us = 0;
        r->remaining = (now - allow_at) / l->t_us;
        if (r->remaining > l->burst - 1)
            r->remaining = l->burst - 1;
        r->reset_us = next - now;
        *new_tat = next;
        return;
    }
    r->wait_us = allow_at - now;
    r->remaining = 0;
    if (r->wait_us <= l->max_delay_us) {
        r->decision = SL_GCRA_DELAY;
        r->reset_us = next - now;
        *new_tat = next;
    } else {
        r->decision = SL_GCRA_REJECT;
        r->reset_us = base - now;
        *new_tat = tat;
    }
}

void sl__gcra_check_all(const struct sl_gcra_limit *l, const int64_t *tats, size_t n, int64_t now,
                        int64_t *new_tats, struct sl_gcra_result *r)
{
    r->decision = SL_GCRA_ALLOW;
    r->wait_us = 0;
    r->remaining = INT64_MAX;
    r->reset_us = 0;
    for (size_t i = 0; i < n; i++) {
        struct sl_gcra_result one;

        sl__gcra_check(&l[i], tats[i], now, &new_tats[i], &one);
        if (one.decision > r->decision)
            r->decision = one.decision;
        if (one.wait_us > r->wait_us)
            r->wait_us = one.wait_us;
        if (one.remaining < r->remaining)
            r->remaining = one.remaining;
        if (one.reset_us > r->reset_us)
            r->reset_us = one.reset_us;
    }
    if (n == 0)
        r->remaining = 0;
    if (r->decision == SL_GCRA_REJECT)
        for (size_t i = 0; i < n; i++)
            new_tats[i] = tats[i]; /* all or nothing */
}

int64_t sl__gcra_refund(const struct sl_gcra_limit *l, int64_t tat, int64_t reserved, int64_t now)
{
    int64_t t = tat - l->t_us;

    if (tat != reserved)
        return tat;

    return t > now ? t : now;
}
