"""Failover end to end: health checks under load, hung targets and passive
ejection, backups, no healthy target at all, retries after 502/503 and
after resets, and the single trial request after an ejection.

Where requests went is read from the X-Origin header of the answers, or
from the origins' -d request logs (which also show attempts the client
never sees)."""

import collections
import re
import signal
import socket
import statistics
import struct
import threading
import time
import uuid

import requests

from conftest import basic_config, free_port, upstream_config, wait_for


# -- helpers ------------------------------------------------------------------

FAST_HEALTH = {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "healthy": 1,
               "unhealthy": 2}


def debug_origin(origin_factory, tmp_path, name, **kw):
    """An origin that logs every request it receives (-d)."""
    return origin_factory(name, debug=True, log_path=str(tmp_path / f"{name}.req.log"), **kw)


def hits(origin, needle):
    """Requests the origin logged whose target contains needle."""
    return [r for r in origin.request_log() if needle in r[2]]


def log_count(s, pattern):
    return len(re.findall(pattern, s.error_log()))


def who(url, n, headers=None):
    """n sequential GETs on one keep-alive session: Counter of X-Origin
    (None for a non-200 answer)."""
    out = collections.Counter()
    with requests.Session() as sess:
        for _ in range(n):
            r = sess.get(url + "/", headers=headers, timeout=10)
            out[r.headers.get("X-Origin") if r.status_code == 200 else f"status {r.status_code}"] += 1
    return out


class Load:
    """A steady GET load: `threads` keep-alive sessions, `rate` requests per
    second in all, until stop(). Every request is recorded as
    (start, latency, status or None, X-Origin, error, thread)."""

    def __init__(self, url, rate=200, threads=4, path="/", timeout=10):
        self.url, self.path, self.timeout = url, path, timeout
        self.period = threads / rate
        self.records = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, tid):
        nxt = time.monotonic()
        with requests.Session() as s:
            while not self.stopping.is_set():
                t0 = time.monotonic()
                try:
                    r = s.get(self.url + self.path, timeout=self.timeout)
                    rec = (t0, time.monotonic() - t0, r.status_code, r.headers.get("X-Origin"),
                           None if r.status_code == 200 else r.text[:200], tid)
                except requests.RequestException as e:
                    rec = (t0, time.monotonic() - t0, None, None, repr(e), tid)
                with self.lock:
                    self.records.append(rec)
                nxt += self.period
                pause = nxt - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load, not waiting for a server
                else:
                    nxt = time.monotonic()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()
        return self.records

    def count(self):
        with self.lock:
            return len(self.records)

    def errors(self):
        with self.lock:
            return [r for r in self.records if r[2] != 200]


# -- health checks under load ---------------------------------------------------


def test_killing_one_of_three_targets_under_load_loses_no_request_and_it_comes_back(
    origin_factory, sluice_factory
):
    a, b, c = (origin_factory(n) for n in "abc")
    port = free_port()
    health = {"path": "/healthz", "interval": "1s", "unhealthy": 3, "healthy": 2,
              "timeout": "500ms"}
    s = sluice_factory(
        upstream_config(port, [a.address, b.address, c.address], workers=2, health_check=health)
    )
    load = Load(s.url, rate=200, threads=4).start()
    t0 = time.monotonic()
    try:
        wait_for(lambda: load.count() >= 600, timeout=15, what="3 s of load")
        c_port = c.port
        c.proc.kill()  # SIGKILL
        t_kill = time.monotonic()
        c.proc.wait()
        down = f"target {c.address} is DOWN"
        wait_for(lambda: down in s.error_log(), timeout=10, what="the DOWN log line")
        t_down = time.monotonic()
        # Keep it down for about 2 s of load.
        n_down = load.count()
        wait_for(lambda: load.count() >= n_down + 400, timeout=15, what="2 s of load with c down")

        c2 = origin_factory("c", port=c_port)
        t_restart = time.monotonic()
        up = f"target {c.address} is UP"
        wait_for(lambda: up in s.error_log(), timeout=10, what="the UP log line")
        t_up = time.monotonic()
        # The rest of the 20 s of load, with c back.
        wait_for(lambda: time.monotonic() - t0 >= 20, timeout=30, interval=0.1,
                 what="20 s of load")
    finally:
        records = load.stop()

    errors = [r for r in records if r[2] != 200]
    print(f"\nSIGKILL of 1 of 3 under load: {len(records)} requests, {len(errors)} errors; "
          f"DOWN {t_down - t_kill:.2f} s after the kill, UP {t_up - t_restart:.2f} s "
          f"after the restart")
    assert errors == [], f"{len(errors)} of {len(records)} requests failed, e.g. {errors[:5]}"
    assert len(records) >= 3000, f"only {len(records)} requests in 20 s"
    # interval 1s x unhealthy 3, plus one interval.
    assert t_down - t_kill <= 4.0, f"marked down {t_down - t_kill:.2f}s after the kill"
    # interval 1s x healthy 2, plus one interval.
    assert t_up - t_restart <= 3.0, f"marked up {t_up - t_restart:.2f}s after the restart"
    while_down = [r for r in records if t_down + 0.1 < r[0] < t_restart]
    assert while_down and all(r[3] != "c" for r in while_down)
    after_up = [r for r in records if r[0] > t_up + 0.1]
    back = sum(1 for r in after_up if r[3] == "c")
    assert len(after_up) >= 300
    assert back >= 0.2 * len(after_up), f"c answered {back} of {len(after_up)} after it was UP"
    assert c2.proc.poll() is None


