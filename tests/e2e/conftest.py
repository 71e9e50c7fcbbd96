"""End-to-end test harness: the real sluice binary in front of real upstreams.

Every test writes its own config, starts its own processes on free loopback
ports, and stops them (by PID) when it ends. Nothing here sleeps to wait for
a server: we wait for its port to accept connections or for a line it prints.
"""

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SLUICE_BUILD", ROOT / "build"))
SLUICE = BUILD / "gateway" / "sluice"
ORIGIN = BUILD / "bench" / "origin" / "sluice-origin"


# One place for the port helpers: the bench's (bench/lib/procs.py), loaded
# by path so that its folder name does not shadow anything.
_procs_spec = importlib.util.spec_from_file_location("sluice_bench_procs",
                                                     ROOT / "bench" / "lib" / "procs.py")
_procs = importlib.util.module_from_spec(_procs_spec)
_procs_spec.loader.exec_module(_procs)
free_port = _procs.free_port  # a port nothing listens on right now
wait_port = _procs.wait_port  # until 127.0.0.1:port accepts (or the process exits)


def wait_for(cond, timeout=10.0, interval=0.02, what="condition"):
    """Poll cond() until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Origin:
    """A sluice-origin process (bench/origin/) on a free port."""

    def __init__(self, name="origin", threads=1, debug=False, port=0, log_path=None):
        self.name = name
        args = [str(ORIGIN), "-p", str(port), "-n", name, "-t", str(threads)]
        if debug:
            args.append("-d")
        self.log_path = log_path
        stderr = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr)
        if log_path:
            stderr.close()
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"origin did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.address = f"127.0.0.1:{self.port}"

    def stats(self):
        import requests

        return requests.get(f"http://{self.address}/stats", timeout=5).json()

    def stop(self, sig=signal.SIGTERM):
        return stop_process(self.proc, sig)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def request_log(self):
        """Lines "REQ <usec> <METHOD> <TARGET>" written with -d."""
        if not self.log_path or not os.path.exists(self.log_path):
            return []
        out = []
        for line in Path(self.log_path).read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0] == "REQ":
                out.append((int(parts[1]), parts[2], parts[3]))
        return out


class Sluice:
    """A sluice process running a config written for the test."""

    def __init__(self, tmp_path, config, name="sluice", check=True, env=None):
        self.dir = Path(tmp_path)
        self.conf_path = self.dir / f"{name}.yaml"
        self.access_path = self.dir / f"{name}.access.log"
        self.error_path = self.dir / f"{name}.error.log"
        self.config = config
        self.write_config(config)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.port = None

    def write_config(self, config):
        self.config = config
        if isinstance(config, str):
            self.conf_path.write_text(config)
        else:
            self.conf_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, wait=True):
        out = open(self.access_path, "ab")
        err = open(self.error_path, "ab")
        self.proc = subprocess.Popen(
            [str(SLUICE), "-c", str(self.conf_path)], stdout=out, stderr=err, env=self.env
        )
        out.close()
        err.close()
        if wait:
            for port in self.listen_ports():
                wait_port(port, proc=self.proc)
        return self

    def listen_ports(self):
        conf = self.config if isinstance(self.config, dict) else yaml.safe_load(self.config)
        return [int(l["address"].rsplit(":", 1)[1]) for l in conf.get("listen", [])]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.listen_ports()[0]}"

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc is None:
            return None
        return stop_process(self.proc, sig, timeout)

    def reload(self, config=None):
        if config is not None:
            self.write_config(config)
        before = self.error_log().count("configuration reloaded") + self.error_log().count(
            "reload failed"
        )
        self.proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: self.error_log().count("configuration reloaded")
            + self.error_log().count("reload failed")
            > before,
            what="reload outcome",
        )

    def error_log(self):
        return self.error_path.read_text(errors="replace") if self.error_path.exists() else ""

    def access_text(self):
        """The access log as text. A background thread writes it a moment
        after each response has gone (http/access_log.c): the file is read
        until it has stayed the same for 50 ms (2 s at the most), so the
        lines of the requests a test has had answered are in it."""
        deadline, text = time.monotonic() + 2.0, None
        while True:
            now = self.access_path.read_text() if self.access_path.exists() else ""
            if now == text or time.monotonic() > deadline:
                return now
            text = now
            time.sleep(0.05)

    def access_log(self):
        """The access log lines, parsed (every line must be valid JSON)."""
        return [json.loads(l) for l in self.access_text().splitlines() if l.strip()]

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class RecordingUpstream:
    """A raw TCP upstream that records the bytes of every connection and
    never answers, so a test sees exactly what the gateway forwarded."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []  # [bytearray, closed-event, socket]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            rec = [bytearray(), threading.Event(), c]
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self._read, args=(rec,), daemon=True).start()

    def _read(self, rec):
        data, closed, c = rec
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data.extend(b)
        except OSError:
            pass
        closed.set()
        c.close()

    def received(self):
        with self.lock:
            return [bytes(r[0]) for r in self.conns]

    def all_closed(self):
        with self.lock:
            return all(r[1].is_set() for r in self.conns)

    def close(self):
        self.sock.close()
        with self.lock:
            for r in self.conns:
                try:
                    r[2].shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class AnsweringUpstream(RecordingUpstream):
    """A raw upstream that records each request's exact bytes (head, body and
    trailers, as framed) and answers each with a small 200, so a test sees
    exactly what the gateway forwarded and the client still gets a response."""

    def __init__(self):
        self.requests = []
        super().__init__()

    @staticmethod
    def _message_end(buf):
        """Where the first complete request in buf ends, or -1."""
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return -1
        head = buf[:head_end].decode("latin-1").lower()
        start = head_end + 4
        if "\r\ntransfer-encoding: chunked" in head:
            pos = start
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return -1
                if int(buf[pos:eol].split(b";")[0], 16) == 0:
                    end = buf.find(b"\r\n\r\n", pos)  # the trailers, then a blank line
                    return -1 if end < 0 else end + 4
                pos = eol + 2 + int(buf[pos:eol].split(b";")[0], 16) + 2
                if pos > len(buf):
                    return -1
        m = re.search(r"\r\ncontent-length: *(\d+)", head)
        n = int(m.group(1)) if m else 0
        return start + n if len(buf) >= start + n else -1

    def _read(self, rec):
        buf, closed, c = rec
        try:
            while True:
                end = self._message_end(buf)
                if end < 0:
                    b = c.recv(65536)
                    if not b:
                        break
                    buf.extend(b)
                    continue
                with self.lock:
                    self.requests.append(bytes(buf[:end]))
                del buf[:end]
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
        closed.set()
        c.close()


