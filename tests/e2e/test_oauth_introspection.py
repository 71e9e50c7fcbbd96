"""The oauth_introspection plugin: opaque bearer tokens checked with an RFC 7662
introspection endpoint, then against what the route asks, in front of the
real origin.

The endpoint is the test IdP of idp.py (HTTPS on 127.0.0.1, a certificate
from a test CA given to the gateway with ca:): it answers from idp.tokens,
counts the introspection requests per token, keeps the last one, and can be
made slow, made to fail or taken down. What the upstream saw is read from
the origin's /headers answer: {"method", "path" (the request target),
"headers"}.
"""

import base64
import re
import secrets
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml

from conftest import basic_config, check_config, free_port, wait_for, wait_port
from idp import CLIENT_ID, CLIENT_SECRET, IdP, idp, idp_pki  # noqa: F401 (fixtures)

PLUGIN = "oauth_introspection"


def new_token():
    """An opaque token nobody else uses (RFC 6750 b64token characters)."""
    return "at_" + secrets.token_urlsafe(24)


def active(sub="alice", scope="users:read", **over):
    """An RFC 7662 answer for an active token, valid for 5 minutes."""
    now = int(time.time())
    a = {"active": True, "sub": sub, "scope": scope, "client_id": "mobile-app",
         "token_type": "Bearer", "iat": now, "exp": now + 300}
    a.update(over)
    return {k: v for k, v in a.items() if v is not None}


def oi_conf(idp, idp_pki, **over):
    c = {"endpoint": idp.introspection_endpoint, "client_id": CLIENT_ID,
         "client_secret": CLIENT_SECRET, "ca": idp_pki.idp_ca.path if idp.tls else None,
         "realm": "api"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def gateway(sluice_factory, origin, conf, extra_plugins=None, env=None, **extra):
    plugins = {PLUGIN: conf}
    plugins.update(extra_plugins or {})
    routes = [{"name": "api", "match": {"path": "/"}, "upstream": "app", "plugins": plugins}]
    return sluice_factory(basic_config(free_port(), {"app": [origin.address]}, routes=routes,
                                       **extra), env=env)


def call(s, token=None, path="/headers", method="GET", headers=None, session=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    return (session or requests).request(method, s.url + path, headers=h, timeout=20)


def upstream_headers(r):
    """The header lines the origin received, as (name, value)."""
    assert r.status_code == 200, r.text
    return [tuple(h) for h in r.json()["headers"]]


def seen(r, name):
    return [v for n, v in upstream_headers(r) if n.lower() == name.lower()]


def assert_ok(r):
    assert r.status_code == 200, (r.status_code, r.headers, r.text)


def assert_invalid(r):
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.json()["error"] == "invalid_token", r.text
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


def assert_missing(r):
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def assert_forbidden(r, scope=None):
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.json()["error"] == "insufficient_scope", r.text
    want = 'Bearer realm="api", error="insufficient_scope"'
    if scope:
        want += f', scope="{scope}"'
    assert r.headers["WWW-Authenticate"] == want


def assert_unavailable(r):
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.json()["error"] == "auth_unavailable", r.text
    assert re.fullmatch(r"\d+", r.headers.get("Retry-After", "")), r.headers


def log_lines(s, n):
    """The access log once it has n lines."""
    return wait_for(lambda: (lambda l: l if len(l) >= n else None)(s.access_log()),
                    timeout=5, what=f"{n} access log lines")


@pytest.fixture
def gw(sluice_factory, origin, idp, idp_pki):
    """A gateway asking the IdP, with no scopes or claims asked."""
    return gateway(sluice_factory, origin, oi_conf(idp, idp_pki))


# -- allowed, and what reaches the upstream ----------------------------------------------------


def test_an_active_token_passes_and_its_claims_reach_the_upstream(sluice_factory, origin, idp,
                                                                  idp_pki):
    t = new_token()
    idp.tokens[t] = active(ext={"tenant": "acme"})
    conf = oi_conf(idp, idp_pki, forward_claims={"sub": "X-User-Id", "client_id": "X-Client",
                                                 "ext.tenant": "X-Tenant"})
    s = gateway(sluice_factory, origin, conf)
    r = call(s, t, headers={"X-User-Id": "mallory", "X-Tenant": "evil"})
    assert seen(r, "X-User-Id") == ["alice"]
    assert seen(r, "X-Client") == ["mobile-app"]
    assert seen(r, "X-Tenant") == ["acme"]
    assert idp.introspections(t) == 1


def test_a_spoofed_forwarded_header_never_reaches_the_upstream(sluice_factory, origin, idp,
                                                               idp_pki):
    conf = oi_conf(idp, idp_pki, forward_claims={"sub": "X-User-Id"})
    s = gateway(sluice_factory, origin, conf)
    nosub = new_token()
    idp.tokens[nosub] = active(sub=None)  # active, but without a sub claim
    spoof = {"X-User-Id": "mallory"}
    r = call(s, nosub, headers=spoof)
    assert seen(r, "X-User-Id") == []
    before = origin.stats()["requests"]
    inactive = new_token()
    idp.tokens[inactive] = {"active": False, "sub": "mallory"}
    assert_invalid(call(s, inactive, headers=spoof))
    assert_missing(call(s, headers=spoof))
    assert origin.stats()["requests"] == before + 1  # only this /stats call got through


def test_strip_authorization_keeps_the_token_from_the_upstream(sluice_factory, origin, idp,
                                                               idp_pki):
    t = new_token()
    idp.tokens[t] = active()
    kept = gateway(sluice_factory, origin, oi_conf(idp, idp_pki))
    assert seen(call(kept, t), "Authorization") == [f"Bearer {t}"]
    stripped = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, strip_authorization=True))
    assert seen(call(stripped, t), "Authorization") == []


