"""The api_key plugin: keys from the config, from a key file (read again on
reload) and from ${VAR}, taken from a header or the URL and never passed
on, the consumer forwarded in X-Consumer (a client cannot forge it), logged
but never the key, and per-consumer rate limits, in memory and in Redis.

What the upstream saw is the origin's /headers answer: its "path" is the
request target it received and "headers" every line, in order.
"""

import json
import os
import re
import secrets
import subprocess

import pytest
import requests
import yaml

from conftest import (SLUICE, basic_config, check_config, free_port, raw_request, wait_for,
                      wait_port)
# Its factory stops a gateway that has talked to Redis within 2 s (SIGKILL after).
from test_rate_limit_redis import sluice_factory  # noqa: F401

ALICE = "ak_alice_" + secrets.token_urlsafe(24)
BOB = "ak_bob_" + secrets.token_urlsafe(24)
KEYS = [{"consumer": "alice", "key": ALICE}, {"consumer": "bob", "key": BOB}]


def config(upstream, api_key, plugins=None, **extra):
    routes = [{"name": "api", "match": {"path": "/"}, "upstream": "app",
               "plugins": {"api_key": api_key, **(plugins or {})}}]
    return basic_config(free_port(), {"app": [upstream]}, routes=routes, **extra)


def gateway(sluice_factory, origin, api_key=None, plugins=None, env=None, **extra):
    conf = config(origin.address, api_key or {"keys": KEYS}, plugins, **extra)
    return sluice_factory(conf, env=env)


def call(s, key=None, path="/headers", headers=None):
    h = dict(headers or {})
    if key is not None:
        h["X-Api-Key"] = key
    return requests.get(s.url + path, headers=h, timeout=5)


def seen(r, name):
    """The values of name among the header lines the origin received."""
    assert r.status_code == 200, r.text
    return [v for n, v in r.json()["headers"] if n.lower() == name.lower()]


def assert_refused(r, message):
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"] == "invalid_api_key" and message in body["message"], body
    assert r.headers["WWW-Authenticate"].startswith("ApiKey header=\"X-Api-Key\""), r.headers


def served(origin):
    return origin.stats()["requests"]


# -- keys, from the header and the URL ------------------------------------------------------------


def test_a_valid_key_passes_with_its_consumer_and_the_key_stays_at_the_gateway(
        sluice_factory, origin):
    s = gateway(sluice_factory, origin)
    r = call(s, ALICE)
    assert seen(r, "X-Consumer") == ["alice"]
    assert seen(r, "X-Api-Key") == []
    assert seen(call(s, BOB), "X-Consumer") == ["bob"]


def test_a_missing_key_gets_401_and_never_reaches_the_upstream(sluice_factory, origin):
    s = gateway(sluice_factory, origin)
    before = served(origin)
    assert_refused(call(s), "an API key is required")
    assert_refused(call(s, ""), "an API key is required")
    assert served(origin) - before == 1  # only the /stats call itself


@pytest.mark.parametrize("key", ["ak_mallory_" + "x" * 30, ALICE[:-1], ALICE + "x", ALICE.upper()],
                         ids=["unknown", "prefix", "longer", "case"])
def test_an_unknown_key_gets_401(sluice_factory, origin, key):
    s = gateway(sluice_factory, origin)
    before = served(origin)
    assert_refused(call(s, key), "the API key is not valid")
    assert served(origin) - before == 1


def test_a_key_header_sent_twice_is_refused_even_when_both_are_valid(sluice_factory, origin):
    s = gateway(sluice_factory, origin)
    raw = (f"GET /headers HTTP/1.1\r\nHost: gw.test\r\nX-Api-Key: {ALICE}\r\n"
           f"X-Api-Key: {BOB}\r\nConnection: close\r\n\r\n").encode()
    resp = raw_request(s.listen_ports()[0], raw)
    assert resp.startswith(b"HTTP/1.1 401"), resp
    assert b"invalid_api_key" in resp