class ScriptedUpstream(RecordingUpstream):
    """A raw upstream that hands each connection to answer(up, conn), which
    reads and writes exact bytes (RecordingUpstream's accept loop and close),
    so a test says precisely what the upstream did. A read on the connection
    times out after 5 s; the connection is closed when answer returns."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []  # request heads, in arrival order
        self.closed_by_gateway = []  # per connection that asked: did the gateway close it
        self.seen = []  # whatever an answer notes down for its test
        super().__init__()

    def _read(self, rec):
        _, closed, c = rec
        c.settimeout(5)
        try:
            self.answer(self, c)
        except OSError:
            pass
        closed.set()
        c.close()

    @property
    def connections(self):
        with self.lock:
            return len(self.conns)

    @staticmethod
    def read_head(c):
        """The bytes of one request head and whatever followed it in the same
        reads; what came before EOF if the head never ended."""
        data = b""
        while b"\r\n\r\n" not in data:
            b = c.recv(65536)
            if not b:
                break
            data += b
        return data

    def read_request(self, c):
        """One request head (and its Content-Length body); None at EOF."""
        data = self.read_head(c)
        if b"\r\n\r\n" not in data:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                while len(body) < int(value):
                    more = c.recv(65536)
                    if not more:
                        return None
                    body += more
        with self.lock:
            self.requests.append(head)
        return head, body

    def wait_for_gateway_close(self, c, timeout=3.0):
        """Record whether the gateway closed c within timeout."""
        c.settimeout(timeout)
        try:
            closed = c.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
        with self.lock:
            self.closed_by_gateway.append(closed)


class RawClient:
    """One client connection spoken to byte by byte, with a read buffer."""

    def __init__(self, port, timeout=10.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def fill(self, n=65536):
        b = self.sock.recv(n)
        if not b:
            raise EOFError("the gateway closed the connection")
        self.buf += b

    def until(self, delim):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            self.fill()

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def some(self, n=1 << 20):
        """Up to n bytes: what is buffered, else one recv; b"" at EOF."""
        if self.buf:
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out
        return self.sock.recv(n)


def check_config(path):
    """Run `sluice -t -c path`; return (exit code, stdout, stderr)."""
    r = subprocess.run([str(SLUICE), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout, r.stderr


def basic_config(port, upstreams, routes=None, **extra):
    """A config dict listening on port, with upstreams {name: [addresses]}."""
    conf = {
        "workers": 1,
        "listen": [{"address": f"127.0.0.1:{port}"}],
        "log": {"level": "info", "access": "stdout"},
        "upstreams": {
            name: {"targets": [{"address": a} for a in addrs]} for name, addrs in upstreams.items()
        },
        "plugins": {"request_id": {}},
        "routes": routes
        or [{"name": "all", "match": {"path": "/"}, "upstream": next(iter(upstreams))}],
    }
    conf.update(extra)
    return conf


def upstream_config(port, targets, workers=1, **upstream):
    """A config with one upstream "app" (every path routed to it).

    targets: addresses, or dicts {address, weight, backup}."""
    conf = basic_config(port, {"app": ["127.0.0.1:1"]})
    conf["workers"] = workers
    conf["log"] = {"level": "info", "access": "off"}
    conf["upstreams"]["app"] = dict(
        targets=[t if isinstance(t, dict) else {"address": t} for t in targets], **upstream
    )
    return conf


def raw_request(port, data, timeout=5.0, read_all=True, shutdown=False):
    """Send raw bytes; return everything received until the server closes
    (or until timeout when the connection stays open)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
            if not read_all:
                break
        return b"".join(chunks)
    finally:
        s.close()