# -- a hung target ----------------------------------------------------------------


def timed_gets(url, n_threads, duration=None, per_thread=None):
    """Sequential GETs from n_threads sessions; per thread a list of
    (latency, status, X-Origin)."""
    out = [[] for _ in range(n_threads)]

    def work(tid):
        end = time.monotonic() + duration if duration else None
        with requests.Session() as s:
            i = 0
            while (end and time.monotonic() < end) or (per_thread and i < per_thread):
                t0 = time.monotonic()
                try:
                    r = s.get(url + "/", timeout=10)
                    out[tid].append((time.monotonic() - t0, r.status_code, r.headers.get("X-Origin")))
                except requests.RequestException as e:
                    out[tid].append((time.monotonic() - t0, repr(e), None))
                i += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_a_hung_target_costs_each_client_at_most_one_read_timeout_then_is_ejected(
    origin_factory, sluice_factory
):
    a, b, c = (origin_factory(n) for n in "abc")
    port = free_port()
    s = sluice_factory(
        upstream_config(port, [a.address, b.address, c.address],
                        timeouts={"read": "1s"}, passive={"failures": 2, "eject": "30s"})
    )
    assert set(who(s.url, 30)) == {"a", "b", "c"}  # warm: pooled connections to all three
    c.proc.send_signal(signal.SIGSTOP)
    try:
        first = timed_gets(s.url, 4, duration=3.0)
        ejected = f"target {c.address} of upstream \"app\" ejected"
        wait_for(lambda: ejected in s.error_log(), timeout=5, what="the ejection")
        timeouts_before = log_count(s, re.escape(f"target {c.address})"))
        second = timed_gets(s.url, 4, per_thread=50)
        timeouts_after = log_count(s, re.escape(f"target {c.address})"))
    finally:
        c.proc.send_signal(signal.SIGCONT)

    for tid, reqs in enumerate(first):
        assert all(st == 200 for _, st, _ in reqs), f"client {tid}: {[r for r in reqs if r[1] != 200]}"
        assert all(o in ("a", "b") for _, _, o in reqs)
        # A request pays one read timeout (1 s) and a retry at most.
        assert max(lat for lat, _, _ in reqs) <= 1.5, f"client {tid}: {max(reqs)}"
    paid = [lat for reqs in first for lat, _, _ in reqs if lat >= 0.9]
    print(f"\nSIGSTOP: {sum(map(len, first))} requests in 3 s, {len(paid)} paid a read "
          f"timeout, slowest {max(lat for reqs in first for lat, _, _ in reqs):.2f} s")
    assert paid, "no request ever met c"
    # Without the ejection each of the 4 clients would meet c about once a
    # second (~12 timeouts in 3 s); with it, the requests that were already
    # on their way to c when it hung, and at most a couple more sent before
    # the second failure was counted.
    assert len(paid) <= 6, f"{len(paid)} requests paid a read timeout: {paid}"
    # Once ejected, c is not touched: nothing waits on it, nothing times out.
    flat = [r for reqs in second for r in reqs]
    assert all(st == 200 for _, st, _ in flat)
    assert max(lat for lat, _, _ in flat) < 0.5, max(flat)
    assert timeouts_after == timeouts_before, s.error_log()[-2000:]


