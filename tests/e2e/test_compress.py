"""The compress plugin: gzip and brotli bodies chosen by Accept-Encoding
(q-values, "*", identity), streamed as they arrive, decoding to exactly
the upstream's bytes, and every response that must not be touched left
alone byte for byte."""

import base64
import http.client
import json
import os
import random
import re
import threading
import time
import zlib

import brotli
import pytest
import requests

from conftest import (RawClient, ScriptedUpstream, basic_config, check_config, free_port,
                      raw_request, wait_for, wait_port)


def json_body(n, seed=1):
    """n bytes of JSON-looking text, compressible but not trivially."""
    rnd = random.Random(seed)
    out, size = [], 0
    while size < n:
        rec = json.dumps({"id": rnd.randrange(10**6), "name": f"user{rnd.randrange(10**4)}",
                          "score": rnd.random(), "active": rnd.random() < 0.5}) + ",\n"
        out.append(rec)
        size += len(rec)
    return "".join(out).encode()[:n]


def decode(coding, data):
    """The bytes a client decoding coding gets; the stream must end exactly."""
    if coding == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data)
        assert d.eof and d.unused_data == b"", "not one whole gzip stream"
        return out
    assert coding == "br", coding
    return brotli.decompress(data)


def response(status=200, headers=(("Content-Type", "application/json"),), body=b"",
             chunked=False, length=True):
    """An upstream's response as bytes: Content-Length unless chunked, or
    length is False (bodyless statuses), or the headers name it already."""
    lines = [f"HTTP/1.1 {status} Whatever"] + [f"{k}: {v}" for k, v in headers]
    named = {k.lower() for k, _ in headers}
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[i:i + 7000] for i in range(0, len(body), 7000)]
        data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        if length and "content-length" not in named:
            lines.append(f"Content-Length: {len(body)}")
        data = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def canned(answers):
    """A ScriptedUpstream answering each request, kept alive, by its path
    with answers[path]: the response's bytes, or (head bytes, body bytes)
    where HEAD gets the head only."""
    def answer(up, c):
        while True:
            r = up.read_request(c)
            if r is None:
                return
            method, target = r[0].split(b" ")[:2]
            a = answers[target.decode().split("?")[0]]
            if isinstance(a, tuple):
                a = a[0] if method == b"HEAD" else a[0] + a[1]
            c.sendall(a)
    return ScriptedUpstream(answer)


def gateway(sluice_factory, upstream, compress=None, env=None, **extra):
    """sluice with one route "all" to upstream, compress configured on it."""
    port = free_port()
    conf = basic_config(port, {"app": [upstream.address]}, **extra)
    conf["log"] = {"level": "info", "access": "off"}
    conf["routes"][0]["plugins"] = {"compress": compress if compress is not None else {}}
    return sluice_factory(conf, env=env), port


