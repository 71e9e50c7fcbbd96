/*
 * Unit tests for gateway/src/router.c: which route a request gets. Routes are
 * built by hand, as config.c would build them from the YAML file.
 */
#include "config/router.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/config.h"

#include "check.h"

#define M(method) (1ull << (method))

/* Routes without an upstream are skipped by the router: give them this one. */
static struct sl_upstream_conf dummy_upstream = {.name = "dummy"};

struct fixture {
    struct sl_arena arena;
    struct sl_route_conf *routes;
    size_t n;
    struct sl_router *router;
};

/* Number the routes, point them at an upstream, compile their regexes, build. */
static void build(struct fixture *f, struct sl_route_conf *routes, size_t n)
{
    sl_arena_init(&f->arena, 4096, 0);
    f->routes = routes;
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        routes[i].index = (uint32_t)i;
        if (routes[i].upstream == NULL)
            routes[i].upstream = &dummy_upstream;
        if (routes[i].path_regex != NULL) {
            int err;
            PCRE2_SIZE off;

            routes[i].regex = pcre2_compile((PCRE2_SPTR)routes[i].path_regex, PCRE2_ZERO_TERMINATED,
                                            0, &err, &off, NULL);
            if (!CHECK(routes[i].regex != NULL))
                abort();
        }
    }
    f->router = sl__router_build(&f->arena, routes, n);
}

static void teardown(struct fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        pcre2_code_free(f->routes[i].regex);
    sl_arena_destroy(&f->arena);
}

/* The request's headers, for the router's header callback. */
struct headers {
    const char *pairs[8][2];
    int asked; /* how many times the router asked */
};

static struct sl_str get_header(void *arg, const char *name)
{
    struct headers *h = arg;

    h->asked++;
    for (int i = 0; i < 8 && h->pairs[i][0] != NULL; i++)
        if (strcasecmp(h->pairs[i][0], name) == 0)
            return sl_str_from(h->pairs[i][1]);
    return SL_STR_NULL;
}

/* The name of the route chosen for the request, or "none". */
static const char *match_with(struct fixture *f, const char *host, const char *path, int method,
                              struct headers *h)
{
    struct headers none = {0};
    struct sl_route_query q = {
        .host = sl_str_from(host ? host : ""),
        .path = sl_str_from(path),
        .method = method,
        .header = get_header,
        .arg = h ? h : &none,
    };
    const struct sl_route_conf *r = sl__router_match(f->router, &q);

    return r ? r->name : "none";
}

