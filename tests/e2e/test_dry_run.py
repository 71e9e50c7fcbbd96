"""Dry-run reloads: POST /reload?dry_run=1 and `sluice -t --diff -c NEW` say what
a reload would change (routes, upstreams, targets, listeners, plugins) and apply
nothing; an admin endpoint refuses query parameters it does not know."""

import copy
import http.server
import subprocess
import threading

import pytest
import requests
import yaml

from conftest import SLUICE, basic_config, free_port, wait_port
from tls_helpers import tls_listen

TOKEN = "dry-run-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DB_PASSWORD = "hunter2-from-the-env"  # in the instance's environment, never in an answer


def config(port, admin_port, app_targets, **extra):
    conf = basic_config(port, {"app": app_targets})
    conf["admin"] = {"address": f"127.0.0.1:{admin_port}", "token": "${SLUICE_ADMIN_TOKEN}"}
    conf["log"] = {"level": "info", "access": "off"}
    conf.update(extra)
    return conf


@pytest.fixture
def running(sluice_factory, origin_factory):
    """An instance routing every path to origin "one", with an admin API behind
    a token: (sluice, admin port, origin one, origin two, its config)."""
    one, two = origin_factory("one"), origin_factory("two")
    port, admin = free_port(), free_port()
    conf = config(port, admin, [one.address])
    s = sluice_factory(conf, env={"SLUICE_ADMIN_TOKEN": TOKEN, "DB_PASSWORD": DB_PASSWORD})
    wait_port(admin)
    return s, admin, one, two, conf


def changed_config(conf, two):
    """conf with the app upstream moved to origin two and balanced p2c, a new
    upstream and route, a route plugin, and a second listener."""
    new = copy.deepcopy(conf)
    new["upstreams"]["app"] = {"balance": "p2c", "targets": [{"address": two.address}]}
    new["upstreams"]["spare"] = {"targets": [{"address": "127.0.0.1:9"}]}
    new["routes"][0]["plugins"] = {"rate_limit": {"rate": "100/s", "burst": 10, "store": "local"}}
    new["routes"].append({"name": "api", "match": {"path": "/api"}, "upstream": "spare"})
    extra = free_port()
    new["listen"].append({"address": f"127.0.0.1:{extra}"})
    return new, extra


def expected_changes(extra, one, two):
    return [
        {"kind": "listener", "name": f"127.0.0.1:{extra}", "change": "added", "details": []},
        {"kind": "upstream", "name": "app", "change": "changed",
         "details": [f"targets +{two.address}, -{one.address}", "balance round_robin -> p2c"]},
        {"kind": "upstream", "name": "spare", "change": "added", "details": []},
        {"kind": "route", "name": "all", "change": "changed", "details": ["plugins +rate_limit"]},
        {"kind": "route", "name": "api", "change": "added", "details": []},
    ]