def test_a_post_with_a_body_to_a_hung_target_is_not_replayed_and_gets_504(
    origin_factory, sluice_factory, tmp_path
):
    a = debug_origin(origin_factory, tmp_path, "a")
    c = debug_origin(origin_factory, tmp_path, "c")
    port = free_port()
    s = sluice_factory(upstream_config(port, [a.address, c.address], timeouts={"read": "1s"}))
    c.proc.send_signal(signal.SIGSTOP)
    tag = uuid.uuid4().hex[:8]
    try:
        # Round robin alternates: of four POSTs, two meet the hung target.
        posts = []
        for i in range(4):
            r = requests.post(f"{s.url}/echo?post={tag}-{i}", data=b"hello, body", timeout=10)
            posts.append((i, r.status_code, r.headers.get("X-Origin"), r.text))
        # A GET that meets it is retried on a (the control).
        gets = []
        for i in range(2):
            r = requests.get(f"{s.url}/?get={tag}-{i}", timeout=10)
            gets.append((i, r.status_code, r.headers.get("X-Origin")))
    finally:
        c.proc.send_signal(signal.SIGCONT)

    timed_out = [p for p in posts if p[1] != 200]
    assert len(timed_out) == 2, posts
    for i, status, _, body in timed_out:
        assert status == 504, posts
        assert '"upstream_timeout"' in body
        # Never replayed on a...
        assert hits(a, f"post={tag}-{i}") == [], f"POST {i} was replayed on a"
    # ...and sent to c exactly once (c logs it once it runs again).
    for i, _, _, _ in timed_out:
        wait_for(lambda: len(hits(c, f"post={tag}-{i}")) >= 1, timeout=5,
                 what=f"c to see POST {i}")
        assert len(hits(c, f"post={tag}-{i}")) == 1
    assert all(st == 200 and o == "a" for _, st, o in gets), gets
    assert all(len(hits(a, f"get={tag}-{i}")) == 1 for i in range(2))
    wait_for(lambda: sum(len(hits(c, f"get={tag}-{i}")) for i in range(2)) >= 1, timeout=5,
             what="c to see the GET that was retried")


# -- backups ------------------------------------------------------------------------


def test_backups_serve_only_while_every_primary_is_down(origin_factory, sluice_factory):
    p1, p2, k = origin_factory("p1"), origin_factory("p2"), origin_factory("backup")
    port = free_port()
    s = sluice_factory(
        upstream_config(
            port,
            [p1.address, p2.address, {"address": k.address, "backup": True}],
            health_check=FAST_HEALTH,
        )
    )
    assert who(s.url, 30) == {"p1": 15, "p2": 15}

    port1, port2 = p1.port, p2.port
    p1.kill()
    wait_for(lambda: f"target {p1.address} is DOWN" in s.error_log(), what="p1 DOWN")
    assert who(s.url, 30) == {"p2": 30}, "a backup served while a primary was up"

    p2.kill()
    wait_for(lambda: f"target {p2.address} is DOWN" in s.error_log(), what="p2 DOWN")
    assert who(s.url, 30) == {"backup": 30}

    origin_factory("p1", port=port1)
    origin_factory("p2", port=port2)
    wait_for(lambda: f"target {p1.address} is UP" in s.error_log()
             and f"target {p2.address} is UP" in s.error_log(), what="p1 and p2 UP")
    assert who(s.url, 30) == {"p1": 15, "p2": 15}


# -- no healthy target ---------------------------------------------------------------


def test_with_every_target_down_503_no_healthy_upstream_comes_at_once_without_connecting(
    origin_factory, sluice_factory
):
    a, b = origin_factory("a"), origin_factory("b")
    port = free_port()
    health = dict(FAST_HEALTH, interval="100ms", timeout="100ms", unhealthy=1)
    s = sluice_factory(upstream_config(port, [a.address, b.address], health_check=health))
    assert set(who(s.url, 4)) == {"a", "b"}
    a.kill()
    b.kill()
    wait_for(lambda: f"target {a.address} is DOWN" in s.error_log()
             and f"target {b.address} is DOWN" in s.error_log(), what="both DOWN")
    connects_before = log_count(s, r"connect\(\) failed")
    times = []
    with requests.Session() as sess:
        r = sess.get(s.url + "/warm", timeout=5)  # warm the connection
        assert r.status_code == 503
        for i in range(20):
            t0 = time.perf_counter()
            r = sess.get(f"{s.url}/x{i}", timeout=5)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 503
            assert r.headers["Content-Type"].startswith("application/json")
            assert r.json()["error"] == "no_healthy_upstream"
            assert r.headers.get("Connection", "").lower() != "close"
    print(f"\nevery target down: 503 median {statistics.median(times) * 1000:.2f} ms, "
          f"max {max(times) * 1000:.2f} ms")
    assert statistics.median(times) < 0.010, f"median {statistics.median(times) * 1000:.1f} ms"
    assert log_count(s, r"connect\(\) failed") == connects_before, s.error_log()[-2000:]
    assert "trying another target" not in s.error_log()


