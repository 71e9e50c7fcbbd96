"""log.format: json — the error log as one JSON object per line (ts, level,
worker, message, and the request's fields when a line is about one), for
log pipelines; text stays the default."""

import datetime
import json

import requests

from conftest import basic_config, check_config, free_port, wait_for


def lines(s):
    return [json.loads(l) for l in s.error_log().splitlines() if l.strip()]


def test_every_error_log_line_is_a_json_object(sluice_factory, origin):
    dead = f"127.0.0.1:{free_port()}"
    conf = basic_config(free_port(), {"app": [dead]}, log={"format": "json", "access": "off"})
    s = sluice_factory(conf)
    r = requests.get(s.url + "/some/where?x=1", headers={"X-Request-Id": "req-42"}, timeout=5)
    assert r.status_code == 502
    # The start line comes from the main thread once everything is up, and
    # may follow the worker's first lines.
    wait_for(lambda: "connect" in s.error_log() and "started" in s.error_log(),
             what="the error line and the start line")
    got = lines(s)
    for l in got:
        assert set(l) >= {"ts", "level", "worker", "message"}, l
        datetime.datetime.strptime(l["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert l["level"] in ("error", "warn", "info", "debug")
    started = [l for l in got if "started" in l["message"]]
    assert started and started[0]["worker"] == "main" and started[0]["level"] == "info"
    failed = [l for l in got if "connect" in l["message"]]
    assert failed, got
    f = failed[0]
    assert f["level"] == "error" and f["worker"] == "w0"
    assert dead in f["message"]
    assert (f["client"], f["method"], f["path"], f["request_id"]) == (
        "127.0.0.1", "GET", "/some/where", "req-42"), f


def test_a_failed_reload_is_one_json_object_holding_the_whole_report(sluice_factory, origin):
    conf = basic_config(free_port(), {"app": [origin.address]},
                        log={"format": "json", "access": "off"})
    s = sluice_factory(conf)
    s.reload(dict(conf, workers="many"))
    got = lines(s)
    report = [l for l in got if "sluice.yaml:" in l["message"]]
    assert len(report) == 1, got
    assert report[0]["level"] == "error"
    assert ": error: workers:" in report[0]["message"] and "\n" in report[0]["message"]
    assert requests.get(s.url + "/", timeout=5).status_code == 200


def test_text_is_the_default_and_json_lines_follow_a_reload(sluice_factory, origin):
    conf = basic_config(free_port(), {"app": [origin.address]}, log={"access": "off"})
    s = sluice_factory(conf)
    wait_for(lambda: "[info] main: sluice" in s.error_log(), what="the start line, as text")
    s.reload(dict(conf, log={"format": "json", "access": "off"}))
    requests.get(s.url + "/", timeout=5)
    s.reload(dict(conf, log={"format": "json", "access": "off", "level": "debug"}))
    last = s.error_log().splitlines()[-1]
    assert json.loads(last)["message"].startswith("configuration reloaded"), last


def test_an_unknown_log_format_is_refused_with_its_position(tmp_path, origin):
    path = tmp_path / "c.yaml"
    path.write_text(f"""listen:
  - address: 127.0.0.1:{free_port()}
log: {{format: xml}}
upstreams:
  app: {{targets: [{origin.address}]}}
routes:
  - {{name: all, match: {{path: /}}, upstream: app}}
""")
    rc, out, err = check_config(path)
    assert rc == 1
    assert "c.yaml:3:15: error: log.format: expected text | json" in err, err