def is_closed(sock, timeout=3.0):
    """True if the peer closed sock (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Redis:
    """A redis-server on a free loopback port, no persistence."""

    def __init__(self, tmp_path, port=None, password=None):
        self.port = port or free_port()
        self.password = password
        self.dir = Path(tmp_path)
        self.proc = None
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def cli(self, *args):
        cmd = ["redis-cli", "-p", str(self.port)]
        if self.password:
            cmd += ["--no-auth-warning", "-a", self.password]
        return subprocess.run(cmd + list(args), capture_output=True, text=True,
                              timeout=10).stdout.strip()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            stop_process(self.proc)


@pytest.fixture
def redis_factory(tmp_path):
    started = []

    def make(**kw):
        r = Redis(tmp_path, **kw)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def redis(redis_factory):
    return redis_factory()


@pytest.fixture
def origin_factory(tmp_path):
    started = []

    def make(name="origin", **kw):
        o = Origin(name=name, **kw)
        started.append(o)
        return o

    yield make
    for o in started:
        if o.proc.poll() is None:
            try:
                o.proc.send_signal(signal.SIGCONT)  # in case a test stopped it
            except ProcessLookupError:
                pass
            o.stop()


@pytest.fixture
def origin(origin_factory):
    return origin_factory("origin")


@pytest.fixture
def sluice_factory(tmp_path):
    started = []

    def make(config, name="sluice", start=True, env=None):
        s = Sluice(tmp_path, config, name=name, env=env)
        started.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
        # A crash is a failure even if the test itself passed.
        if s.proc is not None:
            assert s.proc.returncode in (0, None, -signal.SIGKILL), (
                f"sluice exited with {s.proc.returncode}:\n{s.error_log()[-3000:]}"
            )
            assert "AddressSanitizer" not in s.error_log(), s.error_log()[-5000:]
            assert "runtime error:" not in s.error_log(), s.error_log()[-5000:]


@pytest.fixture
def gateway(sluice_factory, origin):
    """sluice with one route to one origin: (sluice, origin)."""
    port = free_port()
    s = sluice_factory(basic_config(port, {"app": [origin.address]}))
    return s, origin


# The TLS tests' fixtures (pki, https, mtls) live with the helpers they use in
# tls_helpers.py; imported here, every test file has them. The import comes
# last because tls_helpers imports from this module. Its asserts are
# rewritten like a test's, so a failing one shows its values.
pytest.register_assert_rewrite("tls_helpers")
from tls_helpers import https, mtls, pki  # noqa: E402,F401
