"""What the gateway makes of an upstream's response, byte for byte: a body
delimited by the close, reason phrases, malformed and ambiguous heads (a
502) and folded header lines, transfer codings it cannot pass on are
refused, interim (1xx) responses reach HTTP/1.1 clients, and the response
carries the gateway in Via.

Every upstream here is a raw socket that sends exact bytes, so a test says
precisely what the upstream did."""

import gzip
import json
import socket
import struct
import threading
import time

import pytest
import requests

from conftest import (RawClient, ScriptedUpstream, basic_config, check_config, free_port,
                      raw_request, upstream_config, wait_for)


def answering(*parts, then=None):
    """An answer that reads each request on a connection and sends parts
    (bytes, or an Event to wait for between sends), then calls then(up, c)."""
    def answer(up, c):
        while up.read_request(c) is not None:
            for part in parts:
                if isinstance(part, threading.Event):
                    part.wait(5)
                else:
                    c.sendall(part)
            if then is not None:
                then(up, c)
                return
    return answer


@pytest.fixture
def raw_upstream():
    made = []

    def make(answer):
        up = ScriptedUpstream(answer)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


def read_head(rc):
    """The next response head from a RawClient: (status, [(name, value)], raw)."""
    raw = rc.until(b"\r\n\r\n")
    lines = raw[:-4].split(b"\r\n")
    fields = [tuple(x.strip() for x in l.split(b":", 1)) for l in lines[1:]]
    return int(lines[0].split(b" ")[1]), fields, raw


def field(fields, name):
    return [v for n, v in fields if n.lower() == name.lower()]


def read_body(rc, fields):
    """The body of a response whose head was fields (Content-Length or chunked)."""
    if field(fields, b"Content-Length"):
        return rc.exact(int(field(fields, b"Content-Length")[0]))
    assert field(fields, b"Transfer-Encoding") == [b"chunked"], fields
    body = b""
    while True:
        size = int(rc.until(b"\r\n").split(b";")[0], 16)
        if size == 0:
            rc.until(b"\r\n")  # no trailers: the blank line
            return body
        body += rc.exact(size)
        assert rc.exact(2) == b"\r\n"


def gateway_for(sluice_factory, up, **extra):
    return sluice_factory(basic_config(free_port(), {"app": [up.address]}, **extra))


GET_CLOSE = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


# -- the close, reason phrases, malformed and folded heads -----------------------------


def test_a_response_delimited_by_the_upstream_closing_reaches_the_client_whole(sluice_factory):
    def close_delimited(up, c):
        up.seen.append(up.read_head(c))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello until close")

    up = ScriptedUpstream(close_delimited)
    try:
        s = sluice_factory(basic_config(free_port(), {"app": [up.address]}))
        r = requests.get(s.url + "/", timeout=5)
        assert r.status_code == 200 and r.text == "hello until close"
        assert r.headers["Transfer-Encoding"] == "chunked"
        # An HTTP/1.0 client gets it delimited by the close instead.
        port = s.listen_ports()[0]
        raw = raw_request(port, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"\r\n\r\nhello until close")
        assert "before the response was complete" not in s.error_log()
        # The line of the second request may follow its response's last byte.
        wait_for(lambda: len(s.access_log()) == 2, timeout=2, what="two access log lines")
        assert [l["status"] for l in s.access_log()] == [200, 200]
    finally:
        up.close()


def test_an_upstream_reason_phrase_is_passed_on_unless_it_holds_control_characters(
        sluice_factory):
    reasons = {"/custom": b"Fine Thanks", "/nul": b"OK\x00evil", "/bell": b"O\x07K",
               "/del": b"OK\x7f"}

    def answer(up, c):
        head = up.read_head(c)
        path = head.split(b" ")[1].decode()
        c.sendall(b"HTTP/1.1 200 " + reasons[path] + b"\r\nContent-Length: 2\r\n"
                  b"Connection: close\r\n\r\nhi")

    up = ScriptedUpstream(answer)
    try:
        s = sluice_factory(basic_config(free_port(), {"app": [up.address]}))
        port = s.listen_ports()[0]
        lines = {}
        for path in reasons:
            raw = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close"
                                    f"\r\n\r\n".encode())
            lines[path] = raw.split(b"\r\n", 1)[0]
            assert raw.endswith(b"\r\n\r\nhi"), raw
        assert lines == {"/custom": b"HTTP/1.1 200 Fine Thanks", "/nul": b"HTTP/1.1 200 OK",
                         "/bell": b"HTTP/1.1 200 OK", "/del": b"HTTP/1.1 200 OK"}
    finally:
        up.close()