# -- rejected with 401 -------------------------------------------------------------------------


def test_an_inactive_token_is_rejected(gw, idp):
    t = new_token()
    idp.tokens[t] = {"active": False}
    assert_invalid(call(gw, t))
    assert idp.introspections(t) == 1
    assert log_lines(gw, 1)[-1]["auth"] == "invalid"


def test_a_token_the_idp_does_not_know_is_rejected(gw, idp):
    t = new_token()
    assert_invalid(call(gw, t))
    assert idp.introspections(t) == 1
    assert idp.introspections() == 1


@pytest.mark.parametrize("value", ["true", 1, None, "missing"])
def test_active_must_be_the_json_true(gw, idp, value):
    t = new_token()
    answer = active()
    if value == "missing":
        del answer["active"]
    else:
        answer["active"] = value
    idp.tokens[t] = answer
    assert_invalid(call(gw, t))


def test_an_active_token_past_its_exp_is_rejected_as_expired(gw, idp):
    t = new_token()
    idp.tokens[t] = active(exp=int(time.time()) - 3600)
    assert_invalid(call(gw, t))
    assert log_lines(gw, 1)[-1]["auth"] == "expired"


def test_an_active_token_not_yet_valid_is_rejected(gw, idp):
    t = new_token()
    idp.tokens[t] = active(nbf=int(time.time()) + 3600)
    assert_invalid(call(gw, t))


def test_a_missing_token_gets_401_with_a_realm_and_no_idp_call(gw, idp):
    assert_missing(call(gw))
    assert_missing(call(gw, headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}))
    assert idp.introspections() == 0
    assert [l["auth"] for l in log_lines(gw, 2)] == ["missing", "missing"]


def test_a_token_over_max_token_size_is_rejected_without_asking_the_idp(sluice_factory, origin,
                                                                      idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, max_token_size="1k"))
    small, big = new_token(), "at_" + "x" * 1100
    idp.tokens[small] = active()
    idp.tokens[big] = active()
    assert_ok(call(s, small))
    assert_invalid(call(s, big))
    assert idp.introspections(big) == 0
    assert idp.introspections() == 1


# -- the introspection request ----------------------------------------------------------------


