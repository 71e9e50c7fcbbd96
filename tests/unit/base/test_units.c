/*
 * Unit tests for gateway/src/units.c: durations, sizes and rates as written
 * in the YAML file.
 */
#include "base/units.h"

#include <string.h>

#include "check.h"

/* Parse s as a duration; UINT64_MAX stands for "refused". */
static uint64_t duration(const char *s)
{
    uint64_t ms = 12345;

    if (sl__parse_duration(s, strlen(s), &ms) != 0)
        return UINT64_MAX;
    return ms;
}

static uint64_t size(const char *s)
{
    uint64_t bytes = 12345;

    if (sl__parse_size(s, strlen(s), &bytes) != 0)
        return UINT64_MAX;
    return bytes;
}

static void test_durations_take_ms_s_m_h_and_d(void)
{
    CHECK_EQ_UINT(duration("250ms"), 250);
    CHECK_EQ_UINT(duration("5s"), 5000);
    CHECK_EQ_UINT(duration("1m"), 60000);
    CHECK_EQ_UINT(duration("1h"), 3600000);
    CHECK_EQ_UINT(duration("1d"), 86400000);
    CHECK_EQ_UINT(duration("0s"), 0);
}

static void test_duration_parts_add_up(void)
{
    CHECK_EQ_UINT(duration("1m30s"), 90000);
    CHECK_EQ_UINT(duration("1h1m1s1ms"), 3661001);
    CHECK_EQ_UINT(duration("2m500ms"), 120500);
}

static void test_a_bare_zero_is_a_duration(void)
{
    CHECK_EQ_UINT(duration("0"), 0);
}

static void test_a_duration_needs_a_number_and_a_unit(void)
{
    CHECK_EQ_UINT(duration(""), UINT64_MAX);
    CHECK_EQ_UINT(duration("5"), UINT64_MAX);
    CHECK_EQ_UINT(duration("5x"), UINT64_MAX);
    CHECK_EQ_UINT(duration("s"), UINT64_MAX);
    CHECK_EQ_UINT(duration("ms"), UINT64_MAX);
    CHECK_EQ_UINT(duration("1m30"), UINT64_MAX);
    CHECK_EQ_UINT(duration("1.5s"), UINT64_MAX);
    CHECK_EQ_UINT(duration("5 s"), UINT64_MAX);
    CHECK_EQ_UINT(duration(" 5s"), UINT64_MAX);
    CHECK_EQ_UINT(duration("5S"), UINT64_MAX);
}

static void test_a_negative_duration_is_refused(void)
{
    CHECK_EQ_UINT(duration("-1s"), UINT64_MAX);
    CHECK_EQ_UINT(duration("+1s"), UINT64_MAX);
}

static void test_a_duration_that_overflows_is_refused(void)
{
    /* 2^64 does not fit the number itself. */
    CHECK_EQ_UINT(duration("18446744073709551616ms"), UINT64_MAX);
    /* The number fits; times a day it does not. */
    CHECK_EQ_UINT(duration("999999999999999d"), UINT64_MAX);
    /* Each part fits; their sum does not. */
    CHECK_EQ_UINT(duration("18446744073709551615ms1ms"), UINT64_MAX);
    /* The largest value is fine (checked directly: it equals the refusal marker). */
    {
        uint64_t ms = 0;

        CHECK_EQ_INT(sl__parse_duration("18446744073709551615ms", 22, &ms), 0);
        CHECK_EQ_UINT(ms, UINT64_MAX);
    }
}

static void test_a_duration_reads_only_len_bytes(void)
{
    uint64_t ms = 0;

    CHECK_EQ_INT(sl__parse_duration("5sXYZ", 2, &ms), 0);
    CHECK_EQ_UINT(ms, 5000);
}

static void test_sizes_take_binary_multiples_in_either_case(void)
{
    CHECK_EQ_UINT(size("512"), 512);
    CHECK_EQ_UINT(size("16k"), 16384);
    CHECK_EQ_UINT(size("16K"), 16384);
    CHECK_EQ_UINT(size("10m"), 10485760);
    CHECK_EQ_UINT(size("10M"), 10485760);
    CHECK_EQ_UINT(size("1g"), 1073741824);
    CHECK_EQ_UINT(size("0"), 0);
}

static void test_sizes_may_end_in_b_or_ib(void)
{
    CHECK_EQ_UINT(size("16kb"), 16384);
    CHECK_EQ_UINT(size("16KB"), 16384);
    CHECK_EQ_UINT(size("16KiB"), 16384);
    CHECK_EQ_UINT(size("16kib"), 16384);
    CHECK_EQ_UINT(size("2MiB"), 2097152);
    CHECK_EQ_UINT(size("100b"), 100);
}

static void test_a_bad_size_is_refused(void)
{
    CHECK_EQ_UINT(size(""), UINT64_MAX);
    CHECK_EQ_UINT(size("k"), UINT64_MAX);
    CHECK_EQ_UINT(size("16x"), UINT64_MAX);
    CHECK_EQ_UINT(size("16kk"), UINT64_MAX);
    CHECK_EQ_UINT(size("16 k"), UINT64_MAX);
    CHECK_EQ_UINT(size("16kbb"), UINT64_MAX);
    CHECK_EQ_UINT(size("16ib"), UINT64_MAX);
    CHECK_EQ_UINT(size("16bb"), UINT64_MAX);
    CHECK_EQ_UINT(size("-1"), UINT64_MAX);
    CHECK_EQ_UINT(size("1.5k"), UINT64_MAX);
    CHECK_EQ_UINT(size("1t"), UINT64_MAX);
}

