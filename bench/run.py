#!/usr/bin/python3
"""sluice bench: the same load through sluice and its peers, in one run.

Every scenario starts the fast origin (bench/origin/) once, then for each
proxy (sluice, nginx, HAProxy) starts it with one worker in front of that
origin, drives it with wrk, and samples the proxy's CPU time from /proc. The
runs alternate between proxies and repeat, and the report gives medians and
ratios against nginx: the machines are shared and noisy, so only ratios from
one run mean anything.

    bench/run.py                      # every scenario, 3 rounds of 10 s
    bench/run.py -s proxy -r 5 -d 10  # one scenario
    bench/run.py --json out.json

Scenarios:
  proxy      plain HTTP keep-alive through the proxy (wrk -c50)
  https      HTTPS keep-alive (same ECDSA P-256 certificate everywhere)
  handshake  proxy CPU per TLS handshake, full and resumed, TLS 1.3 and 1.2
             (openssl s_time: one request per connection; the client, not
             the proxy, limits handshakes per second here, so the figure to
             compare is CPU per handshake, not handshakes per second)
  ratelimit  sluice alone: no limit vs a local limit vs a Redis limit,
             with limits high enough that nothing is rejected
  jwt        sluice alone: the plain route vs the same route with the jwt
             plugin, RS256 and ES256 with one token reused (the verified-token
             cache's case) and RS256 with a fresh token per request (5,000
             tokens in turn, more than the cache holds: a signature check
             each time)
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("SLUICE_BUILD", ROOT / "build"))
SLUICE = BUILD / "gateway" / "sluice"
ORIGIN = BUILD / "bench" / "origin" / "sluice-origin"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pids):
    """User + system CPU seconds of the processes (and their threads)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def children(pid):
    """pid and its child processes (nginx and haproxy fork workers)."""
    out = [pid]
    try:
        for line in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                   text=True).stdout.split():
            out.append(int(line))
    except FileNotFoundError:
        pass
    return out


class Proc:
    def __init__(self, args, port, cwd=None):
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=cwd)
        wait_port(port)
        self.port = port

    def pids(self):
        return children(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wrk(url, conns, seconds, extra=()):
    r = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", *extra, url],
                       capture_output=True, text=True)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    total = re.search(r"(\d+) requests in", r.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    sock = re.search(r"Socket errors: (.*)", r.stdout)
    if not m:
        raise RuntimeError("wrk failed:\n" + r.stdout + r.stderr)
    return {
        "rps": float(m.group(1)),
        "requests": int(total.group(1)) if total else 0,
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else "",
    }


def measure(proxy, url, conns, seconds, extra=()):
    before = cpu_seconds(proxy.pids())
    w = wrk(url, conns, seconds, extra)
    after = cpu_seconds(proxy.pids())
    w["cpu_us_per_req"] = (after - before) * 1e6 / max(w["requests"], 1)
    return w


# -- configs ---------------------------------------------------------------


def sluice_conf(d, port, origin_port, tls=None, plugins=None, redis=None):
    lines = [
        "workers: 1",
        "listen:",
        f"  - address: 127.0.0.1:{port}",
    ]
    if tls:
        lines += ["    tls:", "      certificates:",
                  f"        - {{cert: {tls[0]}, key: {tls[1]}}}"]
    lines += ["log: {level: warn, access: off}"]
    if redis:
        lines += [f"redis: {{address: 127.0.0.1:{redis}, timeout: 200ms}}"]
    lines += [
        "upstreams:",
        f"  origin: {{targets: [127.0.0.1:{origin_port}], keepalive: 128}}",
        "routes:",
        "  - match: {path: /}",
        "    upstream: origin",
    ]
    if plugins:
        lines += ["    plugins:"] + ["      " + p for p in plugins]
    path = Path(d) / f"sluice-{port}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return Proc([str(SLUICE), "-c", str(path)], port)


def nginx_conf(d, port, origin_port, tls=None):
    listen = f"listen 127.0.0.1:{port}" + (" ssl" if tls else "") + " reuseport;"
    ssl = ""
    if tls:
        ssl = (f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};"
               " ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;")
    conf = f"""
worker_processes 1;
daemon off;
pid {d}/nginx-{port}.pid;
error_log {d}/nginx-{port}.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 128; }}
  server {{
    {listen}
    {ssl}
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
    path = Path(d) / f"nginx-{port}.conf"
    path.write_text(conf)
    return Proc(["nginx", "-c", str(path), "-p", str(d)], port)


def haproxy_conf(d, port, origin_port, tls=None):
    bind = f"bind 127.0.0.1:{port}"
    if tls:
        pem = Path(d) / "haproxy.pem"
        pem.write_text(Path(tls[0]).read_text() + Path(tls[1]).read_text())
        bind += f" ssl crt {pem}"
    conf = f"""
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  {bind}
  default_backend be
backend be
  server origin 127.0.0.1:{origin_port}
