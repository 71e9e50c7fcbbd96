"""The load generators, and what one run of one of them on one server gives.

Each run_* function drives one server once and returns a record (a dict):
ops and rate (requests, handshakes or connections, and per second),
latency percentiles in microseconds where the driver measures them, the
server's CPU per op split into user and kernel time (from /proc, over the
server's whole process tree), and errors. syscall_pass() is the separate
short pass under strace.
"""

import http.client
import json
import math
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import zlib
from pathlib import Path

from . import procs

LIB = Path(__file__).resolve().parent
LATENCY_KEYS = ("p50", "p75", "p90", "p99", "p99.9", "max", "mean")
PACED_TICK_US = 100  # sluice-paced -g: the timer fires on a 100 us grid

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"mean": %.1f, "p50": %d, "p75": %d, "p90": %d, "p99": %d, "p99.9": %d, "max": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def lua_str(s):
    return json.dumps(s)  # ASCII only here: a JSON string is a Lua string


def wrk_script(path, sc):
    """The wrk Lua script for scenario sc: its request, and done() printing
    the figures as one JSON line (p99.9 included, which --latency lacks)."""
    lines = [f"wrk.method = {lua_str(sc.method)}"]
    headers = dict(sc.headers)
    if sc.body_bytes:
        lines.append(f'wrk.body = string.rep("x", {sc.body_bytes})')
        headers.setdefault("Content-Type", "application/octet-stream")
    for k, v in headers.items():
        lines.append(f"wrk.headers[{lua_str(k)}] = {lua_str(v)}")
    if sc.tokens_file:  # a different Authorization header on each request, in turn
        lines += [
            f"local tokens = {{}}\nfor l in io.lines({lua_str(str(sc.tokens_file))}) do",
            "  tokens[#tokens + 1] = l\nend",
            "local i = 0\nrequest = function()\n  i = i % #tokens + 1",
            "  local h = {}\n  for k, v in pairs(wrk.headers) do h[k] = v end",
            '  h["Authorization"] = "Bearer " .. tokens[i]',
            "  return wrk.format(nil, nil, h)\nend",
        ]
    Path(path).write_text("\n".join(lines) + "\n" + DONE_LUA)
    return path


def url(server, sc):
    if sc.tls:
        return f"https://127.0.0.1:{server.tls_port}{sc.path}"
    return f"http://127.0.0.1:{server.port}{sc.path}"


def wrk_args(server, sc, seconds, script):
    return ["wrk", "-t1", f"-c{sc.conns}", f"-d{max(1, math.ceil(seconds))}s", "--timeout", "10s",
            "-s", str(script), url(server, sc)]


def parse_wrk(out):
    m = re.search(r"^BENCH (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError("wrk printed no result:\n" + out[-2000:])
    w = json.loads(m.group(1))
    sock = w["connect"] + w["read"] + w["write"] + w["timeout"]
    return {
        "ops": w["requests"], "rate": w["requests"] / max(w["duration_us"], 1) * 1e6,
        "lat": {k: float(w[k]) for k in LATENCY_KEYS},
        "errors": w["status"] + sock, "non2xx": w["status"], "socket_errors": sock,
        "bytes": w["bytes"],
    }


def with_cpu(server, ops_of, fn):
    """Run fn() and add the server's CPU per op (user and kernel, us)."""
    pids = server.pids()
    u0, s0 = procs.cpu_times(pids)
    rec = fn()
    u1, s1 = procs.cpu_times(pids)
    n = max(ops_of(rec), 1)
    rec["cpu_user_us"] = (u1 - u0) * 1e6 / n
    rec["cpu_sys_us"] = (s1 - s0) * 1e6 / n
    return rec


def run_wrk(server, sc, seconds, script):
    def go():
        r = subprocess.run(wrk_args(server, sc, seconds, script), capture_output=True, text=True,
                           timeout=seconds + 60)
        return parse_wrk(r.stdout + r.stderr)
    return with_cpu(server, lambda r: r["ops"], go)


def s_time(port, version, reuse, seconds):
    r = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}",
                        "-reuse" if reuse else "-new", f"-{version}",
                        "-time", str(max(1, math.ceil(seconds))), "-www", "/"],
                       capture_output=True, text=True, timeout=seconds + 60)
    m = re.findall(r"(\d+) connections in ([\d.]+)s;", r.stdout)
    t = re.findall(r"(\d+) connections in (\d+) real seconds", r.stdout)
    if not t:
        raise RuntimeError("s_time failed:\n" + r.stdout + r.stderr)
    n, real = int(t[-1][0]), int(t[-1][1])
    return {"ops": n, "rate": n / max(real, 1), "errors": 0,
            "client_cpu_s": float(m[-1][1]) if m else None}


