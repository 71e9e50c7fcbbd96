"""TLS session resumption end to end: TLS 1.2 session ids and tickets,
TLS 1.3 tickets, resumption turned off; and what a resumed session keeps
(the client certificate's subject) and may not skip: a client certificate
that the listener requires, whether the session comes from another listener
or from before a reload that added client_ca.
"""

import ssl

import pytest

from conftest import free_port
from tls_helpers import (REFUSED, HttpsClient, client_context, handshake_fails, https_config,
                         s_client, tls_listen, upstream_headers, values)


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


# -- resumption and client certificates --------------------------------------------


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
