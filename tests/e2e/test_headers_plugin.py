"""The headers plugin: request headers set, added and removed on their way
upstream, response headers on their way to the client (proxied answers and
the gateway's own), with request variables in the values; nothing a
variable brings can end a header line, and bad names and values are
refused by `sluice -t` at their place."""

import socket
import time

import jwt as pyjwt
import pytest
import requests

from conftest import ScriptedUpstream, basic_config, check_config, free_port

SECRET = "headers-test-secret-" + "x" * 44


def answer(up, c):
    """Each request answered with the upstream's own Server and friends."""
    while up.read_request(c) is not None:
        c.sendall(b"HTTP/1.1 200 OK\r\nServer: origin/1.0\r\nX-Powered-By: php\r\n"
                  b"X-Up: 1\r\nX-Up: 2\r\nContent-Length: 2\r\n\r\nok")


@pytest.fixture
def upstream():
    up = ScriptedUpstream(answer)
    yield up
    up.close()


def last_sent(up):
    """The header lines of the last request the upstream received."""
    with up.lock:
        head = up.requests[-1]
    return [tuple(p.strip() for p in line.decode("latin-1").split(":", 1))
            for line in head.split(b"\r\n")[1:]]


def values(lines, name):
    return [v for n, v in lines if n.lower() == name.lower()]


def raw_get(port, path="/", headers=()):
    """One GET on a fresh connection: (status, header lines as sent)."""
    req = f"GET {path} HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n"
    req += "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(req.encode("latin-1"))
        data = ScriptedUpstream.read_head(c)
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return int(head[0].split()[1]), [tuple(p.strip() for p in l.split(":", 1)) for l in head[1:]]


def gateway(sluice_factory, upstream, headers, route_plugins=None, top=None, **extra):
    plugins = {"headers": headers} if headers is not None else {}
    plugins.update(route_plugins or {})
    routes = [{"name": "api", "match": {"path": "/"}, "upstream": "app", "plugins": plugins}]
    conf = basic_config(free_port(), {"app": [upstream.address]}, routes=routes, **extra)
    conf["plugins"].update(top or {})
    return sluice_factory(conf)


# -- the operations -------------------------------------------------------------------------


def test_request_set_add_and_remove_reach_the_upstream(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, {"request": {
        "set": {"X-Set": "gateway"}, "add": {"X-Add": "gateway"},
        "remove": ["X-Internal", "Cookie"]}})
    status, _ = raw_get(s.listen_ports()[0], headers=[
        ("X-Set", "client-1"), ("X-Set", "client-2"), ("X-Add", "client"),
        ("X-Internal", "secret"), ("x-internal", "secret2"), ("X_Internal", "twin"),
        ("Cookie", "a=b"), ("X-Other", "kept")])
    assert status == 200
    lines = last_sent(upstream)
    assert values(lines, "X-Set") == ["gateway"]
    assert values(lines, "X-Add") == ["client", "gateway"]
    assert values(lines, "X-Internal") == [] and values(lines, "X_Internal") == []
    assert values(lines, "Cookie") == []
    assert values(lines, "X-Other") == ["kept"]


def test_response_set_add_and_remove_reach_the_client(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, {"response": {
        "set": {"Strict-Transport-Security": "max-age=63072000", "X-Up": "gateway"},
        "add": {"X-Frame-Options": "DENY", "Cache-Control": "no-store"},
        "remove": ["Server", "x-powered-by"]}})
    status, lines = raw_get(s.listen_ports()[0])
    assert status == 200
    assert values(lines, "Server") == [] and values(lines, "X-Powered-By") == []
    assert values(lines, "X-Up") == ["gateway"]
    assert values(lines, "Strict-Transport-Security") == ["max-age=63072000"]
    assert values(lines, "X-Frame-Options") == ["DENY"]
    assert values(lines, "Cache-Control") == ["no-store"]
    assert len(values(lines, "X-Request-Id")) == 1  # the other plugins' own stay


def test_without_the_plugin_the_upstreams_headers_pass_as_they_are(sluice_factory, upstream):
    # The baseline the test above changes: it can fail.
    s = gateway(sluice_factory, upstream, None)
    _, lines = raw_get(s.listen_ports()[0])
    assert values(lines, "Server") == ["origin/1.0"]
    assert values(lines, "X-Up") == ["1", "2"]


