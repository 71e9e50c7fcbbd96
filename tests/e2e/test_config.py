"""The YAML contract: positioned errors from `sluice -t`, ${VAR} expansion, reloads.

Every error must read `FILE:LINE:COL: error: KEY.PATH: message`, then the
source line and a caret under COL (DESIGN.md, "CLI"). Positions are computed
here from the YAML text each test writes, never copied from sluice's output.
"""

import os
import re
import signal
import subprocess
import threading

import requests

from conftest import SLUICE, basic_config, free_port, wait_for

HEAD_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<rest>.*)$")


def check(tmp_path, text, env=None, name="sluice.yaml"):
    """Write text and run `sluice -t -c` on it; (rc, stdout, stderr, path)."""
    path = tmp_path / name
    path.write_text(text)
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    r = subprocess.run([str(SLUICE), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=30, env=full_env)
    return r.returncode, r.stdout, r.stderr, path


def parse_errors(report):
    """The positioned errors of a report: dicts with file, line, col, rest,
    src (the quoted source text) and caret (1-based column of the caret)."""
    lines = report.splitlines()
    errs = []
    for i, l in enumerate(lines):
        m = HEAD_RE.match(l)
        if not m:
            continue
        e = {"file": m["file"], "line": int(m["line"]), "col": int(m["col"]), "rest": m["rest"],
             "src": None, "caret": None, "quote_line": None}
        if i + 2 < len(lines):
            q = re.match(r"^\s*(\d+) \| (.*)$", lines[i + 1])
            c = re.match(r"^\s*\| (\s*)\^\s*$", lines[i + 2])
            if q and c:
                e["quote_line"] = int(q[1])
                e["src"] = q[2]
                e["caret"] = len(c[1]) + 1
        errs.append(e)
    return errs


def pos(text, line_has, token=None, nth=1):
    """(line, col), 1-based, of token in the nth line of text containing line_has."""
    seen = 0
    for i, l in enumerate(text.splitlines(), 1):
        if line_has in l:
            seen += 1
            if seen == nth:
                return i, l.index(token if token is not None else line_has) + 1
    raise AssertionError(f"{line_has!r} not in the config")


def find_error(report, path):
    """The one error whose key path is `path`."""
    errs = [e for e in parse_errors(report) if e["rest"].startswith(f"{path}: ")]
    assert len(errs) == 1, f"expected one error for {path!r} in:\n{report}"
    return errs[0]


def assert_error(report, text, file, path, line, col, *words):
    """An error for key path `path` at line:col, quoting that line with a caret under col."""
    e = find_error(report, path)
    assert e["file"] == str(file), report
    assert (e["line"], e["col"]) == (line, col), f"{path}: wrong position in:\n{report}"
    assert e["quote_line"] == line, f"{path}: no source quote in:\n{report}"
    assert e["src"] == text.splitlines()[line - 1], report
    assert e["caret"] == col, f"{path}: caret not under column {col} in:\n{report}"
    for w in words:
        assert w in e["rest"], f"{path}: {w!r} missing in:\n{report}"
    return e


def good_text(port, upstream_addr="127.0.0.1:9", route_extra="", top_extra=""):
    """A minimal valid config as text, so tests can add one mistake."""
    return (
        "workers: 1\n"
        "listen:\n"
        f"  - address: 127.0.0.1:{port}\n"
        f"{top_extra}"
        "upstreams:\n"
        "  app:\n"
        "    targets:\n"
        f"      - address: {upstream_addr}\n"
        "routes:\n"
        "  - name: all\n"
        "    match:\n"
        "      path: /\n"
        "    upstream: app\n"
        f"{route_extra}"
    )


# -- sluice -t: positioned errors ------------------------------------------------


def test_check_prints_three_distinct_mistakes_in_one_run_with_positions_key_paths_and_carets(
        tmp_path):
    text = (
        "workers: 1\n"
        "listen:\n"
        f"  - address: 127.0.0.1:{free_port()}\n"
        "upstreams:\n"
        "  users:\n"
        "    timeout: 5s\n"
        "    retries: lots\n"
        "    targets:\n"
        "      - address: 127.0.0.1:9001\n"
        "routes:\n"
        "  - name: users\n"
        "    match: {path: /v1/users}\n"
        "    upstream: userz\n"
    )
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert "configuration ok" not in out
    report = out + err
    assert len(parse_errors(report)) == 3, report
    assert_error(report, text, path, "upstreams.users.timeout", *pos(text, "timeout: 5s", "timeout"),
                 "unknown key")
    assert_error(report, text, path, "upstreams.users.retries", *pos(text, "retries:", "lots"),
                 "lots")
    assert_error(report, text, path, "routes[0].upstream", *pos(text, "upstream: userz", "userz"),
                 "userz")


def test_columns_count_characters_and_crlf_files_quote_lines_without_the_carriage_return(
        tmp_path):
    text = good_text(free_port()) + (
        '  - {name: "h\u00e9llo \u2192 caf\u00e9", match: {path: /b}, upstream: nope}\n')
    path = tmp_path / "crlf.yaml"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    r = subprocess.run([str(SLUICE), "-t", "-c", str(path)], capture_output=True, timeout=30)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "\r" not in err
    assert_error(err, text, path, "routes[1].upstream", *pos(text, "upstream: nope", "nope"))


def test_a_yaml_syntax_error_is_reported_at_its_line_and_column(tmp_path):
    text = (
        "workers: 1\n"
        "listen:\n"
        "  - address: 127.0.0.1:8080\n"
        "   backlog: 5\n"
    )
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    errs = parse_errors(err)
    assert len(errs) == 1, err
    e = errs[0]
    line, col = pos(text, "backlog", "backlog")
    assert e["file"] == str(path)
    assert (e["line"], e["col"]) == (line, col), err
    assert e["rest"].startswith("YAML syntax"), err
    assert e["src"] == "   backlog: 5" and e["caret"] == col, err


def test_an_unknown_top_level_key_is_an_error_at_the_key(tmp_path):
    text = good_text(free_port(), top_extra="frobnicate: true\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "frobnicate", *pos(text, "frobnicate:"), "unknown key")


def test_a_nul_character_in_a_value_is_an_error_not_a_silently_cut_string(tmp_path):
    text = good_text(free_port(), top_extra='via: "sluice\\0evil"\n')
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "via", *pos(text, '"sluice'), "NUL character")


def test_a_duration_with_an_unknown_unit_is_an_error(tmp_path):
    text = good_text(free_port(), top_extra="timeouts: {client_header: 10 parsecs}\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "timeouts.client_header", *pos(text, "10 parsecs"),
                 "duration", "10 parsecs")


def test_a_size_that_is_not_a_size_is_an_error(tmp_path):
    text = good_text(free_port(), top_extra="limits: {max_body_bytes: lots}\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "limits.max_body_bytes", *pos(text, "max_body_bytes", "lots"),
                 "size", "lots")


def test_a_valid_duration_and_size_pass_the_check(tmp_path):
    text = good_text(free_port(), top_extra="timeouts: {client_header: 250ms, client_idle: 1m}\n"
                                            "limits: {max_body_bytes: 16k}\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 0, err
    assert out == f"{path}: configuration ok\n"


def test_a_listener_address_without_a_port_is_an_error(tmp_path):
    port = free_port()
    text = good_text(port).replace(f"  - address: 127.0.0.1:{port}\n",
                                   f"  - address: 127.0.0.1\n  - address: 127.0.0.1:{port}\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "listen[0].address", *pos(text, "address: 127.0.0.1", "127"),
                 "port")


def test_a_route_using_two_of_path_path_exact_and_path_regex_is_an_error(tmp_path):
    text = good_text(free_port()).replace("      path: /\n",
                                          "      path: /a\n      path_exact: /a\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    e = find_error(err, "routes[0].match")
    assert "path" in e["rest"] and "path_exact" in e["rest"], err
    # At the match block: its key line or its first key.
    assert e["line"] in (pos(text, "match:")[0], pos(text, "path: /a")[0]), err


def test_a_bad_path_regex_is_reported_with_its_position(tmp_path):
    regex = r"^/users/(\d+"
    text = good_text(free_port()).replace("      path: /\n", f"      path_regex: '{regex}'\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    e = assert_error(err, text, path, "routes[0].match.path_regex",
                     *pos(text, "path_regex:", "'"))
    # pcre2 reports a missing ")" at the end of the pattern.
    assert f"offset {len(regex)}" in e["rest"], err
    assert "parenthesis" in e["rest"], err


def test_a_lower_case_method_is_an_error_at_that_list_item(tmp_path):
    text = good_text(free_port()).replace("      path: /\n",
                                          "      path: /\n      methods: [GET, post]\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "routes[0].match.methods[1]", *pos(text, "methods:", "post"),
                 "post")


def test_an_unknown_plugin_in_a_route_is_an_error_at_the_plugin_name(tmp_path):
    text = good_text(free_port(), route_extra="    plugins:\n      nosuch:\n        x: 1\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "routes[0].plugins.nosuch", *pos(text, "nosuch:"),
                 "unknown plugin")


def test_an_unknown_default_plugin_is_an_error(tmp_path):
    text = good_text(free_port(), top_extra="plugins:\n  frob: {}\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    e = find_error(err, "plugins.frob")
    assert e["line"] == pos(text, "frob:")[0], err
    assert "unknown plugin" in e["rest"], err


def test_duplicate_route_names_are_an_error_at_the_second_name(tmp_path):
    text = good_text(free_port()) + (
        "  - name: all\n"
        "    match: {path: /b}\n"
        "    upstream: app\n"
    )
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    assert_error(err, text, path, "routes[1].name", *pos(text, "- name: all", "all", nth=2),
                 "routes[0]")


def test_a_duplicate_key_is_an_error_naming_its_full_key_path_and_line(tmp_path):
    text = good_text(free_port()).replace("      path: /\n", "      path: /a\n      path: /b\n")
    rc, out, err, path = check(tmp_path, text)
    assert rc == 1
    errs = parse_errors(err)
    dup = [e for e in errs if "duplicate" in e["rest"]]
    assert len(dup) == 1, err
    e = dup[0]
    line, key_col = pos(text, "path: /b", "path")
    assert e["line"] == line, err
    assert e["col"] in (key_col, pos(text, "path: /b", "/b")[1]), err
    assert e["rest"].startswith("routes[0].match.path: "), err


# -- ${VAR} expansion ----------------------------------------------------------------


def test_an_unset_variable_is_an_error_naming_the_variable_and_its_key_path(tmp_path):
    var = "SLUICE_TEST_UNSET_UPSTREAM"
    text = good_text(free_port(), upstream_addr='"${%s}"' % var)
    rc, out, err, path = check(tmp_path, text, env={var: None})
    assert rc == 1
    named = [e for e in parse_errors(err) if f'"{var}"' in e["rest"]]
    assert len(named) == 1, err
    e = named[0]
    assert (e["line"], e["col"]) == pos(text, var, '"'), err
    assert e["caret"] == e["col"], err
    assert "not set" in e["rest"], err
    assert e["rest"].startswith("upstreams.app.targets[0].address: "), err


def test_an_unset_variable_is_reported_once_not_again_as_an_empty_value(tmp_path):
    var = "SLUICE_TEST_UNSET_UPSTREAM"
    text = good_text(free_port(), upstream_addr='"${%s}"' % var)
    rc, out, err, path = check(tmp_path, text, env={var: None})
    assert rc == 1
    errs = parse_errors(err)
    assert len(errs) == 1, f"one mistake, expected one error:\n{err}"


def test_a_variable_from_the_environment_sets_the_upstream_and_route_name(
        tmp_path, origin_factory, sluice_factory):
    a = origin_factory("a")
    port = free_port()
    text = good_text(port, upstream_addr='"${SLUICE_TEST_UP}"').replace(
        "name: all", 'name: "route-${SLUICE_TEST_ROUTE}"')
    s = sluice_factory(text, env={"SLUICE_TEST_UP": a.address, "SLUICE_TEST_ROUTE": "green"})
    r = requests.get(s.url + "/hello", timeout=5)
    assert r.status_code == 200
    assert r.headers["X-Origin"] == "a"
    entries = wait_for(lambda: [e for e in s.access_log() if e.get("path") == "/hello"],
                       what="access log line")
    assert entries[0]["route"] == "route-green"


def test_a_variable_default_is_used_when_the_variable_is_unset(
        tmp_path, origin_factory, sluice_factory):
    a = origin_factory("a")
    var = "SLUICE_TEST_UNSET_WITH_DEFAULT"
    text = good_text(free_port(), upstream_addr='"${%s:-%s}"' % (var, a.address))
    os.environ.pop(var, None)
    s = sluice_factory(text)
    r = requests.get(s.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.headers["X-Origin"] == "a"


def test_a_set_variable_wins_over_its_default(tmp_path, origin_factory, sluice_factory):
    a = origin_factory("a")
    b = origin_factory("b")
    text = good_text(free_port(), upstream_addr='"${SLUICE_TEST_UP:-%s}"' % b.address)
    s = sluice_factory(text, env={"SLUICE_TEST_UP": a.address})
    r = requests.get(s.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.headers["X-Origin"] == "a"


def test_a_variable_with_a_default_passes_the_check_when_unset(tmp_path):
    var = "SLUICE_TEST_UNSET_WITH_DEFAULT"
    text = good_text(free_port(), upstream_addr='"${%s:-127.0.0.1:9}"' % var)
    rc, out, err, path = check(tmp_path, text, env={var: None})
    assert rc == 0, err
    assert out == f"{path}: configuration ok\n"


# -- reloads -----------------------------------------------------------------------


def test_sighup_with_a_valid_config_switches_routing_without_dropping_a_slow_request(
        tmp_path, origin_factory, sluice_factory):
    a = origin_factory("a", debug=True, log_path=tmp_path / "a.log")
    b = origin_factory("b")
    port = free_port()
    s = sluice_factory(basic_config(port, {"app": [a.address]}))
    assert requests.get(s.url + "/", timeout=5).headers["X-Origin"] == "a"

    result = {}

    def slow():
        try:
            r = requests.get(s.url + "/slow?delay=1500", timeout=15)
            result["status"], result["origin"] = r.status_code, r.headers.get("X-Origin")
        except Exception as exc:  # reported below
            result["error"] = repr(exc)

    t = threading.Thread(target=slow)
    t.start()
    try:
        wait_for(lambda: any("delay=1500" in target for _, _, target in a.request_log()),
                 what="the slow request to reach origin a")
        s.reload(basic_config(port, {"app": [b.address]}))
        assert "configuration reloaded" in s.error_log(), s.error_log()
        r = requests.get(s.url + "/", timeout=5)
        assert r.status_code == 200
        assert r.headers["X-Origin"] == "b"
    finally:
        t.join(15)
    assert result == {"status": 200, "origin": "a"}


def test_sighup_with_a_broken_config_logs_the_errors_and_keeps_the_old_config(
        tmp_path, origin_factory, sluice_factory):
    a = origin_factory("a")
    port = free_port()
    s = sluice_factory(basic_config(port, {"app": [a.address]}))
    broken = basic_config(port, {"app": [a.address]},
                          routes=[{"name": "all", "match": {"path": "/"}, "upstream": "missing"}])
    s.reload(broken)
    log = s.error_log()
    assert "reload failed" in log, log
    assert "configuration reloaded" not in log, log
    assert "routes[0].upstream" in log and "missing" in log, log
    r = requests.get(s.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.headers["X-Origin"] == "a"
    assert s.proc.poll() is None


def test_the_errors_of_a_failed_reload_go_to_the_configured_error_log_file(
        tmp_path, origin_factory, sluice_factory):
    a = origin_factory("a")
    port = free_port()
    log_file = tmp_path / "errors.log"
    good = basic_config(port, {"app": [a.address]})
    good["log"] = {"level": "info", "access": "off", "error": str(log_file)}
    s = sluice_factory(good)
    broken = dict(good, routes=[{"name": "all", "match": {"path": "/"}, "upstream": "missing"}])
    s.write_config(broken)
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: log_file.exists() and "reload failed" in log_file.read_text(),
             what="the reload failure in the error log file")
    wait_for(lambda: "missing" in log_file.read_text(), what="the errors themselves")
    text = log_file.read_text()
    assert re.search(re.escape(str(s.conf_path)) + r":\d+:\d+: error: routes\[0\]\.upstream: .*missing",
                     text), text
    assert "^" in text  # the caret under the source line
    assert "routes[0].upstream" not in s.error_log(), "the errors went to stderr"
    assert requests.get(s.url + "/", timeout=5).headers["X-Origin"] == "a"
