/*
 * Unit tests for loading a config file (gateway/src/gen.c, config.c,
 * conf_read.c, yaml_tree.c): a good file loads, and every mistake in a bad
 * one is reported as "FILE:LINE:COL: error: KEY.PATH: message" with the
 * source line and a caret, all in one run.
 */
#include "config/gen.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/router.h"
#include "conf/yaml_tree.h"

#include "check.h"

static char tmpdir[64];
static char *files[32];
static int n_files;

/* Write text to a new file in the test's temporary directory; its name is
 * kept for removal at the end. */
static const char *write_config(const char *text)
{
    char *path = malloc(128);
    int fd;
    size_t len = strlen(text);

    snprintf(path, 128, "%s/sluice-XXXXXX.yaml", tmpdir);
    fd = mkstemps(path, 5);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        abort();
    close(fd);
    files[n_files++] = path;
    return path;
}

/* Load text as a config file. *file receives its name for building the
 * expected messages. */
static struct sl_gen *load(const char *text, const char **file, char **report, int *errors)
{
    *file = write_config(text);
    *report = NULL;
    *errors = -1;
    return sl__gen_load(*file, 1, report, errors);
}

/* Does the report hold "FILE:LINE:COL: error: " + rest, then the quoted line
 * and a caret under COL? */
static void check_error_at(const char *report, const char *file, int line, int col,
                           const char *rest, const char *source)
{
    char want[1024], caret[256];
    int n;

    snprintf(want, sizeof(want), "%s:%d:%d: error: %s", file, line, col, rest);
    if (!CHECK_CONTAINS(report, want))
        return;
    /* The quoted source line and the caret line follow the message line. */
    n = snprintf(caret, sizeof(caret), "%5d | %s\n      | ", line, source);
    for (int i = 1; i < col && n < (int)sizeof(caret) - 3; i++)
        caret[n++] = source[i - 1] == '\t' ? '\t' : ' ';
    caret[n++] = '^';
    caret[n++] = '\n';
    caret[n] = '\0';
    {
        const char *msg = strstr(report, want);
        const char *eol = strchr(msg, '\n');

        CHECK(eol != NULL && strncmp(eol + 1, caret, strlen(caret)) == 0);
        if (eol != NULL && strncmp(eol + 1, caret, strlen(caret)) != 0)
            fprintf(stderr, "    expected after the message:\n%s    in:\n%s\n", caret, report);
    }
}

static const char good_config[] =
    "workers: 2\n"
    "shutdown_timeout: 5s\n"
    "listen:\n"
    "  - address: 127.0.0.1:18080\n"
    "limits: {max_header_bytes: 32k, max_body_bytes: 10m, max_connections: 100}\n"
    "timeouts: {client_header: 10s, client_body: 30s, client_idle: 1m30s}\n"
    "log: {level: debug, access: off}\n"
    "plugins:\n"
    "  request_id: {}\n"
    "upstreams:\n"
    "  users:\n"
    "    balance: round_robin\n"
    "    targets:\n"
    "      - {address: 127.0.0.1:9001, weight: 2}\n"
    "      - 127.0.0.1:9002\n"
    "      - {address: 127.0.0.1:9003, backup: true}\n"
    "    retries: 2\n"
    "    timeouts: {connect: 250ms, read: 5s}\n"
    "routes:\n"
    "  - name: users\n"
    "    match:\n"
    "      host: API.Example.com\n"
    "      path: /v1/users\n"
    "      methods: [GET, POST]\n"
    "      headers: {X-Api-Version: \"2\"}\n"
    "    upstream: users\n"
    "    strip_prefix: /v1\n"
    "  - name: catchall\n"
    "    match: {path: /}\n"
    "    upstream: users\n";

static struct sl_str api_version_2(void *arg, const char *name)
{
    (void)arg;
    return strcasecmp(name, "X-Api-Version") == 0 ? SL_STR("2") : SL_STR_NULL;
}

