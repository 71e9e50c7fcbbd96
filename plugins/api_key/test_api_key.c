/*
 * Unit tests for the api_key plugin's key table and key file lines
 * (keys.c). The phase, the YAML and the file's reload are exercised end to
 * end by tests/e2e/test_api_key.py.
 */
#include "api_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/* Whether any 12 bytes of key are left in the n bytes at p. */
static bool holds_part_of(const char *p, size_t n, const char *key)
{
    for (size_t i = 0; i + 12 <= strlen(key); i++)
        if (memmem(p, n, key + i, 12) != NULL)
            return true;
    return false;
}

static void test_a_key_file_is_read_line_by_line_and_its_buffers_are_wiped(void)
{
    static const char k1[] = "key-one-0123456789abcdef", k2[] = "key-two-fedcba9876543210";
    char path[] = "/tmp/sl-test-api-keys-XXXXXX", longline[AK_MAX_LINE + 10];
    const char *why = NULL, *c, *k;
    struct ak_file kf;
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    fprintf(f, "# keys\nalice: %s\n%s\nnul: 0123456789", k1, longline);
    fputc('\0', f);
    fprintf(f, "abcdef-after-nul\n\nbob: %s", k2); /* no final newline */
    fclose(f);

    CHECK_EQ_INT(sl__ak_file_open(&kf, path), 0);
    CHECK_EQ_INT(sl__ak_file_next(&kf, &why), 1);
    CHECK_STREQ(kf.buf, "# keys");
    CHECK_EQ_INT(sl__ak_file_next(&kf, &why), 1);
    CHECK_EQ_INT(sl__ak_parse_line(kf.buf, &c, &k, &why), 1);
    CHECK_STREQ(k, k1);
    CHECK_EQ_INT(kf.line, 2);
    CHECK_EQ_INT(sl__ak_file_next(&kf, &why), -1);
    CHECK_CONTAINS(why, "longer than 4096 bytes");
    CHECK_EQ_INT(sl__ak_file_next(&kf, &why), -1); /* skipped whole, not cut in two */
    CHECK_CONTAINS(why, "NUL byte");
    CHECK_EQ_INT(kf.line, 4);
    CHECK_EQ_INT(sl__ak_file_next(&kf, &why), 1);
    CHECK_STREQ(kf.buf, "");
    CHECK_EQ_INT(sl__ak_file_next(&kf, &why), 1);
    CHECK_EQ_INT(sl__ak_parse_line(kf.buf, &c, &k, &why), 1);
    CHECK_STREQ(k, k2);
    CHECK_EQ_INT(sl__ak_file_next(&kf, &why), 0);
    CHECK_EQ_INT(kf.line, 6);
    /* The keys were in both buffers; once closed, in neither. */
    CHECK(holds_part_of(kf.io, sizeof(kf.io), k2) && holds_part_of(kf.buf, sizeof(kf.buf), k2));
    sl__ak_file_close(&kf);
    CHECK(!holds_part_of(kf.io, sizeof(kf.io), k1) && !holds_part_of(kf.io, sizeof(kf.io), k2));
    CHECK(!holds_part_of(kf.buf, sizeof(kf.buf), k2));
    unlink(path);
    CHECK_EQ_INT(sl__ak_file_open(&kf, path), -1);
}

static void test_a_query_parameter_is_counted_by_its_decoded_name(void)
{
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR(""), "api_key"), 0);
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR("a=1&api_key=x&b"), "api_key"), 1);
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR("api_key=bad&api_key=good"), "api_key"), 2);
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR("api_key=x&api%5Fkey=y&api%5fkey"), "api_key"), 3);
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR("&&api_key&&=api_key&"), "api_key"), 1);
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR("api_keys=1&xapi_key=2&api_ke=3"), "api_key"), 0);
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR("a+b=1&a%20b=2&a%2=3"), "a b"), 2);
    CHECK_EQ_UINT(sl__ak_query_count(SL_STR("key%=1&key%2=2"), "key%2"), 1);
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
    RUN(test_a_key_file_is_read_line_by_line_and_its_buffers_are_wiped);
    RUN(test_a_query_parameter_is_counted_by_its_decoded_name);
    return check_done();
}
