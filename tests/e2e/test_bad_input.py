"""Malformed and ambiguous requests: every request-smuggling vector is refused
with a 400 JSON error, the connection is closed after the response, and the
origin never sees the request."""

import json
import socket
import time

import pytest
import requests

from conftest import RecordingUpstream, basic_config, free_port, wait_for

GOOD = b"GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n"


# -- helpers ---------------------------------------------------------------------


def exchange(port, data, timeout=3.0):
    """Send data on a fresh connection and read until the server closes.
    Returns (bytes received, whether the server closed within timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    chunks = []
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks), closed


def parse_responses(data):
    """Split raw bytes into [(status, {lower-name: value}, body)], framed by
    Content-Length; a response without one takes the rest."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {data!r}"
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0].startswith("HTTP/1."), f"not an HTTP response: {data!r}"
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            assert len(rest) >= n, f"body shorter than Content-Length {n}: {rest!r}"
            body, data = rest[:n], rest[n:]
        else:
            body, data = rest, b""
        out.append((status, headers, body))
    return out


def origin_requests(origin):
    """The origin's request count, not counting this /stats request itself."""
    return origin.stats()["requests"] - 1


def check_gateway_unharmed(sluice):
    r = requests.get(sluice.url + "/still-fine", headers={"Host": "localhost"}, timeout=5)
    assert r.status_code == 200, r.text
    assert r.text == "Hello, world!"


def assert_refused(sluice, origin, data, statuses=(400,), codes=("bad_request",)):
    """data gets exactly one error response with a JSON body, then the
    connection closes; the origin never sees a request."""
    port = sluice.listen_ports()[0]
    before = origin_requests(origin)
    got, closed = exchange(port, data)
    assert got, "no response at all"
    responses = parse_responses(got)
    assert len(responses) == 1, f"expected one response, got {got!r}"
    status, headers, body = responses[0]
    assert status in statuses, got
    assert headers.get("content-type", "").startswith("application/json"), got
    j = json.loads(body)
    assert j["error"] in codes, j
    assert isinstance(j.get("message"), str) and j["message"], j
    assert isinstance(j.get("request_id"), str) and j["request_id"], j
    assert closed, f"connection still open after the error response: {got!r}"
    seen = origin_requests(origin) - before - 1  # minus the first /stats request
    assert seen == 0, f"the origin saw {seen} request(s) it must not have"
    check_gateway_unharmed(sluice)
    return j


@pytest.fixture
def recorder():
    r = RecordingUpstream()
    yield r
    r.close()


@pytest.fixture
def gw(sluice_factory, origin):
    port = free_port()
    s = sluice_factory(basic_config(port, {"app": [origin.address]}))
    return s, origin


# -- framing: Content-Length and Transfer-Encoding -----------------------------------

