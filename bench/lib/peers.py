"""The proxies under test and the configs the bench writes for them.

Every peer gets the same thing: one worker (or the count asked for), one
plain and one HTTPS listener on 127.0.0.1, the same ECDSA P-256 certificate,
TLS 1.2 and 1.3 with sluice's TLS 1.2 suites in the server's order, session
tickets and a session cache, one route sending everything to the origin over
HTTP/1.1 keep-alive with a pool bigger than any connection count used,
X-Forwarded-* headers added, no access log, long client timeouts. bench/
README.md lists each choice; a run copies the configs into OUT/configs/.
"""

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import procs

PEERS = ("sluice", "nginx", "haproxy", "h2o")
BINARIES = {"nginx": "nginx", "haproxy": "haproxy", "h2o": "h2o"}
POOL = 2048           # upstream keep-alive pool, per worker: > the 1,000 connections of ka-c1000
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
GROUPS = "X25519:P-256:P-384"


@dataclass
class Env:
    """What every server of a run shares."""
    build: Path
    tmp: Path
    out: Path
    origin_port: int = 0
    cert: str = ""
    key: str = ""
    configs: dict = field(default_factory=dict)  # name: path, the first of each kind
    nofile: int = 20000  # the children's RLIMIT_NOFILE (procs.raise_nofile())

    @property
    def max_conns(self):
        """Client connections every peer accepts: the fd limit less some room
        (10,000 idle connections + their upstream ones fit under 20,000)."""
        return max(self.nofile - 1000, self.nofile * 9 // 10)


@dataclass
class Server:
    name: str
    proc: procs.Proc
    port: int
    tls_port: int

    def pids(self):
        return self.proc.tree()

    def stop(self):
        self.proc.stop()


def available(name, build):
    if name == "sluice":
        return (Path(build) / "gateway" / "sluice").exists()
    return shutil.which(BINARIES[name]) is not None


def make_cert(d):
    key, crt = Path(d) / "bench.key", Path(d) / "bench.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=bench.test", "-addext",
                    "subjectAltName=DNS:bench.test,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(crt), str(key)


def sluice_conf(env, port, tls_port, workers, plugins=None, redis=None, gzip=0):
    lines = [
        f"workers: {workers}",
        "listen:",
        f"  - address: 127.0.0.1:{port}",
        f"  - address: 127.0.0.1:{tls_port}",
        "    tls:",
        "      certificates:",
        f"        - {{cert: {env.cert}, key: {env.key}}}",
        "log: {level: warn, access: off}",
        f"limits: {{max_connections: {env.max_conns}}}",
        "timeouts: {client_header: 60s, client_idle: 300s}",
    ]
    if redis:
        lines.append(f"redis: {{address: 127.0.0.1:{redis}, timeout: 200ms}}")
    lines += [
        "upstreams:",
        f"  origin: {{targets: [127.0.0.1:{env.origin_port}], keepalive: {POOL}}}",
        "routes:",
        "  - match: {path: /}",
        "    upstream: origin",
    ]
    if gzip:  # as nginx's gzip_types and gzip_min_length
        plugins = (plugins or []) + [f"compress: {{algorithms: [gzip], level: {gzip}, "
                                     "types: [application/json], min_size: 20}"]
    if plugins:
        lines += ["    plugins:"] + ["      " + p for p in plugins]
    return "\n".join(lines) + "\n"


def nginx_conf(env, port, tls_port, workers, gzip=0):
    d = env.tmp
    # gzip_vary: sluice and h2o say Vary: Accept-Encoding too.
    gz = (f"gzip on; gzip_comp_level {gzip}; gzip_types application/json; gzip_proxied any; "
          "gzip_vary on;" if gzip else "")
    return f"""\
worker_processes {workers};
worker_rlimit_nofile {env.nofile};
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
pid {d}/nginx-{port}.pid;
error_log {d}/nginx-{port}.err warn;
events {{ worker_connections {env.max_conns}; }}
http {{
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  client_header_timeout 60s;
  ssl_certificate {env.cert};
  ssl_certificate_key {env.key};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers {TLS12_CIPHERS};
  ssl_prefer_server_ciphers on;
  ssl_ecdh_curve {GROUPS.replace('P-256', 'prime256v1').replace('P-384', 'secp384r1')};
  ssl_session_cache shared:SSL:10m;
  ssl_session_tickets on;
  ssl_session_timeout 12h;
  upstream origin {{
    server 127.0.0.1:{env.origin_port};
    keepalive {POOL};
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    listen 127.0.0.1:{tls_port} ssl reuseport;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header Via "1.1 nginx";
      proxy_request_buffering off;
      proxy_max_temp_file_size 0;
      {gz}
    }}
  }}
}}
"""


def haproxy_conf(env, port, tls_port, workers, gzip=0):
    assert not gzip, "this HAProxy (libslz) has no gzip level: see Scenario.only_peers"
    pem = env.tmp / "haproxy.pem"
    if not pem.exists():
        pem.write_text(Path(env.cert).read_text() + Path(env.key).read_text())
    return f"""\
global
  nbthread {workers}
  maxconn {env.max_conns}
  no strict-limits
  ssl-default-bind-ciphers {TLS12_CIPHERS}
  ssl-default-bind-curves {GROUPS}
  ssl-default-bind-options ssl-min-ver TLSv1.2
  tune.ssl.lifetime 12h
defaults
  mode http
  maxconn {env.max_conns}
  option http-keep-alive
  option forwardfor
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 60s
  timeout http-keep-alive 300s
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  bind 127.0.0.1:{tls_port} ssl crt {pem} alpn http/1.1
  http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
  http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request add-header Via "1.1 haproxy"
  default_backend be
backend be
  server origin 127.0.0.1:{env.origin_port}
"""


def h2o_conf(env, port, tls_port, workers, gzip=0):
    d = env.tmp
    gz = f"\n        compress: {{gzip: {gzip}}}" if gzip else ""
    return f"""\
num-threads: {workers}
{"user: root" if os.geteuid() == 0 else ""}
pid-file: {d}/h2o-{port}.pid
error-log: {d}/h2o-{port}.err
max-connections: {env.max_conns}
http1-request-timeout: 60
proxy.timeout.keepalive: 300000
proxy.timeout.io: 30000
ssl-session-resumption:
  mode: all
listen:
  host: 127.0.0.1
  port: {port}
listen:
  host: 127.0.0.1
  port: {tls_port}
  ssl:
    certificate-file: {env.cert}
    key-file: {env.key}
    minimum-version: TLSv1.2
    cipher-suite: "{TLS12_CIPHERS}"
    cipher-preference: server
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:{env.origin_port}/{gz}
"""


WRITERS = {"nginx": nginx_conf, "haproxy": haproxy_conf, "h2o": h2o_conf}
EXT = {"sluice": "yaml", "nginx": "conf", "haproxy": "cfg", "h2o": "conf"}


def command(name, env, path):
    if name == "sluice":
        return [env.build / "gateway" / "sluice", "-c", path]
    if name == "nginx":
        return ["nginx", "-c", path, "-p", env.tmp, "-e", env.tmp / "nginx-startup.err"]
    if name == "haproxy":
        return ["haproxy", "-db", "-f", path]
    return ["h2o", "-c", path]


def start(env, name, workers=1, label=None, plugins=None, redis=None, gzip=0):
    """Start peer `name` (label: how the report calls it) and wait for it;
    gzip: a level at which it gzips the responses (0: it does not)."""
    label = label or name
    port, tls_port = procs.free_port(), procs.free_port()
    if name == "sluice":
        text = sluice_conf(env, port, tls_port, workers, plugins, redis, gzip)
    else:
        text = WRITERS[name](env, port, tls_port, workers, gzip)
    path = env.tmp / f"{label}-w{workers}-{port}.{EXT[name]}"
    path.write_text(text)
    kept = f"{label}-w{workers}{f'-gzip{gzip}' if gzip else ''}.{EXT[name]}"
    if kept not in env.configs:
        (env.out / "configs").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, env.out / "configs" / kept)
        env.configs[kept] = str(env.out / "configs" / kept)
    with open(env.tmp / f"{label}-{port}.log", "wb") as log:
        proc = procs.start(command(name, env, path), port=port, name=label, stdout=log,
                           stderr=subprocess.STDOUT)
    procs.wait_port(tls_port, proc=proc.popen)
    return Server(label, proc, port, tls_port)


def version(name, build):
    """One line saying which version of the peer runs."""
    cmd = {"sluice": [str(Path(build) / "gateway" / "sluice"), "-V"], "nginx": ["nginx", "-v"],
           "haproxy": ["haproxy", "-v"], "h2o": ["h2o", "-v"]}[name]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (r.stdout + r.stderr).strip().splitlines()
    return text[0] if text else "?"