# -- retries after 502/503 ------------------------------------------------------------


def test_a_503_is_retried_on_another_target_for_get_but_not_for_post(
    origin_factory, sluice_factory, tmp_path
):
    a = debug_origin(origin_factory, tmp_path, "a")
    b = debug_origin(origin_factory, tmp_path, "b")
    port = free_port()
    s = sluice_factory(upstream_config(port, [a.address, b.address], retries=1))
    tag = uuid.uuid4().hex[:8]
    for i in range(3):
        r = requests.get(f"{s.url}/?status=503&get={tag}-{i}", timeout=10)
        assert r.status_code == 503  # the upstream's own, after the retry
        assert r.headers.get("X-Origin") in ("a", "b")
        na, nb = len(hits(a, f"get={tag}-{i}")), len(hits(b, f"get={tag}-{i}"))
        assert (na, nb) == (1, 1), f"GET {i}: a saw it {na}x, b {nb}x"
    for i, body in enumerate((b"some body", b"")):
        r = requests.post(f"{s.url}/?status=503&post={tag}-{i}", data=body, timeout=10)
        assert r.status_code == 503
        assert r.headers.get("X-Origin") in ("a", "b")
        na, nb = len(hits(a, f"post={tag}-{i}")), len(hits(b, f"post={tag}-{i}"))
        assert na + nb == 1, f"POST {i} ({len(body)}-byte body): a saw it {na}x, b {nb}x"


def test_a_5xx_from_the_only_target_reaches_the_client_as_it_is(sluice_factory, origin):
    s = sluice_factory(basic_config(free_port(), {"app": [origin.address]}))
    r = requests.get(s.url + "/?status=503&header=Retry-After:7", timeout=5)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "7"
    assert r.headers["X-Origin"] == "origin"


# -- the trial request after an ejection ----------------------------------------------


def test_an_ejected_target_gets_one_trial_request_after_eject_and_a_good_trial_restores_it(
    origin_factory, sluice_factory, tmp_path
):
    a = debug_origin(origin_factory, tmp_path, "a")
    b = debug_origin(origin_factory, tmp_path, "b")
    port = free_port()
    s = sluice_factory(
        upstream_config(port, [a.address, b.address], balance="hash",
                        hash_key="header:X-Key", retries=0,
                        passive={"failures": 2, "eject": "1s"})
    )
    # A key that hashes to b (keys are stable: see test_balancing).
    key_b = next(k for k in (f"k{i}" for i in range(200))
                 if requests.get(s.url + "/", headers={"X-Key": k}, timeout=5)
                 .headers.get("X-Origin") == "b")
    hdr = {"X-Key": key_b}
    # Two 503s from b eject it (retries: 0, so the client sees them).
    for _ in range(2):
        assert requests.get(f"{s.url}/?status=503", headers=hdr, timeout=5).status_code == 503
    t_ejected = time.monotonic()
    assert f"target {b.address} of upstream \"app\" ejected" in s.error_log()
    assert who(s.url, 10, hdr) == {"a": 10}, "an ejected target got requests"

    # Past the ejection (a timer in the gateway, not a server to wait for).
    time.sleep(max(0.0, t_ejected + 1.2 - time.monotonic()))
    tag = uuid.uuid4().hex[:8]
    trial = {}

    def send_trial():
        r = requests.get(f"{s.url}/?delay=1500&trial={tag}", headers=hdr, timeout=10)
        trial.update(status=r.status_code, origin=r.headers.get("X-Origin"))

    t = threading.Thread(target=send_trial)
    t.start()
    wait_for(lambda: hits(b, f"trial={tag}"), what="the trial at b")
    b_seen = len(b.request_log())
    during = who(s.url, 20, hdr) + who(s.url, 10, {"X-Key": "someone-else"})
    assert not trial, "the trial ended before the other requests: test too slow"
    t.join()
    assert during == {"a": 30}, f"while the trial was out: {during}"
    assert len(b.request_log()) == b_seen, "b got a request while its trial was out"
    assert trial == {"status": 200, "origin": "b"}
    assert log_count(s, re.escape(f"sending a trial request to ejected target {b.address}")) == 1
    # The trial succeeded: b takes its keys again.
    assert who(s.url, 10, hdr) == {"b": 10}


