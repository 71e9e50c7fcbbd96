/*
 * Unit tests for the api_key plugin's key table and key file lines
 * (keys.c). The phase, the YAML and the file's reload are exercised end to
 * end by tests/e2e/test_api_key.py.
 */
#include "api_key.h"

#include <stdio.h>
#include <stdlib.h>

#include "check.h"

static void digest_of(const char *key, unsigned char d[AK_DIGEST])
{
    sl__ak_digest(key, strlen(key), d);
}

static void test_the_digest_is_sha256(void)
{
    unsigned char d[AK_DIGEST];

    /* SHA-256("abc"), FIPS 180-2 appendix B.1 */
    digest_of("abc", d);
    CHECK_EQ_UINT(d[0], 0xba);
    CHECK_EQ_UINT(d[1], 0x78);
    CHECK_EQ_UINT(d[31], 0xad);
}

static void test_a_table_finds_each_key_it_holds_and_nothing_else(void)
{
    struct ak_slot slots[64] = {0};
    struct ak_table t = {slots, 63};
    unsigned char d[AK_DIGEST];
    char key[32], name[32];
    const char *names[30];

    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "key-number-%04d-xyz", i);
        snprintf(name, sizeof(name), "consumer%d", i);
        names[i] = strdup(name);
        digest_of(key, d);
        CHECK(sl__ak_put(&t, d, names[i]) == NULL);
    }
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "key-number-%04d-xyz", i);
        digest_of(key, d);
        CHECK_STREQ(sl__ak_find(&t, d), names[i]);
    }
    digest_of("key-number-0030-xyz", d);
    CHECK(sl__ak_find(&t, d) == NULL);
    digest_of("key-number-0001-xy", d); /* a prefix of a key is no key */
    CHECK(sl__ak_find(&t, d) == NULL);
    for (int i = 0; i < 30; i++)
        free((char *)names[i]);
}

static void test_a_key_put_twice_names_its_first_consumer(void)
{
    struct ak_slot slots[4] = {0};
    struct ak_table t = {slots, 3};
    unsigned char d[AK_DIGEST];

    digest_of("0123456789abcdef", d);
    CHECK(sl__ak_put(&t, d, "alice") == NULL);
    CHECK_STREQ(sl__ak_put(&t, d, "bob"), "alice");
    CHECK_STREQ(sl__ak_find(&t, d), "alice");
}

static void test_an_empty_table_finds_nothing(void)
{
    struct ak_table t = {NULL, 0};
    unsigned char d[AK_DIGEST];

    digest_of("0123456789abcdef", d);
    CHECK(sl__ak_find(&t, d) == NULL);
}

static int parse(const char *text, const char **consumer, const char **key, const char **why)
{
    static char line[256];

    snprintf(line, sizeof(line), "%s", text);
    *consumer = *key = *why = NULL;
    return sl__ak_parse_line(line, consumer, key, why);
}

static void test_key_file_lines_are_consumer_colon_key_with_comments_and_blanks(void)
{
    const char *c, *k, *why;

    CHECK_EQ_INT(parse("alice: 0123456789abcdef\n", &c, &k, &why), 1);
    CHECK_STREQ(c, "alice");
    CHECK_STREQ(k, "0123456789abcdef");
    CHECK_EQ_INT(parse("  bob:\tk:ey-with-colons-0123 \r\n", &c, &k, &why), 1);
    CHECK_STREQ(c, "bob");
    CHECK_STREQ(k, "k:ey-with-colons-0123");
    CHECK_EQ_INT(parse("\n", &c, &k, &why), 0);
    CHECK_EQ_INT(parse("   \t\r\n", &c, &k, &why), 0);
    CHECK_EQ_INT(parse("# alice: 0123456789abcdef\n", &c, &k, &why), 0);
    CHECK_EQ_INT(parse("  # indented comment\n", &c, &k, &why), 0);
}

static void test_bad_lines_say_why_without_quoting_the_key(void)
{
    const char *c, *k, *why;

    CHECK_EQ_INT(parse("0123456789abcdef-no-consumer\n", &c, &k, &why), -1);
    CHECK_STREQ(why, "expected CONSUMER: KEY");
    CHECK_EQ_INT(parse(": 0123456789abcdef\n", &c, &k, &why), -1);
    CHECK_CONTAINS(why, "consumer name");
    CHECK_EQ_INT(parse("al ice: 0123456789abcdef\n", &c, &k, &why), -1);
    CHECK_CONTAINS(why, "consumer name");
    CHECK_EQ_INT(parse("alice: short\n", &c, &k, &why), -1);
    CHECK_CONTAINS(why, "at least 16");
    CHECK(strstr(why, "short") == NULL);
    CHECK_EQ_INT(parse("alice: 0123456789 abcdef\n", &c, &k, &why), -1);
    CHECK_CONTAINS(why, "no spaces");
    CHECK_EQ_INT(parse("alice:\n", &c, &k, &why), -1);
}

static void test_consumer_names_and_keys_are_checked(void)
{
    char long_key[AK_MAX_KEY + 2];

    CHECK(sl__ak_consumer_problem("alice") == NULL);
    CHECK(sl__ak_consumer_problem("svc.billing-2@acme+eu_1") == NULL);
    CHECK(sl__ak_consumer_problem("") != NULL);
    CHECK(sl__ak_consumer_problem("a\"b") != NULL);
    CHECK(sl__ak_consumer_problem("a\xc3\xa9") != NULL);
    CHECK(sl__ak_key_problem("0123456789abcdef") == NULL);
    CHECK(sl__ak_key_problem("0123456789abcde") != NULL);
    CHECK(sl__ak_key_problem("0123456789abcdef\x7f") != NULL);
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    CHECK(sl__ak_key_problem(long_key) != NULL);
    long_key[AK_MAX_KEY] = '\0';
    CHECK(sl__ak_key_problem(long_key) == NULL);
}

int main(void)
{
    RUN(test_the_digest_is_sha256);
    RUN(test_a_table_finds_each_key_it_holds_and_nothing_else);
    RUN(test_a_key_put_twice_names_its_first_consumer);
    RUN(test_an_empty_table_finds_nothing);
    RUN(test_key_file_lines_are_consumer_colon_key_with_comments_and_blanks);
    RUN(test_bad_lines_say_why_without_quoting_the_key);
    RUN(test_consumer_names_and_keys_are_checked);
    return check_done();
}
