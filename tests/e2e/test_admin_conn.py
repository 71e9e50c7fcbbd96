"""Admin API connections: a request is judged when its head ends (no token,
a body where none is taken, one too large: answered before the body is
read), and no client can hold the admin API's connections open forever."""

import socket

import pytest
import requests

from conftest import RawClient, basic_config, free_port, is_closed, wait_for, wait_port

TOKEN = "conn-token"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"


@pytest.fixture
def admin(sluice_factory):
    """(sluice, admin port) of an instance whose admin API wants TOKEN."""
    port, admin_port = free_port(), free_port()
    conf = basic_config(port, {"app": ["127.0.0.1:9"]})
    conf["admin"] = {"address": f"127.0.0.1:{admin_port}", "token": TOKEN}
    s = sluice_factory(conf)
    wait_port(admin_port)
    return s, admin_port


def status(admin_port):
    r = requests.get(f"http://127.0.0.1:{admin_port}/status",
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def head_answer(admin_port, head):
    """Send a request head announcing a body that never comes; return the
    answer's status line and body (the server closes after it)."""
    with RawClient(admin_port, timeout=5) as c:
        c.send(head.encode())
        line = c.until(b"\r\n").decode()
        rest = c.until(b"\r\n\r\n")
        length = int([h for h in rest.decode().split("\r\n")
                      if h.lower().startswith("content-length:")][0].split(":")[1])
        return line.strip(), c.exact(length).decode()


def test_a_client_without_the_token_is_answered_401_before_its_body_is_read(admin):
    s, admin_port = admin
    for auth in ("", "Authorization: Bearer wrong\r\n"):
        line, body = head_answer(
            admin_port, "POST /reload?dry_run=1 HTTP/1.1\r\nHost: a\r\n" + auth +
            "Content-Type: application/yaml\r\nContent-Length: 100000000\r\n\r\nworkers: 1\n")
        assert line == "HTTP/1.1 401 Unauthorized", body
        assert '"unauthorized"' in body
    assert status(admin_port)["generation"] == 1


@pytest.mark.parametrize("request_line", ["GET /status", "GET /metrics", "POST /reload", "GET /"])
def test_a_body_to_an_endpoint_that_takes_none_is_refused_at_once(admin, request_line):
    s, admin_port = admin
    line, body = head_answer(admin_port, f"{request_line} HTTP/1.1\r\nHost: a\r\n{AUTH}"
                                         "Content-Length: 5000\r\n\r\n")
    assert line == "HTTP/1.1 400 Bad Request", body
    assert '"unexpected_body"' in body
    assert status(admin_port)["generation"] == 1  # POST /reload reloaded nothing


def test_a_dry_run_body_over_16m_is_refused_from_its_content_length(admin):
    s, admin_port = admin
    line, body = head_answer(admin_port, f"POST /reload?dry_run=1 HTTP/1.1\r\nHost: a\r\n{AUTH}"
                                         f"Content-Length: {(16 << 20) + 1}\r\n\r\nworkers: 1\n")
    assert line == "HTTP/1.1 413 Payload Too Large", body
    assert '"payload_too_large"' in body


def test_an_early_answer_reaches_a_client_that_goes_on_sending(admin):
    """The server drops what comes after its answer instead of resetting the
    connection under a client still sending (requests reads the 401)."""
    s, admin_port = admin
    r = requests.post(f"http://127.0.0.1:{admin_port}/reload?dry_run=1",
                      data=b"# padding\n" * 100000, timeout=10)
    assert r.status_code == 401
    r = requests.post(f"http://127.0.0.1:{admin_port}/reload",
                      headers={"Authorization": f"Bearer {TOKEN}"}, data=b"x" * 300000,
                      timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "unexpected_body"


def test_a_connection_that_sends_nothing_or_stops_midway_is_closed(admin):
    s, admin_port = admin
    idle = socket.create_connection(("127.0.0.1", admin_port), timeout=5)
    partial = socket.create_connection(("127.0.0.1", admin_port), timeout=5)
    try:
        partial.sendall(b"GET /status HTTP/1.1\r\nHost: a\r\n")
        assert is_closed(idle, timeout=20)
        assert is_closed(partial, timeout=5)
    finally:
        idle.close()
        partial.close()
    assert status(admin_port)["generation"] == 1


def test_at_most_64_admin_connections_are_open_at_a_time(admin):
    s, admin_port = admin
    held = [socket.create_connection(("127.0.0.1", admin_port), timeout=5) for _ in range(64)]

    def one_more_is_closed():
        # Until the server has accepted the 64 (a full backlog delays some),
        # a new connection may take a place: it is held too, and another tried.
        held.append(socket.create_connection(("127.0.0.1", admin_port), timeout=5))
        return is_closed(held[-1], timeout=1) or None

    try:
        wait_for(one_more_is_closed, timeout=20, what="a connection over 64 closed")
        assert "admin API: 64 connections open, closing new ones" in s.error_log()
    finally:
        for c in held:
            c.close()

    def answers():
        try:
            return status(admin_port)
        except (requests.ConnectionError, AssertionError):
            return None

    assert wait_for(answers, timeout=10, what="the admin API answering again")["generation"] == 1
