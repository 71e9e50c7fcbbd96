"""The admin API: /status, /metrics, /upstreams and POST /reload, behind a token."""

import re

import requests

from conftest import basic_config, check_config, free_port, wait_for, wait_port


def admin_config(port, admin_port, origins, token=None, **extra):
    conf = basic_config(port, {"app": origins}, **extra)
    conf["admin"] = {"address": f"127.0.0.1:{admin_port}"}
    if token is not None:
        conf["admin"]["token"] = token
    return conf


def start(sluice_factory, conf, admin_port):
    s = sluice_factory(conf)
    wait_port(admin_port)
    return s


def metrics(admin_port, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.get(f"http://127.0.0.1:{admin_port}/metrics", headers=headers, timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    return r.text


def sample(text, name, **labels):
    """The value of one sample, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        m = re.match(r"([a-z_]+)(\{(.*)\})? ([0-9.e+-]+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == str(v) for k, v in labels.items()):
            return float(m.group(4))
    return None


def test_status_tells_version_workers_generation_and_file(sluice_factory, origin):
    port, admin = free_port(), free_port()
    s = start(sluice_factory, admin_config(port, admin, [origin.address]), admin)
    r = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5)
    assert r.status_code == 200
    st = r.json()
    assert st["version"] and st["workers"] == 1 and st["generation"] == 1
    assert st["config_file"] == str(s.conf_path)
    assert isinstance(st["uptime_s"], int) and st["uptime_s"] >= 0
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", st["loaded_at"])


def test_a_token_is_required_when_one_is_set(sluice_factory, origin):
    port, admin = free_port(), free_port()
    start(sluice_factory, admin_config(port, admin, [origin.address], token="s3cret"), admin)
    url = f"http://127.0.0.1:{admin}/status"
    r = requests.get(url, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert "Bearer" in r.headers["WWW-Authenticate"]
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer s3cret"}, timeout=5).status_code == 200


def test_metrics_count_requests_durations_limits_and_targets(sluice_factory, origin):
    port, admin = free_port(), free_port()
    conf = admin_config(port, admin, [origin.address])
    conf["routes"][0]["plugins"] = {"rate_limit": {"rate": "1/m", "burst": 3, "store": "local"}}
    s = start(sluice_factory, conf, admin)
    codes = [requests.get(s.url + "/", timeout=5).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    text = metrics(admin)
    assert sample(text, "sluice_http_requests_total", route="all", code=200) == 3
    assert sample(text, "sluice_http_requests_total", route="all", code=429) >= 2
    assert sample(text, "sluice_http_request_duration_seconds_count", route="all") >= 5
    assert sample(text, "sluice_http_request_duration_seconds_bucket", route="all", le="+Inf") >= 5
    assert sample(text, "sluice_ratelimit_decisions_total", route="all", decision="allowed") == 3
    assert sample(text, "sluice_ratelimit_decisions_total", route="all", decision="rejected") >= 2
    assert sample(text, "sluice_upstream_requests_total", upstream="app",
                  target=origin.address, code=200) == 3
    assert sample(text, "sluice_upstream_target_healthy", upstream="app",
                  target=origin.address) == 1
    assert sample(text, "sluice_connections", state="open") is not None
    assert sample(text, "sluice_config_reloads_total", result="ok") == 0
    assert sample(text, "sluice_redis_errors_total") == 0
    for name in ("sluice_http_requests_total", "sluice_http_request_duration_seconds",
                 "sluice_upstream_requests_total", "sluice_upstream_target_healthy",
                 "sluice_ratelimit_decisions_total", "sluice_connections",
                 "sluice_config_reloads_total", "sluice_redis_errors_total"):
        assert f"# TYPE {name} " in text, name


def test_upstreams_show_each_targets_health_and_counters(sluice_factory, origin):
    port, admin = free_port(), free_port()
    dead = f"127.0.0.1:{free_port()}"
    conf = admin_config(port, admin, [origin.address, dead])
    conf["upstreams"]["app"]["health_check"] = {"interval": "200ms", "unhealthy": 2,
                                                "timeout": "100ms"}
    s = start(sluice_factory, conf, admin)
    wait_for(lambda: "is DOWN" in s.error_log(), what="the dead target marked down")
    for _ in range(4):
        assert requests.get(s.url + "/", timeout=5).status_code == 200
    ups = requests.get(f"http://127.0.0.1:{admin}/upstreams", timeout=5).json()
    (app,) = ups["upstreams"]
    assert app["name"] == "app" and app["health_check"] is True
    by_addr = {t["address"]: t for t in app["targets"]}
    live, down = by_addr[origin.address], by_addr[dead]
    assert live["healthy"] is True and live["requests"] == 4 and live["active"] == 0
    assert live["ejected_until"] is None
    assert down["healthy"] is False and down["requests"] == 0
    assert down["last_check"]


def test_post_reload_answers_the_new_generation_or_the_errors(sluice_factory, origin_factory):
    a, b = origin_factory("a"), origin_factory("b")
    port, admin = free_port(), free_port()
    s = start(sluice_factory, admin_config(port, admin, [a.address]), admin)
    s.write_config(admin_config(port, admin, [b.address]))
    r = requests.post(f"http://127.0.0.1:{admin}/reload", timeout=10)
    assert r.status_code == 200 and r.json()["generation"] == 2
    assert requests.get(s.url + "/", timeout=5).headers["X-Origin"] == "b"
    broken = admin_config(port, admin, [b.address])
    broken["routes"][0]["upstream"] = "missing"
    s.write_config(broken)
    r = requests.post(f"http://127.0.0.1:{admin}/reload", timeout=10)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_config"
    assert 'unknown upstream "missing"' in r.json()["message"]
    assert requests.get(s.url + "/", timeout=5).headers["X-Origin"] == "b"
    status = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).json()
    assert status["generation"] == 2
    text = metrics(admin)
    assert sample(text, "sluice_config_reloads_total", result="ok") == 1
    assert sample(text, "sluice_config_reloads_total", result="failed") == 1


def test_unknown_paths_and_wrong_methods_get_json_errors(sluice_factory, origin):
    port, admin = free_port(), free_port()
    start(sluice_factory, admin_config(port, admin, [origin.address]), admin)
    r = requests.get(f"http://127.0.0.1:{admin}/nope", timeout=5)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = requests.get(f"http://127.0.0.1:{admin}/reload", timeout=5)
    assert r.status_code == 405
    r = requests.post(f"http://127.0.0.1:{admin}/metrics", timeout=5)
    assert r.status_code == 405


def test_the_admin_address_cannot_be_a_listener(tmp_path):
    port = free_port()
    conf = tmp_path / "c.yaml"
    conf.write_text(f"""listen: [{{address: 127.0.0.1:{port}}}]
admin: {{address: 127.0.0.1:{port}}}
upstreams: {{app: {{targets: [127.0.0.1:1]}}}}
routes: [{{upstream: app}}]
""")
    rc, out, err = check_config(conf)
    assert rc == 1
    assert "admin.address: the admin API needs an address of its own" in err


def test_head_on_a_data_endpoint_gives_its_length_and_no_body(sluice_factory, origin):
    import socket

    port, admin = free_port(), free_port()
    start(sluice_factory, admin_config(port, admin, [origin.address]), admin)
    full = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5)
    with socket.create_connection(("127.0.0.1", admin), timeout=5) as c:
        c.sendall(b"HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert re.search(rb"(?i)\r\ncontent-length: \d+", head)
    assert body == b"", body
    assert full.content  # GET still has one


def test_metrics_name_the_running_version(sluice_factory, origin):
    port, admin = free_port(), free_port()
    start(sluice_factory, admin_config(port, admin, [origin.address]), admin)
    version = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).json()["version"]
    text = metrics(admin)
    assert "# TYPE sluice_build_info gauge" in text
    assert f'sluice_build_info{{version="{version}"}} 1' in text