def test_a_key_in_the_query_passes_and_the_upstream_gets_the_url_without_it(
        sluice_factory, origin):
    s = gateway(sluice_factory, origin, {"keys": KEYS, "query": "api_key"})
    r = call(s, path=f"/headers?a=1&api_key={ALICE}&b=two")
    assert r.json()["path"] == "/headers?a=1&b=two"
    assert seen(r, "X-Consumer") == ["alice"]
    # Names compare decoded, as the backend would read them.
    r = call(s, path=f"/headers?api%5Fkey={BOB}&z=9")
    assert r.json()["path"] == "/headers?z=9" and seen(r, "X-Consumer") == ["bob"]
    # The header wins over the query, and neither goes upstream.
    r = call(s, BOB, path=f"/headers?api_key={ALICE}")
    assert seen(r, "X-Consumer") == ["bob"] and r.json()["path"] == "/headers"
    r = call(s, path="/headers?api_key=nope-not-a-valid-key-000")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'ApiKey header="X-Api-Key", query="api_key"'


@pytest.mark.parametrize("query", [
    f"api_key=ak_wrong_{'0' * 20}&api_key={ALICE}",
    f"api_key={ALICE}&api_key={ALICE}",
    f"api_key={ALICE}&b=1&api%5Fkey={BOB}",
    f"api_key=&api_key={ALICE}",
], ids=["bad-then-good", "same-twice", "encoded-twin", "empty-then-good"])
@pytest.mark.parametrize("hide", [True, False])
def test_a_key_parameter_sent_twice_is_refused_like_a_header_sent_twice(
        sluice_factory, origin, query, hide):
    # The gateway reads the first, a backend may read the last: one key only.
    s = gateway(sluice_factory, origin, {"keys": KEYS, "query": "api_key",
                                         "hide_credentials": hide})
    before = served(origin)
    r = call(s, path=f"/headers?{query}")
    assert r.status_code == 401, r.text
    assert r.json()["message"] == "send one API key, not several"
    # Even beside a valid header: what the upstream would read is unclear.
    assert call(s, BOB, path=f"/headers?{query}").status_code == 401
    assert served(origin) - before == 1
    assert seen(call(s, path=f"/headers?api_key={ALICE}"), "X-Consumer") == ["alice"]


def test_the_query_is_not_read_unless_configured(sluice_factory, origin):
    s = gateway(sluice_factory, origin)
    assert_refused(call(s, path=f"/headers?api_key={ALICE}"), "an API key is required")


def test_header_off_reads_the_query_only(sluice_factory, origin):
    s = gateway(sluice_factory, origin, {"keys": KEYS, "header": "off", "query": "key"})
    r = call(s, ALICE)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'ApiKey query="key"'
    assert seen(call(s, path=f"/headers?key={ALICE}"), "X-Consumer") == ["alice"]


def test_hide_credentials_false_passes_the_key_on(sluice_factory, origin):
    s = gateway(sluice_factory, origin,
                {"keys": KEYS, "query": "api_key", "hide_credentials": False})
    r = call(s, ALICE, path=f"/headers?api_key={ALICE}&b=1")
    assert seen(r, "X-Api-Key") == [ALICE]
    assert r.json()["path"] == f"/headers?api_key={ALICE}&b=1"


def test_a_client_cannot_forge_x_consumer_with_either_spelling(sluice_factory, origin):
    s = gateway(sluice_factory, origin, headers_with_underscores="allow")
    raw = (f"GET /headers HTTP/1.1\r\nHost: gw.test\r\nX-Consumer: admin\r\n"
           f"X_Consumer: admin\r\nx-consumer: root\r\nX-Api-Key: {BOB}\r\n"
           "Connection: close\r\n\r\n").encode()
    resp = raw_request(s.listen_ports()[0], raw)
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), resp
    got = json.loads(body)["headers"]
    assert [v for n, v in got if n.lower().replace("_", "-") == "x-consumer"] == ["bob"], got


def test_a_custom_header_carries_the_key(sluice_factory, origin):
    s = gateway(sluice_factory, origin, {"keys": KEYS, "header": "Authorization"})
    r = requests.get(s.url + "/headers", headers={"Authorization": ALICE}, timeout=5)
    assert seen(r, "X-Consumer") == ["alice"] and seen(r, "Authorization") == []
    assert call(s, ALICE).status_code == 401


