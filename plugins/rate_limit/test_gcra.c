/*
 * The token bucket arithmetic of the rate_limit plugin (plugins/rate_limit/
 * gcra.c): refill, burst, reservations for pacing, refunds, several limits
 * at once, and clock edge cases. Times are microseconds.
 */
#include "gcra.h"

#include "check.h"

#define SEC 1000000ll
#define MS  1000ll

/* 50/s with a bucket of 10, never waiting. */
static const struct sl_gcra_limit fifty = {.t_us = 20 * MS, .burst = 10, .max_delay_us = 0};

/* Run n requests at time now against tat; returns how many were allowed. */
static int take(const struct sl_gcra_limit *l, int64_t *tat, int64_t now, int n)
{
    int allowed = 0;

    for (int i = 0; i < n; i++) {
        struct sl_gcra_result r;
        int64_t next;

        sl__gcra_check(l, *tat, now, &next, &r);
        if (r.decision == SL_GCRA_ALLOW) {
            allowed++;
            *tat = next;
        }
    }
    return allowed;
}

static void test_a_full_bucket_gives_exactly_burst_tokens_at_once(void)
{
    int64_t tat = 0, now = 1000 * SEC;

    CHECK_EQ_INT(take(&fifty, &tat, now, 25), 10);
}

static void test_an_unknown_bucket_and_one_from_the_past_are_both_full(void)
{
    int64_t old = 5 * SEC, now = 1000 * SEC;

    CHECK_EQ_INT(take(&fifty, &old, now, 25), 10);
}

static void test_tokens_come_back_at_the_rate(void)
{
    int64_t tat = 0, now = 1000 * SEC;

    take(&fifty, &tat, now, 10);
    CHECK_EQ_INT(take(&fifty, &tat, now + 19 * MS, 1), 0);
    CHECK_EQ_INT(take(&fifty, &tat, now + 20 * MS, 1), 1);
    CHECK_EQ_INT(take(&fifty, &tat, now + 20 * MS, 1), 0);
    /* A second later, 50 tokens have come back but the bucket holds 10. */
    CHECK_EQ_INT(take(&fifty, &tat, now + 2 * SEC, 100), 10);
}

static void test_a_steady_stream_gets_burst_plus_rate_times_time(void)
{
    int64_t tat = 0, start = 1000 * SEC;
    int allowed = 0;

    /* 20 requests every millisecond for 10 s: 510 pass (10 + 50 x 10). */
    for (int64_t t = 0; t < 10 * SEC; t += MS)
        allowed += take(&fifty, &tat, start + t, 20);
    CHECK_EQ_INT(allowed, 510 - 1); /* the last token comes due at exactly 10 s */
}

static void test_remaining_and_reset_describe_the_bucket(void)
{
    struct sl_gcra_result r;
    int64_t next, now = 1000 * SEC;

    sl__gcra_check(&fifty, 0, now, &next, &r);
    CHECK_EQ_INT(r.decision, SL_GCRA_ALLOW);
    CHECK_EQ_INT(r.remaining, 9);
    CHECK_EQ_INT(r.reset_us, 20 * MS);
    sl__gcra_check(&fifty, now + 180 * MS, now, &next, &r); /* one token left */
    CHECK_EQ_INT(r.decision, SL_GCRA_ALLOW);
    CHECK_EQ_INT(r.remaining, 0);
    CHECK_EQ_INT(r.reset_us, 200 * MS);
}

static void test_a_rejection_changes_nothing_and_says_when_a_token_comes(void)
{
    struct sl_gcra_result r;
    int64_t next, now = 1000 * SEC, tat = now + 200 * MS; /* empty bucket */

    sl__gcra_check(&fifty, tat, now, &next, &r);
    CHECK_EQ_INT(r.decision, SL_GCRA_REJECT);
    CHECK_EQ_INT(next, tat);
    CHECK_EQ_INT(r.wait_us, 20 * MS);
    CHECK_EQ_INT(r.remaining, 0);
    CHECK_EQ_INT(r.reset_us, 200 * MS);
}

