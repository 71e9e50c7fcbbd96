/*
 * Unit tests for the cors plugin's origins (cors_origin.c): which entries
 * the config accepts and which Origin values they allow. The phases are
 * exercised end to end by tests/e2e/test_cors.py.
 */
#include "cors.h"

#include "check.h"

static bool refused(const char *text)
{
    struct cors_origin o;
    const char *why = NULL;

    return sl__cors_origin_parse(text, &o, &why) != 0 && why != NULL;
}

/* Whether origin is allowed by the single entry text. */
static bool allows(const char *text, const char *origin)
{
    struct cors_origin o;
    const char *why;

    if (sl__cors_origin_parse(text, &o, &why) != 0)
        return false;
    return sl__cors_origin_allowed(&o, 1, sl_str_from(origin));
}

static void test_well_formed_origins_and_patterns_are_accepted(void)
{
    CHECK(!refused("https://app.example.com"));
    CHECK(!refused("http://localhost:3000"));
    CHECK(!refused("https://[2001:db8::1]:8443"));
    CHECK(!refused("http://192.0.2.7"));
    CHECK(!refused("*.example.org"));
    CHECK(!refused("https://*.example.org"));
    CHECK(!refused("*.example.org:8443"));
}

static void test_paths_slashes_bad_ports_and_stray_wildcards_are_refused(void)
{
    CHECK(refused("https://app.example.com/"));
    CHECK(refused("https://app.example.com/app"));
    CHECK(refused("https://app.example.com?x"));
    CHECK(refused("app.example.com"));
    CHECK(refused("null"));
    CHECK(refused(""));
    CHECK(refused("https://"));
    CHECK(refused("https://app.example.com:"));
    CHECK(refused("https://app.example.com:0"));
    CHECK(refused("https://app.example.com:080"));
    CHECK(refused("https://app.example.com:65536"));
    CHECK(refused("https://app.example.com:443"));
    CHECK(refused("http://app.example.com:80"));
    CHECK(refused("https://a*.example.com"));
    CHECK(refused("https://app.*.example.com"));
    CHECK(refused("*example.org"));
    CHECK(refused("*."));
    CHECK(refused("https://app..example.com"));
    CHECK(refused("https://app example.com"));
    CHECK(refused("1https://app.example.com"));
}

static void test_an_exact_origin_allows_itself_in_any_case_and_nothing_else(void)
{
    CHECK(allows("https://app.example.com", "https://app.example.com"));
    CHECK(allows("https://app.example.com", "HTTPS://App.Example.COM"));
    CHECK(!allows("https://app.example.com", "http://app.example.com"));
    CHECK(!allows("https://app.example.com", "https://app.example.com:8443"));
    CHECK(!allows("https://app.example.com", "https://app.example.com.evil.net"));
    CHECK(!allows("https://app.example.com", "https://app.example.co"));
    CHECK(!allows("https://app.example.com", "null"));
    CHECK(!allows("https://app.example.com", NULL));
}

static void test_a_pattern_allows_subdomains_only_of_https_unless_a_scheme_is_named(void)
{
    CHECK(allows("*.example.org", "https://a.example.org"));
    CHECK(allows("*.example.org", "https://a.b.example.org"));
    CHECK(allows("*.example.org", "HTTPS://A.example.org"));
    CHECK(!allows("*.example.org", "http://a.b.example.org"));
    CHECK(!allows("*.example.org", "ftp://a.example.org"));
    CHECK(!allows("*.example.org", "wss://a.example.org"));
    CHECK(allows("http://*.example.org", "http://a.example.org"));
    CHECK(!allows("http://*.example.org", "https://a.example.org"));
    CHECK(!allows("*.example.org", "https://example.org"));
    CHECK(!allows("*.example.org", "https://evilexample.org"));
    CHECK(!allows("*.example.org", "https://.example.org"));
    CHECK(!allows("*.example.org", "https://a.example.org.evil.net"));
    CHECK(!allows("*.example.org", "https://a.example.org:8443"));
    CHECK(!allows("*.example.org", "https://a.example.org/"));
    CHECK(!allows("*.example.org", "https://a b.example.org"));
    CHECK(!allows("*.example.org", "a.example.org"));
    CHECK(allows("https://*.example.org", "https://a.example.org"));
    CHECK(!allows("https://*.example.org", "http://a.example.org"));
    CHECK(allows("*.example.org:8443", "https://a.example.org:8443"));
    CHECK(!allows("*.example.org:8443", "https://a.example.org"));
}

static bool plaintext(const char *text)
{
    struct cors_origin o;
    const char *why;

    return sl__cors_origin_parse(text, &o, &why) == 0 && sl__cors_origin_plaintext(&o);
}

static void test_plain_http_origins_are_told_apart_loopback_aside(void)
{
    CHECK(plaintext("http://app.example.com"));
    CHECK(plaintext("HTTP://app.example.com:8080"));
    CHECK(plaintext("http://*.example.org"));
    CHECK(plaintext("http://192.0.2.7"));
    CHECK(plaintext("http://127.example.com"));
    CHECK(!plaintext("https://app.example.com"));
    CHECK(!plaintext("*.example.org"));
    CHECK(!plaintext("https://*.example.org"));
    CHECK(!plaintext("http://localhost:3000"));
    CHECK(!plaintext("http://app.localhost"));
    CHECK(!plaintext("http://127.0.0.1:8080"));
    CHECK(!plaintext("http://[::1]:8080"));
}

static void test_methods_and_header_names_must_be_tokens(void)
{
    CHECK(sl__cors_is_token(SL_STR("GET")));
    CHECK(sl__cors_is_token(SL_STR("X-Custom_Header.1")));
    CHECK(!sl__cors_is_token(SL_STR("")));
    CHECK(!sl__cors_is_token(SL_STR("X Custom")));
    CHECK(!sl__cors_is_token(SL_STR("X:Custom")));
    CHECK(!sl__cors_is_token(SL_STR("X-\xc3\xa9")));
    CHECK(!sl__cors_is_token((struct sl_str){"A\0B", 3}));
}

int main(void)
{
    RUN(test_well_formed_origins_and_patterns_are_accepted);
    RUN(test_paths_slashes_bad_ports_and_stray_wildcards_are_refused);
    RUN(test_an_exact_origin_allows_itself_in_any_case_and_nothing_else);
    RUN(test_a_pattern_allows_subdomains_only_of_https_unless_a_scheme_is_named);
    RUN(test_plain_http_origins_are_told_apart_loopback_aside);
    RUN(test_methods_and_header_names_must_be_tokens);
    return check_done();
}
