/*
 * Unit tests for the oauth_introspection plugin's exchange (answer.c): what
 * a call sends and what each answer means. The calls themselves, the shared
 * cache and the waiting are exercised end to end by
 * tests/e2e/test_oauth_introspection.py against an HTTPS test IdP.
 */
#include "answer.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

#define NOW 1000000.0

static const struct oi_times times = {.cache_ttl_s = 60, .negative_ttl_s = 10};

static struct oi_outcome answer(int status, const char *body, double *until)
{
    return sl__oi_answer(status, body, strlen(body), NOW, &times, until);
}

static void test_the_form_body_encodes_every_reserved_byte(void)
{
    size_t n;
    char *b = sl__oi_form_body("a+b/c=d&e f~g.h_i-j%", 20, &n);

    CHECK_STREQ(b, "token=a%2Bb%2Fc%3Dd%26e%20f~g.h_i-j%25&token_type_hint=access_token");
    CHECK_EQ_UINT(n, strlen(b));
    free(b);
}

static void test_basic_credentials_are_form_encoded_then_base64(void)
{
    char *h = sl__oi_headers("gw", "s3cr:t");

    /* base64("gw:s3cr%3At") */
    CHECK_CONTAINS(h, "Authorization: Basic Z3c6czNjciUzQXQ=\r\n");
    CHECK_CONTAINS(h, "Content-Type: application/x-www-form-urlencoded\r\n");
    CHECK_CONTAINS(h, "Accept: application/json\r\n");
    free(h);
}

static void test_an_active_answer_is_kept_until_cache_ttl_or_exp(void)
{
    double until;
    struct oi_outcome o = answer(200, "{\"active\":true,\"sub\":\"alice\"}", &until);

    CHECK_EQ_INT(o.kind, OI_ACTIVE);
    CHECK_STREQ(json_string_value(json_object_get(o.claims, "sub")), "alice");
    CHECK(until == NOW + 60);
    sl__oi_outcome_clear(&o);
    o = answer(200, "{\"active\":true,\"exp\":1000005}", &until);
    CHECK_EQ_INT(o.kind, OI_ACTIVE);
    CHECK(until == 1000005.0);
    sl__oi_outcome_clear(&o);
    o = sl__oi_answer(200, "{\"active\":true}", 15, NOW,
                      &(struct oi_times){.cache_ttl_s = 0, .negative_ttl_s = 10}, &until);
    CHECK_EQ_INT(o.kind, OI_ACTIVE);
    CHECK(until == 0);
    sl__oi_outcome_clear(&o);
}

static void test_inactive_and_expired_answers_are_kept_for_negative_ttl(void)
{
    double until;
    struct oi_outcome o = answer(200, "{\"active\":false}", &until);

    CHECK_EQ_INT(o.kind, OI_INACTIVE);
    CHECK_STREQ(o.result, "invalid");
    CHECK(until == NOW + 10);
    o = answer(200, "{\"active\":\"true\"}", &until);
    CHECK_EQ_INT(o.kind, OI_INACTIVE);
    o = answer(200, "{\"sub\":\"alice\"}", &until);
    CHECK_EQ_INT(o.kind, OI_INACTIVE);
    o = answer(200, "{\"active\":true,\"exp\":999999}", &until);
    CHECK_EQ_INT(o.kind, OI_INACTIVE);
    CHECK_STREQ(o.result, "expired");
    CHECK(o.claims == NULL);
    o = answer(200, "{\"active\":true,\"exp\":\"soon\"}", &until);
    CHECK_EQ_INT(o.kind, OI_INACTIVE);
    CHECK_STREQ(o.result, "invalid");
}

static void test_the_leeway_stretches_exp_and_a_refresh_token_is_refused(void)
{
    const struct oi_times lee = {.cache_ttl_s = 60, .negative_ttl_s = 10, .leeway_s = 5};
    const char *late = "{\"active\":true,\"exp\":999998}";
    double until;
    struct oi_outcome o = sl__oi_answer(200, late, strlen(late), NOW, &lee, &until);

    CHECK_EQ_INT(o.kind, OI_ACTIVE);
    CHECK(until == 999998.0 + 5);
    sl__oi_outcome_clear(&o);
    o = answer(200, "{\"active\":true,\"token_type\":\"refresh_token\"}", &until);
    CHECK_EQ_INT(o.kind, OI_INACTIVE);
    CHECK_CONTAINS(o.why, "refresh");
    o = answer(200, "{\"active\":true,\"token_type\":\"Bearer\"}", &until);
    CHECK_EQ_INT(o.kind, OI_ACTIVE);
    sl__oi_outcome_clear(&o);
}

static void test_errors_and_nonsense_fail_and_are_never_kept(void)
{
    static const char *const bodies[] = {"", "[]", "{\"active\":true", "\"active\"",
                                         "{\"active\":true,\"active\":false}"};
    double until = 1;
    struct oi_outcome o = answer(500, "{\"active\":true}", &until);

    CHECK_EQ_INT(o.kind, OI_FAILED);
    CHECK(until == 0);
    o = answer(401, "{\"error\":\"invalid_client\"}", &until);
    CHECK_EQ_INT(o.kind, OI_FAILED);
    CHECK_CONTAINS(o.why, "client_secret");
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        o = answer(200, bodies[i], &until);
        CHECK_EQ_INT(o.kind, OI_FAILED);
        CHECK(until == 0);
    }
}

int main(void)
{
    RUN(test_the_form_body_encodes_every_reserved_byte);
    RUN(test_basic_credentials_are_form_encoded_then_base64);
    RUN(test_an_active_answer_is_kept_until_cache_ttl_or_exp);
    RUN(test_inactive_and_expired_answers_are_kept_for_negative_ttl);
    RUN(test_the_leeway_stretches_exp_and_a_refresh_token_is_refused);
    RUN(test_errors_and_nonsense_fail_and_are_never_kept);
    return check_done();
}
