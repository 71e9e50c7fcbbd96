/*
 * Unit tests for the config diff (gateway/src/config/diff*.c): two configs
 * loaded as a reload would load them, compared, and the changes written one
 * line each, exactly as "sluice -t --diff" prints them.
 */
#include "config/diff.h"

#include <stdlib.h>
#include <string.h>

#include "config/gen.h"

#include "check.h"

static struct sl_gen *load(const char *name, const char *text)
{
    char *report = NULL;
    int errors = 0;
    struct sl_gen *g = sl__gen_load_text(name, text, strlen(text), 1, &report, &errors);

    if (g == NULL)
        fprintf(stderr, "%s does not load:\n%s\n", name, report ? report : "");
    free(report);
    return g;
}

/* The changes from old to new as text (heap; the caller frees), or NULL
 * when either does not load. */
static char *diff(const char *old, const char *new, char **json)
{
    struct sl_gen *a = load("old.yaml", old), *b = load("new.yaml", new);
    struct sl_arena arena;
    struct sl_diff d;
    struct sl_sbuf text = {0}, js = {0};

    if (a == NULL || b == NULL) {
        sl__gen_unref(a);
        sl__gen_unref(b);
        return NULL;
    }
    sl_arena_init(&arena, 4096, 0);
    sl__diff_init(&d, &arena);
    sl__config_diff(&d, &(struct sl_diff_side){a->conf}, &(struct sl_diff_side){b->conf});
    sl__diff_text(&d, &text);
    sl__sbuf_add(&text, "", 0);
    if (json != NULL) {
        sl__diff_json(&d, &js);
        sl__sbuf_add(&js, "", 1);
        *json = js.p;
    }
    sl_arena_destroy(&arena);
    sl__gen_unref(a);
    sl__gen_unref(b);
    return text.p ? text.p : calloc(1, 1);
}

#define HEAD                                                                                       \
    "workers: 1\n"                                                                                 \
    "listen:\n"                                                                                    \
    "  - address: 127.0.0.1:18080\n"

static const char base[] = HEAD "upstreams:\n"
                                "  users:\n"
                                "    targets:\n"
                                "      - {address: 127.0.0.1:9001, weight: 2}\n"
                                "      - 127.0.0.1:9002\n"
                                "    timeouts: {connect: 2s}\n"
                                "  users2:\n"
                                "    targets: [127.0.0.1:9005]\n"
                                "routes:\n"
                                "  - name: users\n"
                                "    match: {path: /v1/users, methods: [GET]}\n"
                                "    upstream: users\n"
                                "  - name: old\n"
                                "    match: {path: /old}\n"
                                "    upstream: users\n";

static void expect(const char *old, const char *new, const char *want)
{
    char *got = diff(old, new, NULL);

    CHECK(got != NULL);
    if (got != NULL)
        CHECK_STREQ(got, want);
    free(got);
}

static void test_a_config_compared_with_itself_changes_nothing(void)
{
    expect(base, base, "");
}

static void test_the_same_values_written_otherwise_are_no_change(void)
{
    /* Keys in another order, a duration in other units, a default spelled
     * out, a flow map written as a block. */
    expect(base,
           HEAD "upstreams:\n"
                "  users2:\n"
                "    targets: [127.0.0.1:9005]\n"
                "  users:\n"
                "    timeouts:\n"
                "      connect: 2000ms\n"
                "    retries: 1\n"
                "    targets:\n"
                "      - {weight: 2, address: 127.0.0.1:9001}\n"
                "      - {address: 127.0.0.1:9002, weight: 1}\n"
                "routes:\n"
                "  - name: old\n"
                "    match: {path: /old}\n"
                "    upstream: users\n"
                "  - upstream: users\n"
                "    name: users\n"
                "    match: {methods: [GET], path: /v1/users}\n",
           "");
}