static void test_a_good_config_loads(void)
{
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(good_config, &file, &report, &errors);
    struct sl_config *c;

    CHECK_EQ_INT(errors, 0);
    if (!CHECK(g != NULL)) {
        fprintf(stderr, "%s", report ? report : "(no report)\n");
        free(report);
        return;
    }
    CHECK(report == NULL || strstr(report, "error") == NULL);
    c = g->conf;
    CHECK_EQ_INT(c->workers, 2);
    CHECK_EQ_UINT(c->shutdown_timeout_ms, 5000);
    CHECK_EQ_INT(c->n_listen, 1);
    CHECK_EQ_UINT(c->max_header_bytes, 32768);
    CHECK_EQ_UINT(c->max_body_bytes, 10485760);
    CHECK_EQ_INT(c->max_connections, 100);
    CHECK_EQ_UINT(c->client_idle_ms, 90000);
    CHECK_EQ_INT(c->access_log, SL_ACCESS_OFF);
    CHECK_EQ_INT(c->n_upstreams, 1);
    if (c->n_upstreams == 1) {
        struct sl_upstream_conf *u = &c->upstreams[0];

        CHECK_STREQ(u->name, "users");
        CHECK_EQ_INT(u->n_targets, 3);
        CHECK_EQ_INT(u->targets[0].weight, 2);
        CHECK_EQ_INT(u->targets[1].weight, 1);
        CHECK_STREQ(u->targets[1].address, "127.0.0.1:9002");
        CHECK(u->targets[2].backup);
        CHECK_EQ_INT(u->retries, 2);
        CHECK_EQ_UINT(u->connect_ms, 250);
        CHECK_EQ_UINT(u->read_ms, 5000);
    }
    CHECK_EQ_INT(c->n_routes, 2);
    if (c->n_routes == 2) {
        struct sl_route_conf *r = &c->routes[0];

        CHECK_STREQ(r->name, "users");
        CHECK_STREQ(r->host, "api.example.com");
        CHECK_STREQ(r->path, "/v1/users");
        CHECK_EQ_UINT(r->methods, (1ull << HTTP_GET) | (1ull << HTTP_POST));
        CHECK_EQ_INT(r->n_headers, 1);
        CHECK_STREQ(r->strip_prefix, "/v1");
        CHECK(r->upstream == &c->upstreams[0]);
        /* request_id from the top-level defaults applies to every route. */
        CHECK_EQ_INT(r->n_plugins, 1);
    }
    /* The generation's router picks routes by the loaded rules. */
    {
        struct sl_route_query q = {.host = SL_STR("api.example.com"),
                                   .path = SL_STR("/v1/users/7"),
                                   .method = HTTP_GET,
                                   .header = api_version_2};
        const struct sl_route_conf *r = sl__router_match(g->router, &q);

        CHECK(r != NULL && strcmp(r->name, "users") == 0);
        q.method = HTTP_DELETE;
        r = sl__router_match(g->router, &q);
        CHECK(r != NULL && strcmp(r->name, "catchall") == 0);
    }
    CHECK_EQ_INT(g->n_workers, 1);
    CHECK(g->upstreams != NULL && g->upstreams[0].n_targets == 3);
    sl__gen_unref(g);
    free(report);
}

static void test_three_mistakes_are_all_reported_with_line_and_caret(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "limits:\n"
                               "  max_body_bytes: lots\n"
                               "upstreams:\n"
                               "  users:\n"
                               "    targets:\n"
                               "      - address: 127.0.0.1:9001\n"
                               "routes:\n"
                               "  - name: users\n"
                               "    match: {path: /v1}\n"
                               "    upstream: userz\n"
                               "    colour: blue\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);

    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 3);
    check_error_at(report, file, 4, 19,
                   "limits.max_body_bytes: expected a size such as 512, 16k or 10m, found \"lots\"",
                   "  max_body_bytes: lots");
    check_error_at(report, file, 12, 15, "routes[0].upstream: unknown upstream \"userz\"",
                   "    upstream: userz");
    check_error_at(report, file, 13, 5,
                   "routes[0].colour: unknown key (expected one of: ", "    colour: blue");
    free(report);
}

