/*
 * Unit tests for gateway/src/balancer.c: smooth weighted round robin first,
 * then properties of least_conn, hash (Maglev) and p2c.
 */
#include "upstream/balancer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const struct sl_lb_ops *rr = &sl__lb_round_robin;

/* Fresh state of ops for targets t[0..n), zeroed as the generation gives it. */
static void *state_of(const struct sl_lb_ops *ops, const struct sl_lb_target *t, size_t n,
                      uint64_t seed)
{
    size_t size = ops->state_size(n);
    void *state = calloc(1, size ? size : 1);

    ops->init(state, t, n, seed);
    return state;
}

static void *new_state(const struct sl_lb_target *t, size_t n)
{
    return state_of(rr, t, n, 1);
}

/* One round-robin pick (it has no shared data and reads no input). */
static int rr_pick(void *state, const struct sl_lb_target *t, size_t n)
{
    return rr->pick(NULL, state, t, n, NULL);
}

/* Pick k times and write the picks as letters ('a' + index, '-' for none). */
static void picks(void *state, const struct sl_lb_target *t, size_t n, int k, char *out)
{
    for (int i = 0; i < k; i++) {
        int p = rr_pick(state, t, n);

        out[i] = p < 0 ? '-' : (char)('a' + p);
    }
    out[k] = '\0';
}

static void test_round_robin_is_named_as_in_the_config(void)
{
    CHECK_STREQ(rr->name, "round_robin");
}

static void test_state_is_sized_for_the_targets(void)
{
    CHECK(rr->state_size(1) > 0);
    CHECK(rr->state_size(10) >= 10 * rr->state_size(1));
}

static void test_weights_5_1_1_give_the_smooth_nginx_order(void)
{
    struct sl_lb_target t[] = {{.weight = 5, .usable = true},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = true}};
    void *state = new_state(t, 3);
    char seq[32];

    picks(state, t, 3, 7, seq);
    CHECK_STREQ(seq, "aabacaa");
    /* The cycle repeats exactly. */
    picks(state, t, 3, 14, seq);
    CHECK_STREQ(seq, "aabacaaaabacaa");
    free(state);
}

static void test_weights_5_1_1_stay_exact_and_spread_over_many_cycles(void)
{
    struct sl_lb_target t[] = {{.weight = 5, .usable = true},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = true}};
    void *state = new_state(t, 3);
    int run = 0, longest = 0, counts[3] = {0}, none = 0;

    for (int i = 0; i < 700; i++) {
        int p = rr_pick(state, t, 3);

        if (p < 0 || p > 2) {
            none++;
            continue;
        }
        counts[p]++;
        run = p == 0 ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    CHECK_EQ_INT(none, 0);
    CHECK_EQ_INT(counts[0], 500);
    CHECK_EQ_INT(counts[1], 100);
    CHECK_EQ_INT(counts[2], 100);
    /* Across cycle boundaries "..a a | a a b.." gives four in a row, never more. */
    CHECK(longest <= 4);
    free(state);
}

static void test_weights_3_1_1_over_10000_picks_are_exact(void)
{
    struct sl_lb_target t[] = {{.weight = 3, .usable = true},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = true}};
    void *state = new_state(t, 3);
    int counts[3] = {0}, none = 0;

    for (int i = 0; i < 10000; i++) {
        int p = rr_pick(state, t, 3);

        if (p < 0 || p > 2)
            none++;
        else
            counts[p]++;
    }
    CHECK_EQ_INT(none, 0);
    CHECK_EQ_INT(counts[0], 6000);
    CHECK_EQ_INT(counts[1], 2000);
    CHECK_EQ_INT(counts[2], 2000);
    free(state);
}

static void test_equal_weights_take_turns(void)
{
    struct sl_lb_target t[] = {{.weight = 1, .usable = true},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = true}};
    void *state = new_state(t, 4);
    char seq[16];

    picks(state, t, 4, 8, seq);
    CHECK_STREQ(seq, "abcdabcd");
    free(state);
}

static void test_unusable_targets_are_skipped(void)
{
    struct sl_lb_target t[] = {{.weight = 5, .usable = true},
                               {.weight = 1, .usable = false},
                               {.weight = 1, .usable = true}};
    void *state = new_state(t, 3);
    int counts[3] = {0}, none = 0;

    for (int i = 0; i < 600; i++) {
        int p = rr_pick(state, t, 3);

        if (p >= 0 && p < 3)
            counts[p]++;
        else
            none++;
    }
    CHECK_EQ_INT(none, 0);
    CHECK_EQ_INT(counts[0], 500);
    CHECK_EQ_INT(counts[1], 0);
    CHECK_EQ_INT(counts[2], 100);
    free(state);
}

