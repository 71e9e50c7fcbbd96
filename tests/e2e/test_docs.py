"""The documentation is checked against the thing it documents.

- Every key path the config parser accepts is in sluice.yaml(5), and every
  key the page documents is one the parser accepts. The parser's own list
  comes from sluice-keys (gateway/src/server/keys_main.c): the real parser
  and plugins, tracing every keys[] list sl_conf_keys() is given while it
  reads configs that set every section (checked below: each key it prints
  is set by one of them, so no map goes unread).
- man --warnings finds nothing to say about any page in man/.
- promtool (Debian's prometheus) accepts what GET /metrics serves.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import BUILD, ROOT, basic_config, free_port, wait_port

SLUICE_KEYS = BUILD / "gateway" / "sluice-keys"
MAN = ROOT / "man"

# The sections of sluice.yaml(5) that document keys, and the path their
# entries hang from ("*": an upstream's name).
KEY_SECTIONS = {"TOP LEVEL": "", "UPSTREAMS": "upstreams.*", "ROUTES": "routes",
                "PLUGINS": "plugins"}


# -- the keys the parser accepts ----------------------------------------------------------


def norm(path):
    """A key path as the man page arranges keys: no list brackets, and a
    route's plugin keys with the top-level plugins: ones."""
    path = path.replace("[]", "")
    if path.startswith("routes.plugins."):
        path = "plugins." + path[len("routes.plugins."):]
    return path


