/*
 * Unit tests for gateway/src/http.c: header classification and validation,
 * comma lists, Host checks and keys, path normalisation.
 */
#include "base/http.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static struct sl_str str(const char *s)
{
    return sl_str_from(s);
}

static void test_hop_by_hop_headers_are_recognised_in_any_case(void)
{
    CHECK(sl__http_is_hop_by_hop(str("Connection")));
    CHECK(sl__http_is_hop_by_hop(str("connection")));
    CHECK(sl__http_is_hop_by_hop(str("KEEP-ALIVE")));
    CHECK(sl__http_is_hop_by_hop(str("Keep-Alive")));
    CHECK(sl__http_is_hop_by_hop(str("TE")));
    CHECK(sl__http_is_hop_by_hop(str("te")));
    CHECK(sl__http_is_hop_by_hop(str("Transfer-Encoding")));
    CHECK(sl__http_is_hop_by_hop(str("Upgrade")));
    CHECK(sl__http_is_hop_by_hop(str("Proxy-Connection")));
}

static void test_end_to_end_headers_are_not_hop_by_hop(void)
{
    CHECK(!sl__http_is_hop_by_hop(str("Content-Length")));
    CHECK(!sl__http_is_hop_by_hop(str("Host")));
    CHECK(!sl__http_is_hop_by_hop(str("traceparent")));
    CHECK(!sl__http_is_hop_by_hop(str("X-Connection")));
    CHECK(!sl__http_is_hop_by_hop(str("Connectio")));
    CHECK(!sl__http_is_hop_by_hop(str("Tf")));
    CHECK(!sl__http_is_hop_by_hop(str("")));
}

struct collected {
    char items[8][32];
    int n;
    int stop_after; /* stop when this many were seen; 0 = never */
};

static bool collect(struct sl_str tok, void *arg)
{
    struct collected *c = arg;

    if (c->n < 8) {
        snprintf(c->items[c->n], sizeof(c->items[0]), "%.*s", (int)tok.len, tok.p);
        c->n++;
    }
    return c->stop_after != 0 && c->n == c->stop_after;
}

static void test_list_tokens_are_trimmed_and_empty_elements_skipped(void)
{
    struct collected c = {0};

    CHECK(!sl__http_tokens(str(" a ,b,\t c\t, ,,d e ,"), collect, &c));
    CHECK_EQ_INT(c.n, 4);
    CHECK_STREQ(c.items[0], "a");
    CHECK_STREQ(c.items[1], "b");
    CHECK_STREQ(c.items[2], "c");
    CHECK_STREQ(c.items[3], "d e");
}

static void test_an_empty_list_has_no_tokens(void)
{
    struct collected c = {0};

    CHECK(!sl__http_tokens(str(""), collect, &c));
    CHECK(!sl__http_tokens(str(" , ,\t,"), collect, &c));
    CHECK_EQ_INT(c.n, 0);
}

static void test_list_walk_stops_when_the_callback_says_so(void)
{
    struct collected c = {.stop_after = 2};

    CHECK(sl__http_tokens(str("a, b, c"), collect, &c));
    CHECK_EQ_INT(c.n, 2);
}

static void test_list_has_finds_a_token_in_any_case(void)
{
    CHECK(sl__http_list_has(str("keep-alive, Upgrade"), "upgrade"));
    CHECK(sl__http_list_has(str("close"), "close"));
    CHECK(sl__http_list_has(str(" ,CLOSE , "), "close"));
    CHECK(sl__http_list_has(str("gzip,chunked"), "chunked"));
    CHECK(!sl__http_list_has(str("keep-alive, Upgraded"), "upgrade"));
    CHECK(!sl__http_list_has(str("xclose"), "close"));
    CHECK(!sl__http_list_has(str(""), "close"));
    CHECK(!sl__http_list_has(str("clo se"), "close"));
}

static void test_header_names_are_tokens(void)
{
    CHECK(sl__http_valid_name(str("Content-Type")));
    CHECK(sl__http_valid_name(str("X-Api-Version")));
    CHECK(sl__http_valid_name(str("a!#$%&'*+-.^_`|~9")));
    CHECK(!sl__http_valid_name(str("")));
    CHECK(!sl__http_valid_name(str("Bad Name")));
    CHECK(!sl__http_valid_name(str("Name:")));
    CHECK(!sl__http_valid_name(str("Na\"me")));
    CHECK(!sl__http_valid_name(str("(x)")));
    CHECK(!sl__http_valid_name(str("x\xc3\xa9")));
    CHECK(!sl__http_valid_name((struct sl_str){"a\0b", 3}));
}

