/*
 * The split plugin's choice (plugins/split/pick.c): the weights' shares,
 * stickiness of a key, and which keys a change of weights moves.
 */
#include "pick.h"

#include <stdbool.h>
#include <stdio.h>

#include "check.h"

/* to[] from weights, ends filled in; returns the total. */
static uint64_t lay(struct split_target *to, const uint32_t *w, size_t n)
{
    uint64_t total = 0;

    for (size_t i = 0; i < n; i++) {
        to[i] = (struct split_target){.upstream = (unsigned)i, .weight = w[i]};
        total += w[i];
        to[i].end = total;
    }
    return total;
}

/* The target of the key "user-<i>". */
static size_t pick_user(const struct split_target *to, size_t n, uint64_t total, int i)
{
    char key[32];
    int len = snprintf(key, sizeof(key), "user-%d", i);

    return sl__split_pick(to, n, total, sl__split_hash("app", key, (size_t)len));
}

static void test_the_ends_of_the_line_fall_in_the_first_and_last_ranges(void)
{
    struct split_target to[3];
    uint64_t total = lay(to, (const uint32_t[]){1, 1, 1}, 3);

    CHECK_EQ_UINT(sl__split_pick(to, 3, total, 0), 0);
    CHECK_EQ_UINT(sl__split_pick(to, 3, total, UINT64_MAX), 2);
    CHECK_EQ_UINT(sl__split_pick(to, 3, total, UINT64_MAX / 2), 1);
}

static void test_a_weight_of_zero_is_never_picked(void)
{
    struct split_target to[4];
    uint64_t total = lay(to, (const uint32_t[]){0, 3, 0, 0}, 4);

    for (int i = 0; i < 10000; i++)
        if (!CHECK_EQ_UINT(pick_user(to, 4, total, i), 1))
            break;
    CHECK_EQ_UINT(sl__split_pick(to, 4, total, 0), 1);
    CHECK_EQ_UINT(sl__split_pick(to, 4, total, UINT64_MAX), 1);
}

static void test_keys_and_random_points_take_the_weights_shares(void)
{
    struct split_target to[3];
    uint64_t total = lay(to, (const uint32_t[]){70, 25, 5}, 3);
    int by_key[3] = {0}, by_random[3] = {0};

    for (int i = 0; i < 100000; i++) {
        by_key[pick_user(to, 3, total, i)]++;
        by_random[sl__split_pick(to, 3, total, sl__split_random())]++;
    }
    /* 1% of 100,000 is some 4 to 7 standard deviations here. */
    CHECK(by_key[0] > 69000 && by_key[0] < 71000);
    CHECK(by_key[1] > 24000 && by_key[1] < 26000);
    CHECK(by_key[2] > 4000 && by_key[2] < 6000);
    CHECK(by_random[0] > 69000 && by_random[0] < 71000);
    CHECK(by_random[1] > 24000 && by_random[1] < 26000);
    CHECK(by_random[2] > 4000 && by_random[2] < 6000);
}

static void test_the_hash_is_fixed_so_a_key_keeps_its_place_everywhere(void)
{
    /* A known value: were it to change, every sticky user would move at the
     * next upgrade (and instances of two versions would disagree), so a
     * change must be deliberate. */
    /* 64-bit FNV-1a of "app\0user-1", then MurmurHash3's finaliser
     * (computed apart, in Python). Byte-wise: the same on any machine. */
    CHECK_EQ_UINT(sl__split_hash("app", "user-1", 6), 15494596218861139861ull);
    CHECK_EQ_UINT(sl__split_hash("", "user-1", 6), 10217853023340569229ull);
    CHECK(sl__split_hash("app", "user-1", 6) != sl__split_hash("app", "user-2", 6));
    /* The salt's end is part of it: "ab" + "c" is not "a" + "bc". */
    CHECK(sl__split_hash("ab", "c", 1) != sl__split_hash("a", "bc", 2));
}

static void test_growing_the_canary_moves_users_only_into_it(void)
{
    struct split_target before[2], after[2];
    uint64_t tb = lay(before, (const uint32_t[]){95, 5}, 2);
    uint64_t ta = lay(after, (const uint32_t[]){90, 10}, 2);
    int moved = 0;

    for (int i = 0; i < 100000; i++) {
        size_t b = pick_user(before, 2, tb, i), a = pick_user(after, 2, ta, i);

        if (b == 1)
            CHECK_EQ_UINT(a, 1);
        moved += b != a;
    }
    /* 5% of the users, those between the old and the new boundary. */
    CHECK(moved > 4500 && moved < 5500);
}

static void test_the_same_shares_with_another_total_move_nobody(void)
{
    struct split_target before[3], after[3];
    uint64_t tb = lay(before, (const uint32_t[]){95, 4, 1}, 3);
    uint64_t ta = lay(after, (const uint32_t[]){9500, 400, 100}, 3);

    for (int i = 0; i < 100000; i++)
        if (!CHECK_EQ_UINT(pick_user(before, 3, tb, i), pick_user(after, 3, ta, i)))
            break;
}

static void test_keys_that_differ_in_one_byte_are_spread(void)
{
    struct split_target to[2];
    uint64_t total = lay(to, (const uint32_t[]){50, 50}, 2);
    int second = 0;

    for (int c = 0; c < 256; c++) {
        char key[9] = "abcdefgh";

        key[7] = (char)c;
        second += (int)sl__split_pick(to, 2, total, sl__split_hash("app", key, 8));
    }
    CHECK(second > 96 && second < 160);
}

static void test_each_route_places_its_users_on_its_own(void)
{
    struct split_target to[2];
    uint64_t total = lay(to, (const uint32_t[]){95, 5}, 2);
    int in_a = 0, in_both = 0;

    /* Unsalted, route b's 5% would be exactly route a's. */
    for (int i = 0; i < 100000; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "user-%d", i);
        bool a = sl__split_pick(to, 2, total, sl__split_hash("a", key, (size_t)len)) == 1;
        bool b = sl__split_pick(to, 2, total, sl__split_hash("b", key, (size_t)len)) == 1;

        in_a += a;
        in_both += a && b;
    }
    CHECK(in_a > 4500 && in_a < 5500);
    CHECK(in_both > 150 && in_both < 350); /* 5% of 5%: independent */
}

int main(void)
{
    RUN(test_the_ends_of_the_line_fall_in_the_first_and_last_ranges);
    RUN(test_a_weight_of_zero_is_never_picked);
    RUN(test_keys_and_random_points_take_the_weights_shares);
    RUN(test_the_hash_is_fixed_so_a_key_keeps_its_place_everywhere);
    RUN(test_growing_the_canary_moves_users_only_into_it);
    RUN(test_the_same_shares_with_another_total_move_nobody);
    RUN(test_keys_that_differ_in_one_byte_are_spread);
    RUN(test_each_route_places_its_users_on_its_own);
    return check_done();
}
