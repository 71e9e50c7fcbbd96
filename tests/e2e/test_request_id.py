"""Every proxied request gets an X-Request-Id (DESIGN.md), whether or not
the config lists the request_id plugin; request_id: off turns it off, at
the top level or for one route."""

import re

import requests

from conftest import AnsweringUpstream, basic_config, free_port

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _start(sluice_factory, plugins, route_plugins=None):
    up = AnsweringUpstream()
    port = free_port()
    routes = [
        {"name": "on", "match": {"path": "/on"}, "upstream": "app"},
        {"name": "off", "match": {"path": "/off"}, "upstream": "app",
         "plugins": route_plugins or {}},
    ]
    conf = basic_config(port, {"app": [up.address]}, routes=routes)
    if plugins is None:
        del conf["plugins"]
    else:
        conf["plugins"] = plugins
    return sluice_factory(conf), up


def _upstream_ids(up):
    return re.findall(rb"(?im)^x-request-id: *([^\r\n]*)\r$", b"".join(up.requests))


def test_a_config_without_the_plugin_still_gives_every_request_an_id(sluice_factory):
    s, up = _start(sluice_factory, None)
    try:
        r = requests.get(s.url + "/on", timeout=5)
        assert r.status_code == 200
        assert UUID.match(r.headers["X-Request-Id"])
        assert _upstream_ids(up) == [r.headers["X-Request-Id"].encode()]
        # A gateway-made answer carries one too.
        r = requests.get(s.url + "/nowhere", timeout=5)
        assert r.status_code == 404
        assert UUID.match(r.headers["X-Request-Id"])
        assert r.json()["request_id"] == r.headers["X-Request-Id"]
    finally:
        up.close()


def test_an_empty_plugins_map_still_gives_every_request_an_id(sluice_factory):
    s, up = _start(sluice_factory, {})
    try:
        r = requests.get(s.url + "/on", headers={"X-Request-Id": "client-id-1"}, timeout=5)
        assert r.headers["X-Request-Id"] == "client-id-1"  # a sane client id is kept
        assert _upstream_ids(up) == [b"client-id-1"]
    finally:
        up.close()


def test_request_id_off_at_the_top_level_turns_it_off_everywhere(sluice_factory):
    s, up = _start(sluice_factory, {"request_id": False})
    try:
        r = requests.get(s.url + "/on", timeout=5)
        assert r.status_code == 200
        assert "X-Request-Id" not in r.headers
        assert _upstream_ids(up) == []
    finally:
        up.close()


def test_request_id_off_on_a_route_turns_it_off_for_that_route_only(sluice_factory):
    s, up = _start(sluice_factory, None, route_plugins={"request_id": False})
    try:
        r = requests.get(s.url + "/off", timeout=5)
        assert r.status_code == 200
        assert "X-Request-Id" not in r.headers
        assert _upstream_ids(up) == []
        r = requests.get(s.url + "/on", timeout=5)
        assert UUID.match(r.headers["X-Request-Id"])
        assert _upstream_ids(up) == [r.headers["X-Request-Id"].encode()]
    finally:
        up.close()