# -- key files, reloads and ${VAR} ----------------------------------------------------------------


def write_keys(path, pairs, extra=""):
    path.write_text("# consumer: key\n\n" + "".join(f"{c}: {k}\n" for c, k in pairs) + extra)


def test_a_key_file_with_comments_and_blanks_is_read_and_a_reload_picks_up_its_edits(
        sluice_factory, origin, tmp_path):
    keys = tmp_path / "api-keys"
    carol = "ak_carol_" + secrets.token_urlsafe(24)
    write_keys(keys, [("alice", ALICE)], "   # indented comment\n\t\n  bob :  " + BOB + "  \n")
    s = gateway(sluice_factory, origin, {"file": str(keys)})
    assert seen(call(s, ALICE), "X-Consumer") == ["alice"]
    assert seen(call(s, BOB), "X-Consumer") == ["bob"]
    assert call(s, carol).status_code == 401
    # Bob's key revoked, Carol's added: the file alone changed.
    write_keys(keys, [("alice", ALICE), ("carol", carol)])
    s.reload()
    assert "configuration reloaded" in s.error_log()
    assert seen(call(s, carol), "X-Consumer") == ["carol"]
    assert call(s, BOB).status_code == 401
    assert seen(call(s, ALICE), "X-Consumer") == ["alice"]


def test_a_reload_with_a_broken_key_file_keeps_the_keys_in_force(sluice_factory, origin, tmp_path):
    keys = tmp_path / "api-keys"
    write_keys(keys, [("alice", ALICE)])
    s = gateway(sluice_factory, origin, {"file": str(keys)})
    write_keys(keys, [("alice", ALICE)], "oops no colon here at all\n")
    s.reload()
    log = s.error_log()
    assert "reload failed" in log
    assert f"{keys}:4: expected CONSUMER: KEY" in log, log
    assert seen(call(s, ALICE), "X-Consumer") == ["alice"]


def test_keys_from_the_config_and_the_file_are_used_together(sluice_factory, origin, tmp_path):
    keys = tmp_path / "api-keys"
    write_keys(keys, [("bob", BOB)])
    s = gateway(sluice_factory, origin, {"keys": KEYS[:1], "file": str(keys)})
    assert seen(call(s, ALICE), "X-Consumer") == ["alice"]
    assert seen(call(s, BOB), "X-Consumer") == ["bob"]


def test_a_key_from_the_environment_is_expanded(sluice_factory, origin):
    s = gateway(sluice_factory, origin, {"keys": [{"consumer": "alice", "key": "${ALICE_KEY}"}]},
                env={"ALICE_KEY": ALICE})
    assert seen(call(s, ALICE), "X-Consumer") == ["alice"]
    assert call(s, "${ALICE_KEY}").status_code == 401