static void test_max_delay_reserves_future_tokens_spaced_by_the_interval(void)
{
    /* 20/s, bucket 1, wait up to 1 s: ten requests at once are paced 50 ms apart. */
    const struct sl_gcra_limit l = {.t_us = 50 * MS, .burst = 1, .max_delay_us = SEC};
    int64_t tat = 0, now = 1000 * SEC;

    for (int i = 0; i < 10; i++) {
        struct sl_gcra_result r;
        int64_t next;

        sl__gcra_check(&l, tat, now, &next, &r);
        CHECK_EQ_INT(r.decision, i == 0 ? SL_GCRA_ALLOW : SL_GCRA_DELAY);
        CHECK_EQ_INT(r.wait_us, i * 50 * MS);
        tat = next;
    }
}

static void test_a_wait_longer_than_max_delay_is_a_rejection(void)
{
    const struct sl_gcra_limit l = {.t_us = 50 * MS, .burst = 1, .max_delay_us = 100 * MS};
    struct sl_gcra_result r;
    int64_t tat = 0, now = 1000 * SEC, next;
    int delayed = 0;

    for (int i = 0; i < 5; i++) {
        sl__gcra_check(&l, tat, now, &next, &r);
        if (r.decision != SL_GCRA_REJECT)
            tat = next;
        delayed += r.decision == SL_GCRA_DELAY;
    }
    CHECK_EQ_INT(delayed, 2); /* waits of 50 and 100 ms; 150 ms is too long */
    sl__gcra_check(&l, tat, now, &next, &r);
    CHECK_EQ_INT(r.decision, SL_GCRA_REJECT);
    CHECK_EQ_INT(r.wait_us, 150 * MS);
}

static void test_a_refund_gives_back_the_last_reservation_only(void)
{
    const struct sl_gcra_limit l = {.t_us = 50 * MS, .burst = 1, .max_delay_us = SEC};
    struct sl_gcra_result r;
    int64_t now = 1000 * SEC, tat = 0, a, b, left[1];
    uint32_t n = 0;

    sl__gcra_check(&l, tat, now, &a, &r); /* through now */
    sl__gcra_check(&l, a, now, &b, &r);   /* held 50 ms */
    /* b is the last reservation: refunding it moves the schedule back. */
    CHECK_EQ_INT(sl__gcra_refund_chain(&l, b, b, now, left, &n, 0), a);
    /* If someone reserved after b, refunding b would let the next arrival
     * share that later slot: nothing changes. */
    CHECK_EQ_INT(sl__gcra_refund_chain(&l, b + 50 * MS, b, now, left, &n, 0), b + 50 * MS);
    /* Never back past a full bucket. */
    CHECK_EQ_INT(sl__gcra_refund_chain(&l, now + 10 * MS, now + 10 * MS, now, left, &n, 0), now);
}

static void test_clients_leaving_oldest_first_give_back_every_slot_once_the_newest_goes(void)
{
    const struct sl_gcra_limit l = {.t_us = 50 * MS, .burst = 1, .max_delay_us = SEC};
    struct sl_gcra_result r;
    int64_t now = 1000 * SEC, a, b, c, d, left[4], tat;
    uint32_t n = 0;

    sl__gcra_check(&l, 0, now, &a, &r); /* through now */
    sl__gcra_check(&l, a, now, &b, &r); /* held 50, 100, 150 ms */
    sl__gcra_check(&l, b, now, &c, &r);
    sl__gcra_check(&l, c, now, &d, &r);
    /* b and c leave while d stands: nothing moves yet, both are kept. */
    tat = sl__gcra_refund_chain(&l, d, b, now, left, &n, 4);
    CHECK_EQ_INT(tat, d);
    tat = sl__gcra_refund_chain(&l, tat, c, now, left, &n, 4);
    CHECK_EQ_INT(tat, d);
    CHECK_EQ_UINT(n, 2);
    /* d leaves: the schedule rolls back through c and b to a. */
    tat = sl__gcra_refund_chain(&l, tat, d, now, left, &n, 4);
    CHECK_EQ_INT(tat, a);
    CHECK_EQ_UINT(n, 0);

    /* With a client still held above, a slot given back stays reserved
     * for nobody rather than shared: e stays the end. */
    {
        int64_t e, f;

        n = 0;
        sl__gcra_check(&l, a, now, &e, &r);
        sl__gcra_check(&l, e, now, &f, &r);
        tat = sl__gcra_refund_chain(&l, f, e, now, left, &n, 4);
        CHECK_EQ_INT(tat, f);
        /* Time passes beyond e: its entry goes, f's refund goes to now. */
        tat = sl__gcra_refund_chain(&l, tat, f, e + MS, left, &n, 4);
        CHECK_EQ_INT(tat, e + MS);
        CHECK_EQ_UINT(n, 0);
    }
    /* Full: a refund that cannot be kept is lost, never misapplied. */
    n = 0;
    for (int i = 0; i < 6; i++)
        tat = sl__gcra_refund_chain(&l, d, b + i, now, left, &n, 4);
    CHECK_EQ_UINT(n, 4);
    CHECK_EQ_INT(tat, d);
}

