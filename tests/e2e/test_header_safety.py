"""Header safety: a client cannot put words in the gateway's mouth.

Underscore twins of the headers the gateway sets or strips
(X_Client_Cert_Subject for X-Client-Cert-Subject: WSGI, CGI and PHP backends
fold '_' and '-' alike), request trailers carrying gateway-owned fields,
every Connection line's options, exactly one X-Request-Id, and Via. Each
case sends the exact bytes that showed the problem, and looks at exactly what
the upstream received: the origin's /headers answer, or the raw bytes a
recording upstream read.
"""

import json
import re
import pytest

from conftest import AnsweringUpstream, RawClient, basic_config, check_config, free_port

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# Every name the gateway sets or strips on a plain listener with request_id on,
# and a spelling of each that folds to it.
OWNED_TWINS = [
    "X_Client_Cert_Subject",
    "x_client_cert_subject",
    "X_Forwarded_For",
    "X_FORWARDED_PROTO",
    "X-Forwarded_Host",
    "X_Request_Id",
    "Content_Length",
    "Transfer_Encoding",
    "Keep_Alive",
    "Proxy_Connection",
]


@pytest.fixture
def answering():
    up = AnsweringUpstream()
    yield up
    up.close()


def gateway_for(sluice_factory, upstream_address, **extra):
    port = free_port()
    return sluice_factory(basic_config(port, {"app": [upstream_address]}, **extra))


def head_lines(raw):
    """The header lines of a raw request, as (name, value)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return [(n, v.strip()) for n, _, v in (line.partition(":") for line in head)]


def trailer_block(raw):
    """What follows the last chunk (0\\r\\n) of a chunked request: the
    trailer lines, as bytes."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    i = body.rfind(b"0\r\n")
    return body[i + 3 : -2]


def exchange(port, data):
    """Send one request, read one response head and its Content-Length body."""
    with RawClient(port) as c:
        c.send(data)
        head = c.until(b"\r\n\r\n").decode("latin-1")
        m = re.search(r"\r\ncontent-length: *(\d+)", head.lower())
        body = c.exact(int(m.group(1))) if m else b""
        return head, body


def upstream_saw(sluice, data):
    """Send data to the origin's /headers through sluice; the header list it
    received."""
    head, body = exchange(sluice.listen_ports()[0], data)
    assert head.startswith("HTTP/1.1 200"), head
    return [tuple(h) for h in json.loads(body)["headers"]]


def names(headers):
    return [n for n, _ in headers]


def values(headers, name):
    return [v for n, v in headers if n.lower() == name.lower()]


# -- underscore twins ----------------------------------------------------------------


def test_an_underscore_twin_of_x_client_cert_subject_is_dropped_by_default(gateway):
    sluice, _ = gateway
    hs = upstream_saw(
        sluice,
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nX_Client_Cert_Subject: CN=admin\r\n"
        b"X_Forwarded_For: 10.0.0.1\r\nX_Request_Id: forged\r\nX_Custom: 1\r\n\r\n",
    )
    assert not [n for n in names(hs) if "_" in n], hs
    assert values(hs, "X-Client-Cert-Subject") == []
    assert values(hs, "X-Forwarded-For") == ["127.0.0.1"]
    assert len(values(hs, "X-Request-Id")) == 1
    assert values(hs, "X-Request-Id") != ["forged"]


@pytest.mark.parametrize("twin", OWNED_TWINS)
def test_a_twin_of_a_gateway_owned_header_is_removed_even_when_underscores_are_allowed(
    sluice_factory, origin, twin
):
    s = gateway_for(sluice_factory, origin.address, headers_with_underscores="allow")
    hs = upstream_saw(
        s,
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\n%s: CN=admin\r\nX_Custom_Thing: kept\r\n\r\n"
        % twin.encode(),
    )
    assert twin not in names(hs), hs
    assert values(hs, "X_Custom_Thing") == ["kept"]  # allow: an unowned name goes through
    assert "CN=admin" not in [v for _, v in hs], hs


def test_headers_with_underscores_reject_answers_400_and_sends_nothing_upstream(
    sluice_factory, answering
):
    s = gateway_for(sluice_factory, answering.address, headers_with_underscores="reject")
    head, body = exchange(
        s.listen_ports()[0], b"GET / HTTP/1.1\r\nHost: gw.test\r\nX_Custom: 1\r\n\r\n"
    )
    assert head.startswith("HTTP/1.1 400"), head
    assert json.loads(body)["error"] == "bad_request"
    assert "underscore" in json.loads(body)["message"]
    # The connection stays sane: the next connection's request goes through.
    head, body = exchange(s.listen_ports()[0], b"GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n")
    assert head.startswith("HTTP/1.1 200") and body == b"ok"
    assert len(answering.requests) == 1


