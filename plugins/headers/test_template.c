/*
 * The headers plugin's templates and names (plugins/headers/template.c):
 * what a value reads as, which values and names are refused, and why.
 */
#include "template.h"

#include "check.h"

static struct sl_arena arena;

/* The template of text, or NULL (and why) when it is refused. */
static const struct hdr_tmpl *parse(const char *text, char *why)
{
    static struct hdr_tmpl t;

    why[0] = '\0';
    return sl__hdr_tmpl_parse(&arena, text, strlen(text), &t, why, 256) == 0 ? &t : NULL;
}

/* The template written back with each variable as <var> (its number, or
 * the request variable for a claim). */
static const char *shape(const char *text)
{
    static char out[256], why[256];
    const struct hdr_tmpl *t = parse(text, why);
    size_t n = 0;

    if (t == NULL)
        return why;
    for (size_t i = 0; i < t->n; i++) {
        const struct hdr_seg *s = &t->segs[i];

        if (s->var == HV_TEXT)
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%.*s", (int)s->len, s->text);
        else if (s->var == HV_JWT)
            n += (size_t)snprintf(out + n, sizeof(out) - n, "<%s>", s->text);
        else
            n += (size_t)snprintf(out + n, sizeof(out) - n, "<%d>", (int)s->var);
    }
    out[n] = '\0';
    return out;
}

static void test_a_value_without_variables_is_its_own_text(void)
{
    char why[256];
    const struct hdr_tmpl *t = parse("max-age=63072000; includeSubDomains", why);

    CHECK(t != NULL);
    CHECK_STREQ(t->text, "max-age=63072000; includeSubDomains");
    CHECK_STREQ(parse("", why)->text, "");
    CHECK_STREQ(parse("cost: $$5", why)->text, "cost: $5");
    CHECK_STREQ(parse("50$ or $5 or $", why)->text, "50$ or $5 or $");
    CHECK_STREQ(parse("tab\there", why)->text, "tab\there");
}

static void test_each_variable_is_known_in_both_forms(void)
{
    CHECK_STREQ(shape("$client_ip"), "<1>");
    CHECK_STREQ(shape("$request_id"), "<2>");
    CHECK_STREQ(shape("$route"), "<3>");
    CHECK_STREQ(shape("$consumer"), "<4>");
    CHECK_STREQ(shape("$host"), "<5>");
    CHECK_STREQ(shape("$jwt.sub"), "<jwt:sub>");
    CHECK_STREQ(shape("${client_ip}"), "<1>");
    CHECK_STREQ(shape("${jwt.sub}"), "<jwt:sub>");
    CHECK_STREQ(shape("${jwt.https://example.com/roles}"), "<jwt:https://example.com/roles>");
}

static void test_text_and_variables_alternate(void)
{
    CHECK_STREQ(shape("for=$client_ip;host=$host"), "for=<1>;host=<5>");
    CHECK_STREQ(shape("${route}_x"), "<3>_x");
    CHECK_STREQ(shape("$route-x"), "<3>-x");
    CHECK_STREQ(shape("$jwt.sub.x"), "<jwt:sub.x>"); /* a member of an object claim */
    CHECK_STREQ(shape("$jwt.sub."), "<jwt:sub>.");
    CHECK_STREQ(shape("$$route"), "$route");
    CHECK_STREQ(shape("$$$route"), "$<3>");
    CHECK_STREQ(shape("a$$b$$c"), "a$b$c");
}

static void test_unknown_variables_are_refused_with_the_known_ones(void)
{
    char why[256];

    CHECK(parse("$client", why) == NULL);
    CHECK_CONTAINS(why, "unknown variable \"$client\"");
    CHECK_CONTAINS(why, "$client_ip, $request_id, $route, $consumer, $host, $jwt.CLAIM");
    CHECK(parse("$route_name", why) == NULL);
    CHECK_CONTAINS(why, "\"$route_name\"");
    CHECK(parse("${}", why) == NULL);
    CHECK(parse("$jwt", why) == NULL);
    CHECK(parse("${jwt.}", why) == NULL);
    CHECK(parse("${host", why) == NULL);
    CHECK_CONTAINS(why, "closing");
}

static void test_control_characters_are_refused_wherever_they_are(void)
{
    char why[256];

    CHECK(parse("a\r\nX-Injected: 1", why) == NULL);
    CHECK_CONTAINS(why, "CR (byte 2)");
    CHECK(parse("a\nb", why) == NULL);
    CHECK_CONTAINS(why, "LF");
    CHECK(parse("${jwt.a\rb}", why) == NULL);
    CHECK_CONTAINS(why, "CR");
    CHECK(parse("bell\a", why) == NULL);
    CHECK_CONTAINS(why, "\\x07");
    CHECK(parse("del\x7f", why) == NULL);

    struct hdr_tmpl t;

    CHECK_EQ_INT(sl__hdr_tmpl_parse(&arena, "a\0b", 3, &t, why, sizeof(why)), -1);
    CHECK_CONTAINS(why, "NUL");
}

static void test_names_are_tokens(void)
{
    CHECK(sl__hdr_name_valid("X-Client-Ip"));
    CHECK(sl__hdr_name_valid("x_odd!#$%&'*+.^`|~9"));
    CHECK(!sl__hdr_name_valid(""));
    CHECK(!sl__hdr_name_valid("X Client"));
    CHECK(!sl__hdr_name_valid("X-Client:"));
    CHECK(!sl__hdr_name_valid("X-\xc3\xa9"));
    CHECK(!sl__hdr_name_valid("X-A\r\nX-B"));
    CHECK(!sl__hdr_name_valid("(comment)"));
}

static void test_the_gateways_own_fields_are_refused_in_their_direction(void)
{
    CHECK(sl__hdr_name_owned("content-length", true) != NULL);
    CHECK(sl__hdr_name_owned("Transfer-Encoding", false) != NULL);
    CHECK(sl__hdr_name_owned("Connection", false) != NULL);
    CHECK(sl__hdr_name_owned("Upgrade", true) != NULL);
    CHECK(sl__hdr_name_owned("Via", false) != NULL);
    CHECK(sl__hdr_name_owned("Host", true) != NULL);
    CHECK(sl__hdr_name_owned("X-Forwarded-For", true) != NULL);
    CHECK(sl__hdr_name_owned("X-Forwarded-For", false) == NULL);
    CHECK(sl__hdr_name_owned("Host", false) == NULL);
    CHECK(sl__hdr_name_owned("Server", false) == NULL);
    CHECK(sl__hdr_name_owned("X-Internal", true) == NULL);
    /* Other plugins' in requests: the upstream trusts them. */
    CHECK(sl__hdr_name_owned("X-Consumer", true) != NULL);
    CHECK(sl__hdr_name_owned("x-request-id", true) != NULL);
    CHECK(sl__hdr_name_owned("X-Consumer", false) == NULL);
    CHECK(sl__hdr_name_owned("X-Request-Id", false) == NULL);
}

int main(void)
{
    sl_arena_init(&arena, 4096, 0);
    RUN(test_a_value_without_variables_is_its_own_text);
    RUN(test_each_variable_is_known_in_both_forms);
    RUN(test_text_and_variables_alternate);
    RUN(test_unknown_variables_are_refused_with_the_known_ones);
    RUN(test_control_characters_are_refused_wherever_they_are);
    RUN(test_names_are_tokens);
    RUN(test_the_gateways_own_fields_are_refused_in_their_direction);
    sl_arena_destroy(&arena);
    return check_done();
}