BAD_RESPONSES = {
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n",
    "two_content_lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!",
    "content_length_list": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nhi!",
    "negative_content_length": b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nhi",
    "te_gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nhi",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 2\r\n\r\nhi",
    "nul_in_value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nhi",
    "bare_cr": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nhi",
    "bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
    "not_http": b"hi there",
    "http_2_0": b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    "status_out_of_range": b"HTTP/1.1 700 Odd\r\nContent-Length: 2\r\n\r\nhi",
}


def through_gateway(sluice_factory, response):
    """One GET through a gateway whose only upstream answers `response`
    (raw bytes) and holds the connection a moment: (gateway, what the
    client got)."""
    def answer(up, c):
        up.read_head(c)
        c.sendall(response)
        time.sleep(0.3)

    up = ScriptedUpstream(answer)
    try:
        s = sluice_factory(basic_config(free_port(), {"app": [up.address]}))
        return s, raw_request(s.listen_ports()[0],
                              b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        up.close()


@pytest.mark.parametrize("name", sorted(BAD_RESPONSES))
def test_a_malformed_or_ambiguous_upstream_response_becomes_a_502_and_is_logged(
        sluice_factory, name):
    s, raw = through_gateway(sluice_factory, BAD_RESPONSES[name])
    assert raw.startswith(b"HTTP/1.1 502 "), raw
    # The gateway's own JSON, and nothing of the upstream's bytes.
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"] == "bad_gateway", raw
    wait_for(lambda: "upstream sent an invalid response" in s.error_log(),
             what="the error log line")


def test_a_folded_upstream_header_line_reaches_the_client_unfolded(sluice_factory):
    """RFC 9112 5.2: a proxy replaces a response's obs-fold with spaces (or
    refuses it with 502); it never passes the fold on."""
    _, raw = through_gateway(
        sluice_factory, b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nhi")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"hi", raw
    fields = head.split(b"\r\n")[1:]
    assert all(not f[:1].isspace() for f in fields), fields
    assert [f for f in fields if f.startswith(b"X-A:")] in ([b"X-A: a b"], [b"X-A: a  b"]), fields


# -- transfer codings other than chunked ------------------------------------------------------

def chunked(data, size=7):
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
                    for i in range(0, len(data), size)) + b"0\r\n\r\n"


GZIPPED = gzip.compress(b"hello, compressed world")


def assert_refused_as_bad_gateway(s, up, raw, what):
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 "), raw
    assert b"\x1f\x8b" not in raw  # no gzip byte of the upstream's reached the client
    answer = json.loads(body)
    assert answer["error"] == "bad_gateway"
    assert "sent an invalid response" in answer["message"], answer  # not "could not be reached"
    wait_for(lambda: what in s.error_log(), what=f"the error line saying {what!r}")
    # The connection that carried it was closed, never pooled.
    wait_for(lambda: up.closed_by_gateway, what="the upstream's answer to end")
    assert up.closed_by_gateway == [True]


def test_a_gzip_chunked_response_is_a_502_and_the_client_never_sees_the_gzip_bytes(
        sluice_factory, raw_upstream):
    up = raw_upstream(answering(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(GZIPPED),
                                then=ScriptedUpstream.wait_for_gateway_close))
    s = gateway_for(sluice_factory, up)
    raw = raw_request(s.listen_ports()[0], GET_CLOSE)
    assert_refused_as_bad_gateway(s, up, raw,
                                  "Transfer-Encoding: gzip, chunked; only chunked is accepted")
    assert up.connections == 1  # an invalid answer is not retried


def test_a_gzip_response_delimited_by_the_close_is_a_502(sluice_factory, raw_upstream):
    def answer(up, c):
        up.read_request(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + GZIPPED)
        c.shutdown(socket.SHUT_WR)  # the close delimits the body
        up.wait_for_gateway_close(c)

    up = raw_upstream(answer)
    s = gateway_for(sluice_factory, up)
    raw = raw_request(s.listen_ports()[0], GET_CLOSE)
    assert_refused_as_bad_gateway(s, up, raw, "Transfer-Encoding: gzip; only chunked is accepted")


@pytest.mark.parametrize("te", [
    b"Transfer-Encoding: identity\r\n",
    b"Transfer-Encoding: chunked, chunked\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: GZIP , Chunked\r\n",
    b"Transfer-Encoding: chunked;q=1\r\n",
], ids=["identity", "chunked_twice", "two_lines", "gzip_any_case", "chunked_with_params"])
def test_any_transfer_encoding_but_exactly_chunked_is_a_502(sluice_factory, raw_upstream, te):
    up = raw_upstream(answering(b"HTTP/1.1 200 OK\r\n" + te + b"\r\n" + chunked(b"plain"),
                                then=ScriptedUpstream.wait_for_gateway_close))
    s = gateway_for(sluice_factory, up)
    raw = raw_request(s.listen_ports()[0], GET_CLOSE)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 ") and json.loads(body)["error"] == "bad_gateway", raw
    wait_for(lambda: "upstream sent an invalid response" in s.error_log(), what="the error line")
    wait_for(lambda: up.closed_by_gateway, what="the upstream's answer to end")
    assert up.closed_by_gateway == [True]


@pytest.mark.parametrize("te", [b"chunked", b"Chunked", b"CHUNKED  "])
def test_chunked_in_any_case_and_with_trailing_spaces_is_accepted(sluice_factory, raw_upstream,
                                                                  te):
    up = raw_upstream(answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + te + b"\r\n\r\n"
                                + chunked(b"all of the body")))
    s = gateway_for(sluice_factory, up)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(GET_CLOSE)
        status, fields, _ = read_head(rc)
        assert status == 200 and read_body(rc, fields) == b"all of the body"


