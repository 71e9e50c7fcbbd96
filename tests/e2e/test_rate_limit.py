"""Rate limiting with the local store: token buckets, throttling, keys,
trusted proxies and the config errors. (Redis-backed limits live in
test_rate_limit_redis.py, which reuses the helpers below.)

Counts are measured, never assumed: the client counts status codes, the
origin counts what reached it, and the access log's `ratelimit` field says
what the gateway decided; all three must agree. A saturating test's window
starts when every client thread leaves a barrier at once and ends when they
stop sending, so the expected count is burst + rate x window.
"""

import json
import socket
import statistics
import threading
import time

import pytest
import requests

from conftest import basic_config, check_config, free_port, wait_for

@pytest.fixture
def sluice_factory(sluice_factory):
    """conftest's factory, but a gateway must exit 0 within 5 s of SIGTERM
    (conftest waits 30 s and then accepts a SIGKILL)."""
    started = []

    def make(*a, **kw):
        s = sluice_factory(*a, **kw)
        started.append(s)
        return s

    yield make
    hung = []
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            if s.stop(timeout=5) != 0:
                hung.append((s.conf_path.stem, s.proc.returncode))
    assert not hung, f"did not exit 0 on SIGTERM: {hung}"


# -- helpers (kept here: this file and test_rate_limit_redis.py own them) -------------


def limited_route(limit, name="r", path="/", upstream="app"):
    return {"name": name, "match": {"path": path}, "upstream": upstream,
            "plugins": {"rate_limit": limit}}


def rl_config(port, origin_address, limit, *, redis=None, trusted=None, workers=1,
              extra_routes=()):
    """A gateway on port: route "r" (prefix /) limited by `limit`, plus an
    unlimited route "free" (prefix /free) to measure the gateway alone."""
    routes = [limited_route(limit),
              {"name": "free", "match": {"path": "/free"}, "upstream": "app"},
              *extra_routes]
    conf = basic_config(port, {"app": [origin_address]}, routes=routes)
    conf["workers"] = workers
    if redis is not None:
        conf["redis"] = redis
    if trusted is not None:
        conf["trusted_proxies"] = trusted
    return conf


def start_gateway(sluice_factory, origin, limit, name="sluice", **kw):
    return sluice_factory(rl_config(free_port(), origin.address, limit, **kw), name=name)


class Served:
    """The origin's request counter, not counting the /stats calls that read
    it (each /stats request counts itself)."""

    def __init__(self, origin):
        self.origin = origin
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.origin.stats()["requests"] - self.calls


class Result:
    def __init__(self, status, sent, done, headers=None, body=None):
        self.status, self.sent, self.done = status, sent, done
        self.headers, self.body = headers, body

    @property
    def latency(self):
        return self.done - self.sent


def hammer(urls, threads, duration, path="/", headers=None, keep=None):
    """`threads` clients with keep-alive sessions, client i on urls[i % n],
    leave a barrier together and send back to back until start + duration.
    headers: a dict, or a function of the client index returning one.
    keep(result_response) -> True keeps headers/body of that response.
    Returns (start, [Result, ...]) with monotonic times."""
    out = [[] for _ in range(threads)]
    errors = []
    box = {}
    barrier = threading.Barrier(threads, action=lambda: box.setdefault("start", time.monotonic()))

    def run(i):
        s = requests.Session()
        url = urls[i % len(urls)] + path
        h = headers(i) if callable(headers) else headers
        try:
            barrier.wait()
            end = box["start"] + duration
            while True:
                t0 = time.monotonic()
                if t0 >= end:
                    break
                r = s.get(url, headers=h, timeout=10)
                t1 = time.monotonic()
                if keep is not None and keep(r):
                    out[i].append(Result(r.status_code, t0, t1, dict(r.headers), r.content))
                else:
                    out[i].append(Result(r.status_code, t0, t1))
        except Exception as e:  # surfaced below, never swallowed
            errors.append(repr(e))
        finally:
            s.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, f"client errors: {errors[:5]}"
    return box["start"], [r for rs in out for r in rs]


def count(results, status):
    return sum(1 for r in results if r.status == status)


def statuses(results):
    c = {}
    for r in results:
        c[r.status] = c.get(r.status, 0) + 1
    return dict(sorted(c.items()))


def window(start, results):
    """From the barrier to the last request sent: the time tokens refilled in."""
    return max(r.sent for r in results) - start


