"""The proxy core end to end: keep-alive reuse, pipelining, bodiless
responses, header rewriting, request ids and the access log, Expect,
WebSocket tunnels and a declined upgrade, retries and weighted round
robin."""

import base64
import collections
import hashlib
import json
import os
import re
import socket
import time

import pytest
import requests

from conftest import RawClient, basic_config, free_port, raw_request, wait_for

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PATTERN = bytes(range(ord("a"), ord("z") + 1))


def patterned(n, start=0):
    """The origin's generated body: byte i is 'a' + i % 26."""
    reps = (start % 26 + n) // 26 + 1
    return (PATTERN * reps)[start % 26 : start % 26 + n]


# -- a raw HTTP/1.x client ----------------------------------------------------


class Resp:
    def __init__(self, version, status, reason, headers, body, trailers=None, chunked=False):
        self.version, self.status, self.reason = version, status, reason
        self.headers, self.body = headers, body
        self.trailers = trailers or []
        self.chunked = chunked

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def get(self, name):
        vals = self.all(name)
        assert len(vals) <= 1, f"{name} appears {len(vals)} times: {vals}"
        return vals[0] if vals else None


class Raw(RawClient):
    """One client connection spoken to byte by byte."""

    def rest(self):
        """Everything until the peer closes."""
        while True:
            try:
                self.fill()
            except (EOFError, ConnectionResetError):
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def head(self):
        raw = self.until(b"\r\n\r\n").decode("latin-1")
        lines = raw[:-4].split("\r\n")
        m = re.match(r"^(HTTP/1\.[01]) (\d{3})(?: (.*))?$", lines[0])
        assert m, f"bad status line {lines[0]!r} (head {raw!r})"
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep, f"bad header line {line!r}"
            headers.append((name, value.strip()))
        return m.group(1), int(m.group(2)), m.group(3) or "", headers

    def response(self, method="GET"):
        version, status, reason, headers = self.head()
        r = Resp(version, status, reason, headers, b"")
        te = r.get("Transfer-Encoding")
        cl = r.get("Content-Length")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return r
        if te is not None:
            assert te.lower() == "chunked", te
            r.chunked = True
            body = bytearray()
            while True:
                size = int(self.until(b"\r\n")[:-2].split(b";")[0], 16)
                if size == 0:
                    break
                body += self.exact(size)
                assert self.exact(2) == b"\r\n"
            while True:
                line = self.until(b"\r\n")[:-2].decode("latin-1")
                if not line:
                    break
                n, _, v = line.partition(":")
                r.trailers.append((n, v.strip()))
            r.body = bytes(body)
        elif cl is not None:
            r.body = self.exact(int(cl))
        else:
            r.body = self.rest()
        return r


def req(method, path, headers=(), body=b"", host="gw.test"):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{n}: {v}" for n, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def seen(headers_json, name):
    """Values of `name` in an origin /headers answer (case-insensitive)."""
    return [v for n, v in headers_json["headers"] if n.lower() == name.lower()]


def log_line(sluice, request_id):
    lines = wait_for(
        lambda: [l for l in sluice.access_log() if l.get("request_id") == request_id],
        what=f"access log line for {request_id}",
    )
    assert len(lines) == 1, lines
    return lines[0]


# -- keep-alive, pipelining, bodiless responses ---------------------------------


def test_one_upstream_connection_is_reused_for_a_thousand_sequential_keep_alive_requests(
    sluice_factory, origin
):
    sluice = sluice_factory(basic_config(free_port(), {"app": [origin.address]}))
    direct = requests.Session()  # one connection to ask the origin itself
    before = direct.get(f"http://{origin.address}/stats", timeout=5).json()["connections"]

    client = requests.Session()
    for i in range(1000):
        r = client.get(sluice.url + f"/?n={i}" if i % 2 else sluice.url + "/", timeout=5)
        assert r.status_code == 200, (i, r.status_code, r.text)
        assert r.content == b"Hello, world!", i

    after = direct.get(f"http://{origin.address}/stats", timeout=5).json()
    assert after["connections"] - before == 1
    assert after["requests"] >= 1000