def test_a_plugin_declared_header_name_loses_its_twin_too(sluice_factory, origin):
    port = free_port()
    s = sluice_factory(
        basic_config(
            port,
            {"app": [origin.address]},
            headers_with_underscores="allow",
            plugins={"request_id": {"header": "X-Trace-Token"}},
        )
    )
    hs = upstream_saw(
        s, b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nX_Trace_Token: forged\r\n\r\n"
    )
    assert values(hs, "X_Trace_Token") == []
    assert len(values(hs, "X-Trace-Token")) == 1 and values(hs, "X-Trace-Token") != ["forged"]


def test_a_bad_headers_with_underscores_value_is_refused_with_its_position(tmp_path):
    path = tmp_path / "bad.yaml"
    conf = basic_config(free_port(), {"app": ["127.0.0.1:1"]})
    text = json.dumps(conf)[:-1] + ', "headers_with_underscores": "sometimes"}'
    path.write_text(text)
    rc, out, err = check_config(path)
    assert rc == 1
    assert re.search(r"bad\.yaml:1:\d+: error: headers_with_underscores: expected drop \| reject "
                     r"\| allow, found \"sometimes\"", err), err


# -- request trailers ----------------------------------------------------------------

CHUNKED_WITH_TRAILERS = (
    b"POST / HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n"
    b"Trailer: X-Checksum, X-Client-Cert-Subject\r\n\r\n"
    b"5\r\nhello\r\n0\r\n"
    b"X-Client-Cert-Subject: CN=admin\r\n"
    b"X_Client_Cert_Subject: CN=admin\r\n"
    b"X-Forwarded-For: 10.6.6.6\r\n"
    b"X-Request-Id: forged\r\n"
    b"X_Request_Id: forged\r\n"
    b"Authorization: Bearer forged\r\n"
    b"X-Checksum: 5\r\n"
    b"\r\n"
)


def test_request_trailers_are_dropped_by_default(sluice_factory, answering):
    s = gateway_for(sluice_factory, answering.address)
    head, body = exchange(s.listen_ports()[0], CHUNKED_WITH_TRAILERS)
    assert head.startswith("HTTP/1.1 200") and body == b"ok"
    (raw,) = answering.requests
    assert raw.endswith(b"\r\n5\r\nhello\r\n0\r\n\r\n"), raw
    assert b"CN=admin" not in raw and b"forged" not in raw and b"10.6.6.6" not in raw
    assert values(head_lines(raw), "Trailer") == []  # what it announced will not come


def test_forwarded_request_trailers_lose_every_gateway_owned_name_and_its_twin(
    sluice_factory, answering
):
    s = gateway_for(sluice_factory, answering.address, request_trailers="forward")
    head, body = exchange(s.listen_ports()[0], CHUNKED_WITH_TRAILERS)
    assert head.startswith("HTTP/1.1 200") and body == b"ok"
    (raw,) = answering.requests
    assert trailer_block(raw) == b"X-Checksum: 5\r\n", raw
    assert b"CN=admin" not in raw and b"forged" not in raw and b"10.6.6.6" not in raw
    assert values(head_lines(raw), "Trailer") == ["X-Checksum, X-Client-Cert-Subject"]


def test_forwarded_trailers_lose_what_the_heads_connection_names_and_a_forged_via(
    sluice_factory, answering
):
    s = gateway_for(sluice_factory, answering.address, request_trailers="forward")
    head, body = exchange(
        s.listen_ports()[0],
        b"POST / HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: X-Secret\r\n\r\n5\r\nhello\r\n0\r\n"
        b"X-Secret: trailer\r\nX_Secret: twin\r\nVia: 1.1 forged\r\nX-Checksum: 5\r\n\r\n",
    )
    assert head.startswith("HTTP/1.1 200") and body == b"ok"
    (raw,) = answering.requests
    assert trailer_block(raw) == b"X-Checksum: 5\r\n", raw


# -- Connection and X-Request-Id ------------------------------------------------------


def test_the_options_of_every_connection_line_are_removed(gateway):
    sluice, _ = gateway
    hs = upstream_saw(
        sluice,
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nConnection: X-Secret\r\n"
        b"Connection: X-Other\r\nX-Secret: s1\r\nX-Other: s2\r\nX-Kept: yes\r\n\r\n",
    )
    assert values(hs, "X-Secret") == [] and values(hs, "X-Other") == [], hs
    assert values(hs, "Connection") == []
    assert values(hs, "X-Kept") == ["yes"]


