"""Upstream failures, graceful stop, and the access log."""

import json
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import basic_config, free_port, is_closed, wait_for


# -- helpers (kept local: this file owns them) ---------------------------------------


def two_route_config(port, bad_address, good_address, **upstream_extra):
    """/bad/... goes to the upstream "bad" (only bad_address), anything else to "app"."""
    conf = basic_config(
        port, {"bad": [bad_address], "app": [good_address]},
        routes=[{"name": "bad", "match": {"path": "/bad"}, "upstream": "bad"},
                {"name": "app", "match": {"path": "/"}, "upstream": "app"}])
    conf["upstreams"]["bad"].update(upstream_extra)
    return conf


def error_line_for(sluice, request_id):
    """The error-log line that names this request id."""
    def find():
        for line in sluice.error_log().splitlines():
            if request_id in line:
                return line
        return None
    return wait_for(find, timeout=5, what=f"an error-log line with id {request_id}")


def assert_error_log_names_the_request(sluice, request_id, method, path):
    line = error_line_for(sluice, request_id)
    assert ", while " in line, f"does not say what was happening: {line}"
    assert "client: 127.0.0.1" in line, f"does not name the client: {line}"
    assert f'"{method} {path}' in line, f"does not name the request line: {line}"
    assert f"id: {request_id}" in line, line
    return line


def assert_gateway_error(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    j = r.json()
    assert j["error"] == code, j
    assert isinstance(j["message"], str) and j["message"], j
    assert j["request_id"] and j["request_id"] == r.headers.get("X-Request-Id", j["request_id"])
    return j


def still_serving(sluice):
    r = requests.get(sluice.url + "/ok", timeout=5)
    assert r.status_code == 200 and r.text == "Hello, world!"


def origin_requests(origin):
    """The origin's request count, not counting this /stats request itself."""
    return origin.stats()["requests"] - 1


def refuses_connections(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        # A reset: this probe was in the backlog when the listener closed.
        return True


# -- upstream failures -------------------------------------------------------------------


def test_a_target_that_refuses_connections_gives_502_json_and_a_logged_error(
        sluice_factory, origin):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    port = free_port()
    sluice = sluice_factory(two_route_config(port, dead, origin.address))
    r = requests.get(sluice.url + "/bad/refused", timeout=10)
    j = assert_gateway_error(r, 502, "bad_gateway")
    assert_error_log_names_the_request(sluice, j["request_id"], "GET", "/bad/refused")
    still_serving(sluice)


def test_an_origin_that_resets_without_answering_gives_502_json_and_a_logged_error(
        sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(two_route_config(port, origin.address, origin.address))
    r = requests.get(sluice.url + "/bad/reset?reset=1", timeout=10)
    j = assert_gateway_error(r, 502, "bad_gateway")
    assert_error_log_names_the_request(sluice, j["request_id"], "GET", "/bad/reset")
    still_serving(sluice)


def test_an_origin_that_never_answers_gives_504_json_after_the_read_timeout(
        sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(two_route_config(port, origin.address, origin.address,
                                             timeouts={"read": "1s"}, retries=0))
    r = requests.get(sluice.url + "/bad/hang?hang=1", timeout=15)
    j = assert_gateway_error(r, 504, "upstream_timeout")
    assert_error_log_names_the_request(sluice, j["request_id"], "GET", "/bad/hang")
    still_serving(sluice)


# -- graceful stop ---------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0(
        sluice_factory, origin, sig):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]},
                                         shutdown_timeout="30s"))
    before = origin_requests(origin)
    result = {}

    def slow():
        try:
            result["r"] = requests.get(sluice.url + "/slow?delay=1500", timeout=15)
        except Exception as e:  # reported below
            result["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    # The origin has the request: it is in flight at the gateway.
    wait_for(lambda: origin_requests(origin) - before >= 2, what="the slow request at the origin")
    sluice.proc.send_signal(sig)
    wait_for(lambda: refuses_connections(port), timeout=5, what="the listener to close")
    assert t.is_alive(), "the slow request ended before the listener closed"
    t.join(15)
    assert "e" not in result, result.get("e")
    assert result["r"].status_code == 200
    assert result["r"].text == "Hello, world!"
    assert sluice.proc.wait(15) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_closes_a_hanging_request_after_shutdown_timeout_and_exits_0(
        sluice_factory, origin, sig):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]},
                                         shutdown_timeout="1s"))
    before = origin_requests(origin)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET /hang?hang=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wait_for(lambda: origin_requests(origin) - before >= 2,
                 what="the hanging request at the origin")
        sluice.proc.send_signal(sig)
        try:
            code = sluice.proc.wait(8)
        except subprocess.TimeoutExpired:
            pytest.fail("sluice did not exit within a few seconds of shutdown_timeout: 1s")
        assert code == 0
        assert is_closed(s, timeout=3), "the hanging client connection was left open"
    finally:
        s.close()


