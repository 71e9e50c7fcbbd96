"""The gateway proxies a request end to end."""

import requests


def test_a_request_reaches_the_origin_and_comes_back_with_a_request_id(gateway):
    sluice, origin = gateway
    r = requests.get(sluice.url + "/hello", timeout=5)
    assert r.status_code == 200
    assert r.text == "Hello, world!"
    assert r.headers["X-Origin"] == "origin"
    assert len(r.headers["X-Request-Id"]) == 36
