"""The service manager's notifications (sd_notify, for the systemd unit's
Type=notify): through the AF_UNIX datagram socket NOTIFY_SOCKET names, the
gateway says READY=1 (with MAINPID= and STATUS=) once it accepts,
RELOADING=1 with MONOTONIC_USEC= when a reload starts, READY=1 again when
it is done (the failure in STATUS= when it failed: the old config still
serves), and STOPPING=1 at shutdown. Each test owns the socket it listens
on, as systemd would; a socket that is missing or full never stops the
gateway."""

import os
import shutil
import signal
import socket
import tempfile
import time
import uuid

import pytest
import requests

from conftest import Sluice, basic_config, free_port, wait_for, wait_port


class NotifySocket:
    """A datagram socket bound by the test: a path, or an abstract @name."""

    def __init__(self, path=None, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "sluice-test-" + uuid.uuid4().hex
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.sock.bind(str(path))
            self.env = str(path)

    def recv(self, timeout=10.0):
        """The next message as (dict of its fields, its raw lines)."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536).decode()
        lines = data.split("\n")
        return dict(l.split("=", 1) for l in lines if l), lines

    def recv_until(self, key, timeout=10.0):
        """Every message up to and including the first that has key."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            msg, _ = self.recv(max(0.1, deadline - time.monotonic()))
            got.append(msg)
            if key in msg:
                return got

    def pending(self):
        """Every message already queued, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(65536).decode())
        except BlockingIOError:
            pass
        return out

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path / "notify.sock")
    yield n
    n.close()


def admin_conf(origin, **extra):
    conf = basic_config(free_port(), {"app": [origin.address]}, **extra)
    conf["admin"] = {"address": f"127.0.0.1:{free_port()}"}
    return conf


def admin_url(conf, path):
    return f"http://127.0.0.1:{conf['admin']['address'].rsplit(':', 1)[1]}{path}"


def test_ready_with_mainpid_and_status_comes_once_the_gateway_accepts(sluice_factory, origin,
                                                                      notify):
    conf = basic_config(free_port(), {"app": [origin.address]})
    s = sluice_factory(conf, start=False, env={"NOTIFY_SOCKET": notify.env})
    s.start(wait=False)
    msg, lines = notify.recv()
    assert msg.get("READY") == "1", lines
    assert msg["MAINPID"] == str(s.proc.pid), lines
    assert "generation 1" in msg["STATUS"], lines
    assert lines[-1].startswith("STATUS="), lines  # one field per line, STATUS= last
    # Ready means accepting: no waiting for the port, the first try works.
    assert requests.get(s.url + "/", timeout=5).status_code == 200
    assert notify.pending() == []  # nothing else said at start


def test_a_reload_says_reloading_with_the_monotonic_clock_then_ready(sluice_factory, origin,
                                                                     notify):
    conf = admin_conf(origin)
    s = sluice_factory(conf, env={"NOTIFY_SOCKET": notify.env})
    notify.recv_until("READY")
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    s.reload(conf)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = notify.recv()[0], notify.recv()[0]
    assert first.get("RELOADING") == "1", first
    assert before <= int(first["MONOTONIC_USEC"]) <= after, (before, first, after)
    assert "reloading" in first["STATUS"] and str(s.conf_path) in first["STATUS"], first
    assert second.get("READY") == "1" and "RELOADING" not in second, second
    assert "generation 2" in second["STATUS"], second
    # POST /reload is a reload too.
    r = requests.post(admin_url(conf, "/reload"), timeout=5)
    assert r.status_code == 200, r.text
    msgs = notify.recv_until("READY")
    assert msgs[0].get("RELOADING") == "1" and "generation 3" in msgs[-1]["STATUS"], msgs
    assert len(msgs) == 2, msgs


def test_a_failed_reload_is_ready_again_and_says_why_in_status(sluice_factory, origin, notify):
    conf = admin_conf(origin)
    s = sluice_factory(conf, env={"NOTIFY_SOCKET": notify.env})
    notify.recv_until("READY")
    broken = dict(conf, routes=[{"name": "all", "match": {"path": "/"}, "upstream": "missing"}])
    s.reload(broken)
    msgs = notify.recv_until("READY")
    assert msgs[0].get("RELOADING") == "1" and len(msgs) == 2, msgs
    status = msgs[-1]["STATUS"]
    assert "reload failed" in status and "generation 1 keeps serving" in status, status
    # The first error, with its place in the file, on the one STATUS line.
    assert f"{s.conf_path}:" in status and "routes[0].upstream" in status, status
    assert "missing" in status, status
    for _ in range(5):
        assert requests.get(s.url + "/", timeout=5).status_code == 200
    # The admin API's reload: the same.
    r = requests.post(admin_url(conf, "/reload"), timeout=5)
    assert r.status_code == 400, r.text
    msgs = notify.recv_until("READY")
    assert "reload failed" in msgs[-1]["STATUS"], msgs


def test_a_reload_whose_listener_cannot_be_opened_says_which(sluice_factory, origin, notify):
    conf = admin_conf(origin)
    s = sluice_factory(conf, env={"NOTIFY_SOCKET": notify.env})
    notify.recv_until("READY")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))  # bound without SO_REUSEPORT: the gateway cannot share it
    taken.listen(1)
    try:
        addr = "127.0.0.1:%d" % taken.getsockname()[1]
        s.reload(dict(conf, listen=conf["listen"] + [{"address": addr}]))
        msgs = notify.recv_until("READY")
        status = msgs[-1]["STATUS"]
        assert "reload failed" in status and f"cannot listen on {addr}" in status, status
        assert "generation 1 keeps serving" in status, status
        # The admin API answers with the same reason.
        r = requests.post(admin_url(conf, "/reload"), timeout=5)
        assert r.status_code == 400 and f"cannot listen on {addr}" in r.text, r.text
    finally:
        taken.close()
    assert requests.get(s.url + "/", timeout=5).status_code == 200


def test_sigterm_says_stopping_and_the_gateway_exits_cleanly(sluice_factory, origin, notify):
    s = sluice_factory(basic_config(free_port(), {"app": [origin.address]}),
                       env={"NOTIFY_SOCKET": notify.env})
    notify.recv_until("READY")
    s.proc.send_signal(signal.SIGTERM)
    msg, lines = notify.recv()
    assert msg.get("STOPPING") == "1", lines
    assert "stopping" in msg["STATUS"], lines
    assert s.proc.wait(30) == 0
    assert notify.pending() == []


def test_an_abstract_notify_socket_gets_the_same_messages(sluice_factory, origin):
    n = NotifySocket(abstract=True)
    try:
        conf = basic_config(free_port(), {"app": [origin.address]})
        s = sluice_factory(conf, env={"NOTIFY_SOCKET": n.env})
        msg, lines = n.recv()
        assert msg.get("READY") == "1" and msg["MAINPID"] == str(s.proc.pid), lines
        s.reload(conf)
        msgs = n.recv_until("READY")
        assert msgs[0].get("RELOADING") == "1" and "generation 2" in msgs[-1]["STATUS"], msgs
        s.proc.send_signal(signal.SIGTERM)
        assert n.recv()[0].get("STOPPING") == "1"
        assert s.proc.wait(30) == 0
    finally:
        n.close()


@pytest.mark.parametrize("value", ["/nonexistent-dir/notify.sock", "@sluice-nobody-listens-here",
                                   "vsock:2:999", "relative/notify.sock"])
def test_a_notify_socket_that_cannot_be_used_is_ignored(sluice_factory, origin, value):
    conf = basic_config(free_port(), {"app": [origin.address]})
    s = sluice_factory(conf, env={"NOTIFY_SOCKET": value})
    assert requests.get(s.url + "/", timeout=5).status_code == 200
    s.reload(conf)
    s.reload(conf)
    assert s.error_log().count("configuration reloaded") == 2, s.error_log()
    assert requests.get(s.url + "/", timeout=5).status_code == 200
    assert s.stop() == 0
    log = s.error_log()
    # Said once, as a warning, with the value.
    assert log.count("NOTIFY_SOCKET=" + value) == 1, log
    assert "[warn]" in next(l for l in log.splitlines() if "NOTIFY_SOCKET=" in l), log


def test_a_notify_socket_nobody_reads_never_blocks_the_gateway(sluice_factory, origin, tmp_path):
    """The socket's queue fills up (net.unix.max_dgram_qlen datagrams, 10 by
    default): a blocking send would hang the main thread, and with it
    reloads and the admin API. Messages that do not fit are dropped."""
    n = NotifySocket(tmp_path / "full.sock")
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            qlen = int(f.read())
        conf = admin_conf(origin)
        s = sluice_factory(conf, env={"NOTIFY_SOCKET": n.env})
        wait_port(int(conf["admin"]["address"].rsplit(":", 1)[1]), proc=s.proc)
        reloads = qlen // 2 + 3  # two messages each: more than the queue holds
        for i in range(reloads):
            r = requests.post(admin_url(conf, "/reload"), timeout=5)
            assert r.status_code == 200 and r.json()["generation"] == i + 2, r.text
        assert requests.get(s.url + "/", timeout=5).status_code == 200
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(30) == 0
        queued = n.pending()
        assert queued and queued[0].startswith("READY=1\n"), queued
        assert len(queued) < 1 + 2 * reloads + 1, queued  # some were dropped, none waited
        assert s.error_log().count("cannot notify the service manager") == 1, s.error_log()
    finally:
        n.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_notifications_still_arrive_after_user_drops_root(origin):
    """The socket is connected while the gateway is root: after user: nobody,
    a socket in a directory only root may enter still gets every message."""
    closed = tempfile.mkdtemp(prefix="sluice-notify-", dir="/tmp")  # 0700, root's
    open_dir = tempfile.mkdtemp(prefix="sluice-notify-conf-", dir="/tmp")
    os.chmod(open_dir, 0o755)  # the config is read again on reload, as nobody
    n = NotifySocket(os.path.join(closed, "notify.sock"))
    conf = basic_config(free_port(), {"app": [origin.address]}, user="nobody")
    s = Sluice(open_dir, conf, env={"NOTIFY_SOCKET": n.env})
    os.chmod(s.conf_path, 0o644)
    try:
        s.start(wait=False)
        msg, lines = n.recv()
        assert msg.get("READY") == "1", lines
        wait_port(s.listen_ports()[0], proc=s.proc)
        with open(f"/proc/{s.proc.pid}/status") as f:
            uid = next(l for l in f if l.startswith("Uid:")).split()[1:]
        assert uid == ["65534"] * 4, uid
        s.reload(conf)
        msgs = n.recv_until("READY")
        assert msgs[0].get("RELOADING") == "1" and "generation 2" in msgs[-1]["STATUS"], msgs
        # A reload that needs root fails, says so, and the old config serves.
        s.reload(dict(conf, listen=conf["listen"] + [{"address": "127.0.0.1:81"}]))
        status = n.recv_until("READY")[-1]["STATUS"]
        assert "reload failed" in status and "127.0.0.1:81" in status, status
        assert "ermission denied" in status, status
        assert requests.get(s.url + "/", timeout=5).status_code == 200
        s.proc.send_signal(signal.SIGTERM)
        assert n.recv()[0].get("STOPPING") == "1"
        assert s.proc.wait(30) == 0
    finally:
        s.stop()
        n.close()
        shutil.rmtree(closed, ignore_errors=True)
        shutil.rmtree(open_dir, ignore_errors=True)