def test_the_introspection_request_is_an_rfc_7662_post_with_basic_credentials(gw, idp):
    t = new_token()
    idp.tokens[t] = active()
    assert_ok(call(gw, t))
    req = idp.last
    assert req["method"] == "POST"
    assert req["path"] == "/introspect"
    auth = [v for k, v in req["header_list"] if k.lower() == "authorization"]
    assert auth == ["Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()]
    assert req["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert [v for k, v in req["header_list"] if k.lower() == "accept"] == ["application/json"]
    assert req["body"] == f"token={t}&token_type_hint=access_token".encode()


def test_a_token_with_form_special_characters_is_form_urlencoded(gw, idp):
    t = "a+b/c" + secrets.token_hex(8) + "=="  # b64token: + / and trailing = are allowed
    idp.tokens[t] = active()
    assert_ok(call(gw, t))
    req = idp.last
    assert req["form"] == {"token": [t], "token_type_hint": ["access_token"]}, req["body"]
    raw = req["body"].decode()
    assert raw.startswith("token=a%2Bb%2Fc"), raw
    assert raw.endswith("%3D%3D&token_type_hint=access_token"), raw
    assert urllib.parse.unquote_plus(raw.split("&")[0][len("token="):]) == t


def test_credentials_are_form_urlencoded_before_base64(sluice_factory, origin, idp, idp_pki):
    """RFC 6749 2.3.1: a ':' in the secret cannot split the pair wrongly."""
    idp.client_id, idp.client_secret = "gw:edge 1", "p@ss:w%rd+/ &~"
    s = gateway(sluice_factory, origin,
                oi_conf(idp, idp_pki, client_id=idp.client_id, client_secret=idp.client_secret))
    t = new_token()
    idp.tokens[t] = active()
    assert_ok(call(s, t))
    pair = base64.b64decode(idp.last["headers"]["authorization"].split()[1]).decode()
    assert pair == "gw%3Aedge%201:p%40ss%3Aw%25rd%2B%2F%20%26~", pair


def test_the_client_secret_can_come_from_the_environment(sluice_factory, origin, idp, idp_pki):
    conf = oi_conf(idp, idp_pki, client_secret="${SLUICE_TEST_OI_SECRET}")
    s = gateway(sluice_factory, origin, conf, env={"SLUICE_TEST_OI_SECRET": CLIENT_SECRET})
    t = new_token()
    idp.tokens[t] = active()
    assert_ok(call(s, t))
    assert idp.last["headers"]["authorization"] == idp.basic()


def test_a_plain_http_endpoint_on_loopback_is_used(sluice_factory, origin, idp_pki):
    plain = IdP(tls=False).start()
    try:
        s = gateway(sluice_factory, origin, oi_conf(plain, idp_pki))
        t = new_token()
        plain.tokens[t] = active()
        assert_ok(call(s, t))
        assert plain.introspections(t) == 1
        assert "warning" not in s.error_log()
    finally:
        plain.stop()


# -- the cache ---------------------------------------------------------------------------------


def test_a_second_request_with_the_same_token_makes_no_idp_call(gw, idp):
    t, other = new_token(), new_token()
    idp.tokens[t] = active()
    idp.tokens[other] = active(sub="bob")
    with requests.Session() as session:
        for _ in range(5):
            assert_ok(call(gw, t, session=session))
    assert idp.introspections(t) == 1
    assert seen(call(gw, other), "Authorization") == [f"Bearer {other}"]
    assert idp.introspections(other) == 1
    assert idp.introspections() == 2


def test_an_active_answer_is_kept_for_cache_ttl(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, cache_ttl="1s"))
    t = new_token()
    idp.tokens[t] = active()  # exp in 5 minutes: cache_ttl is the shorter
    started = time.monotonic()
    assert_ok(call(s, t))
    assert_ok(call(s, t))
    assert idp.introspections(t) == 1
    time.sleep(max(0.0, started + 1.4 - time.monotonic()))
    idp.tokens[t] = {"active": False}  # revoked meanwhile: the new answer counts
    assert_invalid(call(s, t))
    assert idp.introspections(t) == 2


def test_a_cached_answer_never_outlives_the_tokens_exp(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, cache_ttl="60s"))
    t = new_token()
    exp = int(time.time()) + 2
    idp.tokens[t] = active(exp=exp)
    assert_ok(call(s, t))
    assert_ok(call(s, t))
    assert idp.introspections(t) == 1
    time.sleep(max(0.0, exp - time.time()) + 0.3)
    assert_invalid(call(s, t))
    assert log_lines(s, 3)[-1]["auth"] == "expired"