def test_an_unset_key_variable_is_refused_at_load(tmp_path, origin):
    conf = config(origin.address, {"keys": [{"consumer": "alice", "key": "${ALICE_KEY}"}]})
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "ALICE_KEY"}
    r = subprocess.run([str(SLUICE), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 1
    assert re.search(r"env\.yaml:\d+:\d+: error: routes\[0\]\.plugins\.api_key\.keys\[0\]\.key: "
                     r".*ALICE_KEY", r.stderr), r.stderr


# -- logs and metrics -----------------------------------------------------------------------------


def test_the_access_log_has_the_consumer_and_never_the_key(sluice_factory, origin):
    s = gateway(sluice_factory, origin, {"keys": KEYS, "query": "api_key"},
                log={"level": "debug", "access": "stdout"})
    call(s, ALICE)
    call(s, path=f"/headers?api_key={BOB}&x=1")
    call(s, "ak_wrong_" + ALICE[9:])
    call(s)
    wait_for(lambda: len(s.access_log()) == 4, what="4 access log lines")
    got = [(l["path"], l.get("auth"), l.get("consumer"), l["status"]) for l in s.access_log()]
    assert got == [("/headers", "allowed", "alice", 200), ("/headers", "allowed", "bob", 200),
                   ("/headers", "invalid", None, 401), ("/headers", "missing", None, 401)]
    text = s.access_text() + s.error_log()
    for secret in (ALICE, BOB, ALICE[9:]):
        assert secret[:12] not in text and secret[-12:] not in text


def test_metrics_count_the_decisions(sluice_factory, origin):
    admin = free_port()
    s = gateway(sluice_factory, origin, admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    call(s, ALICE)
    call(s, BOB)
    call(s)
    call(s, "ak_wrong_" + "0" * 20)
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    got = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^sluice_auth_decisions_total\{route="api",plugin="api_key",result="(\w+)"\} (\d+)$',
        text, re.M)}
    assert got == {"allowed": 2, "missing": 1, "invalid": 1}


# -- per-consumer quotas --------------------------------------------------------------------------


def quota_holds_per_consumer(s):
    """alice spends her 3 requests and is refused; bob still passes."""
    assert [call(s, ALICE).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [call(s, BOB).status_code for _ in range(3)] == [200, 200, 200]
    assert call(s, ALICE).status_code == 429
    assert call(s, BOB).status_code == 429
    r = call(s)
    assert r.status_code == 401  # no key: refused before any quota is spent


def test_a_rate_limit_keyed_by_consumer_gives_each_consumer_its_own_quota(sluice_factory, origin):
    s = gateway(sluice_factory, origin,
                plugins={"rate_limit": {"key": "consumer", "rate": "3/h", "store": "local"}})
    quota_holds_per_consumer(s)


def test_a_consumer_quota_in_redis_holds_across_two_gateways(sluice_factory, origin, redis):
    limit = {"key": "consumer", "rate": "3/h", "store": "redis", "on_store_failure": "deny"}
    redis_conf = {"address": redis.address, "timeout": "500ms"}
    a = gateway(sluice_factory, origin, plugins={"rate_limit": limit}, redis=redis_conf)
    b = sluice_factory(config(origin.address, {"keys": KEYS}, {"rate_limit": limit},
                              redis=redis_conf), name="b")
    assert [call(a, ALICE).status_code for _ in range(2)] == [200, 200]
    assert call(b, ALICE).status_code == 200
    assert call(b, ALICE).status_code == 429
    assert call(a, ALICE).status_code == 429
    assert [call(x, BOB).status_code for x in (a, b, a)] == [200, 200, 200]
    assert call(b, BOB).status_code == 429
    keys = redis.cli("KEYS", "sl:rl:*").splitlines()
    assert sorted(keys) == ["sl:rl:api:0:consumer:alice", "sl:rl:api:0:consumer:bob"], keys


# -- sluice -t ------------------------------------------------------------------------------------


def check(tmp_path, api_key):
    conf = config("127.0.0.1:1", api_key)
    path = tmp_path / "bad.yaml"
    text = yaml.safe_dump(conf, sort_keys=False)
    path.write_text(text)
    rc, out, err = check_config(path)
    assert rc == 1, out + err
    return text, err, path


def line_of(text, needle):
    return next(i for i, l in enumerate(text.splitlines(), 1) if needle in l)


@pytest.mark.parametrize("api_key,needle,message", [
    ({"keys": [{"consumer": "alice", "key": "short"}]}, "short", "at least 16 characters"),
    ({"keys": [{"consumer": "al ice", "key": ALICE}]}, "al ice", "a consumer name is made of"),
    ({"keys": [{"consumer": "alice"}]}, "consumer: alice", "key"),
    ({"keys": [{"consumer": "alice", "key": ALICE, "scope": "x"}]}, "scope", "unknown key"),
    ({"keys": {"alice": ALICE}}, "alice", "expected a list of {consumer, key}"),
    ({"keys": []}, "keys", "expected at least one key"),
    ({"header": "X-Api-Key"}, "header", "keys: or file: is required"),
    ({"keys": KEYS, "header": "X Api Key"}, "X Api Key", "expected a header name"),
    ({"keys": KEYS, "header": "off"}, "header", "header: off needs query:"),
    ({"keys": KEYS, "query": "a&b"}, "a&b", "expected a query parameter name"),
    ({"keys": KEYS, "hide_credentials": "sometimes"}, "sometimes", "expected true or false"),
    ({"keys": KEYS, "file": "/nonexistent/api-keys"}, "/nonexistent",
     "cannot read the key file /nonexistent/api-keys: No such file or directory"),
], ids=["short-key", "consumer-name", "no-key", "unknown-item-key", "keys-map", "keys-empty",
        "no-keys", "header-name", "header-off", "query-name", "hide", "missing-file"])
def test_a_bad_api_key_section_is_refused_with_file_line_and_column(tmp_path, api_key, needle,
                                                                     message):
    text, err, path = check(tmp_path, api_key)
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: error: routes\[0\]\.plugins\.api_key"
                     rf".*{re.escape(message)}", err, re.M), err
    line = line_of(text, needle)
    assert re.search(rf"^{re.escape(str(path))}:({line}|{line - 1}|{line + 1}):", err, re.M), err


def test_one_key_for_two_consumers_is_refused_without_showing_the_key(tmp_path):
    text, err, path = check(tmp_path, {"keys": [{"consumer": "alice", "key": ALICE},
                                                {"consumer": "bob", "key": ALICE}]})
    line = [i for i, l in enumerate(text.splitlines(), 1) if ALICE in l][1]
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: routes\[0\]\.plugins\.api_key"
                     rf"\.keys\[1\]\.key: consumer bob has the same key as consumer alice", err,
                     re.M), err
    # Not in the message, nor in the source line quoted under it.
    assert f"{line} | (not shown: the line holds a secret)" in err, err
    assert ALICE not in err and ALICE[9:21] not in err, err


