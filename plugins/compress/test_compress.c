/*
 * Unit tests for the compress plugin's pure parts: the Accept-Encoding
 * parser and choice (negotiate.c, RFC 9110 12.5.3), media types, field
 * lists, and the streams (codec.c: gzip round trips through zlib's
 * inflate; brotli output is decoded end to end by
 * tests/e2e/test_compress.py).
 */
#include "codec.h"
#include "negotiate.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "check.h"
#include "sluice/req.h"

static const enum cz_coding br_first[] = {CZ_BR, CZ_GZIP};
static const enum cz_coding gzip_first[] = {CZ_GZIP, CZ_BR};
static const enum cz_coding gzip_only[] = {CZ_GZIP};

static struct cz_accept parse(const char *v)
{
    struct cz_accept a;

    sl__cz_accept_parse(sl_str_from(v), &a);
    return a;
}

static enum cz_coding choose(const char *v, const enum cz_coding *order, size_t n)
{
    struct cz_accept a = parse(v);

    return sl__cz_accept_choose(&a, order, n);
}

#define BR_FIRST(v)   choose(v, br_first, 2)
#define GZIP_FIRST(v) choose(v, gzip_first, 2)

static void test_weights_are_read_in_thousandths_and_unnamed_codings_are_minus_one(void)
{
    struct cz_accept a = parse("gzip;q=0.8, br;q=1, identity;q=0.001, *;q=0");

    CHECK_EQ_INT(a.q[CZ_GZIP], 800);
    CHECK_EQ_INT(a.q[CZ_BR], 1000);
    CHECK_EQ_INT(a.identity, 1);
    CHECK_EQ_INT(a.star, 0);
    a = parse("deflate, compress");
    CHECK_EQ_INT(a.q[CZ_GZIP], -1);
    CHECK_EQ_INT(a.q[CZ_BR], -1);
    CHECK_EQ_INT(a.identity, -1);
    CHECK_EQ_INT(a.star, -1);
    CHECK_EQ_INT(parse("gzip").q[CZ_GZIP], 1000);
    CHECK_EQ_INT(parse("gzip;q=0.5").q[CZ_GZIP], 500);
    CHECK_EQ_INT(parse("gzip;q=0.05").q[CZ_GZIP], 50);
    CHECK_EQ_INT(parse("gzip;q=1.000").q[CZ_GZIP], 1000);
    CHECK_EQ_INT(parse("gzip;q=0.").q[CZ_GZIP], 0);
}