static void test_header_values_refuse_nul_cr_lf_and_del(void)
{
    CHECK(!sl__http_valid_value((struct sl_str){"a\0b", 3}));
    CHECK(!sl__http_valid_value(str("a\rb")));
    CHECK(!sl__http_valid_value(str("a\nb")));
    CHECK(!sl__http_valid_value(str("a\x7f")));
    CHECK(!sl__http_valid_value(str("\x01")));
    CHECK(!sl__http_valid_value(str("x\x1f")));
}

static void test_header_values_accept_htab_and_obs_text(void)
{
    CHECK(sl__http_valid_value(str("")));
    CHECK(sl__http_valid_value(str("text/html; q=0.9")));
    CHECK(sl__http_valid_value(str("a\tb")));
    CHECK(sl__http_valid_value(str("caf\xc3\xa9")));
    CHECK(sl__http_valid_value(str("\x80\xff")));
    CHECK(sl__http_valid_value(str("~ !\"#")));
}

static void test_host_accepts_names_ipv4_and_bracketed_ipv6_with_ports(void)
{
    CHECK(sl__http_valid_host(str("example.com")));
    CHECK(sl__http_valid_host(str("api.example.com:8080")));
    CHECK(sl__http_valid_host(str("localhost")));
    CHECK(sl__http_valid_host(str("my_host-1")));
    CHECK(sl__http_valid_host(str("127.0.0.1")));
    CHECK(sl__http_valid_host(str("127.0.0.1:80")));
    CHECK(sl__http_valid_host(str("[::1]")));
    CHECK(sl__http_valid_host(str("[::1]:8443")));
    CHECK(sl__http_valid_host(str("[2001:db8::a:B]:1")));
    CHECK(sl__http_valid_host(str("[::ffff:127.0.0.1]")));
    CHECK(sl__http_valid_host(str("example.com.")));
}

static void test_host_refuses_bad_names_and_ports(void)
{
    static const char *const bad[] = {
        "",
        ":80",
        "exa mple.com",
        "a/b",
        "a@b",
        "host:",
        "host:abc",
        "host:123456",
        "a:b:c",
        "[::1",
        "[]",
        "[::g]",
        "[::1]x",
        "[::1]:",
        "[::1]:8x",
        "::1",
        "host:-1",
        "a\tb",
        "caf\xc3\xa9.com",
    };
    char long_host[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!CHECK(!sl__http_valid_host(str(bad[i]))))
            fprintf(stderr, "    host \"%s\" was accepted\n", bad[i]);
    memset(long_host, 'a', sizeof(long_host) - 1);
    long_host[sizeof(long_host) - 1] = '\0';
    CHECK(!sl__http_valid_host(str(long_host)));
}

static void test_host_key_lowercases_and_drops_the_port_and_trailing_dot(void)
{
    char out[64];

    CHECK_STREQ(sl__http_host_key(str("Example.COM"), out).p, "example.com");
    CHECK_STREQ(sl__http_host_key(str("Example.COM:8080"), out).p, "example.com");
    CHECK_STREQ(sl__http_host_key(str("example.com."), out).p, "example.com");
    CHECK_STREQ(sl__http_host_key(str("EXAMPLE.com.:443"), out).p, "example.com");
    CHECK_EQ_UINT(sl__http_host_key(str("API.example.com:80"), out).len, 15);
    CHECK_STREQ(sl__http_host_key(str("10.0.0.1:80"), out).p, "10.0.0.1");
    CHECK_STREQ(sl__http_host_key(str(""), out).p, "");
}

static void test_host_key_keeps_an_ipv6_literal_in_brackets(void)
{
    char out[64];

    CHECK_STREQ(sl__http_host_key(str("[::1]:8080"), out).p, "[::1]");
    CHECK_STREQ(sl__http_host_key(str("[::1]"), out).p, "[::1]");
    CHECK_STREQ(sl__http_host_key(str("[2001:DB8::A]:443"), out).p, "[2001:db8::a]");
}

/* Normalise in; NULL when refused. The result is static. */
static const char *norm(const char *in)
{
    static char out[256];
    size_t len = strlen(in);
    char *buf = malloc(len + 1); /* exactly the room promised, so ASan sees overruns */
    long n = sl__http_normalize_path(in, len, buf);

    if (n < 0) {
        free(buf);
        return NULL;
    }
    if ((size_t)n > len || buf[n] != '\0' || strlen(buf) != (size_t)n) {
        free(buf);
        return "(bad length or terminator)";
    }
    memcpy(out, buf, (size_t)n + 1);
    free(buf);
    return out;
}