def test_response_headers_go_on_the_gateways_own_answers_too(sluice_factory, upstream):
    top = {"headers": {"response": {"set": {"X-Frame-Options": "DENY"}}}}
    s = gateway(sluice_factory, upstream,
                {"response": {"set": {"Strict-Transport-Security": "max-age=1"}}},
                route_plugins={"ip_restrict": {"deny": ["127.0.0.1"]}}, top=top)
    s2 = requests.get(s.url + "/", timeout=5)
    assert s2.status_code == 403 and s2.json()["error"] == "forbidden"
    assert s2.headers["Strict-Transport-Security"] == "max-age=1"
    assert "X-Frame-Options" not in s2.headers  # the route's headers replace the defaults
    assert upstream.connections == 0


def test_content_type_and_date_stay_the_gateways_on_its_own_answers(sluice_factory, upstream):
    # The core writes both on the answers it makes, after the plugins: a
    # set there would have made two lines of each.
    stamp = "Thu, 01 Jan 1970 00:00:00 GMT"
    s = gateway(sluice_factory, upstream, {"response": {
        "set": {"Content-Type": "text/plain; charset=utf-8", "Date": stamp},
        "add": {"X-Frame-Options": "DENY"}}},
        route_plugins={"ip_restrict": {"deny": ["127.0.0.1"]}})
    status, lines = raw_get(s.listen_ports()[0])
    assert status == 403
    assert values(lines, "Content-Type") == ["application/json"], lines
    assert len(values(lines, "Date")) == 1 and values(lines, "Date") != [stamp], lines
    assert values(lines, "X-Frame-Options") == ["DENY"]
    # On a proxied answer they are the plugin's to set, as any other.
    s2 = gateway(sluice_factory, upstream, {"response": {
        "set": {"Content-Type": "text/plain; charset=utf-8", "Date": stamp},
        "remove": ["X-Powered-By"]}})
    status, lines = raw_get(s2.listen_ports()[0])
    assert status == 200
    assert values(lines, "Content-Type") == ["text/plain; charset=utf-8"], lines
    assert values(lines, "Date") == [stamp], lines


def test_removing_content_type_leaves_the_gateways_answers_whole(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, {"response": {"remove": ["Content-Type", "Date"],
                                                        "add": {"Date": "x"}}},
                route_plugins={"ip_restrict": {"deny": ["127.0.0.1"]}})
    status, lines = raw_get(s.listen_ports()[0])
    assert status == 403
    assert values(lines, "Content-Type") == ["application/json"]
    assert len(values(lines, "Date")) == 1 and values(lines, "Date") != ["x"]


def test_a_request_no_route_takes_gets_the_top_level_response_headers(sluice_factory, upstream):
    conf = basic_config(free_port(), {"app": [upstream.address]},
                        routes=[{"name": "api", "match": {"path": "/api"}, "upstream": "app"}])
    conf["plugins"]["headers"] = {"response": {"set": {"X-Frame-Options": "DENY"}}}
    s = sluice_factory(conf)
    r = requests.get(s.url + "/elsewhere", timeout=5)
    assert r.status_code == 404
    assert r.headers["X-Frame-Options"] == "DENY"


# -- variables ------------------------------------------------------------------------------


def token(**claims):
    now = int(time.time())
    return pyjwt.encode({"sub": "alice", "iat": now, "exp": now + 300, **claims}, SECRET,
                        algorithm="HS256")


JWT = {"jwt": {"keys": [{"secret": SECRET, "alg": "HS256"}]}}


