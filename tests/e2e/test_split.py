"""The split plugin: weighted traffic splitting between upstreams on one
route, random or sticky by a key, with pins checked first.

Every variant is a real origin that names itself in X-Origin; the route's
own upstream is a third origin ("base") that split overrides, so a request
that reached it would show the plugin did not choose. Shares are measured
over 10,000 requests on keep-alive connections; stickiness is measured, not
assumed: each key is sent several times, on several connections (so across
both workers), before and after a reload and in a second gateway process.
"""

import collections
import http.client
import re
import threading

import pytest
import requests

from conftest import basic_config, check_config, free_port, wait_for


def split_config(port, origins, split, workers=1, access="stdout"):
    """A gateway on port whose one route (default upstream "base") splits
    with the settings `split`; origins maps upstream name to Origin."""
    conf = basic_config(port, {name: [o.address] for name, o in origins.items()}, workers=workers)
    conf["log"]["access"] = access
    conf["routes"] = [{"name": "app", "match": {"path": "/"}, "upstream": "base",
                       "plugins": {"split": split}}]
    return conf


@pytest.fixture
def origins(origin_factory):
    return {name: origin_factory(name) for name in ("base", "v1", "v2")}


def to(*pairs):
    return [{"upstream": u, "weight": w} for u, w in pairs]


class Client:
    """A few keep-alive connections to the gateway, used in turn."""

    def __init__(self, port, connections=1):
        self.conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                      for _ in range(connections)]
        self.turn = 0

    def get(self, headers=None, path="/"):
        """The X-Origin of the response to GET path (it must be a 200)."""
        c = self.conns[self.turn % len(self.conns)]
        self.turn += 1
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        assert r.status == 200, (r.status, r.getheaders())
        return r.getheader("X-Origin")

    def shares(self, n, headers=None):
        return collections.Counter(self.get(headers) for _ in range(n))

    def variants(self, keys, header="X-User-Id"):
        """{key: upstream} for every key, each sent on every connection:
        they must agree."""
        out = {}
        for k in keys:
            seen = {self.get({header: k}) for _ in self.conns}
            assert len(seen) == 1, f"key {k!r} was sent to {seen}"
            out[k] = seen.pop()
        return out

    def close(self):
        for c in self.conns:
            c.close()


def split_metrics(admin_port):
    text = requests.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).text
    assert "# TYPE sluice_split_requests_total counter" in text, text
    return {(m[1], m[2]): int(m[3]) for m in re.finditer(
        r'^sluice_split_requests_total\{route="([^"]*)",upstream="([^"]*)"\} (\d+)$', text, re.M)}


USERS = [f"user-{i}" for i in range(600)]


def test_ten_thousand_requests_take_the_configured_shares_and_are_counted(
        sluice_factory, origins):
    port, admin = free_port(), free_port()
    conf = split_config(port, origins, {"to": to(("v1", 95), ("v2", 5))}, workers=2)
    conf["admin"] = {"address": f"127.0.0.1:{admin}"}
    s = sluice_factory(conf)
    client = Client(port, connections=4)
    got = client.shares(10000)
    client.close()
    assert set(got) == {"v1", "v2"}, got
    assert abs(got["v2"] / 10000 - 0.05) <= 0.02, got

    # The metric counts what the clients saw, per upstream, across both workers.
    assert split_metrics(admin) == {("app", "v1"): got["v1"], ("app", "v2"): got["v2"]}
    # Each access log line names the variant, as the upstream that served it.
    lines = wait_for(lambda: (l := s.access_log()) and len(l) >= 10000 and l, what="the log")
    assert len(lines) == 10000
    assert all(l["split"] == l["upstream"] for l in lines), lines[0]
    assert collections.Counter(l["split"] for l in lines) == got


def test_seventy_thirty_is_seventy_thirty(sluice_factory, origins):
    port = free_port()
    sluice_factory(split_config(port, origins, {"to": to(("v1", 70), ("v2", 30))},
                                access="off"))
    client = Client(port)
    got = client.shares(10000)
    client.close()
    assert abs(got["v2"] / 10000 - 0.30) <= 0.02, got
    assert got["v1"] + got["v2"] == 10000, got