# -- interim (1xx) responses -------------------------------------------------------------------

EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
OK_HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"


def test_a_103_reaches_an_http11_client_with_its_link_before_the_final_response(
        sluice_factory, raw_upstream):
    # The upstream holds the final response back until the client has the 103:
    # early hints are only worth something early.
    got_hints = threading.Event()
    up = raw_upstream(answering(EARLY_HINTS, got_hints, OK_HELLO))
    s = gateway_for(sluice_factory, up)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
        status, fields, raw = read_head(rc)
        assert raw.startswith(b"HTTP/1.1 103 Early Hints\r\n"), raw
        assert field(fields, b"Link") == [b"</style.css>; rel=preload"]
        # An interim response has no body and no framing of its own.
        assert not field(fields, b"Content-Length") and not field(fields, b"Transfer-Encoding")
        got_hints.set()
        status, fields, _ = read_head(rc)
        assert status == 200 and read_body(rc, fields) == b"hello"
        # The framing held: the connection carries the next request.
        rc.send(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(rc)[0] == 103
        status, fields, _ = read_head(rc)
        assert status == 200 and read_body(rc, fields) == b"hello"
    # The access log saw the final responses only.
    wait_for(lambda: len(s.access_log()) == 2, what="two access log lines")
    assert [l["status"] for l in s.access_log()] == [200, 200]


def test_an_http10_client_gets_only_the_final_response(sluice_factory, raw_upstream):
    up = raw_upstream(answering(EARLY_HINTS, OK_HELLO))
    s = gateway_for(sluice_factory, up)
    raw = raw_request(s.listen_ports()[0], b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw
    assert b"103" not in raw and b"Link:" not in raw
    assert raw.endswith(b"\r\n\r\nhello")


def test_two_interim_responses_in_a_row_both_reach_the_client_in_order(sluice_factory,
                                                                        raw_upstream):
    up = raw_upstream(answering(
        b"HTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n"
        b"Link: </b.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"the final body")))
    s = gateway_for(sluice_factory, up)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(GET_CLOSE)
        assert read_head(rc)[2].startswith(b"HTTP/1.1 102 Processing\r\n")
        status, fields, _ = read_head(rc)
        assert status == 103
        assert field(fields, b"Link") == [b"</a.js>; rel=preload", b"</b.css>; rel=preload"]
        status, fields, _ = read_head(rc)
        assert status == 200 and read_body(rc, fields) == b"the final body"


def test_an_interim_response_loses_its_hop_by_hop_headers(sluice_factory, raw_upstream):
    up = raw_upstream(answering(
        b"HTTP/1.1 103 Early Hints\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
        b"Content-Length: 0\r\nLink: </x.css>; rel=preload\r\n\r\n", OK_HELLO))
    s = gateway_for(sluice_factory, up)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(GET_CLOSE)
        status, fields, _ = read_head(rc)
        assert status == 103
        names = sorted(n.lower() for n, _ in fields)
        assert names == [b"link", b"via"], fields
        status, fields, _ = read_head(rc)
        assert status == 200 and read_body(rc, fields) == b"hello"


def test_a_client_that_expects_100_continue_sees_exactly_one(sluice_factory, raw_upstream):
    # The gateway answers the client's Expect itself; the upstream's own 100
    # Continue (it saw no Expect, and sends one anyway) is not a second one.
    def answer(up, c):
        head, body = up.read_request(c)
        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    up = raw_upstream(answer)
    s = gateway_for(sluice_factory, up)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: 5\r\n\r\n")
        assert read_head(rc)[2] == b"HTTP/1.1 100 Continue\r\n\r\n"
        rc.send(b"hello")
        status, fields, _ = read_head(rc)
        assert status == 200 and read_body(rc, fields) == b"hello"
    assert b"expect" not in up.requests[0].lower()


def test_an_unasked_for_100_continue_is_passed_on(sluice_factory, raw_upstream):
    up = raw_upstream(answering(b"HTTP/1.1 100 Continue\r\n\r\n", OK_HELLO))
    s = gateway_for(sluice_factory, up)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(GET_CLOSE)
        assert read_head(rc)[0] == 100
        status, fields, _ = read_head(rc)
        assert status == 200 and read_body(rc, fields) == b"hello"


def test_an_upstream_that_resets_after_a_103_gets_the_client_cut_off_not_a_second_status(
        sluice_factory, raw_upstream):
    got_hints = threading.Event()

    def reset(up, c):
        got_hints.wait(5)  # the RST must not overtake the 103
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    a = raw_upstream(answering(EARLY_HINTS, then=reset))
    b = raw_upstream(answering(EARLY_HINTS, then=reset))
    s = sluice_factory(upstream_config(free_port(), [a.address, b.address], retries=2))
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(rc)[0] == 103
        got_hints.set()
        rest = b""
        try:
            while True:
                more = rc.some()
                if not more:
                    break
                rest += more
        except ConnectionResetError:
            pass
    # The client has bytes of this response: no retry, no 502 after them.
    assert rest == b""
    assert a.connections + b.connections == 1
    wait_for(lambda: "after an interim response" in s.error_log(), what="the error line")


def test_a_503_after_a_103_is_passed_on_instead_of_retried(sluice_factory, raw_upstream):
    unavailable = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
    a = raw_upstream(answering(EARLY_HINTS, unavailable))
    b = raw_upstream(answering(EARLY_HINTS, unavailable))
    s = sluice_factory(upstream_config(free_port(), [a.address, b.address], retries=2))
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(GET_CLOSE)
        assert read_head(rc)[0] == 103
        status, fields, _ = read_head(rc)
        assert status == 503 and read_body(rc, fields) == b"busy"
    assert a.connections + b.connections == 1


# -- Via ------------------------------------------------------------------------------------

def final_fields(sluice_factory, up, request=GET_CLOSE, **extra):
    s = gateway_for(sluice_factory, up, **extra)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(request)
        status, fields, _ = read_head(rc)
        assert status == 200
        assert read_body(rc, fields) == b"hello"
        return fields


def test_a_proxied_response_carries_the_gateway_in_via(sluice_factory, raw_upstream):
    up = raw_upstream(answering(OK_HELLO))
    assert field(final_fields(sluice_factory, up), b"Via") == [b"1.1 sluice"]


def test_the_gateway_is_appended_to_the_upstreams_own_via_lines_in_order(sluice_factory,
                                                                        raw_upstream):
    up = raw_upstream(answering(b"HTTP/1.1 200 OK\r\nVia: 1.1 backend\r\nContent-Length: 5\r\n"
                                b"via: 1.0 cache, 1.1 inner\r\n\r\nhello"))
    assert field(final_fields(sluice_factory, up), b"Via") == [
        b"1.1 backend, 1.0 cache, 1.1 inner, 1.1 sluice"]


def test_via_names_the_protocol_version_the_upstream_answered_with(sluice_factory,
                                                                   raw_upstream):
    up = raw_upstream(answering(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
    assert field(final_fields(sluice_factory, up), b"Via") == [b"1.0 sluice"]


def test_with_via_off_the_upstreams_via_passes_untouched_and_none_is_added(sluice_factory,
                                                                          raw_upstream):
    def answer(up, c):
        up.read_request(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nVia: 1.1 backend\r\nContent-Length: 5\r\n\r\nhello")
        up.read_request(c)
        c.sendall(OK_HELLO)

    up = raw_upstream(answer)
    s = gateway_for(sluice_factory, up, via="off")
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, fields, _ = read_head(rc)
        assert field(fields, b"Via") == [b"1.1 backend"]
        read_body(rc, fields)
        rc.send(GET_CLOSE)
        status, fields, _ = read_head(rc)
        assert field(fields, b"Via") == []
    assert b"via" not in up.requests[0].lower()  # nor on the request side


def test_a_custom_via_pseudonym_is_used(sluice_factory, raw_upstream):
    up = raw_upstream(answering(OK_HELLO))
    assert field(final_fields(sluice_factory, up, via="edge-1"), b"Via") == [b"1.1 edge-1"]


def test_a_forwarded_interim_response_carries_via_too(sluice_factory, raw_upstream):
    up = raw_upstream(answering(b"HTTP/1.1 103 Early Hints\r\nVia: 1.1 backend\r\n"
                                b"Link: </s.css>; rel=preload\r\n\r\n", OK_HELLO))
    s = gateway_for(sluice_factory, up)
    with RawClient(s.listen_ports()[0]) as rc:
        rc.send(GET_CLOSE)
        status, fields, _ = read_head(rc)
        assert status == 103 and field(fields, b"Via") == [b"1.1 backend, 1.1 sluice"]
        status, fields, _ = read_head(rc)
        assert status == 200 and field(fields, b"Via") == [b"1.1 sluice"]


def test_a_response_the_gateway_makes_itself_carries_no_via(sluice_factory):
    port = free_port()
    conf = basic_config(port, {"app": ["127.0.0.1:1"]},
                        routes=[{"name": "api", "match": {"path": "/api"}, "upstream": "app"}])
    sluice_factory(conf)
    for path, status in ((b"/elsewhere", b"404"), (b"/api", b"502")):
        raw = raw_request(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close"
                                                 b"\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 " + status), raw
        assert b"\r\nvia:" not in raw.split(b"\r\n\r\n")[0].lower(), raw


@pytest.mark.parametrize("via", ["off", "edge-1"])
def test_the_config_check_accepts_via(tmp_path, via):
    path = tmp_path / "sluice.yaml"
    path.write_text(f"listen:\n  - address: 127.0.0.1:{free_port()}\n"
                    f"upstreams:\n  app:\n    targets:\n      - address: 127.0.0.1:1\n"
                    f"routes:\n  - name: all\n    match: {{path: /}}\n    upstream: app\n"
                    f"via: {via}\n")
    code, out, err = check_config(path)
    assert code == 0, out + err