static const char *match(struct fixture *f, const char *host, const char *path)
{
    return match_with(f, host, path, HTTP_GET, NULL);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_exact_path_beats_longest_prefix_beats_regex(void)
{
    struct sl_route_conf routes[] = {
        {.name = "regex", .path_regex = "^/v1/.*"},   {.name = "short", .path = "/v1"},
        {.name = "long", .path = "/v1/users"},        {.name = "exact", .path_exact = "/v1/users"},
        {.name = "v2", .path_regex = "^/v2/[0-9]+$"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, NULL, "/v1/users"), "exact");
    CHECK_STREQ(match(&f, NULL, "/v1/users/7"), "long");
    CHECK_STREQ(match(&f, NULL, "/v1/orders"), "short");
    CHECK_STREQ(match(&f, NULL, "/v1"), "short");
    CHECK_STREQ(match(&f, NULL, "/v2/42"), "v2");
    CHECK_STREQ(match(&f, NULL, "/v2/x"), "none");
    teardown(&f);
}

static void test_the_longest_prefix_wins_whatever_the_file_order(void)
{
    struct sl_route_conf routes[] = {
        {.name = "a", .path = "/a"},
        {.name = "abc", .path = "/a/b/c"},
        {.name = "ab", .path = "/a/b/"},
        {.name = "root", .path = "/"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, NULL, "/a/b/c/d"), "abc");
    CHECK_STREQ(match(&f, NULL, "/a/b/c"), "abc");
    CHECK_STREQ(match(&f, NULL, "/a/b/x"), "ab");
    CHECK_STREQ(match(&f, NULL, "/a/b"), "ab");
    CHECK_STREQ(match(&f, NULL, "/a/x"), "a");
    CHECK_STREQ(match(&f, NULL, "/ab"), "root");
    CHECK_STREQ(match(&f, NULL, "/"), "root");
    teardown(&f);
}

static void test_prefix_match_requires_a_segment_boundary(void)
{
    CHECK(sl__path_prefix_match(SL_STR("/v1"), SL_STR("/v1")));
    CHECK(sl__path_prefix_match(SL_STR("/v1/"), SL_STR("/v1")));
    CHECK(sl__path_prefix_match(SL_STR("/v1/x"), SL_STR("/v1")));
    CHECK(!sl__path_prefix_match(SL_STR("/v10"), SL_STR("/v1")));
    CHECK(!sl__path_prefix_match(SL_STR("/v1x/y"), SL_STR("/v1")));
    CHECK(!sl__path_prefix_match(SL_STR("/v"), SL_STR("/v1")));
    CHECK(!sl__path_prefix_match(SL_STR("/"), SL_STR("/v1")));
    /* A trailing slash on the prefix means the same prefix. */
    CHECK(sl__path_prefix_match(SL_STR("/v1"), SL_STR("/v1/")));
    CHECK(sl__path_prefix_match(SL_STR("/v1/x"), SL_STR("/v1/")));
    CHECK(!sl__path_prefix_match(SL_STR("/v10"), SL_STR("/v1/")));
    /* "/" is every path. */
    CHECK(sl__path_prefix_match(SL_STR("/"), SL_STR("/")));
    CHECK(sl__path_prefix_match(SL_STR("/anything/at/all"), SL_STR("/")));
}

static void test_a_prefix_route_does_not_match_inside_a_segment(void)
{
    struct sl_route_conf routes[] = {
        {.name = "v1", .path = "/v1"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, NULL, "/v1/x"), "v1");
    CHECK_STREQ(match(&f, NULL, "/v10"), "none");
    CHECK_STREQ(match(&f, NULL, "/v1.json"), "none");
    teardown(&f);
}

static void test_regex_routes_are_tried_in_file_order(void)
{
    struct sl_route_conf routes[] = {
        {.name = "first", .path_regex = "^/items/[0-9]+"},
        {.name = "second", .path_regex = "^/items/"},
        {.name = "third", .path_regex = "^/items/[0-9]+$"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, NULL, "/items/12"), "first");
    CHECK_STREQ(match(&f, NULL, "/items/abc"), "second");
    CHECK_STREQ(match(&f, NULL, "/other"), "none");
    teardown(&f);
}

static void test_a_route_without_a_path_catches_what_no_path_route_took(void)
{
    struct sl_route_conf routes[] = {
        {.name = "any"},
        {.name = "regex", .path_regex = "^/r/"},
        {.name = "prefix", .path = "/p"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, NULL, "/r/1"), "regex");
    CHECK_STREQ(match(&f, NULL, "/p/1"), "prefix");
    CHECK_STREQ(match(&f, NULL, "/elsewhere"), "any");
    teardown(&f);
}

static void test_a_route_with_host_beats_one_without(void)
{
    struct sl_route_conf routes[] = {
        {.name = "anyhost-exact", .path_exact = "/v1/users"},
        {.name = "api", .host = "api.example.com", .path = "/"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    /* Even a more specific path does not beat a host match. */
    CHECK_STREQ(match(&f, "api.example.com", "/v1/users"), "api");
    CHECK_STREQ(match(&f, "other.example.com", "/v1/users"), "anyhost-exact");
    CHECK_STREQ(match(&f, NULL, "/v1/users"), "anyhost-exact");
    CHECK_STREQ(match(&f, "other.example.com", "/v2"), "none");
    teardown(&f);
}

static void test_an_exact_host_beats_a_wildcard(void)
{
    struct sl_route_conf routes[] = {
        {.name = "wild", .host = "*.example.com", .path = "/"},
        {.name = "exact", .host = "api.example.com", .path = "/"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, "api.example.com", "/x"), "exact");
    CHECK_STREQ(match(&f, "www.example.com", "/x"), "wild");
    CHECK_STREQ(match(&f, "a.b.example.com", "/x"), "wild");
    /* A wildcard needs a label in front of the suffix. */
    CHECK_STREQ(match(&f, "example.com", "/x"), "none");
    CHECK_STREQ(match(&f, "badexample.com", "/x"), "none");
    teardown(&f);
}

static void test_a_longer_wildcard_beats_a_shorter_one(void)
{
    struct sl_route_conf routes[] = {
        {.name = "short", .host = "*.example.com"},
        {.name = "long", .host = "*.api.example.com"},
        {.name = "shortest", .host = "*.com"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, "v1.api.example.com", "/"), "long");
    CHECK_STREQ(match(&f, "api.example.com", "/"), "short");
    CHECK_STREQ(match(&f, "www.example.com", "/"), "short");
    CHECK_STREQ(match(&f, "example.com", "/"), "shortest");
    CHECK_STREQ(match(&f, "example.org", "/"), "none");
    teardown(&f);
}

static void test_each_exact_host_finds_its_own_group(void)
{
    static const char *const hosts[] = {
        "m.example",        "b.example", "z.example", "api.example.co", "api.example.com",
        "api.example.comx", "a",         "aa",        "a.example",
    };
    struct sl_route_conf routes[N(hosts)];
    struct fixture f;

    memset(routes, 0, sizeof(routes));
    for (size_t i = 0; i < N(hosts); i++) {
        routes[i].name = hosts[i];
        routes[i].host = hosts[i];
    }
    build(&f, routes, N(routes));
    for (size_t i = 0; i < N(hosts); i++)
        CHECK_STREQ(match(&f, hosts[i], "/"), hosts[i]);
    CHECK_STREQ(match(&f, "api.example.c", "/"), "none");
    CHECK_STREQ(match(&f, "api.example.comxx", "/"), "none");
    CHECK_STREQ(match(&f, "", "/"), "none");
    teardown(&f);
}

static void test_a_host_group_without_a_matching_path_falls_through(void)
{
    struct sl_route_conf routes[] = {
        {.name = "admin", .host = "api.example.com", .path = "/admin"},
        {.name = "wild-public", .host = "*.example.com", .path = "/public"},
        {.name = "fallback", .path = "/"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match(&f, "api.example.com", "/admin/x"), "admin");
    /* exact host group -> wildcard group */
    CHECK_STREQ(match(&f, "api.example.com", "/public/x"), "wild-public");
    /* exact host group -> wildcard group -> routes without host */
    CHECK_STREQ(match(&f, "api.example.com", "/other"), "fallback");
    CHECK_STREQ(match(&f, "www.example.com", "/admin"), "fallback");
    teardown(&f);
}

static void test_methods_restrict_a_route(void)
{
    struct sl_route_conf routes[] = {
        {.name = "read", .path = "/x", .methods = M(HTTP_GET) | M(HTTP_HEAD)},
        {.name = "write", .path = "/x", .methods = M(HTTP_POST)},
        {.name = "exact-delete", .path_exact = "/x/1", .methods = M(HTTP_DELETE)},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match_with(&f, NULL, "/x", HTTP_GET, NULL), "read");
    CHECK_STREQ(match_with(&f, NULL, "/x", HTTP_HEAD, NULL), "read");
    CHECK_STREQ(match_with(&f, NULL, "/x", HTTP_POST, NULL), "write");
    CHECK_STREQ(match_with(&f, NULL, "/x", HTTP_PUT, NULL), "none");
    /* The exact route refuses GET, so the prefix routes get their turn. */
    CHECK_STREQ(match_with(&f, NULL, "/x/1", HTTP_DELETE, NULL), "exact-delete");
    CHECK_STREQ(match_with(&f, NULL, "/x/1", HTTP_GET, NULL), "read");
    /* A method the bitmask cannot hold never matches a restricted route. */
    CHECK_STREQ(match_with(&f, NULL, "/x", -1, NULL), "none");
    CHECK_STREQ(match_with(&f, NULL, "/x", 64, NULL), "none");
    teardown(&f);
}

static void test_a_route_without_methods_takes_every_method(void)
{
    struct sl_route_conf routes[] = {
        {.name = "all", .path = "/"},
    };
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match_with(&f, NULL, "/", HTTP_GET, NULL), "all");
    CHECK_STREQ(match_with(&f, NULL, "/", HTTP_DELETE, NULL), "all");
    CHECK_STREQ(match_with(&f, NULL, "/", HTTP_PATCH, NULL), "all");
    teardown(&f);
}

static void test_header_conditions_are_read_through_the_query_callback(void)
{
    struct sl_header_match v2[] = {{"X-Api-Version", "2"}};
    struct sl_header_match both[] = {{"X-Api-Version", "3"}, {"X-Tenant", "acme"}};
    struct sl_route_conf routes[] = {
        {.name = "v2", .path = "/api", .headers = v2, .n_headers = 1},
        {.name = "v3-acme", .path = "/api", .headers = both, .n_headers = 2},
        {.name = "plain", .path = "/api"},
    };
    struct headers h2 = {.pairs = {{"x-api-version", "2"}}};
    struct headers h3 = {.pairs = {{"X-Api-Version", "3"}}};
    struct headers h3acme = {.pairs = {{"X-Tenant", "acme"}, {"X-Api-Version", "3"}}};
    struct headers hcase = {.pairs = {{"X-Api-Version", "3"}, {"X-Tenant", "ACME"}}};
    struct headers none = {0};
    struct fixture f;

    build(&f, routes, N(routes));
    CHECK_STREQ(match_with(&f, NULL, "/api", HTTP_GET, &h2), "v2");
    CHECK(h2.asked >= 1);
    CHECK_STREQ(match_with(&f, NULL, "/api", HTTP_GET, &h3), "plain");
    CHECK_STREQ(match_with(&f, NULL, "/api", HTTP_GET, &h3acme), "v3-acme");
    /* Values compare exactly. */
    CHECK_STREQ(match_with(&f, NULL, "/api", HTTP_GET, &hcase), "plain");
    CHECK_STREQ(match_with(&f, NULL, "/api", HTTP_GET, &none), "plain");
    CHECK(none.asked >= 1);
    teardown(&f);
}

static void test_routes_without_an_upstream_are_skipped(void)
{
    struct sl_route_conf routes[] = {
        {.name = "broken", .path = "/x", .index = 0},
        {.name = "good", .path = "/", .index = 1, .upstream = &dummy_upstream},
    };
    struct sl_arena arena;
    struct sl_router *router;
    struct sl_route_query q = {.path = SL_STR("/x"), .method = HTTP_GET, .header = get_header};
    struct headers none = {0};
    const struct sl_route_conf *r;

    q.arg = &none;
    sl_arena_init(&arena, 4096, 0);
    router = sl__router_build(&arena, routes, N(routes));
    r = sl__router_match(router, &q);
    CHECK(r != NULL && strcmp(r->name, "good") == 0);
    sl_arena_destroy(&arena);
}

static void test_an_empty_router_matches_nothing(void)
{
    struct fixture f;

    build(&f, NULL, 0);
    CHECK_STREQ(match(&f, NULL, "/"), "none");
    CHECK_STREQ(match(&f, "api.example.com", "/"), "none");
    teardown(&f);
}

int main(void)
{
    RUN(test_exact_path_beats_longest_prefix_beats_regex);
    RUN(test_the_longest_prefix_wins_whatever_the_file_order);
    RUN(test_prefix_match_requires_a_segment_boundary);
    RUN(test_a_prefix_route_does_not_match_inside_a_segment);
    RUN(test_regex_routes_are_tried_in_file_order);
    RUN(test_a_route_without_a_path_catches_what_no_path_route_took);
    RUN(test_a_route_with_host_beats_one_without);
    RUN(test_an_exact_host_beats_a_wildcard);
    RUN(test_a_longer_wildcard_beats_a_shorter_one);
    RUN(test_each_exact_host_finds_its_own_group);
    RUN(test_a_host_group_without_a_matching_path_falls_through);
    RUN(test_methods_restrict_a_route);
    RUN(test_a_route_without_methods_takes_every_method);
    RUN(test_header_conditions_are_read_through_the_query_callback);
    RUN(test_routes_without_an_upstream_are_skipped);
    RUN(test_an_empty_router_matches_nothing);
    return check_done();
}
