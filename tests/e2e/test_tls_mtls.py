"""Client certificates (mTLS) end to end: a listener with client_ca
refuses a client without a certificate or with one from another CA, and
sends the verified subject upstream in X-Client-Cert-Subject, which a
client can neither forge, add to through an underscore twin, nor inject
headers with; without client_ca the header is stripped. And an unreadable
client_ca in `sluice -t`.
"""

import http.client
import re
import ssl

import pytest

from conftest import check_config, free_port
from tls_helpers import (HttpsClient, client_context, handshake_fails, https_config, s_client,
                         upstream_headers, values, write_conf)


# -- without client_ca -------------------------------------------------------------


def test_a_client_sent_x_client_cert_subject_is_stripped_without_mtls(https, pki):
    _, port, _ = https
    with HttpsClient(port, client_context(pki)) as c:
        status, _, body = c.request(
            "GET", "/headers", {"X-Client-Cert-Subject": "CN=admin,O=Forged"}
        )
    assert status == 200
    assert values(upstream_headers(body), "X-Client-Cert-Subject") == []


# -- client certificates (mTLS) ------------------------------------------------------


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


# -- configuration checks -------------------------------------------------------------


def test_an_unreadable_client_ca_is_an_error_with_its_position(tmp_path, pki):
    conf = https_config(free_port(), "127.0.0.1:9", [pki.a],
                        client_ca=str(tmp_path / "nope.crt"))
    p = write_conf(tmp_path, conf)
    rc, out, err = check_config(p)
    assert rc == 1, out + err
    assert re.search(rf"^{re.escape(str(p))}:\d+:\d+: error: .*nope\.crt", out + err, re.M), (
        out + err
    )
