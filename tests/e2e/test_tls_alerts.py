"""TLS records on the wire: the fatal alerts a client gets after a TLS error
(RFC 8446 section 5: the alert must be sent before the close), and how a
proxied response is cut into records.

The client here is Python's ssl.SSLObject over a raw socket with memory
BIOs, so a test sees every record that crosses the wire and can send bytes
of its own making: a record with a flipped byte, an oversized one, a
ChangeCipherSpec where none may come.
"""

import os
import re
import socket
import ssl
import threading

import pytest
import requests

from conftest import basic_config, free_port, wait_for, wait_port
from tls_helpers import PKI

ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC = 0x15, 0x17, 0x14
TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
VERSIONS = [pytest.param(TLS13, id="TLS 1.3"), pytest.param(TLS12, id="TLS 1.2")]
# In TLS 1.3 an alert is encrypted like any other record, as application
# data; in TLS 1.2 it keeps its own record type (and is encrypted too).
ALERT_RECORD = {TLS13: APPLICATION_DATA, TLS12: ALERT}
# Longer than any record may be: 2^14 + 2048 bytes of ciphertext (TLS 1.2),
# 2^14 + 256 (TLS 1.3).
TOO_LONG = 2**14 + 2048 + 1


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.server_ca = p.ca("server-ca", "sluice test server CA")
    p.a = p.issue("a", p.server_ca, "a.test", dns=["a.test"])
    return p


def tls_config(port, upstream, pki):
    conf = basic_config(port, {"app": [upstream]})
    conf["listen"] = [
        {"address": f"127.0.0.1:{port}",
         "tls": {"certificates": [{"cert": pki.a.path, "key": pki.a.key_path}]}}
    ]
    return conf


@pytest.fixture
def https(sluice_factory, origin, pki):
    """sluice with a TLS listener in front of the origin: (sluice, port)."""
    port = free_port()
    return sluice_factory(tls_config(port, origin.address, pki)), port


class RecordClient:
    """One TLS connection whose records the test reads and writes itself."""

    def __init__(self, port, pki, version, rcvbuf=None, timeout=10.0):
        ctx = ssl.create_default_context(cafile=pki.server_ca.path)
        ctx.minimum_version = ctx.maximum_version = version
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="a.test")
        self.wire = bytearray()  # read off the socket, not yet a whole record
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                record = self.record()
                if record is None:
                    raise EOFError("the server closed the connection during the handshake")
                self.incoming.write(record)
        self.flush()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def encrypt(self, plaintext):
        """The ciphertext records the client would send for plaintext (not sent)."""
        self.tls.write(plaintext)
        return self.outgoing.read()

    def record(self):
        """The next whole record off the wire (header included), or None when
        the server closed the connection (FIN or reset)."""
        while True:
            if len(self.wire) >= 5:
                n = 5 + int.from_bytes(self.wire[3:5], "big")
                if len(self.wire) >= n:
                    record = bytes(self.wire[:n])
                    del self.wire[:n]
                    return record
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.wire += data

    def decrypt(self, record):
        """Plaintext from one record (b"" for a session ticket and such);
        ssl.SSLError when the record is an alert."""
        self.incoming.write(record)
        out = bytearray()
        while True:
            try:
                data = self.tls.read(1 << 20)
            except ssl.SSLWantReadError:
                return bytes(out)
            if not data:
                return bytes(out)
            out += data

    def get(self, path="/"):
        """Send GET path and read its response (framed by Content-Length):
        (head, body, the application data records it came in)."""
        self.tls.write(f"GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
        self.flush()
        plain, records = bytearray(), 0
        while True:
            end = plain.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(plain[: end + 4])
                length = int(
                    next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                         if line.lower().startswith(b"content-length:"))
                )
                if len(plain) >= end + 4 + length:
                    return head, bytes(plain[end + 4:]), records
            record = self.record()
            assert record is not None, "the server closed the connection mid-response"
            records += record[0] == APPLICATION_DATA
            plain += self.decrypt(record)

    def until_close(self):
        """Every record the server sends until it closes the connection."""
        records = []
        while (record := self.record()) is not None:
            records.append(record)
        return records


def alert_of(client, records):
    """The alert the server's last records carry, as OpenSSL names it."""
    with pytest.raises(ssl.SSLError) as e:
        for record in records:
            client.decrypt(record)
    return str(e.value).lower()


