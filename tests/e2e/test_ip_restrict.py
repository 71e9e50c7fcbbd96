"""The ip_restrict plugin: a route's clients let through by address (allow
and deny CIDR lists, IPv4 and IPv6), the address taken as per-client limits
take it (trusted_proxies and X-Forwarded-For); a refusal is a 403 made
before anything goes upstream."""

import re
import socket

import pytest
import requests

from conftest import (AnsweringUpstream, ScriptedUpstream, basic_config, check_config,
                      free_port, wait_for, wait_port)


def route(name, path, rules, upstream="app"):
    r = {"name": name, "match": {"path": path}, "upstream": upstream}
    if rules is not None:
        r["plugins"] = {"ip_restrict": rules}
    return r


def gateway(sluice_factory, upstream, routes, trusted=None, **extra):
    conf = basic_config(free_port(), {"app": [upstream.address]}, routes=routes, **extra)
    if trusted is not None:
        conf["trusted_proxies"] = trusted
    return sluice_factory(conf)


def status(url, xff=None, headers=None):
    h = dict(headers or {})
    if xff is not None:
        h["X-Forwarded-For"] = xff
    return requests.get(url, headers=h, timeout=5).status_code


@pytest.fixture
def upstream():
    up = AnsweringUpstream()
    yield up
    up.close()


def seen_paths(up):
    with up.lock:
        return [r.split(b" ", 2)[1].decode() for r in up.requests]


# -- allow and deny -------------------------------------------------------------------------


def test_an_allowed_client_passes_and_any_other_gets_403_forbidden(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, [
        route("mine", "/mine", {"allow": ["127.0.0.1"]}),
        route("lan", "/lan", {"allow": ["10.0.0.0/8", "192.168.0.0/16"]}),
    ])
    assert status(s.url + "/mine") == 200
    r = requests.get(s.url + "/lan", timeout=5)
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "forbidden"
    assert body["message"] and body["request_id"] == r.headers["X-Request-Id"]
    assert "127.0.0.1" not in r.text
    assert seen_paths(upstream) == ["/mine"]


def test_a_deny_list_alone_refuses_its_clients_and_lets_the_rest_through(sluice_factory,
                                                                         upstream):
    s = gateway(sluice_factory, upstream, [
        route("me", "/me", {"deny": ["127.0.0.0/8"]}),
        route("others", "/others", {"deny": ["10.0.0.0/8", "::1"]}),
    ])
    assert status(s.url + "/me") == 403
    assert status(s.url + "/others") == 200


def test_deny_inside_allow_wins_to_the_last_address_of_its_range(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream,
                [route("r", "/", {"allow": ["10.0.0.0/8"], "deny": ["10.9.0.0/16"]})],
                trusted=["127.0.0.1/32"])
    got = {ip: status(s.url, xff=ip) for ip in [
        "10.1.2.3", "10.8.255.255", "10.9.0.0", "10.9.1.1", "10.9.255.255", "10.10.0.0",
        "10.255.255.255", "11.0.0.0", "9.255.255.255", "192.0.2.1"]}
    assert got == {"10.1.2.3": 200, "10.8.255.255": 200, "10.9.0.0": 403, "10.9.1.1": 403,
                   "10.9.255.255": 403, "10.10.0.0": 200, "10.255.255.255": 200,
                   "11.0.0.0": 403, "9.255.255.255": 403, "192.0.2.1": 403}


def test_deny_wins_even_over_a_more_specific_allow(sluice_factory, upstream):
    # deny is checked first: a /32 allowed inside a denied /8 is still denied.
    s = gateway(sluice_factory, upstream,
                [route("r", "/", {"allow": ["10.1.2.3"], "deny": ["10.0.0.0/8"]})],
                trusted=["127.0.0.1/32"])
    assert status(s.url, xff="10.1.2.3") == 403


def test_the_upstream_never_sees_a_denied_request(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, [route("r", "/", {"allow": ["10.0.0.0/8"]}),
                                          route("open", "/open", None)])
    for method in ("GET", "POST", "DELETE"):
        r = requests.request(method, s.url + "/secret", data=b"x" * 100, timeout=5)
        assert r.status_code == 403
    # The open route proves the upstream is there and recording: only it
    # arrived, on the only connection the gateway made.
    assert status(s.url + "/open") == 200
    assert seen_paths(upstream) == ["/open"]
    assert len(upstream.received()) == 1


