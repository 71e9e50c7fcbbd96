"""TLS end to end: termination with SNI, protocol versions, session
resumption, client certificates (mTLS), certificate errors in `sluice -t`,
HTTPS upstreams with verification, SNI and connection reuse, hostile and
broken handshakes, and large bodies through TLS.

Every certificate is made here, in the test's temporary directory, with
python-cryptography (ECDSA P-256). Handshakes are driven by `openssl
s_client` where the issue names it, by Python's ssl module elsewhere, and by
curl for the large transfers (it reads and writes at the same time).
"""

import datetime
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import basic_config, check_config, free_port, is_closed, wait_for

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


def served_certificate(out):
    """The DER of the first certificate s_client printed."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert m, f"no certificate in s_client output:\n{out}"
    return x509.load_pem_x509_certificate(m.group(0).encode()).public_bytes(
        serialization.Encoding.DER
    )


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


# -- SNI and certificates -----------------------------------------------------------


@pytest.mark.parametrize("name,which", [("a.test", "a"), ("www.a.test", "a"), ("b.test", "b")])
def test_each_server_name_gets_its_own_certificate(https, pki, name, which):
    _, port, _ = https
    rc, out = s_client(port, "-servername", name)
    assert rc == 0, out
    assert served_certificate(out) == getattr(pki, which).der


def test_an_unknown_server_name_gets_the_first_certificate(https, pki):
    _, port, _ = https
    rc, out = s_client(port, "-servername", "unknown.test")
    assert rc == 0, out
    assert served_certificate(out) == pki.a.der


def test_a_client_sending_no_server_name_gets_the_first_certificate(https, pki):
    _, port, _ = https
    rc, out = s_client(port, "-noservername")
    assert rc == 0, out
    assert served_certificate(out) == pki.a.der


def test_the_second_name_verifies_and_is_proxied(https, pki):
    _, port, _ = https
    with HttpsClient(port, client_context(pki), "b.test") as c:
        status, _, body = c.request("GET", "/headers")
    assert status == 200
    assert values(upstream_headers(body), "X-Forwarded-Host") == ["b.test"]


def test_a_wildcard_covers_exactly_one_label(sluice_factory, origin, pki):
    port = free_port()
    sluice_factory(https_config(port, origin.address, [pki.b, pki.a]))  # b is the default
    for name, which in (("www.a.test", "a"), ("a.test", "a"), ("x.y.a.test", "b"),
                        ("xa.test", "b")):
        rc, out = s_client(port, "-servername", name)
        assert rc == 0, out
        assert served_certificate(out) == getattr(pki, which).der, name


# -- protocol versions --------------------------------------------------------------


def test_tls_1_1_is_refused(https):
    _, port, _ = https
    # OpenSSL 3 clients only offer TLS 1.1 at security level 0.
    rc, out = s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "a.test")
    assert rc != 0, out
    # The server said no (not the client refusing to try).
    assert "alert protocol version" in out, out


def test_tls_1_3_works(https):
    _, port, _ = https
    rc, out = s_client(
        port, "-tls1_3", "-servername", "a.test", "-ign_eof",
        input=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    assert rc == 0, out
    assert "New, TLSv1.3" in out, out
    assert "HTTP/1.1 200" in out, out


def test_tls_1_2_works(https, pki):
    _, port, _ = https
    with HttpsClient(port, client_context(pki, version=ssl.TLSVersion.TLSv1_2)) as c:
        assert c.sock.version() == "TLSv1.2"
        status, _, body = c.request("GET", "/")
    assert (status, body) == (200, b"Hello, world!")


def test_min_version_1_3_refuses_tls_1_2(sluice_factory, origin, pki):
    port = free_port()
    sluice_factory(https_config(port, origin.address, [pki.a], min_version="1.3"))
    assert handshake_fails(port, client_context(pki, version=ssl.TLSVersion.TLSv1_2))
    rc, out = s_client(port, "-tls1_2", "-servername", "a.test")
    assert rc != 0 and "alert protocol version" in out, out
    with HttpsClient(port, client_context(pki, version=ssl.TLSVersion.TLSv1_3)) as c:
        assert c.request("GET", "/")[0] == 200


# What testssl holds against the test PKI itself rather than against sluice:
# a CA nobody trusts, and no CRL or OCSP address in the certificate.
TEST_CERTIFICATE_FINDINGS = {"cert_chain_of_trust", "cert_revocation"}


def test_testssl_finds_nothing_high_or_critical_but_the_test_certificate(
    sluice_factory, origin, pki, tmp_path
):
    year = pki.issue("year", pki.server_ca, "a.test", dns=["a.test"], days=(-1, 365))
    port = free_port()
    sluice_factory(https_config(port, origin.address, [year]))
    report = tmp_path / "testssl.json"
    r = subprocess.run(
        ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
         "--ip", "127.0.0.1", "--jsonfile", str(report), f"a.test:{port}"],
        capture_output=True, text=True, timeout=170,
    )
    findings = {f["id"]: f for f in json.loads(report.read_text())}
    # It really looked: protocols and cipher order were tested.
    got = {k: findings[k]["finding"] for k in ("SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")}
    assert got["SSLv3"] == got["TLS1"] == got["TLS1_1"] == "not offered", (got, r.stdout[-3000:])
    assert got["TLS1_2"] == "offered" and got["TLS1_3"].startswith("offered"), got
    assert findings["cipher_order"]["finding"] == "server"
    severe = {k: f["finding"] for k, f in findings.items()
              if f["severity"] in ("HIGH", "CRITICAL") and k not in TEST_CERTIFICATE_FINDINGS}
    assert severe == {}, r.stdout[-3000:]


def test_http_1_1_is_chosen_by_alpn(https, pki):
    _, port, _ = https
    with HttpsClient(port, client_context(pki, alpn=["h2", "http/1.1"])) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert c.request("GET", "/")[0] == 200


# -- the request upstream ----------------------------------------------------------


def test_a_request_over_https_reaches_the_origin_with_x_forwarded_proto_https(https, pki):
    _, port, _ = https
    with HttpsClient(port, client_context(pki)) as c:
        status, _, body = c.request("GET", "/headers", {"X-Forwarded-Proto": "http"})
        assert status == 200
        hs = upstream_headers(body)
        assert values(hs, "X-Forwarded-Proto") == ["https"]
        # keep-alive over the same TLS connection
        for _ in range(5):
            assert c.request("GET", "/")[:1] == (200,)


def test_a_client_sent_x_client_cert_subject_is_stripped_without_mtls(https, pki):
    _, port, _ = https
    with HttpsClient(port, client_context(pki)) as c:
        status, _, body = c.request(
            "GET", "/headers", {"X-Client-Cert-Subject": "CN=admin,O=Forged"}
        )
    assert status == 200
    assert values(upstream_headers(body), "X-Client-Cert-Subject") == []


# -- session resumption --------------------------------------------------------------


def test_tls_1_2_sessions_are_reused_on_reconnect(https):
    _, port, _ = https
    rc, out = s_client(port, "-tls1_2", "-reconnect", "-servername", "a.test")
    assert rc == 0, out
    assert out.count("New, TLSv1.2") == 1, out
    assert out.count("Reused, TLSv1.2") == 5, out


def test_a_tls_1_2_session_id_is_resumed_after_its_connection_closed(https, tmp_path):
    """Clients without tickets resume by session id from the server's cache,
    typically after the previous connection has ended."""
    _, port, _ = https
    sess = tmp_path / "tls12.sess"
    args = ["-tls1_2", "-no_ticket", "-servername", "a.test"]
    rc, out = s_client(port, *args, "-sess_out", str(sess))
    assert rc == 0 and "New, TLSv1.2" in out, out
    for _ in range(3):
        rc, out = s_client(port, *args, "-sess_in", str(sess))
        assert rc == 0, out
        assert "Reused, TLSv1.2" in out, out


def test_a_saved_tls_1_3_session_is_resumed(https, tmp_path):
    _, port, _ = https
    sess = tmp_path / "tls13.sess"
    req = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    # Reading the response until the server closes means the tickets, sent
    # right after the handshake, have been read and saved.
    rc, out = s_client(port, "-tls1_3", "-servername", "a.test", "-ign_eof",
                       "-sess_out", str(sess), input=req)
    assert rc == 0 and "HTTP/1.1 200" in out, out
    rc, out = s_client(port, "-tls1_3", "-servername", "a.test", "-ign_eof",
                       "-sess_in", str(sess), input=req)
    assert rc == 0, out
    assert "Reused, TLSv1.3" in out, out
    assert "HTTP/1.1 200" in out, out


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
@pytest.mark.parametrize("name", ["a.test", "b.test"])
def test_a_session_is_resumed_by_a_python_client(https, pki, version, name):
    _, port, _ = https
    ctx = client_context(pki, version=version)
    with HttpsClient(port, ctx, name) as c:
        assert c.request("GET", "/")[0] == 200
        session = c.sock.session
    with HttpsClient(port, ctx, name, session=session) as c:
        assert c.sock.session_reused
        assert c.request("GET", "/")[0] == 200


def test_session_resumption_false_makes_every_handshake_full(sluice_factory, origin, pki):
    port = free_port()
    sluice_factory(https_config(port, origin.address, [pki.a], session_resumption=False))
    rc, out = s_client(port, "-tls1_2", "-reconnect", "-servername", "a.test")
    assert rc == 0, out
    assert out.count("Reused,") == 0 and out.count("New, TLSv1.2") == 6, out
    ctx = client_context(pki, version=ssl.TLSVersion.TLSv1_3)
    with HttpsClient(port, ctx) as c:
        assert c.request("GET", "/")[0] == 200
        session = c.sock.session
    with HttpsClient(port, ctx, session=session) as c:
        assert not c.sock.session_reused
        assert c.request("GET", "/")[0] == 200


# -- client certificates (mTLS) ------------------------------------------------------


@pytest.fixture
def mtls(sluice_factory, origin, pki):
    port = free_port()
    s = sluice_factory(https_config(port, origin.address, [pki.a], client_ca=pki.client_ca.path))
    return s, port, origin


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
def test_a_client_without_a_certificate_is_refused_when_client_ca_is_set(
    mtls, pki, origin, version
):
    _, port, _ = mtls
    assert handshake_fails(port, client_context(pki, version=version))
    assert origin.stats()["requests"] == 1  # only our /stats call


def test_a_client_certificate_from_an_untrusted_ca_is_refused(mtls, pki, origin):
    _, port, _ = mtls
    assert handshake_fails(port, client_context(pki, cert=pki.rogue_client))
    assert origin.stats()["requests"] == 1


def test_s_client_without_a_certificate_is_refused(mtls):
    _, port, _ = mtls
    rc, out = s_client(
        port, "-servername", "a.test", "-ign_eof",
        input=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    assert "HTTP/1.1" not in out, out
    assert "alert certificate required" in out or "alert handshake failure" in out, out


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
def test_a_client_with_a_valid_certificate_gets_through_with_its_subject_upstream(
    mtls, pki, version
):
    _, port, _ = mtls
    with HttpsClient(port, client_context(pki, cert=pki.client, version=version)) as c:
        status, _, body = c.request("GET", "/headers")
    assert status == 200
    hs = upstream_headers(body)
    # RFC 2253: most specific first, the comma in O escaped.
    assert values(hs, "X-Client-Cert-Subject") == [r"CN=client one,O=Example\, Inc.,C=DE"]
    assert values(hs, "X-Client-Cert-Subject") == [pki.client.subject_rfc2253]
    assert values(hs, "X-Forwarded-Proto") == ["https"]


def test_a_client_sent_x_client_cert_subject_is_replaced_by_the_verified_one(mtls, pki):
    _, port, _ = mtls
    with HttpsClient(port, client_context(pki, cert=pki.client)) as c:
        status, _, body = c.request(
            "GET", "/headers",
            {"X-Client-Cert-Subject": "CN=admin", "x-client-cert-subject": "CN=root"},
        )
    assert status == 200
    assert values(upstream_headers(body), "X-Client-Cert-Subject") == [
        pki.client.subject_rfc2253
    ]


@pytest.mark.parametrize("underscores", ["drop", "allow"])
def test_an_underscore_twin_of_x_client_cert_subject_cannot_add_to_the_verified_one(
    sluice_factory, origin, pki, underscores
):
    # gunicorn folds '_' and '-' alike: with the twin forwarded, the app got
    # "CN=admin,CN=client one..." for a client whose certificate says only
    # the latter.
    port = free_port()
    conf = https_config(port, origin.address, [pki.a], client_ca=pki.client_ca.path)
    conf["headers_with_underscores"] = underscores
    sluice_factory(conf)
    with HttpsClient(port, client_context(pki, cert=pki.client)) as c:
        c.sock.sendall(b"GET /headers HTTP/1.1\r\nHost: a.test\r\n"
                       b"X_Client_Cert_Subject: CN=admin\r\n\r\n")
        r = http.client.HTTPResponse(c.sock)
        r.begin()
        hs = upstream_headers(r.read())
    assert r.status == 200
    assert values(hs, "X_Client_Cert_Subject") == []
    assert values(hs, "X-Client-Cert-Subject") == [pki.client.subject_rfc2253]
    assert "CN=admin" not in [v for _, v in hs]


def test_control_characters_in_a_client_subject_cannot_inject_headers(mtls, pki):
    _, port, _ = mtls
    with HttpsClient(port, client_context(pki, cert=pki.evil_client)) as c:
        status, _, body = c.request("GET", "/headers")
    assert status == 200
    hs = upstream_headers(body)
    assert values(hs, "X-Injected") == []
    (subject,) = values(hs, "X-Client-Cert-Subject")
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("CN=evil")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
def test_a_resumed_session_keeps_the_client_certificate_subject(mtls, pki, version):
    _, port, _ = mtls
    ctx = client_context(pki, cert=pki.client, version=version)
    with HttpsClient(port, ctx) as c:
        assert c.request("GET", "/")[0] == 200
        session = c.sock.session
    with HttpsClient(port, ctx, session=session) as c:
        assert c.sock.session_reused
        status, _, body = c.request("GET", "/headers")
    assert status == 200
    assert values(upstream_headers(body), "X-Client-Cert-Subject") == [
        pki.client.subject_rfc2253
    ]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
def test_a_session_from_a_listener_without_client_ca_cannot_skip_the_client_certificate(
    sluice_factory, origin, pki, version
):
    open_port, mtls_port = free_port(), free_port()
    sluice_factory(
        https_config(
            open_port, origin.address, [pki.a],
            extra_listen=[tls_listen(mtls_port, [pki.a], client_ca=pki.client_ca.path)],
        )
    )
    ctx = client_context(pki, version=version)  # no client certificate
    with HttpsClient(open_port, ctx) as c:
        assert c.request("GET", "/")[0] == 200
        session = c.sock.session
    # The session (ticket) from the open listener must not let a client
    # without a certificate into the listener that requires one.
    try:
        with HttpsClient(mtls_port, ctx, session=session) as c:
            reused = c.sock.session_reused
            status, _, body = c.request("GET", "/headers")
    except REFUSED:
        return
    pytest.fail(
        f"mTLS listener served a client without a certificate (session reused: {reused}): "
        f"{status} {body[:300]!r}"
    )


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
def test_a_session_verified_by_one_client_ca_is_not_accepted_by_a_listener_trusting_another(
    sluice_factory, origin, pki, version
):
    first, second = free_port(), free_port()
    sluice_factory(
        https_config(
            first, origin.address, [pki.a], client_ca=pki.client_ca.path,
            extra_listen=[tls_listen(second, [pki.a], client_ca=pki.other_ca.path)],
        )
    )
    ctx = client_context(pki, cert=pki.client, version=version)
    # the second listener does not trust the client's CA...
    assert handshake_fails(second, ctx)
    with HttpsClient(first, ctx) as c:
        assert c.request("GET", "/")[0] == 200
        session = c.sock.session
    # ...so a session from the first listener must not get it in either.
    try:
        with HttpsClient(second, ctx, session=session) as c:
            reused = c.sock.session_reused
            status, _, body = c.request("GET", "/headers")
    except REFUSED:
        return
    pytest.fail(
        f"a listener trusting another CA served the client (session reused: {reused}): "
        f"{status} {body[:400]!r}"
    )


def test_a_session_from_before_a_reload_that_added_client_ca_cannot_skip_the_certificate(
    https, pki
):
    s, port, origin = https
    ctx = client_context(pki, version=ssl.TLSVersion.TLSv1_3)
    with HttpsClient(port, ctx) as c:
        assert c.request("GET", "/")[0] == 200
        session = c.sock.session
    s.reload(https_config(port, origin.address, [pki.a, pki.b], client_ca=pki.client_ca.path))
    assert "configuration reloaded" in s.error_log()
    assert handshake_fails(port, ctx)
    try:
        with HttpsClient(port, ctx, session=session) as c:
            reused = c.sock.session_reused
            status, _, body = c.request("GET", "/headers")
    except REFUSED:
        return
    pytest.fail(
        f"after client_ca was added, an old session got in without a certificate "
        f"(session reused: {reused}): {status} {body[:300]!r}"
    )


# -- configuration checks -------------------------------------------------------------


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


def test_a_key_that_does_not_match_its_certificate_is_an_error_with_its_position(
    tmp_path, pki
):
    conf = https_config(free_port(), "127.0.0.1:9", [pki.a])
    conf["listen"][0]["tls"]["certificates"][0]["key"] = pki.b.key_path
    p = write_conf(tmp_path, conf)
    rc, out, err = check_config(p)
    text = out + err
    assert rc == 1, text
    line = conf_line_of(p, pki.b.key_path)
    m = re.search(rf"^{re.escape(str(p))}:(\d+):(\d+): error: .*", text, re.M)
    assert m, text
    assert int(m.group(1)) == line, text
    # OpenSSL says "key values mismatch"; tls.c says "does not match"
    assert "match" in m.group(0), text


@pytest.mark.parametrize("which", ["cert", "key"])
@pytest.mark.parametrize("problem", ["missing", "not-pem"])
def test_an_unreadable_certificate_or_key_is_an_error_with_its_position(
    tmp_path, pki, which, problem
):
    bad = tmp_path / f"bad.{which}"
    if problem == "not-pem":
        bad.write_text("this is not PEM\n")
    conf = https_config(free_port(), "127.0.0.1:9", [pki.a])
    conf["listen"][0]["tls"]["certificates"][0][which] = str(bad)
    p = write_conf(tmp_path, conf)
    rc, out, err = check_config(p)
    text = out + err
    assert rc == 1, text
    line = conf_line_of(p, str(bad))
    m = re.search(rf"^{re.escape(str(p))}:(\d+):(\d+): error: (.*)$", text, re.M)
    assert m, text
    assert int(m.group(1)) == line, text
    assert str(bad) in m.group(3), text


def test_an_unreadable_client_ca_is_an_error_with_its_position(tmp_path, pki):
    conf = https_config(free_port(), "127.0.0.1:9", [pki.a],
                        client_ca=str(tmp_path / "nope.crt"))
    p = write_conf(tmp_path, conf)
    rc, out, err = check_config(p)
    assert rc == 1, out + err
    assert re.search(rf"^{re.escape(str(p))}:\d+:\d+: error: .*nope\.crt", out + err, re.M), (
        out + err
    )


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


def test_an_expired_certificate_is_a_warning_not_an_error(tmp_path, pki):
    conf = https_config(free_port(), "127.0.0.1:9", [pki.a, pki.expired])
    p = write_conf(tmp_path, conf)
    rc, out, err = check_config(p)
    text = out + err
    assert rc == 0, text
    assert "warning" in text and "EXPIRED" in text, text
    line = conf_line_of(p, pki.expired.path)
    assert re.search(rf"^{re.escape(str(p))}:{line}:\d+: warning: .*EXPIRED", text, re.M), text
    assert "configuration ok" in text, text


def test_a_valid_tls_config_checks_ok(tmp_path, pki):
    conf = https_config(free_port(), "127.0.0.1:9", [pki.a, pki.b],
                        client_ca=pki.client_ca.path, min_version="1.3")
    conf["upstreams"]["app"]["tls"] = {"verify": True, "ca": pki.server_ca.path, "sni": "a.test"}
    p = write_conf(tmp_path, conf)
    rc, out, err = check_config(p)
    assert rc == 0, out + err
    assert "warning" not in out + err


def test_a_reload_serves_the_new_certificates(https, pki):
    s, port, origin = https
    with HttpsClient(port, client_context(pki)) as kept:
        assert kept.request("GET", "/")[0] == 200
        conf = https_config(port, origin.address, [pki.b, pki.a])
        s.reload(conf)
        assert "configuration reloaded" in s.error_log()
        rc, out = s_client(port, "-servername", "unknown.test")
        assert rc == 0 and served_certificate(out) == pki.b.der, out
        # the connection made before the reload carries on
        assert kept.request("GET", "/")[0] == 200


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


# -- bad input on a TLS port ----------------------------------------------------------


def client_hello(name="a.test"):
    """The bytes of a real ClientHello."""
    ctx = ssl.create_default_context()
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outg.read()


@pytest.fixture
def short_timeouts(sluice_factory, origin, pki):
    port = free_port()
    conf = https_config(port, origin.address, [pki.a])
    conf["timeouts"] = {"client_header": "1s"}
    s = sluice_factory(conf)
    return s, port


def still_serving(port, pki, kept):
    """The kept connection and a new one both get answers."""
    assert kept.request("GET", "/")[0] == 200
    with HttpsClient(port, client_context(pki)) as c:
        assert c.request("GET", "/")[0] == 200


def test_plain_http_to_a_tls_port_is_closed_cleanly(short_timeouts, pki):
    s, port = short_timeouts
    with HttpsClient(port, client_context(pki)) as kept:
        assert kept.request("GET", "/")[0] == 200
        with socket.create_connection(("127.0.0.1", port), timeout=10) as bad:
            bad.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert is_closed(bad, timeout=10)
        still_serving(port, pki, kept)
    assert s.proc.poll() is None


def test_garbage_bytes_to_a_tls_port_are_closed_cleanly(short_timeouts, pki):
    s, port = short_timeouts
    with HttpsClient(port, client_context(pki)) as kept:
        assert kept.request("GET", "/")[0] == 200
        for junk in (os.urandom(5000), b"\x16\x03\x01\xff\xff" + os.urandom(300),
                     b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as bad:
                bad.sendall(junk)
                assert is_closed(bad, timeout=10), junk[:16]
        still_serving(port, pki, kept)
    assert s.proc.poll() is None


def test_a_client_stalling_mid_handshake_is_closed_after_the_header_timeout(
    short_timeouts, pki
):
    s, port = short_timeouts
    hello = client_hello()
    with HttpsClient(port, client_context(pki)) as kept:
        assert kept.request("GET", "/")[0] == 200
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stall:
            stall.sendall(hello[: len(hello) // 2])
            # others are served while it stalls
            still_serving(port, pki, kept)
            # closed by timeouts.client_header (1s), well before 10s
            assert is_closed(stall, timeout=10)
        still_serving(port, pki, kept)
    assert s.proc.poll() is None


def test_a_client_stalling_after_connecting_is_closed_after_the_header_timeout(
    short_timeouts, pki
):
    _, port = short_timeouts
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        assert is_closed(idle, timeout=10)


def test_a_client_resetting_mid_handshake_does_not_disturb_others(short_timeouts, pki):
    s, port = short_timeouts
    hello = client_hello()
    with HttpsClient(port, client_context(pki)) as kept:
        assert kept.request("GET", "/")[0] == 200
        for cut in (len(hello) // 2, len(hello)):
            bad = socket.create_connection(("127.0.0.1", port), timeout=10)
            bad.sendall(hello[:cut])
            if cut == len(hello):
                bad.recv(1)  # the ServerHello is on its way
            bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            bad.close()  # RST
        still_serving(port, pki, kept)
    assert s.proc.poll() is None


def test_a_client_closing_without_close_notify_does_not_disturb_others(https, pki):
    s, port, _ = https
    with HttpsClient(port, client_context(pki)) as kept:
        assert kept.request("GET", "/")[0] == 200
        c = HttpsClient(port, client_context(pki))
        c.conn.sock.sendall(b"GET /?size=1000000 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        c.sock.recv(100)
        # a reset in the middle of the response, no close_notify
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        socket.socket.close(c.sock)
        still_serving(port, pki, kept)
    assert s.proc.poll() is None


# -- large bodies through TLS -----------------------------------------------------------


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


def curl_https(port, pki, path, *args):
    return subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", "60", "--cacert", pki.server_ca.path,
         "--resolve", f"a.test:{port}:127.0.0.1", *args, f"https://a.test:{port}{path}"],
        capture_output=True, timeout=90,
    )


def test_a_100_mb_download_over_tls_is_byte_exact(https, pki, tmp_path):
    _, port, _ = https
    size = 100 * 1000 * 1000 + 3
    out = tmp_path / "big.bin"
    r = curl_https(port, pki, f"/?size={size}", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size == size
    check_pattern(out, size)


def test_a_50_mb_upload_over_tls_is_echoed_byte_exact(sluice_factory, origin, pki, tmp_path):
    port = free_port()
    conf = https_config(port, origin.address, [pki.a])
    conf["limits"] = {"max_body_bytes": "64m"}
    sluice_factory(conf)
    size = 50 * 1000 * 1000 + 11
    src, out = tmp_path / "up.bin", tmp_path / "echo.bin"
    write_random(src, size)
    r = curl_https(port, pki, "/echo", "--data-binary", f"@{src}",
                   "-H", "Content-Type: application/octet-stream", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size == size
    assert digest(out) == digest(src)
