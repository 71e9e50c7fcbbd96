"""The cors plugin: preflights answered by the gateway, CORS headers on every
other answer of the route (the upstream's replaced), and the config errors.

What the client got is read from the raw response header lines (every line
of a name, not requests' merged value); what the upstream saw is the origin's
/headers answer, or nothing at all on a RecordingUpstream, which records
bytes and never answers (a preflight that reached it would hang).
"""

import re

import pytest
import requests
import yaml

from conftest import (RecordingUpstream, basic_config, check_config, free_port, raw_request,
                      wait_for, wait_port)

APP = "https://app.example.com"
POLICY = {
    "origins": [APP, "*.example.org"],
    "methods": ["GET", "POST"],
    "headers": ["Authorization", "Content-Type"],
    "expose_headers": ["RateLimit-Remaining"],
    "credentials": True,
    "max_age": "10m",
}
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


@pytest.fixture
def recording():
    up = RecordingUpstream()
    yield up
    up.close()


def route(cors, **plugins):
    return [{"name": "api", "match": {"path": "/"}, "upstream": "app",
             "plugins": {"cors": cors, **plugins}}]


def gateway(sluice_factory, upstream_address, cors=POLICY, plugins=None, **extra):
    conf = basic_config(free_port(), {"app": [upstream_address]},
                        routes=route(cors, **(plugins or {})), **extra)
    return sluice_factory(conf)


