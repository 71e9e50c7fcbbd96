"""TLS termination end to end: SNI, protocol versions and ALPN, what
testssl finds, certificate errors in `sluice -t` and certificates swapped
by a reload, hostile and broken handshakes, and large bodies through TLS.

Certificates come from tls_helpers.PKI. Handshakes are driven by `openssl
s_client` where the issue names it, by Python's ssl module elsewhere, and by
curl for the large transfers (it reads and writes at the same time).
"""

import json
import os
import re
import socket
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import check_config, free_port, is_closed
from tls_helpers import (HttpsClient, check_pattern, client_context, conf_line_of, digest,
                         handshake_fails, https_config, s_client, upstream_headers, values,
                         write_conf, write_random)


def served_certificate(out):
    """The DER of the first certificate s_client printed."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert m, f"no certificate in s_client output:\n{out}"
    return x509.load_pem_x509_certificate(m.group(0).encode()).public_bytes(
        serialization.Encoding.DER
    )


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


# -- configuration checks -------------------------------------------------------------


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