def run_handshake(server, sc, seconds):
    return with_cpu(server, lambda r: r["ops"],
                    lambda: s_time(server.tls_port, sc.tls_version, sc.resume, seconds))


def run_paced(server, sc, seconds, rate, build, warmup=1.0):
    args = [Path(build) / "bench" / "paced" / "sluice-paced", "-p", server.port,
            "-c", sc.conns, "-r", f"{rate:.0f}", "-d", seconds, "-w", warmup, "-T", 5,
            "-g", PACED_TICK_US, "-P", sc.path]

    def go():
        r = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                           timeout=seconds + warmup + 60)
        try:
            p = json.loads(r.stdout)
        except ValueError:
            raise RuntimeError("sluice-paced failed:\n" + r.stdout + r.stderr) from None
        lat = p["latency_us"]
        return {"ops": p["completed"], "rate": p["rate_achieved"], "rate_target": rate,
                "lat": {k: lat[k] for k in ("p50", "p90", "p99", "p99.9", "max", "mean")},
                "send_lag_p99": p["send_lag_us"]["p99"], "unfinished": p["unfinished"],
                "errors": p["errors"] + p["non2xx"] + p["unfinished"], "non2xx": p["non2xx"]}
    return with_cpu(server, lambda r: r["ops"], go)


def read_json_line(proc, timeout):
    """The next line proc prints, as JSON; fails after timeout seconds."""
    ready, _, _ = select.select([proc.popen.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"{proc.name} said nothing for {timeout}s")
    line = proc.popen.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.name} ended early")
    return json.loads(line)


def one_request(server, tls):
    """A plain GET / through the server (warms it before a memory baseline)."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", server.tls_port, timeout=10, context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        c.request("GET", "/")
        c.getresponse().read()
    finally:
        c.close()


def encoding_check(server, sc, origin_port):
    """One request of sc through the server and the same straight from the
    origin: the Content-Encoding the server answered with, the sizes, and
    whether its body decodes to exactly the origin's."""
    def get(port, headers):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.putrequest(sc.method, sc.path, skip_accept_encoding=True)
            for k, v in headers.items():
                c.putheader(k, v)
            c.endheaders()
            r = c.getresponse()
            return r.getheader("Content-Encoding"), r.read()
        finally:
            c.close()

    enc, body = get(server.port, sc.headers)
    _, plain = get(origin_port, {})
    try:
        decoded = zlib.decompress(body, 16 + zlib.MAX_WBITS) if enc == "gzip" else body
    except zlib.error:
        decoded = None
    return {"encoding": enc, "bytes": len(body), "identity_bytes": len(plain),
            "decodes": decoded == plain}


