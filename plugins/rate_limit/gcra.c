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

/* Keep the entries of left[] strictly between lo and hi. */
static void keep_between(int64_t *left, uint32_t *n_left, int64_t lo, int64_t hi)
{
    for (uint32_t i = 0; i < *n_left;) {
        if (left[i] <= lo || left[i] >= hi)
            left[i] = left[--*n_left];
        else
            i++;
    }
}

int64_t sl__gcra_refund_chain(const struct sl_gcra_limit *l, int64_t tat, int64_t reserved,
                              int64_t now, int64_t *left, uint32_t *n_left, uint32_t cap)
{
    uint32_t i;

    if (tat != reserved) {
        keep_between(left, n_left, now, tat);
        if (reserved > now && reserved < tat && *n_left < cap)
            left[(*n_left)++] = reserved;
        return tat;
    }
    tat -= l->t_us;
    for (;;) {
        for (i = 0; i < *n_left && left[i] != tat; i++)
            ;
        if (i == *n_left)
            break;
        left[i] = left[--*n_left];
        tat -= l->t_us;
    }
    if (tat < now)
        tat = now;
    /* An entry above the schedule's new end is a slot nobody holds now,
     * which a later reservation may be given: it must not match then. */
    keep_between(left, n_left, now, tat);
    return tat;
}