def test_a_key_keeps_its_upstream_across_workers_processes_and_reloads(sluice_factory, origins):
    port = free_port()
    split = {"to": to(("v1", 70), ("v2", 30)), "key": "header:X-User-Id"}
    s = sluice_factory(split_config(port, origins, split, workers=2, access="off"))
    # SO_REUSEPORT spreads 8 connections over both workers (all on one: 1 in
    # 128); a second process below is the sure test of a fixed hash.
    client = Client(port, connections=8)
    first = client.variants(USERS)
    assert set(first.values()) == {"v1", "v2"}
    assert 0.2 < list(first.values()).count("v2") / len(USERS) < 0.4

    # A reload that leaves the weights alone (a pin added) moves nobody.
    split["pin"] = [{"header": "X-Canary", "value": "1", "upstream": "v2"}]
    s.reload(split_config(port, origins, split, workers=2, access="off"))
    assert "configuration reloaded" in s.error_log()
    client.close()
    client = Client(port, connections=8)
    assert client.variants(USERS) == first
    client.close()
    s.stop()

    # Another process (its own random seeds) puts every key in the same place.
    port2 = free_port()
    sluice_factory(split_config(port2, origins, split, access="off"), name="second")
    client = Client(port2)
    assert client.variants(USERS) == first
    client.close()


def test_growing_the_canary_by_reload_keeps_its_users_and_applies_to_new_requests(
        sluice_factory, origins):
    port = free_port()
    split = {"to": to(("v1", 95), ("v2", 5)), "key": "header:X-User-Id"}
    s = sluice_factory(split_config(port, origins, split, access="off"))
    client = Client(port)
    users = [f"u{i}@example.com" for i in range(2000)]
    before = client.variants(users)

    split["to"] = to(("v1", 90), ("v2", 10))
    s.reload(split_config(port, origins, split, access="off"))
    assert "configuration reloaded" in s.error_log()
    # The same keep-alive connection: its next requests are new requests.
    after = client.variants(users)
    canary = [u for u in users if before[u] == "v2"]
    assert canary and all(after[u] == "v2" for u in canary)
    moved = [u for u in users if before[u] != after[u]]
    assert all(before[u] == "v1" for u in moved)
    assert 0.07 < list(after.values()).count("v2") / len(users) < 0.13
    # Requests without the key are random, with the new weights.
    got = client.shares(10000)
    client.close()
    assert abs(got["v2"] / 10000 - 0.10) <= 0.02, got


def test_a_request_in_flight_keeps_its_choice_and_the_next_ones_take_the_reload(
        sluice_factory, origins):
    port, admin = free_port(), free_port()

    def conf(w1, w2):
        c = split_config(port, origins, {"to": to(("v1", w1), ("v2", w2))})
        c["admin"] = {"address": f"127.0.0.1:{admin}"}
        return c

    s = sluice_factory(conf(1, 0))
    client = Client(port)
    assert client.shares(20) == {"v1": 20}
    slow = {}

    def in_flight():
        slow["origin"] = requests.get(f"{s.url}/?delay=1500", timeout=10).headers["X-Origin"]

    t = threading.Thread(target=in_flight)
    t.start()
    # The slow request has chosen once it is counted.
    wait_for(lambda: split_metrics(admin).get(("app", "v1")) == 21, what="the slow request")
    s.reload(conf(0, 1))
    assert "configuration reloaded" in s.error_log()
    assert client.shares(20) == {"v2": 20}  # on a connection opened before the reload
    t.join()
    client.close()
    assert slow["origin"] == "v1"
    assert split_metrics(admin) == {("app", "v1"): 21, ("app", "v2"): 20}


def test_a_split_among_the_defaults_splits_and_counts_every_route(sluice_factory, origins):
    port, admin = free_port(), free_port()
    conf = split_config(port, origins, {"to": to(("v1", 1), ("v2", 1))}, access="off")
    conf["plugins"]["split"] = conf["routes"][0].pop("plugins")["split"]
    conf["routes"] = [{"name": n, "match": {"path": f"/{n}"}, "upstream": "base"}
                      for n in ("a", "b", "c")]
    conf["admin"] = {"address": f"127.0.0.1:{admin}"}
    sluice_factory(conf)
    client = Client(port)
    seen = {n: collections.Counter(client.get(path=f"/{n}") for _ in range(300))
            for n in ("a", "b", "c")}
    client.close()
    counted = split_metrics(admin)
    for n, got in seen.items():
        assert set(got) == {"v1", "v2"}, (n, got)
        assert {u: counted[(n, u)] for u in ("v1", "v2")} == got
    assert len(counted) == 6, counted