SHORT = "sh0rt-" + secrets.token_hex(4)  # 14 characters: too short to be a key
SPACED = "ak_spaced_" + secrets.token_hex(8) + " " + secrets.token_hex(8)


@pytest.mark.parametrize("keys,secret,message", [
    ([{"consumer": "alice", "key": ALICE}, {"consumer": "bob", "key": ALICE}], ALICE,
     "consumer bob has the same key as consumer alice"),
    ([{"consumer": "alice", "key": SHORT}], SHORT, "at least 16 characters"),
    ([{"consumer": "alice", "key": SPACED}], SPACED, "no spaces"),
    ([{"consumer": "alice", "key": SPACED, "scope": "x"}], SPACED, "scope: unknown key"),
], ids=["duplicate", "too-short", "space", "unknown-key-beside-it"])
@pytest.mark.parametrize("flow", [False, True], ids=["block", "flow"])
def test_sluice_t_never_shows_an_inline_key(tmp_path, keys, secret, message, flow):
    conf = config("127.0.0.1:1", {"keys": keys})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False, default_flow_style=None if flow
                                   else False))
    rc, out, err = check_config(path)
    assert rc == 1 and message in err, err
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: error: routes\[0\]\.plugins\.api_key"
                     rf"\.keys\[\d\]", err, re.M), err
    assert "(not shown: the line holds a secret)" in err, err
    for part in (secret, secret[:10], secret[-10:]):
        assert part not in out + err, err


def test_a_reload_refused_for_an_inline_key_does_not_log_the_key(sluice_factory, origin):
    s = gateway(sluice_factory, origin)
    s.reload(config(origin.address, {"keys": KEYS + [{"consumer": "carol", "key": SPACED}]},
                    listen=s.config["listen"]))
    log = s.error_log()
    assert "reload failed" in log and "no spaces" in log, log
    assert SPACED[:10] not in log and SPACED[-10:] not in log, log
    assert seen(call(s, ALICE), "X-Consumer") == ["alice"]