static void test_a_size_that_overflows_is_refused(void)
{
    CHECK_EQ_UINT(size("18446744073709551616"), UINT64_MAX);
    /* 2^34 gigabytes is 2^64 bytes. */
    CHECK_EQ_UINT(size("17179869184g"), UINT64_MAX);
    CHECK_EQ_UINT(size("17179869183g"), 17179869183ull << 30);
}

static void test_rates_take_a_count_per_period(void)
{
    static const struct {
        const char *text;
        uint64_t count, period_ms;
    } cases[] = {
        {"100/s", 100, 1000}, {"10/m", 10, 60000},    {"5/h", 5, 3600000},
        {"1/d", 1, 86400000}, {"100 / s", 100, 1000}, {"7/sec", 7, 1000},
        {"3/min", 3, 60000},  {"2/hour", 2, 3600000}, {"1/day", 1, 86400000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t count = 0, period = 0;

        CHECK_EQ_INT(sl__parse_rate(cases[i].text, strlen(cases[i].text), &count, &period), 0);
        CHECK_EQ_UINT(count, cases[i].count);
        CHECK_EQ_UINT(period, cases[i].period_ms);
    }
}

static void test_a_bad_rate_is_refused(void)
{
    static const char *const bad[] = {
        "0/s",
        "10",
        "10/x",
        "",
        "/s",
        "10/",
        "10/ss",
        "-1/s",
        "1.5/s",
        "10/S",
        "10/s ",
        "ten/s",
        " 100/s",
        "+100/s",
        "5000000000/s",
        "1000000001/s",
        "18446744073709551616/s",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t count = 77, period = 77;

        if (!CHECK_EQ_INT(sl__parse_rate(bad[i], strlen(bad[i]), &count, &period), -1))
            fprintf(stderr, "    rate \"%s\" was accepted\n", bad[i]);
        /* A refused rate leaves the outputs alone. */
        CHECK_EQ_UINT(count, 77);
        CHECK_EQ_UINT(period, 77);
    }
}

static void test_a_rate_may_count_up_to_a_billion(void)
{
    uint64_t count = 0, period = 0;

    CHECK_EQ_INT(sl__parse_rate("1000000000/s", 12, &count, &period), 0);
    CHECK_EQ_UINT(count, SL_RATE_MAX);
}

static void test_keys_of_every_source_are_read_as_written(void)
{
    struct sl_key k;

    CHECK_EQ_INT(sl__parse_key("ip", SL_KEYS_ALL, &k), 0);
    CHECK_EQ_INT(k.source, SL_KEY_IP);
    CHECK(k.name == NULL);
    CHECK_EQ_INT(sl__parse_key("route", SL_KEYS_ALL, &k), 0);
    CHECK_EQ_INT(k.source, SL_KEY_ROUTE);
    CHECK_EQ_INT(sl__parse_key("header:X-User", SL_KEYS_ALL, &k), 0);
    CHECK_EQ_INT(k.source, SL_KEY_HEADER);
    CHECK_STREQ(k.name, "X-User");
    CHECK_EQ_INT(sl__parse_key("cookie:sid", SL_KEYS_ALL, &k), 0);
    CHECK_EQ_INT(k.source, SL_KEY_COOKIE);
    CHECK_STREQ(k.name, "sid");
    CHECK_EQ_INT(sl__parse_key("jwt:org.id", SL_KEYS_ALL, &k), 0);
    CHECK_EQ_INT(k.source, SL_KEY_JWT);
    CHECK_STREQ(k.name, "org.id");
    CHECK_STREQ(k.text, "jwt:org.id"); /* the claim's request variable */
}

static void test_a_key_of_a_source_not_allowed_or_without_a_name_is_refused(void)
{
    static const char *const bad[] = {"header:", "jwt:", "cookie:", "IP", "ip ", "", "query:q"};
    struct sl_key k = {SL_KEY_ROUTE, "untouched", "untouched"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(sl__parse_key(bad[i], SL_KEYS_ALL, &k), -1);
    CHECK_EQ_INT(sl__parse_key("route", SL_KEYS_ALL & ~(1u << SL_KEY_ROUTE), &k), -1);
    CHECK_EQ_INT(sl__parse_key("cookie:sid", 1u << SL_KEY_IP, &k), -1);
    CHECK_STREQ(k.name, "untouched");
}

int main(void)
{
    RUN(test_durations_take_ms_s_m_h_and_d);
    RUN(test_duration_parts_add_up);
    RUN(test_a_bare_zero_is_a_duration);
    RUN(test_a_duration_needs_a_number_and_a_unit);
    RUN(test_a_negative_duration_is_refused);
    RUN(test_a_duration_that_overflows_is_refused);
    RUN(test_a_duration_reads_only_len_bytes);
    RUN(test_sizes_take_binary_multiples_in_either_case);
    RUN(test_sizes_may_end_in_b_or_ib);
    RUN(test_a_bad_size_is_refused);
    RUN(test_a_size_that_overflows_is_refused);
    RUN(test_rates_take_a_count_per_period);
    RUN(test_a_bad_rate_is_refused);
    RUN(test_a_rate_may_count_up_to_a_billion);
    RUN(test_keys_of_every_source_are_read_as_written);
    RUN(test_a_key_of_a_source_not_allowed_or_without_a_name_is_refused);
    return check_done();
}
