"""Bodies stream through the gateway: chunked both ways with trailers,
HTTP/1.0 clients, 1 GiB up and down in bounded memory, slow readers, no
timeout while one side waits for the other, and an upstream that dies
mid-body."""

import json
import random
import re
import socket
import threading
import time

import pytest
import requests

from conftest import RawClient, ScriptedUpstream, basic_config, free_port

GIB = 1 << 30
MIB = 1 << 20
RSS_BUDGET_KB = 32 * 1024
PATTERN = bytes(range(ord("a"), ord("z") + 1))


def patterned(n, start=0):
    """The origin's generated body: byte i is 'a' + i % 26."""
    reps = (start % 26 + n) // 26 + 1
    return (PATTERN * reps)[start % 26 : start % 26 + n]


class Conn(RawClient):
    """A raw client connection with a read buffer."""

    def __init__(self, port, timeout=30.0, rcvbuf=None):
        super().__init__(port, timeout, rcvbuf)

    def head(self):
        raw = self.until(b"\r\n\r\n").decode("latin-1")
        lines = raw[:-4].split("\r\n")
        m = re.match(r"^HTTP/1\.[01] (\d{3})", lines[0])
        assert m, raw
        headers = {}
        for line in lines[1:]:
            n, _, v = line.partition(":")
            headers.setdefault(n.strip().lower(), []).append(v.strip())
        return int(m.group(1)), headers

    def chunked_body(self):
        """Parse chunked framing; return (body, trailers, chunk sizes)."""
        body, sizes, trailers = bytearray(), [], {}
        while True:
            line = self.until(b"\r\n")[:-2]
            size = int(line.split(b";")[0], 16)
            if size == 0:
                break
            sizes.append(size)
            body += self.exact(size)
            assert self.exact(2) == b"\r\n", "chunk data not followed by CRLF"
        while True:
            line = self.until(b"\r\n")[:-2].decode("latin-1")
            if not line:
                break
            n, _, v = line.partition(":")
            trailers.setdefault(n.strip().lower(), []).append(v.strip())
        return bytes(body), trailers, sizes


class RssSampler:
    """Samples the gateway's RSS in the background while a transfer runs."""

    def __init__(self, sluice, period=0.02):
        self.sluice, self.period = sluice, period
        self.before = sluice.rss_kb()
        self.max = self.before
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.period):
            self.max = max(self.max, self.sluice.rss_kb())
            self.samples += 1

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.max = max(self.max, self.sluice.rss_kb())

    @property
    def growth_kb(self):
        return self.max - self.before


def start_gateway(sluice_factory, origin, **extra):
    s = sluice_factory(basic_config(free_port(), {"app": [origin.address]}, **extra))
    # Warm up so that the baseline includes what any first request allocates.
    assert requests.get(s.url + "/?size=300000", timeout=5).status_code == 200
    return s


def read_patterned(c, offset, total, check_every=1):
    """Read body bytes from c until `total` (counting from `offset`),
    checking the pattern at both ends of every check_every-th piece; return
    the offset reached (short of total if the connection ended)."""
    got, pieces = offset, 0
    while got < total:
        b = c.some(min(1 << 20, total - got))
        if not b:
            break
        if pieces % check_every == 0 or got + len(b) == total:
            k = min(len(b), 64)
            assert b[:k] == patterned(k, got), f"wrong content at offset {got}"
            assert b[-k:] == patterned(k, got + len(b) - k), f"wrong content near {got + len(b)}"
        got += len(b)
        pieces += 1
    return got


# -- chunked both ways --------------------------------------------------------------


