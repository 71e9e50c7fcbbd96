"""What the TLS end-to-end tests share (test_tls_server.py,
test_tls_upstream.py, test_tls_resumption.py, test_tls_mtls.py, and the PKI
for test_tls_alerts.py): a small PKI, TLS listener configs, the fixtures
`pki`, `https` and `mtls`, a keep-alive HTTPS client, `openssl s_client`,
and the helpers for large bodies and for `sluice -t` output.

Every certificate is made here, in the test's temporary directory, with
python-cryptography (ECDSA P-256). conftest.py imports the fixtures, so
every test file has them; `pki` is module-scoped: each test file that uses
it makes its own PKI once.
"""

import datetime
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import basic_config, free_port

PATTERN = bytes(range(ord("a"), ord("z") + 1))
# s_client speaks from its own defaults; no system config may change them.
OPENSSL_ENV = dict(os.environ, OPENSSL_CONF="/dev/null")


# -- certificates -------------------------------------------------------------


class Cert:
    def __init__(self, cert, key, path, key_path):
        self.cert, self.key = cert, key
        self.path, self.key_path = str(path), str(key_path)

    @property
    def der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def subject_rfc2253(self):
        return self.cert.subject.rfc4514_string()


class PKI:
    """A small PKI written as PEM files into one directory."""

    def __init__(self, directory):
        self.dir = directory
        self.now = datetime.datetime.now(datetime.timezone.utc)

    def _write(self, name, cert, key):
        cp, kp = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kp.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Cert(cert, key, cp, kp)

    def ca(self, name, cn):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(days=1))
            .not_valid_after(self.now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return self._write(name, cert, key)

    def issue(self, name, ca, subject, dns=(), client=False, days=(-1, 30)):
        """A leaf certificate signed by ca; days = (not before, not after)
        relative to now."""
        key = ec.generate_private_key(ec.SECP256R1())
        if isinstance(subject, str):
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now + datetime.timedelta(days=days[0]))
            .not_valid_after(self.now + datetime.timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
            )
        )
        if dns:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
            )
        return self._write(name, b.sign(ca.key, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.server_ca = p.ca("server-ca", "sluice test server CA")
    p.other_ca = p.ca("other-ca", "sluice test other CA")
    p.client_ca = p.ca("client-ca", "sluice test client CA")
    p.a = p.issue("a", p.server_ca, "a.test", dns=["a.test", "*.a.test"])
    p.b = p.issue("b", p.server_ca, "b.test", dns=["b.test"])
    # Signed by the other CA: only a client trusting that CA accepts it.
    p.c = p.issue("c", p.other_ca, "c.test", dns=["c.test"])
    p.expired = p.issue("expired", p.server_ca, "old.test", dns=["old.test"], days=(-30, -2))
    p.client_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "client one"),
        ]
    )
    p.client = p.issue("client", p.client_ca, p.client_subject, client=True)
    # A client certificate from a CA the gateway does not trust.
    p.rogue_client = p.issue("rogue-client", p.other_ca, "rogue", client=True)
    p.evil_client = p.issue(
        "evil-client", p.client_ca, "evil\r\nX-Injected: yes", client=True
    )
    return p


# -- configs and processes ------------------------------------------------------


def tls_listen(port, certs, **tls):
    """A TLS listener: certificates (several = SNI, the first is the default)
    and any other tls keys (min_version, client_ca, session_resumption)."""
    certificates = [{"cert": c.path, "key": c.key_path} for c in certs]
    return {"address": f"127.0.0.1:{port}", "tls": {"certificates": certificates, **tls}}


def https_config(port, origin_address, certs, extra_listen=(), **tls):
    conf = basic_config(port, {"app": [origin_address]})
    conf["listen"] = [tls_listen(port, certs, **tls), *extra_listen]
    return conf


@pytest.fixture
def https(sluice_factory, origin, pki):
    """sluice with a TLS listener (a.test first, then b.test) in front of
    one origin: (sluice, port, origin)."""
    port = free_port()
    s = sluice_factory(https_config(port, origin.address, [pki.a, pki.b]))
    return s, port, origin


@pytest.fixture
def mtls(sluice_factory, origin, pki):
    port = free_port()
    s = sluice_factory(https_config(port, origin.address, [pki.a], client_ca=pki.client_ca.path))
    return s, port, origin


def client_context(pki, cert=None, version=None, alpn=None):
    ctx = ssl.create_default_context(cafile=pki.server_ca.path)
    if cert is not None:
        ctx.load_cert_chain(cert.path, cert.key_path)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class HttpsClient:
    """One TLS connection to 127.0.0.1:port speaking HTTP/1.1 (keep-alive)."""

    def __init__(self, port, ctx, name="a.test", session=None, timeout=10.0):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=name, session=session)
        except BaseException:
            raw.close()
            raise
        self.conn = http.client.HTTPConnection(name, timeout=timeout)
        self.conn.sock = self.sock

    def request(self, method="GET", path="/", headers=None, body=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, r.headers, r.read()

    def close(self):
        self.conn.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def upstream_headers(body):
    """The request headers the origin's /headers saw: [(name, value)]."""
    return [tuple(h) for h in json.loads(body)["headers"]]


def values(headers, name):
    return [v for n, v in headers if n.lower() == name.lower()]


def s_client(port, *args, input=b"", timeout=30):
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
        input=input, capture_output=True, timeout=timeout, env=OPENSSL_ENV,
    )
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


REFUSED = (ssl.SSLError, ConnectionError, http.client.HTTPException)


def handshake_fails(port, ctx, name="a.test"):
    """True when the server refuses the client: the handshake fails, or (TLS
    1.3, where the client finishes first) the first request gets no
    response. A server that just hangs is not a refusal (the timeout
    propagates)."""
    try:
        with HttpsClient(port, ctx, name) as c:
            c.request("GET", "/")
    except REFUSED:
        return True
    return False


# -- configuration checks ----------------------------------------------------------


def write_conf(tmp_path, conf, name="check.yaml"):
    import yaml

    p = tmp_path / name
    p.write_text(yaml.safe_dump(conf, sort_keys=False))
    return p


def conf_line_of(path, needle):
    """1-based line of the first line containing needle."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


# -- large bodies ------------------------------------------------------------------


def check_pattern(path, size):
    """The file holds the origin's generated body: byte i is 'a' + i % 26."""
    block = PATTERN * ((1 << 20) // 26 + 2)
    off = 0
    with open(path, "rb") as f:
        while True:
            d = f.read(1 << 20)
            if not d:
                break
            k = off % 26
            if d != block[k : k + len(d)]:
                bad = next(i for i in range(len(d)) if d[i] != block[k + i])
                raise AssertionError(f"byte {off + bad} differs")
            off += len(d)
    assert off == size


def write_random(path, size):
    """size bytes that never repeat at a short period."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            d = (i.to_bytes(8, "big") + block)[: min(left, 1 << 20)]
            f.write(d)
            left -= len(d)
            i += 1


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for d in iter(lambda: f.read(1 << 20), b""):
            h.update(d)
    return h.hexdigest()