def test_cache_ttl_0_asks_the_idp_every_time(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, cache_ttl="0s"))
    t = new_token()
    idp.tokens[t] = active()
    for _ in range(3):
        assert_ok(call(s, t))
    assert idp.introspections(t) == 3


def test_an_inactive_answer_is_kept_for_negative_ttl(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, negative_ttl="1s"))
    t = new_token()
    idp.tokens[t] = {"active": False}
    started = time.monotonic()
    assert_invalid(call(s, t))
    idp.tokens[t] = active()  # the IdP changes its mind: not seen until negative_ttl passes
    assert_invalid(call(s, t))
    assert_invalid(call(s, t))
    assert idp.introspections(t) == 1
    time.sleep(max(0.0, started + 1.4 - time.monotonic()))
    assert_ok(call(s, t))
    assert idp.introspections(t) == 2


def test_negative_ttl_0_asks_again_for_an_inactive_token(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, negative_ttl="0s"))
    t = new_token()
    idp.tokens[t] = {"active": False}
    assert_invalid(call(s, t))
    idp.tokens[t] = active()
    assert_ok(call(s, t))
    assert idp.introspections(t) == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_requests_for_one_token_wait_for_one_introspection(sluice_factory, origin,
                                                                      idp, idp_pki, workers):
    t = new_token()
    idp.tokens[t] = active()
    conf = oi_conf(idp, idp_pki, forward_claims={"sub": "X-User-Id"})
    s = gateway(sluice_factory, origin, conf, workers=workers)
    idp.delay = 0.5  # every request arrives while the one introspection is under way

    def one(_):
        with requests.Session() as session:
            r = call(s, t, session=session)
            return r.status_code, seen(r, "X-User-Id") if r.status_code == 200 else r.text

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(one, range(100)))
    assert [code for code, _ in results] == [200] * 100, [x for x in results if x[0] != 200][:3]
    assert [got for _, got in results] == [["alice"]] * 100
    assert idp.introspections(t) == 1
    # Later requests, on new connections (any worker): still that one call.
    idp.delay = 0.0
    for _ in range(10):
        assert_ok(call(s, t))
    assert idp.introspections(t) == 1
    assert idp.introspections() == 1


def test_concurrent_requests_for_many_tokens_each_get_their_own_answer(sluice_factory, origin,
                                                                       idp, idp_pki):
    users = {new_token(): f"user{i}" for i in range(20)}
    for t, sub in users.items():
        idp.tokens[t] = active(sub=sub)
    conf = oi_conf(idp, idp_pki, forward_claims={"sub": "X-User-Id"})
    s = gateway(sluice_factory, origin, conf, workers=2)
    idp.delay = 0.3
    jobs = [t for t in users for _ in range(5)]

    def one(t):
        with requests.Session() as session:
            r = call(s, t, session=session)
            return t, r.status_code, seen(r, "X-User-Id") if r.status_code == 200 else r.text

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(one, jobs))
    wrong = [(users[t], code, got) for t, code, got in results if (code, got) != (200,
                                                                                [users[t]])]
    assert wrong == []
    assert {t: idp.introspections(t) for t in users} == {t: 1 for t in users}


# -- an IdP that fails -------------------------------------------------------------------------


def test_an_idp_down_from_the_start_gives_503_and_never_200(sluice_factory, origin, idp,
                                                            idp_pki):
    t = new_token()
    idp.tokens[t] = active()
    idp.stop()
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki))
    for _ in range(5):
        assert_unavailable(call(s, t))
    assert log_lines(s, 5)[-1]["auth"] == "unavailable"
    # The IdP comes up: failures were not cached, the next request asks.
    idp.start()
    assert_ok(call(s, t))
    assert idp.introspections(t) == 1