FRAMING = {
    "cl_then_te": b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "te_then_cl": b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 6\r\n\r\n0\r\n\r\nG",
    "two_different_content_lengths": b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
    b"Content-Length: 6\r\n\r\nhello!",
    "content_length_list": b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "te_gzip": b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
    "te_chunked_then_gzip": b"POST / HTTP/1.1\r\nHost: localhost\r\n"
    b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te_xchunked": b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n"
    b"0\r\n\r\n",
    "te_chunked_in_two_headers": b"POST / HTTP/1.1\r\nHost: localhost\r\n"
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_empty": b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n",
    "te_chunked_in_http10": b"POST / HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
    b"\r\n5\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("data", FRAMING.values(), ids=FRAMING.keys())
def test_ambiguous_body_framing_is_refused_and_never_reaches_the_origin(gw, data):
    assert_refused(*gw, data)


CHUNKS = {
    "letters": b"zz\r\nhello\r\n0\r\n\r\n",
    "negative": b"-1\r\nhello\r\n0\r\n\r\n",
    "hex_prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "overflow": b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "data_longer_than_size": b"5\r\nhelloEXTRA\r\n0\r\n\r\n",
}


def test_a_request_with_a_bad_chunk_size_is_refused_and_never_reaches_the_origin(gw):
    # The whole request is in one packet, so the gateway can see it is bad
    # before it forwards anything.
    head = b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert_refused(*gw, head + CHUNKS["letters"])


@pytest.mark.parametrize("body", CHUNKS.values(), ids=CHUNKS.keys())
def test_a_bad_chunk_never_gives_the_upstream_a_complete_request(sluice_factory, recorder, body):
    """Weaker than the test above (which wants the origin to see nothing):
    a streaming gateway may have sent the head, but the upstream must never
    get the bad bytes nor an end of message, and its connection is closed."""
    port = free_port()
    sluice_factory(basic_config(port, {"app": [recorder.address]}))
    head = b"POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    got, closed = exchange(port, head + body + GOOD)
    [(status, _, rbody)] = parse_responses(got)
    assert status == 400 and json.loads(rbody)["error"] == "bad_request"
    assert closed
    wait_for(recorder.all_closed, timeout=5, what="upstream connections closed")
    for data in recorder.received():
        assert not data.endswith(b"0\r\n\r\n"), data
        assert b"EXTRA" not in data and b"/after" not in data, data


# -- header syntax -----------------------------------------------------------------

HEADERS = {
    "obs_fold_space": b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\r\n b\r\n\r\n",
    "obs_fold_tab": b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\r\n\tb\r\n\r\n",
    "space_before_colon_in_host": b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n",
    "space_before_colon_in_other": b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo : bar\r\n\r\n",
    "bare_cr_in_value": b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\rb\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\x00b\r\n\r\n",
    "nul_in_name": b"GET / HTTP/1.1\r\nHost: localhost\r\nX-F\x00oo: bar\r\n\r\n",
    "empty_name": b"GET / HTTP/1.1\r\nHost: localhost\r\n: x\r\n\r\n",
    "missing_host_in_http11": b"GET / HTTP/1.1\r\nX-Foo: bar\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
}


@pytest.mark.parametrize("data", HEADERS.values(), ids=HEADERS.keys())
def test_a_malformed_header_is_refused_and_never_reaches_the_origin(gw, data):
    assert_refused(*gw, data)


LINE_ENDINGS = {
    "all_bare_lf": b"GET / HTTP/1.1\nHost: localhost\nX-Foo: bar\n\n",
    "request_line_bare_lf": b"GET / HTTP/1.1\nHost: localhost\r\n\r\n",
    "blank_line_bare_lf": b"GET / HTTP/1.1\r\nHost: localhost\r\n\n",
    "header_line_bare_lf": b"GET / HTTP/1.1\r\nHost: localhost\nX-Foo: bar\r\n\r\n",
}


@pytest.mark.parametrize("data", LINE_ENDINGS.values(), ids=LINE_ENDINGS.keys())
def test_bare_lf_line_endings_are_refused_and_never_reach_the_origin(gw, data):
    assert_refused(*gw, data)


# -- the request line ----------------------------------------------------------------

REQUEST_LINES = {
    "unknown_method": b"FOO / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "lowercase_method": b"get / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "relative_target": b"GET a HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "space_in_target": b"GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "control_char_in_target": b"GET /a\x01b HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "nul_in_target": b"GET /a\x00b HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "fragment_in_target": b"GET /a#frag HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "double_space_after_method": b"GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "double_space_before_version": b"GET /  HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "rtsp_protocol": b"GET / RTSP/1.0\r\nHost: localhost\r\n\r\n",
}


@pytest.mark.parametrize("data", REQUEST_LINES.values(), ids=REQUEST_LINES.keys())
def test_a_malformed_request_line_is_refused_and_never_reaches_the_origin(gw, data):
    assert_refused(*gw, data)


VERSIONS = {
    "http_1_2": b"GET / HTTP/1.2\r\nHost: localhost\r\n\r\n",
    "http_2_0": b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n",
}


@pytest.mark.parametrize("data", VERSIONS.values(), ids=VERSIONS.keys())
def test_an_unsupported_http_version_is_refused_and_never_reaches_the_origin(gw, data):
    assert_refused(*gw, data, statuses=(400, 505),
                   codes=("bad_request", "http_version_not_supported"))


# -- pipelining and the gateway's health -------------------------------------------


def test_a_good_request_pipelined_after_a_bad_one_is_never_executed(gw):
    sluice, origin = gw
    smuggle = (b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert_refused(sluice, origin, smuggle + GOOD)
    assert_refused(sluice, origin, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo : bar\r\n\r\n" + GOOD)
    assert_refused(sluice, origin, b"GET / HTTP/1.1\nHost: localhost\n\n" + GOOD)


def test_a_good_request_on_a_fresh_connection_works_after_every_kind_of_bad_input(gw):
    sluice, origin = gw
    port = sluice.listen_ports()[0]
    vectors = [*FRAMING.values(), *HEADERS.values(), *LINE_ENDINGS.values(),
               *REQUEST_LINES.values(), *VERSIONS.values()]
    vectors += [b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + b
                for b in CHUNKS.values()]
    for data in vectors:
        got, closed = exchange(port, data)
        assert got.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 505 ")), (data, got)
        assert closed, data
    got, closed = exchange(port, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    [(status, _, body)] = parse_responses(got)
    assert status == 200 and body == b"Hello, world!"
    assert sluice.proc.poll() is None
