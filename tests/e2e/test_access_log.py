"""The access log for pipelines: lines are written by a background writer, so
a slow or stuck sink (here a FIFO nobody reads) never stalls a worker; what
does not fit its buffer is dropped and counted in
sluice_access_log_dropped_total. log.access_sample: N (or a route's
log: {access_sample: N}) keeps 1 in N successful requests and every error."""

import fcntl
import http.client
import json
import os
import re
import signal
import subprocess

import requests

from conftest import SLUICE, basic_config, check_config, free_port, wait_for, wait_port

ERROR_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<rest>.*)$", re.M)


def get_many(port, path, n):
    """n GETs of path on one keep-alive connection: the statuses, in order."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for _ in range(n):
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            out.append(r.status)
    finally:
        conn.close()
    return out


def dropped(admin):
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    assert "# TYPE sluice_access_log_dropped_total counter" in text, text
    m = re.search(r"^sluice_access_log_dropped_total (\d+)$", text, re.M)
    assert m, text
    return int(m.group(1))


class FifoReader:
    """The read side of a FIFO, opened late and read without blocking."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = b""

    def read(self):
        while True:
            try:
                b = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return self.data
            if not b:
                return self.data
            self.data += b

    def lines(self):
        return self.data.split(b"\n")[:-1]

    def close(self):
        os.close(self.fd)


def fifo_gateway(sluice_factory, origin, tmp_path, **log):
    fifo = tmp_path / "access.fifo"
    os.mkfifo(fifo)
    admin = free_port()
    conf = basic_config(free_port(), {"app": [origin.address]},
                        log=dict({"level": "info", "access": str(fifo)}, **log),
                        admin={"address": f"127.0.0.1:{admin}"})
    return sluice_factory(conf), fifo, admin


# -- a sink that takes nothing -----------------------------------------------------------------


def test_a_fifo_nobody_reads_never_stalls_requests_and_every_line_is_written_or_counted(
        sluice_factory, origin, tmp_path):
    s, fifo, admin = fifo_gateway(sluice_factory, origin, tmp_path, access_buffer="16k")
    port = s.listen_ports()[0]
    # 2,000 requests: far more lines than the FIFO (64 KiB) and the writer's
    # buffer (16 KiB) hold together.
    statuses = get_many(port, "/", 2000)
    assert statuses == [200] * 2000
    # Still responsive, on a new connection too, and the losses are counted.
    assert requests.get(s.url + "/again", timeout=5).status_code == 200
    assert dropped(admin) > 0
    # A reader arrives: it gets whole JSON lines, in order, and together with
    # the dropped ones they are every request.
    reader = FifoReader(fifo)
    try:
        def complete():
            reader.read()
            return len(reader.lines()) + dropped(admin) == 2001

        wait_for(complete, timeout=10, interval=0.05, what="read lines + dropped = requests")
        lines = [json.loads(l) for l in reader.lines()]
    finally:
        reader.close()
    assert 0 < len(lines) < 2001
    assert all(l["status"] == 200 and l["path"] in ("/", "/again") for l in lines)
    assert lines[0]["path"] == "/"  # the oldest lines were kept, not overwritten
    # Lines flow again while the reader reads.
    reader = FifoReader(fifo)
    try:
        assert requests.get(s.url + "/after", timeout=5).status_code == 200
        got = wait_for(lambda: [l for l in reader.read().split(b"\n") if b'"/after"' in l],
                       what="the next line through the FIFO")
        assert json.loads(got[0])["status"] == 200
    finally:
        reader.close()


def test_a_fifo_nobody_reads_does_not_hang_shutdown(sluice_factory, origin, tmp_path):
    s, fifo, admin = fifo_gateway(sluice_factory, origin, tmp_path, access_buffer="8k")
    assert get_many(s.listen_ports()[0], "/", 800) == [200] * 800
    assert dropped(admin) > 0
    # The writer holds queued lines it cannot write; stop gives up on them
    # after a second and exits cleanly (the harness would kill it after 10 s).
    assert s.stop(timeout=10) == 0
    assert "stopped" in s.error_log()