def test_each_route_places_its_users_on_its_own(sluice_factory, origins):
    # The same split on two routes: were the hash not salted with the
    # route, a user in one route's 30% would be in every route's 30%.
    port = free_port()
    split = {"to": to(("v1", 70), ("v2", 30)), "key": "header:X-User-Id"}
    conf = split_config(port, origins, split, access="off")
    conf["routes"] = [{"name": n, "match": {"path": f"/{n}"}, "upstream": "base",
                       "plugins": {"split": split}} for n in ("a", "b")]
    sluice_factory(conf)
    client = Client(port)
    users = USERS[:400]
    got = {n: {u: client.get({"X-User-Id": u}, path=f"/{n}") for u in users} for n in ("a", "b")}
    # Sticky on each route still.
    assert all(client.get({"X-User-Id": u}, path="/a") == got["a"][u] for u in users[:50])
    client.close()
    for n in ("a", "b"):
        assert 0.2 < list(got[n].values()).count("v2") / len(users) < 0.4, got[n]
    canary_a = {u for u in users if got["a"][u] == "v2"}
    canary_b = {u for u in users if got["b"][u] == "v2"}
    # Independent: about 30% of route a's canary users are route b's too.
    assert len(canary_a & canary_b) < 0.6 * len(canary_a), (len(canary_a), len(canary_b))


def test_pins_send_their_header_or_cookie_to_their_variant_first(sluice_factory, origins):
    port = free_port()
    split = {"to": to(("v1", 100), ("v2", 0)), "key": "header:X-User-Id",
             "pin": [{"header": "X-Canary", "value": "1", "upstream": "v2"},
                     {"cookie": "canary", "value": "1", "upstream": "v2"},
                     {"header": "X-Debug", "value": "yes", "upstream": "base"}]}
    sluice_factory(split_config(port, origins, split))
    client = Client(port)
    assert client.shares(200, {"X-Canary": "1", "X-User-Id": "someone"}) == {"v2": 200}
    assert client.shares(100, {"Cookie": "a=b; canary=1; c=d"}) == {"v2": 100}
    # A pin may name an upstream that takes no weighted traffic.
    assert client.shares(50, {"X-Debug": "yes"}) == {"base": 50}
    # The first rule that matches wins.
    assert client.shares(50, {"X-Debug": "yes", "X-Canary": "1"}) == {"v2": 50}
    # Values are compared whole.
    for headers in ({"X-Canary": "0"}, {"X-Canary": "11"}, {"Cookie": "canary=10"},
                    {"Cookie": "xcanary=1"}, {"X-Debug": "YES"}, {}):
        assert client.shares(20, headers) == {"v1": 20}, headers
    client.close()


def test_a_request_without_its_key_is_still_served_at_random(sluice_factory, origins):
    port = free_port()
    split = {"to": to(("v1", 50), ("v2", 50)), "key": "cookie:uid"}
    s = sluice_factory(split_config(port, origins, split))
    client = Client(port)
    missing = client.shares(400)
    empty = client.shares(100, {"Cookie": "uid="})
    other = client.shares(100, {"Cookie": "session=abc"})
    # With the key: one place per user.
    keyed = {client.get({"Cookie": f"uid={u}"}) for u in ["alice"] * 50}
    client.close()
    for got in (missing, empty, other):
        assert set(got) == {"v1", "v2"}, got
    assert len(keyed) == 1
    assert {l["status"] for l in s.access_log()} == {200}


def test_the_client_address_as_key_keeps_a_client_in_one_place(sluice_factory, origins):
    port = free_port()
    split = {"to": to(("v1", 50), ("v2", 50)), "key": "ip"}
    sluice_factory(split_config(port, origins, split, access="off"))
    client = Client(port, connections=3)
    assert len(client.shares(300)) == 1  # every request from 127.0.0.1 in one place
    client.close()


# -- config errors -------------------------------------------------------------------------

CONFIG = """\
listen:
  - address: 127.0.0.1:1
upstreams:
  v1: {{targets: [{{address: 127.0.0.1:2}}]}}
  v2: {{targets: [{{address: 127.0.0.1:3}}]}}
routes:
  - name: app
    match: {{path: /}}
    upstream: v1
    plugins:
      split:
{split}
"""


def split_text(tmp_path, split):
    path = tmp_path / "sluice.yaml"
    path.write_text(CONFIG.format(split="\n".join("        " + l for l in split)))
    return path