def fetch(port, path="/", accept="gzip, br", method="GET", headers=()):
    """(status, headers, raw body bytes): nothing decoded. accept None sends
    no Accept-Encoding at all."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        if accept is not None:
            c.putheader("Accept-Encoding", accept)
        for k, v in headers:
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def vary_list(headers):
    return [t.strip().lower() for v in headers.get_all("Vary") or [] for t in v.split(",")]


@pytest.fixture(params=["gzip", "br"])
def coding(request):
    return request.param


# -- bodies decode to the upstream's bytes ----------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [1500, 300_000], ids=["small", "300k"])
def test_a_compressed_body_decodes_to_exactly_the_upstream_bytes(sluice_factory, coding,
                                                                 chunked, size):
    body = json_body(size)
    up = canned({"/": response(body=body, chunked=chunked)})
    s, port = gateway(sluice_factory, up)
    status, h, raw = fetch(port, accept=coding)
    assert status == 200
    assert h["Content-Encoding"] == coding
    assert h["Content-Length"] is None, "the compressed length is the framing's"
    assert h["Transfer-Encoding"] == "chunked"
    assert "accept-encoding" in vary_list(h)
    assert len(raw) < len(body) * 0.6
    assert decode(coding, raw) == body
    up.close()


def test_an_empty_chunked_body_still_decodes(sluice_factory, coding):
    up = canned({"/": response(headers=[("Content-Type", "text/plain")], chunked=True)})
    s, port = gateway(sluice_factory, up)
    status, h, raw = fetch(port, accept=coding)
    assert status == 200 and h["Content-Encoding"] == coding
    assert decode(coding, raw) == b""
    up.close()


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # KiB
    raise KeyError(key)


def test_an_8_mib_body_streams_through_and_the_gateway_rss_stays_flat(sluice_factory, coding):
    # Base64 of random bytes: it compresses to about 3/4, so the compressed
    # body is megabytes too, and a stalled client makes it back up.
    body = base64.b64encode(random.Random(7).randbytes(6 * 1024 * 1024))
    assert len(body) == 8 * 1024 * 1024
    up = canned({"/": response(headers=[("Content-Type", "text/plain")], body=body)})
    # In a sanitizer build freed memory would wait in AddressSanitizer's
    # quarantine, a compressor state per response: give it back at once.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
    s, port = gateway(sluice_factory, up, env={"ASAN_OPTIONS": asan})
    # A first run brings the allocator and the worker to their steady state.
    status, h, raw = fetch(port, accept=coding)
    assert status == 200 and decode(coding, raw) == body
    rss0, hwm0 = vm(s.proc.pid, "VmRSS"), vm(s.proc.pid, "VmHWM")

    c = RawClient(port, rcvbuf=32768)
    c.send(f"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: {coding}\r\n\r\n".encode())
    head = c.until(b"\r\n\r\n")
    assert f"content-encoding: {coding}".encode() in head.lower()
    chunks = bytearray(c.exact(50_000))
    time.sleep(0.5)  # stall: the upstream keeps sending, the gateway must stop reading it
    rss_stalled = vm(s.proc.pid, "VmRSS")
    while not chunks.endswith(b"\r\n0\r\n\r\n"):
        more = c.some()
        assert more, "the gateway closed before the end of the body"
        chunks += more
    c.close()
    hwm1 = vm(s.proc.pid, "VmHWM")
    # The whole body would be 8 MiB in, about 6 out: the gateway holds
    # neither, only a compressor's state and its capped queues.
    assert rss_stalled - rss0 < 4 * 1024, (rss0, rss_stalled)
    assert hwm1 - hwm0 < 4 * 1024, (hwm0, hwm1)
    data, pos = bytearray(), 0
    while True:  # the chunked framing, undone
        eol = chunks.index(b"\r\n", pos)
        n = int(chunks[pos:eol], 16)
        if n == 0:
            break
        data += chunks[eol + 2:eol + 2 + n]
        pos = eol + 2 + n + 2
    assert decode(coding, bytes(data)) == body
    up.close()


def test_a_slow_streamed_body_arrives_piece_by_piece_compressed(sluice_factory, coding):
    first, second = b"data: first event\n\n", b"data: second event\n\n"
    client_decoded_first = threading.Event()

    def answer(up, c):
        up.read_request(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(first), first))
        # The second event goes only once the client could decode the first.
        up.seen.append(client_decoded_first.wait(5))
        c.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second))
        up.read_request(c)

    up = ScriptedUpstream(answer)
    s, port = gateway(sluice_factory, up)
    d = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else brotli.Decompressor()
    feed = d.decompress if coding == "gzip" else d.process
    decoded = b""
    with RawClient(port) as c:
        c.send(f"GET /events HTTP/1.1\r\nHost: a\r\nAccept-Encoding: {coding}\r\n\r\n".encode())
        head = c.until(b"\r\n\r\n").lower()
        assert f"content-encoding: {coding}".encode() in head
        while True:
            n = int(c.until(b"\r\n")[:-2], 16)
            if n == 0:
                break
            decoded += feed(c.exact(n))
            c.exact(2)
            if decoded == first:
                client_decoded_first.set()
    assert up.seen == [True], "the first event reached the client only with the second"
    assert decoded == first + second
    up.close()


def test_an_http10_client_gets_a_compressed_body_delimited_by_the_close(sluice_factory, coding):
    body = json_body(20_000)
    up = canned({"/": response(body=body)})
    s, port = gateway(sluice_factory, up)
    out = raw_request(port, f"GET / HTTP/1.0\r\nHost: a\r\nAccept-Encoding: {coding}\r\n\r\n"
                      .encode())
    head, _, raw = out.partition(b"\r\n\r\n")
    lower = head.lower()
    assert lower.startswith(b"http/1.") and b" 200 " in lower.split(b"\r\n")[0]
    assert f"content-encoding: {coding}".encode() in lower
    assert b"content-length" not in lower and b"transfer-encoding" not in lower
    assert decode(coding, raw) == body
    up.close()


# -- which coding ------------------------------------------------------------------------


@pytest.mark.parametrize("accept, algorithms, expected", [
    ("gzip;q=1, br;q=0.5", None, "gzip"),
    ("br;q=0, gzip", None, "gzip"),
    ("br;q=0", None, None),
    ("*;q=0", None, None),
    ("identity", None, None),
    (None, None, None),
    ("", None, None),
    ("br;q=1, gzip;q=0.8, *;q=0", None, "br"),
    ("gzip, br", None, "br"),
    ("gzip, br", ["gzip", "br"], "gzip"),
    ("*", None, "br"),
    ("br;q=0, *", None, "gzip"),
    ("X-GZIP", None, "gzip"),
    ("identity, gzip;q=0.5", None, None),
    ("deflate, compress", None, None),
    ("br", ["gzip"], None),
    ("gzip;q=7, br;q=0.1", None, "br"),
], ids=["gzip-over-br", "br-refused", "only-br-refused", "star-zero", "identity-only",
        "no-header", "empty", "br-first", "tie-br", "tie-gzip-first", "star", "star-but-br",
        "x-gzip", "identity-preferred", "unknown-codings", "br-not-configured",
        "bad-weight-ignored"])
def test_the_coding_follows_the_accept_encoding_weights(sluice_factory, accept, algorithms,
                                                        expected):
    body = json_body(5000)
    up = canned({"/": response(body=body)})
    s, port = gateway(sluice_factory, up, {"algorithms": algorithms} if algorithms else {})
    status, h, raw = fetch(port, accept=accept)
    assert status == 200
    assert h["Content-Encoding"] == expected
    assert "accept-encoding" in vary_list(h)
    if expected is None:
        assert raw == body and h["Content-Length"] == str(len(body))
    else:
        assert decode(expected, raw) == body
    up.close()


def test_several_accept_encoding_lines_are_one_list(sluice_factory):
    body = json_body(5000)
    up = canned({"/": response(body=body)})
    s, port = gateway(sluice_factory, up)
    # gzip refused in the first line, br offered in the second: br.
    status, h, raw = fetch(port, accept="gzip;q=0", headers=[("Accept-Encoding", "br")])
    assert status == 200 and h["Content-Encoding"] == "br"
    assert decode("br", raw) == body
    status, h, raw = fetch(port, accept="identity;q=0.5", headers=[("Accept-Encoding", "gzip")])
    assert status == 200 and h["Content-Encoding"] == "gzip"
    assert decode("gzip", raw) == body
    status, h, raw = fetch(port, accept="gzip;q=0", headers=[("Accept-Encoding", "br;q=0")])
    assert status == 200 and h["Content-Encoding"] is None and raw == body
    up.close()


def test_no_transform_in_a_second_cache_control_line_is_honoured(sluice_factory):
    body = json_body(5000)
    up = canned({"/": response(headers=[("Content-Type", "application/json"),
                                        ("Cache-Control", "max-age=60"),
                                        ("Cache-Control", "no-transform")], body=body)})
    s, port = gateway(sluice_factory, up)
    status, h, raw = fetch(port, accept="gzip")
    assert status == 200 and h["Content-Encoding"] is None and raw == body
    assert h["Content-Length"] == str(len(body))
    up.close()


# -- left alone --------------------------------------------------------------------------

BIG = json_body(20_000, seed=3)
LEAVE_ALONE = {
    "/encoded": response(headers=[("Content-Type", "application/json"),
                                  ("Content-Encoding", "gzip")], body=BIG),
    "/no-transform": response(headers=[("Content-Type", "application/json"),
                                       ("Cache-Control", "max-age=60, No-Transform")], body=BIG),
    "/partial": response(206, [("Content-Type", "application/json"),
                               ("Content-Range", "bytes 0-19999/40000")], body=BIG),
    "/content-range": response(200, [("Content-Type", "application/json"),
                                     ("Content-Range", "bytes 0-19999/20000")], body=BIG),
    "/untyped": response(headers=[], body=BIG),
    "/png": response(headers=[("Content-Type", "image/png")], body=BIG),
    "/small": response(body=BIG[:1023]),
}


@pytest.mark.parametrize("path", sorted(LEAVE_ALONE))
def test_a_response_that_must_not_be_compressed_is_passed_byte_for_byte(sluice_factory, path):
    up = canned(LEAVE_ALONE)
    s, port = gateway(sluice_factory, up, {"min_size": "1k"})
    status, h, raw = fetch(port, path, accept="br, gzip, *")
    assert status in (200, 206)
    assert h["Content-Length"] == str(len(raw))
    assert raw == (BIG[:1023] if path == "/small" else BIG)
    assert h["Content-Encoding"] == ("gzip" if path == "/encoded" else None)
    if path in ("/untyped", "/png", "/encoded", "/no-transform", "/partial", "/content-range"):
        assert "accept-encoding" not in vary_list(h)
    up.close()


def test_a_body_of_exactly_min_size_is_compressed_one_byte_less_is_not(sluice_factory):
    body = json_body(2048)
    up = canned({"/at": response(body=body), "/below": response(body=body[:2047])})
    s, port = gateway(sluice_factory, up, {"min_size": "2k"})
    status, h, raw = fetch(port, "/at", accept="gzip")
    assert h["Content-Encoding"] == "gzip" and decode("gzip", raw) == body
    status, h, raw = fetch(port, "/below", accept="gzip")
    assert h["Content-Encoding"] is None and raw == body[:2047]
    assert h["Content-Length"] == "2047"
    up.close()


def test_a_head_request_keeps_its_content_length_and_gets_vary(sluice_factory):
    body = json_body(20_000)
    head = response(body=body)[:-len(body)]
    up = canned({"/": (head, body)})
    s, port = gateway(sluice_factory, up)
    status, h, raw = fetch(port, method="HEAD", accept="gzip")
    assert status == 200 and raw == b""
    assert h["Content-Length"] == str(len(body)) and h["Content-Encoding"] is None
    assert "accept-encoding" in vary_list(h)
    up.close()


@pytest.mark.parametrize("status", [204, 304])
def test_a_bodyless_status_is_left_alone(sluice_factory, status):
    up = canned({"/": response(status, [("Content-Type", "application/json"),
                                        ("ETag", '"v1"')], length=False)})
    s, port = gateway(sluice_factory, up)
    got, h, raw = fetch(port, accept="gzip")
    assert got == status and raw == b""
    assert h["Content-Encoding"] is None and h["ETag"] == '"v1"'
    up.close()


def test_a_101_upgrade_is_tunnelled_untouched(sluice_factory):
    payload = b"x" * 5000

    def answer(up, c):
        up.read_request(c)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nContent-Type: text/plain\r\n\r\n" + payload)
        up.wait_for_gateway_close(c)

    up = ScriptedUpstream(answer)
    s, port = gateway(sluice_factory, up)
    with RawClient(port) as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Accept-Encoding: gzip\r\n\r\n")
        head = c.until(b"\r\n\r\n").lower()
        assert head.startswith(b"http/1.1 101")
        assert b"content-encoding" not in head
        assert c.exact(len(payload)) == payload
    up.close()


def test_a_response_the_gateway_makes_itself_is_not_compressed(sluice_factory):
    up = canned({})
    port = free_port()
    conf = basic_config(port, {"app": [up.address]},
                        routes=[{"name": "api", "match": {"path": "/api"}, "upstream": "app",
                                 "plugins": {"compress": {"types": ["*/*"], "min_size": 0}}}])
    sluice_factory(conf)
    status, h, raw = fetch(port, "/elsewhere", accept="gzip")
    assert status == 404 and h["Content-Encoding"] is None
    assert json.loads(raw)["error"] == "no_route"
    up.close()


# -- the headers of a compressed response -------------------------------------------------


def test_a_strong_etag_is_weakened_and_digests_and_ranges_go(sluice_factory):
    body = json_body(5000)
    up = canned({
        "/strong": response(headers=[("Content-Type", "application/json"), ("ETag", '"abc"'),
                                     ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
                                     ("Accept-Ranges", "bytes")], body=body),
        "/weak": response(headers=[("Content-Type", "application/json"),
                                   ("ETag", 'W/"abc"')], body=body),
    })
    s, port = gateway(sluice_factory, up)
    status, h, raw = fetch(port, "/strong", accept="br")
    assert h["Content-Encoding"] == "br" and decode("br", raw) == body
    assert h.get_all("ETag") == ['W/"abc"']
    assert h["Content-MD5"] is None and h["Accept-Ranges"] is None
    status, h, raw = fetch(port, "/weak", accept="gzip")
    assert h["Content-Encoding"] == "gzip" and h.get_all("ETag") == ['W/"abc"']
    # Not compressed: the validator and the digest stay as they were.
    status, h, raw = fetch(port, "/strong", accept="identity")
    assert h["ETag"] == '"abc"' and h["Content-MD5"] and h["Accept-Ranges"] == "bytes"
    up.close()


def test_vary_is_added_once_beside_the_upstreams_own(sluice_factory):
    body = json_body(5000)
    up = canned({
        "/origin": response(headers=[("Content-Type", "application/json"), ("Vary", "Origin")],
                            body=body),
        "/already": response(headers=[("Content-Type", "application/json"),
                                      ("Vary", "Origin, accept-encoding")], body=body),
    })
    s, port = gateway(sluice_factory, up)
    for accept in ("gzip", "identity"):
        status, h, raw = fetch(port, "/origin", accept=accept)
        assert sorted(vary_list(h)) == ["accept-encoding", "origin"]
        status, h, raw = fetch(port, "/already", accept=accept)
        assert sorted(vary_list(h)) == ["accept-encoding", "origin"]
    up.close()


def test_content_types_match_with_parameters_and_in_any_case(sluice_factory):
    body = json_body(5000)
    up = canned({
        "/json": response(headers=[("Content-Type", "Application/JSON; charset=utf-8")],
                          body=body),
        "/csv": response(headers=[("Content-Type", "text/csv")], body=body),
        "/js": response(headers=[("Content-Type", "application/javascript")], body=body),
    })
    s, port = gateway(sluice_factory, up, {"types": ["application/json"], "min_size": 100})
    assert fetch(port, "/json", accept="gzip")[1]["Content-Encoding"] == "gzip"
    assert fetch(port, "/csv", accept="gzip")[1]["Content-Encoding"] is None
    assert fetch(port, "/js", accept="gzip")[1]["Content-Encoding"] is None
    up.close()


def test_outcomes_are_counted_per_route(sluice_factory):
    body = json_body(5000)
    up = canned({"/": response(body=body)})
    admin = free_port()
    s, port = gateway(sluice_factory, up, admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    for accept in ("gzip", "br", "br", "identity"):
        fetch(port, accept=accept)

    def count(result):
        text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
        m = re.search(r'^sluice_compress_responses_total\{route="all",result="%s"\} (\d+)$'
                      % result, text, re.M)
        return int(m.group(1)) if m else None

    wait_for(lambda: count("skipped") == 1, what="the skipped response counted")
    assert (count("gzip"), count("br")) == (1, 2)
    up.close()


# -- config errors ------------------------------------------------------------------------


def config_file(tmp_path, compress_yaml):
    """A config whose route has compress written as YAML flow text, on
    line 10 of the file."""
    text = f"""\
