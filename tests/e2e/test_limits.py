"""Size limits, client timeouts and the connection limit."""

import json
import socket
import threading
import time

import pytest
import requests

from conftest import RecordingUpstream, basic_config, free_port, wait_for


# -- helpers (kept local: this file owns them) ---------------------------------------


def connect(port, timeout=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_until_closed(sock, timeout=5.0):
    """Read until EOF/reset or timeout; return (bytes, closed)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except ConnectionResetError:
            return b"".join(chunks), True
        if not b:
            return b"".join(chunks), True
        chunks.append(b)
    return b"".join(chunks), False


def read_response(sock, timeout=5.0):
    """Read one Content-Length framed response: (status, headers, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = sock.recv(65536)
        assert b, f"connection closed before a complete head: {buf!r}"
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        b = sock.recv(65536)
        assert b, f"connection closed inside the body ({len(rest)} of {n}): {rest!r}"
        rest += b
    assert len(rest) == n, f"more bytes than Content-Length {n}: {rest!r}"
    return status, headers, rest


def parse_one(data):
    """Parse raw bytes holding exactly one Content-Length framed response."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response head: {data!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    assert "content-length" in headers, data
    assert len(body) == int(headers["content-length"]), (
        f"body is {len(body)} bytes, Content-Length says {headers['content-length']}: {data!r}")
    return status, headers, body


def assert_json_error(headers, body, code=None):
    assert headers.get("content-type", "").startswith("application/json"), headers
    j = json.loads(body)
    assert isinstance(j.get("error"), str) and j["error"], j
    if code is not None:
        assert j["error"] == code, j
    assert isinstance(j.get("message"), str) and j["message"], j
    assert isinstance(j.get("request_id"), str) and j["request_id"], j
    return j


def origin_requests(origin):
    """The origin's request count, not counting this /stats request itself."""
    return origin.stats()["requests"] - 1


def get_ok(sock, path="/"):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    status, _, body = read_response(sock)
    assert status == 200, body
    return body


@pytest.fixture
def recorder():
    r = RecordingUpstream()
    yield r
    r.close()


def start(sluice_factory, upstream_address, **extra):
    port = free_port()
    return sluice_factory(basic_config(port, {"app": [upstream_address]}, **extra)), port


# -- sizes ---------------------------------------------------------------------------------


def test_a_head_over_max_header_bytes_gets_431_json_and_the_connection_closed(
        sluice_factory, origin):
    sluice, port = start(sluice_factory, origin.address, limits={"max_header_bytes": "4k"})
    before = origin_requests(origin)
    with connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        data, closed = read_until_closed(s)
    status, headers, body = parse_one(data)
    assert status == 431
    assert_json_error(headers, body)
    assert closed
    assert origin_requests(origin) - before == 1, "the origin saw the oversized request"
    # A head just under the limit still goes through.
    r = requests.get(sluice.url + "/", headers={"X-Big": "a" * 3000}, timeout=5)
    assert r.status_code == 200


def test_a_url_longer_than_max_header_bytes_gets_414_or_431_json_and_the_connection_closed(
        sluice_factory, origin):
    sluice, port = start(sluice_factory, origin.address, limits={"max_header_bytes": "4k"})
    before = origin_requests(origin)
    with connect(port) as s:
        s.sendall(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data, closed = read_until_closed(s)
    status, headers, body = parse_one(data)
    assert status in (414, 431)
    assert_json_error(headers, body)
    assert closed
    assert origin_requests(origin) - before == 1, "the origin saw the oversized request"


def test_a_content_length_over_max_body_bytes_gets_413_json_before_the_body_is_sent(
        sluice_factory, origin):
    sluice, port = start(sluice_factory, origin.address, limits={"max_body_bytes": "1k"})
    before = origin_requests(origin)
    with connect(port) as s:
        # Only the head: the answer must come without waiting for the body.
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000\r\n\r\n")
        data, closed = read_until_closed(s)
    status, headers, body = parse_one(data)
    assert status == 413
    assert_json_error(headers, body)
    assert closed, "the unread body cannot be followed by another request"
    assert origin_requests(origin) - before == 1, "the origin saw the oversized request"
    # A body within the limit still goes through.
    r = requests.post(sluice.url + "/sink", data=b"x" * 1000, timeout=5)
    assert r.status_code == 200 and r.json()["bytes"] == 1000


def test_a_chunked_body_growing_over_max_body_bytes_is_cut_before_the_upstream_has_it_all(
        sluice_factory, recorder):
    sluice, port = start(sluice_factory, recorder.address, limits={"max_body_bytes": "1k"})
    with connect(port) as s:
        s.sendall(b"POST /sink HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        # The upstream connection is open once the head has been forwarded.
        wait_for(lambda: any(recorder.received()), what="the forwarded head")
        try:
            for _ in range(8):
                s.sendall(b"200\r\n" + b"x" * 512 + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = read_until_closed(s)
    assert closed
    if data:  # the gateway may answer 413 (nothing else started the response)
        status, headers, body = parse_one(data)
        assert status == 413
        assert_json_error(headers, body)
    wait_for(recorder.all_closed, timeout=5, what="the upstream connection closed")
    [forwarded] = recorder.received()
    head, _, body = forwarded.partition(b"\r\n\r\n")
    assert not body.endswith(b"0\r\n\r\n"), "the upstream got a complete request"
    assert body.count(b"x") <= 1024, "more than max_body_bytes was forwarded"


# -- client timeouts ---------------------------------------------------------------------


def test_a_slowloris_client_gets_408_json_and_is_disconnected(sluice_factory, origin):
    sluice, port = start(sluice_factory, origin.address,
                         timeouts={"client_header": "1s", "client_body": "30s",
                                   "client_idle": "30s"})
    head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    s = connect(port)
    stop = threading.Event()

    def trickle():
        # The client's own pace, one byte every 300 ms; not a wait for the server.
        for i in range(len(head)):
            if stop.is_set():
                return
            try:
                s.send(head[i:i + 1])
            except OSError:
                return
            stop.wait(0.3)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        data, closed = read_until_closed(s, timeout=8)
    finally:
        stop.set()
        t.join()
        s.close()
    assert closed, f"still open, got {data!r}"
    status, headers, body = parse_one(data)
    assert status == 408
    assert_json_error(headers, body, "request_timeout")


def test_a_connection_that_sends_nothing_is_closed_after_client_header(sluice_factory, origin):
    sluice, port = start(sluice_factory, origin.address,
                         timeouts={"client_header": "1s", "client_idle": "30s"})
    with connect(port) as s:
        data, closed = read_until_closed(s, timeout=8)
    assert closed
    # Nothing was asked, so an answer is optional; if there is one, it is a 408.
    if data:
        status, headers, body = parse_one(data)
        assert status == 408
        assert_json_error(headers, body, "request_timeout")


def test_an_idle_keep_alive_connection_works_until_client_idle_then_is_closed(
        sluice_factory, origin):
    sluice, port = start(sluice_factory, origin.address,
                         timeouts={"client_header": "30s", "client_idle": "1s"})
    with connect(port) as s:
        assert get_ok(s) == b"Hello, world!"
        assert get_ok(s) == b"Hello, world!"  # still open and working between requests
        data, closed = read_until_closed(s, timeout=8)
    assert closed
    assert data == b"", f"an idle close sends nothing: {data!r}"


# -- max_connections ---------------------------------------------------------------------


def test_max_connections_refuses_a_fourth_connection_while_the_three_keep_working(
        sluice_factory, origin):
    sluice, port = start(sluice_factory, origin.address, limits={"max_connections": 3})
    conns = []
    try:
        # One after the other, so that each is surely accepted (it has had a
        # response) and the harness's readiness probe is surely gone.
        for _ in range(3):
            conns.append(connect(port))
            get_ok(conns[-1])
        a, b, c = conns
        b.sendall(b"GET /mid HTTP/1.1\r\nHost: local")  # b is mid-request

        d = connect(port)
        try:
            d.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        refused, closed = read_until_closed(d)
        d.close()
        assert closed, "the fourth connection was kept open"

        get_ok(a)
        b.sendall(b"host\r\n\r\n")
        status, _, _ = read_response(b)
        assert status == 200
        get_ok(c)

        a.close()

        def new_connection_served():
            try:
                with connect(port) as e:
                    e.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    got, _ = read_until_closed(e)
                    return got.startswith(b"HTTP/1.1 200 ")
            except OSError:
                return False

        wait_for(new_connection_served, timeout=5, what="a new connection to be served")

        # Checked last, so that a malformed refusal does not hide the rest.
        if refused:
            status, headers, body = parse_one(refused)
            assert status == 503
            assert_json_error(headers, body, "too_many_connections")
    finally:
        for s in conns:
            s.close()