def status(admin):
    r = requests.get(f"http://127.0.0.1:{admin}/status", headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def served_by(s):
    return requests.get(s.url + "/", timeout=5).headers.get("X-Origin")


def dry_run(admin, query="dry_run=1", **kw):
    return requests.post(f"http://127.0.0.1:{admin}/reload?{query}", headers=kw.pop("headers", AUTH),
                         timeout=15, **kw)


def diff_cli(path, *args, env_token=TOKEN, **env_extra):
    env = {"PATH": "/usr/bin:/bin", **env_extra}
    if env_token is not None:
        env["SLUICE_ADMIN_TOKEN"] = env_token
    r = subprocess.run([str(SLUICE), "-t", "--diff", "-c", str(path), *args], capture_output=True,
                       text=True, timeout=30, env=env)
    return r.returncode, r.stdout, r.stderr


def write(tmp_path, conf, name):
    p = tmp_path / name
    p.write_text(conf if isinstance(conf, str) else yaml.safe_dump(conf, sort_keys=False))
    return p


def test_a_dry_run_of_the_changed_file_lists_exactly_its_changes_and_applies_nothing(running):
    s, admin, one, two, conf = running
    assert served_by(s) == "one"
    new, extra = changed_config(conf, two)
    s.write_config(new)  # the instance's own file, as a real reload would read it

    r = dry_run(admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True and body["generation"] == 1
    assert body["file"] == str(s.conf_path)
    assert body["changes"] == expected_changes(extra, one, two)

    # Nothing applied: same generation, traffic on the old config, no new listener.
    assert status(admin)["generation"] == 1
    assert served_by(s) == "one"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{extra}/", timeout=2)
    metrics = requests.get(f"http://127.0.0.1:{admin}/metrics", headers=AUTH, timeout=5).text
    assert 'sluice_config_reloads_total{result="ok"} 0' in metrics

    # The real reload then does what the dry run said.
    r = requests.post(f"http://127.0.0.1:{admin}/reload", headers=AUTH, timeout=15)
    assert r.status_code == 200 and r.json()["generation"] == 2
    assert served_by(s) == "two"
    assert dry_run(admin).json()["changes"] == []


def test_the_cli_prints_one_line_per_change_of_another_file(running, tmp_path):
    s, admin, one, two, conf = running
    new, extra = changed_config(conf, two)
    path = write(tmp_path, new, "new.yaml")  # not the instance's file

    rc, out, err = diff_cli(path)
    assert rc == 0, err
    assert out.splitlines() == [
        f"{path}: configuration ok",
        f"+ listener 127.0.0.1:{extra}",
        f"~ upstream app: targets +{two.address}, -{one.address}; balance round_robin -> p2c",
        "+ upstream spare",
        "~ route all: plugins +rate_limit",
        "+ route api",
        f"5 changes against generation 1 at 127.0.0.1:{admin} (nothing applied)",
    ]
    assert status(admin)["generation"] == 1 and served_by(s) == "one"
    assert yaml.safe_load(s.conf_path.read_text()) == conf  # the instance's file untouched


def test_the_cli_says_when_nothing_would_change(running, tmp_path):
    s, admin, one, two, conf = running
    path = write(tmp_path, conf, "same.yaml")
    rc, out, err = diff_cli(path)
    assert rc == 0, err
    assert out.splitlines() == [f"{path}: configuration ok",
                                f"no changes against generation 1 at 127.0.0.1:{admin}"]


def test_plugin_settings_and_removals_are_named_and_secrets_are_not_shown(running, tmp_path):
    s, admin, one, two, conf = running
    base = copy.deepcopy(conf)
    base["routes"][0]["plugins"] = {"rate_limit": {"rate": "100/s", "burst": 10, "store": "local"}}
    base["routes"].append({"name": "old", "match": {"path": "/old"}, "upstream": "app"})
    s.write_config(base)
    assert requests.post(f"http://127.0.0.1:{admin}/reload", headers=AUTH, timeout=15).ok
    new = copy.deepcopy(base)
    new["routes"][0]["plugins"]["rate_limit"]["rate"] = "200/s"
    new["routes"] = new["routes"][:1]
    new["admin"]["token"] = "another-token"
    path = write(tmp_path, new, "new.yaml")

    rc, out, err = diff_cli(path, "--token", TOKEN)
    assert rc == 0, err
    assert out.splitlines()[1:] == [
        "~ setting admin: token changed (not shown)",
        "~ route all: rate_limit.rate 100/s -> 200/s",
        "- route old",
        f"3 changes against generation 2 at 127.0.0.1:{admin} (nothing applied)",
    ]
    assert "another-token" not in out + err


def test_a_listener_turning_tls_on_is_a_listener_change(running, tmp_path, pki):
    s, admin, one, two, conf = running
    new = copy.deepcopy(conf)
    port = int(conf["listen"][0]["address"].rsplit(":", 1)[1])
    new["listen"][0] = tls_listen(port, [pki.a])
    rc, out, err = diff_cli(write(tmp_path, new, "tls.yaml"))
    assert rc == 0, err
    assert f"~ listener 127.0.0.1:{port}: tls off -> on" in out.splitlines()


@pytest.mark.parametrize("method,path", [
    ("GET", "/status?x=1"), ("GET", "/metrics?format=json"), ("GET", "/upstreams?a"),
    ("POST", "/reload?dryrun=1"), ("POST", "/reload?dry_run=1&force=1"), ("GET", "/?x=1"),
])
def test_an_unknown_query_parameter_is_a_400_naming_it_and_the_accepted_ones(running, method,
                                                                          path):
    s, admin, one, two, conf = running
    new, _ = changed_config(conf, two)
    s.write_config(new)  # a reload that slipped through would change the generation
    r = requests.request(method, f"http://127.0.0.1:{admin}{path}", headers=AUTH, timeout=10)
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    bad = path.split("?")[1].split("&")[-1].split("=")[0]
    accepted = ["dry_run"] if path.startswith("/reload") else []
    assert body["error"] == "unknown_parameter"
    assert body["parameter"] == bad and body["accepted"] == accepted
    assert f'"{bad}"' in body["message"]
    assert ("accepts dry_run" if accepted else "accepts none") in body["message"]
    assert status(admin)["generation"] == 1 and served_by(s) == "one"


@pytest.mark.parametrize("query", ["dry_run=0", "dry_run=yes", "dry_run=", "dry_run",
                                   "dry_run=TRUE", "dry_run=1&dry_run=1"])
def test_dry_run_takes_1_or_true_and_nothing_else(running, query):
    s, admin, one, two, conf = running
    new, _ = changed_config(conf, two)
    s.write_config(new)
    r = dry_run(admin, query)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_parameter" and r.json()["parameter"] == "dry_run"
    assert status(admin)["generation"] == 1 and served_by(s) == "one"


@pytest.mark.parametrize("value", ["1", "true"])
def test_dry_run_1_and_true_are_dry_runs(running, value):
    s, admin, one, two, conf = running
    new, _ = changed_config(conf, two)
    s.write_config(new)
    r = dry_run(admin, f"dry_run={value}")
    assert r.status_code == 200 and len(r.json()["changes"]) == 5
    assert status(admin)["generation"] == 1


BROKEN = """workers: 1
listen: [{address: 127.0.0.1:%d}]
admin: {address: 127.0.0.1:%d, token: "${SLUICE_ADMIN_TOKEN}"}
upstreams:
  app:
    balance: fastest
    targets: [127.0.0.1:9]
routes:
  - {name: all, match: {path: /}, upstream: nowhere}
"""


def test_a_broken_file_gets_the_errors_a_real_reload_gets_and_nothing_applied(running):
    s, admin, one, two, conf = running
    port = int(conf["listen"][0]["address"].rsplit(":", 1)[1])
    s.write_config(BROKEN % (port, admin))
    r = dry_run(admin)
    assert r.status_code == 400, r.text
    report = r.json()["message"]
    assert r.json()["error"] == "invalid_config" and r.json()["errors"] == 2
    assert f"{s.conf_path}:6:14: error: upstreams.app.balance:" in report
    assert f"{s.conf_path}:9:45: error: routes[0].upstream:" in report
    assert status(admin)["generation"] == 1 and served_by(s) == "one"

    real = requests.post(f"http://127.0.0.1:{admin}/reload", headers=AUTH, timeout=15)
    assert real.status_code == 400 and real.json()["message"] == report
    assert status(admin)["generation"] == 1


def test_a_config_in_the_body_is_reported_under_the_name_given(running):
    s, admin, one, two, conf = running
    port = int(conf["listen"][0]["address"].rsplit(":", 1)[1])
    r = dry_run(admin, data=BROKEN % (port, admin),
                headers={**AUTH, "X-Config-File": "/srv/next/sluice.yaml"})
    assert r.status_code == 400
    assert "/srv/next/sluice.yaml:6:14: error: upstreams.app.balance:" in r.json()["message"]
    assert str(s.conf_path) not in r.json()["message"]
    ok = dry_run(admin, data=yaml.safe_dump(conf), headers=AUTH)
    assert ok.status_code == 200 and ok.json()["changes"] == []
    assert ok.json()["file"] == "(request body)"


def test_a_real_reload_with_a_body_is_refused(running):
    s, admin, one, two, conf = running
    r = requests.post(f"http://127.0.0.1:{admin}/reload", headers=AUTH, data="workers: 1\n",
                      timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "unexpected_body"
    assert status(admin)["generation"] == 1


def test_a_dry_run_needs_the_admin_token(running, tmp_path):
    s, admin, one, two, conf = running
    assert dry_run(admin, headers={}).status_code == 401
    assert dry_run(admin, headers={"Authorization": "Bearer wrong"}).status_code == 401
    rc, out, err = diff_cli(write(tmp_path, conf, "same.yaml"), "--token", "wrong")
    assert rc == 2 and "refused the token (401)" in err
    assert "changes" not in out


def test_the_cli_checks_the_file_first_and_exits_1_on_its_errors(running, tmp_path):
    s, admin, one, two, conf = running
    path = write(tmp_path, BROKEN % (free_port(), admin), "broken.yaml")
    rc, out, err = diff_cli(path)
    assert rc == 1
    assert f"{path}:6:14: error: upstreams.app.balance:" in err
    assert err.rstrip().endswith(f"{path}: 2 errors")
    assert "dry run" not in s.error_log()  # the instance was never asked


def test_the_cli_exits_2_when_the_instance_cannot_be_reached(tmp_path):
    conf = config(free_port(), free_port(), ["127.0.0.1:9"])
    rc, out, err = diff_cli(write(tmp_path, conf, "new.yaml"))
    assert rc == 2
    assert f"cannot reach the admin API at {conf['admin']['address']}" in err
    rc, out, err = diff_cli(write(tmp_path, conf, "new.yaml"), "--admin", "127.0.0.1:1")
    assert rc == 2 and "cannot reach the admin API at 127.0.0.1:1" in err


def test_the_cli_exits_2_for_a_file_without_admin_and_no_admin_flag(tmp_path):
    path = write(tmp_path, basic_config(free_port(), {"app": ["127.0.0.1:9"]}), "plain.yaml")
    rc, out, err = diff_cli(path)
    assert rc == 2 and "--admin HOST:PORT" in err


def test_the_cli_never_posts_to_an_instance_that_ignores_query_parameters(tmp_path):
    """An instance from before dry runs would take ?dry_run=1 for a real reload."""
    seen = []

    class Old(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(("GET", self.path))
            body = b'{"generation": 1}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            seen.append(("POST", self.path))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Old)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        conf = config(free_port(), server.server_address[1], ["127.0.0.1:9"])
        rc, out, err = diff_cli(write(tmp_path, conf, "new.yaml"))
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 2 and "does not know dry runs" in err
    assert seen == [("GET", "/status?dry_run=1")]


# -- what a dry run never shows ----------------------------------------------------------

SECRET_BODY = """workers: 1
listen: [{address: "127.0.0.1:%(port)d"}]
admin: {address: "127.0.0.1:%(admin)d", token: "${SLUICE_ADMIN_TOKEN}"}
log: {level: info, access: "off"}
upstreams:
  app:
    targets: [{address: "%(one)s"}]
    health_check: {path: "/${DB_PASSWORD}"}
routes:
  - name: all
    match: {path: "/${SLUICE_ADMIN_TOKEN}", headers: {Authorization: "Bearer literal-one"}}
    upstream: app
    plugins:
      headers:
        request:
          add:
            X-A: "1"
            X-Via: >-
              ${DB_PASSWORD}
          set: {Authorization: "Bearer literal-two", X-Api-Key: literal-three}
"""


def with_headers_plugin(s, admin, conf):
    """Reload s with a headers plugin on its route, so that a dry run compares
    the plugin's settings key by key."""
    base = copy.deepcopy(conf)
    base["routes"][0]["plugins"] = {"headers": {"request": {"add": {"X-A": "1"}}}}
    s.write_config(base)
    assert requests.post(f"http://127.0.0.1:{admin}/reload", headers=AUTH, timeout=15).ok
    return base


def test_a_dry_run_never_shows_a_value_from_the_environment_or_a_secret_header(running, tmp_path):
    """The admin token is not a key to the instance's environment: a config
    sent for a dry run that puts ${VAR} in core settings (match.path,
    health_check.path) or in a block scalar gets "changed (not shown)", and so
    do header values that look secret, in match.headers and in a plugin's
    headers that the old config did not have."""
    s, admin, one, two, conf = running
    with_headers_plugin(s, admin, conf)
    port = int(conf["listen"][0]["address"].rsplit(":", 1)[1])
    body = SECRET_BODY % {"port": port, "admin": admin, "one": one.address}

    r = dry_run(admin, data=body)
    assert r.status_code == 200, r.text
    for secret in (TOKEN, DB_PASSWORD, "literal-one", "literal-two", "literal-three"):
        assert secret not in r.text
    changes = {c["name"]: c["details"] for c in r.json()["changes"]}
    assert changes["app"] == ["health_check off -> on"]
    assert changes["all"] == [
        "match.path changed (not shown)",
        'match.headers (none) -> {Authorization: (not shown)}',
        "headers.request.add.X-Via (unset) -> (set)",
        "headers.request.set.Authorization (unset) -> (set)",
        "headers.request.set.X-Api-Key (unset) -> (set)",
    ]

    # The same file through the CLI: the instance expands it with its own
    # environment (the CLI's DB_PASSWORD is another), and shows neither.
    rc, out, err = diff_cli(write(tmp_path, body, "secret.yaml"), DB_PASSWORD="the-cli-one")
    assert rc == 0, err
    for secret in (TOKEN, DB_PASSWORD, "the-cli-one", "literal-two"):
        assert secret not in out + err
    assert "~ route all: match.path changed (not shown); " in out


ENV_ERRORS = """workers: ${DB_PASSWORD}
listen: [{address: "127.0.0.1:%(port)d"}]
admin: {address: "127.0.0.1:%(admin)d", token: "${SLUICE_ADMIN_TOKEN}"}
upstreams:
  app:
    targets: ["127.0.0.1:${DB_PASSWORD}"]
    timeouts: {connect: "${DB_PASSWORD}"}
routes:
  - {name: all, match: {path: /}, upstream: "${DB_PASSWORD}"}
"""


def test_the_errors_of_a_config_sent_for_a_dry_run_never_quote_the_environment(running):
    """A value from ${VAR} put where it cannot be valid is an error that says
    where it is and what is wrong, without quoting the value."""
    s, admin, one, two, conf = running
    port = int(conf["listen"][0]["address"].rsplit(":", 1)[1])
    r = dry_run(admin, data=ENV_ERRORS % {"port": port, "admin": admin})
    assert r.status_code == 400, r.text
    report = r.json()["message"]
    assert r.json()["errors"] == 4, report
    assert DB_PASSWORD not in r.text
    assert "(request body):1:10: error: workers: " in report
    assert "(request body):6:15: error: upstreams.app.targets[0]: " in report
    assert "(request body):7:25: error: upstreams.app.timeouts.connect: " in report
    assert "(request body):9:45: error: routes[0].upstream: " in report
    assert "from the environment" in report and "(not shown)" in report
    assert '${DB_PASSWORD}' in report  # the source lines are quoted as written


def test_a_query_part_that_decodes_to_nul_is_refused_not_cut_short(running):
    """?dry_run%00junk=1 is not ?dry_run=1 (nor, worse, a real reload)."""
    s, admin, one, two, conf = running
    new, _ = changed_config(conf, two)
    s.write_config(new)
    for query in ("dry_run%00junk=1", "dry_run=1%00", "dry_run=%0A1"):
        r = dry_run(admin, query)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_parameter"
        assert r.json()["parameter"] == query
        assert "control character" in r.json()["message"]
    assert status(admin)["generation"] == 1 and served_by(s) == "one"


def test_the_cli_takes_the_token_from_a_file_or_the_environment_not_only_argv(running, tmp_path):
    """The file has no admin.token: the CLI's SLUICE_ADMIN_TOKEN, or
    --token-file, gives it (--token would show it to every local user)."""
    s, admin, one, two, conf = running
    new = copy.deepcopy(conf)
    del new["admin"]["token"]
    path = write(tmp_path, new, "no-token.yaml")
    lines = [f"{path}: configuration ok", "~ setting admin: token (set) -> (unset)",
             f"1 change against generation 1 at 127.0.0.1:{admin} (nothing applied)"]

    rc, out, err = diff_cli(path)  # SLUICE_ADMIN_TOKEN in the CLI's environment
    assert rc == 0, err
    assert out.splitlines() == lines

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    rc, out, err = diff_cli(path, "--token-file", str(token_file), env_token=None)
    assert rc == 0, err
    assert out.splitlines() == lines

    rc, out, err = diff_cli(path, env_token=None)
    assert rc == 2 and "refused the token (401)" in err

    token_file.write_text("\n")
    rc, out, err = diff_cli(path, "--token-file", str(token_file), env_token=None)
    assert rc == 2 and "no token on its first line" in err
    rc, out, err = diff_cli(path, "--token-file", str(tmp_path / "missing"), env_token=None)
    assert rc == 2 and "--token-file" in err
    rc, out, err = diff_cli(path, "--token-file", str(token_file), "--token", "x")
    assert rc == 2 and "not both" in err