def fds_open_on(pid, path):
    """How many of process pid's descriptors are open on path."""
    want, n = os.path.realpath(path), 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}") == want
        except FileNotFoundError:  # closed meanwhile
            pass
    return n


def test_sigusr1_against_a_fifo_nobody_reads_keeps_one_descriptor_waiting_not_one_per_signal(
        sluice_factory, origin, tmp_path):
    s, fifo, admin = fifo_gateway(sluice_factory, origin, tmp_path, access_buffer="8k")
    port = s.listen_ports()[0]
    assert get_many(port, "/", 800) == [200] * 800
    assert dropped(admin) > 0  # the FIFO is full: the writer is stuck on it
    assert fds_open_on(s.proc.pid, fifo) == 1
    # The first reopen waits for the stuck sink (and gives up after a
    # second); the later ones take its waiting descriptor's place.
    for i in range(1, 4):
        s.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: s.error_log().count("log files reopened") == i, what=f"reopen {i}")
    assert fds_open_on(s.proc.pid, fifo) == 2
    # A reader comes: the stuck lines go out, the switch happens, and the
    # old descriptor is closed; lines keep flowing through the new one.
    reader = FifoReader(fifo)
    try:
        wait_for(lambda: reader.read() is not None and fds_open_on(s.proc.pid, fifo) == 1,
                 what="the switch to the reopened FIFO")
        assert requests.get(s.url + "/after", timeout=5).status_code == 200
        got = wait_for(lambda: [l for l in reader.read().split(b"\n") if b'"/after"' in l],
                       what="the next line through the FIFO")
        assert json.loads(got[0])["status"] == 200
    finally:
        reader.close()
    assert s.stop(timeout=10) == 0