# -- the address: trusted proxies and X-Forwarded-For ---------------------------------------


def test_behind_a_trusted_proxy_the_forwarded_client_is_checked(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, [route("r", "/", {"allow": ["203.0.113.0/24"]})],
                trusted=["127.0.0.1/32"])
    assert status(s.url) == 403  # the proxy itself, forwarding no one
    assert status(s.url, xff="203.0.113.5") == 200
    # The right-most address the trusted proxy added is the client's.
    assert status(s.url, xff="198.51.100.1, 203.0.113.5") == 200
    assert status(s.url, xff="203.0.113.5, 198.51.100.1") == 403


def test_an_untrusted_peer_cannot_claim_an_allowed_address(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, [route("r", "/", {"allow": ["203.0.113.0/24"]})],
                trusted=["10.0.0.0/8"])  # 127.0.0.1 is not a trusted proxy
    for xff in ("203.0.113.5", "10.0.0.1, 203.0.113.5", "203.0.113.5, 10.0.0.1"):
        assert status(s.url, xff=xff) == 403, xff
    # Nor do the other headers some proxies use.
    assert status(s.url, xff="203.0.113.5", headers={
        "X-Real-Ip": "203.0.113.5", "Forwarded": "for=203.0.113.5"}) == 403
    assert upstream.received() == []


def test_a_denied_forwarded_client_cannot_hide_behind_an_allowed_one(sluice_factory, upstream):
    # A client behind the trusted proxy prepends an address it wishes it
    # had: the proxy's right-most entry (the real client) is what counts.
    s = gateway(sluice_factory, upstream,
                [route("r", "/", {"deny": ["198.51.100.0/24"]})], trusted=["127.0.0.1/32"])
    assert status(s.url, xff="203.0.113.5, 198.51.100.7") == 403
    assert status(s.url, xff="198.51.100.7, 203.0.113.5") == 200


# -- IPv6 -----------------------------------------------------------------------------------


def v6_get(port, path):
    """A GET over IPv6 loopback; the status."""
    with socket.create_connection(("::1", port), timeout=5) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = ScriptedUpstream.read_head(c)
    return int(data.split(b" ", 2)[1])


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6) as t:
            t.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback on this machine")
def test_clients_on_an_ipv6_listener_meet_the_ipv6_rules(sluice_factory, upstream):
    port = free_port()
    conf = basic_config(port, {"app": [upstream.address]}, routes=[
        route("v6", "/v6", {"allow": ["::1"]}),
        route("v4", "/v4", {"allow": ["127.0.0.0/8"]}),
        route("doc", "/doc", {"allow": ["2001:db8::/32"]}),
        route("no6", "/no6", {"deny": ["::/0"]}),
    ])
    conf["listen"].append({"address": f"[::1]:{port}"})
    s = sluice_factory(conf, start=False).start(wait=False)
    wait_port(port, proc=s.proc)
    wait_for(lambda: v6_get(port, "/v6") == 200, what="the IPv6 listener")
    assert [v6_get(port, p) for p in ("/v6", "/v4", "/doc", "/no6")] == [200, 403, 403, 403]
    # The same routes over IPv4: the v4 rule, not the v6 ones; ::/0 is not
    # IPv4's.
    assert [status(s.url + p) for p in ("/v6", "/v4", "/doc", "/no6")] == [403, 200, 403, 200]


def test_ipv6_and_v4_mapped_forwarded_clients_meet_the_right_rules(sluice_factory, upstream):
    s = gateway(sluice_factory, upstream, [
        route("v6", "/v6", {"allow": ["2001:db8::/32"], "deny": ["2001:db8:bad::/48"]}),
        route("v4", "/v4", {"allow": ["10.0.0.0/8"]}),
    ], trusted=["127.0.0.1/32"])
    got = {ip: status(s.url + "/v6", xff=ip) for ip in [
        "2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:bad::1",
        "2001:db8:bad:ffff::1", "2001:db8:bae::1", "2001:db9::", "2001:db7:ffff::1",
        "10.0.0.1"]}
    assert got == {"2001:db8::1": 200, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": 200,
                   "2001:db8:bad::1": 403, "2001:db8:bad:ffff::1": 403, "2001:db8:bae::1": 200,
                   "2001:db9::": 403, "2001:db7:ffff::1": 403, "10.0.0.1": 403}
    # A v4-mapped IPv6 client is the IPv4 client it maps.
    assert status(s.url + "/v4", xff="::ffff:10.1.2.3") == 200
    assert status(s.url + "/v4", xff="::ffff:11.1.2.3") == 403
    assert status(s.url + "/v4", xff="2001:db8::10.1.2.3") == 403