static void test_targets_and_balance_changes_are_one_line_for_the_upstream(void)
{
    expect(base,
           HEAD "upstreams:\n"
                "  users:\n"
                "    balance: p2c\n"
                "    targets:\n"
                "      - {address: 127.0.0.1:9001, weight: 3}\n"
                "      - {address: 127.0.0.1:9003, backup: true}\n"
                "    timeouts: {connect: 250ms}\n"
                "  users2:\n"
                "    targets: [127.0.0.1:9005]\n"
                "routes:\n"
                "  - name: users\n"
                "    match: {path: /v1/users, methods: [GET]}\n"
                "    upstream: users\n"
                "  - name: old\n"
                "    match: {path: /old}\n"
                "    upstream: users\n",
           "~ upstream users: targets +127.0.0.1:9003 backup, -127.0.0.1:9002; "
           "target 127.0.0.1:9001 weight 2 -> 3; balance round_robin -> p2c; "
           "timeouts.connect 2s -> 250ms\n");
}

static void test_routes_added_removed_and_changed_are_listed_by_name(void)
{
    expect(base,
           HEAD "upstreams:\n"
                "  users:\n"
                "    targets:\n"
                "      - {address: 127.0.0.1:9001, weight: 2}\n"
                "      - 127.0.0.1:9002\n"
                "    timeouts: {connect: 2s}\n"
                "  users2:\n"
                "    targets: [127.0.0.1:9005]\n"
                "routes:\n"
                "  - name: api\n"
                "    match: {path: /api}\n"
                "    upstream: users2\n"
                "  - name: users\n"
                "    match: {path: /v1/users, methods: [GET, POST], host: a.example}\n"
                "    upstream: users2\n"
                "    strip_prefix: /v1\n"
                "    plugins:\n"
                "      rate_limit: {rate: 10/s, burst: 5, store: local}\n",
           "+ route api\n"
           "~ route users: match.host (unset) -> a.example; match.methods [GET] -> [GET, POST]; "
           "upstream users -> users2; strip_prefix (unset) -> /v1; plugins +rate_limit\n"
           "- route old\n");
}

static const char limited[] = HEAD "upstreams:\n"
                                   "  app:\n"
                                   "    targets: [127.0.0.1:9001]\n"
                                   "plugins:\n"
                                   "  rate_limit: {rate: 100/s, burst: 10, store: local}\n"
                                   "routes:\n"
                                   "  - name: a\n"
                                   "    match: {path: /a}\n"
                                   "    upstream: app\n"
                                   "  - name: b\n"
                                   "    match: {path: /b}\n"
                                   "    upstream: app\n"
                                   "    plugins:\n"
                                   "      rate_limit: {rate: 5/s, burst: 1, store: local}\n";

static void test_a_plugin_setting_change_names_the_key_and_both_values(void)
{
    expect(limited,
           HEAD "upstreams:\n"
                "  app:\n"
                "    targets: [127.0.0.1:9001]\n"
                "plugins:\n"
                "  rate_limit: {rate: 100/s, burst: 10, store: local}\n"
                "routes:\n"
                "  - name: a\n"
                "    match: {path: /a}\n"
                "    upstream: app\n"
                "  - name: b\n"
                "    match: {path: /b}\n"
                "    upstream: app\n"
                "    plugins:\n"
                "      rate_limit: {rate: 6/s, burst: 1, store: local, max_delay: 1s}\n",
           "~ route b: rate_limit.rate 5/s -> 6/s; rate_limit.max_delay (unset) -> 1s\n");
}

static void test_a_default_plugin_change_is_listed_once_not_on_every_route(void)
{
    expect(limited,
           HEAD "upstreams:\n"
                "  app:\n"
                "    targets: [127.0.0.1:9001]\n"
                "plugins:\n"
                "  rate_limit: {rate: 200/s, burst: 10, store: local}\n"
                "  request_id: off\n"
                "routes:\n"
                "  - name: a\n"
                "    match: {path: /a}\n"
                "    upstream: app\n"
                "  - name: b\n"
                "    match: {path: /b}\n"
                "    upstream: app\n"
                "    plugins:\n"
                "      rate_limit: {rate: 5/s, burst: 1, store: local}\n",
           "~ plugins defaults: -request_id; rate_limit.rate 100/s -> 200/s\n");
}