def accepted(files):
    """The key paths the parser accepted while reading files (raw, as sluice-keys prints)."""
    assert SLUICE_KEYS.exists(), f"{SLUICE_KEYS} is missing: build with ninja -C {BUILD}"
    r = subprocess.run([str(SLUICE_KEYS), *map(str, files)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"a config of this test is refused:\n{r.stderr}"
    return set(r.stdout.split())


def set_paths(node, prefix=""):
    """Every key path a config sets, with [] for list items and * for upstream names."""
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            name = "*" if prefix == "upstreams" else str(k)
            p = f"{prefix}.{name}" if prefix else name
            out.add(p)
            out |= set_paths(v, p)
    elif isinstance(node, list):
        for v in node:
            out |= set_paths(v, prefix + "[]")
    return out


MINIMAL = {"listen": [{"address": "127.0.0.1:1"}],
           "upstreams": {"app": {"targets": ["127.0.0.1:2"]}},
           "plugins": {"request_id": {}},
           "routes": [{"match": {"path": "/"}, "upstream": "app"}]}


def minimal_config_file(directory):
    p = Path(directory) / "minimal.yaml"
    p.write_text(yaml.safe_dump(MINIMAL))
    return p


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """The plugins this build has, as the parser lists them in a plugins: map."""
    path = minimal_config_file(tmp_path_factory.mktemp("plugins"))
    return sorted(p.split(".")[1] for p in accepted([path])
                  if re.fullmatch(r"plugins\.[a-z_]+", p))


def plugin_settings(files):
    """Settings that set every key of every plugin, for routes of the big config
    (several where keys exclude each other). Keyed by plugin; each a list of
    the settings of one route."""
    return {
        "ip_restrict": [{"allow": ["10.0.0.0/8", "127.0.0.1"], "deny": ["10.9.0.0/16"]}],
        "request_id": [{"header": "X-Req", "trust_incoming": False}],
        "cors": [{"origins": ["https://app.example.org"], "methods": ["GET", "PUT"],
                  "headers": ["X-A"], "expose_headers": ["X-B"], "credentials": True,
                  "max_age": "10m"}],
        "api_key": [{"keys": [{"consumer": "alice", "key": "0123456789abcdef-alice"}],
                     "file": str(files["api_keys"]), "header": "X-Key", "query": "api_key",
                     "hide_credentials": True}],
        "jwt": [
            {"keys": [{"file": str(files["rsa_pub"]), "alg": "RS256", "kid": "k1"},
                      {"secret": "a-shared-secret-of-enough-length", "alg": "HS256"}],
             "issuer": "https://idp.example.org/", "audience": ["api"],
             "algorithms": ["RS256", "HS256"], "leeway": "30s", "require_exp": True,
             "max_token_size": "8k", "scopes": ["read"], "claims": {"role": ["admin"]},
             "rules": [{"methods": ["POST"], "scopes": ["write"], "claims": {"tier": ["gold"]}}],
             "forward_claims": {"sub": "X-User-Id"}, "strip_authorization": True,
             "token_from": ["header:Authorization", "cookie:at"], "realm": "api"},
            {"jwks_uri": "https://idp.example.org/jwks.json", "ca": str(files["ca"]),
             "jwks_refresh": "10m", "issuer": "https://idp.example.org/"},
            {"discovery": True, "issuer": "https://idp2.example.org"},
        ],
        "oauth_introspection": [
            {"endpoint": "https://idp.example.org/introspect", "client_id": "gw",
             "client_secret": "s3cret", "ca": str(files["ca"]), "timeout": "2s",
             "cache_ttl": "60s", "negative_ttl": "10s", "leeway": "5s", "max_token_size": "8k",
             "scopes": ["read"], "claims": {"role": ["admin"]},
             "rules": [{"methods": ["POST"], "scopes": ["write"], "claims": {"tier": ["gold"]}}],
             "forward_claims": {"sub": "X-User-Id"}, "strip_authorization": True,
             "token_from": ["header:Authorization"], "realm": "api"}],
        "rate_limit": [
            {"key": "ip", "rate": "10/s", "burst": 20, "max_delay": "100ms", "store": "redis",
             "on_store_failure": "local"},
            [{"key": "route", "rate": "100/m"}, {"key": "header:X-User", "rate": "5/s"}],
        ],
        "concurrency": [{"max": 10, "queue": 5, "queue_timeout": "1s"}],
        "split": [{"to": [{"upstream": "app", "weight": 90}, {"upstream": "v2", "weight": 10}],
                   "key": "ip",
                   "pin": [{"header": "X-Canary", "value": "1", "upstream": "v2"},
                           {"cookie": "canary", "value": "1", "upstream": "v2"}]}],
        "headers": [{"request": {"set": {"X-Client": "$client_ip"}, "add": {"X-Via-Gw": "1"},
                                 "remove": ["X-Drop"]},
                     "response": {"set": {"X-Route": "$route"}, "add": {"X-Gw": "1"},
                                  "remove": ["Server"]}}],
        "compress": [{"algorithms": ["gzip"], "types": ["text/plain"], "min_size": "1k",
                      "level": 5},
                     {"gzip_level": 6, "br_level": 4}],
    }


def every_section_config(tmp_path, pki, plugins):
    """A valid config that sets every key of the core and of the plugins given,
    written to tmp_path; its path and the dict."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {"rsa_pub": tmp_path / "jwt.pem", "api_keys": tmp_path / "api_keys",
             "ca": pki.server_ca.path}
    files["rsa_pub"].write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    files["api_keys"].write_text("bob: 0123456789abcdef-bob\n")
    conf = {
        "workers": 1,
        "shutdown_timeout": "5s",
        "listen": [
            {"address": "127.0.0.1:1"},
            {"address": "127.0.0.1:2",
             "tls": {"certificates": [{"cert": str(pki.a.path), "key": str(pki.a.key_path)}],
                     "min_version": "1.2", "client_ca": str(pki.client_ca.path),
                     "session_resumption": True}},
        ],
        "limits": {"max_header_bytes": "16k", "max_body_bytes": "10m", "max_connections": 100},
        "timeouts": {"client_header": "10s", "client_body": "30s", "client_idle": "60s",
                     "client_send": "60s"},
        "log": {"level": "info", "access": "off", "error": "stderr", "format": "text",
                "access_sample": 1, "access_buffer": "1m"},
        "admin": {"address": "127.0.0.1:3", "token": "t0ken"},
        "redis": {"address": "127.0.0.1:4", "password": "pw", "db": 1, "timeout": "50ms"},
        "trusted_proxies": ["10.0.0.0/8"],
        "headers_with_underscores": "drop",
        "request_trailers": "drop",
        "via": "sluice",
        "user": "root",
        "group": "root",
        "upstreams": {
            "app": {
                "balance": "hash", "hash_key": "ip",
                "targets": [{"address": "127.0.0.1:5", "weight": 2, "backup": False},
                            "127.0.0.1:6"],
                "keepalive": 8,
                "timeouts": {"connect": "1s", "read": "5s", "send": "5s"},
                "retries": 1,
                "health_check": {"path": "/healthz", "host": "app.internal", "interval": "5s",
                                 "timeout": "1s", "healthy": 2, "unhealthy": 3,
                                 "expect": "200-399"},
                "passive": {"failures": 5, "eject": "30s"},
                "resolve_interval": "30s",
                "tls": {"verify": True, "ca": str(pki.server_ca.path), "sni": "a.test"},
            },
            "v2": {"targets": ["127.0.0.1:7"]},
        },
        "plugins": {"request_id": {"header": "X-Request-Id", "trust_incoming": True}},
        "routes": [{"name": "every-match", "log": {"access_sample": 1},
                    "match": {"host": "a.example.org", "path": "/a", "methods": ["GET"],
                              "headers": {"X-Version": "2"}},
                    "upstream": "app", "strip_prefix": "/a"},
                   {"name": "exact", "match": {"path_exact": "/exact"}, "upstream": "app"},
                   {"name": "regex", "match": {"path_regex": "^/re"}, "upstream": "app"}],
    }
    settings = plugin_settings(files)
    for name in plugins:
        for i, s in enumerate(settings.get(name, [])):
            conf["routes"].append({"name": f"{name}-{i}", "match": {"path": f"/{name}/{i}"},
                                   "upstream": "app", "plugins": {name: s}})
    path = tmp_path / "every.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    return path, conf


# -- the keys the man page documents -----------------------------------------------------


def roff_args(text):
    """A macro line's arguments, as roff splits them (double quotes group)."""
    args, cur, quoted, any_ = [], "", False, False
    for ch in text:
        if ch == '"':
            quoted, any_ = not quoted, True
        elif ch == " " and not quoted:
            if cur or any_:
                args.append(cur)
            cur, any_ = "", False
        else:
            cur += ch
    if cur or any_:
        args.append(cur)
    return args


def unescape(s):
    s = re.sub(r"\\f(\[[^\]]*\]|.)", "", s)
    return s.replace("\\-", "-").replace("\\(dq", '"').replace("\\&", "").replace("\\e", "\\")


def bold_fragments(line):
    """The bold pieces of one line of roff."""
    out = re.findall(r"\\fB(.*?)\\f[PRI]", line)
    m = re.match(r"\.(B|BR|RB|BI|IB)\s(.*)", line)
    if m:
        macro, args = m.group(1), roff_args(m.group(2))
        if macro == "B":
            out.append(" ".join(args))
        else:
            first = 0 if macro in ("BR", "BI") else 1
            out += args[first::2]
    return [unescape(f) for f in out]


IDENT = r"[a-z][a-z0-9_]*"


def mentions(line):
    """Key names a line writes in bold: a bold word alone (".B token") or
    followed by a colon inside bold text ("{cert: file, key: file}")."""
    names = set()
    for f in bold_fragments(line):
        word = f.strip().rstrip(":,.;")
        if re.fullmatch(IDENT, word):
            names.add(word)
        names |= set(re.findall(r"(?:^|[{,\s])(" + IDENT + r"):", f))
    return names


def documented(page):
    """(entries, mentioned, sections) of sluice.yaml(5).

    entries: key paths that have a .TP entry of their own, in the section
    that documents them, nested under their parent's entry with .RS/.RE
    (a tag ".BR a \\", \\" b" documents a and b); mentioned: the paths
    k.NAME for each NAME in bold in the text of k's entry (the inline way
    of documenting a map's few keys). sections: the key sections found.
    """
    entries, mentioned, sections = set(), set(), set()
    lines = page.read_text().splitlines()
    stack = None  # each level: {"parents": [...], "current": [...]}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith(".SH"):
            name = unescape(" ".join(roff_args(line[3:].strip())))
            if name in KEY_SECTIONS:
                sections.add(name)
                stack = [{"parents": [KEY_SECTIONS[name]], "current": []}]
            else:
                stack = None
            continue
        if stack is None:
            continue
        level = stack[-1]
        if line.startswith(".TP"):
            tag = lines[i] if i < len(lines) else ""
            i += 1
            names = [w for f in bold_fragments(tag) for w in [f.strip()] if re.fullmatch(IDENT, w)]
            level["current"] = [f"{p}.{n}" if p else n for p in level["parents"] for n in names]
            entries |= set(level["current"])
        elif line.startswith(".RS"):
            stack.append({"parents": level["current"] or level["parents"], "current": []})
        elif line.startswith(".RE"):
            if len(stack) > 1:
                stack.pop()
        elif line.startswith((".PP", ".LP", ".P ")) or line == ".P":
            level["current"] = []
        else:
            for n in mentions(line):
                mentioned |= {f"{p}.{n}" for p in level["current"]}
    return entries, mentioned, sections


# -- tests -------------------------------------------------------------------------------


def test_the_configs_of_this_test_set_every_key_the_parser_accepts(tmp_path, pki, plugins):
    path, conf = every_section_config(tmp_path, pki, plugins)
    keys = accepted([path])
    unset = sorted(k for k in keys if norm(k) not in {norm(p) for p in set_paths(conf)})
    # A key this test does not set might hold a map whose keys the trace
    # then never sees: every_section_config() must set it.
    assert not unset, f"every_section_config() does not set: {unset}"
    # Every plugin built in was read, with its keys.
    for p in plugins:
        assert any(k.startswith(f"routes[].plugins.{p}.") or k.startswith(f"plugins.{p}.")
                   or k.startswith(f"routes[].plugins.{p}[].") for k in keys), p


def test_sluice_keys_lists_keys_with_their_places_and_refuses_a_bad_config(tmp_path):
    keys = accepted([minimal_config_file(tmp_path)])
    for k in ["listen", "listen[].address", "listen[].tls", "upstreams.*.targets",
              "routes[].match.path", "plugins.request_id", "plugins.request_id.header"]:
        assert k in keys, (k, sorted(keys))
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [{address: 127.0.0.1:1, nope: 1}]\n")
    r = subprocess.run([str(SLUICE_KEYS), str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "listen[0].nope: unknown key" in r.stderr


def test_every_key_the_parser_accepts_is_documented_in_sluice_yaml_5(tmp_path, pki, plugins):
    path, _ = every_section_config(tmp_path, pki, plugins)
    entries, mentioned, sections = documented(MAN / "sluice.yaml.5")
    assert sections == set(KEY_SECTIONS), f"sluice.yaml(5) lacks sections: {sections}"
    documented_keys = entries | mentioned | {"upstreams", "routes", "plugins"}
    missing = sorted({norm(k) for k in accepted([path])} - documented_keys)
    assert not missing, (
        "keys the parser accepts that sluice.yaml(5) does not document (each needs a .TP "
        f"entry in its section, or its name in bold in its parent's entry): {missing}")


def test_every_key_sluice_yaml_5_documents_is_accepted_by_the_parser(tmp_path, pki, plugins):
    path, _ = every_section_config(tmp_path, pki, plugins)
    keys = {norm(k) for k in accepted([path])} | {"upstreams", "routes", "plugins"}
    entries, _, _ = documented(MAN / "sluice.yaml.5")
    # A plugin this build leaves out (meson -Dplugins) cannot be checked.
    absent = {e.split(".")[1] for e in entries
              if e.startswith("plugins.") and e.count(".") >= 1} - set(plugins)
    checked = {e for e in entries
               if not (e.startswith("plugins.") and e.split(".")[1] in absent)}
    unknown = sorted(checked - keys)
    assert not unknown, f"sluice.yaml(5) documents keys the parser refuses: {unknown}"


@pytest.mark.parametrize("page", sorted(p.name for p in MAN.iterdir() if re.search(r"\.\d$",
                                                                                   p.name)))
def test_man_finds_nothing_to_warn_about_in(page):
    assert shutil.which("man"), "man is missing (Debian package man-db)"
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
    r = subprocess.run(["man", "--warnings", "-l", str(MAN / page)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "man printed nothing"
    assert r.stderr == "", f"man --warnings -l {page}:\n{r.stderr}"


def test_promtool_accepts_the_metrics_the_admin_api_serves(sluice_factory, origin):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (Debian package prometheus)"
    port, admin = free_port(), free_port()
    conf = basic_config(port, {"app": [origin.address], "dead": ["127.0.0.1:1"]})
    conf["admin"] = {"address": f"127.0.0.1:{admin}"}
    conf["upstreams"]["app"]["health_check"] = {"path": "/healthz", "interval": "1s"}
    conf["routes"] = [
        {"name": "limited", "match": {"path": "/limited"}, "upstream": "app",
         "plugins": {"rate_limit": {"key": "route", "rate": "1/m", "burst": 1}}},
        {"name": "dead", "match": {"path": "/dead"}, "upstream": "dead"},
        {"name": "app", "match": {"path": "/"}, "upstream": "app"},
    ]
    s = sluice_factory(conf)
    wait_port(admin)
    for path in ["/", "/x?y=1", "/limited", "/limited", "/dead"]:
        requests.get(s.url + path, timeout=10)
    requests.post(f"http://127.0.0.1:{admin}/reload", timeout=10)
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    for family in ["sluice_http_requests_total", "sluice_http_request_duration_seconds",
                   "sluice_upstream_requests_total", "sluice_ratelimit_decisions_total",
                   "sluice_config_reloads_total"]:
        assert f"# TYPE {family} " in text, family
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (
        f"promtool check metrics:\n{r.stdout}{r.stderr}\n--- the metrics:\n{text[:3000]}")