static void test_a_target_that_comes_back_gets_its_share_again(void)
{
    struct sl_lb_target t[] = {{.weight = 1, .usable = true}, {.weight = 1, .usable = true}};
    void *state = new_state(t, 2);
    int counts[2] = {0}, only_a = 0;

    t[1].usable = false;
    for (int i = 0; i < 10; i++)
        only_a += rr_pick(state, t, 2) == 0;
    CHECK_EQ_INT(only_a, 10);
    t[1].usable = true;
    for (int i = 0; i < 100; i++) {
        int p = rr_pick(state, t, 2);

        if (p >= 0 && p < 2)
            counts[p]++;
    }
    CHECK_EQ_INT(counts[0], 50);
    CHECK_EQ_INT(counts[1], 50);
    free(state);
}

static void test_all_unusable_targets_give_minus_one(void)
{
    struct sl_lb_target t[] = {{.weight = 5, .usable = false},
                               {.weight = 1, .usable = false},
                               {.weight = 1, .usable = false}};
    void *state = new_state(t, 3);

    CHECK_EQ_INT(rr_pick(state, t, 3), -1);
    CHECK_EQ_INT(rr_pick(state, t, 3), -1);
    /* Usable again: the state was not disturbed. */
    t[0].usable = t[1].usable = t[2].usable = true;
    {
        char seq[8];

        picks(state, t, 3, 7, seq);
        CHECK_STREQ(seq, "aabacaa");
    }
    free(state);
}

static void test_no_targets_give_minus_one(void)
{
    void *state = new_state(NULL, 0);

    CHECK_EQ_INT(rr_pick(state, NULL, 0), -1);
    free(state);
}

static void test_init_resets_the_state(void)
{
    struct sl_lb_target t[] = {{.weight = 5, .usable = true},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = true}};
    void *state = new_state(t, 3);
    char seq[8];

    picks(state, t, 3, 3, seq);
    rr->init(state, t, 3, 1);
    picks(state, t, 3, 7, seq);
    CHECK_STREQ(seq, "aabacaa");
    free(state);
}

static void test_balancers_are_found_by_their_config_names(void)
{
    CHECK(sl__lb_find("round_robin") == &sl__lb_round_robin);
    CHECK(sl__lb_find("least_conn") == &sl__lb_least_conn);
    CHECK(sl__lb_find("hash") == &sl__lb_hash);
    CHECK(sl__lb_find("p2c") == &sl__lb_p2c);
    CHECK(sl__lb_find("random") == NULL);
    CHECK(sl__lb_find("") == NULL);
}

/* One pick of ops, with its shared data and an optional key. */
static int pick_of(const struct sl_lb_ops *ops, const void *shared, void *state,
                   const struct sl_lb_target *t, size_t n, const uint64_t *key)
{
    struct sl_lb_input in = {.key_hash = key ? *key : 0};

    return ops->pick(shared, state, t, n, key ? &in : NULL);
}

static void test_least_conn_picks_the_fewest_in_flight_per_unit_of_weight(void)
{
    struct sl_lb_target t[] = {{.weight = 1, .usable = true, .inflight = 5},
                               {.weight = 1, .usable = true, .inflight = 2},
                               {.weight = 1, .usable = true, .inflight = 7}};
    struct sl_lb_target w[] = {{.weight = 2, .usable = true, .inflight = 4},
                               {.weight = 1, .usable = true, .inflight = 3}};
    void *state = state_of(&sl__lb_least_conn, t, 3, 7);
    int lightest = 0, per_weight = 0;

    /* Whatever target the tie-breaking scan starts at. */
    for (int i = 0; i < 6; i++)
        lightest += pick_of(&sl__lb_least_conn, NULL, state, t, 3, NULL) == 1;
    CHECK_EQ_INT(lightest, 6);
    /* 4 in flight on weight 2 is 2 per unit: lighter than 3 on weight 1. */
    for (int i = 0; i < 6; i++)
        per_weight += pick_of(&sl__lb_least_conn, NULL, state, w, 2, NULL) == 0;
    CHECK_EQ_INT(per_weight, 6);
    t[1].usable = false;
    CHECK_EQ_INT(pick_of(&sl__lb_least_conn, NULL, state, t, 3, NULL), 0);
    t[0].usable = t[1].usable = t[2].usable = false;
    CHECK_EQ_INT(pick_of(&sl__lb_least_conn, NULL, state, t, 3, NULL), -1);
    CHECK_EQ_INT(pick_of(&sl__lb_least_conn, NULL, state, t, 0, NULL), -1);
    free(state);
}