def test_an_idp_answering_500_gives_503_and_is_asked_again(gw, idp):
    t = new_token()
    idp.tokens[t] = active()
    idp.introspect_status = 500
    assert_unavailable(call(gw, t))
    assert_unavailable(call(gw, t))
    assert idp.introspections(t) == 2
    idp.introspect_status = 200
    assert_ok(call(gw, t))
    assert idp.introspections(t) == 3


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"active": true, "sub": "alice"'])
def test_an_unparsable_answer_gives_503_and_is_asked_again(gw, idp, body):
    t = new_token()
    idp.tokens[t] = body
    assert_unavailable(call(gw, t))
    idp.tokens[t] = active()
    assert_ok(call(gw, t))
    assert idp.introspections(t) == 2


def test_a_slow_idp_past_the_timeout_gives_503(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, timeout="300ms"))
    t = new_token()
    idp.tokens[t] = active()
    idp.delay = 1.5
    started = time.monotonic()
    r = call(s, t)
    took = time.monotonic() - started
    assert_unavailable(r)
    assert 0.25 <= took < 1.2, took
    idp.delay = 0.0
    assert_ok(call(s, t))
    assert idp.introspections(t) == 2


def test_a_wrong_client_secret_gives_503_and_is_never_a_pass(sluice_factory, origin, idp,
                                                             idp_pki):
    wrong = "not-the-secret-7d1e"
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, client_secret=wrong))
    t = new_token()
    idp.tokens[t] = active()
    assert_unavailable(call(s, t))
    assert_unavailable(call(s, t))
    assert idp.introspections(t) == 2  # the 401 invalid_client is not cached either
    assert idp.last["headers"]["authorization"] == idp.basic(client_secret=wrong)
    text = s.access_text() + s.error_log()
    assert wrong not in text and t not in text


def test_the_idp_certificate_is_verified(sluice_factory, origin, idp, idp_pki):
    # No ca: the test CA is not among the system's, so the IdP is not trusted.
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, ca=None))
    t = new_token()
    idp.tokens[t] = active()
    assert_unavailable(call(s, t))
    assert idp.introspections() == 0


# -- rejected with 403 -------------------------------------------------------------------------


def test_a_token_without_a_required_scope_is_forbidden(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki,
                                                scopes=["users:read", "users:admin"]))
    t1, t2, t3 = new_token(), new_token(), new_token()
    idp.tokens[t1] = active(scope="users:read users:write")
    idp.tokens[t2] = active(scope="users:admin users:read")
    idp.tokens[t3] = active(scope=None)
    assert_forbidden(call(s, t1), scope="users:read users:admin")
    assert_ok(call(s, t2))
    assert_forbidden(call(s, t3), scope="users:read users:admin")
    assert log_lines(s, 3)[0]["auth"] == "forbidden"


def test_a_role_that_is_not_allowed_is_forbidden(sluice_factory, origin, idp, idp_pki):
    conf = oi_conf(idp, idp_pki, claims={"role": ["admin", "editor"], "org.id": "42"})
    s = gateway(sluice_factory, origin, conf)
    cases = [(active(role="viewer", org={"id": "42"}), 403),
             (active(role="editor", org={"id": "7"}), 403),
             (active(role="editor"), 403),
             (active(org={"id": "42"}), 403),
             (active(role="editor", org={"id": "42"}), 200),
             (active(role=["viewer", "admin"], org={"id": "42"}), 200)]
    for answer, want in cases:
        t = new_token()
        idp.tokens[t] = answer
        r = call(s, t)
        if want == 403:
            assert_forbidden(r)
        else:
            assert_ok(r)


def test_a_method_rule_applies_to_its_methods_only(sluice_factory, origin, idp, idp_pki):
    rules = [{"methods": ["POST"], "scopes": ["users:write"]}]
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, rules=rules))
    reader, writer = new_token(), new_token()
    idp.tokens[reader] = active(scope="users:read")
    idp.tokens[writer] = active(scope="users:read users:write")
    assert_ok(call(s, reader))
    assert_forbidden(call(s, reader, method="POST", path="/echo"), scope="users:write")
    assert_ok(call(s, writer, method="POST", path="/echo"))
    assert idp.introspections() == 2