static void test_an_unknown_key_names_the_keys_allowed(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "listen_on: 8080\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);

    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 1);
    check_error_at(report, file, 3, 1, "listen_on: unknown key (expected one of: workers,",
                   "listen_on: 8080");
    CHECK_CONTAINS(report, "listen, limits");
    free(report);
}

static void test_wrong_types_are_reported_with_what_was_found(void)
{
    static const char text[] = "workers: lots\n"
                               "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "timeouts: [1, 2]\n"
                               "upstreams:\n"
                               "  users:\n"
                               "    targets: [127.0.0.1:9001]\n"
                               "    retries: many\n"
                               "routes:\n"
                               "  - match: {path: /, methods: get}\n"
                               "    upstream: users\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);

    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 4);
    check_error_at(report, file, 1, 10, "workers: expected a whole number, found \"lots\"",
                   "workers: lots");
    check_error_at(report, file, 4, 11, "timeouts: expected a map, found a list",
                   "timeouts: [1, 2]");
    check_error_at(report, file, 8, 14,
                   "upstreams.users.retries: expected a whole number, found \"many\"",
                   "    retries: many");
    check_error_at(report, file, 10, 31, "routes[0].match.methods: unknown HTTP method \"get\"",
                   "  - match: {path: /, methods: get}");
    free(report);
}

static void test_a_section_with_an_unknown_key_still_checks_its_other_keys(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "limits:\n"
                               "  max_body_bytes: lots\n"
                               "  colour: blue\n"
                               "timeouts:\n"
                               "  client_idle: forever\n"
                               "  colour: red\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);

    CHECK(g == NULL);
    /* Two mistakes in each section: one run reports all four. */
    CHECK_EQ_INT(errors, 4);
    check_error_at(report, file, 5, 3, "limits.colour: unknown key", "  colour: blue");
    check_error_at(report, file, 4, 19,
                   "limits.max_body_bytes: expected a size such as 512, 16k or 10m, found \"lots\"",
                   "  max_body_bytes: lots");
    check_error_at(report, file, 8, 3, "timeouts.colour: unknown key", "  colour: red");
    check_error_at(report, file, 7, 16,
                   "timeouts.client_idle: expected a duration such as 250ms, 5s or 1m, found "
                   "\"forever\"",
                   "  client_idle: forever");
    free(report);
}

static void test_a_missing_upstream_reference_is_an_error(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "routes:\n"
                               "  - name: a\n"
                               "    upstream: nowhere\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);

    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 1);
    check_error_at(report, file, 5, 15,
                   "routes[0].upstream: unknown upstream \"nowhere\" (no upstreams are defined)",
                   "    upstream: nowhere");
    free(report);
}

static void test_a_route_without_upstream_is_an_error(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "routes:\n"
                               "  - name: a\n"
                               "    match: {path: /}\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);

    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 1);
    CHECK_CONTAINS(report, "routes[0].upstream: required key is missing");
    free(report);
}

static void test_environment_variables_are_expanded(void)
{
    static const char text[] = "listen:\n"
                               "  - address: \"127.0.0.1:${SLUICE_UNIT_PORT}\"\n"
                               "upstreams:\n"
                               "  users:\n"
                               "    targets: [\"${SLUICE_UNIT_TARGET}\"]\n"
                               "routes:\n"
                               "  - name: \"cost$$ ${SLUICE_UNIT_SURELY_UNSET:-free}\"\n"
                               "    match: {path: \"${SLUICE_UNIT_SURELY_UNSET:-/v9}\"}\n"
                               "    upstream: users\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g;

    setenv("SLUICE_UNIT_PORT", "18081", 1);
    setenv("SLUICE_UNIT_TARGET", "127.0.0.1:9055", 1);
    unsetenv("SLUICE_UNIT_SURELY_UNSET");
    g = load(text, &file, &report, &errors);
    CHECK_EQ_INT(errors, 0);
    if (CHECK(g != NULL)) {
        CHECK_STREQ(g->conf->listen[0].address, "127.0.0.1:18081");
        CHECK_STREQ(g->conf->upstreams[0].targets[0].address, "127.0.0.1:9055");
        CHECK_STREQ(g->conf->routes[0].name, "cost$ free");
        CHECK_STREQ(g->conf->routes[0].path, "/v9");
        sl__gen_unref(g);
    } else {
        fprintf(stderr, "%s", report ? report : "");
    }
    free(report);
}