workers: 1
listen:
  - address: 127.0.0.1:{free_port()}
upstreams:
  app: {{targets: [127.0.0.1:9]}}
routes:
  - name: all
    match: {{path: /}}
    upstream: app
    plugins: {{compress: {compress_yaml}}}
"""
    path = tmp_path / "compress.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("compress, at, message", [
    ("{algorithms: [br, deflate]}", "deflate", 'unknown algorithm "deflate" (expected br or gzip)'),
    ("{algorithms: [gzip, gzip]}", "gzip]", 'algorithm "gzip" is listed twice'),
    ("{algorithms: []}", "[]", "expected at least one of br, gzip"),
    ("{level: 0}", "0", "must be between 1 and 9"),
    ("{level: 10}", "10", "must be between 1 and 9"),
    ("{gzip_level: 12}", "12", "must be between 1 and 9"),
    ("{br_level: 12}", "12", "must be between 0 and 11"),
    ("{types: [text]}", "text", "expected a media type such as text/html"),
    ("{types: [application/json, '*/json']}", "'*/json'", "a wildcard stands for a whole subtype"),
    ("{types: ['text/html; charset=utf-8']}", "'text/html", "without parameters"),
    ("{types: []}", "[]", "expected at least one media type"),
    ("{min_size: lots}", "lots", "expected a size such as 512, 16k or 10m"),
    ("{colour: blue}", "colour", "unknown key"),
], ids=["unknown-algorithm", "twice", "no-algorithm", "level-0", "level-10", "gzip-level",
        "br-level", "type-without-slash", "wildcard-type", "type-parameters", "no-type",
        "bad-size", "unknown-key"])
def test_a_bad_compress_setting_is_refused_with_file_line_and_column(tmp_path, compress, at,
                                                                     message):
    path = config_file(tmp_path, compress)
    line = path.read_text().splitlines()[9]
    rc, out, err = check_config(path)
    assert rc != 0, f"accepted: {out}{err}"
    assert message in err, err
    m = re.search(rf"{re.escape(str(path))}:(\d+):(\d+): error: (\S+)", err)
    assert m, err
    # Line 10 holds the compress block; the column is the offending token's.
    col = line.index(at, line.index("{compress")) + 1
    assert (int(m.group(1)), int(m.group(2))) == (10, col), err
    assert "compress" in m.group(3), err


def test_every_error_of_a_compress_block_is_reported_in_one_run(tmp_path):
    rc, out, err = check_config(config_file(
        tmp_path, "{algorithms: [zstd], level: 11, types: [nonsense]}"))
    assert rc != 0
    assert 'unknown algorithm "zstd"' in err and "between 1 and 9" in err
    assert "expected a media type" in err


def test_valid_compress_settings_pass_the_check(tmp_path):
    rc, out, err = check_config(config_file(
        tmp_path, "{algorithms: [gzip], types: [text/*, application/json, '*/*', "
                  "Image/SVG+XML], min_size: 0, level: 9, gzip_level: 1, br_level: 0}"))
    assert rc == 0, err
    rc, out, err = check_config(config_file(tmp_path, "{}"))
    assert rc == 0, err