def run_idle(server, sc, n):
    """RSS growth of the server's tree from before n connections open to
    after (each did one request, or none for silent), per connection."""
    one_request(server, sc.tls)
    time.sleep(0.2)
    before = procs.mem_kib(server.pids(), "VmRSS")
    u0, s0 = procs.cpu_times(server.pids())
    args = [sys.executable, LIB / "idle_client.py", server.tls_port if sc.tls else server.port,
            n, "--mode", sc.idle_mode] + (["--tls"] if sc.tls else [])
    client = procs.start(args, name="idle-client", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        opened = read_json_line(client, 120)
        time.sleep(0.5)
        pids = server.pids()
        after = procs.mem_kib(pids, "VmRSS")
        hwm_held = procs.mem_kib(pids, "VmHWM")
        u1, s1 = procs.cpu_times(pids)
        client.popen.stdin.write(b"check\n")
        client.popen.stdin.flush()
        still = read_json_line(client, 30)["open"]
    finally:
        client.stop()
    ok = max(opened["ok"], 1)
    return {"ops": opened["ok"], "rate": opened["ok"] / max(opened["seconds"], 1e-3),
            "kib_per_conn": (after - before) / ok, "rss_before_kib": before,
            "rss_after_kib": after, "hwm_held_kib": hwm_held, "still_open": still,
            "errors": opened["failed"] + (opened["ok"] - still), "error_kinds": opened["errors"],
            "cpu_user_us": (u1 - u0) * 1e6 / ok, "cpu_sys_us": (s1 - s0) * 1e6 / ok}


def origin_requests(origin_port):
    c = http.client.HTTPConnection("127.0.0.1", origin_port, timeout=10)
    try:
        c.request("GET", "/stats")
        return json.loads(c.getresponse().read())["requests"]
    finally:
        c.close()


def strace_total(path):
    """Calls in strace -c's 'total' line."""
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if f and f[-1] == "total":
            return int(f[3])
    return 0


def wait_attached(st, count, timeout=5.0):
    deadline, seen, buf = time.monotonic() + timeout, 0, b""
    while seen < count and time.monotonic() < deadline:
        ready, _, _ = select.select([st.stderr], [], [], 0.1)
        if ready:
            chunk = st.stderr.read1(4096) if hasattr(st.stderr, "read1") else st.stderr.read(1)
            if not chunk:
                break
            buf += chunk
            seen = buf.count(b" attached")


def syscall_pass(server, sc, seconds, script, origin_port, tmp):
    """Syscalls per request: wrk runs, strace -f -c counts every syscall of the
    server's tree for `seconds`, the origin counts the requests meanwhile."""
    wrk = procs.start(wrk_args(server, sc, seconds + 2.5, script), name="wrk")
    out = Path(tmp) / f"strace-{server.name}-{sc.name}.txt"
    try:
        time.sleep(0.3)
        pids = server.pids()
        args = ["strace", "-f", "-c", "-o", out] + [x for p in pids for x in ("-p", p)]
        st = procs.start(args, name="strace", stderr=subprocess.PIPE)
        try:
            wait_attached(st.popen, len(pids))
            n0 = origin_requests(origin_port)
            time.sleep(seconds)
            n1 = origin_requests(origin_port)
            st.signal(signal.SIGINT)
            st.popen.wait(10)
        finally:
            st.stop()
    finally:
        wrk.stop()
    requests = n1 - n0 - 1  # the second /stats counts itself
    calls = strace_total(out)
    return {"syscalls": calls, "requests": requests,
            "per_request": calls / requests if requests > 0 else None}


def s_client(port, version, tmp, sess_in=False):
    sess = Path(tmp) / f"session-{port}-{version}.pem"
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", f"-{version}",
            "-sess_in" if sess_in else "-sess_out", str(sess)]
    request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    r = subprocess.run(args + ["-ign_eof"], input=request,
                       capture_output=True, text=True, timeout=20)
    return r.stdout


def negotiated(port, tmp):
    """What a default TLS client gets from the server: cipher and group for
    TLS 1.3 and 1.2, and whether a second connection resumes the session."""
    out = {}
    for v in ("tls1_3", "tls1_2"):
        first = s_client(port, v, tmp)
        cipher = re.search(r"Cipher is (\S+)", first)
        group = re.search(r"Server Temp Key: ([^\n]+)", first)
        out[v] = f"{cipher.group(1) if cipher else '?'} / {group.group(1) if group else '?'}"
        again = s_client(port, v, tmp, sess_in=True)
        out["resumed_" + v] = "yes" if re.search(r"^Reused,", again, re.M) else "no"
    return out


def port_closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