"""
    path = Path(d) / f"haproxy-{port}.cfg"
    path.write_text(conf)
    return Proc(["haproxy", "-f", str(path)], port)


def make_cert(d):
    key, crt = Path(d) / "bench.key", Path(d) / "bench.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=bench.test"],
                   check=True, capture_output=True)
    return str(crt), str(key)


# -- scenarios ---------------------------------------------------------------


def start_peers(d, origin_port, tls=None):
    """sluice, nginx and (if installed) HAProxy, one worker each."""
    peers = {"sluice": sluice_conf, "nginx": nginx_conf}
    if shutil.which("haproxy"):
        peers["haproxy"] = haproxy_conf
    return {p: make(d, free_port(), origin_port, tls=tls) for p, make in peers.items()}


def alternate(procs, scheme, rounds, seconds, conns):
    """A 1 s warm-up each, then rounds of wrk taking turns: {name: [runs]}."""
    results = {p: [] for p in procs}
    for proc in procs.values():
        wrk(f"{scheme}://127.0.0.1:{proc.port}/", conns, 1)
    for _ in range(rounds):
        for p, proc in procs.items():
            results[p].append(measure(proc, f"{scheme}://127.0.0.1:{proc.port}/", conns, seconds))
    return results


def run_peers(name, d, origin_port, rounds, seconds, conns, tls=None):
    procs = start_peers(d, origin_port, tls)
    try:
        results = alternate(procs, "https" if tls else "http", rounds, seconds, conns)
    finally:
        for proc in procs.values():
            proc.stop()
    return summarize(name, results)


def s_time(port, version, reuse, seconds):
    """Handshakes (each with one GET /) that `openssl s_time` completed."""
    r = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}",
                        "-reuse" if reuse else "-new", f"-{version}", "-time", str(seconds),
                        "-www", "/"], capture_output=True, text=True)
    m = re.findall(r"(\d+) connections in (\d+) real seconds", r.stdout)
    if not m:
        raise RuntimeError("s_time failed:\n" + r.stdout + r.stderr)
    return int(m[-1][0])


def run_handshake(d, origin_port, rounds, seconds, tls):
    procs = start_peers(d, origin_port, tls)
    kinds = [(v, reuse) for v in ("tls1_3", "tls1_2") for reuse in (False, True)]
    results = {}
    try:
        for _ in range(rounds):
            for version, reuse in kinds:
                kind = f"{version.replace('tls1_', 'TLS 1.')} {'resumed' if reuse else 'full'}"
                for p, proc in procs.items():
                    before = cpu_seconds(proc.pids())
                    n = s_time(proc.port, version, reuse, seconds)
                    cpu = cpu_seconds(proc.pids()) - before
                    results.setdefault(kind, {}).setdefault(p, []).append(
                        {"handshakes": n, "cpu_us_per_handshake": cpu * 1e6 / max(n, 1)})
    finally:
        for proc in procs.values():
            proc.stop()
    out = {"scenario": "handshake", "kinds": {}}
    for kind, per in results.items():
        out["kinds"][kind] = {}
        for p, runs in per.items():
            out["kinds"][kind][p] = {
                "cpu_us_per_handshake_median":
                    statistics.median(r["cpu_us_per_handshake"] for r in runs),
                "handshakes_per_s_median":
                    statistics.median(r["handshakes"] for r in runs) / seconds,
                "runs": runs,
            }
        base = out["kinds"][kind].get("nginx")
        for v in out["kinds"][kind].values():
            if base:
                v["cpu_ratio_vs_nginx"] = (v["cpu_us_per_handshake_median"]
                                           / base["cpu_us_per_handshake_median"])
    return out


def run_ratelimit(d, origin_port, rounds, seconds, conns):
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(redis_port)
    limit = "{key: ip, rate: 10000000/s, burst: 10000000"
    variants = {
        "unlimited": sluice_conf(d, free_port(), origin_port),
        "local": sluice_conf(d, free_port(), origin_port,
                             plugins=[f"rate_limit: {limit}, store: local}}"]),
        "redis": sluice_conf(d, free_port(), origin_port, redis=redis_port,
                             plugins=[f"rate_limit: {limit}, store: redis}}"]),
    }
    try:
        results = alternate(variants, "http", rounds, seconds, conns)
    finally:
        for proc in variants.values():
            proc.stop()
        redis.terminate()
        redis.wait()
    return summarize("ratelimit", results, base="unlimited")


def jwt_tokens(d, n_fresh):
    """Keys (openssl) and tokens (PyJWT): {variant: (alg, key file, tokens)}."""
    import jwt  # python3-jwt, from scripts/deps

    keys = {}
    for name, args in (("rs", ["rsa", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("es", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        key, pub = Path(d) / f"jwt-{name}.key", Path(d) / f"jwt-{name}.pub"
        subprocess.run(["openssl", "genpkey", "-algorithm", args[0], *args[1:], "-out", str(key)],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)],
                       check=True, capture_output=True)
        keys[name] = (key.read_text(), str(pub))
    exp = int(time.time()) + 3600

    def mint(name, alg, i):
        return jwt.encode({"sub": f"user{i}", "exp": exp}, keys[name][0], algorithm=alg)

    return {
        "rs256": ("RS256", keys["rs"][1], [mint("rs", "RS256", 0)]),
        "es256": ("ES256", keys["es"][1], [mint("es", "ES256", 0)]),
        "rs256-fresh": ("RS256", keys["rs"][1], [mint("rs", "RS256", i) for i in range(n_fresh)]),
    }


def run_jwt(d, origin_port, rounds, seconds, conns):
    tokens_by = jwt_tokens(d, 5000)
    # The plain route gets the same request, Authorization header included:
    # what is measured is the plugin, not the header's bytes.
    variants = {"plain": (sluice_conf(d, free_port(), origin_port),
                          ["-H", f"Authorization: Bearer {tokens_by['rs256'][2][0]}"])}
    for name, (alg, pub, tokens) in tokens_by.items():
        proc = sluice_conf(d, free_port(), origin_port,
                           plugins=[f"jwt: {{keys: [{{file: {pub}, alg: {alg}}}]}}"])
        if len(tokens) == 1:
            extra = ["-H", f"Authorization: Bearer {tokens[0]}"]
        else:
            lst, lua = Path(d) / f"{name}.tokens", Path(d) / f"{name}.lua"
            lst.write_text("\n".join(tokens) + "\n")
            lua.write_text(
                f'local t = {{}}\nfor l in io.lines("{lst}") do t[#t + 1] = l end\n'
                'local i = 0\nrequest = function()\n  i = i % #t + 1\n'
                '  return wrk.format("GET", "/", {["Authorization"] = "Bearer " .. t[i]})\nend\n')
            extra = ["-s", str(lua)]
        variants[name] = (proc, extra)
    results = {v: [] for v in variants}
    try:
        for proc, extra in variants.values():
            wrk(f"http://127.0.0.1:{proc.port}/", conns, 1, extra)
        for _ in range(rounds):
            for v, (proc, extra) in variants.items():
                results[v].append(measure(proc, f"http://127.0.0.1:{proc.port}/", conns, seconds,
                                          extra))
    finally:
        for proc, _ in variants.values():
            proc.stop()
    return summarize("jwt", results, base="plain")


def summarize(name, results, base="nginx"):
    out = {"scenario": name, "proxies": {}}
    for p, runs in results.items():
        out["proxies"][p] = {
            "rps_median": statistics.median(r["rps"] for r in runs),
            "cpu_us_per_req_median": statistics.median(r["cpu_us_per_req"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs),
            "runs": runs,
        }
    b = out["proxies"].get(base)
    for p, v in out["proxies"].items():
        if b:
            v["rps_ratio_vs_" + base] = v["rps_median"] / b["rps_median"]
    return out


def print_report(res):
    print(f"\n== {res['scenario']}")
    if "kinds" in res:
        print(f"{'':24} {'CPU us/handshake':>17} {'vs nginx':>9} {'handshakes/s':>13}")
        for kind, per in res["kinds"].items():
            for p, v in per.items():
                print(f"{kind + ' ' + p:24} {v['cpu_us_per_handshake_median']:17.0f} "
                      f"{v.get('cpu_ratio_vs_nginx', 0):9.3f} {v['handshakes_per_s_median']:13.0f}")
        return
    print(f"{'':12} {'req/s (median)':>16} {'CPU us/req':>12} {'ratio':>8} {'non-2xx':>8}")
    for p, v in res["proxies"].items():
        ratio = next((x for k, x in v.items() if k.startswith("rps_ratio")), None)
        print(f"{p:12} {v['rps_median']:16.0f} {v['cpu_us_per_req_median']:12.1f} "
              f"{ratio if ratio is not None else 0:8.3f} {v['non2xx']:8d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-s", "--scenario", action="append",
                    choices=["proxy", "https", "handshake", "ratelimit", "jwt"])
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-d", "--duration", type=int, default=10)
    ap.add_argument("-c", "--connections", type=int, default=50)
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    scenarios = args.scenario or ["proxy", "https", "handshake", "ratelimit", "jwt"]
    all_results = []
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as d:
        origin_port = free_port()
        origin = Proc([str(ORIGIN), "-p", str(origin_port), "-q"], origin_port)
        try:
            for sc in scenarios:
                if sc == "proxy":
                    res = run_peers("proxy", d, origin_port, args.rounds, args.duration,
                                    args.connections)
                elif sc == "https":
                    res = run_peers("https", d, origin_port, args.rounds, args.duration,
                                    args.connections, tls=make_cert(d))
                elif sc == "handshake":
                    res = run_handshake(d, origin_port, args.rounds, args.duration,
                                        make_cert(d))
                elif sc == "jwt":
                    res = run_jwt(d, origin_port, args.rounds, args.duration, args.connections)
                else:
                    res = run_ratelimit(d, origin_port, args.rounds, args.duration,
                                        args.connections)
                print_report(res)
                all_results.append(res)
        finally:
            origin.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(all_results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