# -- where the token comes from ----------------------------------------------------------------


def test_a_token_in_the_query_is_taken_out_of_the_forwarded_url(sluice_factory, origin, idp,
                                                                idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, token_from=["query:access_token"]))
    t = new_token()
    idp.tokens[t] = active()
    r = call(s, path=f"/headers?a=1&access_token={t}&b=2")
    assert_ok(r)
    assert r.json()["path"] == "/headers?a=1&b=2"
    assert idp.last["form"]["token"] == [t]
    assert_missing(call(s, t))  # the header is not a place it looks
    assert idp.introspections() == 1


def test_a_query_token_reaches_the_idp_decoded(sluice_factory, origin, idp, idp_pki):
    """RFC 6750 2.3: the parameter is form-encoded; the IdP gets the token."""
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, token_from=["query:access_token"]))
    t = "a+b/" + secrets.token_hex(6) + "=="
    idp.tokens[t] = active()
    r = call(s, path="/headers?access_token=" + urllib.parse.quote(t, safe="") + "&x=1")
    assert_ok(r)
    assert idp.last["form"]["token"] == [t]
    assert r.json()["path"] == "/headers?x=1"


def test_an_empty_token_is_refused_without_asking_the_idp(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki,
                                                token_from=["query:access_token",
                                                            "header:Authorization"]))
    assert_invalid(call(s, path="/headers?access_token="))
    assert_missing(call(s, headers={"Authorization": "Bearer "}))  # the scheme alone
    assert idp.introspections() == 0


def test_a_refresh_token_is_not_an_access_token(gw, idp):
    t = new_token()
    idp.tokens[t] = active(token_type="refresh_token")
    assert_invalid(call(gw, t))


def test_routes_asking_the_same_idp_differently_never_share_answers(sluice_factory, origin, idp,
                                                                    idp_pki):
    """A route with cache_ttl: 0 asks every time, even when another route
    kept the answer; and a token revoked meanwhile is refused there."""
    conf_a, conf_b = oi_conf(idp, idp_pki, cache_ttl="60s"), oi_conf(idp, idp_pki, cache_ttl="0s")
    routes = [{"name": "a", "match": {"path": "/a"}, "upstream": "app",
               "plugins": {PLUGIN: conf_a}},
              {"name": "b", "match": {"path": "/b"}, "upstream": "app",
               "plugins": {PLUGIN: conf_b}}]
    s = sluice_factory(basic_config(free_port(), {"app": [origin.address]}, routes=routes))
    t = new_token()
    idp.tokens[t] = active()
    assert_ok(call(s, t, path="/a"))
    assert_ok(call(s, t, path="/a"))
    assert idp.introspections(t) == 1
    idp.tokens[t] = {"active": False}  # revoked
    assert_invalid(call(s, t, path="/b"))
    assert idp.introspections(t) == 2
    assert_ok(call(s, t, path="/a"))  # a keeps what it was told, as configured


def test_a_token_can_come_from_a_cookie_after_the_header(sluice_factory, origin, idp, idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki,
                                                token_from=["header:Authorization", "cookie:at"]))
    t, h = new_token(), new_token()
    idp.tokens[t] = active(sub="cookie-user")
    idp.tokens[h] = active(sub="header-user")
    assert_ok(call(s, headers={"Cookie": f"theme=dark; at={t}"}))
    assert idp.last["form"]["token"] == [t]
    assert_ok(call(s, h, headers={"Cookie": f"at={t}"}))  # the header is tried first
    assert idp.last["form"]["token"] == [h]
    assert_missing(call(s, headers={"Cookie": "theme=dark"}))


# -- request variables -------------------------------------------------------------------------