# -- defaults, counters, log ----------------------------------------------------------------


def test_top_level_defaults_apply_and_a_route_can_replace_or_drop_them(sluice_factory,
                                                                       upstream):
    routes = [route("plain", "/plain", None),
              {"name": "off", "match": {"path": "/off"}, "upstream": "app",
               "plugins": {"ip_restrict": False}},
              route("own", "/own", {"allow": ["127.0.0.1"]})]
    conf = basic_config(free_port(), {"app": [upstream.address]}, routes=routes)
    conf["plugins"]["ip_restrict"] = {"deny": ["127.0.0.0/8"]}
    s = sluice_factory(conf)
    assert status(s.url + "/plain") == 403
    assert status(s.url + "/off") == 200
    assert status(s.url + "/own") == 200
    assert status(s.url + "/nowhere") == 404  # no route: nothing to restrict


def test_decisions_are_counted_by_route_and_a_denial_is_logged(sluice_factory, upstream):
    admin = free_port()
    s = gateway(sluice_factory, upstream,
                [route("r", "/", {"allow": ["10.0.0.0/8"]}), route("open", "/open", None)],
                trusted=["127.0.0.1/32"], admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    codes = [status(s.url, xff=ip) for ip in ("10.0.0.1", "10.0.0.2", "192.0.2.1")]
    assert codes == [200, 200, 403]
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    got = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^sluice_ip_restrict_decisions_total\{route="r",decision="(\w+)"\} (\d+)$', text, re.M)}
    assert got == {"allowed": 2, "denied": 1}
    assert "# TYPE sluice_ip_restrict_decisions_total counter" in text
    assert 'sluice_ip_restrict_decisions_total{route="open"' not in text
    wait_for(lambda: len(s.access_log()) == 3, timeout=5, what="three access log lines")
    assert [(l["status"], l.get("ip_restrict")) for l in s.access_log()] == [
        (200, None), (200, None), (403, "denied")]


# -- sluice -t ------------------------------------------------------------------------------


def write_conf(tmp_path, ip_restrict_yaml):
    """A config file whose one route has `ip_restrict: <ip_restrict_yaml>` on
    line 8 (column 20 is where the value starts)."""
    text = (
        "listen:\n"
        f"  - address: 127.0.0.1:{free_port()}\n"
        "upstreams:\n"
        "  app: {targets: [{address: 127.0.0.1:9}]}\n"
        "routes:\n"
        "  - name: r\n"
        "    plugins:\n"
        f"      ip_restrict: {ip_restrict_yaml}\n"
        "    match: {path: /}\n"
        "    upstream: app\n"
    )
    path = tmp_path / "ipr.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("value, at, message", [
    ("{allow: [10.0.0.0/8, 10.0.0/8]}", "10.0.0/8",
     'allow[1]: expected an IPv4 or IPv6 address or CIDR, found "10.0.0/8"'),
    ("{allow: [example.com]}", "example", 'found "example.com"'),
    ("{deny: [10.0.0.0/33]}", "10.", '"10.0.0.0/33": the prefix length is 0 to 32 for IPv4'),
    ('{deny: ["2001:db8::/129"]}', '"', "the prefix length is 0 to 128 for IPv6"),
    ("{allow: [10.0.0.0/8x]}", "10.", "the prefix length is 0 to 32"),
    ("{allow: [10.0.0.0/032]}", "10.", '"10.0.0.0/032": the prefix length is 0 to 32 for IPv4, '
     "without leading zeros"),
    ('{deny: ["2001:db8::/032"]}', '"', "0 to 128 for IPv6, without leading zeros"),
    ("{deny: [0.0.0.0/00]}", "0.", "without leading zeros"),
    ("{allow: [10.1.2.3/8]}", "10.",
     '"10.1.2.3/8" has bits set after its prefix: write 10.0.0.0/8 for the network'),
    ('{allow: ["2001:db8::1/32"]}', '"', "write 2001:db8::/32 for the network"),
    ("{allow: 10.0.0.0/8}", "10.", "allow: expected a list of addresses or CIDRs"),
    ("{deny: {a: 1}}", "{a", "deny: expected a list of addresses or CIDRs"),
    ("{allow: []}", "[", "expected at least one address or CIDR"),
    ("{allow: [[10.0.0.0/8]]}", "[10", "allow[0]: expected a string"),
    ("{allow: [10.0.0.0/8], permit: [10.0.0.0/8]}", "permit", "permit: unknown key"),
    ("[10.0.0.0/8]", "[", "expected a map"),
], ids=["bad-address", "hostname", "v4-prefix-too-long", "v6-prefix-too-long",
        "junk-after-prefix", "v4-leading-zero", "v6-leading-zero", "zero-zero", "host-bits", "v6-host-bits", "not-a-list", "a-map",
        "empty-list", "nested-list", "unknown-key", "not-a-map"])