def preflight(s, origin, method="POST", asked=None, path="/"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if asked is not None:
        h["Access-Control-Request-Headers"] = asked
    return requests.options(s.url + path, headers=h, timeout=5)


def get(s, origin=None, path="/headers"):
    return requests.get(s.url + path, headers={"Origin": origin} if origin else {}, timeout=5)


def lines(r, name):
    """Every value the response sent for name, one per header line."""
    return r.raw.headers.getlist(name)


def cors_lines(r):
    return {k.lower() for k in r.raw.headers if k.lower().startswith("access-control-")}


# -- preflights ---------------------------------------------------------------------------------


def test_a_preflight_is_answered_by_the_gateway_with_the_policy_and_never_reaches_the_upstream(
        sluice_factory, recording):
    s = gateway(sluice_factory, recording.address)
    r = preflight(s, APP, "POST", "authorization, content-type")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert lines(r, "Access-Control-Allow-Origin") == [APP]
    assert lines(r, "Access-Control-Allow-Methods") == ["GET, POST"]
    assert lines(r, "Access-Control-Allow-Headers") == ["Authorization, Content-Type"]
    assert lines(r, "Access-Control-Max-Age") == ["600"]
    assert lines(r, "Access-Control-Allow-Credentials") == ["true"]
    assert lines(r, "Vary") == [PREFLIGHT_VARY]
    assert recording.received() == []


@pytest.mark.parametrize("origin,method,asked", [
    ("https://evil.example.com", "POST", None),  # an origin not listed
    (APP, "DELETE", None),                       # a method not listed
    (APP, "POST", "Authorization, X-Secret"),    # a header not listed
    (APP, "PO ST", None),                        # not a method at all
], ids=["origin", "method", "header", "garbage-method"])
def test_a_disallowed_preflight_gets_204_without_cors_headers_and_the_upstream_sees_nothing(
        sluice_factory, recording, origin, method, asked):
    s = gateway(sluice_factory, recording.address)
    r = preflight(s, origin, method, asked)
    assert r.status_code == 204
    assert cors_lines(r) == set(), dict(r.headers)
    assert lines(r, "Vary") == [PREFLIGHT_VARY]
    assert recording.received() == []
    wait_for(lambda: len(s.access_log()) == 1, what="the access log line")
    assert s.access_log()[0]["cors"] == "preflight_refused"


def test_without_headers_configured_a_preflight_gets_the_headers_it_asked_for(
        sluice_factory, recording):
    s = gateway(sluice_factory, recording.address, {"origins": [APP]})
    r = preflight(s, APP, "POST", "x-custom, content-type")
    assert r.status_code == 204
    assert lines(r, "Access-Control-Allow-Headers") == ["x-custom, content-type"]
    assert lines(r, "Access-Control-Allow-Methods") == ["GET, HEAD, POST"]  # the default
    assert lines(r, "Access-Control-Max-Age") == []
    assert lines(r, "Access-Control-Allow-Credentials") == []
    # headers: [] allows none beyond those browsers always allow.
    s2 = gateway(sluice_factory, recording.address, {"origins": [APP], "headers": []})
    r = preflight(s2, APP, "POST", "x-custom")
    assert cors_lines(r) == set()
    r = preflight(s2, APP, "POST")
    assert lines(r, "Access-Control-Allow-Origin") == [APP]
    assert lines(r, "Access-Control-Allow-Headers") == []
    assert recording.received() == []


def test_an_options_request_that_is_no_preflight_goes_to_the_upstream(sluice_factory, origin):
    s = gateway(sluice_factory, origin.address)
    before = origin.stats()["requests"]
    # No Origin: not a preflight; no Access-Control-Request-Method: not one either.
    r = requests.options(s.url + "/", headers={"Access-Control-Request-Method": "POST"}, timeout=5)
    assert r.status_code == 200 and r.text == "Hello, world!"
    r = requests.options(s.url + "/", headers={"Origin": APP}, timeout=5)
    assert r.status_code == 200 and r.text == "Hello, world!"
    # OPTIONS is not in methods: such a request gets no CORS headers.
    assert cors_lines(r) == set() and lines(r, "Vary") == ["Origin"]
    assert origin.stats()["requests"] - before == 3  # the two, and the /stats call itself
    s2 = gateway(sluice_factory, origin.address, {**POLICY, "methods": ["GET", "OPTIONS"]})
    r = requests.options(s2.url + "/", headers={"Origin": APP}, timeout=5)
    assert r.status_code == 200 and lines(r, "Access-Control-Allow-Origin") == [APP]


# -- actual requests ----------------------------------------------------------------------------


def test_an_allowed_exact_origin_gets_itself_back_with_credentials_and_exposed_headers(
        sluice_factory, origin):
    s = gateway(sluice_factory, origin.address)
    r = get(s, APP)
    assert r.status_code == 200
    assert lines(r, "Access-Control-Allow-Origin") == [APP]
    assert lines(r, "Access-Control-Allow-Credentials") == ["true"]
    assert lines(r, "Access-Control-Expose-Headers") == ["RateLimit-Remaining"]
    assert lines(r, "Access-Control-Allow-Methods") == []  # preflights only
    assert lines(r, "Vary") == ["Origin"]
    # The upstream got the request, Origin and all.
    assert ["Origin", APP] in r.json()["headers"]


@pytest.mark.parametrize("sent,allowed", [
    ("https://a.example.org", True),
    ("https://a.b.example.org", True),
    # A plain http page can be anyone's on its network path: it would read
    # answers made with the user's cookies (credentials: true here).
    ("http://a.b.example.org", False),
    ("ftp://a.example.org", False),
    ("https://example.org", False),
    ("https://evilexample.org", False),
    ("https://a.example.org.evil.net", False),
    ("https://a.example.org:8443", False),
    ("null", False),
])
def test_a_subdomain_pattern_allows_https_subdomains_and_nothing_else(
        sluice_factory, origin, sent, allowed):
    s = gateway(sluice_factory, origin.address)
    r = get(s, sent)
    assert r.status_code == 200
    assert lines(r, "Access-Control-Allow-Origin") == ([sent] if allowed else [])
    assert lines(r, "Vary") == ["Origin"]


def test_a_plain_http_pattern_must_be_written_out_and_is_warned_of_with_credentials(
        sluice_factory, origin, tmp_path):
    cors = {"origins": ["http://*.example.org"], "credentials": True}
    s = gateway(sluice_factory, origin.address, cors)
    assert lines(get(s, "http://a.example.org"), "Access-Control-Allow-Origin") == [
        "http://a.example.org"]
    assert lines(get(s, "https://a.example.org"), "Access-Control-Allow-Origin") == []
    conf = basic_config(free_port(), {"app": ["127.0.0.1:1"]}, routes=route(
        {"origins": ["http://*.example.org", "http://app.example.com", "http://localhost:3000",
                     "https://ok.example.com"], "credentials": True}))
    path = tmp_path / "plain.yaml"
    text = yaml.safe_dump(conf, sort_keys=False)
    path.write_text(text)
    rc, out, err = check_config(path)
    assert rc == 0, err
    warned = re.findall(rf"^{re.escape(str(path))}:(\d+):\d+: warning: routes\[0\]\.plugins\."
                        r"cors\.origins\[(\d)\]: (\S+) is plain http: .*use https://", err, re.M)
    assert [(i, o) for _, i, o in warned] == [
        ("0", "http://*.example.org"), ("1", "http://app.example.com")], err
    assert int(warned[0][0]) == next(i for i, l in enumerate(text.splitlines(), 1)
                                     if "http://*.example.org" in l), err
    # Without credentials, nothing to warn of.
    conf["routes"][0]["plugins"]["cors"]["credentials"] = False
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    rc, out, err = check_config(path)
    assert rc == 0 and "warning" not in err, err


def test_star_sends_a_literal_star_on_every_answer_and_needs_no_vary(sluice_factory, origin):
    s = gateway(sluice_factory, origin.address, {"origins": ["*"], "expose_headers": ["X-A"]})
    for o in ("https://anyone.test", None):
        r = get(s, o)
        assert r.status_code == 200
        assert lines(r, "Access-Control-Allow-Origin") == ["*"]
        assert lines(r, "Access-Control-Allow-Credentials") == []
        assert lines(r, "Access-Control-Expose-Headers") == ["X-A"]
        assert lines(r, "Vary") == []
    r = preflight(s, "https://anyone.test", "GET")
    assert r.status_code == 204
    assert lines(r, "Access-Control-Allow-Origin") == ["*"]


def test_a_disallowed_origin_gets_no_cors_headers_but_still_reaches_the_upstream(
        sluice_factory, origin):
    s = gateway(sluice_factory, origin.address)
    r = get(s, "https://evil.example.com")
    assert r.status_code == 200
    assert ["Origin", "https://evil.example.com"] in r.json()["headers"]
    assert cors_lines(r) == set()
    assert lines(r, "Vary") == ["Origin"]  # the answer still depends on Origin
    r = get(s)  # no Origin at all: the same, for caches
    assert cors_lines(r) == set() and lines(r, "Vary") == ["Origin"]


def test_two_origin_lines_get_no_cors_headers(sluice_factory, origin):
    s = gateway(sluice_factory, origin.address)
    raw = (f"GET / HTTP/1.1\r\nHost: gw.test\r\nOrigin: {APP}\r\nOrigin: {APP}\r\n"
           "Connection: close\r\n\r\n").encode()
    head = raw_request(s.listen_ports()[0], raw).split(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 200")
    assert "access-control-" not in head


def test_the_upstreams_own_cors_headers_are_replaced_by_the_gateways(sluice_factory, origin):
    s = gateway(sluice_factory, origin.address)
    path = ("/?header=Access-Control-Allow-Origin:https://evil.test"
            "&header=Access-Control-Allow-Credentials:false"
            "&header=Access-Control-Allow-Methods:DELETE"
            "&header=Access-Control-Expose-Headers:X-Internal")
    r = get(s, APP, path)
    assert lines(r, "Access-Control-Allow-Origin") == [APP]
    assert lines(r, "Access-Control-Allow-Credentials") == ["true"]
    assert lines(r, "Access-Control-Expose-Headers") == ["RateLimit-Remaining"]
    assert lines(r, "Access-Control-Allow-Methods") == []
    r = get(s, "https://evil.test", path)
    assert cors_lines(r) == set()
    # The upstream did send them: without the plugin they come through.
    plain = sluice_factory(basic_config(free_port(), {"app": [origin.address]}), name="plain")
    assert lines(get(plain, APP, path), "Access-Control-Allow-Origin") == ["https://evil.test"]


def test_vary_origin_joins_the_upstreams_vary_without_repeating_it(sluice_factory, origin):
    s = gateway(sluice_factory, origin.address)
    r = get(s, APP, "/?header=Vary:Accept-Encoding")
    assert lines(r, "Vary") == ["Accept-Encoding", "Origin"]
    r = get(s, APP, "/?header=Vary:accept-encoding,%20origin")
    assert lines(r, "Vary") == ["accept-encoding, origin"]
    r = get(s, APP, "/?header=Vary:*")
    assert lines(r, "Vary") == ["*"]
    # Every Vary line counts, not only the first.
    r = get(s, APP, "/?header=Vary:Accept-Encoding&header=Vary:Origin")
    assert lines(r, "Vary") == ["Accept-Encoding", "Origin"]
    r = get(s, APP, "/?header=Vary:Accept-Encoding&header=Vary:X-A,%20*")
    assert lines(r, "Vary") == ["Accept-Encoding", "X-A, *"]


def test_a_method_not_in_methods_gets_no_cors_headers_even_a_simple_one(sluice_factory, origin):
    # methods: [GET]: a page may not POST here, though a browser sends a
    # simple POST without a preflight; the answer must stay unreadable.
    s = gateway(sluice_factory, origin.address, {**POLICY, "methods": ["GET"]})
    r = requests.post(s.url + "/headers", headers={"Origin": APP}, data="x", timeout=5)
    assert r.status_code == 200
    assert cors_lines(r) == set(), dict(r.headers)
    assert lines(r, "Vary") == ["Origin"]
    assert cors_lines(requests.head(s.url + "/", headers={"Origin": APP}, timeout=5)) == set()
    assert lines(get(s, APP), "Access-Control-Allow-Origin") == [APP]
    wait_for(lambda: len(s.access_log()) == 3, what="3 access log lines")
    assert [l.get("cors") for l in s.access_log()] == ["refused", "refused", "allowed"]
    # The default methods, GET, HEAD and POST; ["*"] any.
    s2 = gateway(sluice_factory, origin.address, {"origins": [APP]})
    r = requests.post(s2.url + "/headers", headers={"Origin": APP}, data="x", timeout=5)
    assert lines(r, "Access-Control-Allow-Origin") == [APP]
    r = requests.delete(s2.url + "/headers", headers={"Origin": APP}, timeout=5)
    assert cors_lines(r) == set()
    s3 = gateway(sluice_factory, origin.address, {"origins": ["*"], "methods": ["*"]})
    r = requests.delete(s3.url + "/headers", headers={"Origin": APP}, timeout=5)
    assert lines(r, "Access-Control-Allow-Origin") == ["*"]


def test_gateway_made_errors_carry_cors_headers_and_preflights_need_no_key(
        sluice_factory, origin):
    key = "k-" + "7" * 30
    s = gateway(sluice_factory, origin.address,
                plugins={"api_key": {"keys": [{"consumer": "alice", "key": key}]}})
    r = get(s, APP)
    assert r.status_code == 401 and r.json()["error"] == "invalid_api_key"
    assert lines(r, "Access-Control-Allow-Origin") == [APP]
    assert lines(r, "Access-Control-Allow-Credentials") == ["true"]
    assert lines(r, "Vary") == ["Origin"]
    r = preflight(s, APP, "GET", "x-api-key")
    assert r.status_code == 204, r.text  # not 401: browsers send no credentials here
    r = requests.get(s.url + "/headers", headers={"Origin": APP, "X-Api-Key": key}, timeout=5)
    assert r.status_code == 200 and lines(r, "Access-Control-Allow-Origin") == [APP]


def test_decisions_go_to_the_access_log_and_the_metrics(sluice_factory, origin):
    admin = free_port()
    s = gateway(sluice_factory, origin.address, admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    get(s, APP)
    get(s, "https://evil.test")
    get(s)
    preflight(s, APP)
    preflight(s, APP, "DELETE")
    preflight(s, APP, "DELETE")
    wait_for(lambda: len(s.access_log()) == 6, what="6 access log lines")
    assert [l.get("cors") for l in s.access_log()] == [
        "allowed", "refused", None, "preflight", "preflight_refused", "preflight_refused"]
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    got = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^sluice_cors_requests_total\{route="api",result="(\w+)"\} (\d+)$', text, re.M)}
    assert got == {"allowed": 1, "refused": 1, "preflight": 1, "preflight_refused": 2}


# -- sluice -t ----------------------------------------------------------------------------------


def check(tmp_path, cors, needle=None):
    """sluice -t on a route with this cors section: (line of needle, stderr, path)."""
    conf = basic_config(free_port(), {"app": ["127.0.0.1:1"]}, routes=route(cors))
    path = tmp_path / "bad.yaml"
    text = yaml.safe_dump(conf, sort_keys=False)
    path.write_text(text)
    rc, out, err = check_config(path)
    assert rc == 1, out + err
    line = next(i for i, l in enumerate(text.splitlines(), 1) if needle in l) if needle else None
    return line, err, path


def test_credentials_with_a_star_origin_are_refused_at_load_with_the_position(tmp_path):
    line, err, path = check(tmp_path, {"origins": ["*"], "credentials": True}, "'*'")
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: routes\[0\]\.plugins\.cors\."
                     rf"origins\[0\]: credentials: true needs the origins listed", err, re.M), err


@pytest.mark.parametrize("cors,needle,message", [
    ({"origins": ["https://app.example.com/app"]}, "/app", "an origin has no path"),
    ({"origins": ["https://app.example.com/"]}, "example.com/", "not even a trailing /"),
    ({"origins": ["app.example.com"]}, "app.example.com", "expected SCHEME://HOST[:PORT]"),
    ({"origins": ["https://app.*.example.com"]}, "app.*", "a wildcard is only allowed"),
    ({"origins": ["https://app.example.com:443"]}, ":443", "default port"),
    ({"origins": ["https://app.example.com:99999"]}, ":99999", "a port from 1 to 65535"),
    ({"origins": ["*", APP]}, "'*'", "list it alone"),
    ({"origins": []}, "origins", "at least one origin"),
    ({"origins": [APP], "methods": ["GE T"]}, "GE T", "expected a method (an HTTP token)"),
    ({"origins": [APP], "headers": ["X Custom"]}, "X Custom", "expected a header name"),
    ({"origins": [APP], "expose_headers": ["X:Y"]}, "X:Y", "expected a header name"),
    ({"origins": [APP], "max_age": "1500ms"}, "1500ms", "expected whole seconds"),
    ({"origins": [APP], "max_age": "2d"}, "2d", "at most 1d"),
    ({"origins": [APP], "credentials": "maybe"}, "maybe", "expected true or false"),
    ({"origins": [APP], "allow_origin": [APP]}, "allow_origin", "unknown key"),
    ({"methods": ["GET"]}, None, "origins: is required"),
], ids=["path", "slash", "no-scheme", "inner-wildcard", "default-port", "bad-port",
        "star-and-more", "empty", "method", "header", "expose", "max-age-fraction",
        "max-age-long", "credentials", "unknown-key", "no-origins"])
def test_a_bad_cors_section_is_refused_with_file_line_and_column(tmp_path, cors, needle, message):
    line, err, path = check(tmp_path, cors, needle)
    where = str(line) if line else r"\d+"
    assert re.search(rf"^{re.escape(str(path))}:{where}:\d+: error: routes\[0\]\.plugins\.cors"
                     rf".*{re.escape(message)}", err, re.M), err


def test_every_mistake_of_a_cors_section_is_reported_in_one_run(tmp_path):
    _, err, _ = check(tmp_path, {"origins": ["https://a.test/", "b.test"], "methods": ["G T"],
                                 "max_age": "1500ms"})
    assert err.count(": error: ") == 4, err