def test_a_trial_request_that_is_abandoned_does_not_keep_the_target_out_for_good(
    origin_factory, sluice_factory, tmp_path
):
    a = debug_origin(origin_factory, tmp_path, "a")
    b = debug_origin(origin_factory, tmp_path, "b")
    port = free_port()
    s = sluice_factory(
        upstream_config(port, [a.address, b.address], balance="hash",
                        hash_key="header:X-Key", retries=0, timeouts={"read": "1s"},
                        passive={"failures": 2, "eject": "1s"})
    )
    key_b = next(k for k in (f"k{i}" for i in range(200))
                 if requests.get(s.url + "/", headers={"X-Key": k}, timeout=5)
                 .headers.get("X-Origin") == "b")
    hdr = {"X-Key": key_b}
    for _ in range(2):
        assert requests.get(f"{s.url}/?status=503", headers=hdr, timeout=5).status_code == 503
    t_ejected = time.monotonic()
    assert f"target {b.address} of upstream \"app\" ejected" in s.error_log()
    time.sleep(max(0.0, t_ejected + 1.2 - time.monotonic()))  # the gateway's eject timer

    # The trial never gets an answer, and its client gives up (a reset).
    tag = uuid.uuid4().hex[:8]
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET /?hang=1&trial={tag} HTTP/1.1\r\nHost: x\r\nX-Key: {key_b}\r\n\r\n"
                 .encode())
    wait_for(lambda: hits(b, f"trial={tag}"), what="the trial at b")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()

    # Whatever became of that trial (abandoned, or failed by timeouts.read
    # and ejected again for 1 s), b must get another trial and come back.
    def b_answers():
        r = requests.get(s.url + "/", headers=hdr, timeout=5)
        return r.headers.get("X-Origin") == "b"

    wait_for(b_answers, timeout=6, interval=0.05, what="b back in rotation")


# -- retries after a reset -----------------------------------------------------------


def test_a_get_reset_before_the_response_is_tried_retries_plus_one_times_then_gets_502(
    origin_factory, sluice_factory, tmp_path
):
    origins = [debug_origin(origin_factory, tmp_path, n) for n in ("r1", "r2", "r3")]
    port = free_port()
    s = sluice_factory(upstream_config(port, [o.address for o in origins], retries=2))
    tag = uuid.uuid4().hex[:8]
    r = requests.get(f"{s.url}/?reset=1&cold={tag}", timeout=10)
    assert r.status_code == 502
    assert r.json()["error"] == "bad_gateway"
    seen = [len(hits(o, f"cold={tag}")) for o in origins]
    assert seen == [1, 1, 1], f"attempts per target on fresh connections: {seen}"


def warm_pools(url, sessions=4, each=10):
    """Leave several idle pooled connections to each target, as a steady
    load does."""
    threads = [threading.Thread(target=who, args=(url, each)) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_a_get_reset_on_a_pooled_connection_gets_one_free_retry_then_retries_plus_one_tries(
    origin_factory, sluice_factory, tmp_path
):
    # A reset on a pooled (kept-alive) connection before any response byte is
    # most often the upstream having closed an idle connection: like nginx,
    # the gateway retries once on a fresh connection to the same target
    # without counting it. Then `retries` applies as usual: at most
    # retries + 2 attempts in all, never a loop through the pool.
    origins = [debug_origin(origin_factory, tmp_path, n) for n in ("w1", "w2")]
    port = free_port()
    s = sluice_factory(upstream_config(port, [o.address for o in origins], retries=1))
    warm_pools(s.url)
    tag = uuid.uuid4().hex[:8]
    r = requests.get(f"{s.url}/?reset=1&warm={tag}", timeout=10)
    assert r.status_code == 502
    seen = [len(hits(o, f"warm={tag}")) for o in origins]
    assert sum(seen) == 3 and sorted(seen) == [1, 2], f"attempts per target (retries: 1): {seen}"


def test_a_post_reset_on_a_pooled_connection_is_not_replayed(
    origin_factory, sluice_factory, tmp_path
):
    origins = [debug_origin(origin_factory, tmp_path, n) for n in ("w1", "w2")]
    port = free_port()
    s = sluice_factory(upstream_config(port, [o.address for o in origins], retries=1))
    warm_pools(s.url)
    tag = uuid.uuid4().hex[:8]
    r = requests.post(f"{s.url}/?reset=1&post={tag}", timeout=10)
    assert r.status_code == 502
    seen = [len(hits(o, f"post={tag}")) for o in origins]
    assert sum(seen) == 1, f"a POST that was reset reached the targets {seen} times"
