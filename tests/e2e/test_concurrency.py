"""The concurrency plugin: at most `max` requests of a route in flight per
instance, `queue` more waiting up to `queue_timeout`, then 503 Retry-After."""

import threading
import time

import requests

from conftest import basic_config, free_port, wait_for


def limited(port, origin, max_, queue=0, timeout="1s", workers=2):
    conf = basic_config(port, {"app": [origin.address]}, workers=workers)
    conf["routes"][0]["plugins"] = {
        "concurrency": {"max": max_, "queue": queue, "queue_timeout": timeout}}
    return conf


def fire(url, n, results, delay_ms):
    """n concurrent slow requests; results gets (status, seconds, headers)."""
    def one():
        t0 = time.monotonic()
        r = requests.get(f"{url}/?delay={delay_ms}", timeout=10)
        results.append((r.status_code, time.monotonic() - t0, r.headers, r.text))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.02)  # arrive in order, still all while the first are in flight
    return threads


def test_requests_over_max_and_queue_get_503_with_retry_after_at_once(sluice_factory, origin):
    port = free_port()
    s = sluice_factory(limited(port, origin, max_=2, queue=0))
    results = []
    for t in fire(s.url, 4, results, 800):
        t.join()
    codes = sorted(r[0] for r in results)
    assert codes == [200, 200, 503, 503]
    for status, seconds, headers, body in results:
        if status == 503:
            assert seconds < 0.5, "refused at once, not after the slow ones"
            assert headers["Retry-After"] == "1"
            assert '"error": "concurrency_limited"' in body


def test_queued_requests_get_the_next_free_slot_in_order(sluice_factory, origin):
    port = free_port()
    s = sluice_factory(limited(port, origin, max_=1, queue=2, timeout="5s"))
    results = []
    for t in fire(s.url, 3, results, 400):
        t.join()
    assert [r[0] for r in results] == [200, 200, 200]
    # One at a time: they finish about 0.4, 0.8 and 1.2 s after they started.
    times = sorted(r[1] for r in results)
    assert times[1] > 0.7 and times[2] > 1.1, times


def test_a_request_queued_too_long_gets_503(sluice_factory, origin):
    port = free_port()
    s = sluice_factory(limited(port, origin, max_=1, queue=5, timeout="300ms"))
    results = []
    for t in fire(s.url, 2, results, 1500):
        t.join()
    by = sorted(results, key=lambda r: r[1])
    assert by[0][0] == 503 and 0.25 < by[0][1] < 1.0, by[0][:2]
    assert by[1][0] == 200


def test_the_limit_holds_across_workers(sluice_factory, origin):
    port = free_port()
    s = sluice_factory(limited(port, origin, max_=3, queue=0, workers=2))
    results = []
    for t in fire(s.url, 8, results, 700):
        t.join()
    assert sum(1 for r in results if r[0] == 200) == 3


def test_a_queued_client_that_leaves_frees_its_place(sluice_factory, origin):
    import socket

    port = free_port()
    s = sluice_factory(limited(port, origin, max_=1, queue=1, timeout="5s"))
    results = []
    first = fire(s.url, 1, results, 600)
    time.sleep(0.1)
    # A raw client queues, then goes away.
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"GET /?delay=10 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    c.close()
    time.sleep(0.1)
    # Its place in the queue is free again: this one queues and succeeds.
    second = fire(s.url, 1, results, 10)
    for t in first + second:
        t.join()
    assert sorted(r[0] for r in results) == [200, 200]
    # And the slot the leaver would have had was passed on, not lost.
    r = requests.get(s.url + "/?delay=10", timeout=5)
    assert r.status_code == 200


def test_the_plugins_log_fields_reach_the_access_log(sluice_factory, origin):
    # The access log writes every field a plugin sets, not only the
    # contract's "ratelimit": here the concurrency plugin's outcome.
    port = free_port()
    s = sluice_factory(limited(port, origin, max_=1, queue=1, timeout="5s", workers=1))
    results = []
    for t in fire(s.url, 3, results, 400):
        t.join()
    assert sorted(r[0] for r in results) == [200, 200, 503]
    # A line is written after its response's last byte: wait for all three.
    wait_for(lambda: len(s.access_log()) == 3, timeout=5, what="three access log lines")
    outcomes = sorted(e.get("concurrency") or "-" for e in s.access_log())
    assert outcomes == ["-", "queued", "rejected"], s.access_log()
    assert all(e["ratelimit"] is None for e in s.access_log())  # the contract's field stays