def test_pipelined_requests_in_one_send_are_answered_in_order_with_the_right_bodies(gateway):
    sluice, origin = gateway
    echo_body = b"pipelined body \x00\xff with bytes"
    batch = (
        req("GET", "/")
        + req("GET", "/?delay=100")
        + req("POST", "/echo", body=echo_body)
        + req("GET", "/?size=5000")
        + req("GET", "/headers")
    )
    with Raw(sluice.listen_ports()[0]) as c:
        c.send(batch)
        rs = [c.response() for _ in range(5)]
    assert [r.status for r in rs] == [200, 200, 200, 200, 200]
    assert rs[0].body == b"Hello, world!"
    assert rs[1].body == b"Hello, world!"
    assert rs[2].body == echo_body
    assert rs[2].get("X-Request-Method") == "POST"
    assert rs[3].body == patterned(5000)
    assert json.loads(rs[4].body)["path"] == "/headers"
    ids = [r.get("X-Request-Id") for r in rs]
    assert len(set(ids)) == 5, ids


def test_requests_split_anywhere_across_reads_are_parsed_as_if_sent_whole(gateway):
    """The checks made on top of llhttp look back at bytes the parser has
    already been given; a piece boundary falling anywhere (inside the
    method, the version, a header, the body, between pipelined requests)
    must change nothing."""
    sluice, origin = gateway
    port = sluice.listen_ports()[0]
    data = (req("POST", "/echo?q=1", headers=[("X-A", "b c")], body=b"hello")
            + req("GET", "/?size=3", headers=[("Connection", "close")]))
    wrong = []
    for cut in range(1, len(data)):
        with Raw(port) as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.send(data[:cut])
            time.sleep(0.005)  # the gateway reads the first piece on its own
            c.send(data[cut:])
            got = []
            try:
                for _ in range(2):
                    r = c.response()
                    got.append((r.status, r.body[:100]))
            except (EOFError, ConnectionResetError):
                got.append("closed")
            if got != [(200, b"hello"), (200, b"abc")]:
                wrong.append((cut, data[:cut][-12:], got))
    assert wrong == [], f"{len(wrong)} of {len(data) - 1} cuts went wrong, e.g. {wrong[:3]}"


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("HEAD", "/", 200),
        ("HEAD", "/?size=100000", 200),
        ("HEAD", "/?chunked=1&size=100000", 200),
        ("GET", "/?status=204", 204),
        ("GET", "/?status=304", 304),
        ("POST", "/echo?status=204", 204),
    ],
)
def test_head_204_and_304_come_back_without_a_body_and_the_connection_stays_usable(
    gateway, method, path, status
):
    sluice, origin = gateway
    with Raw(sluice.listen_ports()[0]) as c:
        for _ in range(2):
            c.send(req(method, path, body=b"x" * 10 if method == "POST" else b""))
            r = c.response(method)
            assert r.status == status
            assert r.get("Transfer-Encoding") is None
            if method == "HEAD" and "chunked" not in path:
                # HEAD tells the length a GET would have.
                assert r.get("Content-Length") == ("13" if path == "/" else "100000")
            if status in (204, 304):
                assert r.get("Content-Length") in (None, "0")
            # Whatever comes next must be the next response's status line:
            # a stray body byte would show up here.
            c.send(req("GET", "/"))
            nxt = c.response()
            assert nxt.status == 200 and nxt.body == b"Hello, world!"


# -- header rewriting -------------------------------------------------------------


