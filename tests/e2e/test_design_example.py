"""The contract's own example config (DESIGN.md, "YAML"), verbatim, passes
`sluice -t` once its files and variables exist: every key it names is one
the gateway reads."""

import os
import subprocess

from conftest import SLUICE
from tls_helpers import PKI

EXAMPLE = r"""
workers: auto
shutdown_timeout: 30s
listen:
  - address: 0.0.0.0:8080            # host:port or [v6]:port
  - address: 0.0.0.0:8443
    tls:
      certificates:                  # several = SNI; first is the default
        - {cert: /etc/sluice/a.crt, key: /etc/sluice/a.key}
      min_version: "1.2"             # "1.2" (default) or "1.3"
      client_ca: /etc/sluice/ca.crt  # optional: require client certificates (mTLS)
limits:   {max_header_bytes: 16k, max_body_bytes: 10m, max_connections: 20000}
headers_with_underscores: drop               # drop | reject (400) | allow; a twin of a gateway-owned header is always removed
request_trailers: drop                       # drop | forward (gateway-owned names always removed)
via: sluice                                  # the Via pseudonym, or off
user: sluice                                 # optional: drop privileges after binding
timeouts: {client_header: 10s, client_body: 30s, client_idle: 60s}
admin:    {address: 127.0.0.1:9901, token: "${SLUICE_ADMIN_TOKEN}"}
log:      {level: info, access: stdout, format: text}   # access: stdout | FILE | off (JSON lines); format of the error log: text | json
redis:                                       # optional; without it every limit is in memory
  address: 127.0.0.1:6379                    # or unix:/path
  password: "${REDIS_PASSWORD}"              # ${VAR} is read from the environment
  timeout: 50ms
upstreams:
  users:
    balance: round_robin                     # round_robin | least_conn | hash | p2c
    hash_key: header:X-User-Id               # for balance: hash (ip | header:NAME | cookie:NAME | jwt:CLAIM)
    targets:
      - {address: 127.0.0.1:9001, weight: 2}
      - {address: 127.0.0.1:9002}
      - {address: 127.0.0.1:9003, backup: true}   # only when no primary is healthy
    keepalive: 64                            # idle pooled connections per worker per target
    timeouts: {connect: 2s, read: 30s, send: 30s}
    retries: 2
    health_check: {path: /healthz, interval: 5s, timeout: 1s, healthy: 2, unhealthy: 3}
    passive:      {failures: 5, eject: 30s}  # consecutive failures -> out of rotation for `eject`
    tls:          {verify: true, ca: /etc/ssl/certs/ca-certificates.crt, sni: users.internal}
plugins:                                     # defaults for every route; a route's own entry replaces one
  request_id: {}                             # on by default; `request_id: off` turns it off
routes:
  - name: users
    match:
      host: api.example.com                  # exact, or *.example.com
      path: /v1/users                        # prefix on a segment boundary; or path_exact / path_regex
      methods: [GET, POST]
      headers: {X-Api-Version: "2"}
    upstream: users
    strip_prefix: /v1                        # optional rewrite
    plugins:
      jwt:
        jwks_uri: https://idp.example.com/.well-known/jwks.json   # or keys: [{file: k.pem, alg: RS256, kid: k1}, {secret: "${HS}", alg: HS256}]
        issuer: https://idp.example.com/
        audience: users-api
        algorithms: [RS256, ES256]
        leeway: 30s
        scopes: [users:read]                 # all required, from scope/scp
        forward_claims: {sub: X-User-Id}
        # or: discovery: true (issuer's /.well-known/openid-configuration); claims: {role: [admin]};
        # rules: [{methods: [POST], scopes: [users:write]}]; token_from: [header:Authorization, cookie:at]
      # oauth_introspection: {endpoint: https://idp/introspect, client_id: gw, client_secret: "${S}", cache_ttl: 60s}
      rate_limit:
        key: jwt:sub                         # ip | header:NAME | jwt:CLAIM | route
        rate: 100/s                          # N/s | N/m | N/h
        burst: 200                           # bucket size
        max_delay: 500ms                     # throttle: wait up to this for a token instead of 429 (0 = never wait)
        store: redis                         # local | redis (default: redis when redis: is set)
        on_store_failure: local              # local | allow | deny when Redis is unreachable
"""


def test_the_contracts_example_config_passes_sluice_t(tmp_path):
    (tmp_path / "pki").mkdir()
    pki = PKI(tmp_path / "pki")
    ca = pki.ca("ca", "example CA")
    leaf = pki.issue("a", ca, "api.example.com", dns=["api.example.com"])
    files = {"/etc/sluice/a.crt": leaf.path, "/etc/sluice/a.key": leaf.key_path,
             "/etc/sluice/ca.crt": ca.path}
    text = EXAMPLE
    for name, real in files.items():
        text = text.replace(name, str(real))
    path = tmp_path / "sluice.yaml"
    path.write_text(text)
    env = dict(os.environ, SLUICE_ADMIN_TOKEN="admin-token", REDIS_PASSWORD="redis-password")
    r = subprocess.run([str(SLUICE), "-t", "-c", str(path)], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{path}: configuration ok", r.stdout
    assert " error:" not in r.stderr, r.stderr