static void test_an_unset_environment_variable_is_an_error(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "upstreams:\n"
                               "  users:\n"
                               "    targets: [127.0.0.1:9001]\n"
                               "routes:\n"
                               "  - name: \"${SLUICE_UNIT_SURELY_UNSET}\"\n"
                               "    upstream: users\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g;
    char want[256];

    unsetenv("SLUICE_UNIT_SURELY_UNSET");
    g = load(text, &file, &report, &errors);
    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 1);
    CHECK_CONTAINS(report, "environment variable \"SLUICE_UNIT_SURELY_UNSET\" is not set");
    snprintf(want, sizeof(want), "%s:7:11: error: ", file);
    CHECK_CONTAINS(report, want);
    /* Like every config error, it names the key path. */
    check_error_at(report, file, 7, 11,
                   "routes[0].name: environment variable \"SLUICE_UNIT_SURELY_UNSET\" is not set",
                   "  - name: \"${SLUICE_UNIT_SURELY_UNSET}\"");
    free(report);
}

static void test_a_yaml_syntax_error_is_reported_with_its_position(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "routes: [\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);
    char want[256];

    CHECK(g == NULL);
    CHECK(errors >= 1);
    snprintf(want, sizeof(want), "%s:", file);
    CHECK_CONTAINS(report, want);
    CHECK_CONTAINS(report, ": error: YAML syntax: ");
    free(report);
}

static void test_a_duplicate_key_is_an_error(void)
{
    static const char text[] = "listen:\n"
                               "  - address: 127.0.0.1:18080\n"
                               "workers: 2\n"
                               "workers: 3\n";
    const char *file;
    char *report;
    int errors;
    struct sl_gen *g = load(text, &file, &report, &errors);

    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 1);
    CHECK_CONTAINS(report, "workers: duplicate key (first set on line 3)");
    free(report);
}

static void test_a_file_that_cannot_be_read_is_one_error(void)
{
    char path[128], *report = NULL;
    int errors = -1;
    struct sl_gen *g;

    snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
    g = sl__gen_load(path, 1, &report, &errors);
    CHECK(g == NULL);
    CHECK_EQ_INT(errors, 1);
    CHECK_CONTAINS(report, "does-not-exist.yaml: error: cannot read the file");
    free(report);
}

/* Expand a literal with the test's arena a and its missing pointer. */
#define EXPAND(s) sl__env_expand(&a, (s), strlen(s), &missing)

static void test_env_expand_substitutes_set_variables(void)
{
    struct sl_arena a;
    const char *missing = "junk";

    sl_arena_init(&a, 1024, 0);
    setenv("SLUICE_UNIT_A", "alpha", 1);
    setenv("SLUICE_UNIT_EMPTY", "", 1);
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_A}"), "alpha");
    CHECK(missing == NULL);
    CHECK_STREQ(EXPAND("x-${SLUICE_UNIT_A}-${SLUICE_UNIT_A}-y"), "x-alpha-alpha-y");
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_EMPTY}"), "");
    CHECK_STREQ(EXPAND("plain text"), "plain text");
    CHECK_STREQ(EXPAND(""), "");
    /* Only len bytes are read. */
    CHECK_STREQ(sl__env_expand(&a, "${SLUICE_UNIT_A}tail", 16, &missing), "alpha");
    sl_arena_destroy(&a);
}