def test_hop_by_hop_headers_are_removed_and_forwarding_headers_added_on_the_way_up(gateway):
    sluice, origin = gateway
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = [
        ("Connection", "close, X-Secret"),
        ("Keep-Alive", "timeout=5, max=100"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Secret", "s3cret"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "spoofed.example"),
        ("traceparent", traceparent),
        ("X-Request-Id", "client-id-42"),
        ("X-Kept", "yes"),
    ]
    with Raw(sluice.listen_ports()[0]) as c:
        c.send(req("GET", "/headers?a=1", headers, host="api.example.test:8080"))
        r = c.response()
        assert r.status == 200
        assert c.rest() == b""  # Connection: close was honoured
    up = json.loads(r.body)
    names = {n.lower() for n, _ in up["headers"]}
    for gone in ("connection", "keep-alive", "te", "upgrade", "proxy-connection", "x-secret",
                 "transfer-encoding"):
        assert gone not in names, (gone, up["headers"])
    assert up["path"] == "/headers?a=1"
    assert seen(up, "Host") == ["api.example.test:8080"]
    assert seen(up, "X-Forwarded-For") == ["203.0.113.7, 127.0.0.1"]
    assert seen(up, "X-Forwarded-Proto") == ["http"]
    assert seen(up, "X-Forwarded-Host") == ["api.example.test:8080"]
    assert seen(up, "traceparent") == [traceparent]
    assert seen(up, "X-Request-Id") == ["client-id-42"]
    assert seen(up, "X-Kept") == ["yes"]
    assert r.get("X-Request-Id") == "client-id-42"


def test_request_framing_headers_are_regenerated_not_copied(gateway):
    sluice, origin = gateway
    body = b"0123456789" * 1000
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:7], body[7:5000], body[5000:]))
    with Raw(sluice.listen_ports()[0]) as c:
        c.send(b"POST /headers HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked + b"0\r\n\r\n")
        up = json.loads(c.response().body)
        assert seen(up, "Transfer-Encoding") == ["chunked"]
        assert seen(up, "Content-Length") == []
        assert up["body_bytes"] == len(body)

        c.send(req("POST", "/headers", body=body))
        up = json.loads(c.response().body)
        assert seen(up, "Content-Length") == [str(len(body))]
        assert seen(up, "Transfer-Encoding") == []
        assert up["body_bytes"] == len(body)


def test_hop_by_hop_headers_from_the_upstream_do_not_reach_the_client(gateway):
    sluice, origin = gateway
    injected = [
        "Keep-Alive:timeout%3D5",
        "Proxy-Connection:keep-alive",
        "TE:trailers",
        "Upgrade:h2c",
        "X-Private:upstream-only",
        "Connection:X-Private",
        "X-Kept:yes",
    ]
    path = "/?" + "&".join("header=" + h for h in injected)
    with Raw(sluice.listen_ports()[0]) as c:
        c.send(req("GET", path))
        r = c.response()
        assert r.status == 200 and r.body == b"Hello, world!"
        for gone in ("Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "X-Private",
                     "Transfer-Encoding"):
            assert r.all(gone) == [], (gone, r.headers)
        for v in r.all("Connection"):
            assert v.lower() in ("close", "keep-alive"), r.headers
        assert r.get("X-Kept") == "yes"
        assert r.get("Content-Length") == "13"
        # The connection is still good.
        c.send(req("GET", "/"))
        assert c.response().body == b"Hello, world!"


def test_an_http_1_0_request_without_host_goes_upstream_with_one(sluice_factory, origin):
    s = sluice_factory(basic_config(free_port(), {"app": [origin.address]}))
    raw = raw_request(s.listen_ports()[0], b"GET /headers HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200")
    body = raw.split(b"\r\n\r\n", 1)[1].decode()
    assert f'["Host","{origin.address}"]' in body


# -- request ids and the access log --------------------------------------------------


def test_a_sane_incoming_request_id_is_kept_upstream_in_the_response_and_in_the_access_log(
    gateway,
):
    sluice, origin = gateway
    rid = "Abc-123_x.y:z"
    r = requests.get(sluice.url + "/headers", headers={"X-Request-Id": rid}, timeout=5)
    assert r.status_code == 200
    assert seen(r.json(), "X-Request-Id") == [rid]
    assert r.headers["X-Request-Id"] == rid
    assert log_line(sluice, rid)["path"] == "/headers"


@pytest.mark.parametrize("bad", ["a" * 200, "has spaces in it", "semi;colon", "x" * 65])
def test_an_insane_incoming_request_id_is_replaced_by_a_fresh_uuid(gateway, bad):
    sluice, origin = gateway
    with Raw(sluice.listen_ports()[0]) as c:
        c.send(req("GET", "/headers", [("X-Request-Id", bad)]))
        r = c.response()
    assert r.status == 200
    up = seen(json.loads(r.body), "X-Request-Id")
    rid = r.get("X-Request-Id")
    assert UUID4.match(rid), rid
    assert up == [rid]
    assert log_line(sluice, rid)["status"] == 200
    assert bad not in sluice.access_text()


def test_a_request_without_an_id_gets_a_fresh_uuid_in_both_directions(gateway):
    sluice, origin = gateway
    ids = []
    for _ in range(3):
        r = requests.get(sluice.url + "/headers", timeout=5)
        rid = r.headers["X-Request-Id"]
        assert UUID4.match(rid), rid
        assert seen(r.json(), "X-Request-Id") == [rid]
        log_line(sluice, rid)
        ids.append(rid)
    assert len(set(ids)) == 3


def test_the_access_log_line_has_every_field_and_never_a_token_cookie_or_password(gateway):
    sluice, origin = gateway
    token = "eyJhbGciOiJIUzI1NiJ9.SECRET-TOKEN-payload.sig"
    cookie = "COOKIE-VALUE-4f2a"
    password = "hunter2-PASSWORD-9c"
    r = requests.get(
        sluice.url + f"/headers?user=bob&password={password}&api_key={password}",
        headers={"Authorization": f"Bearer {token}", "Cookie": f"session={cookie}",
                 "X-Request-Id": "log-check-1"},
        timeout=5,
    )
    assert r.status_code == 200
    # They did reach the upstream: the gateway only keeps them out of the log.
    assert seen(r.json(), "Authorization") == [f"Bearer {token}"]
    line = log_line(sluice, "log-check-1")
    for key in ("ts", "request_id", "client", "method", "path", "status", "bytes_in",
                "bytes_out", "duration_ms", "route", "upstream", "target", "upstream_ms",
                "ratelimit"):
        assert key in line, (key, line)
    assert line["client"] == "127.0.0.1"
    assert line["method"] == "GET"
    assert line["path"] == "/headers"
    assert line["status"] == 200
    assert line["route"] == "all"
    assert line["upstream"] == "app"
    assert line["target"] == origin.address
    assert line["bytes_in"] > 0 and line["bytes_out"] > len(r.content)
    assert line["duration_ms"] >= 0 and line["upstream_ms"] >= 0
    text = sluice.access_text()
    for secret in (token, "SECRET-TOKEN", cookie, password):
        assert secret not in text, secret


# -- Expect: 100-continue ------------------------------------------------------------


def test_expect_100_continue_gets_100_before_the_body_is_sent_then_the_final_response(gateway):
    sluice, origin = gateway
    body = b"the body, sent only after 100 Continue"
    with Raw(sluice.listen_ports()[0]) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        version, status, reason, headers = c.head()
        assert (version, status) == ("HTTP/1.1", 100)
        c.send(body)
        r = c.response()
        assert r.status == 200  # exactly one interim response
        assert r.body == body
        c.send(req("GET", "/"))
        assert c.response().body == b"Hello, world!"


# -- WebSocket ------------------------------------------------------------------------


def ws_mask(payload, key):
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def ws_frame(op, payload, fin=True):
    n = len(payload)
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + ws_mask(payload, key)


def ws_read(c):
    """(fin, opcode, payload) of the next frame from the server."""
    b0, b1 = c.exact(2)
    assert not b1 & 0x80, "a server must not mask its frames"
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(c.exact(2), "big")
    elif n == 127:
        n = int.from_bytes(c.exact(8), "big")
    return bool(b0 & 0x80), b0 & 0x0F, c.exact(n)


def ws_upgrade(c):
    """Send the opening handshake; return (the 101 response, the expected accept)."""
    key = base64.b64encode(os.urandom(16)).decode()
    accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
    c.send(req("GET", "/ws", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                              ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]))
    version, status, reason, headers = c.head()
    return Resp(version, status, reason, headers, b""), accept