def flipped(record):
    """The record with one bit of its ciphertext changed (in the last byte,
    which is in the AEAD tag)."""
    b = bytearray(record)
    b[-1] ^= 0x01
    return bytes(b)


def assert_serving(port, pki):
    with RecordClient(port, pki, TLS13) as c:
        head, _, _ = c.get("/")
        assert head.startswith(b"HTTP/1.1 200 ")


# -- fatal alerts -------------------------------------------------------------------


def bad_mac_gets_an_alert_before_the_close(https, pki, version):
    s, port = https
    with RecordClient(port, pki, version) as c:
        head, body, _ = c.get("/")
        assert head.startswith(b"HTTP/1.1 200 ") and body == b"Hello, world!"
        record = c.encrypt(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert record[0] == APPLICATION_DATA and record[1:3] == b"\x03\x03"
        c.sock.sendall(flipped(record))
        records = c.until_close()
        assert records, "the connection closed with no alert"
        assert records[-1][0] == ALERT_RECORD[version], records
        assert "bad record mac" in alert_of(c, records)
    assert "TLS error from the client" in s.error_log()
    assert_serving(port, pki)


def test_a_tls13_record_with_a_bad_mac_gets_an_alert_before_the_close(https, pki):
    bad_mac_gets_an_alert_before_the_close(https, pki, TLS13)


def test_a_tls12_record_with_a_bad_mac_gets_an_alert_before_the_close(https, pki):
    bad_mac_gets_an_alert_before_the_close(https, pki, TLS12)


def test_a_bad_mac_on_the_first_record_after_the_handshake_gets_an_alert(https, pki):
    _, port = https
    with RecordClient(port, pki, TLS13) as c:
        c.sock.sendall(flipped(c.encrypt(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")))
        records = c.until_close()
        assert records and records[-1][0] == APPLICATION_DATA, records
        assert "bad record mac" in alert_of(c, records)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_oversized_record_gets_a_record_overflow_alert_before_the_close(
    https, pki, version
):
    _, port = https
    with RecordClient(port, pki, version) as c:
        assert c.get("/")[0].startswith(b"HTTP/1.1 200 ")
        # The whole record is sent: the server reads its header and gives up,
        # and the rest it has not read must not turn the close into a reset
        # that destroys the alert.
        c.sock.sendall(b"\x17\x03\x03" + TOO_LONG.to_bytes(2, "big") + os.urandom(TOO_LONG))
        records = c.until_close()
        assert records and records[-1][0] == ALERT_RECORD[version], records
        assert "record overflow" in alert_of(c, records)
    assert_serving(port, pki)


def test_a_change_cipher_spec_after_the_tls13_handshake_gets_an_alert(https, pki):
    _, port = https
    with RecordClient(port, pki, TLS13) as c:
        assert c.get("/")[0].startswith(b"HTTP/1.1 200 ")
        c.sock.sendall(bytes([CHANGE_CIPHER_SPEC, 3, 3, 0, 1, 1]))
        records = c.until_close()
        assert records and records[-1][0] == APPLICATION_DATA, records
        assert "unexpected message" in alert_of(c, records)


def test_an_alert_waits_for_the_response_bytes_queued_before_it(https, pki):
    """A TLS error while a large response is still being written: the alert
    follows the records already encrypted (a close would cancel them and
    it), and nothing comes after it."""
    _, port = https
    with RecordClient(port, pki, TLS13, rcvbuf=65536) as c:
        c.tls.write(b"GET /?size=100000000 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        c.flush()
        # The client reads nothing until its receive buffer is full: the
        # gateway's writes are held back in its socket and libuv's queue.
        wait_for(lambda: len(c.sock.recv(1 << 20, socket.MSG_PEEK)) >= 32768,
                 what="the response filling the client's receive buffer")
        c.sock.sendall(flipped(c.encrypt(b"GET / HTTP/1.1\r\n\r\n")))
        plain, error = 0, None
        while (record := c.record()) is not None:
            assert error is None, "a record after the alert"
            try:
                plain += len(c.decrypt(record))
            except ssl.SSLError as e:
                error = str(e).lower()
        assert error is not None and "bad record mac" in error
        assert 32768 <= plain < 100_000_000
    assert_serving(port, pki)


def open_connections(admin_port):
    """sluice_connections{state="open"} from the admin API's /metrics."""
    text = requests.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).text
    return int(re.search(r'^sluice_connections\{state="open"\} (\d+)$', text, re.M).group(1))


def test_a_client_that_reads_no_more_after_its_bad_record_is_closed_in_the_end(
    sluice_factory, origin, pki
):
    """The alert is stuck behind response bytes the client never reads: the
    connection is closed anyway when the graceful close's deadline ends."""
    port, admin = free_port(), free_port()
    conf = tls_config(port, origin.address, pki)
    conf["admin"] = {"address": f"127.0.0.1:{admin}"}
    sluice_factory(conf)
    wait_port(admin)
    with RecordClient(port, pki, TLS13, rcvbuf=65536) as c:
        c.tls.write(b"GET /?size=100000000 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        c.flush()
        wait_for(lambda: len(c.sock.recv(1 << 20, socket.MSG_PEEK)) >= 32768,
                 what="the response filling the client's receive buffer")
        assert open_connections(admin) == 1
        c.sock.sendall(flipped(c.encrypt(b"GET / HTTP/1.1\r\n\r\n")))
        wait_for(lambda: open_connections(admin) == 0, timeout=30,
                 what="the gateway closing the connection")
    assert_serving(port, pki)


# -- records of a proxied response ----------------------------------------------------


class OneWriteUpstream:
    """An HTTP/1.1 upstream that answers each request with its head and body
    in one send(), so the gateway reads them in one go; with split, the body
    waits until the test sets body_go (so the head must travel alone)."""

    def __init__(self, body, split=False):
        self.body, self.split = body, split
        self.body_go = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # two sends, two segments
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n" % len(self.body))
        buf = b""
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf.split(b"\r\n\r\n", 1)[1]
                if self.split:
                    c.sendall(head)
                    self.body_go.wait(10)
                    c.sendall(self.body)
                else:
                    c.sendall(head + self.body)

    def close(self):
        self.sock.close()


@pytest.fixture
def upstream_factory():
    made = []

    def make(*args, **kw):
        u = OneWriteUpstream(*args, **kw)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("size", [13, 5000])
def test_a_small_proxied_response_reaches_the_client_in_one_tls_record(
    sluice_factory, upstream_factory, pki, version, size
):
    up = upstream_factory(os.urandom(size))
    port = free_port()
    sluice_factory(tls_config(port, up.address, pki))
    with RecordClient(port, pki, version) as c:
        c.get("/")  # the TLS 1.3 session tickets come along with the first response
        head, body, records = c.get("/")
        assert head.startswith(b"HTTP/1.1 200 ") and body == up.body
        assert records == 1


def test_a_head_and_a_body_the_upstream_sends_apart_reach_the_client_in_one_record(
    sluice_factory, upstream_factory, pki
):
    """Head and body in two sends, back to back: the gateway mostly reads the
    head alone, and holds it (at most a millisecond) for the body so both go
    out in one TLS record. Nothing here is timed; the count says how often."""
    up = upstream_factory(b"y" * 100, split=True)
    up.body_go.set()
    port = free_port()
    sluice_factory(tls_config(port, up.address, pki))
    with RecordClient(port, pki, TLS13) as c:
        c.get("/")
        counts = [c.get("/")[2] for _ in range(50)]
    print(f"records per response over 50 requests: {counts.count(1)} x 1, "
          f"{len(counts) - counts.count(1)} x more")
    assert counts.count(1) >= 40, counts


def test_a_response_head_is_not_held_back_for_a_body_that_comes_later(
    sluice_factory, upstream_factory, pki
):
    """Only bytes that arrived together are put together: a head the
    upstream sends alone goes to the client at once, in a record of its own."""
    up = upstream_factory(b"x" * 100, split=True)
    port = free_port()
    sluice_factory(tls_config(port, up.address, pki))
    with RecordClient(port, pki, TLS13) as c:
        up.body_go.set()
        c.get("/")
        up.body_go.clear()
        c.tls.write(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        c.flush()
        plain = b""
        while b"\r\n\r\n" not in plain:
            record = c.record()
            assert record is not None
            plain += c.decrypt(record)
        assert plain.endswith(b"\r\n\r\n"), "the head came with body bytes"
        up.body_go.set()
        record = c.record()
        assert c.decrypt(record) == up.body