def test_a_full_stdout_pipe_whose_reader_died_drops_its_lines_and_says_so_once(
        sluice_factory, origin):
    admin = free_port()
    conf = basic_config(free_port(), {"app": [origin.address]},
                        log={"level": "info", "access": "stdout", "access_buffer": "8k"},
                        admin={"address": f"127.0.0.1:{admin}"})
    s = sluice_factory(conf, start=False)
    # stdout is a pipe the test holds the read end of (sluice piped to a
    # shipper), made small so that a few requests fill it.
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, 4096)
    with open(s.error_path, "ab") as err:
        s.proc = subprocess.Popen([str(SLUICE), "-c", str(s.conf_path)], stdout=w, stderr=err,
                                  env=s.env)
    os.close(w)
    port = s.listen_ports()[0]
    try:
        wait_port(port, proc=s.proc)
        assert get_many(port, "/", 200) == [200] * 200
        assert dropped(admin) > 0  # the pipe is full, nobody reads
    finally:
        os.close(r)  # the reader dies, leaving the pipe full
    # The writer's next write() sees EPIPE: it says so, naming the sink...
    warning = "access log stdout: write failed: Broken pipe"
    wait_for(lambda: warning in s.error_log(), what="the write failure warning")
    # ...and from then on every line is dropped and counted (the pipe held
    # at most 4096 bytes of the 500 lines, each longer than 100 bytes),
    # while requests are served as before.
    assert get_many(port, "/", 300) == [200] * 300
    wait_for(lambda: dropped(admin) >= 500 - 4096 // 100, what="every later line counted")
    assert s.error_log().count(warning) == 1
    assert s.error_log().count("write failed") == 1
    assert s.stop(timeout=10) == 0
    assert "stopped" in s.error_log()


def test_a_fifo_is_opened_without_waiting_for_a_reader_on_reload_too(
        sluice_factory, origin, tmp_path):
    conf = basic_config(free_port(), {"app": [origin.address]})
    s = sluice_factory(conf)
    fifo = tmp_path / "later.fifo"
    os.mkfifo(fifo)
    s.reload(dict(conf, log={"level": "info", "access": str(fifo)}))
    assert "configuration reloaded" in s.error_log()
    assert requests.get(s.url + "/via-fifo", timeout=5).status_code == 200
    reader = FifoReader(fifo)
    try:
        got = wait_for(lambda: [l for l in reader.read().split(b"\n") if b'"/via-fifo"' in l],
                       what="the line in the FIFO")
        assert json.loads(got[0])["status"] == 200
    finally:
        reader.close()


# -- sampling ------------------------------------------------------------------------------------


def sampling_routes():
    return [
        {"name": "app", "match": {"path": "/app"}, "upstream": "app"},
        {"name": "busy", "match": {"path": "/busy"}, "upstream": "app",
         "log": {"access_sample": 4}},
        {"name": "audit", "match": {"path": "/audit"}, "upstream": "app",
         "log": {"access_sample": 1}},
    ]


def test_access_sample_keeps_exactly_one_in_n_successful_requests_and_every_error(
        sluice_factory, origin):
    admin = free_port()
    conf = basic_config(free_port(), {"app": [origin.address]}, routes=sampling_routes(),
                        log={"level": "info", "access": "stdout", "access_sample": 10},
                        admin={"address": f"127.0.0.1:{admin}"})
    s = sluice_factory(conf)
    port = s.listen_ports()[0]
    # Errors in between do not move the count of successful requests.
    sent = {"ok": 0, "5xx": 0, "4xx": 0, "no_route": 0}
    for i in range(10):
        assert get_many(port, "/app", 100) == [200] * 100
        assert get_many(port, "/app?status=503", 3) == [503] * 3
        assert get_many(port, "/app?status=404", 2) == [404] * 2
        assert get_many(port, "/nowhere", 1) == [404]
    want = 1000 // 10 + 30 + 20 + 10

    lines = wait_for(lambda: (l := s.access_log()) and len(l) >= want and l, timeout=10,
                     what=f"{want} access log lines")
    ok = [l for l in lines if l["status"] == 200]
    assert len(ok) == 100, len(ok)  # exact: a counter per worker, not a random draw
    assert sum(l["status"] == 503 for l in lines) == 30
    assert sum(l["status"] == 404 and l["route"] == "app" for l in lines) == 20
    assert sum(l["status"] == 404 and l["route"] is None for l in lines) == 10
    assert len(lines) == want
    assert dropped(admin) == 0  # a sink that keeps up loses nothing


def test_a_route_samples_on_its_own_or_logs_everything(sluice_factory, origin):
    conf = basic_config(free_port(), {"app": [origin.address]}, routes=sampling_routes(),
                        log={"level": "info", "access": "stdout", "access_sample": 10})
    s = sluice_factory(conf)
    port = s.listen_ports()[0]
    assert get_many(port, "/busy", 100) == [200] * 100
    assert get_many(port, "/audit", 30) == [200] * 30
    assert get_many(port, "/app", 50) == [200] * 50
    lines = wait_for(lambda: (l := s.access_log()) and len(l) >= 25 + 30 + 5 and l,
                     what="the sampled lines")
    by_route = {r: sum(l["route"] == r for l in lines) for r in ("busy", "audit", "app")}
    assert by_route == {"busy": 25, "audit": 30, "app": 5}


def test_sampling_follows_a_reload(sluice_factory, origin):
    conf = basic_config(free_port(), {"app": [origin.address]})
    s = sluice_factory(conf)
    port = s.listen_ports()[0]
    assert get_many(port, "/", 20) == [200] * 20
    wait_for(lambda: len(s.access_log()) == 20, what="every line before the reload")
    s.reload(dict(conf, log={"level": "info", "access": "stdout", "access_sample": 5}))
    assert "configuration reloaded" in s.error_log()
    assert get_many(port, "/", 50) == [200] * 50
    wait_for(lambda: len(s.access_log()) >= 30, what="the sampled lines after the reload")
    assert len(s.access_log()) == 30


# -- reopening -----------------------------------------------------------------------------------


def test_sigusr1_reopens_the_file_with_every_earlier_line_in_the_old_one(
        sluice_factory, origin, tmp_path):
    access = tmp_path / "access.log"
    conf = basic_config(free_port(), {"app": [origin.address]},
                        log={"level": "info", "access": str(access)})
    s = sluice_factory(conf)
    port = s.listen_ports()[0]
    assert get_many(port, "/before", 300) == [200] * 300
    rotated = tmp_path / "access.log.1"
    access.rename(rotated)
    s.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: "log files reopened" in s.error_log(), what="the reopen")
    # The reopen waits for the lines queued before it: they are all in the
    # rotated file by the time it says it is done.
    old = rotated.read_text().splitlines()
    assert len(old) == 300 and all(json.loads(l)["path"] == "/before" for l in old)
    assert get_many(port, "/after", 20) == [200] * 20
    new = wait_for(lambda: access.exists() and len(access.read_text().splitlines()) >= 20
                   and access.read_text().splitlines(), what="the lines in the new file")
    assert len(new) == 20 and all(json.loads(l)["path"] == "/after" for l in new)
    assert len(rotated.read_text().splitlines()) == 300