static void test_a_route_turning_a_default_off_or_taking_it_back_says_so(void)
{
    static const char off[] = HEAD "upstreams:\n"
                                   "  app:\n"
                                   "    targets: [127.0.0.1:9001]\n"
                                   "plugins:\n"
                                   "  rate_limit: {rate: 100/s, burst: 10, store: local}\n"
                                   "routes:\n"
                                   "  - name: a\n"
                                   "    match: {path: /a}\n"
                                   "    upstream: app\n"
                                   "    plugins: {rate_limit: off}\n"
                                   "  - name: b\n"
                                   "    match: {path: /b}\n"
                                   "    upstream: app\n";

    expect(limited, off,
           "~ route a: plugins -rate_limit\n"
           "~ route b: rate_limit.rate 5/s -> 100/s; rate_limit.burst 1 -> 10\n");
}

static void test_top_level_settings_are_compared_as_parsed(void)
{
    char *got = diff(base,
                     "workers: 2\n"
                     "listen:\n"
                     "  - address: 127.0.0.1:18080\n"
                     "limits: {max_body_bytes: 20m}\n"
                     "timeouts: {client_idle: 90s}\n"
                     "log: {level: debug, access: off}\n"
                     "via: off\n"
                     "upstreams:\n"
                     "  users:\n"
                     "    targets:\n"
                     "      - {address: 127.0.0.1:9001, weight: 2}\n"
                     "      - 127.0.0.1:9002\n"
                     "    timeouts: {connect: 2s}\n"
                     "  users2:\n"
                     "    targets: [127.0.0.1:9005]\n"
                     "routes:\n"
                     "  - name: users\n"
                     "    match: {path: /v1/users, methods: [GET]}\n"
                     "    upstream: users\n"
                     "  - name: old\n"
                     "    match: {path: /old}\n"
                     "    upstream: users\n",
                     NULL);

    CHECK_STREQ(got, "~ setting workers: 1 -> 2 (takes a restart: a reload keeps the running "
                     "workers)\n"
                     "~ setting limits: max_body_bytes 10m -> 20m\n"
                     "~ setting timeouts: client_idle 1m -> 90s\n"
                     "~ setting log: level info -> debug; access stdout -> off\n"
                     "~ setting via: sluice -> off\n");
    free(got);
}

static void test_listeners_are_matched_by_address(void)
{
    expect(HEAD "upstreams: {app: {targets: [127.0.0.1:9001]}}\n",
           "workers: 1\n"
           "listen:\n"
           "  - address: 127.0.0.1:18081\n"
           "  - address: 127.0.0.1:18080\n"
           "upstreams: {app: {targets: [127.0.0.1:9001]}}\n",
           "+ listener 127.0.0.1:18081\n");
    expect("workers: 1\n"
           "listen:\n"
           "  - address: 127.0.0.1:18081\n"
           "  - address: 127.0.0.1:18080\n"
           "upstreams: {app: {targets: [127.0.0.1:9001]}}\n",
           HEAD "upstreams: {app: {targets: [127.0.0.1:9001]}}\n", "- listener 127.0.0.1:18081\n");
}