def test_a_bad_ip_restrict_setting_is_refused_at_its_place(tmp_path, value, at, message):
    path = write_conf(tmp_path, value)
    rc, out, err = check_config(path)
    assert rc == 1, f"accepted: {out}{err}"
    col = 20 + value.index(at)
    assert f"{path}:8:{col}: error: routes[0].plugins.ip_restrict" in err, err
    assert message in err, err


def test_every_bad_entry_is_reported_in_one_run(tmp_path):
    path = write_conf(tmp_path, "{allow: [10.0.0.0/33, nope], deny: [10.1.1.1/8]}")
    rc, _, err = check_config(path)
    assert rc == 1
    assert err.count(": error: ") == 3, err


def test_good_ip_restrict_settings_pass_the_check(tmp_path):
    path = write_conf(tmp_path, '{allow: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32", "::1", '
                                '"::ffff:10.0.0.0/104", 0.0.0.0/0], deny: [10.9.0.0/16]}')
    rc, out, err = check_config(path)
    assert rc == 0, err
    assert "configuration ok" in out


@pytest.mark.parametrize("value, at", [
    ('{deny: ["::/0"]}', '"::/0"'),
    ('{allow: ["2001:db8::/32", "::/80"]}', '"::/80"'),
], ids=["deny-all-v6", "allow-v6-80"])
def test_an_ipv6_rule_that_looks_like_it_covers_ipv4_clients_is_warned_of(tmp_path, value, at):
    # IPv4 clients (::ffff:a.b.c.d on a dual-stack listener too) meet only
    # the IPv4 entries: ::/0 alone lets every one of them through a deny.
    path = write_conf(tmp_path, value)
    rc, out, err = check_config(path)
    assert rc == 0, err
    col = 20 + value.index(at)
    assert re.search(rf"^{re.escape(str(path))}:8:{col}: warning: routes\[0\]\.plugins\."
                     rf"ip_restrict\.(deny|allow)\[\d\]: {re.escape(at)} matches IPv6 clients "
                     r"only: .*add 0\.0\.0\.0/0", err, re.M), err


@pytest.mark.parametrize("value", [
    '{deny: [0.0.0.0/0, "::/0"]}', '{allow: ["::/0", 10.0.0.0/8]}', '{deny: ["::/96"]}',
    '{deny: ["2001:db8::/32"]}'])
def test_an_ipv6_rule_beside_ipv4_ones_or_outside_the_mapped_block_is_not_warned_of(
        tmp_path, value):
    rc, out, err = check_config(write_conf(tmp_path, value))
    assert rc == 0 and "warning" not in err, err


def test_no_rules_at_all_is_accepted_with_a_warning(tmp_path):
    path = write_conf(tmp_path, "{}")
    rc, out, err = check_config(path)
    assert rc == 0, err
    assert f"{path}:8:20: warning: routes[0].plugins.ip_restrict: neither allow nor deny" in err
