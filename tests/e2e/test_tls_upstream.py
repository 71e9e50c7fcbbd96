"""HTTPS upstreams end to end: a front sluice proxies to a second sluice
that terminates TLS (the backend), through a relay that counts connections
where the test needs to. Verification against a CA, the name checked and
sent as SNI, no verification, one reused connection and its replacement
when the backend closes it, large bodies both ways; and an unreadable
upstream CA in `sluice -t`.
"""

import re
import socket
import subprocess
import threading

import pytest

from conftest import basic_config, check_config, free_port, wait_for
from tls_helpers import (check_pattern, conf_line_of, digest, https_config, upstream_headers,
                         values, write_conf, write_random)


# -- HTTPS upstreams -------------------------------------------------------------------


class CountingRelay:
    """A TCP relay to 127.0.0.1:target that counts the connections it is
    given, to see how many TLS connections the front sluice opens."""

    def __init__(self, target):
        self.target = target
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.accepted = 0
        self.closed = 0  # connections the target side ended
        self.socks = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.accepted += 1
                self.socks += [a, b]
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, True), daemon=True).start()

    def _pump(self, src, dst, from_target=False):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if from_target:
            with self.lock:
                self.closed += 1

    def close(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def relay_factory():
    made = []

    def make(target):
        r = CountingRelay(target)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def tls_backend(sluice_factory, origin, pki):
    """A second sluice terminating TLS (a.test first, c.test from the other
    CA second) in front of the origin: the HTTPS upstream. (sluice, port)."""
    port = free_port()
    conf = https_config(port, origin.address, [pki.a, pki.c])
    conf["limits"] = {"max_body_bytes": "64m"}
    s = sluice_factory(conf, name="backend")
    return s, port


def front_config(port, backend_address, tls):
    conf = basic_config(port, {"secure": [backend_address]})
    conf["upstreams"]["secure"]["tls"] = tls
    return conf


def test_an_https_upstream_with_the_right_ca_works_over_one_reused_connection(
    sluice_factory, tls_backend, relay_factory, pki, origin
):
    backend, bport = tls_backend
    relay = relay_factory(bport)
    port = free_port()
    front = sluice_factory(
        front_config(port, f"127.0.0.1:{relay.port}", {"ca": pki.server_ca.path, "sni": "a.test"}),
        name="front",
    )
    import requests

    with requests.Session() as http:
        for i in range(50):
            r = http.get(f"{front.url}/headers?i={i}", timeout=10)
            assert r.status_code == 200, r.text
        hs = upstream_headers(r.content)
    # the backend saw a TLS client: it says https to the origin
    assert values(hs, "X-Forwarded-Proto") == ["https"]
    assert relay.accepted == 1
    assert len(backend.access_log()) == 50
    assert origin.stats()["requests"] == 51


def test_a_pooled_tls_connection_closed_by_the_upstream_is_replaced(
    sluice_factory, origin, relay_factory, pki
):
    bport = free_port()
    bconf = https_config(bport, origin.address, [pki.a])
    bconf["timeouts"] = {"client_idle": "1s"}
    sluice_factory(bconf, name="backend")
    relay = relay_factory(bport)
    port = free_port()
    front = sluice_factory(
        front_config(port, f"127.0.0.1:{relay.port}", {"ca": pki.server_ca.path, "sni": "a.test"}),
        name="front",
    )
    import requests

    assert requests.get(f"{front.url}/", timeout=10).status_code == 200
    # the backend closes the idle TLS connection (close_notify, then FIN)
    wait_for(lambda: relay.closed >= 1, what="the backend to close the idle connection")
    for _ in range(3):
        r = requests.get(f"{front.url}/", timeout=10)
        assert r.status_code == 200, r.text
    assert relay.accepted == 2


def test_an_https_upstream_with_the_wrong_ca_gets_502_and_a_verification_error(
    sluice_factory, tls_backend, pki, origin
):
    _, bport = tls_backend
    port = free_port()
    front = sluice_factory(
        front_config(port, f"127.0.0.1:{bport}", {"ca": pki.other_ca.path, "sni": "a.test"}),
        name="front",
    )
    import requests

    r = requests.get(f"{front.url}/", timeout=10)
    assert r.status_code == 502
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["error"] == "bad_gateway"
    log = wait_for(lambda: front.error_log() if "verification failed" in front.error_log() else "",
                   what="the verification error in the log")
    assert re.search(r"certificate verification failed", log), log
    assert origin.stats()["requests"] == 1


def test_an_https_upstream_with_a_different_name_is_not_trusted(
    sluice_factory, tls_backend, pki, origin
):
    _, bport = tls_backend
    port = free_port()
    front = sluice_factory(
        front_config(port, f"127.0.0.1:{bport}", {"ca": pki.server_ca.path, "sni": "b.test"}),
        name="front",
    )
    import requests

    # The backend has no b.test certificate: it answers with a.test's, whose
    # name does not match.
    r = requests.get(f"{front.url}/", timeout=10)
    assert r.status_code == 502
    assert "verification failed" in front.error_log()


def test_the_upstream_sni_name_is_sent_and_chooses_the_backend_certificate(
    sluice_factory, tls_backend, pki
):
    _, bport = tls_backend
    import requests

    # Only c.test is signed by the other CA: trusting that CA works only if
    # the backend served c.test, i.e. if "c.test" was sent as SNI.
    with_sni = sluice_factory(
        front_config(free_port(), f"127.0.0.1:{bport}", {"ca": pki.other_ca.path, "sni": "c.test"}),
        name="front-sni",
    )
    r = requests.get(f"{with_sni.url}/", timeout=10)
    assert r.status_code == 200, r.text
    assert r.content == b"Hello, world!"
    # The same CA without SNI gets the default (a.test) certificate: refused.
    without = sluice_factory(
        front_config(free_port(), f"127.0.0.1:{bport}", {"ca": pki.other_ca.path}),
        name="front-nosni",
    )
    r = requests.get(f"{without.url}/", timeout=10)
    assert r.status_code == 502


def test_an_https_upstream_without_verification_accepts_any_certificate(
    sluice_factory, tls_backend
):
    _, bport = tls_backend
    import requests

    front = sluice_factory(
        front_config(free_port(), f"127.0.0.1:{bport}", {"verify": False}), name="front"
    )
    assert requests.get(f"{front.url}/", timeout=10).status_code == 200


def test_large_bodies_through_an_https_upstream_are_byte_exact(
    sluice_factory, tls_backend, pki, tmp_path
):
    _, bport = tls_backend
    port = free_port()
    conf = front_config(port, f"127.0.0.1:{bport}", {"ca": pki.server_ca.path, "sni": "a.test"})
    conf["limits"] = {"max_body_bytes": "64m"}
    front = sluice_factory(conf, name="front")
    size = 20 * 1000 * 1000 + 7
    out = tmp_path / "down.bin"
    r = subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", "60", "-o", str(out),
         f"{front.url}/?size={size}"],
        capture_output=True, timeout=90,
    )
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size == size
    check_pattern(out, size)
    src, echo = tmp_path / "up.bin", tmp_path / "echo.bin"
    write_random(src, size)
    r = subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", "60", "--data-binary", f"@{src}",
         "-H", "Content-Type: application/octet-stream", "-o", str(echo), f"{front.url}/echo"],
        capture_output=True, timeout=90,
    )
    assert r.returncode == 0, r.stderr
    assert digest(echo) == digest(src)


# -- configuration checks -------------------------------------------------------------


def test_an_unreadable_upstream_ca_is_an_error_with_its_position(tmp_path, pki):
    conf = basic_config(free_port(), {"app": ["127.0.0.1:9"]})
    conf["upstreams"]["app"]["tls"] = {"ca": str(tmp_path / "nope-ca.crt")}
    p = write_conf(tmp_path, conf)
    rc, out, err = check_config(p)
    text = out + err
    assert rc == 1, text
    line = conf_line_of(p, "nope-ca.crt")
    m = re.search(rf"^{re.escape(str(p))}:(\d+):\d+: error: .*nope-ca\.crt", text, re.M)
    assert m and int(m.group(1)) == line, text
