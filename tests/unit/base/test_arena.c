/*
 * Unit tests for gateway/src/arena.c: the region allocator behind requests
 * and config generations.
 */
#include "sluice/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

static bool aligned(const void *p)
{
    return ((uintptr_t)p % alignof(max_align_t)) == 0;
}

static void test_allocations_are_aligned_for_any_type(void)
{
    struct sl_arena a;
    bool all = true;

    sl_arena_init(&a, 1024, 0);
    for (size_t n = 0; n < 200; n++) {
        void *p = sl_arena_alloc(&a, n % 37);

        if (p == NULL || !aligned(p))
            all = false;
    }
    CHECK(all);
    CHECK(aligned(sl_arena_alloc(&a, 5000)));
    CHECK(aligned(sl_arena_strndup(&a, "abc", 3)));
    CHECK(aligned(sl_arena_alloc(&a, 1)));
    sl_arena_destroy(&a);
}

static void test_allocations_do_not_overlap(void)
{
    struct sl_arena a;
    unsigned char *p[64];
    bool intact = true;

    sl_arena_init(&a, 256, 0);
    for (int i = 0; i < 64; i++) {
        p[i] = sl_arena_alloc(&a, 24);
        memset(p[i], i, 24);
    }
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 24; j++)
            if (p[i][j] != (unsigned char)i)
                intact = false;
    CHECK(intact);
    sl_arena_destroy(&a);
}

static void test_a_large_allocation_is_whole_and_keeps_the_current_chunk(void)
{
    struct sl_arena a;
    char *small1, *big, *small2;

    sl_arena_init(&a, 1024, 0);
    small1 = sl_arena_alloc(&a, 16);
    big = sl_arena_alloc(&a, 100000);
    CHECK(big != NULL);
    memset(big, 0xab, 100000); /* ASan checks every byte is ours */
    CHECK((unsigned char)big[99999] == 0xab);
    /* The large piece did not waste the rest of the regular chunk: the next
     * small piece still comes from it. */
    small2 = sl_arena_alloc(&a, 16);
    CHECK(small2 > small1 && small2 < small1 + 1024);
    sl_arena_destroy(&a);
}

static void test_calloc_zeroes_and_strndup_terminates(void)
{
    struct sl_arena a;
    unsigned char *z;
    char *s;
    bool zero = true;

    sl_arena_init(&a, 0, 0); /* default chunk size */
    memset(sl_arena_alloc(&a, 64), 0xff, 64);
    sl_arena_reset(&a);
    z = sl_arena_calloc(&a, 64);
    for (int i = 0; i < 64; i++)
        if (z[i] != 0)
            zero = false;
    CHECK(zero);
    s = sl_arena_strndup(&a, "hello world", 5);
    CHECK_STREQ(s, "hello");
    s = sl_arena_strdup_str(&a, SL_STR("abc"));
    CHECK_STREQ(s, "abc");
    s = sl_arena_strndup(&a, NULL, 0);
    CHECK_STREQ(s, "");
    sl_arena_destroy(&a);
}

static void test_printf_formats_into_the_arena(void)
{
    struct sl_arena a;
    char longer[3000];
    char *s;

    sl_arena_init(&a, 512, 0);
    CHECK_STREQ(sl_arena_printf(&a, "%s-%d", "route", 7), "route-7");
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    s = sl_arena_printf(&a, "<%s>", longer);
    CHECK(s != NULL && strlen(s) == sizeof(longer) + 1 && s[0] == '<' && s[sizeof(longer)] == '>');
    sl_arena_destroy(&a);
}

