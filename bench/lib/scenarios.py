"""What the bench measures: the scenarios, as data, and the sluice variants
that the sluice-alone scenarios compare (bench/README.md explains each)."""

import dataclasses
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import peers, procs

GROUPS = {}  # group name: [scenario names], filled below


@dataclass
class Scenario:
    name: str
    kind: str               # wrk | handshake | idle | paced
    what: str
    group: str = ""
    quick: bool = True      # part of --quick
    conns: int = 50
    path: str = "/"
    method: str = "GET"
    body_bytes: int = 0
    headers: dict = field(default_factory=dict)
    tls: bool = False
    workers: int = 1
    variants: str = ""      # ratelimit | jwt: sluice variants instead of the peers
    tls_version: str = ""   # handshake: tls1_3 | tls1_2
    resume: bool = False    # handshake: resumed sessions
    idle_mode: str = ""     # idle: request | silent
    idle_n: int = 0
    idle_n_quick: int = 0
    rate_fraction: float = 0.0  # paced: of nginx's req/s on ka-c50
    tokens_file: Path = None    # jwt: a token per request, in turn (set per variant)
    gzip_level: int = 0     # every peer gzips the responses at this level (0: none does)
    only_peers: tuple = ()  # the peers that can take part (empty: all)...
    why_only: str = ""      # ...and why the others cannot, for the report's notes


def _ka(c, quick):
    return Scenario(f"ka-c{c}", "wrk", f"small response (13 bytes), keep-alive, {c} connections",
                    group="ka", conns=c, quick=quick)


SCENARIOS = [
    _ka(10, False), _ka(50, True), _ka(200, False), _ka(1000, True),
    Scenario("size-16k", "wrk", "16 KiB response, keep-alive, 50 connections", group="size",
             path="/?size=16384", quick=False),
    Scenario("size-1m", "wrk", "1 MiB response, keep-alive, 50 connections", group="size",
             path="/?size=1048576"),
    Scenario("gzip-64k", "wrk", "a 64 KiB JSON response gzipped at level 5 on the way "
             "(Accept-Encoding: gzip), keep-alive, 50 connections", group="compress",
             path="/?json=1", headers={"Accept-Encoding": "gzip"}, quick=False, gzip_level=5,
             only_peers=("sluice", "nginx", "h2o"),
             why_only="HAProxy 2.6 is built here with libslz, which has no compression level "
                      "(only a zlib build honours tune.comp.maxlevel)"),
    Scenario("post-1k", "wrk", "1 KiB POST body, small response, keep-alive, 50 connections",
             method="POST", body_bytes=1024),
    Scenario("close", "wrk", "a new connection per request (Connection: close), 50 at once",
             headers={"Connection": "close"}),
    Scenario("https", "wrk", "HTTPS keep-alive (TLS 1.3, ECDSA P-256), 50 connections",
             tls=True),
    Scenario("handshake-tls13-full", "handshake", "TLS 1.3 full handshake + one GET per "
             "connection (openssl s_time -new)", group="handshake", tls=True,
             tls_version="tls1_3"),
    Scenario("handshake-tls13-resumed", "handshake", "TLS 1.3 resumed (ticket) handshake + "
             "one GET (s_time -reuse)", group="handshake", tls=True, tls_version="tls1_3",
             resume=True),
    Scenario("handshake-tls12-full", "handshake", "TLS 1.2 full handshake + one GET",
             group="handshake", tls=True, tls_version="tls1_2", quick=False),
    Scenario("handshake-tls12-resumed", "handshake", "TLS 1.2 resumed handshake + one GET",
             group="handshake", tls=True, tls_version="tls1_2", resume=True, quick=False),
    Scenario("ratelimit", "wrk", "sluice alone: no limit vs a local vs a Redis rate limit "
             "(limits that never reject), 50 connections", variants="ratelimit"),
    Scenario("jwt", "wrk", "sluice alone: no plugin vs jwt RS256 / ES256 with one token "
             "(cached) vs RS256 with a fresh token per request (2,048 in turn, twice what "
             "the cache holds), 50 connections", variants="jwt"),
    Scenario("idle-10k", "idle", "10,000 idle keep-alive connections, each after one request: "
             "RSS growth per connection", group="idle", idle_mode="request", idle_n=10000,
             idle_n_quick=2000),
    Scenario("idle-10k-silent", "idle", "10,000 connections that connected and sent nothing: "
             "RSS growth per connection", group="idle", idle_mode="silent", idle_n=10000,
             idle_n_quick=2000, quick=False),
    Scenario("idle-tls-2k", "idle", "2,000 idle HTTPS connections, each after one request: "
             "RSS growth per connection", group="idle", idle_mode="request", tls=True,
             idle_n=2000, idle_n_quick=500),
    Scenario("workers2", "wrk", "two workers each (nginx 2 processes, HAProxy and h2o 2 "
             "threads), small response, keep-alive, 200 connections", conns=200, workers=2),
    Scenario("paced-50", "paced", "latency at a fixed rate: 50% of nginx's ka-c50 req/s, 50 "
             "connections, from the schedule (coordinated omission corrected)", group="paced",
             rate_fraction=0.5),
    Scenario("paced-80", "paced", "latency at a fixed rate: 80% of nginx's ka-c50 req/s",
             group="paced", rate_fraction=0.8),
]
BY_NAME = {s.name: s for s in SCENARIOS}
for _s in SCENARIOS:
    GROUPS.setdefault(_s.group or _s.name, []).append(_s.name)