def test_each_variable_is_the_requests_own(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, {
        "request": {"set": {
            "X-Ip": "$client_ip", "X-Rid": "$request_id", "X-Route": "$route",
            "X-Host": "$host", "X-Sub": "$jwt.sub", "X-Org": "$jwt.org.id",
            "X-Who": "$consumer",
            "X-Braced": "$${route}_v1",  # ${ } in the file is the environment's: $${ }
            "X-Dollars": "cost: $$5 or $$$$6 $$", "X-Mixed": "for=$client_ip;by=gw"}},
        "response": {"set": {"X-Echo-Rid": "$request_id", "X-Echo-Sub": "user $jwt.sub"}}},
        route_plugins=JWT, trusted_proxies=["127.0.0.1/32"])
    r = requests.get(s.url + "/x", timeout=5, headers={
        "Authorization": "Bearer " + token(org={"id": "acme"}),
        "X-Forwarded-For": "203.0.113.9", "X-Request-Id": "rid-1234",
        "Host": "API.Example.com:8443", "X-Who": "forged"})
    assert r.status_code == 200, r.text
    lines = last_sent(upstream)
    got = {n: values(lines, n) for n in (
        "X-Ip", "X-Rid", "X-Route", "X-Host", "X-Sub", "X-Org", "X-Who", "X-Braced",
        "X-Dollars", "X-Mixed")}
    assert got == {
        "X-Ip": ["203.0.113.9"], "X-Rid": ["rid-1234"], "X-Route": ["api"],
        "X-Host": ["api.example.com"], "X-Sub": ["alice"], "X-Org": ["acme"],
        # No consumer in this request: an empty value is not sent, and the
        # client's own line is gone with it (set owns the name).
        "X-Who": [],
        "X-Braced": ["api_v1"], "X-Dollars": ["cost: $5 or $6 $"],
        "X-Mixed": ["for=203.0.113.9;by=gw"]}
    assert r.headers["X-Echo-Rid"] == "rid-1234"
    assert r.headers["X-Echo-Sub"] == "user alice"


def test_a_missing_variable_adds_nothing(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, {
        "request": {"add": {"X-Sub": "$jwt.sub", "X-Tenant": "$jwt.tenant"}},
        "response": {"add": {"X-Tenant": "$jwt.tenant"}}}, route_plugins=JWT)
    r = requests.get(s.url, timeout=5, headers={"Authorization": "Bearer " + token(),
                                                "X-Tenant": "client"})
    assert r.status_code == 200
    lines = last_sent(upstream)
    assert values(lines, "X-Sub") == ["alice"]
    assert values(lines, "X-Tenant") == ["client"]  # add keeps the client's line
    assert "X-Tenant" not in r.headers


def test_a_claim_holding_cr_lf_cannot_add_a_header_line(sluice_factory, upstream):
    # The signer put CR, LF and other control bytes in a claim (an IdP that
    # lets users choose their display name): they are dropped.
    evil = "eve\r\nX-Injected: 1\r\n\r\nGET /smuggled HTTP/1.1\x01\x7f\tend"
    s = gateway(sluice_factory, upstream, {
        "request": {"set": {"X-Name": "$jwt.name"}, "add": {"X-Name2": "[$jwt.name]"}},
        "response": {"set": {"X-Name": "$jwt.name"}}}, route_plugins=JWT)
    port = s.listen_ports()[0]
    status, resp = raw_get(port, headers=[("Authorization", "Bearer " + token(name=evil))])
    assert status == 200
    lines = last_sent(upstream)
    clean = "eveX-Injected: 1GET /smuggled HTTP/1.1\tend"
    assert values(lines, "X-Name") == [clean]
    assert values(lines, "X-Name2") == ["[" + clean + "]"]
    assert values(lines, "X-Injected") == [] and values(resp, "X-Injected") == []
    assert values(resp, "X-Name") == [clean]
    with upstream.lock:
        assert len(upstream.requests) == 1  # nothing smuggled in


# -- route and top level --------------------------------------------------------------------


def test_a_routes_headers_replace_the_top_level_ones(sluice_factory, upstream):
    top = {"request": {"set": {"X-Top": "1"}}, "response": {"set": {"X-Top": "1"}}}
    routes = [
        {"name": "inherits", "match": {"path": "/inherits"}, "upstream": "app"},
        {"name": "own", "match": {"path": "/own"}, "upstream": "app",
         "plugins": {"headers": {"request": {"set": {"X-Own": "$route"}}}}},
        {"name": "none", "match": {"path": "/none"}, "upstream": "app",
         "plugins": {"headers": False}},
    ]
    conf = basic_config(free_port(), {"app": [upstream.address]}, routes=routes)
    conf["plugins"]["headers"] = top
    s = sluice_factory(conf)
    seen = {}
    for path in ("/inherits", "/own", "/none"):
        r = requests.get(s.url + path, timeout=5)
        lines = last_sent(upstream)
        seen[path] = (values(lines, "X-Top"), values(lines, "X-Own"), r.headers.get("X-Top"))
    assert seen == {"/inherits": (["1"], [], "1"), "/own": ([], ["own"], None),
                    "/none": ([], [], None)}


