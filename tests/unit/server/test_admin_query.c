/*
 * Unit tests for admin query strings (gateway/src/server/admin_query.c):
 * only the parameters an endpoint accepts, each once, percent-decoded.
 */
#include "server/admin_query.h"

#include <string.h>

#include "check.h"

static const char *const reload[] = {"dry_run", NULL};

static enum sl_query_result parse(struct sl_query *q, const char *s, const char *const *accepted)
{
    return sl__query_parse(q, s, strlen(s), accepted);
}

static void test_an_empty_query_is_accepted_by_every_endpoint(void)
{
    static struct sl_query q;

    CHECK_EQ_INT(parse(&q, "", NULL), SL_QUERY_OK);
    CHECK_EQ_INT(parse(&q, "&&", NULL), SL_QUERY_OK);
    CHECK(sl__query_get(&q, "dry_run") == NULL);
}

static void test_an_accepted_parameter_is_kept_with_its_value(void)
{
    static struct sl_query q;

    CHECK_EQ_INT(parse(&q, "dry_run=1", reload), SL_QUERY_OK);
    CHECK_STREQ(sl__query_get(&q, "dry_run"), "1");
    CHECK_EQ_INT(parse(&q, "dry_run", reload), SL_QUERY_OK);
    CHECK_STREQ(sl__query_get(&q, "dry_run"), "");
}

static void test_names_and_values_are_percent_decoded(void)
{
    static struct sl_query q;

    CHECK_EQ_INT(parse(&q, "dry%5frun=tru%65", reload), SL_QUERY_OK);
    CHECK_STREQ(sl__query_get(&q, "dry_run"), "true");
    CHECK_EQ_INT(parse(&q, "dry_run=a+b%2", reload), SL_QUERY_OK);
    CHECK_STREQ(sl__query_get(&q, "dry_run"), "a b%2");
}

static void test_an_unknown_parameter_is_named(void)
{
    static struct sl_query q;

    CHECK_EQ_INT(parse(&q, "x=1", NULL), SL_QUERY_UNKNOWN);
    CHECK_STREQ(q.bad, "x");
    CHECK_EQ_INT(parse(&q, "dry_run=1&dryrun=1", reload), SL_QUERY_UNKNOWN);
    CHECK_STREQ(q.bad, "dryrun");
    CHECK_EQ_INT(parse(&q, "DRY_RUN=1", reload), SL_QUERY_UNKNOWN);
}

static void test_a_parameter_given_twice_is_refused(void)
{
    static struct sl_query q;

    CHECK_EQ_INT(parse(&q, "dry_run=1&dry_run=1", reload), SL_QUERY_TWICE);
    CHECK_STREQ(q.bad, "dry_run");
}

static void test_a_query_longer_than_any_admin_url_is_refused(void)
{
    static struct sl_query q;
    static char s[SL_QUERY_LEN + 2];

    memset(s, 'a', sizeof(s) - 1);
    CHECK_EQ_INT(sl__query_parse(&q, s, sizeof(s) - 1, reload), SL_QUERY_UNKNOWN);
    memcpy(s, "dry_run=", 8);
    CHECK_EQ_INT(sl__query_parse(&q, s, SL_QUERY_LEN, reload), SL_QUERY_OK);
    CHECK_EQ_UINT(strlen(sl__query_get(&q, "dry_run")), SL_QUERY_LEN - 8);
}

/* "%00" would cut a name short ("dry_run%00junk" read as dry_run), and a
 * control character has no business in a parameter: the part is refused,
 * named as it was written. */
static void test_a_part_that_decodes_to_nul_or_a_control_character_is_refused(void)
{
    static struct sl_query q;
    static const char *const bad[] = {"dry_run%00junk=1", "dry_run=1%00", "dry_run=%0a",
                                      "dry%0d_run=1",     "dry_run=%7F",  "dry_run=%09",
                                      "dry_run=1&x%00=1", "%00",          "dry_run=%1b[2J"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ_INT(parse(&q, bad[i], reload), SL_QUERY_CONTROL);
        CHECK_STREQ(q.bad, strchr(bad[i], '&') ? strchr(bad[i], '&') + 1 : bad[i]);
    }
    CHECK_EQ_INT(parse(&q, "dry_run=%c3%a9", reload), SL_QUERY_OK);
    CHECK_STREQ(sl__query_get(&q, "dry_run"), "\xc3\xa9");
}

int main(void)
{
    RUN(test_an_empty_query_is_accepted_by_every_endpoint);
    RUN(test_an_accepted_parameter_is_kept_with_its_value);
    RUN(test_names_and_values_are_percent_decoded);
    RUN(test_an_unknown_parameter_is_named);
    RUN(test_a_parameter_given_twice_is_refused);
    RUN(test_a_query_longer_than_any_admin_url_is_refused);
    RUN(test_a_part_that_decodes_to_nul_or_a_control_character_is_refused);
    return check_done();
}