static void test_least_conn_spreads_ties_evenly(void)
{
    struct sl_lb_target t[] = {{.weight = 1, .usable = true},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = true}};
    void *state = state_of(&sl__lb_least_conn, t, 3, 12345);
    int counts[3] = {0};

    for (int i = 0; i < 300; i++) {
        int p = pick_of(&sl__lb_least_conn, NULL, state, t, 3, NULL);

        if (p >= 0 && p < 3)
            counts[p]++;
    }
    CHECK_EQ_INT(counts[0], 100);
    CHECK_EQ_INT(counts[1], 100);
    CHECK_EQ_INT(counts[2], 100);
    free(state);
}

/* Targets for the hash balancer, named by their addresses. */
static void hash_targets(struct sl_lb_target *t, size_t n, const uint32_t *weights)
{
    for (size_t i = 0; i < n; i++) {
        char addr[32];
        int len = snprintf(addr, sizeof(addr), "10.0.0.%zu:80", i + 1);

        t[i] = (struct sl_lb_target){.weight = weights[i], .usable = true};
        t[i].id_hash = sl__lb_hash_bytes(addr, (size_t)len);
    }
}

static uint64_t key_of(unsigned k)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "user-%u", k);

    return sl__lb_hash_bytes(buf, (size_t)len);
}

static void test_hash_sends_a_key_to_the_same_target_on_every_worker(void)
{
    static const uint32_t weights[] = {1, 1, 1, 1};
    struct sl_lb_target t[4];
    struct sl_arena a;
    void *shared, *w1, *w2;
    int same = 0;

    sl_arena_init(&a, 4096, 0);
    hash_targets(t, 4, weights);
    shared = sl__lb_hash.build(&a, t, 4);
    CHECK(shared != NULL);
    w1 = state_of(&sl__lb_hash, t, 4, 1);
    w2 = state_of(&sl__lb_hash, t, 4, 99);
    for (unsigned k = 0; k < 1000; k++) {
        uint64_t key = key_of(k);
        int p1 = pick_of(&sl__lb_hash, shared, w1, t, 4, &key);
        int p2 = pick_of(&sl__lb_hash, shared, w2, t, 4, &key);
        int p3 = pick_of(&sl__lb_hash, shared, w1, t, 4, &key);

        same += p1 >= 0 && p1 == p2 && p1 == p3;
    }
    CHECK_EQ_INT(same, 1000);
    free(w1);
    free(w2);
    sl_arena_destroy(&a);
}

static void test_hash_spreads_keys_by_weight(void)
{
    static const uint32_t weights[] = {2, 1, 1};
    struct sl_lb_target t[3];
    struct sl_arena a;
    void *shared, *state;
    int counts[3] = {0}, failed_before = check_failures;

    sl_arena_init(&a, 4096, 0);
    hash_targets(t, 3, weights);
    shared = sl__lb_hash.build(&a, t, 3);
    state = state_of(&sl__lb_hash, t, 3, 1);
    for (unsigned k = 0; k < 40000; k++) {
        uint64_t key = key_of(k);
        int p = pick_of(&sl__lb_hash, shared, state, t, 3, &key);

        if (p >= 0 && p < 3)
            counts[p]++;
    }
    /* Expected 20000 / 10000 / 10000; allow 5% either way. */
    CHECK(counts[0] > 19000 && counts[0] < 21000);
    CHECK(counts[1] > 9500 && counts[1] < 10500);
    CHECK(counts[2] > 9500 && counts[2] < 10500);
    if (check_failures > failed_before)
        fprintf(stderr, "    hash counts: %d %d %d\n", counts[0], counts[1], counts[2]);
    free(state);
    sl_arena_destroy(&a);
}