# -- sluice -t ------------------------------------------------------------------------------


def write_conf(tmp_path, headers_yaml):
    """A config whose route has `headers:` with headers_yaml (lines indented
    under it) starting on line 11."""
    text = (
        "listen:\n"
        f"  - address: 127.0.0.1:{free_port()}\n"
        "upstreams:\n"
        "  app: {targets: [{address: 127.0.0.1:9}]}\n"
        "routes:\n"
        "  - name: r\n"
        "    match: {path: /}\n"
        "    upstream: app\n"
        "    plugins:\n"
        "      headers:\n"
        + "".join(f"        {line}\n" for line in headers_yaml.splitlines())
    )
    path = tmp_path / "headers.yaml"
    path.write_text(text)
    return path


def where(headers_yaml, at):
    """Line and column of the first `at` in the block, as in write_conf."""
    for i, line in enumerate(headers_yaml.splitlines()):
        if at in line:
            return 11 + i, 9 + line.index(at)
    raise AssertionError(at)


@pytest.mark.parametrize("block, at, message", [
    ('request:\n  set: {X-A: "a\\r\\nX-B: b"}', '"a',
     "request.set.X-A: a header value cannot hold CR (byte 2)"),
    ('response:\n  add: {X-A: "a\\nb"}', '"a', "cannot hold LF"),
    ('request:\n  set: {X-A: "bell\\a"}', '"bell', "cannot hold \\x07"),
    ('request:\n  set: {"X A": b}', '"X A"', '"X A" is not a header name'),
    ('request:\n  set: {"X-A:": b}', '"X-A:"', "is not a header name"),
    ('response:\n  remove: ["X\\r\\nY"]', '"X', "is not a header name"),
    ('request:\n  set: {X-A: "$client"}', '"$client"', 'unknown variable "$client"'),
    ('request:\n  set: {X-A: "$${nope}"}', '"$$', 'unknown variable "$nope"'),
    ('request:\n  set: {X-A: "$${host"}', '"$$', "without its closing"),
    ('request:\n  set: {Content-Length: "5"}', "Content-Length",
     "the headers plugin cannot change Content-Length"),
    ('response:\n  remove: [Transfer-Encoding]', "Transfer-Encoding", "frames the message"),
    ('request:\n  remove: [connection]', "connection", "cannot change connection"),
    ('request:\n  set: {Host: other}', "Host", "writes it itself on the way upstream"),
    ('request:\n  add: {X-Forwarded-For: 1.2.3.4}', "X-Forwarded-For", "writes it itself"),
    ('response:\n  remove: [Via]', "Via", "via: sets or turns it off"),
    ('request:\n  set: [X-A]', "[X-A]", "expected a map of header names to values"),
    ('request:\n  remove: X-A', "X-A", "expected a list of header names"),
    ('request:\n  set: {X-A: {b: c}}', "{b", "expected a string"),
    ('request:\n  remove: [X-A, x-a]', "x-a", "x-a is named twice"),
    ('request:\n  replace: {X-A: b}', "replace", "replace: unknown key"),
    ('requests:\n  set: {X-A: b}', "requests", "requests: unknown key"),
    # What other plugins tell the upstream: forged here, it would be believed.
    ('request:\n  set: {X-Consumer: "$jwt.sub"}', "X-Consumer",
     "request.set.X-Consumer: the headers plugin cannot change X-Consumer: the api_key plugin "
     "sets it"),
    ('request:\n  add: {x-consumer: admin}', "x-consumer", "cannot change x-consumer: the api_key"),
    ('request:\n  remove: [X-Consumer]', "X-Consumer", "cannot change X-Consumer: the api_key"),
    ('request:\n  set: {X-Request-Id: forged}', "X-Request-Id",
     "cannot change X-Request-Id: the request_id plugin sets it to the id the logs have"),
    ('request:\n  remove: [x-request-id]', "x-request-id", "cannot change x-request-id: the "
     "request_id plugin"),
], ids=["crlf", "lf", "bell", "space-in-name", "colon-in-name", "crlf-in-removed-name",
        "unknown-variable", "unknown-braced-variable", "unclosed-brace", "content-length",
        "transfer-encoding", "connection", "host", "x-forwarded-for", "via", "set-not-a-map",
        "remove-not-a-list", "value-not-a-string", "named-twice", "unknown-operation",
        "unknown-direction", "set-consumer", "add-consumer", "remove-consumer",
        "set-request-id", "remove-request-id"])