# -- the access log ----------------------------------------------------------------------

FIELDS = ["ts", "request_id", "client", "method", "path", "status", "bytes_in", "bytes_out",
          "duration_ms", "route", "upstream", "target", "upstream_ms", "ratelimit"]


def access_entry(sluice, request_id):
    def find():
        for e in sluice.access_log():  # every line must parse as JSON
            if e.get("request_id") == request_id:
                return e
        return None
    return wait_for(find, timeout=5, what=f"an access-log line for {request_id}")


def assert_common_fields(e, method, path, status, sent, received):
    missing = [f for f in FIELDS if f not in e]
    assert not missing, f"missing {missing} in {e}"
    assert isinstance(e["ts"], str) and e["ts"]
    assert e["client"] == "127.0.0.1"
    assert e["method"] == method
    assert e["path"] == path
    assert e["status"] == status
    assert e["bytes_in"] == len(sent), e
    assert e["bytes_out"] == len(received), f"the client received {len(received)} bytes: {e}"
    assert isinstance(e["duration_ms"], (int, float)) and e["duration_ms"] >= 0


def exchange(port, data):
    """Send one request on its own connection; everything received until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                return got
            got += b


def response_json(data):
    return json.loads(data.partition(b"\r\n\r\n")[2])


def response_header(data, name):
    for line in data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def test_the_access_log_has_a_json_line_with_every_field_for_a_proxied_request(
        sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]}))
    sent = b"GET /hello?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    got = exchange(port, sent)
    assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"Hello, world!"), got
    e = access_entry(sluice, response_header(got, "X-Request-Id"))
    assert_common_fields(e, "GET", "/hello", 200, sent, got)
    assert e["route"] == "all"
    assert e["upstream"] == "app"
    assert e["target"] == origin.address
    assert isinstance(e["upstream_ms"], (int, float)) and e["upstream_ms"] >= 0


def test_the_access_log_has_a_json_line_with_every_field_for_a_404(sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(basic_config(
        port, {"app": [origin.address]},
        routes=[{"name": "api", "match": {"path": "/api"}, "upstream": "app"}]))
    sent = b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    got = exchange(port, sent)
    assert got.startswith(b"HTTP/1.1 404 "), got
    j = response_json(got)
    assert j["error"] == "no_route"
    e = access_entry(sluice, j["request_id"])
    assert_common_fields(e, "GET", "/nowhere", 404, sent, got)
    assert e["route"] is None and e["upstream"] is None and e["target"] is None
    assert e["upstream_ms"] is None


def test_the_access_log_has_a_json_line_with_every_field_for_a_400(sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]}))
    sent = b"GET /bad HTTP/1.1\r\nX-Foo: bar\r\n\r\n"  # no Host
    got = exchange(port, sent)
    assert got.startswith(b"HTTP/1.1 400 "), got
    j = response_json(got)
    assert j["error"] == "bad_request"
    e = access_entry(sluice, j["request_id"])
    assert_common_fields(e, "GET", "/bad", 400, sent, got)
    assert e["upstream_ms"] is None and e["target"] is None


def test_log_files_swapped_by_reloads_under_load_lose_no_line_and_leak_into_no_socket(
        sluice_factory, origin, tmp_path):
    access = tmp_path / "access.log"
    conf = basic_config(free_port(), {"app": [origin.address]},
                        log={"level": "info", "access": str(access)})
    s = sluice_factory(conf)
    stop = threading.Event()

    def reloader():
        while not stop.is_set():
            s.proc.send_signal(signal.SIGHUP)
            time.sleep(0.005)

    t = threading.Thread(target=reloader)
    t.start()
    bad = []
    try:
        for i in range(300):
            r = requests.get(f"{s.url}/?n={i}", headers={"Connection": "close"}, timeout=5)
            if r.status_code != 200 or r.text != "Hello, world!":
                bad.append((i, r.status_code, r.text[:80]))
    finally:
        stop.set()
        t.join()
    assert bad == []
    lines = wait_for(lambda: (lambda l: l if len(l) >= 300 else None)(
        access.read_text().splitlines()), what="every access log line")
    assert len(lines) == 300
    assert all(l.startswith('{"ts": ') and l.endswith("}") for l in lines)