def select(only, quick):
    """The scenarios to run, in table order: --only names or groups, else all
    (or the quick ones). Unknown names raise ValueError."""
    if not only:
        return [s for s in SCENARIOS if s.quick or not quick]
    wanted = set()
    for name in only:
        if name in BY_NAME:
            wanted.add(name)
        elif name in GROUPS:
            wanted.update(GROUPS[name])
        else:
            raise ValueError(f"no scenario or group {name!r} (known: "
                             f"{', '.join(list(BY_NAME) + sorted(set(GROUPS) - set(BY_NAME)))})")
    return [s for s in SCENARIOS if s.name in wanted]


@dataclass
class Target:
    """One thing a scenario measures: a peer, or a sluice variant."""
    name: str
    start: object           # () -> peers.Server
    overrides: dict = field(default_factory=dict)  # Scenario fields for this target's requests

    def spec(self, sc):
        return dataclasses.replace(sc, **self.overrides) if self.overrides else sc


def peer_targets(env, sc, names):
    names = [n for n in names if not sc.only_peers or n in sc.only_peers]
    return [Target(n, lambda n=n: peers.start(env, n, workers=sc.workers,
                                              gzip=sc.gzip_level)) for n in names]


def start_redis(env):
    port = procs.free_port()
    return port, procs.start(["redis-server", "--port", port, "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], port=port, name="redis")


def ratelimit_targets(env, redis_port):
    limit = "{key: ip, rate: 10000000/s, burst: 10000000"

    def variant(label, plugins=None, redis=None):
        return Target(label, lambda: peers.start(env, "sluice", label=label, plugins=plugins,
                                                 redis=redis))
    return [variant("plain"),
            variant("local", [f"rate_limit: {limit}, store: local}}"]),
            variant("redis", [f"rate_limit: {limit}, store: redis}}"], redis_port)]


def jwt_keys(d):
    """An RSA 2048 and an EC P-256 key pair (openssl): {name: (private, public file)}."""
    from cryptography.hazmat.primitives import serialization

    keys = {}
    for name, args in (("rs", ["rsa", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("es", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        key, pub = Path(d) / f"jwt-{name}.key", Path(d) / f"jwt-{name}.pub"
        subprocess.run(["openssl", "genpkey", "-algorithm", args[0], *args[1:], "-out", str(key)],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)],
                       check=True, capture_output=True)
        keys[name] = (serialization.load_pem_private_key(key.read_bytes(), None), str(pub))
    return keys


def jwt_targets(env, fresh=2048):
    """The plain route and the jwt variants. The plain route gets the same
    Authorization header: what differs is the plugin, not the bytes."""
    import jwt  # python3-jwt

    keys = jwt_keys(env.tmp)
    exp = int(time.time()) + 3600

    def mint(k, alg, i):
        return jwt.encode({"sub": f"user{i}", "exp": exp}, keys[k][0], algorithm=alg)

    rs, es = mint("rs", "RS256", 0), mint("es", "ES256", 0)
    tokens = env.tmp / "rs256-fresh.tokens"
    tokens.write_text("\n".join(mint("rs", "RS256", i) for i in range(fresh)) + "\n")

    def variant(label, alg=None, key=None, **over):
        plugins = [f"jwt: {{keys: [{{file: {keys[key][1]}, alg: {alg}}}]}}"] if alg else None
        return Target(label, lambda: peers.start(env, "sluice", label=label, plugins=plugins),
                      over)
    return [variant("plain", headers={"Authorization": f"Bearer {rs}"}),
            variant("rs256", "RS256", "rs", headers={"Authorization": f"Bearer {rs}"}),
            variant("es256", "ES256", "es", headers={"Authorization": f"Bearer {es}"}),
            variant("rs256-fresh", "RS256", "rs", tokens_file=tokens)]
