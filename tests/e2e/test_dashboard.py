"""The admin dashboard (GET / on the admin listener) and the data it reads:
GET /routes and the last reload in GET /status. The page is driven in a real
headless chromium (browser.py); screenshots are kept in tests/e2e/artifacts/
(or $SLUICE_ARTIFACTS)."""

import base64
import hashlib
import json
import os
import re
import signal
import time
from pathlib import Path

import requests

from browser import Browser
from conftest import basic_config, check_config, free_port, wait_for, wait_port

TOKEN = "dash-s3cret"
ARTIFACTS = Path(os.environ.get("SLUICE_ARTIFACTS", Path(__file__).parent / "artifacts"))
FAST_HEALTH = {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "healthy": 1,
               "unhealthy": 2}


# -- helpers (kept local: this file owns them) ---------------------------------------


def dashboard_config(port, admin_port, origins, token=TOKEN):
    """Routes "api" (rate limited: 3 then 429) and "web" to the upstream "app"."""
    conf = basic_config(port, {"app": origins}, routes=[
        {"name": "api", "match": {"path": "/api", "methods": ["GET"]}, "upstream": "app",
         "plugins": {"rate_limit": {"rate": "1/m", "burst": 3, "store": "local"}}},
        {"name": "web", "match": {"path": "/"}, "upstream": "app"},
    ])
    conf["log"]["access"] = "off"
    conf["upstreams"]["app"]["health_check"] = dict(FAST_HEALTH)
    conf["admin"] = {"address": f"127.0.0.1:{admin_port}"}
    if token:
        conf["admin"]["token"] = token
    return conf


def start(sluice_factory, conf):
    s = sluice_factory(conf)
    wait_port(int(conf["admin"]["address"].rsplit(":", 1)[1]))
    return s


def admin_get(admin_port, path, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"http://127.0.0.1:{admin_port}{path}", headers=headers, timeout=10)


def inline(body, tag):
    (text,) = re.findall(f"<{tag}>(.*?)</{tag}>", body, re.S)
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def js_str(s):
    return json.dumps(s)


def target_state(b, upstream, address):
    """The State cell of a target's row on the page, or None."""
    return b.js(f"""(() => {{
        const r = [...document.querySelectorAll('#upstream-list tr[data-target]')]
            .find((r) => r.dataset.target === {js_str(upstream + '/' + address)});
        return r ? r.querySelector('.state').textContent : null; }})()""")


def route_cell(b, route, index):
    return b.js(f"""(() => {{
        const r = [...document.querySelectorAll('#route-rows tr')]
            .find((r) => r.dataset.route === {js_str(route)});
        return r ? r.children[{index}].textContent : null; }})()""")


def log_in(b, admin_port, token=TOKEN):
    b.goto(f"http://127.0.0.1:{admin_port}/")
    b.wait_js("!document.getElementById('login').hidden", what="the token form")
    assert b.js("document.getElementById('main').hidden") is True
    b.js(f"document.getElementById('token').value = {js_str(token)};"
         "document.getElementById('login').requestSubmit(); true")
    b.wait_js("window.sluiceDashboard.ticks >= 1", what="the first update")


def per_update(b, n):
    """What the browser spent per update over the next n updates (ms)."""
    ticks, before = b.js("window.sluiceDashboard.ticks"), b.perf()
    time.sleep(n)  # not polling the page meanwhile: what it spends is its own
    b.wait_js(f"window.sluiceDashboard.ticks >= {ticks + n}", timeout=30, what=f"{n} updates")
    spent = {k: v - before[k] for k, v in b.perf().items() if k in before}
    done = b.js("window.sluiceDashboard.ticks") - ticks
    return {k: round(1000 * spent[k + "Duration"] / done, 1)
            for k in ("Task", "Script", "Layout", "RecalcStyle")}


# -- the page and its data over plain HTTP ---------------------------------------------