def test_a_rate_limit_keyed_by_jwt_sub_gives_each_user_a_quota(sluice_factory, origin, idp,
                                                               idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki),
                extra_plugins={"rate_limit": {"key": "jwt:sub", "rate": "2/m", "burst": 2}})
    alice, alice2, bob = new_token(), new_token(), new_token()
    idp.tokens[alice] = active(sub="alice")
    idp.tokens[alice2] = active(sub="alice")  # another token of alice's: the same quota
    idp.tokens[bob] = active(sub="bob")
    assert call(s, alice).status_code == 200
    assert call(s, alice2).status_code == 200
    assert call(s, alice).status_code == 429
    assert call(s, bob).status_code == 200
    assert call(s, bob).status_code == 200
    assert call(s, bob).status_code == 429


# -- log and metrics ---------------------------------------------------------------------------


def test_the_access_log_has_auth_and_sub_and_never_the_token(sluice_factory, origin, idp,
                                                             idp_pki):
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, scopes=["users:read"]))
    good, bad, narrow, broken = new_token(), new_token(), new_token(), new_token()
    idp.tokens[good] = active(sub="alice@example")
    idp.tokens[bad] = {"active": False}
    idp.tokens[narrow] = active(sub="bob", scope="other")
    idp.tokens[broken] = b"oops"
    assert_ok(call(s, good))
    assert_missing(call(s))
    assert_invalid(call(s, bad))
    assert_forbidden(call(s, narrow), scope="users:read")
    assert_unavailable(call(s, broken))
    lines = log_lines(s, 5)
    assert [l["auth"] for l in lines] == ["allowed", "missing", "invalid", "forbidden",
                                          "unavailable"]
    assert lines[0]["sub"] == "alice@example"
    assert [l.get("sub") for l in lines[1:3]] == [None, None]
    text = s.access_text() + s.error_log()
    for t in (good, bad, narrow, broken):
        assert t not in text and t[3:20] not in text