static void test_reset_keeps_working_after_many_rounds(void)
{
    struct sl_arena a;
    bool ok = true;

    sl_arena_init(&a, 1024, 0);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 100; i++) {
            char *p = sl_arena_alloc(&a, (size_t)(i * 7 % 300));

            if (p == NULL || !aligned(p))
                ok = false;
            else
                memset(p, round, (size_t)(i * 7 % 300));
        }
        if (round % 5 == 0 && sl_arena_alloc(&a, 8192) == NULL)
            ok = false;
        sl_arena_reset(&a);
        if (a.used > 1024 * 8)
            ok = false;
    }
    CHECK(ok);
    CHECK(sl_arena_alloc(&a, 10) != NULL);
    sl_arena_destroy(&a);
    /* A destroyed arena may be used again. */
    CHECK(sl_arena_alloc(&a, 10) != NULL);
    sl_arena_destroy(&a);
}

static void test_reset_keeps_the_regular_chunk_not_a_large_one(void)
{
    struct sl_arena a;
    char *first, *again;

    sl_arena_init(&a, 1024, 0);
    first = sl_arena_alloc(&a, 16);
    sl_arena_alloc(&a, 1024 * 1024);
    sl_arena_reset(&a);
    /* The next keep-alive request reuses the first, regular chunk; the
     * connection must not hold on to the megabyte its last request took. */
    CHECK_EQ_UINT(a.used, 1024);
    again = sl_arena_alloc(&a, 16);
    CHECK(again == first);
    sl_arena_destroy(&a);
}

static void test_a_capped_arena_returns_null_when_the_cap_is_exceeded(void)
{
    struct sl_arena a;
    size_t got = 0;
    int nulls = 0;

    sl_arena_init(&a, 1024, 4096);
    for (int i = 0; i < 200; i++) {
        if (sl_arena_alloc(&a, 64) == NULL)
            nulls++;
        else
            got += 64;
    }
    CHECK(nulls > 0);
    CHECK(got <= 4096);
    CHECK(got >= 4096 - 1024);
    CHECK(a.used <= 4096);
    CHECK(sl_arena_alloc(&a, 5000) == NULL);
    CHECK(sl_arena_calloc(&a, 5000) == NULL);
    CHECK(sl_arena_strndup(&a, "x", 1) == NULL);
    CHECK(sl_arena_printf(&a, "%s", "x") == NULL);
    /* After a reset the request's memory is available again. */
    sl_arena_reset(&a);
    CHECK(sl_arena_alloc(&a, 64) != NULL);
    sl_arena_destroy(&a);
}

static void test_a_single_allocation_over_the_cap_fails_at_once(void)
{
    struct sl_arena a;

    sl_arena_init(&a, 1024, 8192);
    CHECK(sl_arena_alloc(&a, 8193) == NULL);
    CHECK(sl_arena_alloc(&a, 4000) != NULL);
    CHECK(sl_arena_alloc(&a, 4000) != NULL);
    CHECK(sl_arena_alloc(&a, 4000) == NULL);
    CHECK(a.used <= 8192);
    sl_arena_destroy(&a);
}

static void test_an_impossible_size_fails_instead_of_wrapping(void)
{
    struct sl_arena a;

    sl_arena_init(&a, 1024, 1024 * 1024);
    /* Rounding SIZE_MAX up to the alignment wraps to 0: must not become a tiny piece. */
    CHECK(sl_arena_alloc(&a, SIZE_MAX) == NULL);
    CHECK(sl_arena_alloc(&a, SIZE_MAX - 3) == NULL);
    sl_arena_destroy(&a);
}

int main(void)
{
    RUN(test_allocations_are_aligned_for_any_type);
    RUN(test_allocations_do_not_overlap);
    RUN(test_a_large_allocation_is_whole_and_keeps_the_current_chunk);
    RUN(test_calloc_zeroes_and_strndup_terminates);
    RUN(test_printf_formats_into_the_arena);
    RUN(test_reset_keeps_working_after_many_rounds);
    RUN(test_reset_keeps_the_regular_chunk_not_a_large_one);
    RUN(test_a_capped_arena_returns_null_when_the_cap_is_exceeded);
    RUN(test_a_single_allocation_over_the_cap_fails_at_once);
    RUN(test_an_impossible_size_fails_instead_of_wrapping);
    return check_done();
}