BAD = [
    # (the split block, the line of it the error is on, what it says)
    (["to: [{upstream: v1, weight: 95}, {upstream: v3, weight: 5}]"], 0,
     r'\.to\[1\]\.upstream: unknown upstream "v3"'),
    (["to:", "  - {upstream: v1, weight: 95}", "  - {upstream: v2, weight: -5}"], 2,
     r'\.to\[1\]\.weight: expected a whole number, found "-5"'),
    (["to:", "  - {upstream: v1, weight: 2.5}", "  - {upstream: v2, weight: 5}"], 1,
     r'\.to\[0\]\.weight: expected a whole number, found "2.5"'),
    (["to:", "  - {upstream: v1, weight: lots}"], 1,
     r'\.to\[0\]\.weight: expected a whole number, found "lots"'),
    (["to:", "  - {upstream: v1, weight: 0}", "  - {upstream: v2, weight: 0}"], 1,
     r"\.to: every weight is 0"),
    (["to:", "  - {upstream: v1, weight: 600000}", "  - {upstream: v2, weight: 600000}"], 1,
     r"\.to: the weights add up to 1200000, more than 1000000"),
    (["to:", "  - {upstream: v1, weight: 1}", "  - {upstream: v2, weight: 1}",
      "  - {upstream: v1, weight: 1}"], 3,
     r'\.to\[2\]\.upstream: upstream "v1" is already in to\[0\]'),
    (["to: [{upstream: v1}]"], 0, r"\.to\[0\]\.weight: required key is missing"),
    (["to: []"], 0, r"\.to: expected a list of \{upstream: NAME, weight: N\}, found an "
     r"empty list"),
    (["key: header:X-User-Id"], 0, r': required key "to" is missing'),
    (["to: [{upstream: v1, weight: 1}]", "key: body:user"], 1,
     r'\.key: expected ip, header:NAME, .*found "body:user"'),
    # One value for every request: all of them to one upstream.
    (["to: [{upstream: v1, weight: 1}, {upstream: v2, weight: 1}]", "key: route"], 1,
     r'\.key: expected ip, header:NAME, cookie:NAME, .*found "route"'),
    (["to: [{upstream: v1, weight: 1}]", "pin:", "  - {header: X-Canary, value: '', "
      "upstream: v2}"], 2,
     r"\.pin\[0\]\.value: expected a value of at least one character: an empty header"),
    (["to: [{upstream: v1, weight: 1}]", "pin:", "  - {cookie: c, value: '', upstream: v2}"], 2,
     r"\.pin\[0\]\.value: expected a value of at least one character: an empty cookie"),
    (["to: [{upstream: v1, weight: 1}]", "pin:", "  - {header: X-Canary, upstream: v2}"], 2,
     r"\.pin\[0\]\.value: required key is missing"),
    (["to: [{upstream: v1, weight: 1}]", "pin:", "  - {cookie: c, value: '1', upstream: v9}"], 2,
     r'\.pin\[0\]\.upstream: unknown upstream "v9"'),
    (["to: [{upstream: v1, weight: 1}]", "pin:", "  - {value: '1', upstream: v2}"], 2,
     r"\.pin\[0\]: expected one of header: NAME or cookie: NAME, found neither"),
    (["to: [{upstream: v1, weight: 1}]", "pin:",
      "  - {header: X-A, cookie: a, value: '1', upstream: v2}"], 2,
     r"\.pin\[0\]: expected one of header: NAME or cookie: NAME, found both"),
    (["to: [{upstream: v1, weight: 1}]", "pin:", "  - {header: 'X A', value: '1', upstream: v2}"],
     2, r'\.pin\[0\]\.header: expected a header name .*found "X A"'),
    (["to: [{upstream: v1, weight: 1}]", "weights: {v1: 1}"], 1,
     r"\.weights: unknown key"),
]


@pytest.mark.parametrize("split,line,message", BAD,
                         ids=[b[2].replace("\\", "")[:40] for b in BAD])
def test_a_bad_split_setting_is_refused_with_its_place(tmp_path, split, line, message):
    path = split_text(tmp_path, split)
    rc, out, err = check_config(path)
    assert rc == 1, f"accepted: {out}{err}"
    where = rf"^{re.escape(str(path))}:(\d+):(\d+): error: routes\[0\]\.plugins\.split"
    m = re.search(where + message, err, re.M)
    assert m, err
    # The line of the mistake: the split block starts on line 12 (a list
    # is where its first item is; what is missing, where its map starts).
    assert int(m[1]) == 12 + line, err


def test_valid_split_settings_pass_the_check(tmp_path):
    path = split_text(tmp_path, [
        "to: [{upstream: v1, weight: 95}, {upstream: v2, weight: 5}]",
        "key: jwt:sub",
        "pin:",
        "  - {header: X-Canary, value: '1', upstream: v2}",
        "  - {cookie: canary, value: ' ', upstream: v2}",
    ])
    rc, out, err = check_config(path)
    assert rc == 0, err
    for key in ("ip", "header:X-User-Id", "cookie:uid", "consumer", "var:tenant"):
        path = split_text(tmp_path, ["to: [{upstream: v1, weight: 1}, {upstream: v2, weight: 0}]",
                                     f"key: {key}"])
        rc, out, err = check_config(path)
        assert rc == 0, (key, err)
