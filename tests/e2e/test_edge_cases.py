"""Edge cases found in review: responses delimited by the upstream closing,
declined upgrades, timeouts while one side waits for the other, a single
target's 5xx, HTTP/1.0 without Host, log files swapped under load."""

import json
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import basic_config, free_port, raw_request, wait_for


class RawUpstream:
    """A tiny upstream that answers every request with a given function of
    the connection (it owns reading and writing)."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.handler = handler
        self.seen = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            self.handler(self, c)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def read_head(c):
    data = b""
    while b"\r\n\r\n" not in data:
        b = c.recv(65536)
        if not b:
            break
        data += b
    return data


def test_a_response_delimited_by_the_upstream_closing_reaches_the_client_whole(sluice_factory):
    def close_delimited(up, c):
        up.seen.append(read_head(c))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello until close")

    up = RawUpstream(close_delimited)
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
        head = read_head(c)
        path = head.split(b" ")[1].decode()
        c.sendall(b"HTTP/1.1 200 " + reasons[path] + b"\r\nContent-Length: 2\r\n"
                  b"Connection: close\r\n\r\nhi")

    up = RawUpstream(answer)
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
        read_head(c)
        c.sendall(response)
        time.sleep(0.3)

    up = RawUpstream(answer)
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
        head = read_head(c)
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

    up = RawUpstream(pausing_reader)
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


def test_a_5xx_from_the_only_target_reaches_the_client_as_it_is(sluice_factory, origin):
    s = sluice_factory(basic_config(free_port(), {"app": [origin.address]}))
    r = requests.get(s.url + "/?status=503&header=Retry-After:7", timeout=5)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "7"
    assert r.headers["X-Origin"] == "origin"


def test_an_http_1_0_request_without_host_goes_upstream_with_one(sluice_factory, origin):
    s = sluice_factory(basic_config(free_port(), {"app": [origin.address]}))
    raw = raw_request(s.listen_ports()[0], b"GET /headers HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200")
    body = raw.split(b"\r\n\r\n", 1)[1].decode()
    assert f'["Host","{origin.address}"]' in body


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