static void test_hash_moves_only_the_keys_of_a_target_that_fails(void)
{
    static const uint32_t weights[] = {1, 1, 1, 1, 1};
    struct sl_lb_target t[5];
    struct sl_arena a;
    void *shared, *state;
    int before[2000], moved_healthy = 0, onto_failed = 0, none = 0;

    sl_arena_init(&a, 4096, 0);
    hash_targets(t, 5, weights);
    shared = sl__lb_hash.build(&a, t, 5);
    state = state_of(&sl__lb_hash, t, 5, 1);
    for (unsigned k = 0; k < 2000; k++) {
        uint64_t key = key_of(k);

        before[k] = pick_of(&sl__lb_hash, shared, state, t, 5, &key);
    }
    t[2].usable = false;
    for (unsigned k = 0; k < 2000; k++) {
        uint64_t key = key_of(k);
        int p = pick_of(&sl__lb_hash, shared, state, t, 5, &key);

        none += p < 0;
        onto_failed += p == 2;
        moved_healthy += before[k] != 2 && p != before[k];
    }
    CHECK_EQ_INT(none, 0);
    CHECK_EQ_INT(onto_failed, 0);
    CHECK_EQ_INT(moved_healthy, 0);
    for (size_t i = 0; i < 5; i++)
        t[i].usable = false;
    {
        uint64_t key = key_of(1);

        CHECK_EQ_INT(pick_of(&sl__lb_hash, shared, state, t, 5, &key), -1);
    }
    free(state);
    sl_arena_destroy(&a);
}

static void test_p2c_never_picks_an_unusable_target(void)
{
    struct sl_lb_target t[] = {{.weight = 1, .usable = false},
                               {.weight = 1, .usable = true},
                               {.weight = 1, .usable = false},
                               {.weight = 1, .usable = true}};
    void *state = state_of(&sl__lb_p2c, t, 4, 42);
    int bad = 0;

    for (int i = 0; i < 1000; i++) {
        int p = pick_of(&sl__lb_p2c, NULL, state, t, 4, NULL);

        bad += p != 1 && p != 3;
    }
    CHECK_EQ_INT(bad, 0);
    t[3].usable = false;
    CHECK_EQ_INT(pick_of(&sl__lb_p2c, NULL, state, t, 4, NULL), 1);
    t[1].usable = false;
    CHECK_EQ_INT(pick_of(&sl__lb_p2c, NULL, state, t, 4, NULL), -1);
    free(state);
}

static void test_p2c_prefers_the_less_loaded_of_two(void)
{
    struct sl_lb_target t[] = {{.weight = 1, .usable = true, .inflight = 50},
                               {.weight = 1, .usable = true, .inflight = 1},
                               {.weight = 1, .usable = true, .inflight = 10, .ewma_us = 900}};
    void *state = state_of(&sl__lb_p2c, t, 3, 7);
    int counts[3] = {0};

    for (int i = 0; i < 3000; i++) {
        int p = pick_of(&sl__lb_p2c, NULL, state, t, 3, NULL);

        if (p >= 0 && p < 3)
            counts[p]++;
    }
    /* The most loaded loses every comparison it is in; the least loaded
     * wins every one (it is in about two thirds of them). */
    CHECK_EQ_INT(counts[0], 0);
    CHECK(counts[1] > 1800 && counts[1] < 2200);
    CHECK_EQ_INT(counts[0] + counts[1] + counts[2], 3000);
    free(state);
}

int main(void)
{
    RUN(test_round_robin_is_named_as_in_the_config);
    RUN(test_state_is_sized_for_the_targets);
    RUN(test_weights_5_1_1_give_the_smooth_nginx_order);
    RUN(test_weights_5_1_1_stay_exact_and_spread_over_many_cycles);
    RUN(test_weights_3_1_1_over_10000_picks_are_exact);
    RUN(test_equal_weights_take_turns);
    RUN(test_unusable_targets_are_skipped);
    RUN(test_a_target_that_comes_back_gets_its_share_again);
    RUN(test_all_unusable_targets_give_minus_one);
    RUN(test_no_targets_give_minus_one);
    RUN(test_init_resets_the_state);
    RUN(test_balancers_are_found_by_their_config_names);
    RUN(test_least_conn_picks_the_fewest_in_flight_per_unit_of_weight);
    RUN(test_least_conn_spreads_ties_evenly);
    RUN(test_hash_sends_a_key_to_the_same_target_on_every_worker);
    RUN(test_hash_spreads_keys_by_weight);
    RUN(test_hash_moves_only_the_keys_of_a_target_that_fails);
    RUN(test_p2c_never_picks_an_unusable_target);
    RUN(test_p2c_prefers_the_less_loaded_of_two);
    return check_done();
}