def decisions(sluice, route="r"):
    """The access log's ratelimit field, counted, for requests of route."""
    c = {}
    for e in sluice.access_log():
        if e.get("route") == route:
            c[e.get("ratelimit")] = c.get(e.get("ratelimit"), 0) + 1
    return c


def wait_logged(sluice, n, route="r"):
    """Wait until the access log holds at least n lines of route (it is
    flushed once per loop turn)."""
    return wait_for(lambda: sum(decisions(sluice, route).values()) >= n, timeout=5,
                    what=f"{n} access log lines")


def within(value, expected, tolerance):
    return abs(value - expected) <= expected * tolerance


def spacings_ms(origin, path):
    """Milliseconds between consecutive arrivals of path at the origin (-d log)."""
    times = sorted(t for t, _, target in origin.request_log() if target.split("?")[0] == path)
    return [(b - a) / 1000 for a, b in zip(times, times[1:])]


def get(url, path="/", headers=None, timeout=10):
    return requests.get(url + path, headers=headers, timeout=timeout)


class FastClient:
    """A lean keep-alive HTTP/1.1 client on a raw socket, for latency
    measurements: a prebuilt request, one sendall, and reads until the
    Content-Length framed response is complete. It spends microseconds, not
    the milliseconds requests does under the GIL, in the measured interval."""

    def __init__(self, port, path="/", headers=()):
        self.port = port
        self.req = (f"GET {path} HTTP/1.1\r\nHost: t\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()
        self.sock = None

    def get(self):
        """(status, headers dict with lower-case names, body)."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        self.sock.sendall(self.req)
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise ConnectionError("closed before a response head")
            self.buf += b
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(rest) < n:
            b = self.sock.recv(65536)
            if not b:
                raise ConnectionError("closed inside a response body")
            rest += b
        self.buf = rest[n:]
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return int(lines[0].split(" ", 2)[1]), hdrs, rest[:n]

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def raw_get(port, path="/", headers=()):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    req = f"GET {path} HTTP/1.1\r\nHost: t\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    s.sendall((req + "\r\n").encode())
    return s


def raw_status(port, path="/", headers=(), timeout=5):
    s = raw_get(port, path, headers)
    try:
        return read_status(s, timeout)
    finally:
        s.close()


def read_status(sock, timeout):
    """The status of the response on sock, or None if none starts within timeout."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n" not in buf:
            b = sock.recv(65536)
            if not b:
                return None
            buf += b
    except socket.timeout:
        return None
    return int(buf.split(b" ", 2)[1])


# -- 1. one instance, one shared bucket ----------------------------------------------


def test_twenty_clients_on_one_local_bucket_for_ten_seconds_get_burst_plus_rate_times_duration(
        sluice_factory, origin):
    """50/s, burst 10, key: route; 20 clients for 10 s -> 510 +- 2%. Two
    workers, so the count also proves the workers share the local table."""
    s = start_gateway(sluice_factory, origin,
                      {"key": "route", "rate": "50/s", "burst": 10, "store": "local"}, workers=2)
    served = Served(origin)
    before = served()
    start, res = hammer([s.url], 20, 10.0, path="/hit")
    allowed, rejected = count(res, 200), count(res, 429)
    span = window(start, res)
    expected = 10 + 50 * 10
    print(f"local 50/s burst 10, 20 clients: {allowed} allowed, {rejected} rejected, "
          f"{len(res)} requests in {span:.3f} s (expected {expected}; "
          f"10 + 50 x window = {10 + 50 * span:.1f})")
    assert allowed + rejected == len(res), statuses(res)
    assert rejected > 10 * allowed, "the clients did not saturate the bucket"
    assert within(allowed, expected, 0.02), f"{allowed} allowed, expected {expected} +- 2%"
    assert served() - before == allowed, "the origin's count differs from the client's"
    wait_logged(s, len(res))
    assert decisions(s) == {"allowed": allowed, "rejected": rejected}


# -- responses -----------------------------------------------------------------------


def test_a_rejection_is_a_429_json_with_retry_after_and_every_response_has_ratelimit_headers(
        sluice_factory, origin):
    s = start_gateway(sluice_factory, origin, {"key": "route", "rate": "2/m", "burst": 2})
    rs = [get(s.url) for _ in range(3)]
    assert [r.status_code for r in rs] == [200, 200, 429]
    for r in rs:
        assert r.headers.get("RateLimit-Limit") == "2"
    assert [r.headers.get("RateLimit-Remaining") for r in rs] == ["1", "0", "0"]
    # One token per 30 s: the bucket is full again 30 s after the first
    # request, 60 s after the second, and the rejection changes nothing.
    resets = [int(r.headers["RateLimit-Reset"]) for r in rs]
    assert resets[0] in (29, 30) and resets[1] in (59, 60) and resets[2] in (59, 60), resets
    body = rs[2].json()
    assert rs[2].headers["Content-Type"].startswith("application/json")
    assert body["error"] == "rate_limited"
    retry = rs[2].headers["Retry-After"]
    assert retry.isdigit() and 29 <= int(retry) <= 30, retry
    free = get(s.url, "/free")
    assert free.status_code == 200 and "RateLimit-Limit" not in free.headers


def test_retry_after_is_at_least_one_second_when_the_next_token_is_milliseconds_away(
        sluice_factory, origin):
    s = start_gateway(sluice_factory, origin, {"key": "route", "rate": "100/s", "burst": 1})
    sess = requests.Session()
    rs = [sess.get(s.url + "/") for _ in range(20)]
    rejected = [r for r in rs if r.status_code == 429]
    assert rejected, [r.status_code for r in rs]
    assert all(r.headers["Retry-After"] == "1" for r in rejected), \
        [r.headers["Retry-After"] for r in rejected]


# -- 3. keys and several limits ------------------------------------------------------


def test_two_api_keys_each_get_their_full_quota(sluice_factory, origin):
    s = start_gateway(sluice_factory, origin,
                      {"key": "header:X-Api-Key", "rate": "5/h", "burst": 5})
    served = Served(origin)
    before = served()
    a = [get(s.url, headers={"X-Api-Key": "alpha"}).status_code for _ in range(8)]
    b = [get(s.url, headers={"X-Api-Key": "beta"}).status_code for _ in range(8)]
    assert a == [200] * 5 + [429] * 3
    assert b == [200] * 5 + [429] * 3
    assert served() - before == 10


def test_a_request_without_the_key_header_is_counted_by_its_client_address(
        sluice_factory, origin):
    s = start_gateway(sluice_factory, origin,
                      {"key": "header:X-Api-Key", "rate": "2/h", "burst": 2})
    anon = [get(s.url).status_code for _ in range(3)]
    keyed = [get(s.url, headers={"X-Api-Key": "k"}).status_code for _ in range(3)]
    assert anon == [200, 200, 429]
    assert keyed == [200, 200, 429]


TWO_LIMITS = [
    {"key": "header:X-Api-Key", "rate": "3/h", "burst": 3},  # A: per key
    {"key": "route", "rate": "5/h", "burst": 5},  # B: the whole route
]


def check_two_limits_never_double_spend(url):
    """A (3 per key) and B (5 for the route). Key X spends 3 of B's 5 tokens,
    then is rejected by A ten times: those must take nothing from B, so key
    Y still gets exactly B's 2 remaining tokens, and then B rejects Y while
    Y's own A bucket still has a token."""
    x = [get(url, headers={"X-Api-Key": "x"}) for _ in range(13)]
    assert [r.status_code for r in x] == [200] * 3 + [429] * 10
    assert [r.headers.get("RateLimit-Remaining") for r in x[:3]] == ["2", "1", "0"]
    y = [get(url, headers={"X-Api-Key": "y"}) for _ in range(3)]
    assert [r.status_code for r in y] == [200, 200, 429], (
        "key x's rejected requests spent tokens of the route-wide limit")
    # The smallest remaining of both limits: Y's A has 2 then 1, B has 1 then 0.
    assert [r.headers.get("RateLimit-Remaining") for r in y[:2]] == ["1", "0"]
    assert all(r.headers.get("RateLimit-Limit") == "3" for r in x + y)
    # B's rejection of y spent nothing of y's A either: z is new, and is
    # still rejected by B, the exhausted route-wide limit.
    assert get(url, headers={"X-Api-Key": "z"}).status_code == 429


def test_a_two_limit_list_rejects_on_either_limit_and_a_rejection_spends_no_token_from_the_other(
        sluice_factory, origin):
    s = start_gateway(sluice_factory, origin, TWO_LIMITS)
    served = Served(origin)
    before = served()
    check_two_limits_never_double_spend(s.url)
    assert served() - before == 5


# -- 4. throttling -------------------------------------------------------------------


def throttle_run(urls, threads=10, duration=3.0):
    start, res = hammer(urls, threads, duration, path="/paced")
    return res


def check_paced(res, origin, label):
    gaps = spacings_ms(origin, "/paced")
    med = statistics.median(gaps)
    lat = sorted(r.latency for r in res)
    print(f"{label}: {len(res)} requests {statuses(res)}, upstream spacing median "
          f"{med:.2f} ms (min {min(gaps):.2f}, max {max(gaps):.2f}), client wait "
          f"max {lat[-1] * 1000:.0f} ms")
    assert count(res, 429) == 0, statuses(res)
    assert count(res, 200) == len(res)
    assert len(gaps) + 1 == len(res), "the origin did not see every request"
    assert 45.0 <= med <= 55.0, f"median spacing {med:.2f} ms, expected 50 +- 10%"
    # 10 clients, one token per 50 ms: nobody waits much longer than 10 x 50 ms.
    assert lat[-1] < 0.8, f"a request was held {lat[-1]:.3f} s"


def test_max_delay_paces_ten_clients_at_twenty_per_second_with_no_429(
        sluice_factory, origin_factory, tmp_path):
    origin = origin_factory("paced", debug=True, log_path=tmp_path / "origin.log")
    s = start_gateway(sluice_factory, origin,
                      {"key": "route", "rate": "20/s", "burst": 1, "max_delay": "1s",
                       "store": "local"})
    res = throttle_run([s.url])
    check_paced(res, origin, "local 20/s burst 1 max_delay 1s")
    wait_logged(s, len(res))
    d = decisions(s)
    assert d.get("rejected", 0) == 0 and d.get("delayed", 0) > len(res) * 0.8, d


def test_a_request_that_would_wait_longer_than_max_delay_is_rejected_at_once(
        sluice_factory, origin):
    s = start_gateway(sluice_factory, origin,
                      {"key": "route", "rate": "2/s", "burst": 1, "max_delay": "300ms"})
    first = get(s.url)
    t0 = time.monotonic()
    second = get(s.url)  # the next token is 500 ms away: more than max_delay
    took = time.monotonic() - t0
    assert first.status_code == 200
    assert second.status_code == 429 and took < 0.2, (second.status_code, took)


# -- 6. a held client that leaves ----------------------------------------------------


def check_held_client_leaving_frees_its_slot(sluice, port):
    """burst 1, 1/s, max_delay 5s. A takes the token; B is held (until A's
    token + 1 s) and disconnects; C then must get the slot B had, about 1 s
    after A, not 2 s (which is what it gets if B's reservation stays)."""
    t_a = time.monotonic()
    a = raw_get(port)
    assert read_status(a, 5) == 200
    b = raw_get(port)
    assert read_status(b, 0.3) is None, "B was not held"
    b.close()
    # Give the gateway a moment to see B go (its access log line is written
    # when it does); C goes ahead either way, and its timing decides.
    try:
        wait_for(lambda: any(e.get("status") == 499 for e in sluice.access_log()), timeout=0.4)
        seen = True
    except TimeoutError:
        seen = False
    c = raw_get(port)
    t_c_sent = time.monotonic() - t_a
    st = read_status(c, 5)
    t_c = time.monotonic() - t_a
    a.close()
    c.close()
    print(f"held client leaving: C sent at {t_c_sent:.3f} s, answered {st} at {t_c:.3f} s "
          f"after A (B's disconnect logged before C: {seen})")
    assert st == 200
    assert t_c < 1.25, (f"C got its token {t_c:.3f} s after A; it should be ~1 s "
                        f"(B's reserved token was not given back; B's 499 logged: {seen})")
    return t_c


def test_a_held_client_that_disconnects_releases_its_slot_to_the_next_client(
        sluice_factory, origin):
    s = start_gateway(sluice_factory, origin,
                      {"key": "route", "rate": "1/s", "burst": 1, "max_delay": "5s",
                       "store": "local"})
    check_held_client_leaving_frees_its_slot(s, s.listen_ports()[0])
    logged = [e for e in s.access_log() if e.get("status") == 499]
    assert logged and logged[0].get("ratelimit") == "delayed", logged


OLDEST_FIRST_LIMIT = {"key": "route", "rate": "5/s", "burst": 1, "max_delay": "5s"}


def check_held_clients_leaving_oldest_first_give_back_every_slot(sluice):
    """5/s, burst 1, max_delay 5s. A goes through; B, C, D, E are held for
    A + 200, 400, 600, 800 ms, then leave in that order (the way clients
    time out). Only E's refund can apply at once, but it rolls the schedule
    back through D, C and B: F, coming next, gets the slot after A, not
    the one after E's (A + 1 s)."""
    port = sluice.listen_ports()[0]
    t_a = time.monotonic()
    a = raw_get(port)
    assert read_status(a, 5) == 200
    held = [raw_get(port) for _ in range(4)]
    assert read_status(held[0], 0.05) is None, "B was not held"
    for i, h in enumerate(held):
        h.close()
        wait_for(lambda: sum(e.get("status") == 499 for e in sluice.access_log()) == i + 1,
                 timeout=2, interval=0.01, what=f"held client {i + 1} leaving")
    t_f_sent = time.monotonic() - t_a
    f = raw_get(port)
    st = read_status(f, 5)
    t_f = time.monotonic() - t_a
    a.close()
    f.close()
    print(f"\nfour held clients left oldest first by {t_f_sent:.3f} s; F answered {st} at "
          f"{t_f:.3f} s after A")
    assert st == 200
    assert t_f < max(t_f_sent, 0.2) + 0.25, (
        f"F got its token {t_f:.3f} s after A (sent at {t_f_sent:.3f} s): the slots of the "
        f"clients that left were not given back (E's alone would put F at 1 s)")


def test_held_clients_leaving_oldest_first_give_back_every_slot(sluice_factory, origin):
    s = start_gateway(sluice_factory, origin, dict(OLDEST_FIRST_LIMIT, store="local"))
    check_held_clients_leaving_oldest_first_give_back_every_slot(s)


SLOTS_LIMIT = {"key": "route", "rate": "5/s", "burst": 1, "max_delay": "5s"}


def check_no_two_requests_share_a_slot(sluice, origin):
    """5/s, burst 1 (one request per 200 ms), max_delay 5s. A goes through,
    B is held for slot +200 ms, D for slot +400 ms; B leaves, then C comes.
    Whatever slot C gets, the upstream must never see two requests closer
    than one interval: burst 1 allows no pair."""
    port = sluice.listen_ports()[0]
    a = raw_get(port, "/slot")
    assert read_status(a, 5) == 200
    b = raw_get(port, "/slot")
    d = raw_get(port, "/slot")
    assert read_status(b, 0.05) is None, "B was not held"
    b.close()
    wait_for(lambda: any(e.get("status") == 499 for e in sluice.access_log()), timeout=1,
             what="B's departure in the access log")
    c = raw_get(port, "/slot")
    assert read_status(d, 5) == 200 and read_status(c, 5) == 200
    for x in (a, c, d):
        x.close()
    gaps = spacings_ms(origin, "/slot")
    print(f"\nupstream arrivals after A: gaps {[round(g, 1) for g in gaps]} ms")
    assert len(gaps) == 2
    assert min(gaps) >= 200 * 0.8, (
        f"two requests {min(gaps):.1f} ms apart at the upstream (gaps {gaps}): the token B "
        f"gave back was handed out on D's slot, not B's")


def test_a_held_client_leaving_ahead_of_another_held_one_never_lets_two_requests_share_a_slot(
        sluice_factory, origin_factory, tmp_path):
    origin = origin_factory("slots", debug=True, log_path=tmp_path / "origin.log")
    s = start_gateway(sluice_factory, origin, dict(SLOTS_LIMIT, store="local"))
    check_no_two_requests_share_a_slot(s, origin)


# -- 7. trusted proxies ----------------------------------------------------------------


def test_behind_a_trusted_proxy_the_rightmost_untrusted_forwarded_address_is_the_key(
        sluice_factory, origin):
    s = start_gateway(sluice_factory, origin, {"key": "ip", "rate": "2/h", "burst": 2},
                      trusted=["10.0.0.0/8", "127.0.0.1"])

    def st(xff):
        return get(s.url, headers={"X-Forwarded-For": xff}).status_code

    assert [st("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    # Another client behind the proxy has its own bucket.
    assert st("203.0.113.2") == 200
    # The right-most untrusted address counts, past trusted hops, whatever
    # the client claims to its left.
    assert st("198.51.100.7, 203.0.113.1, 10.1.2.3") == 429
    assert st("203.0.113.1,203.0.113.2") == 200  # 203.0.113.2's second token
    assert st("203.0.113.2") == 429
    # Several X-Forwarded-For fields count as one list, the last one last.
    port = s.listen_ports()[0]
    two = [("X-Forwarded-For", "203.0.113.3"), ("X-Forwarded-For", "203.0.113.1")]
    assert raw_status(port, headers=two) == 429  # 203.0.113.1's
    assert raw_status(port, headers=two[::-1]) == 200  # 203.0.113.3's
    # The proxy itself, without X-Forwarded-For, is its own client.
    assert [get(s.url).status_code for _ in range(3)] == [200, 200, 429]


def test_the_forwarded_for_header_of_an_untrusted_peer_is_ignored(sluice_factory, origin):
    s = start_gateway(sluice_factory, origin, {"key": "ip", "rate": "2/h", "burst": 2},
                      trusted=["10.0.0.0/8"])
    got = [get(s.url, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
           for i in range(1, 4)]
    assert got == [200, 200, 429], "X-Forwarded-For from an untrusted peer changed the key"


# -- 8. config errors ------------------------------------------------------------------


def config_text(tmp_path, limit, redis=None):
    conf = rl_config(free_port(), "127.0.0.1:9", limit, redis=redis)
    path = tmp_path / "rl.yaml"
    path.write_text(json.dumps(conf))  # JSON is YAML
    return path


@pytest.mark.parametrize("limit, message", [
    ({"key": "route", "rate": "10/s", "store": "redis"},
     "store: redis needs the top-level redis: settings"),
    ({"key": "route", "rate": "10/fortnight"}, "expected a rate such as 100/s"),
    ({"key": "route", "rate": "0/s"}, "expected a rate such as 100/s"),
    ({"key": "route", "rate": "ten/s"}, "expected a rate such as 100/s"),
    ({"key": "cookie:session", "rate": "10/s"}, "expected ip, route, header:NAME, jwt:CLAIM, consumer or var:NAME"),
    ({"key": "header:", "rate": "10/s"}, "expected ip, route, header:NAME, jwt:CLAIM, consumer or var:NAME"),
    ({"key": "route"}, "rate"),
    ({"key": "route", "rate": "10/s", "burst": 0}, "burst"),
    ({"key": "route", "rate": "1/d", "burst": 1000000000}, "takes over 100 years to refill"),
    ({"key": "route", "rate": "10/s", "max_delay": "1000000d"}, "expected at most 100 years"),
    ({"key": "route", "rate": "10/s", "store": "memcached"}, "store"),
    ({"key": "route", "rate": "10/s", "on_store_failure": "panic"}, "on_store_failure"),
    ({"key": "route", "rate": "10/s", "colour": "blue"}, "colour"),
    ([{"key": "route", "rate": "10/s", "store": "local"},
      {"key": "ip", "rate": "10/s", "store": "redis"}], "all limits of a route use one store"),
], ids=["redis-store-without-redis", "unknown-unit", "zero-rate", "not-a-number",
        "unknown-key", "empty-header-name", "no-rate", "zero-burst", "bucket-of-centuries",
        "delay-of-centuries", "unknown-store",
        "unknown-failure-mode", "unknown-setting", "two-stores"])
def test_a_bad_rate_limit_setting_is_a_config_error(tmp_path, limit, message):
    # With redis: set where the store is not the point.
    redis = None if message.startswith("store: redis") else {"address": "127.0.0.1:6379"}
    rc, out, err = check_config(config_text(tmp_path, limit, redis=redis))
    assert rc != 0, f"accepted: {out}{err}"
    assert message in err, err
    assert "rate_limit" in err, err


def test_valid_rate_limit_settings_pass_the_check(tmp_path):
    limit = [{"key": "jwt:sub", "rate": "100/s", "burst": 200, "max_delay": "500ms"},
             {"key": "header:X-Api-Key", "rate": "1000/h"}, {"key": "ip", "rate": "5/m"},
             {"key": "route", "rate": "1/d", "on_store_failure": "deny"}]
    rc, out, err = check_config(config_text(tmp_path, limit, redis={
        "address": "127.0.0.1:6379", "timeout": "20ms"}))
    assert rc == 0, err