def test_every_queued_line_is_written_before_exit(sluice_factory, origin, tmp_path):
    access = tmp_path / "access.log"
    conf = basic_config(free_port(), {"app": [origin.address]}, workers=2,
                        log={"level": "info", "access": str(access)})
    s = sluice_factory(conf)
    assert get_many(s.listen_ports()[0], "/", 500) == [200] * 500
    assert s.stop() == 0
    assert len(access.read_text().splitlines()) == 500


# -- refused configs -----------------------------------------------------------------------------


def test_a_bad_access_sample_or_buffer_is_refused_at_its_line_and_column(tmp_path):
    port = free_port()
    text = (
        "workers: 1\n"
        "listen:\n"
        f"  - address: 127.0.0.1:{port}\n"
        "log: {access: stdout, access_sample: 0, access_buffer: 1k}\n"
        "upstreams:\n"
        "  app:\n"
        "    targets:\n"
        "      - address: 127.0.0.1:9\n"
        "routes:\n"
        "  - name: a\n"
        "    match: {path: /a}\n"
        "    upstream: app\n"
        "    log: {access_sample: 2.5}\n"
        "  - name: b\n"
        "    match: {path: /b}\n"
        "    upstream: app\n"
        "    log: {access_sample: ten, sample: 3}\n"
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    rc, out, err = check_config(path)
    assert rc == 1, (out, err)
    errs = {m["rest"].split(":")[0]: m for m in ERROR_RE.finditer(err)}

    def at(key, line_has, token, *words):
        assert key in errs, f"no error for {key} in:\n{err}"
        m = errs[key]
        n = next(i for i, l in enumerate(text.splitlines(), 1) if line_has in l)
        col = text.splitlines()[n - 1].index(token) + 1
        assert m["file"] == str(path)
        assert (int(m["line"]), int(m["col"])) == (n, col), err
        for w in words:
            assert w in m["rest"], err

    at("log.access_sample", "access_sample: 0", "0,", "1 or more")
    at("log.access_buffer", "access_buffer: 1k", "1k", "between 4k and 1g")
    at("routes[0].log.access_sample", "access_sample: 2.5", "2.5", "whole number")
    at("routes[1].log.access_sample", "access_sample: ten", "ten", "whole number")
    at("routes[1].log.sample", "access_sample: ten", "sample: 3", "unknown key")


def test_a_good_access_sample_passes_the_check(tmp_path):
    conf = basic_config(free_port(), {"app": ["127.0.0.1:9"]}, routes=[
        {"name": "busy", "match": {"path": "/"}, "upstream": "app",
         "log": {"access_sample": 100}}],
        log={"level": "info", "access": "stdout", "access_sample": 10, "access_buffer": "4m"})
    import yaml

    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    rc, out, err = check_config(path)
    assert rc == 0, err
    assert "configuration ok" in out