@pytest.mark.parametrize("api_key,shown", [
    ({"query": 'k"\r\nSet-Cookie: evil'}, r'k"\x0d\x0aSet-Cookie: evil'),
    ({"query": "api key"}, "api key"),
    ({"query": 'k"'}, 'k"'),
    ({"query": "a%5Fb"}, "a%5Fb"),
    ({"query": "a+b"}, "a+b"),
    ({"header": 'X-Key"\r\nSet-Cookie: evil'}, r'X-Key"\x0d\x0aSet-Cookie: evil'),
], ids=["query-crlf", "query-space", "query-quote", "query-percent", "query-plus", "header-crlf"])
def test_a_key_source_that_is_not_a_token_is_refused_and_never_put_in_a_challenge(
        tmp_path, api_key, shown):
    # The name goes in every 401's WWW-Authenticate: "k\"\r\nSet-Cookie:
    # evil" would add a header line to each.
    text, err, path = check(tmp_path, {"keys": KEYS, **api_key})
    name = next(iter(api_key))
    line = line_of(text, f"{name}:")
    what = "a query parameter name" if name == "query" else "a header name"
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: routes\[0\]\.plugins\.api_key"
                     rf"\.{name}: expected {what} \(an RFC 9110 token.*found "
                     rf"\"{re.escape(shown)}\"$", err, re.M), err
    assert "\r" not in err and "\nSet-Cookie" not in err


def test_key_file_errors_name_the_file_and_its_lines_and_never_the_keys(tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text(f"# keys\nalice: {ALICE}\n\nno colon here\nbob: short\nal ice: {BOB}\n"
                    f"carol: {ALICE}\n")
    text, err, path = check(tmp_path, {"keys": [{"consumer": "dave", "key": BOB}],
                                       "file": str(keys)})
    line = line_of(text, "file:")
    for n, msg in [(4, "expected CONSUMER: KEY"), (5, "at least 16 characters"),
                   (6, "a consumer name is made of")]:
        assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: routes\[0\]\.plugins\."
                         rf"api_key\.file: {re.escape(str(keys))}:{n}: .*{re.escape(msg)}", err,
                         re.M), err
    assert err.count(": error: ") == 3, err  # the duplicate waits for a clean file
    assert ALICE not in err and BOB not in err and "bob: short" not in err
    keys.write_text(f"alice: {ALICE}\ncarol: {ALICE}\n")
    text, err, path = check(tmp_path, {"file": str(keys)})
    assert f"{keys}:2: consumer carol has the same key as consumer alice" in err, err
    assert ALICE not in err


# -- the other secrets written in the file --------------------------------------------------------
# jwt's keys[].secret and oauth_introspection's client_secret are declared
# secret the same way (sl_conf_secret()): their lines are never quoted.

SECRET_CONFIG = """\
listen: [{{address: "127.0.0.1:1"}}]
upstreams: {{app: {{targets: [{{address: "127.0.0.1:2"}}]}}}}
routes:
  - name: r
    match: {{path: /}}
    upstream: app
    plugins:
{plugins}
"""


@pytest.mark.parametrize("plugins,message", [
    ("      jwt: {{keys: [{{secret: {s}, alg: HS512, kid: 7}}], scope: x}}", "scope: unknown key"),
    ("      jwt:\n        keys:\n          - secret: {s}\n            alg: HS512",
     "a secret shorter than the hash"),
    ("      oauth_introspection: {{endpoint: 'https://idp.test/i', client_id: gw, "
     "client_secret: {s}, scope: x}}", "scope: unknown key"),
    ("      oauth_introspection:\n        endpoint: 'https://idp.test/i'\n"
     "        client_id: gw\n        client_secret: {{value: {s}}}", "expected a string"),
], ids=["jwt-flow", "jwt-block-warning", "introspection-flow", "introspection-block"])
def test_sluice_t_never_shows_a_jwt_secret_or_a_client_secret(tmp_path, plugins, message):
    secret = "s3cr3t_" + secrets.token_hex(12)
    path = tmp_path / "secret.yaml"
    path.write_text(SECRET_CONFIG.format(plugins=plugins.format(s=secret)))
    rc, out, err = check_config(path)
    assert message in err, err
    assert "(not shown: the line holds a secret)" in err, err
    assert secret[7:19] not in out + err, err