static void test_normalize_removes_dot_segments(void)
{
    CHECK_STREQ(norm("/a/b/../c"), "/a/c");
    CHECK_STREQ(norm("/a/./b"), "/a/b");
    CHECK_STREQ(norm("/a/b/.."), "/a/");
    CHECK_STREQ(norm("/a/b/."), "/a/b/");
    CHECK_STREQ(norm("/a/.."), "/");
    CHECK_STREQ(norm("/a/../b"), "/b");
    CHECK_STREQ(norm("/./a"), "/a");
    CHECK_STREQ(norm("/."), "/");
    CHECK_STREQ(norm("/a/b/c/./../../g"), "/a/g");
    CHECK_STREQ(norm("/mid/content=5/../6"), "/mid/6");
    CHECK_STREQ(norm("/a//.."), "/a/");
}

static void test_normalize_leaves_plain_paths_alone(void)
{
    CHECK_STREQ(norm("/"), "/");
    CHECK_STREQ(norm("/a/b/c"), "/a/b/c");
    CHECK_STREQ(norm("/a/b/"), "/a/b/");
    CHECK_STREQ(norm("/a//b"), "/a//b");
    CHECK_STREQ(norm("/..."), "/...");
    CHECK_STREQ(norm("/a/.../b"), "/a/.../b");
    CHECK_STREQ(norm("/.a/..b/c."), "/.a/..b/c.");
    CHECK_STREQ(norm("/a%2fb"), "/a%2fb");
    CHECK_STREQ(norm("/%2e%2e%2e"), "/%2e%2e%2e");
}

static void test_normalize_decodes_percent_encoded_dots(void)
{
    CHECK_STREQ(norm("/a/%2E/b"), "/a/b");
    CHECK_STREQ(norm("/a/%2e/b"), "/a/b");
    CHECK_STREQ(norm("/a/b/%2e%2E/c"), "/a/c");
    CHECK_STREQ(norm("/a/b/.%2e/c"), "/a/c");
    CHECK_STREQ(norm("/a/b/%2e./c"), "/a/c");
    CHECK_STREQ(norm("/a/%2"), "/a/%2");
}

static void test_normalize_refuses_climbing_above_the_root(void)
{
    CHECK(norm("/..") == NULL);
    CHECK(norm("/../a") == NULL);
    CHECK(norm("/%2e%2e/x") == NULL);
    CHECK(norm("/%2E%2E") == NULL);
    CHECK(norm("/a/../..") == NULL);
    CHECK(norm("/./..") == NULL);
}

static void test_normalize_refuses_a_path_without_a_leading_slash(void)
{
    char out[8];

    CHECK(norm("") == NULL);
    CHECK(norm("a/b") == NULL);
    CHECK(norm("*") == NULL);
    CHECK_EQ_INT(sl__http_normalize_path("", 0, out), -1);
}

static void test_reason_phrases_cover_the_gateway_statuses(void)
{
    CHECK_STREQ(sl__http_reason(200), "OK");
    CHECK_STREQ(sl__http_reason(404), "Not Found");
    CHECK_STREQ(sl__http_reason(429), "Too Many Requests");
    CHECK_STREQ(sl__http_reason(502), "Bad Gateway");
    CHECK_STREQ(sl__http_reason(504), "Gateway Timeout");
    CHECK_STREQ(sl__http_reason(799), "Unknown");
}

int main(void)
{
    RUN(test_hop_by_hop_headers_are_recognised_in_any_case);
    RUN(test_end_to_end_headers_are_not_hop_by_hop);
    RUN(test_list_tokens_are_trimmed_and_empty_elements_skipped);
    RUN(test_an_empty_list_has_no_tokens);
    RUN(test_list_walk_stops_when_the_callback_says_so);
    RUN(test_list_has_finds_a_token_in_any_case);
    RUN(test_header_names_are_tokens);
    RUN(test_header_values_refuse_nul_cr_lf_and_del);
    RUN(test_header_values_accept_htab_and_obs_text);
    RUN(test_host_accepts_names_ipv4_and_bracketed_ipv6_with_ports);
    RUN(test_host_refuses_bad_names_and_ports);
    RUN(test_host_key_lowercases_and_drops_the_port_and_trailing_dot);
    RUN(test_host_key_keeps_an_ipv6_literal_in_brackets);
    RUN(test_normalize_removes_dot_segments);
    RUN(test_normalize_leaves_plain_paths_alone);
    RUN(test_normalize_decodes_percent_encoded_dots);
    RUN(test_normalize_refuses_climbing_above_the_root);
    RUN(test_normalize_refuses_a_path_without_a_leading_slash);
    RUN(test_reason_phrases_cover_the_gateway_statuses);
    return check_done();
}
