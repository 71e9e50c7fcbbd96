"""Route choice, exactly as DESIGN.md says: path_exact beats path (longest
prefix wins) beats path_regex (first in file order); a host match beats a
route without host. Each route goes to its own origin, and each origin names
itself in X-Origin, so the answer says which route was chosen."""

import http.client
import json

import pytest

from conftest import free_port


def get(sluice, target, method="GET", host=None, headers=None, body=None):
    """One request with the target sent byte for byte (no client-side
    normalisation of dot segments); returns (status, headers, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", sluice.listen_ports()[0], timeout=5)
    try:
        h = dict(headers or {})
        h["Host"] = host or "localhost"
        c.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def origin_of(sluice, target, **kw):
    """Which origin served target (None when sluice answered itself), and the status."""
    status, headers, _ = get(sluice, target, **kw)
    return headers.get("X-Origin"), status


@pytest.fixture
def routed(origin_factory, sluice_factory):
    """routed(routes): start one origin per distinct upstream name in routes
    (the upstream is named after it) and sluice with those routes."""

    def make(routes, name="sluice"):
        origins = {}
        for r in routes:
            if r["upstream"] not in origins:
                origins[r["upstream"]] = origin_factory(r["upstream"])
        conf = {
            "workers": 1,
            "listen": [{"address": f"127.0.0.1:{free_port()}"}],
            "log": {"level": "info", "access": "stdout"},
            "upstreams": {n: {"targets": [{"address": o.address}]} for n, o in origins.items()},
            "plugins": {"request_id": {}},
            "routes": [dict(r, name=r.get("name", f"r{i}")) for i, r in enumerate(routes)],
        }
        return sluice_factory(conf, name=name)

    return make


# -- path precedence ------------------------------------------------------------


def test_path_exact_beats_a_longer_matching_prefix(routed):
    s = routed([
        {"match": {"path": "/v1/users"}, "upstream": "prefix"},
        {"match": {"path_exact": "/v1/users"}, "upstream": "exact"},
    ])
    assert origin_of(s, "/v1/users") == ("exact", 200)
    assert origin_of(s, "/v1/users/42") == ("prefix", 200)


def test_path_exact_does_not_match_a_longer_path_or_a_query_changes_nothing(routed):
    s = routed([
        {"match": {"path_exact": "/status"}, "upstream": "exact"},
        {"match": {"path": "/"}, "upstream": "root"},
    ])
    assert origin_of(s, "/status?verbose=1") == ("exact", 200)
    assert origin_of(s, "/status/") == ("root", 200)
    assert origin_of(s, "/statusx") == ("root", 200)


def test_the_longest_prefix_wins_whatever_the_file_order(routed):
    s = routed([
        {"match": {"path": "/"}, "upstream": "root"},
        {"match": {"path": "/v1"}, "upstream": "v1"},
        {"match": {"path": "/v1/users/admin"}, "upstream": "admin"},
        {"match": {"path": "/v1/users"}, "upstream": "users"},
    ])
    assert origin_of(s, "/v1/users/admin/7") == ("admin", 200)
    assert origin_of(s, "/v1/users/7") == ("users", 200)
    assert origin_of(s, "/v1/orders") == ("v1", 200)
    assert origin_of(s, "/v2") == ("root", 200)


def test_a_prefix_beats_a_regex_listed_before_it(routed):
    s = routed([
        {"match": {"path_regex": "^/v1/users/[0-9]+$"}, "upstream": "regex"},
        {"match": {"path": "/v1"}, "upstream": "prefix"},
    ])
    assert origin_of(s, "/v1/users/42") == ("prefix", 200)


def test_path_exact_beats_a_regex(routed):
    s = routed([
        {"match": {"path_regex": "^/health"}, "upstream": "regex"},
        {"match": {"path_exact": "/healthz"}, "upstream": "exact"},
    ])
    assert origin_of(s, "/healthz") == ("exact", 200)
    assert origin_of(s, "/health/deep") == ("regex", 200)


def test_among_regexes_the_first_in_file_order_wins(routed):
    s = routed([
        {"match": {"path_regex": "^/items/[0-9]+$"}, "upstream": "digits"},
        {"match": {"path_regex": "^/items/"}, "upstream": "any"},
        {"match": {"path_regex": "^/items/4"}, "upstream": "later"},
    ])
    assert origin_of(s, "/items/42") == ("digits", 200)
    assert origin_of(s, "/items/4x") == ("any", 200)


def test_a_regex_matches_the_path_without_the_query(routed):
    s = routed([{"match": {"path_regex": "^/r/[a-z]+$"}, "upstream": "regex"}])
    assert origin_of(s, "/r/abc?x=1") == ("regex", 200)
    assert origin_of(s, "/r/abc1")[1] == 404


# -- prefixes on segment boundaries ---------------------------------------------------


@pytest.mark.parametrize("target", ["/v1/users", "/v1/users/", "/v1/users/42", "/v1/users?x=1"])
def test_a_prefix_matches_itself_and_paths_below_it(routed, target):
    s = routed([{"match": {"path": "/v1/users"}, "upstream": "users"}])
    assert origin_of(s, target) == ("users", 200)


@pytest.mark.parametrize("target", ["/v1/usersx", "/v1/user", "/v1", "/v1/users.json"])
def test_a_prefix_does_not_match_across_a_segment_boundary(routed, target):
    s = routed([{"match": {"path": "/v1/users"}, "upstream": "users"}])
    assert origin_of(s, target) == (None, 404)


def test_a_prefix_written_with_a_trailing_slash_means_the_same_prefix(routed):
    s = routed([{"match": {"path": "/v1/users/"}, "upstream": "users"}])
    assert origin_of(s, "/v1/users/42") == ("users", 200)
    assert origin_of(s, "/v1/usersx") == (None, 404)


# -- hosts -------------------------------------------------------------------------


def test_a_host_match_beats_a_route_without_host(routed):
    s = routed([
        {"match": {"path": "/"}, "upstream": "nohost"},
        {"match": {"host": "api.example.com", "path": "/"}, "upstream": "api"},
    ])
    assert origin_of(s, "/x", host="api.example.com") == ("api", 200)
    assert origin_of(s, "/x", host="www.example.com") == ("nohost", 200)


def test_a_host_match_beats_a_more_specific_path_without_host(routed):
    s = routed([
        {"match": {"path_exact": "/v1/users"}, "upstream": "nohost"},
        {"match": {"host": "api.example.com", "path": "/"}, "upstream": "api"},
    ])
    assert origin_of(s, "/v1/users", host="api.example.com") == ("api", 200)


def test_a_request_for_a_host_whose_routes_miss_the_path_falls_back_to_routes_without_host(
        routed):
    s = routed([
        {"match": {"host": "api.example.com", "path": "/v1"}, "upstream": "api"},
        {"match": {"path": "/"}, "upstream": "nohost"},
    ])
    assert origin_of(s, "/v2", host="api.example.com") == ("nohost", 200)


def test_an_exact_host_beats_a_wildcard_host(routed):
    s = routed([
        {"match": {"host": "*.example.com", "path": "/"}, "upstream": "wild"},
        {"match": {"host": "api.example.com", "path": "/"}, "upstream": "exact"},
    ])
    assert origin_of(s, "/", host="api.example.com") == ("exact", 200)
    assert origin_of(s, "/", host="web.example.com") == ("wild", 200)


def test_a_wildcard_host_does_not_match_the_bare_domain_or_another_domain(routed):
    s = routed([
        {"match": {"host": "*.example.com", "path": "/"}, "upstream": "wild"},
    ])
    assert origin_of(s, "/", host="example.com") == (None, 404)
    assert origin_of(s, "/", host="example.org") == (None, 404)
    assert origin_of(s, "/", host="badexample.com") == (None, 404)


def test_the_longest_wildcard_suffix_wins(routed):
    s = routed([
        {"match": {"host": "*.example.com", "path": "/"}, "upstream": "outer"},
        {"match": {"host": "*.api.example.com", "path": "/"}, "upstream": "inner"},
    ])
    assert origin_of(s, "/", host="eu.api.example.com") == ("inner", 200)
    assert origin_of(s, "/", host="api.example.com") == ("outer", 200)


def test_each_of_many_exact_hosts_gets_its_own_route(routed):
    hosts = ["a.test", "b.test", "bb.test", "c.test", "api.c.test", "z.test"]
    s = routed([{"match": {"host": h, "path": "/"}, "upstream": "o" + h.replace(".", "_")}
                for h in reversed(hosts)])
    for h in hosts:
        assert origin_of(s, "/", host=h) == ("o" + h.replace(".", "_"), 200), h
    assert origin_of(s, "/", host="b.tes") == (None, 404)
    assert origin_of(s, "/", host="d.test") == (None, 404)


def test_a_host_route_without_path_beats_an_exact_path_without_host(routed):
    s = routed([
        {"match": {"path_exact": "/x"}, "upstream": "nohost"},
        {"match": {"host": "api.example.com"}, "upstream": "api"},
    ])
    assert origin_of(s, "/x", host="api.example.com") == ("api", 200)
    assert origin_of(s, "/x", host="other.test") == ("nohost", 200)


def test_the_host_header_port_is_ignored_for_host_matching(routed):
    s = routed([
        {"match": {"host": "api.example.com", "path": "/"}, "upstream": "api"},
        {"match": {"host": "*.wild.test", "path": "/"}, "upstream": "wild"},
    ])
    assert origin_of(s, "/", host="api.example.com:8443") == ("api", 200)
    assert origin_of(s, "/", host="a.wild.test:80") == ("wild", 200)


def test_host_matching_is_case_insensitive(routed):
    s = routed([
        {"match": {"host": "Api.Example.com", "path": "/"}, "upstream": "api"},
        {"match": {"host": "*.wild.test", "path": "/"}, "upstream": "wild"},
    ])
    assert origin_of(s, "/", host="API.EXAMPLE.COM") == ("api", 200)
    assert origin_of(s, "/", host="api.example.com") == ("api", 200)
    assert origin_of(s, "/", host="X.WILD.Test") == ("wild", 200)


def test_an_absolute_form_target_routes_by_its_authority(routed):
    s = routed([
        {"match": {"host": "api.example.com", "path": "/"}, "upstream": "api"},
        {"match": {"path": "/"}, "upstream": "nohost"},
    ])
    assert origin_of(s, "http://api.example.com/x", host="other.test") == ("api", 200)


# -- methods and headers --------------------------------------------------------------


def test_a_get_only_route_does_not_take_a_post_which_falls_to_the_next_matching_route(routed):
    s = routed([
        {"match": {"path_exact": "/items", "methods": ["GET"]}, "upstream": "reader"},
        {"match": {"path": "/items"}, "upstream": "writer"},
    ])
    assert origin_of(s, "/items") == ("reader", 200)
    assert origin_of(s, "/items", method="POST", body=b"x") == ("writer", 200)


def test_a_post_that_no_route_accepts_is_a_404(routed):
    s = routed([{"match": {"path": "/items", "methods": ["GET", "HEAD"]}, "upstream": "reader"}])
    assert origin_of(s, "/items", method="POST", body=b"x") == (None, 404)
    assert origin_of(s, "/items", method="HEAD") == ("reader", 200)


def test_a_headers_condition_selects_the_route(routed):
    s = routed([
        {"match": {"path": "/api", "headers": {"X-Api-Version": "2"}}, "upstream": "v2"},
        {"match": {"path": "/api"}, "upstream": "v1"},
    ])
    assert origin_of(s, "/api/x", headers={"X-Api-Version": "2"}) == ("v2", 200)
    assert origin_of(s, "/api/x", headers={"x-api-version": "2"}) == ("v2", 200)
    assert origin_of(s, "/api/x", headers={"X-Api-Version": "3"}) == ("v1", 200)
    assert origin_of(s, "/api/x") == ("v1", 200)


def test_a_route_with_a_headers_condition_alone_is_a_404_without_the_header(routed):
    s = routed([{"match": {"path": "/", "headers": {"X-Tenant": "acme"}}, "upstream": "acme"}])
    assert origin_of(s, "/", headers={"X-Tenant": "acme"}) == ("acme", 200)
    assert origin_of(s, "/", headers={"X-Tenant": "other"}) == (None, 404)


# -- rewrites and normalisation -------------------------------------------------------


def origin_path(s, target, **kw):
    status, headers, body = get(s, target, **kw)
    assert status == 200, body
    return json.loads(body)["path"]


def test_strip_prefix_removes_the_prefix_from_the_path_the_origin_sees(routed):
    s = routed([{"match": {"path": "/api"}, "upstream": "app", "strip_prefix": "/api"}])
    assert origin_path(s, "/api/headers") == "/headers"
    assert origin_path(s, "/api/headers?x=1&y=2") == "/headers?x=1&y=2"


def test_strip_prefix_of_the_whole_path_leaves_the_root(routed, origin_factory):
    s = routed([{"match": {"path": "/api"}, "upstream": "app", "strip_prefix": "/api"}])
    status, headers, body = get(s, "/api")
    assert status == 200
    assert body == b"Hello, world!"


def test_without_strip_prefix_the_origin_sees_the_path_unchanged(routed):
    s = routed([{"match": {"path": "/headers"}, "upstream": "app"}])
    assert origin_path(s, "/headers?q=1") == "/headers?q=1"


def test_dot_segments_are_normalised_before_routing(routed):
    s = routed([
        {"match": {"path": "/v1"}, "upstream": "v1"},
        {"match": {"path": "/admin"}, "upstream": "admin"},
    ])
    assert origin_of(s, "/v1/../admin") == ("admin", 200)
    assert origin_of(s, "/v1/./x/../y") == ("v1", 200)
    assert origin_of(s, "/admin/../v1/users") == ("v1", 200)


def test_percent_encoded_dot_segments_are_normalised_before_routing(routed):
    s = routed([
        {"match": {"path": "/v1"}, "upstream": "v1"},
        {"match": {"path": "/admin"}, "upstream": "admin"},
    ])
    assert origin_of(s, "/v1/%2e%2e/admin") == ("admin", 200)
    assert origin_of(s, "/v1/%2E%2e/admin") == ("admin", 200)


def test_the_origin_receives_the_normalised_path(routed):
    s = routed([{"match": {"path": "/"}, "upstream": "app"}])
    assert origin_path(s, "/a/b/../../headers") == "/headers"
    assert origin_path(s, "/./headers?x=/../y") == "/headers?x=/../y"


@pytest.mark.parametrize("target", ["/..", "/../admin", "/v1/../../admin", "/%2e%2e/admin"])
def test_a_path_climbing_above_the_root_is_a_400(routed, target):
    s = routed([{"match": {"path": "/"}, "upstream": "app"}])
    status, headers, body = get(s, target)
    assert status == 400
    assert "X-Origin" not in headers
    assert json.loads(body)["error"] == "bad_request"


# -- no route ------------------------------------------------------------------------


def test_no_matching_route_is_a_404_with_a_json_no_route_body(routed):
    s = routed([{"match": {"path": "/v1"}, "upstream": "app"}])
    status, headers, body = get(s, "/nothing-here")
    assert status == 404
    assert "X-Origin" not in headers
    assert headers.get("Content-Type", "").startswith("application/json")
    doc = json.loads(body)
    assert doc["error"] == "no_route"
    assert isinstance(doc["message"], str) and doc["message"]
    assert isinstance(doc["request_id"], str) and doc["request_id"]


def test_the_no_route_body_carries_the_request_id_the_client_sent(routed):
    s = routed([{"match": {"path": "/v1"}, "upstream": "app"}])
    rid = "test-req-0123456789"
    status, headers, body = get(s, "/nothing-here", headers={"X-Request-Id": rid})
    assert status == 404
    assert json.loads(body)["request_id"] == rid