static void test_the_highest_weight_wins_and_ties_go_to_the_configured_order(void)
{
    CHECK_EQ_INT(BR_FIRST("gzip, br"), CZ_BR);
    CHECK_EQ_INT(GZIP_FIRST("gzip, br"), CZ_GZIP);
    CHECK_EQ_INT(GZIP_FIRST("br, gzip"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("gzip;q=1, br;q=0.5"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("br;q=1, gzip;q=0.8, *;q=0"), CZ_BR);
    CHECK_EQ_INT(GZIP_FIRST("br;q=0.9, gzip;q=0.8"), CZ_BR);
    CHECK_EQ_INT(BR_FIRST("gzip;q=0.001"), CZ_GZIP);
    CHECK_EQ_INT(choose("br, gzip", gzip_only, 1), CZ_GZIP);
    CHECK_EQ_INT(choose("br", gzip_only, 1), CZ_IDENTITY);
}

static void test_q_zero_means_not_acceptable(void)
{
    CHECK_EQ_INT(BR_FIRST("br;q=0, gzip"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("br;q=0"), CZ_IDENTITY);
    CHECK_EQ_INT(BR_FIRST("gzip;q=0, br;q=0"), CZ_IDENTITY);
    CHECK_EQ_INT(BR_FIRST("br;q=0.000, gzip;q=0.0"), CZ_IDENTITY);
}

static void test_the_star_covers_the_codings_not_named(void)
{
    CHECK_EQ_INT(BR_FIRST("*"), CZ_BR);
    CHECK_EQ_INT(GZIP_FIRST("*"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("*;q=0"), CZ_IDENTITY);
    CHECK_EQ_INT(BR_FIRST("br;q=0, *"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("gzip, *;q=0"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("gzip;q=0.5, *;q=0.6"), CZ_BR);
    CHECK_EQ_INT(BR_FIRST("*;q=0.5, br;q=0"), CZ_GZIP);
}

static void test_identity_wins_only_when_named_with_a_higher_weight(void)
{
    CHECK_EQ_INT(BR_FIRST("identity"), CZ_IDENTITY);
    CHECK_EQ_INT(BR_FIRST(""), CZ_IDENTITY);
    CHECK_EQ_INT(BR_FIRST("identity, gzip;q=0.5"), CZ_IDENTITY);
    CHECK_EQ_INT(BR_FIRST("identity;q=0.5, gzip;q=0.5"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("gzip;q=0.5"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("identity;q=0, gzip"), CZ_GZIP);
}

static void test_names_ignore_case_and_x_gzip_is_gzip(void)
{
    CHECK_EQ_INT(BR_FIRST("GZIP"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("Br;Q=0.5, gZip;q=0.4"), CZ_BR);
    CHECK_EQ_INT(BR_FIRST("x-gzip"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("IDENTITY"), CZ_IDENTITY);
}

static void test_whitespace_and_empty_elements_are_tolerated(void)
{
    CHECK_EQ_INT(BR_FIRST("  gzip ;  q=0.5 ,\tbr ; q=0.4  "), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST(",,, gzip ,,"), CZ_GZIP);
    CHECK_EQ_INT(BR_FIRST("gzip;level=9"), CZ_GZIP); /* unknown parameters are ignored */
    CHECK_EQ_INT(parse("gzip; q = 0.7").q[CZ_GZIP], 700);
}

static void test_a_malformed_weight_drops_its_element_only(void)
{
    static const char *const bad[] = {"gzip;q=2",  "gzip;q=1.5",  "gzip;q=1.001", "gzip;q=0.1234",
                                      "gzip;q=",   "gzip;q=abc",  "gzip;q=-1",    "gzip;q=.5",
                                      "gzip;q",    "gzip;;q=0.5", "gzip q=0.5",   "gzip;=0.5",
                                      "gzip;q=0,5"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cz_accept a = parse(bad[i]);

        if (strcmp(bad[i], "gzip;q=0,5") == 0) /* "gzip;q=0" and "5": a valid zero */
            CHECK_EQ_INT(a.q[CZ_GZIP], 0);
        else if (!CHECK_EQ_INT(a.q[CZ_GZIP], -1))
            fprintf(stderr, "  for \"%s\"\n", bad[i]);
    }
    CHECK_EQ_INT(BR_FIRST("gzip;q=2, br"), CZ_BR);
    CHECK_EQ_INT(choose("gzip;q=2", gzip_only, 1), CZ_IDENTITY);
}

static void test_the_first_element_naming_a_coding_counts(void)
{
    CHECK_EQ_INT(parse("gzip;q=0, gzip").q[CZ_GZIP], 0);
    CHECK_EQ_INT(parse("gzip;q=0.3, x-gzip;q=0.9").q[CZ_GZIP], 300);
    CHECK_EQ_INT(parse("gzip;q=bad, gzip;q=0.2").q[CZ_GZIP], 200);
}

static void test_media_types_match_ignoring_parameters_and_case(void)
{
    static const char *const types[] = {"text/*", "application/json", "image/svg+xml"};
    static const char *const all[] = {"*/*"};

#define MATCH(ct) sl__cz_type_match(sl_str_from(ct), types, 3)
    CHECK(MATCH("text/html"));
    CHECK(MATCH("text/html; charset=utf-8"));
    CHECK(MATCH("TEXT/Plain"));
    CHECK(MATCH("application/json"));
    CHECK(MATCH("  application/json ;charset=UTF-8"));
    CHECK(MATCH("Application/JSON"));
    CHECK(MATCH("image/svg+xml"));
    CHECK(!MATCH("application/jsonp"));
    CHECK(!MATCH("application/json2; x=1"));
    CHECK(!MATCH("image/png"));
    CHECK(!MATCH("text/"));
    CHECK(!MATCH("text"));
    CHECK(!MATCH("textual/html"));
    CHECK(!MATCH(""));
    CHECK(!sl__cz_type_match(SL_STR_NULL, types, 3));
#undef MATCH
    CHECK(sl__cz_type_match(sl_str_from("image/png"), all, 1));
    CHECK(!sl__cz_type_match(sl_str_from("nonsense"), all, 1));
}

static void test_configured_media_types_are_checked_and_lowered(void)
{
    static const char *const good[] = {"text/html", "Text/*", "*/*", "image/svg+xml",
                                       "application/vnd.api+json"};
    static const char *const bad[] = {"text",
                                      "/json",
                                      "text/",
                                      "*/json",
                                      "text/ht*",
                                      "te*t/html",
                                      "text/html; charset=utf-8",
                                      "text /html",
                                      ""};
    char t[64];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(t, sizeof(t), "%s", good[i]);
        CHECK(sl__cz_type_check(t) == NULL);
    }
    snprintf(t, sizeof(t), "Text/HTML");
    sl__cz_type_check(t);
    CHECK_STREQ(t, "text/html");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(t, sizeof(t), "%s", bad[i]);
        if (!CHECK(sl__cz_type_check(t) != NULL))
            fprintf(stderr, "  for \"%s\"\n", bad[i]);
    }
}

static void test_field_lists_are_searched_by_element(void)
{
    CHECK(sl__cz_list_has(sl_str_from("no-transform"), "no-transform"));
    CHECK(sl__cz_list_has(sl_str_from("max-age=60, No-Transform"), "no-transform"));
    CHECK(sl__cz_list_has(sl_str_from("public,no-transform,max-age=0"), "no-transform"));
    CHECK(!sl__cz_list_has(sl_str_from("no-transformation"), "no-transform"));
    CHECK(!sl__cz_list_has(sl_str_from("private=\"no-transform\""), "no-transform"));
    CHECK(sl__cz_list_has(sl_str_from("Origin, Accept-Encoding"), "accept-encoding"));
    CHECK(sl__cz_list_has(sl_str_from("*"), "*"));
    CHECK(!sl__cz_list_has(SL_STR_NULL, "*"));
}

/* -- streams ------------------------------------------------------------ */

struct sink {
    char *p;
    size_t len, cap, calls;
    int fail_after; /* out() fails on this call (1-based); 0: never */
};

static int collect(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;

    s->calls++;
    if (s->fail_after != 0 && s->calls >= (size_t)s->fail_after)
        return -1;
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    return 0;
}

/* Inflate a gzip stream (Z_SYNC_FLUSH points included) into out. */
static size_t gunzip(const char *in, size_t n, char *out, size_t cap, int *rc)
{
    z_stream z = {0};

    inflateInit2(&z, 15 + 16);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    *rc = inflate(&z, Z_SYNC_FLUSH);
    inflateEnd(&z);
    return cap - z.avail_out;
}

static char *text(size_t n)
{
    char *b = malloc(n + 32);
    uint32_t x = 12345;
    size_t i = 0;

    /* Compressible, but not trivially: records with numbers that vary. */
    while (i < n) {
        x = x * 1103515245u + 12345u;
        i += (size_t)snprintf(b + i, 32, "{\"id\":%u,\"ok\":true},", (unsigned)(x >> 8) % 100000);
    }
    return b;
}

static void test_gzip_streams_round_trip_through_small_buffers_and_flushes(void)
{
    size_t n = 300000;
    char *in = text(n), *out = malloc(n + 1), buf[1024];
    struct sink s = {0};
    struct cz_stream *z = sl__cz_stream_new(CZ_GZIP, 5, 0);
    int rc;
    size_t got, at_flush;

    CHECK_EQ_INT(sl__cz_stream_feed(z, in, 100000, 0, buf, sizeof(buf), collect, &s), 0);
    CHECK_EQ_INT(
        sl__cz_stream_feed(z, in + 100000, 1000, SL_BODY_FLUSH, buf, sizeof(buf), collect, &s), 0);
    /* Everything given so far is decodable at a flush. */
    at_flush = s.len;
    got = gunzip(s.p, s.len, out, n, &rc);
    CHECK_EQ_UINT(got, 101000);
    CHECK(memcmp(out, in, got) == 0);
    /* A second flush with nothing new writes nothing. */
    CHECK_EQ_INT(sl__cz_stream_feed(z, NULL, 0, SL_BODY_FLUSH, buf, sizeof(buf), collect, &s), 0);
    CHECK_EQ_UINT(s.len, at_flush);
    CHECK_EQ_INT(
        sl__cz_stream_feed(z, in + 101000, n - 101000, SL_BODY_END, buf, sizeof(buf), collect, &s),
        0);
    CHECK(s.len < n / 4);
    got = gunzip(s.p, s.len, out, n + 1, &rc);
    CHECK_EQ_INT(rc, Z_STREAM_END);
    CHECK_EQ_UINT(got, n);
    CHECK(memcmp(out, in, n) == 0);
    /* Ended: it takes nothing more. */
    CHECK_EQ_INT(sl__cz_stream_feed(z, in, 1, 0, buf, sizeof(buf), collect, &s), -1);
    sl__cz_stream_free(z);
    free(s.p);
    free(in);
    free(out);
}

static void test_a_gzip_stream_of_known_small_size_and_an_empty_one_decode(void)
{
    char *in = text(3000), out[4000], buf[16384];
    struct sink s = {0};
    struct cz_stream *z = sl__cz_stream_new(CZ_GZIP, 9, 3000);
    int rc;

    CHECK_EQ_INT(sl__cz_stream_feed(z, in, 3000, SL_BODY_END, buf, sizeof(buf), collect, &s), 0);
    CHECK_EQ_UINT(gunzip(s.p, s.len, out, sizeof(out), &rc), 3000);
    CHECK_EQ_INT(rc, Z_STREAM_END);
    CHECK(memcmp(out, in, 3000) == 0);
    sl__cz_stream_free(z);
    s.len = 0;
    z = sl__cz_stream_new(CZ_GZIP, 1, 0);
    CHECK_EQ_INT(sl__cz_stream_feed(z, NULL, 0, SL_BODY_END, buf, sizeof(buf), collect, &s), 0);
    CHECK_EQ_UINT(gunzip(s.p, s.len, out, sizeof(out), &rc), 0);
    CHECK_EQ_INT(rc, Z_STREAM_END);
    sl__cz_stream_free(z);
    free(s.p);
    free(in);
}

static void test_a_brotli_stream_writes_at_each_flush_and_ends(void)
{
    size_t n = 200000;
    char *in = text(n), buf[512];
    struct sink s = {0};
    struct cz_stream *b = sl__cz_stream_new(CZ_BR, 5, 0);
    size_t before;

    CHECK_EQ_INT(sl__cz_stream_feed(b, in, 5000, 0, buf, sizeof(buf), collect, &s), 0);
    before = s.len;
    CHECK_EQ_INT(sl__cz_stream_feed(b, in + 5000, 10, SL_BODY_FLUSH, buf, sizeof(buf), collect, &s),
                 0);
    CHECK(s.len > before);
    before = s.len;
    CHECK_EQ_INT(sl__cz_stream_feed(b, NULL, 0, SL_BODY_FLUSH, buf, sizeof(buf), collect, &s), 0);
    CHECK_EQ_UINT(s.len, before); /* nothing new, nothing written */
    CHECK_EQ_INT(
        sl__cz_stream_feed(b, in + 5010, n - 5010, SL_BODY_END, buf, sizeof(buf), collect, &s), 0);
    CHECK(s.len > before && s.len < n / 4);
    CHECK_EQ_INT(sl__cz_stream_feed(b, in, 1, 0, buf, sizeof(buf), collect, &s), -1);
    sl__cz_stream_free(b);
    free(s.p);
    free(in);
}

static void test_a_failed_write_stops_the_stream(void)
{
    enum cz_coding codings[] = {CZ_GZIP, CZ_BR};
    size_t n = 100000;
    char *in = text(n), buf[256];

    for (size_t i = 0; i < 2; i++) {
        struct sink s = {.fail_after = 2};
        struct cz_stream *z = sl__cz_stream_new(codings[i], 5, 0);

        CHECK_EQ_INT(sl__cz_stream_feed(z, in, n, SL_BODY_END, buf, sizeof(buf), collect, &s), -1);
        CHECK_EQ_INT(sl__cz_stream_feed(z, in, n, SL_BODY_END, buf, sizeof(buf), collect, &s), -1);
        sl__cz_stream_free(z);
        free(s.p);
    }
    free(in);
    CHECK(strstr(sl__cz_versions(), "zlib ") != NULL);
    CHECK(strstr(sl__cz_versions(), "brotli ") != NULL);
}

int main(void)
{
    RUN(test_weights_are_read_in_thousandths_and_unnamed_codings_are_minus_one);
    RUN(test_the_highest_weight_wins_and_ties_go_to_the_configured_order);
    RUN(test_q_zero_means_not_acceptable);
    RUN(test_the_star_covers_the_codings_not_named);
    RUN(test_identity_wins_only_when_named_with_a_higher_weight);
    RUN(test_names_ignore_case_and_x_gzip_is_gzip);
    RUN(test_whitespace_and_empty_elements_are_tolerated);
    RUN(test_a_malformed_weight_drops_its_element_only);
    RUN(test_the_first_element_naming_a_coding_counts);
    RUN(test_media_types_match_ignoring_parameters_and_case);
    RUN(test_configured_media_types_are_checked_and_lowered);
    RUN(test_field_lists_are_searched_by_element);
    RUN(test_gzip_streams_round_trip_through_small_buffers_and_flushes);
    RUN(test_a_gzip_stream_of_known_small_size_and_an_empty_one_decode);
    RUN(test_a_brotli_stream_writes_at_each_flush_and_ends);
    RUN(test_a_failed_write_stops_the_stream);
    return check_done();
}