def test_a_second_x_request_id_line_never_goes_upstream(gateway):
    sluice, _ = gateway
    hs = upstream_saw(
        sluice,
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nX-Request-Id: client-id-1\r\n"
        b"X-Request-Id: <script>alert(1)</script>; DROP TABLE x\r\n\r\n",
    )
    assert values(hs, "X-Request-Id") == ["client-id-1"]


def test_a_connection_option_naming_x_request_id_still_leaves_exactly_the_logged_id_upstream(
    gateway,
):
    sluice, _ = gateway
    head, body = exchange(
        sluice.listen_ports()[0],
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nConnection: X-Request-Id\r\n"
        b"X-Request-Id: abc\r\n\r\n",
    )
    hs = [tuple(h) for h in json.loads(body)["headers"]]
    assert values(hs, "X-Request-Id") == ["abc"]
    assert "\r\nX-Request-Id: abc\r\n" in head


def test_a_connection_option_takes_the_underscore_twin_along_when_underscores_are_allowed(
    sluice_factory, origin
):
    s = gateway_for(sluice_factory, origin.address, headers_with_underscores="allow")
    hs = upstream_saw(
        s,
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nConnection: X-Secret\r\n"
        b"X_Secret: s1\r\nX_Kept: yes\r\n\r\n",
    )
    assert values(hs, "X_Secret") == [], hs
    assert values(hs, "X_Kept") == ["yes"]


def test_an_insane_first_x_request_id_is_replaced_by_one_fresh_id(gateway):
    sluice, _ = gateway
    head, body = exchange(
        sluice.listen_ports()[0],
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nX-Request-Id: <script>\r\n"
        b"X-Request-Id: looks-sane\r\n\r\n",
    )
    hs = [tuple(h) for h in json.loads(body)["headers"]]
    (rid,) = values(hs, "X-Request-Id")
    assert UUID4.match(rid), rid
    assert f"\r\nX-Request-Id: {rid}\r\n" in head


# -- Via ------------------------------------------------------------------------------


def test_via_is_added_to_the_request_and_appended_to_a_received_one(gateway):
    sluice, _ = gateway
    hs = upstream_saw(sluice, b"GET /headers HTTP/1.1\r\nHost: gw.test\r\n\r\n")
    assert values(hs, "Via") == ["1.1 sluice"]
    hs = upstream_saw(
        sluice,
        b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nVia: 1.0 fred, 1.1 p.example.net\r\n"
        b"Via: 1.1 cdn\r\n\r\n",
    )
    assert values(hs, "Via") == ["1.0 fred, 1.1 p.example.net, 1.1 cdn, 1.1 sluice"]


def test_via_names_the_protocol_an_http_1_0_client_spoke(gateway):
    sluice, _ = gateway
    with RawClient(sluice.listen_ports()[0]) as c:
        c.send(b"GET /headers HTTP/1.0\r\nHost: gw.test\r\n\r\n")
        data = bytearray()
        while True:
            b = c.sock.recv(65536)
            if not b:
                break
            data += b
    body = bytes(data).split(b"\r\n\r\n", 1)[1]
    hs = [tuple(h) for h in json.loads(body)["headers"]]
    assert values(hs, "Via") == ["1.0 sluice"]


@pytest.mark.parametrize(
    "via, expected", [("off", ["1.0 fred"]), ("edge-1", ["1.0 fred, 1.1 edge-1"])]
)
def test_via_can_be_turned_off_or_given_a_pseudonym(sluice_factory, origin, via, expected):
    conf = basic_config(free_port(), {"app": [origin.address]})
    # `via: off` unquoted, as users write it (YAML would read a dumped one as false).
    s = sluice_factory(json.dumps(conf)[:-1] + ', "via": %s}' % via)
    hs = upstream_saw(s, b"GET /headers HTTP/1.1\r\nHost: gw.test\r\nVia: 1.0 fred\r\n\r\n")
    assert values(hs, "Via") == expected


def test_a_via_pseudonym_with_a_space_is_refused(tmp_path):
    path = tmp_path / "via.yaml"
    conf = basic_config(free_port(), {"app": ["127.0.0.1:1"]}, via="my proxy")
    path.write_text(json.dumps(conf))
    rc, _, err = check_config(path)
    assert rc == 1 and "error: via: expected a pseudonym" in err, err