static void test_several_limits_take_from_all_or_from_none(void)
{
    const struct sl_gcra_limit l[2] = {
        {.t_us = 100 * MS, .burst = 10, .max_delay_us = 0}, /* roomy */
        {.t_us = SEC, .burst = 1, .max_delay_us = 0},       /* tight */
    };
    struct sl_gcra_result r;
    int64_t now = 1000 * SEC, tats[2] = {0, 0}, news[2];

    sl__gcra_check_all(l, tats, 2, now, news, &r);
    CHECK_EQ_INT(r.decision, SL_GCRA_ALLOW);
    CHECK_EQ_INT(r.remaining, 0); /* the tighter limit's */
    tats[0] = news[0];
    tats[1] = news[1];
    sl__gcra_check_all(l, tats, 2, now, news, &r);
    CHECK_EQ_INT(r.decision, SL_GCRA_REJECT);
    /* The roomy bucket gave nothing for the rejected request. */
    CHECK_EQ_INT(news[0], tats[0]);
    CHECK_EQ_INT(news[1], tats[1]);
    CHECK_EQ_INT(r.wait_us, SEC);
}

static void test_the_strictest_limit_sets_the_delay(void)
{
    const struct sl_gcra_limit l[2] = {
        {.t_us = 10 * MS, .burst = 1, .max_delay_us = SEC},
        {.t_us = 40 * MS, .burst = 1, .max_delay_us = SEC},
    };
    struct sl_gcra_result r;
    int64_t now = 1000 * SEC, tats[2] = {now + 10 * MS, now + 40 * MS}, news[2];

    sl__gcra_check_all(l, tats, 2, now, news, &r);
    CHECK_EQ_INT(r.decision, SL_GCRA_DELAY);
    CHECK_EQ_INT(r.wait_us, 40 * MS);
}

static void test_a_clock_that_stands_still_or_jumps_is_handled(void)
{
    int64_t tat = 0, now = 1000 * SEC;

    /* Many decisions within one microsecond: still only the burst. */
    CHECK_EQ_INT(take(&fifty, &tat, now, 1000), 10);
    /* A clock earlier than the bucket's last use (another node's clock,
     * or a TAT from the future) only delays tokens, never creates them. */
    CHECK_EQ_INT(take(&fifty, &tat, now - 5 * SEC, 10), 0);
    /* A jump far ahead fills the bucket, no more. */
    CHECK_EQ_INT(take(&fifty, &tat, now + 3600 * SEC, 100), 10);
}

static void test_a_tiny_interval_does_not_overflow(void)
{
    const struct sl_gcra_limit l = {.t_us = 1, .burst = 1000000000, .max_delay_us = 0};
    struct sl_gcra_result r;
    int64_t next;

    sl__gcra_check(&l, 0, 1000 * SEC, &next, &r);
    CHECK_EQ_INT(r.decision, SL_GCRA_ALLOW);
    CHECK_EQ_INT(r.remaining, 999999999);
}

int main(void)
{
    RUN(test_a_full_bucket_gives_exactly_burst_tokens_at_once);
    RUN(test_an_unknown_bucket_and_one_from_the_past_are_both_full);
    RUN(test_tokens_come_back_at_the_rate);
    RUN(test_a_steady_stream_gets_burst_plus_rate_times_time);
    RUN(test_remaining_and_reset_describe_the_bucket);
    RUN(test_a_rejection_changes_nothing_and_says_when_a_token_comes);
    RUN(test_max_delay_reserves_future_tokens_spaced_by_the_interval);
    RUN(test_a_wait_longer_than_max_delay_is_a_rejection);
    RUN(test_a_refund_gives_back_the_last_reservation_only);
    RUN(test_clients_leaving_oldest_first_give_back_every_slot_once_the_newest_goes);
    RUN(test_several_limits_take_from_all_or_from_none);
    RUN(test_the_strictest_limit_sets_the_delay);
    RUN(test_a_clock_that_stands_still_or_jumps_is_handled);
    RUN(test_a_tiny_interval_does_not_overflow);
    return check_done();
}