static void test_secrets_and_environment_values_are_never_shown(void)
{
    static const char a[] = HEAD "admin: {address: 127.0.0.1:19901, token: one}\n"
                                 "upstreams: {app: {targets: [127.0.0.1:9001]}}\n"
                                 "routes:\n"
                                 "  - name: r\n"
                                 "    match: {path: /}\n"
                                 "    upstream: app\n"
                                 "    plugins:\n"
                                 "      jwt:\n"
                                 "        keys: [{secret: abcdefabcdefabcdefabcdefabcdefab, alg: "
                                 "HS256}]\n"
                                 "        issuer: ${DIFF_TEST_ISSUER}\n"
                                 "        leeway: 1s\n";
    static const char b[] = HEAD "admin: {address: 127.0.0.1:19901, token: two}\n"
                                 "upstreams: {app: {targets: [127.0.0.1:9001]}}\n"
                                 "routes:\n"
                                 "  - name: r\n"
                                 "    match: {path: /}\n"
                                 "    upstream: app\n"
                                 "    plugins:\n"
                                 "      jwt:\n"
                                 "        keys: [{secret: 0123456789abcdef0123456789abcdef, alg: "
                                 "HS256}]\n"
                                 "        issuer: ${DIFF_TEST_ISSUER}x\n"
                                 "        leeway: 2s\n";
    char *json = NULL, *got;

    setenv("DIFF_TEST_ISSUER", "https://idp.example/", 1);
    got = diff(a, b, &json);
    CHECK_STREQ(got, "~ setting admin: token changed (not shown)\n"
                     "~ route r: jwt.keys changed (not shown); jwt.issuer changed (not shown); "
                     "jwt.leeway 1s -> 2s\n");
    CHECK(json != NULL && strstr(json, "abcdef") == NULL && strstr(json, "idp.example") == NULL &&
          strstr(json, "two") == NULL);
    free(got);
    free(json);
}

static void test_the_json_names_kind_name_change_and_details(void)
{
    char *json = NULL;
    char *got = diff(base,
                     HEAD "upstreams:\n"
                          "  users:\n"
                          "    targets:\n"
                          "      - {address: 127.0.0.1:9001, weight: 2}\n"
                          "      - 127.0.0.1:9002\n"
                          "    timeouts: {connect: 2s}\n"
                          "    retries: 3\n"
                          "routes:\n"
                          "  - name: users\n"
                          "    match: {path: /v1/users, methods: [GET]}\n"
                          "    upstream: users\n"
                          "  - name: old\n"
                          "    match: {path: /old}\n"
                          "    upstream: users\n",
                     &json);

    CHECK_STREQ(json, "[{\"kind\": \"upstream\", \"name\": \"users\", \"change\": \"changed\", "
                      "\"details\": [\"retries 1 -> 3\"]}, {\"kind\": \"upstream\", \"name\": "
                      "\"users2\", \"change\": \"removed\", \"details\": []}]");
    free(got);
    free(json);
}

/* Every value below that reads "dt-..." or 18099 comes from the environment:
 * none may appear in the diff, whichever field it is in, however it is
 * written (a block scalar, a quoted string over two lines), and a name
 * (a route's, an upstream's key, a listener's address) is not shown either. */
static const char env_old[] = HEAD "log: {level: info, access: /tmp/old-access.log}\n"
                                   "upstreams:\n"
                                   "  app:\n"
                                   "    targets: [127.0.0.1:9001]\n"
                                   "    balance: hash\n"
                                   "    hash_key: header:X-Old\n"
                                   "    health_check: {path: /health, host: old.example}\n"
                                   "routes:\n"
                                   "  - name: r\n"
                                   "    match:\n"
                                   "      path: /old\n"
                                   "      host: old.example\n"
                                   "      headers: {X-Env: old}\n"
                                   "    upstream: app\n"
                                   "    strip_prefix: /old\n"
                                   "    plugins:\n"
                                   "      headers:\n"
                                   "        request:\n"
                                   "          add: {X-Via: old}\n"
                                   "          set: {X-Quoted: old}\n";