def test_a_chunked_request_body_reaches_the_origin_echo_intact(sluice_factory, origin):
    sluice = start_gateway(sluice_factory, origin)
    body = random.Random(7).randbytes(300_000)
    cuts = [0, 1, 11, 4096, 4097, 70_000, 200_000, len(body)]
    pieces = [body[a:b] for a, b in zip(cuts, cuts[1:])]

    with Conn(sluice.listen_ports()[0]) as c:
        def send():
            c.sock.sendall(b"POST /echo HTTP/1.1\r\nHost: gw.test\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n")
            for p in pieces:
                c.sock.sendall(b"%x\r\n" % len(p) + p + b"\r\n")
            c.sock.sendall(b"0\r\n\r\n")

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        status, headers = c.head()
        assert status == 200
        assert headers.get("transfer-encoding") == ["chunked"]
        echoed, _, _ = c.chunked_body()
        sender.join(10)
        assert len(echoed) == len(body)
        assert echoed == body
        # And the connection carries on.
        c.sock.sendall(b"GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        status, headers = c.head()
        assert status == 200 and c.exact(13) == b"Hello, world!"


def test_a_chunked_response_with_a_trailer_reaches_the_client_chunked_with_the_trailer(
    sluice_factory, origin
):
    sluice = start_gateway(sluice_factory, origin)
    with Conn(sluice.listen_ports()[0]) as c:
        c.sock.sendall(b"GET /?chunked=1&trailer=1&size=100000 HTTP/1.1\r\nHost: gw.test\r\n"
                       b"TE: trailers\r\n\r\n")
        status, headers = c.head()
        assert status == 200
        assert headers.get("transfer-encoding") == ["chunked"]
        assert "content-length" not in headers
        body, trailers, sizes = c.chunked_body()
        assert len(body) == 100_000
        assert body == patterned(100_000)
        assert trailers.get("x-checksum") == ["100000"], trailers
        # The message ended exactly there: the next response parses cleanly.
        c.sock.sendall(b"GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        status, headers = c.head()
        assert status == 200 and c.exact(13) == b"Hello, world!"


@pytest.mark.parametrize("query", ["chunked=1&size=50000", "chunked=1&trailer=1&size=50000"])
def test_an_http_1_0_client_gets_a_chunked_upstream_response_delimited_by_close(
    sluice_factory, origin, query
):
    sluice = start_gateway(sluice_factory, origin)
    with Conn(sluice.listen_ports()[0], timeout=10) as c:
        c.sock.sendall(b"GET /?%s HTTP/1.0\r\nHost: gw.test\r\n\r\n" % query.encode())
        status, headers = c.head()
        assert status == 200
        assert "transfer-encoding" not in headers, headers
        rest = bytearray(c.buf)
        c.buf.clear()
        while True:
            b = c.sock.recv(65536)  # a timeout here means it never closed
            if not b:
                break
            rest += b
    if "content-length" in headers:
        assert headers["content-length"] == ["50000"]
    assert bytes(rest) == patterned(50_000)


# -- 1 GiB through in bounded memory ---------------------------------------------------


def test_a_1_gib_upload_streams_to_the_origin_in_bounded_gateway_memory(sluice_factory, origin):
    sluice = start_gateway(sluice_factory, origin, limits={"max_body_bytes": "2g"})
    block = patterned(MIB)

    def body():
        for _ in range(GIB // MIB):
            yield block

    with Conn(sluice.listen_ports()[0], timeout=60) as c, RssSampler(sluice) as rss:
        c.sock.sendall(b"POST /sink HTTP/1.1\r\nHost: gw.test\r\nContent-Type: "
                       b"application/octet-stream\r\nContent-Length: %d\r\n\r\n" % GIB)
        for b in body():
            c.sock.sendall(b)
        status, headers = c.head()
        answer = json.loads(c.exact(int(headers["content-length"][0])))
    assert status == 200
    assert answer == {"bytes": GIB}
    print(f"\nRSS growth {rss.growth_kb / 1024:.1f} MiB over {rss.samples} samples")
    assert rss.samples > 0
    assert rss.growth_kb < RSS_BUDGET_KB, (rss.before, rss.max)


def test_a_1_gib_download_streams_to_the_client_in_bounded_gateway_memory(
    sluice_factory, origin
):
    sluice = start_gateway(sluice_factory, origin)
    with Conn(sluice.listen_ports()[0], timeout=60) as c, RssSampler(sluice) as rss:
        c.sock.sendall(b"GET /?size=1g HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        status, headers = c.head()
        assert status == 200
        assert headers.get("content-length") == [str(GIB)]
        got = read_patterned(c, 0, GIB, check_every=16)
    assert got == GIB
    print(f"\nRSS growth {rss.growth_kb / 1024:.1f} MiB over {rss.samples} samples")
    assert rss.samples > 0
    assert rss.growth_kb < RSS_BUDGET_KB, (rss.before, rss.max)


def test_a_slow_reading_client_does_not_make_the_gateway_buffer_the_body(
    sluice_factory, origin
):
    sluice = start_gateway(sluice_factory, origin)
    total = 200 * MIB
    with Conn(sluice.listen_ports()[0], timeout=30, rcvbuf=64 * 1024) as c, \
            RssSampler(sluice) as rss:
        c.sock.sendall(b"GET /?size=200m HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        status, headers = c.head()
        assert status == 200
        got = 0
        for _ in range(4):
            piece = c.exact(64 * 1024)
            assert piece == patterned(len(piece), got)
            got += len(piece)
            time.sleep(1)  # the client being slow, not waiting for a server
        slow_max = rss.max
        got = read_patterned(c, got, total)
    assert got == total
    assert slow_max - rss.before < RSS_BUDGET_KB, (rss.before, slow_max)
    assert rss.growth_kb < RSS_BUDGET_KB, (rss.before, rss.max)


# -- one side waiting for the other ----------------------------------------------------


def test_a_client_that_pauses_reading_is_not_cut_by_the_upstream_read_timeout(
        sluice_factory, origin):
    # The client stops reading for longer than the upstream read timeout:
    # the gateway's queue fills and it stops reading the upstream, which is
    # then waiting for the client, not the other way round.
    conf = basic_config(free_port(), {"app": [origin.address]})
    conf["upstreams"]["app"]["timeouts"] = {"read": "1s"}
    s = sluice_factory(conf)
    size = 16 * 1024 * 1024
    c = socket.create_connection(("127.0.0.1", s.listen_ports()[0]), timeout=10)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.sendall(f"GET /?size={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = len(c.recv(64 * 1024))
    time.sleep(2.5)
    while got <= size:
        b = c.recv(1024 * 1024)
        if not b:
            break
        got += len(b)
    c.close()
    assert got > size, f"the response was cut after {got} bytes"
    assert "timed out" not in s.error_log()


def test_a_client_waiting_for_a_paused_upstream_is_not_timed_out_on_its_body(sluice_factory):
    def pausing_reader(up, c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        head = up.read_head(c)
        length = int([l for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-length")][0].split(b":")[1])
        got = len(head.split(b"\r\n\r\n", 1)[1])
        time.sleep(2.5)  # longer than the client's body timeout
        while got < length:
            b = c.recv(1024 * 1024)
            if not b:
                return
            got += len(b)
        up.seen.append(got)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    up = ScriptedUpstream(pausing_reader)
    try:
        conf = basic_config(free_port(), {"app": [up.address]},
                            timeouts={"client_body": "1s"},
                            limits={"max_body_bytes": "64m"})
        s = sluice_factory(conf)
        body = b"x" * (24 * 1024 * 1024)
        r = requests.post(s.url + "/upload", data=body, timeout=60)
        assert r.status_code == 200 and r.text == "ok", r.text
        assert up.seen == [len(body)]
    finally:
        up.close()


# -- an upstream that dies mid-body -------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upstream_reset_mid_body_closes_the_client_connection_short(
    sluice_factory, origin, chunked
):
    sluice = start_gateway(sluice_factory, origin)
    q = b"reset_after=100000&size=1000000" + (b"&chunked=1" if chunked else b"")
    with Conn(sluice.listen_ports()[0], timeout=10) as c:
        c.sock.sendall(b"GET /?%s HTTP/1.1\r\nHost: gw.test\r\n\r\n" % q)
        status, headers = c.head()
        assert status == 200
        if chunked:
            assert headers.get("transfer-encoding") == ["chunked"]
            with pytest.raises((EOFError, ConnectionResetError)):
                c.chunked_body()  # must end before the last chunk, not hang
        else:
            assert headers.get("content-length") == ["1000000"]
            body = bytearray(c.buf)
            try:
                while True:
                    b = c.sock.recv(65536)  # socket.timeout here means a hang
                    if not b:
                        break
                    body += b
            except ConnectionResetError:
                pass
            assert len(body) < 1_000_000
            assert bytes(body) == patterned(len(body))
    # The gateway keeps serving.
    s = requests.Session()
    for _ in range(3):
        r = s.get(sluice.url + "/?size=200000", timeout=5)
        assert r.status_code == 200 and r.content == patterned(200_000)