static void test_env_expand_uses_the_default_for_an_unset_variable(void)
{
    struct sl_arena a;
    const char *missing;

    sl_arena_init(&a, 1024, 0);
    unsetenv("SLUICE_UNIT_NOPE");
    setenv("SLUICE_UNIT_A", "alpha", 1);
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_NOPE:-def}"), "def");
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_NOPE:-}"), "");
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_NOPE:-a b:c}"), "a b:c");
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_A:-def}"), "alpha");
    sl_arena_destroy(&a);
}

static void test_env_expand_uses_the_default_for_an_empty_variable_as_the_shell_does(void)
{
    struct sl_arena a;
    const char *missing;

    sl_arena_init(&a, 1024, 0);
    setenv("SLUICE_UNIT_EMPTY", "", 1);
    /* POSIX ${VAR:-word}: the default when VAR is unset *or empty*. */
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_EMPTY:-def}"), "def");
    sl_arena_destroy(&a);
}

static void test_env_expand_turns_double_dollar_into_one(void)
{
    struct sl_arena a;
    const char *missing;

    sl_arena_init(&a, 1024, 0);
    CHECK_STREQ(EXPAND("$$"), "$");
    CHECK_STREQ(EXPAND("a$$b"), "a$b");
    CHECK_STREQ(EXPAND("$${SLUICE_UNIT_NOPE}"), "${SLUICE_UNIT_NOPE}");
    CHECK_STREQ(EXPAND("$$$$"), "$$");
    /* A lone dollar, or one not followed by a brace, is kept. */
    CHECK_STREQ(EXPAND("$5 and $"), "$5 and $");
    /* No closing brace: kept as written. */
    CHECK_STREQ(EXPAND("${SLUICE_UNIT_A"), "${SLUICE_UNIT_A");
    sl_arena_destroy(&a);
}

static void test_env_expand_names_the_first_missing_variable(void)
{
    struct sl_arena a;
    const char *missing = NULL;

    sl_arena_init(&a, 1024, 0);
    unsetenv("SLUICE_UNIT_NOPE");
    unsetenv("SLUICE_UNIT_NOPE2");
    CHECK(EXPAND("x${SLUICE_UNIT_NOPE}y${SLUICE_UNIT_NOPE2}") == NULL);
    CHECK_STREQ(missing, "SLUICE_UNIT_NOPE");
    missing = NULL;
    CHECK(EXPAND("${}") == NULL);
    CHECK_STREQ(missing, "");
    sl_arena_destroy(&a);
}

int main(void)
{
    if (snprintf(tmpdir, sizeof(tmpdir), "/tmp/sluice-unit-XXXXXX") < 0 || mkdtemp(tmpdir) == NULL)
        return 2;
    RUN(test_a_good_config_loads);
    RUN(test_three_mistakes_are_all_reported_with_line_and_caret);
    RUN(test_an_unknown_key_names_the_keys_allowed);
    RUN(test_wrong_types_are_reported_with_what_was_found);
    RUN(test_a_section_with_an_unknown_key_still_checks_its_other_keys);
    RUN(test_a_missing_upstream_reference_is_an_error);
    RUN(test_a_route_without_upstream_is_an_error);
    RUN(test_environment_variables_are_expanded);
    RUN(test_an_unset_environment_variable_is_an_error);
    RUN(test_a_yaml_syntax_error_is_reported_with_its_position);
    RUN(test_a_duplicate_key_is_an_error);
    RUN(test_a_file_that_cannot_be_read_is_one_error);
    RUN(test_env_expand_substitutes_set_variables);
    RUN(test_env_expand_uses_the_default_for_an_unset_variable);
    RUN(test_env_expand_uses_the_default_for_an_empty_variable_as_the_shell_does);
    RUN(test_env_expand_turns_double_dollar_into_one);
    RUN(test_env_expand_names_the_first_missing_variable);
    for (int i = 0; i < n_files; i++) {
        unlink(files[i]);
        free(files[i]);
    }
    rmdir(tmpdir);
    return check_done();
}
