"""The edges of stopping and reloading: a second SIGTERM, requests held by a
throttle and WebSockets open while the gateway stops, WebSockets across many
reloads, and the config file /status names."""

import base64
import hashlib
import os
import signal
import socket
import subprocess
import threading

import pytest
import requests
import yaml

from conftest import (SLUICE, basic_config, free_port, is_closed, stop_process, wait_for,
                      wait_port)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- helpers (kept local: this file owns them) -----------------------------------------


def refuses_connections(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True


def origin_requests(origin):
    """The origin's request count, not counting this /stats request itself."""
    return origin.stats()["requests"] - 1


def forwarded_since(origin, before):
    """Requests the origin got since origin_requests() said before (less that
    call's own /stats)."""
    return origin_requests(origin) - before - 1


def metric(admin_port, name, **labels):
    """The sum of the samples of name whose labels include labels (0 if none)."""
    text = requests.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def generation(admin_port):
    return requests.get(f"http://127.0.0.1:{admin_port}/status", timeout=5).json()["generation"]


class WebSocket:
    """A WebSocket client on a raw socket, through the gateway to the origin's /ws echo."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.sock.sendall(("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = self._until(b"\r\n\r\n").decode("latin-1")
        assert head.startswith("HTTP/1.1 101"), head
        assert f"Sec-WebSocket-Accept: {accept}".lower() in head.lower(), head

    def _until(self, delim):
        while delim not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise ConnectionError(f"closed while waiting for {delim!r}")
            self.buf += b
        out, _, self.buf = self.buf.partition(delim)
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise ConnectionError(f"closed with {len(self.buf)} of {n} bytes")
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, payload, op=0x1):
        n = len(payload)
        head = bytes([0x80 | op, 0x80 | n]) if n < 126 else \
            bytes([0x80 | op, 0x80 | 126]) + n.to_bytes(2, "big")
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read(self):
        """(opcode, payload) of the next frame from the server."""
        b0, b1 = self._exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._exact(2), "big")
        elif n == 127:
            n = int.from_bytes(self._exact(8), "big")
        return b0 & 0x0F, self._exact(n)

    def echo(self, text):
        """Send a text frame and return what comes back."""
        self.send(text.encode())
        op, payload = self.read()
        assert op == 0x1, (op, payload)
        return payload.decode()

    def close(self):
        self.sock.close()


def admin_config(port, admin, origin, **extra):
    conf = basic_config(port, {"app": [origin.address]}, **extra)
    conf["admin"] = {"address": f"127.0.0.1:{admin}"}
    return conf


# -- a second SIGTERM --------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_stop_signal_ends_the_grace_at_once_and_exits_0(sluice_factory, origin, sig):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]},
                                         shutdown_timeout="60s"))
    before = origin_requests(origin)
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(b"GET /hang?hang=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wait_for(lambda: origin_requests(origin) - before >= 2,
                 what="the hanging request at the origin")
        sluice.proc.send_signal(sig)
        wait_for(lambda: refuses_connections(port), what="the listener to close")
        # The first signal waits for the request in flight (60 s of grace)...
        assert sluice.proc.poll() is None, "the first signal did not wait for the request"
        assert "finishing requests in flight" in sluice.error_log()
        # ...the second one does not.
        sluice.proc.send_signal(sig)
        try:
            code = sluice.proc.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail("a second stop signal did not stop sluice (shutdown_timeout is 60s)")
        assert code == 0, sluice.error_log()[-2000:]
        assert is_closed(s, timeout=5), "the request in flight was left open"
        assert "closing" in sluice.error_log().split("finishing requests in flight")[-1]
    finally:
        s.close()


def test_a_stop_signal_with_nothing_in_flight_exits_without_waiting_for_a_second(
        sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]},
                                         shutdown_timeout="60s"))
    assert requests.get(sluice.url + "/", timeout=5).status_code == 200
    sluice.proc.send_signal(signal.SIGTERM)
    try:
        assert sluice.proc.wait(20) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("sluice waited with no request in flight")


# -- requests held by a throttle --------------------------------------------------------


def test_a_throttled_request_held_during_sigterm_is_answered_not_cut(sluice_factory, origin):
    port, admin = free_port(), free_port()
    conf = admin_config(port, admin, origin, shutdown_timeout="60s")
    # One token every 6 seconds: the second request is held about 6 s.
    conf["routes"][0]["plugins"] = {
        "rate_limit": {"key": "route", "rate": "10/m", "burst": 1, "max_delay": "30s",
                       "store": "local"}}
    sluice = sluice_factory(conf)
    wait_port(admin)
    assert requests.get(sluice.url + "/first", timeout=5).status_code == 200
    result = {}

    def held():
        try:
            result["r"] = requests.get(sluice.url + "/held", timeout=60)
        except Exception as e:  # reported below
            result["e"] = e

    t = threading.Thread(target=held)
    t.start()
    try:
        wait_for(lambda: metric(admin, "sluice_ratelimit_decisions_total", decision="delayed"),
                 what="the second request to be held by the throttle")
        before = origin_requests(origin)
        sluice.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: refuses_connections(port), what="the listener to close")
        assert t.is_alive(), "the held request ended before the listener closed"
    finally:
        t.join(60)
    assert "e" not in result, f"the held request was cut: {result.get('e')!r}"
    assert result["r"].status_code == 200, result["r"].text
    assert result["r"].text == "Hello, world!"
    assert forwarded_since(origin, before) == 1, "the held request did not reach the origin"
    assert sluice.proc.wait(20) == 0
    assert "shutdown_timeout reached" not in sluice.error_log()


def test_a_request_held_past_shutdown_timeout_is_closed_when_the_grace_ends(
        sluice_factory, origin):
    port, admin = free_port(), free_port()
    conf = admin_config(port, admin, origin, shutdown_timeout="1s")
    # The second request would be held about 60 s: far past the grace.
    conf["routes"][0]["plugins"] = {
        "rate_limit": {"key": "route", "rate": "1/m", "burst": 1, "max_delay": "2m",
                       "store": "local"}}
    sluice = sluice_factory(conf)
    wait_port(admin)
    assert requests.get(sluice.url + "/first", timeout=5).status_code == 200
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(b"GET /held HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wait_for(lambda: metric(admin, "sluice_ratelimit_decisions_total", decision="delayed"),
                 what="the second request to be held by the throttle")
        before = origin_requests(origin)
        sluice.proc.send_signal(signal.SIGTERM)
        try:
            assert sluice.proc.wait(20) == 0
        except subprocess.TimeoutExpired:
            pytest.fail("sluice waited for a held request past shutdown_timeout: 1s")
        assert is_closed(s, timeout=5), "the held client was left open"
        assert "shutdown_timeout reached" in sluice.error_log()
        assert forwarded_since(origin, before) == 0, "the held request went upstream anyway"
    finally:
        s.close()


# -- WebSockets --------------------------------------------------------------------------


def test_an_open_websocket_keeps_echoing_during_the_grace_and_is_closed_when_it_ends(
        sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]},
                                         shutdown_timeout="5s"))
    ws = WebSocket(port)
    try:
        assert ws.echo("before") == "before"
        sluice.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: refuses_connections(port), what="the listener to close")
        assert sluice.proc.poll() is None, "sluice did not wait for the open WebSocket"
        for i in range(5):
            assert ws.echo(f"during the grace {i}") == f"during the grace {i}"
        try:
            code = sluice.proc.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail("an open WebSocket kept sluice running past shutdown_timeout: 5s")
        assert code == 0
        assert is_closed(ws.sock, timeout=5), "the WebSocket was left open after the grace"
        assert "shutdown_timeout reached: closing 1 connection" in sluice.error_log()
    finally:
        ws.close()


def test_sighup_and_sigusr1_during_the_grace_neither_kill_nor_reload_the_stopping_gateway(
        sluice_factory, origin):
    port = free_port()
    sluice = sluice_factory(basic_config(port, {"app": [origin.address]},
                                         shutdown_timeout="5s"))
    ws = WebSocket(port)
    try:
        sluice.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: refuses_connections(port), what="the listener to close")
        sluice.proc.send_signal(signal.SIGHUP)
        sluice.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: "SIGHUP ignored: stopping" in sluice.error_log(),
                 what="the SIGHUP to be ignored")
        wait_for(lambda: "log files reopened" in sluice.error_log(),
                 what="the SIGUSR1 to reopen the logs")
        assert ws.echo("still here") == "still here"
        assert sluice.proc.wait(20) == 0
        assert "reloading" not in sluice.error_log()
    finally:
        ws.close()


def test_websockets_opened_before_twenty_reloads_still_echo_after_them(sluice_factory, origin):
    port, admin = free_port(), free_port()
    conf = admin_config(port, admin, origin, workers=2)
    sluice = sluice_factory(conf)
    wait_port(admin)
    sockets = [WebSocket(port) for _ in range(4)]
    try:
        for i, ws in enumerate(sockets):
            assert ws.echo(f"hello {i}") == f"hello {i}"
        first = generation(admin)
        for n in range(20):
            # Every other reload changes something a route depends on.
            conf["routes"][0]["strip_prefix"] = "/x" if n % 2 == 0 else None
            if conf["routes"][0]["strip_prefix"] is None:
                del conf["routes"][0]["strip_prefix"]
            sluice.write_config(conf)
            if n % 2 == 0:
                sluice.reload()
            else:
                r = requests.post(f"http://127.0.0.1:{admin}/reload", timeout=10)
                assert r.status_code == 200, r.text
        assert generation(admin) == first + 20
        for i, ws in enumerate(sockets):
            for k in range(3):
                assert ws.echo(f"after 20 reloads {i}.{k}") == f"after 20 reloads {i}.{k}"
        # New WebSockets and requests work on the last generation.
        late = WebSocket(port)
        assert late.echo("late") == "late"
        late.close()
        assert requests.get(sluice.url + "/", timeout=5).status_code == 200
    finally:
        for ws in sockets:
            ws.close()


# -- /status and a relative -c -----------------------------------------------------------


def test_status_names_the_config_file_by_its_absolute_path_when_started_with_a_relative_one(
        tmp_path, origin):
    port, admin = free_port(), free_port()
    (tmp_path / "etc").mkdir()
    (tmp_path / "run").mkdir()
    conf_path = tmp_path / "etc" / "gw.yaml"
    conf = admin_config(port, admin, origin)
    conf_path.write_text(yaml.safe_dump(conf))
    err = open(tmp_path / "err.log", "wb")
    # From tmp_path/run, the file is ../etc/gw.yaml; from tmp_path, ./etc/gw.yaml.
    proc = subprocess.Popen([str(SLUICE), "-c", "./etc//gw.yaml"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    try:
        wait_port(admin, proc=proc)
        status = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).json()
        assert status["config_file"] == str(conf_path), status
        assert os.path.isabs(status["config_file"])
        # A reload reads the same file, and /status still names it in full.
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: generation(admin) == 2, what="the reload")
        status = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).json()
        assert status["config_file"] == str(conf_path), status
    finally:
        assert stop_process(proc) == 0, (tmp_path / "err.log").read_text()[-2000:]

    proc = subprocess.Popen([str(SLUICE), "-c", "../etc/gw.yaml"], cwd=tmp_path / "run",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(admin, proc=proc)
        status = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).json()
        assert os.path.isabs(status["config_file"]), status
        assert os.path.samefile(status["config_file"], conf_path), status
    finally:
        assert stop_process(proc) == 0