def test_a_websocket_handshake_through_the_gateway_gets_101_with_upgrade_and_the_right_accept(
    gateway,
):
    sluice, origin = gateway
    with Raw(sluice.listen_ports()[0]) as c:
        r, accept = ws_upgrade(c)
        assert r.status == 101, r.headers
        assert r.get("Sec-WebSocket-Accept") == accept
        assert "upgrade" in [t.strip().lower() for t in r.get("Connection").split(",")]
        # RFC 6455 4.1: a client fails the connection without this header.
        assert (r.get("Upgrade") or "").lower() == "websocket", r.headers


def test_websocket_frames_small_and_large_are_echoed_ping_gets_pong_and_close_ends_it(gateway):
    sluice, origin = gateway
    with Raw(sluice.listen_ports()[0]) as c:
        r, accept = ws_upgrade(c)
        assert r.status == 101, r.headers
        assert r.get("Sec-WebSocket-Accept") == accept

        c.send(ws_frame(0x1, b"hello"))
        assert ws_read(c) == (True, 0x1, b"hello")

        big = (b"0123456789abcdefghijklmnopqrstuvwxyz" * 6000)[:200_000]
        c.send(ws_frame(0x1, big))
        assert ws_read(c) == (True, 0x1, big)

        c.send(ws_frame(0x9, b"are you there"))
        assert ws_read(c) == (True, 0xA, b"are you there")

        c.send(ws_frame(0x1, "ünïcode ✓".encode()))
        assert ws_read(c) == (True, 0x1, "ünïcode ✓".encode())

        close = (1000).to_bytes(2, "big") + b"bye"
        c.send(ws_frame(0x8, close))
        assert ws_read(c) == (True, 0x8, close)
        assert c.rest() == b""  # and then the connection ends
    # The gateway is fine afterwards.
    assert requests.get(sluice.url + "/", timeout=5).text == "Hello, world!"