def test_a_bad_headers_setting_is_refused_at_its_place(tmp_path, block, at, message):
    path = write_conf(tmp_path, block)
    rc, out, err = check_config(path)
    assert rc == 1, f"accepted: {out}{err}"
    line, col = where(block, at)
    assert f"{path}:{line}:{col}: error: routes[0].plugins.headers." in err, err
    assert message in err, err


def test_the_request_id_plugins_own_header_is_refused_wherever_it_is_named(tmp_path):
    # Where it is configured: beside the headers section, or at the top level.
    text = (
        "listen:\n"
        f"  - address: 127.0.0.1:{free_port()}\n"
        "upstreams:\n"
        "  app: {targets: [{address: 127.0.0.1:9}]}\n"
        "plugins:\n"
        "  request_id: {header: X-Trace-Id}\n"
        "routes:\n"
        "  - name: inherits\n"
        "    match: {path: /a}\n"
        "    upstream: app\n"
        "    plugins:\n"
        "      headers: {request: {set: {X-Trace-Id: forged}}}\n"
        "  - name: own\n"
        "    match: {path: /b}\n"
        "    upstream: app\n"
        "    plugins:\n"
        "      request_id: {header: X-Corr}\n"
        "      headers: {request: {add: {X-Corr: forged, X-Trace-Id: fine}}}\n"
        "  - name: off\n"
        "    match: {path: /c}\n"
        "    upstream: app\n"
        "    plugins:\n"
        "      request_id: off\n"
        "      headers: {request: {set: {X-Trace-Id: fine}}, response: {set: {X-Corr: ok}}}\n")
    path = tmp_path / "rid.yaml"
    path.write_text(text)
    rc, out, err = check_config(path)
    assert rc == 1, out + err
    assert (f"{path}:12:33: error: routes[0].plugins.headers.request.set.X-Trace-Id: the headers "
            "plugin cannot change X-Trace-Id: the request_id plugin sets it (its header:)") in err
    assert f"{path}:18:33: error: routes[1].plugins.headers.request.add.X-Corr:" in err, err
    assert err.count(": error: ") == 2, err


def test_every_bad_header_is_reported_in_one_run(tmp_path):
    path = write_conf(tmp_path, 'request:\n  set: {"X A": b, X-B: "$nope", Host: h}\n'
                                'response:\n  remove: [Content-Length]')
    rc, _, err = check_config(path)
    assert rc == 1
    assert err.count(": error: ") == 4, err


def test_a_braced_variable_unescaped_is_read_as_the_environments(tmp_path):
    # The loader expands ${NAME} from the environment before any plugin
    # reads the value: the braced form is written $${NAME} (documented).
    path = write_conf(tmp_path, 'request:\n  set: {X-A: "${client_ip}"}')
    rc, _, err = check_config(path)
    assert rc == 1
    assert 'environment variable "client_ip" is not set' in err, err


def test_good_headers_settings_pass_the_check(tmp_path):
    path = write_conf(tmp_path, (
        'request:\n'
        '  set: {X-Client-Ip: "$client_ip", X-Sub: "$${jwt.sub}", X-Tab: "a\\tb", X-E: ""}\n'
        '  add: {X-Via: sluice, X-Num: 5}\n'
        '  remove: [X-Internal, Authorization]\n'
        'response:\n'
        '  set: {Strict-Transport-Security: "max-age=63072000", Host: ok-in-a-response}\n'
        '  add: {Set-Cookie: "a=b; Secure"}\n'
        '  remove: [Server, X-Forwarded-For]'))
    rc, out, err = check_config(path)
    assert rc == 0, err
    assert "configuration ok" in out


def test_an_empty_headers_block_is_accepted_with_a_warning(tmp_path):
    path = write_conf(tmp_path, "{}")
    rc, _, err = check_config(path)
    assert rc == 0, err
    assert ": warning: routes[0].plugins.headers: nothing to set, add or remove" in err