static const char env_new[] =
    "workers: 1\n"
    "listen:\n"
    "  - address: 127.0.0.1:18080\n"
    "  - address: \"127.0.0.1:${DT_PORT}\"\n"
    "log: {level: info, access: \"/tmp/${DT_SECRET}.log\"}\n"
    "upstreams:\n"
    "  app:\n"
    "    targets: [\"127.0.0.1:${DT_PORT}\"]\n"
    "    balance: hash\n"
    "    hash_key: \"header:${DT_HEADER}\"\n"
    "    health_check: {path: \"/${DT_SECRET}\", host: \"${DT_SECRET}.example\"}\n"
    "  ${DT_UPSTREAM}:\n"
    "    targets: [127.0.0.1:9009]\n"
    "routes:\n"
    "  - name: r\n"
    "    match:\n"
    "      path: \"/${DT_SECRET}\"\n"
    "      host: \"${DT_SECRET}.example\"\n"
    "      headers: {X-Env: \"${DT_SECRET}\"}\n"
    "    upstream: app\n"
    "    strip_prefix: \"/${DT_SECRET}\"\n"
    "    plugins:\n"
    "      headers:\n"
    "        request:\n"
    "          add:\n"
    "            X-Via: >-\n"
    "              ${DT_SECRET}\n"
    "          set:\n"
    "            X-Quoted: \"first line\n"
    "              ${DT_SECRET}\"\n"
    "  - name: \"${DT_ROUTE}\"\n"
    "    match: {path: /n}\n"
    "    upstream: app\n";

static void test_a_value_from_the_environment_is_never_shown_whatever_the_field(void)
{
    static const char *const secrets[] = {"dt-secret", "18099", "X-Dt-Header", "dt-upstream",
                                          "dt-route"};
    char *json = NULL, *got;

    setenv("DT_SECRET", "dt-secret", 1);
    setenv("DT_PORT", "18099", 1);
    setenv("DT_HEADER", "X-Dt-Header", 1);
    setenv("DT_UPSTREAM", "dt-upstream", 1);
    setenv("DT_ROUTE", "dt-route", 1);
    for (int way = 0; way < 2; way++) {
        got = diff(way ? env_new : env_old, way ? env_old : env_new, &json);
        CHECK(got != NULL && json != NULL);
        for (size_t i = 0; got != NULL && json != NULL && i < 5; i++) {
            CHECK(strstr(got, secrets[i]) == NULL);
            CHECK(strstr(json, secrets[i]) == NULL);
        }
        if (got != NULL && way == 0) {
            CHECK_CONTAINS(got, "+ listener (not shown)\n");
            CHECK_CONTAINS(got, "~ setting log: access changed (not shown)\n");
            CHECK_CONTAINS(got, "~ upstream app: targets changed (not shown); hash_key changed "
                                "(not shown); health_check.path changed (not shown); "
                                "health_check.host changed (not shown)\n");
            CHECK_CONTAINS(got, "+ upstream (not shown)\n");
            CHECK_CONTAINS(got, "~ route r: match.host changed (not shown); match.path changed "
                                "(not shown); match.headers changed (not shown); strip_prefix "
                                "changed (not shown); headers.request.add.X-Via changed (not "
                                "shown); headers.request.set.X-Quoted changed (not shown)\n");
            CHECK_CONTAINS(got, "+ route (not shown)\n");
        }
        free(got);
        free(json);
    }
}

/* A subtree one side adds whole is compared key by key, so a secret under
 * it is hidden as any other; so are the values of headers whose names
 * look secret, in a route's match.headers and in a plugin's maps and
 * lists of headers. */