def test_the_page_is_served_without_a_token_with_a_csp_that_allows_only_its_own_code(
        sluice_factory, origin):
    port, admin = free_port(), free_port()
    start(sluice_factory, dashboard_config(port, admin, [origin.address]))
    r = requests.get(f"http://127.0.0.1:{admin}/", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    csp = dict(d.strip().split(" ", 1) for d in r.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'"
    assert csp["script-src"] == inline(r.text, "script")
    assert csp["style-src"] == inline(r.text, "style")
    assert csp["frame-ancestors"] == "'none'"
    assert 'data-auth="token"' in r.text
    # The page holds no data: no route, upstream or target in it.
    assert origin.address not in r.text and '"api"' not in r.text
    # The data stays behind the token.
    assert admin_get(admin, "/routes", token=None).status_code == 401
    assert admin_get(admin, "/status", token=None).status_code == 401
    head = requests.head(f"http://127.0.0.1:{admin}/", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == r.headers["Content-Length"]
    assert requests.post(f"http://127.0.0.1:{admin}/", timeout=5).status_code == 405


def test_without_an_admin_token_the_page_says_so_and_asks_for_none(sluice_factory, origin):
    port, admin = free_port(), free_port()
    start(sluice_factory, dashboard_config(port, admin, [origin.address], token=None))
    r = requests.get(f"http://127.0.0.1:{admin}/", timeout=5)
    assert r.status_code == 200 and 'data-auth="none"' in r.text


def test_routes_tell_each_routes_match_upstream_and_plugins(sluice_factory, origin):
    port, admin = free_port(), free_port()
    conf = dashboard_config(port, admin, [origin.address])
    conf["routes"].insert(0, {"name": "exact", "match": {
        "host": "*.example.com", "path_exact": "/v1/ping", "methods": ["GET", "POST"],
        "headers": {"X-Api-Version": "2"}}, "upstream": "app", "strip_prefix": "/v1"})
    start(sluice_factory, conf)
    r = admin_get(admin, "/routes")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    data = r.json()
    assert data["generation"] == 1
    exact, api, web = data["routes"]
    assert exact == {"name": "exact", "match": {
        "host": "*.example.com", "path": None, "path_exact": "/v1/ping", "path_regex": None,
        "methods": ["GET", "POST"], "headers": {"X-Api-Version": "2"}},
        "upstream": "app", "strip_prefix": "/v1", "plugins": ["request_id"]}
    assert api["match"]["path"] == "/api" and api["match"]["methods"] == ["GET"]
    assert api["plugins"] == ["request_id", "rate_limit"]
    assert web["match"]["methods"] == [] and web["upstream"] == "app"
    assert data["default_plugins"] == ["request_id"]


def test_status_tells_the_last_reload_and_a_failed_ones_errors(sluice_factory, origin):
    port, admin = free_port(), free_port()
    conf = dashboard_config(port, admin, [origin.address])
    s = start(sluice_factory, conf)
    assert admin_get(admin, "/status").json()["last_reload"] is None
    broken = json.loads(json.dumps(conf))
    broken["routes"][1]["upstream"] = "missing"
    s.reload(broken)  # SIGHUP
    last = admin_get(admin, "/status").json()["last_reload"]
    assert last["result"] == "failed" and last["generation"] == 1
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", last["at"])
    assert re.search(re.escape(str(s.conf_path)) + r":\d+:\d+: error: routes\[1\]\.upstream: "
                     r'.*unknown upstream "missing"', last["errors"]), last["errors"]
    s.write_config(conf)
    assert requests.post(f"http://127.0.0.1:{admin}/reload", timeout=10,
                         headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    status = admin_get(admin, "/status").json()
    assert status["last_reload"]["result"] == "ok" and status["last_reload"]["errors"] is None
    assert status["last_reload"]["generation"] == status["generation"] == 2


# -- the page in a browser ----------------------------------------------------------------


def test_the_dashboard_shows_traffic_a_target_going_down_and_a_failed_reload(
        sluice_factory, origin_factory, tmp_path):
    a, b_origin = origin_factory("a"), origin_factory("b")
    port, admin = free_port(), free_port()
    conf = dashboard_config(port, admin, [a.address, b_origin.address])
    s = start(sluice_factory, conf)
    with Browser(tmp_path) as b:
        log_in(b, admin)
        assert b.js("sessionStorage.getItem('sluice-admin-token')") == TOKEN
        b.wait_js("document.querySelectorAll('#route-rows tr').length === 2", what="two routes")
        assert route_cell(b, "api", 2) == "app"
        assert route_cell(b, "api", 3) == "request_id, rate_limit"
        for o in (a, b_origin):
            wait_for(lambda: target_state(b, "app", o.address) == "up", what=f"{o.name} up")

        # Traffic: 3 allowed, 3 rate limited, counted on the api route's row.
        codes = [requests.get(s.url + "/api/x", timeout=5).status_code for _ in range(6)]
        assert codes == [200] * 3 + [429] * 3
        wait_for(lambda: route_cell(b, "api", 4) == "6", what="6 requests on the page")
        # The update that counted them shows their latency (from the histogram's
        # buckets) and status classes for that second.
        wait_for(lambda: re.match(r"p50 [\d.]+ ms \u00b7 p99 [\d.]+ ms$", route_cell(b, "api", 7)),
                 what="the api route's p50 and p99")
        wait_for(lambda: "4xx" in route_cell(b, "api", 6), what="the 429s as 4xx")
        wait_for(lambda: "rejected 3" in route_cell(b, "api", 8), what="3 rejections shown")
        assert "allowed 3" in route_cell(b, "api", 8)
        assert route_cell(b, "web", 8) == "-"
        b.screenshot(ARTIFACTS / "dashboard-live.png")

        # A target dies: its health checks fail and the page shows it down.
        b_origin.kill()
        t0 = time.monotonic()
        wait_for(lambda: target_state(b, "app", b_origin.address) == "down",
                 what="the killed target shown down")
        down_after = time.monotonic() - t0
        assert target_state(b, "app", a.address) == "up"
        assert b.js("document.getElementById('attention').hidden") is False
        assert b_origin.address in b.js("document.getElementById('down-list').textContent")
        b.screenshot(ARTIFACTS / "dashboard-target-down.png")

        # A broken config: the reload fails and the page shows its errors.
        broken = json.loads(json.dumps(conf))
        broken["routes"][1]["upstream"] = "missing"
        s.write_config(broken)
        code, _, err = check_config(s.conf_path)
        assert code == 1
        first = next(l for l in err.splitlines() if ": error: " in l)
        assert re.match(re.escape(str(s.conf_path)) + r":\d+:\d+: error: ", first), first
        s.proc.send_signal(signal.SIGHUP)
        b.wait_js(f"""(() => {{ const e = document.getElementById('reload-errors');
                  return !e.hidden && e.textContent.includes({js_str(first)}); }})()""",
                  what="the failed reload's error on the page")
        assert "failed" in b.js("document.getElementById('reload-summary').textContent")
        assert b.js("document.getElementById('f-generation').textContent") == "1"
        b.screenshot(ARTIFACTS / "dashboard-reload-failed.png")

        # Fixed, with one more route, and reloaded from the page's button.
        conf["routes"].insert(1, {"name": "added", "match": {"path": "/added"},
                                  "upstream": "app"})
        s.write_config(conf)
        b.js("document.getElementById('reload').click(); true")
        b.wait_js("document.getElementById('f-generation').textContent === '2'",
                  what="generation 2")
        b.wait_js("document.querySelectorAll('#route-rows tr').length === 3", what="3 routes")
        b.wait_js("document.getElementById('reload-errors').hidden", what="errors cleared")
        assert "ok" in b.js("document.getElementById('reload-summary').textContent")
        assert route_cell(b, "api", 4) == "6"  # counters kept across the reload

        # The token is kept for the tab: a page reload asks for nothing.
        b.reload()
        b.wait_js("window.sluiceDashboard.ticks >= 1", what="an update after reloading")
        assert b.js("document.getElementById('login').hidden") is True
        assert b.console_errors() == []
    print(f"\nkilled target shown down after {down_after:.2f} s")


def test_the_dashboard_asks_again_when_the_token_is_refused(sluice_factory, origin,
                                                            tmp_path):
    port, admin = free_port(), free_port()
    start(sluice_factory, dashboard_config(port, admin, [origin.address]))
    with Browser(tmp_path) as b:
        b.goto(f"http://127.0.0.1:{admin}/")
        b.js(f"document.getElementById('token').value = 'wrong';"
             "document.getElementById('login').requestSubmit(); true")
        b.wait_js("document.getElementById('login-error').textContent.includes('refused')",
                  what="the refusal")
        assert b.js("sessionStorage.getItem('sluice-admin-token')") is None
        assert b.js("document.getElementById('main').hidden") is True
        # The browser logs the 401 itself; nothing else went wrong.
        assert all("401" in e for e in b.console_errors()), b.console_errors()


def test_the_dashboard_renders_500_routes_and_2000_targets_and_keeps_updating(
        sluice_factory, origin, tmp_path):
    port, admin = free_port(), free_port()
    upstreams = {"live": [origin.address]}
    for u in range(40):  # 40 x 50 = 2,000 targets, never contacted (no checks, no traffic)
        upstreams[f"u{u:02d}"] = [f"127.0.0.{2 + u}:{10000 + k}" for k in range(50)]
    routes = [{"name": f"r{i:03d}", "match": {"path": f"/r{i:03d}"},
               "upstream": "live" if i < 10 else f"u{i % 40:02d}",
               **({"plugins": {"rate_limit": {"rate": "100/s", "burst": 100,
                                              "store": "local"}}} if i % 5 == 0 else {})}
              for i in range(500)]
    conf = basic_config(port, upstreams, routes=routes)
    conf["log"]["access"] = "off"
    conf["admin"] = {"address": f"127.0.0.1:{admin}"}
    s = start(sluice_factory, conf)
    with Browser(tmp_path) as b:
        b.goto(f"http://127.0.0.1:{admin}/")  # no admin token: no form
        b.wait_js("window.sluiceDashboard.ticks >= 1", timeout=30, what="the first render")
        first = b.js("window.sluiceDashboard.firstRenderMs")
        assert b.js("document.querySelectorAll('#route-rows tr').length") == 500
        assert b.js("window.sluiceDashboard.targets") == 2001
        # Many targets: the upstreams start collapsed; expanding renders every row.
        assert b.js("document.querySelectorAll('#upstream-list tr[data-target]').length") == 0
        collapsed = per_update(b, 2)
        t0 = time.monotonic()
        b.js("document.getElementById('expand-all').click(); true")
        b.wait_js("document.querySelectorAll('#upstream-list tr[data-target]').length === 2001",
                  timeout=30, what="every target row")
        expand_s = time.monotonic() - t0
        for i in range(20):
            assert requests.get(f"{s.url}/r{i % 10:03d}/", timeout=5).status_code == 200
        expanded = per_update(b, 3)
        wait_for(lambda: route_cell(b, "r000", 4) == "2", what="r000's requests")
        assert route_cell(b, "r000", 8).startswith("allowed 2")
        assert target_state(b, "live", origin.address) == "up"
        timing = b.js("JSON.stringify(window.sluiceDashboard)")
        b.screenshot(ARTIFACTS / "dashboard-500-routes-2000-targets.png", full_page=False)
        assert b.console_errors() == []
    result = dict(json.loads(timing), expand_all_s=round(expand_s, 3), first_render_ms=first,
                  per_update_collapsed=collapsed, per_update_expanded=expanded)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dashboard-scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n500 routes, 2001 targets: {result}")
