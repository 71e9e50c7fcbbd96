"""Load balancing end to end: weighted round robin, least_conn, consistent
hashing on a header, a cookie or the client address, p2c, and targets given
by a host name.

Every test counts where requests went by the X-Origin header the origin
puts on its answers (or by the origins' -d request logs)."""

import collections
import http.client
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import yaml

from conftest import ORIGIN, SLUICE, Sluice, check_config, free_port, stop_process, \
    upstream_config, \
    wait_for, wait_port


# -- helpers ------------------------------------------------------------------


def spread(url, total, threads=4, path="/", headers_for=None, timeout=10):
    """Send total GETs from `threads` keep-alive sessions; return
    (Counter of X-Origin, list of problems)."""
    counts = collections.Counter()
    problems = []
    lock = threading.Lock()
    per = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]

    def work(n, tid):
        local = collections.Counter()
        bad = []
        with requests.Session() as s:
            for i in range(n):
                h = headers_for(tid, i) if headers_for else None
                try:
                    r = s.get(url + path, headers=h, timeout=timeout)
                except requests.RequestException as e:
                    bad.append(repr(e))
                    continue
                if r.status_code != 200:
                    bad.append(f"{r.status_code} {r.text[:200]}")
                local[r.headers.get("X-Origin")] += 1
        with lock:
            counts.update(local)
            problems.extend(bad)

    ts = [threading.Thread(target=work, args=(per[i], i)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts, problems


def get_from(port, path="/", source="127.0.0.1", headers=None):
    """One GET on a new connection from a given loopback source address;
    returns (status, X-Origin)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("X-Origin")
    finally:
        c.close()


def debug_origin(origin_factory, tmp_path, name):
    """An origin that logs every request it receives (-d)."""
    return origin_factory(name, debug=True, log_path=str(tmp_path / f"{name}.req.log"))


def hits(origin, needle):
    """Requests the origin logged whose target contains needle."""
    return [r for r in origin.request_log() if needle in r[2]]


class SlowServer:
    """A tiny HTTP/1.1 server that answers every request after `delay`
    seconds: an upstream that is slow whatever the path."""

    def __init__(self, name, delay):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                time.sleep(delay)
                self.send_response(200)
                self.send_header("X-Origin", name)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "13")
                self.end_headers()
                self.wfile.write(b"Hello, world!")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# -- weights ------------------------------------------------------------------


def test_weights_3_1_1_split_ten_thousand_requests_60_20_20_within_three_points(
    origin_factory, sluice_factory
):
    a, b, c = (origin_factory(n) for n in "abc")
    port = free_port()
    sluice_factory(
        upstream_config(
            port,
            [
                {"address": a.address, "weight": 3},
                {"address": b.address, "weight": 1},
                {"address": c.address, "weight": 1},
            ],
            workers=2,
        )
    )
    counts, problems = spread(f"http://127.0.0.1:{port}", 10_000, threads=6)
    assert problems == []
    total = sum(counts.values())
    assert total == 10_000
    shares = {k: 100.0 * v / total for k, v in counts.items()}
    print(f"\nweights 3:1:1 over {total} requests: "
          + ", ".join(f"{k} {v:.1f}%" for k, v in sorted(shares.items())))
    assert set(shares) == {"a", "b", "c"}, shares
    assert abs(shares["a"] - 60) <= 3, shares
    assert abs(shares["b"] - 20) <= 3, shares
    assert abs(shares["c"] - 20) <= 3, shares


# -- least_conn ---------------------------------------------------------------


def quick_requests_to_less_loaded(origin_factory, sluice_factory, tmp_path, balance):
    """Hold 5 slow requests in flight over two targets (so one holds more
    than the other), then send 20 quick requests one after another.
    Returns (quick requests answered by the target holding fewer slow ones,
    slow-request counts per origin)."""
    a = debug_origin(origin_factory, tmp_path, f"a-{balance}")
    b = debug_origin(origin_factory, tmp_path, f"b-{balance}")
    port = free_port()
    sluice_factory(upstream_config(port, [a.address, b.address], balance=balance),
                   name=f"sluice-{balance}")
    url = f"http://127.0.0.1:{port}"
    tag = uuid.uuid4().hex[:8]
    slow_results = []

    def slow(i):
        r = requests.get(f"{url}/?delay=1500&slow={tag}{i}", timeout=10)
        slow_results.append((r.status_code, r.headers.get("X-Origin")))

    ts = [threading.Thread(target=slow, args=(i,)) for i in range(5)]
    for t in ts:
        t.start()
    # All five are at the origins (and so in flight at the gateway).
    wait_for(lambda: len(hits(a, f"slow={tag}")) + len(hits(b, f"slow={tag}")) == 5,
             what="5 slow requests at the origins")
    held = {a.name: len(hits(a, f"slow={tag}")), b.name: len(hits(b, f"slow={tag}"))}
    lighter = min(held, key=held.get)
    quick = []
    with requests.Session() as s:
        for _ in range(20):
            r = s.get(url + "/", timeout=10)
            assert r.status_code == 200
            quick.append(r.headers.get("X-Origin"))
    # The slow ones were still in flight the whole time.
    assert not slow_results, "the slow requests ended before the quick ones: test too slow"
    for t in ts:
        t.join()
    assert sorted(s for s, _ in slow_results) == [200] * 5
    return quick.count(lighter), held


def test_least_conn_sends_new_requests_to_the_target_with_fewer_requests_in_flight(
    origin_factory, sluice_factory, tmp_path
):
    to_lighter, held = quick_requests_to_less_loaded(
        origin_factory, sluice_factory, tmp_path, "least_conn"
    )
    assert sorted(held.values()) in ([2, 3], [1, 4], [0, 5]), held
    assert to_lighter >= 19, f"{to_lighter}/20 quick requests went to the less busy target"


def test_round_robin_ignores_requests_in_flight_as_a_control_for_least_conn(
    origin_factory, sluice_factory, tmp_path
):
    to_lighter, held = quick_requests_to_less_loaded(
        origin_factory, sluice_factory, tmp_path, "round_robin"
    )
    assert 6 <= to_lighter <= 14, f"{to_lighter}/20 quick requests went to the less busy target"


# -- consistent hashing ---------------------------------------------------------


def keys_to_origins(url, keys, header="X-User", repeat=2, threads=4):
    """Request every key `repeat` times, each time from another session;
    return {key: set of X-Origin values seen}."""
    seen = collections.defaultdict(set)
    lock = threading.Lock()
    errors = []

    def work(part):
        with requests.Session() as s:
            for k in part:
                r = s.get(url + "/", headers={header: k}, timeout=10)
                if r.status_code != 200:
                    errors.append(r.status_code)
                with lock:
                    seen[k].add(r.headers.get("X-Origin"))

    for rep in range(repeat):
        parts = [keys[(i + rep) % threads::threads] for i in range(threads)]
        ts = [threading.Thread(target=work, args=(p,)) for p in parts]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert errors == []
    return seen


def test_hash_on_a_header_is_stable_and_a_fourth_target_moves_a_quarter_of_the_keys(
    origin_factory, sluice_factory
):
    origins = [origin_factory(n) for n in ("h1", "h2", "h3", "h4")]
    port = free_port()
    conf = upstream_config(
        port, [o.address for o in origins[:3]], balance="hash", hash_key="header:X-User"
    )
    s = sluice_factory(conf)
    url = f"http://127.0.0.1:{port}"
    keys = [f"user-{i}" for i in range(1000)]

    before = keys_to_origins(url, keys, repeat=2)
    unstable = {k: v for k, v in before.items() if len(v) != 1}
    assert unstable == {}, f"{len(unstable)} keys went to several targets, e.g. {list(unstable.items())[:5]}"
    share = collections.Counter(next(iter(v)) for v in before.values())
    assert set(share) == {"h1", "h2", "h3"}
    assert min(share.values()) >= 200, share  # an even spread: ~333 each

    conf4 = upstream_config(
        port, [o.address for o in origins], balance="hash", hash_key="header:X-User"
    )
    s.reload(conf4)
    assert "configuration reloaded" in s.error_log()
    after = keys_to_origins(url, keys, repeat=2)
    unstable = {k: v for k, v in after.items() if len(v) != 1}
    assert unstable == {}, f"{len(unstable)} keys went to several targets after the reload"
    moved = [k for k in keys if after[k] != before[k]]
    print(f"\nhash: a fourth target moved {len(moved)} of 1000 keys")
    assert 150 <= len(moved) <= 350, f"{len(moved)} of 1000 keys moved"
    # Keys move to the new target, not between the old ones.
    to_new = sum(1 for k in moved if after[k] == {"h4"})
    assert to_new >= 0.9 * len(moved), f"only {to_new} of {len(moved)} moved keys went to h4"


def test_hash_on_a_cookie_keeps_each_key_on_one_target(origin_factory, sluice_factory):
    origins = [origin_factory(n) for n in ("c1", "c2", "c3")]
    port = free_port()
    sluice_factory(
        upstream_config(port, [o.address for o in origins], balance="hash",
                        hash_key="cookie:sid")
    )
    url = f"http://127.0.0.1:{port}"
    seen = collections.defaultdict(set)
    for i in range(150):
        for other in ("a=1", "theme=dark; lang=en"):
            # Other cookies around it must not change the key.
            r = requests.get(url + "/", headers={"Cookie": f"{other}; sid=s{i}; z=9"}, timeout=10)
            assert r.status_code == 200
            seen[i].add(r.headers.get("X-Origin"))
    unstable = {k: v for k, v in seen.items() if len(v) != 1}
    assert unstable == {}, f"keys on several targets: {list(unstable.items())[:5]}"
    # It hashes the cookie, not the (single) client address: keys spread.
    share = collections.Counter(next(iter(v)) for v in seen.values())
    assert set(share) == {"c1", "c2", "c3"}, share


def loopback_sources(n):
    """n loopback source addresses the test can bind (127.0.0.2...)."""
    out = []
    for i in range(2, 2 + n):
        ip = f"127.0.0.{i}"
        try:
            with socket.socket() as s:
                s.bind((ip, 0))
        except OSError:
            pytest.skip(f"cannot bind source address {ip}")
        out.append(ip)
    return out


def test_hash_on_the_client_address_keeps_each_client_on_one_target(
    origin_factory, sluice_factory
):
    origins = [origin_factory(n) for n in ("i1", "i2", "i3")]
    port = free_port()
    sluice_factory(
        upstream_config(port, [o.address for o in origins], balance="hash", hash_key="ip")
    )
    seen = collections.defaultdict(set)
    for ip in loopback_sources(40):
        for _ in range(3):
            status, who = get_from(port, source=ip, headers={"X-User": "ignored"})
            assert status == 200
            seen[ip].add(who)
    unstable = {k: v for k, v in seen.items() if len(v) != 1}
    assert unstable == {}, f"clients on several targets: {unstable}"
    share = collections.Counter(next(iter(v)) for v in seen.values())
    assert len(share) >= 2, f"40 client addresses all went to one target: {share}"


def test_hash_on_a_header_falls_back_to_the_client_address_when_the_header_is_missing(
    origin_factory, sluice_factory
):
    origins = [origin_factory(n) for n in ("f1", "f2", "f3")]
    port = free_port()
    sluice_factory(
        upstream_config(port, [o.address for o in origins], balance="hash",
                        hash_key="header:X-User")
    )
    seen = collections.defaultdict(set)
    for ip in loopback_sources(40):
        for _ in range(3):
            status, who = get_from(port, source=ip)
            assert status == 200
            seen[ip].add(who)
    unstable = {k: v for k, v in seen.items() if len(v) != 1}
    assert unstable == {}, f"clients without the header on several targets: {unstable}"
    share = collections.Counter(next(iter(v)) for v in seen.values())
    assert len(share) >= 2, f"40 client addresses all went to one target: {share}"


# -- p2c ------------------------------------------------------------------------


def test_p2c_spreads_load_over_every_target(origin_factory, sluice_factory):
    origins = [origin_factory(n) for n in ("p1", "p2", "p3")]
    port = free_port()
    sluice_factory(
        upstream_config(port, [o.address for o in origins], balance="p2c", workers=2)
    )
    # Few clients, so that in-flight counts stay low and latency decides.
    counts, problems = spread(f"http://127.0.0.1:{port}", 1200, threads=2)
    assert problems == []
    assert set(counts) == {"p1", "p2", "p3"}, counts
    assert min(counts.values()) >= 0.15 * 1200, counts


def test_p2c_gives_a_target_added_by_a_reload_its_share(origin_factory, sluice_factory):
    origins = [origin_factory(n) for n in ("q1", "q2", "q3")]
    port = free_port()
    s = sluice_factory(upstream_config(port, [o.address for o in origins[:2]], balance="p2c"))
    counts, problems = spread(s.url, 200, threads=2)
    assert problems == [] and set(counts) == {"q1", "q2"}, (counts, problems)
    s.reload(upstream_config(port, [o.address for o in origins], balance="p2c"))
    assert "configuration reloaded" in s.error_log()
    counts, problems = spread(s.url, 900, threads=2)
    assert problems == []
    # The new target is as fast as the others: it should get about a third.
    assert counts["q3"] >= 0.15 * 900, counts


def test_p2c_avoids_a_target_that_answers_slowly(origin_factory, sluice_factory):
    fast = [origin_factory(n) for n in ("fast1", "fast2")]
    slow = SlowServer("slow", delay=0.1)
    try:
        port = free_port()
        sluice_factory(
            upstream_config(port, [fast[0].address, fast[1].address, slow.address],
                            balance="p2c")
        )
        counts, problems = spread(f"http://127.0.0.1:{port}", 900, threads=4)
    finally:
        slow.close()
    assert problems == []
    # Round robin would give the slow one 300; p2c learns its latency.
    assert counts["slow"] <= 0.05 * 900, counts
    assert counts["fast1"] >= 0.3 * 900 and counts["fast2"] >= 0.3 * 900, counts


# -- targets by name -------------------------------------------------------------


def resolves_to_both_loopbacks(name):
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        return False
    return {"127.0.0.1", "::1"} <= addrs


def start_v6_origin(name, port):
    """sluice-origin on [::1]:port (the harness's Origin has no -a)."""
    proc = subprocess.Popen(
        [str(ORIGIN), "-a", "::1", "-p", str(port), "-n", name],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        return None
    return proc


class HostsSluice(Sluice):
    """sluice run in its own mount namespace where /etc/hosts says that
    localhost is both 127.0.0.1 and ::1 (as on a stock Debian), for machines
    whose /etc/hosts lists localhost only for IPv4. Nothing outside the
    process sees the change."""

    def __init__(self, tmp_path, config, hosts):
        super().__init__(tmp_path, config, name="sluice-hosts")
        self.hosts = hosts

    def start(self, wait=True):
        out = open(self.access_path, "ab")
        err = open(self.error_path, "ab")
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
             str(self.hosts), str(SLUICE), "-c", str(self.conf_path)],
            stdout=out, stderr=err, env=self.env,
        )
        out.close()
        err.close()
        if wait:
            for port in self.listen_ports():
                wait_port(port, proc=self.proc)
        return self


def test_a_target_given_as_localhost_becomes_one_target_per_address_and_both_get_traffic(
    origin_factory, sluice_factory, tmp_path
):
    v4 = origin_factory("v4")
    v6 = start_v6_origin("v6", v4.port)
    if v6 is None:
        pytest.skip(f"cannot listen on [::1]:{v4.port}")
    s = None
    try:
        port = free_port()
        conf = upstream_config(port, [f"localhost:{v4.port}"])
        if resolves_to_both_loopbacks("localhost"):
            s = sluice_factory(conf)
        else:
            hosts = tmp_path / "hosts"
            hosts.write_text("127.0.0.1 localhost\n::1 localhost\n")
            probe = subprocess.run(
                ["unshare", "-m", "--", "sh", "-c",
                 'mount --bind "$0" /etc/hosts && exec getent ahosts localhost', str(hosts)],
                capture_output=True, text=True,
            )
            if probe.returncode != 0 or "::1" not in probe.stdout:
                pytest.skip("localhost is IPv4 only here and a private /etc/hosts is not possible")
            s = HostsSluice(tmp_path, conf, hosts).start()
        counts, problems = spread(s.url, 200, threads=2)
        assert problems == []
        assert set(counts) == {"v4", "v6"}, f"localhost gave one target only: {counts}"
        assert min(counts.values()) >= 60, counts
    finally:
        stop_process(v6)
        if s is not None and isinstance(s, HostsSluice):
            assert s.stop() == 0, s.error_log()[-3000:]


def test_a_target_name_that_does_not_resolve_is_a_config_error(tmp_path):
    port = free_port()
    conf = upstream_config(port, ["127.0.0.1:9", "no-such-host.invalid:8080"])
    path = tmp_path / "bad.yaml"

    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    rc, out, err = check_config(path)
    assert rc == 1, (out, err)
    assert "error" in err and "no-such-host.invalid" in err, err
    assert "upstreams.app.targets" in err, err
    assert "configuration ok" not in out