static void test_secrets_are_hidden_in_added_subtrees_and_secret_looking_headers(void)
{
    static const char a[] = HEAD "upstreams: {app: {targets: [127.0.0.1:9001]}}\n"
                                 "routes:\n"
                                 "  - name: r\n"
                                 "    match: {path: /}\n"
                                 "    upstream: app\n"
                                 "    plugins:\n"
                                 "      headers: {request: {add: {X-A: \"1\"}}}\n"
                                 "      split: {to: [{upstream: app, weight: 1}]}\n";
    static const char b[] = HEAD "upstreams: {app: {targets: [127.0.0.1:9001]}}\n"
                                 "routes:\n"
                                 "  - name: r\n"
                                 "    match:\n"
                                 "      path: /\n"
                                 "      headers: {Authorization: \"Bearer sekrit-1\", X-Tenant: "
                                 "blue}\n"
                                 "    upstream: app\n"
                                 "    plugins:\n"
                                 "      headers:\n"
                                 "        request:\n"
                                 "          add: {X-A: \"1\"}\n"
                                 "          set: {Authorization: \"Bearer sekrit-2\", X-Api-Key: "
                                 "sekrit-3, X-Plain: shown}\n"
                                 "      split:\n"
                                 "        to: [{upstream: app, weight: 1}]\n"
                                 "        pin: [{header: X-Session-Key, value: sekrit-4, "
                                 "upstream: app}, {header: X-Beta, value: \"yes\", upstream: "
                                 "app}]\n";
    char *json = NULL, *got = diff(a, b, &json);

    CHECK_STREQ(got, "~ route r: match.headers (none) -> {Authorization: (not shown), X-Tenant: "
                     "\"blue\"}; split.pin (unset) -> [{header: X-Session-Key, value: (not "
                     "shown), upstream: app}, {header: X-Beta, value: \"yes\", upstream: app}]; "
                     "headers.request.set.Authorization (unset) -> (set); "
                     "headers.request.set.X-Api-Key (unset) -> (set); "
                     "headers.request.set.X-Plain (unset) -> shown\n");
    CHECK(json != NULL && strstr(json, "sekrit") == NULL);
    free(got);
    free(json);
}

/* Only a value whose own text came from ${VAR} is hidden: not its
 * neighbours on the same line, and not a literal "$${X}". */
static void test_a_value_is_hidden_only_when_its_own_text_came_from_the_environment(void)
{
    static const char a[] =
        HEAD "upstreams: {app: {targets: [127.0.0.1:9001]}}\n"
             "routes:\n"
             "  - name: r\n"
             "    match: {path: /}\n"
             "    upstream: app\n"
             "    plugins:\n"
             "      rate_limit: {rate: 100/s, store: local, key: \"header:${DT_KEY}\"}\n"
             "      headers: {request: {add: {X-Price: \"$$$${A}\", X-Key-Id: \"${DT_KEY}\"}}}\n";
    static const char b[] =
        HEAD "upstreams: {app: {targets: [127.0.0.1:9001]}}\n"
             "routes:\n"
             "  - name: r\n"
             "    match: {path: /}\n"
             "    upstream: app\n"
             "    plugins:\n"
             "      rate_limit: {rate: 200/s, store: local, key: \"header:${DT_KEY}\"}\n"
             "      headers: {request: {add: {X-Price: \"$$$${B}\", X-Key-Id: \"${DT_KEY}\"}}}\n";

    setenv("DT_KEY", "X-Client", 1);
    expect(a, b,
           "~ route r: rate_limit.rate 100/s -> 200/s; "
           "headers.request.add.X-Price \"$${A}\" -> \"$${B}\"\n");
}

int main(void)
{
    RUN(test_a_config_compared_with_itself_changes_nothing);
    RUN(test_the_same_values_written_otherwise_are_no_change);
    RUN(test_targets_and_balance_changes_are_one_line_for_the_upstream);
    RUN(test_routes_added_removed_and_changed_are_listed_by_name);
    RUN(test_a_plugin_setting_change_names_the_key_and_both_values);
    RUN(test_a_default_plugin_change_is_listed_once_not_on_every_route);
    RUN(test_a_route_turning_a_default_off_or_taking_it_back_says_so);
    RUN(test_top_level_settings_are_compared_as_parsed);
    RUN(test_listeners_are_matched_by_address);
    RUN(test_secrets_and_environment_values_are_never_shown);
    RUN(test_the_json_names_kind_name_change_and_details);
    RUN(test_a_value_from_the_environment_is_never_shown_whatever_the_field);
    RUN(test_secrets_are_hidden_in_added_subtrees_and_secret_looking_headers);
    RUN(test_a_value_is_hidden_only_when_its_own_text_came_from_the_environment);
    return check_done();
}