def test_metrics_count_auth_decisions_by_result(sluice_factory, origin, idp, idp_pki):
    admin = free_port()
    s = gateway(sluice_factory, origin, oi_conf(idp, idp_pki, scopes=["users:read"]),
                admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    ok, inactive, expired, narrow, broken = (new_token() for _ in range(5))
    idp.tokens.update({ok: active(), inactive: {"active": False},
                       expired: active(exp=int(time.time()) - 60),
                       narrow: active(scope="other"), broken: b"<html>"})
    assert_ok(call(s, ok))
    assert_ok(call(s, ok))  # from the cache: still a decision
    assert_missing(call(s))
    assert_invalid(call(s, inactive))
    assert_invalid(call(s, expired))
    assert_forbidden(call(s, narrow), scope="users:read")
    assert_unavailable(call(s, broken))
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    got = {}
    for m in re.finditer(r'^sluice_auth_decisions_total\{route="api",plugin="oauth_introspection",'
                         r'result="(\w+)"\} (\d+)$', text, re.M):
        got[m.group(1)] = int(m.group(2))
    assert got == {"allowed": 2, "missing": 1, "invalid": 1, "expired": 1, "forbidden": 1,
                   "unavailable": 1}, text
    assert "# TYPE sluice_auth_decisions_total counter" in text


# -- sluice -t ---------------------------------------------------------------------------------


GOOD = {"endpoint": "https://idp.test/introspect", "client_id": "gw", "client_secret": "s"}


def check_section(tmp_path, origin, section):
    conf = basic_config(free_port(), {"app": [origin.address]},
                        routes=[{"name": "api", "match": {"path": "/"}, "upstream": "app",
                                 "plugins": {PLUGIN: section}}])
    path = tmp_path / "check.yaml"
    text = yaml.safe_dump(conf, sort_keys=False)
    path.write_text(text)
    rc, out, err = check_config(path)
    return rc, out, err, path, text


def line_of(text, needle, start=1):
    return next(i for i, l in enumerate(text.splitlines(), 1) if i >= start and needle in l)


def test_sluice_t_accepts_a_config_with_every_option(tmp_path, origin, idp_pki):
    section = dict(GOOD, ca=idp_pki.idp_ca.path, timeout="1500ms", cache_ttl="5m",
                   negative_ttl="30s", max_token_size="4k", scopes=["users:read"],
                   claims={"role": ["admin", "editor"], "org.id": "42"},
                   rules=[{"methods": ["POST", "DELETE"], "scopes": ["users:write"]}],
                   forward_claims={"sub": "X-User-Id", "client_id": "X-Client"},
                   strip_authorization=True,
                   token_from=["header:Authorization", "cookie:at", "query:access_token"],
                   realm="api")
    rc, out, err, _, _ = check_section(tmp_path, origin, section)
    assert rc == 0, err
    assert "configuration ok" in out
    assert "warning" not in err, err


def test_sluice_t_accepts_an_http_endpoint_on_loopback_without_a_warning(tmp_path, origin):
    rc, out, err, _, _ = check_section(tmp_path, origin,
                                       dict(GOOD, endpoint="http://127.0.0.1:9/introspect"))
    assert rc == 0, err
    assert "configuration ok" in out
    assert "warning" not in err, err


def test_sluice_t_warns_for_a_non_loopback_http_endpoint(tmp_path, origin):
    started = time.monotonic()
    rc, out, err, path, text = check_section(
        tmp_path, origin, dict(GOOD, endpoint="http://idp.example.invalid/introspect"))
    assert rc == 0, err
    assert "configuration ok" in out
    line = line_of(text, "endpoint:")
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: warning: ", err, re.M), err
    assert time.monotonic() - started < 5


MISSING = ["endpoint", "client_id", "client_secret"]


@pytest.mark.parametrize("key", MISSING)
def test_sluice_t_reports_a_missing_required_setting(tmp_path, origin, key):
    section = {k: v for k, v in GOOD.items() if k != key}
    section["realm"] = "api"
    rc, out, err, path, text = check_section(tmp_path, origin, section)
    assert rc == 1, out + err
    first = line_of(text, f"{PLUGIN}:")
    last = line_of(text, "realm:", first)
    m = re.search(rf"^{re.escape(str(path))}:(\d+):\d+: error: routes\[0\]\.plugins\."
                  rf"{PLUGIN}\b.*\b{key}\b", err, re.M)
    assert m, err
    assert first <= int(m.group(1)) <= last, (m.group(0), first, last)


BAD = {  # the setting, the key it is reported at, the text of the line it is reported at
    "ftp endpoint": ({"endpoint": "ftp://idp.test/introspect"}, "endpoint", "endpoint:"),
    "endpoint not a url": ({"endpoint": "idp.test/introspect"}, "endpoint", "endpoint:"),
    "unknown key": ({"introspect_url": "https://idp.test/x"}, "introspect_url",
                    "introspect_url:"),
    "timeout too short": ({"timeout": "50ms"}, "timeout", "timeout:"),
    "timeout too long": ({"timeout": "61s"}, "timeout", "timeout:"),
    "timeout not a duration": ({"timeout": "soon"}, "timeout", "timeout:"),
    "cache_ttl too long": ({"cache_ttl": "2d"}, "cache_ttl", "cache_ttl:"),
    "negative_ttl too long": ({"negative_ttl": "2h"}, "negative_ttl", "negative_ttl:"),
    "bad token_from": ({"token_from": ["body:token"]}, "token_from", "- body:token"),
    "unreadable ca": ({"ca": "/nonexistent/idp-ca.pem"}, "ca", "ca:"),
    "credentials in the url": ({"endpoint": "https://u:p@idp.test/x"}, "endpoint", "endpoint:"),
    "port out of range": ({"endpoint": "https://idp.test:99999/x"}, "endpoint", "endpoint:"),
    "leeway too long": ({"leeway": "2h"}, "leeway", "leeway:"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_sluice_t_reports_a_bad_setting_with_file_line_and_column(tmp_path, origin, case):
    over, key, needle = BAD[case]
    rc, out, err, path, text = check_section(tmp_path, origin, dict(GOOD, **over))
    assert rc == 1, out + err
    line = line_of(text, needle, line_of(text, f"{PLUGIN}:"))
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: routes\[0\]\.plugins\."
                     rf"{PLUGIN}\.{key}\b", err, re.M), err
