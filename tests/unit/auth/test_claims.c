/*
 * Unit tests for gateway/src/auth/claims.c: scopes, claim values by dotted
 * path, and claim text. The requests they decide on are exercised end to
 * end by the jwt and oauth_introspection e2e tests.
 */
#include "auth/bearer.h"

#include "check.h"

static json_t *json(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);

    CHECK(j != NULL);
    return j;
}

static void test_scopes_come_from_scope_or_scp(void)
{
    json_t *a = json("{\"scope\":\"users:read  users:write\"}"), *b = json("{\"scp\":[\"x\"]}");

    CHECK(sl__claims_have_scope(a, "users:write"));
    CHECK(!sl__claims_have_scope(a, "users"));
    CHECK(sl__claims_have_scope(b, "x"));
    CHECK(!sl__claims_have_scope(b, "users:read"));
    json_decref(a);
    json_decref(b);
}

static void test_claims_match_by_value_dotted_path_or_any_array_element(void)
{
    json_t *j = json("{\"role\":[\"viewer\",\"editor\"],\"org\":{\"id\":42},\"admin\":true}");
    const char *const roles[] = {"admin", "editor"}, *const org[] = {"42"}, *const t[] = {"true"};
    const char *const wrong[] = {"7"};
    const struct sl_claim_req ok[] = {{"role", roles, 2}, {"org.id", org, 1}, {"admin", t, 1}};
    const struct sl_claim_req bad[] = {{"org.id", wrong, 1}};
    const struct sl_claim_req missing[] = {{"org.name", org, 1}};
    const struct sl_authz a = {NULL, 0, ok, 3}, b = {NULL, 0, bad, 1}, c = {NULL, 0, missing, 1};

    CHECK(sl__claims_grant(j, &a));
    CHECK(!sl__claims_grant(j, &b));
    CHECK(!sl__claims_grant(j, &c));
    json_decref(j);
}

static void test_claim_paths_have_no_empty_names(void)
{
    CHECK(sl__claim_path_ok("sub"));
    CHECK(sl__claim_path_ok("org.id"));
    CHECK(!sl__claim_path_ok(""));
    CHECK(!sl__claim_path_ok(".id"));
    CHECK(!sl__claim_path_ok("org."));
    CHECK(!sl__claim_path_ok("org..id"));
}

static void test_a_flat_claim_with_dots_wins_over_a_path(void)
{
    json_t *j = json("{\"a.b\":\"flat\",\"a\":{\"b\":\"nested\",\"c\":{\"d\":7}}}");
    char buf[8];

    CHECK_STREQ(json_string_value(sl_claim(j, "a.b")), "flat");
    CHECK(sl_claim(j, "a.c.d") != NULL);
    CHECK(sl_claim(j, "a.x") == NULL);
    CHECK(sl_claim(j, "a.b.c") == NULL);
    CHECK_STREQ(sl_claim_text(sl_claim(j, "a.c.d"), buf, sizeof(buf)), "7");
    CHECK(sl_claim_text(sl_claim(j, "a"), buf, sizeof(buf)) == NULL);
    json_decref(j);
}

static void test_claim_text_never_overflows_its_buffer(void)
{
    json_t *big = json_integer(1234567890123LL), *t = json_true();
    char buf[8];

    CHECK(sl_claim_text(big, buf, sizeof(buf)) == NULL);
    CHECK_STREQ(sl_claim_text(t, buf, sizeof(buf)), "true");
    json_decref(big);
    json_decref(t);
}

int main(void)
{
    RUN(test_scopes_come_from_scope_or_scp);
    RUN(test_claims_match_by_value_dotted_path_or_any_array_element);
    RUN(test_claim_paths_have_no_empty_names);
    RUN(test_a_flat_claim_with_dots_wins_over_a_path);
    RUN(test_claim_text_never_overflows_its_buffer);
    return check_done();
}