def test_a_declined_upgrade_closes_the_connection_instead_of_leaving_it_dead(sluice_factory,
                                                                            origin):
    conf = basic_config(free_port(), {"app": [origin.address]},
                        timeouts={"client_header": "1s"})
    s = sluice_factory(conf)
    c = socket.create_connection(("127.0.0.1", s.listen_ports()[0]), timeout=5)
    c.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        b = c.recv(65536)
        if not b:
            break
        data += b
    c.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in data
    assert data.endswith(b"Hello, world!")  # and then the connection closed


# -- retries and balancing ----------------------------------------------------------------


def test_a_dead_target_is_retried_on_the_live_one_and_the_failed_connect_is_logged(
    sluice_factory, origin
):
    dead = f"127.0.0.1:{free_port()}"
    sluice = sluice_factory(basic_config(free_port(), {"app": [dead, origin.address]}))
    s = requests.Session()
    for i in range(50):
        r = s.get(sluice.url + "/", timeout=10)
        assert r.status_code == 200, (i, r.status_code, r.text)
        assert r.text == "Hello, world!"
    log = wait_for(lambda: "connect" in sluice.error_log() and sluice.error_log(),
                   what="a connect failure in the error log")
    lines = [l for l in log.splitlines() if dead in l]
    assert lines, log[-2000:]
    assert any("connect" in l for l in lines), lines


def test_only_dead_targets_give_the_client_a_502_bad_gateway_json(sluice_factory):
    dead = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    sluice = sluice_factory(basic_config(free_port(), {"app": dead}))
    r = requests.get(sluice.url + "/", timeout=10)
    assert r.status_code == 502
    assert r.headers["Content-Type"].startswith("application/json")
    j = r.json()
    assert j["error"] == "bad_gateway"
    assert j["message"]
    assert j["request_id"] == r.headers["X-Request-Id"]
    # The connection to the client is still good after the 502.
    s = requests.Session()
    assert s.get(sluice.url + "/", timeout=10).status_code == 502
    assert s.get(sluice.url + "/", timeout=10).status_code == 502


def test_weighted_round_robin_splits_500_requests_3_to_1_to_1(sluice_factory, origin_factory):
    origins = [origin_factory(f"o{i}") for i in range(3)]
    conf = basic_config(free_port(), {"app": [o.address for o in origins]})
    for t, w in zip(conf["upstreams"]["app"]["targets"], (3, 1, 1)):
        t["weight"] = w
    sluice = sluice_factory(conf)
    s = requests.Session()
    counts = collections.Counter()
    for _ in range(500):
        r = s.get(sluice.url + "/", timeout=5)
        assert r.status_code == 200
        counts[r.headers["X-Origin"]] += 1
    assert sum(counts.values()) == 500
    for name, share in (("o0", 0.6), ("o1", 0.2), ("o2", 0.2)):
        assert abs(counts[name] / 500 - share) <= 0.03, counts
