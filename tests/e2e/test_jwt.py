"""The jwt plugin: bearer tokens verified with configured keys, then checked
against what the route asks, in front of the real origin.

Tokens are minted with PyJWT and keys made with cryptography; the ones PyJWT
refuses to make (alg none, HS256 keyed with an RSA public key's PEM, a crit
header) are built by hand. What the upstream saw is read from the origin's
/headers answer: {"method", "path" (the request target), "headers"}.
"""

import base64
import hashlib
import hmac
import json
import re
import time

import jwt
import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from conftest import basic_config, check_config, free_port, wait_port

ISS = "https://idp.test/"
AUD = "users-api"
SECRET = "hs-secret-" + "x" * 54  # 64 bytes: as long as an HS512 hash


def pem(public_key):
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Private keys, and their public PEMs written to files."""
    d = tmp_path_factory.mktemp("keys")
    priv = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "attacker": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }
    files = {}
    for name, k in priv.items():
        files[name] = d / f"{name}.pem"
        files[name].write_bytes(pem(k.public_key()))
    (d / "not-a-key.pem").write_text("hello, I am not a key\n")
    files["junk"] = d / "not-a-key.pem"
    return {"priv": priv, "files": files}


# Which key signs and verifies each alg.
ALG_KEY = {
    "RS256": "rsa", "RS384": "rsa", "RS512": "rsa",
    "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
    "ES256": "p256", "ES384": "p384", "ES512": "p521",
    "EdDSA": "ed",
}


def all_keys(keys):
    """A keys: list with one key per alg (no kids) and the HS256 secret."""
    out = [{"file": str(keys["files"][k]), "alg": alg} for alg, k in ALG_KEY.items()]
    return out + [{"secret": SECRET, "alg": "HS256"}]


def claims(**over):
    now = int(time.time())
    c = {"sub": "alice", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 300,
         "scope": "users:read users:write"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def mint(keys, alg="RS256", headers=None, **over):
    key = SECRET if alg.startswith("HS") else keys["priv"][ALG_KEY[alg]]
    return jwt.encode(claims(**over), key, algorithm=alg, headers=headers)


def b64(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_by_hand(header, payload, key_bytes):
    signing_input = b64(header) + "." + b64(payload)
    sig = hmac.new(key_bytes, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


def rs256_by_hand(header, payload, private_key):
    """A signed token with any header, which PyJWT would rewrite or refuse."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = b64(header) + "." + b64(payload)
    sig = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64(sig)


def jwt_conf(keys, /, **over):
    c = {"keys": all_keys(keys), "issuer": ISS, "audience": AUD, "realm": "api"}
    c.update(over)
    return c


def gateway(sluice_factory, origin, conf, extra_plugins=None, **extra):
    port = free_port()
    plugins = {"jwt": conf}
    plugins.update(extra_plugins or {})
    routes = [{"name": "api", "match": {"path": "/"}, "upstream": "app", "plugins": plugins}]
    return sluice_factory(basic_config(port, {"app": [origin.address]}, routes=routes, **extra))


def call(s, token=None, path="/headers", method="GET", headers=None, scheme="Bearer"):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"{scheme} {token}"
    return requests.request(method, s.url + path, headers=h, timeout=5)


def upstream_headers(r):
    """The header lines the origin received, as (name, value)."""
    assert r.status_code == 200, r.text
    return [tuple(h) for h in r.json()["headers"]]


def seen(r, name):
    return [v for n, v in upstream_headers(r) if n.lower() == name.lower()]


def assert_invalid(r):
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_token"
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


@pytest.fixture
def gw(sluice_factory, origin, keys):
    """A gateway accepting every alg's key and the HS256 secret."""
    return gateway(sluice_factory, origin, jwt_conf(keys))


# -- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", list(ALG_KEY) + ["HS256"])
def test_a_token_signed_with_each_supported_alg_is_accepted(gw, keys, alg):
    r = call(gw, mint(keys, alg))
    assert r.status_code == 200, r.text


def test_a_token_within_the_leeway_of_exp_and_nbf_is_accepted(gw, keys):
    now = int(time.time())
    assert call(gw, mint(keys, exp=now - 10, nbf=now + 10)).status_code == 200


def test_the_bearer_scheme_is_case_insensitive(gw, keys):
    assert call(gw, mint(keys), scheme="bearer").status_code == 200
    assert call(gw, mint(keys), scheme="BEARER").status_code == 200


# -- rejected with 401 -------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE"])
@pytest.mark.parametrize("signature", ["", "c2ln"])
def test_an_unsigned_token_is_rejected_in_any_spelling_of_none(gw, spelling, signature):
    token = b64({"alg": spelling, "typ": "JWT"}) + "." + b64(claims()) + "." + signature
    assert_invalid(call(gw, token))


def test_hs256_keyed_with_the_rsa_public_key_pem_is_rejected(sluice_factory, origin, keys):
    # HS256 is allowed (a secret is configured), so only the key pinning its
    # alg stops the RSA key's PEM from serving as an HMAC secret.
    conf = jwt_conf(keys, keys=[{"file": str(keys["files"]["rsa"]), "alg": "RS256"},
                                {"secret": SECRET, "alg": "HS256"}])
    s = gateway(sluice_factory, origin, conf)
    rsa_pem = keys["files"]["rsa"].read_bytes()
    assert_invalid(call(s, hs256_by_hand({"alg": "HS256", "typ": "JWT"}, claims(), rsa_pem)))
    with_kid = dict(conf, keys=[dict(conf["keys"][0], kid="k1"), conf["keys"][1]])
    s2 = gateway(sluice_factory, origin, with_kid)
    token = hs256_by_hand({"alg": "HS256", "kid": "k1"}, claims(), rsa_pem)
    assert_invalid(call(s2, token))
    assert call(s2, mint(keys, "HS256")).status_code == 200


def test_a_token_whose_alg_differs_from_its_keys_is_rejected(sluice_factory, origin, keys):
    conf = jwt_conf(keys, keys=[{"file": str(keys["files"]["rsa"]), "alg": "RS256", "kid": "k1"}],
                    algorithms=["RS256", "RS384"])
    s = gateway(sluice_factory, origin, conf)
    assert call(s, mint(keys, "RS256", headers={"kid": "k1"})).status_code == 200
    assert_invalid(call(s, mint(keys, "RS384", headers={"kid": "k1"})))
    assert_invalid(call(s, mint(keys, "PS256", headers={"kid": "k1"})))


def test_an_alg_outside_algorithms_is_rejected(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys, algorithms=["ES256"]))
    assert call(s, mint(keys, "ES256")).status_code == 200
    assert_invalid(call(s, mint(keys, "RS256")))


def test_a_tampered_payload_is_rejected(gw, keys):
    h, _, sig = mint(keys).split(".")
    assert_invalid(call(gw, h + "." + b64(claims(sub="admin")) + "." + sig))


def test_a_bad_signature_is_rejected(gw, keys):
    h, p, sig = mint(keys).split(".")
    i = len(sig) // 2
    bad = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
    assert_invalid(call(gw, h + "." + p + "." + bad))
    assert_invalid(call(gw, h + "." + p + "." + sig + "="))


@pytest.mark.parametrize("cut", ["signature", "end", "two parts", "four parts"])
def test_a_truncated_or_misshapen_token_is_rejected(gw, keys, cut):
    token = mint(keys, "ES256")
    h, p, sig = token.split(".")
    bad = {"signature": h + "." + p + ".", "end": token[:-7], "two parts": h + "." + p,
           "four parts": token + "." + sig}[cut]
    assert_invalid(call(gw, bad))


def test_an_unknown_kid_is_rejected(sluice_factory, origin, keys):
    conf = jwt_conf(keys, keys=[{"file": str(keys["files"]["rsa"]), "alg": "RS256", "kid": "k1"}])
    s = gateway(sluice_factory, origin, conf)
    assert call(s, mint(keys, headers={"kid": "k1"})).status_code == 200
    assert_invalid(call(s, mint(keys, headers={"kid": "k2"})))


def test_an_expired_token_is_rejected_and_logged_as_expired(gw, keys):
    now = int(time.time())
    assert_invalid(call(gw, mint(keys, exp=now - 60)))
    line = [l for l in gw.access_log() if l.get("status") == 401][-1]
    assert line["auth"] == "expired"


def test_a_token_not_valid_until_beyond_the_leeway_is_rejected(gw, keys):
    assert_invalid(call(gw, mint(keys, nbf=int(time.time()) + 120)))


def test_a_token_issued_in_the_future_beyond_the_leeway_is_rejected(gw, keys):
    assert_invalid(call(gw, mint(keys, iat=int(time.time()) + 120)))


def test_a_token_without_exp_is_rejected_unless_exp_is_not_required(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys))
    assert_invalid(call(s, mint(keys, exp=None)))
    s2 = gateway(sluice_factory, origin, jwt_conf(keys, require_exp=False))
    assert call(s2, mint(keys, exp=None)).status_code == 200


def test_a_token_from_another_issuer_is_rejected(gw, keys):
    assert_invalid(call(gw, mint(keys, iss="https://evil.test/")))
    assert_invalid(call(gw, mint(keys, iss=None)))


def test_a_token_for_another_audience_is_rejected(gw, keys):
    assert_invalid(call(gw, mint(keys, aud="other-api")))
    assert_invalid(call(gw, mint(keys, aud=["a", "b"])))
    assert call(gw, mint(keys, aud=["a", AUD])).status_code == 200


def test_issuer_and_audience_may_be_lists(sluice_factory, origin, keys):
    conf = jwt_conf(keys, issuer=["https://a.test/", ISS], audience=["x", AUD])
    s = gateway(sluice_factory, origin, conf)
    assert call(s, mint(keys)).status_code == 200
    assert call(s, mint(keys, iss="https://a.test/", aud="x")).status_code == 200
    assert_invalid(call(s, mint(keys, iss="https://b.test/")))


def test_a_token_with_an_unknown_crit_header_is_rejected(gw, keys):
    header = {"alg": "RS256", "typ": "JWT", "crit": ["http://example.com/x"],
              "http://example.com/x": True}
    assert_invalid(call(gw, rs256_by_hand(header, claims(), keys["priv"]["rsa"])))
    # The same token without crit verifies: it is crit that is refused.
    assert call(gw, rs256_by_hand({"alg": "RS256"}, claims(), keys["priv"]["rsa"])).status_code == 200


def test_a_jku_header_pointing_at_the_attackers_keys_is_never_followed(gw, keys):
    header = {"alg": "RS256", "jku": "http://127.0.0.1:1/attacker/jwks.json"}
    assert_invalid(call(gw, rs256_by_hand(header, claims(), keys["priv"]["attacker"])))


def test_an_embedded_jwk_of_the_attackers_key_is_never_trusted(gw, keys):
    attacker = keys["priv"]["attacker"]
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    assert_invalid(call(gw, rs256_by_hand({"alg": "RS256", "jwk": jwk}, claims(), attacker)))
    x5c = base64.b64encode(b"not even a certificate").decode()
    assert_invalid(call(gw, rs256_by_hand({"alg": "RS256", "x5c": [x5c]}, claims(), attacker)))


def test_a_token_over_max_token_size_is_rejected_before_decoding(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys, max_token_size="1k"))
    assert call(s, mint(keys)).status_code == 200
    big = mint(keys, pad="x" * 1200)
    assert len(big) > 1024
    assert_invalid(call(s, big))


def test_a_missing_token_gets_401_with_a_realm_and_no_error_code(gw, keys):
    for r in (call(gw), call(gw, headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})):
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert r.json()["error"] == "invalid_token"


def test_two_authorization_headers_are_rejected(gw, keys):
    import socket

    token = mint(keys)
    with socket.create_connection(("127.0.0.1", gw.listen_ports()[0]), timeout=5) as c:
        c.sendall((f"GET /headers HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n"
                   f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode())
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
    assert data.startswith(b"HTTP/1.1 401"), data[:200]


# -- rejected with 403 -------------------------------------------------------------------------


def assert_forbidden(r, scope=None):
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "insufficient_scope"
    want = 'Bearer realm="api", error="insufficient_scope"'
    if scope:
        want += f', scope="{scope}"'
    assert r.headers["WWW-Authenticate"] == want


def test_a_token_without_a_required_scope_is_forbidden(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys, scopes=["users:read", "users:admin"]))
    assert_forbidden(call(s, mint(keys)), scope="users:read users:admin")
    assert call(s, mint(keys, scope="users:admin users:read")).status_code == 200
    assert call(s, mint(keys, scope=None, scp=["users:read", "users:admin"])).status_code == 200


def test_a_role_that_is_not_allowed_is_forbidden(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys, claims={"role": ["admin", "editor"],
                                                               "org.id": "42"}))
    assert_forbidden(call(s, mint(keys, role="viewer", org={"id": 42})))
    assert_forbidden(call(s, mint(keys, role="editor", org={"id": 7})))
    assert_forbidden(call(s, mint(keys, role="editor")))
    assert call(s, mint(keys, role="editor", org={"id": 42})).status_code == 200
    assert call(s, mint(keys, role=["viewer", "admin"], org={"id": 42})).status_code == 200


def test_a_method_rule_applies_to_its_methods_only(sluice_factory, origin, keys):
    rules = [{"methods": ["GET"], "scopes": ["users:read"]},
             {"methods": ["POST", "DELETE"], "claims": {"role": ["admin"]}}]
    s = gateway(sluice_factory, origin, jwt_conf(keys, rules=rules))
    viewer, admin = mint(keys, role="viewer"), mint(keys, role="admin")
    assert call(s, viewer).status_code == 200
    assert_forbidden(call(s, viewer, method="POST", path="/echo"))
    assert_forbidden(call(s, viewer, method="DELETE"))
    assert call(s, admin, method="POST", path="/echo").status_code == 200
    assert_forbidden(call(s, mint(keys, scope="users:write")), scope="users:read")


# -- what reaches the upstream -----------------------------------------------------------------


SPOOF = {"X-User-Id": "mallory", "X_User_Id": "mallory", "x-org": "evil"}


def test_forward_claims_reach_the_upstream(sluice_factory, origin, keys):
    conf = jwt_conf(keys, forward_claims={"sub": "X-User-Id", "org.id": "X-Org", "admin": "X-Adm"})
    s = gateway(sluice_factory, origin, conf)
    r = call(s, mint(keys, org={"id": 42}, admin=True))
    assert seen(r, "X-User-Id") == ["alice"]
    assert seen(r, "X-Org") == ["42"]
    assert seen(r, "X-Adm") == ["true"]


def test_a_spoofed_forwarded_header_never_reaches_the_upstream(sluice_factory, origin, keys):
    conf = jwt_conf(keys, forward_claims={"sub": "X-User-Id", "org.id": "X-Org"})
    s = gateway(sluice_factory, origin, conf)
    r = call(s, mint(keys), headers=SPOOF)  # valid, without an org claim
    names = [n.lower() for n, _ in upstream_headers(r)]
    assert seen(r, "X-User-Id") == ["alice"]
    assert "x_user_id" not in names and "x-org" not in names
    before = origin.stats()["requests"]
    assert call(s, headers=SPOOF).status_code == 401
    assert_invalid(call(s, "not.a.token", headers=SPOOF))
    assert origin.stats()["requests"] == before + 1  # only this /stats call got through


def test_strip_authorization_keeps_the_token_from_the_upstream(sluice_factory, origin, keys):
    token = mint(keys)
    kept = gateway(sluice_factory, origin, jwt_conf(keys))
    assert seen(call(kept, token), "Authorization") == [f"Bearer {token}"]
    stripped = gateway(sluice_factory, origin, jwt_conf(keys, strip_authorization=True))
    assert seen(call(stripped, token), "Authorization") == []


def test_a_token_can_come_from_a_cookie(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys, token_from=["header:Authorization",
                                                                   "cookie:at"]))
    assert call(s, headers={"Cookie": f"theme=dark; at={mint(keys)}"}).status_code == 200
    assert call(s, headers={"Cookie": "theme=dark"}).status_code == 401


def test_a_token_in_the_query_is_taken_out_of_the_forwarded_url(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys, token_from=["query:access_token"]))
    r = call(s, path=f"/headers?a=1&access_token={mint(keys)}&b=2")
    assert r.status_code == 200
    assert r.json()["path"] == "/headers?a=1&b=2"
    assert call(s, mint(keys)).status_code == 401  # the header is not a place it looks


def test_a_rate_limit_keyed_by_jwt_sub_gives_each_user_a_quota(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys),
                extra_plugins={"rate_limit": {"key": "jwt:sub", "rate": "1/m", "burst": 1}})
    alice, bob = mint(keys, sub="alice"), mint(keys, sub="bob")
    assert call(s, alice).status_code == 200
    assert call(s, alice).status_code == 429
    assert call(s, bob).status_code == 200


# -- the cache ---------------------------------------------------------------------------------


def test_the_same_token_many_times_is_accepted_every_time(gw, keys):
    token = mint(keys, "PS256")
    session = requests.Session()
    for _ in range(50):
        r = session.get(gw.url + "/headers", headers={"Authorization": f"Bearer {token}"},
                        timeout=5)
        assert r.status_code == 200


def test_a_cached_token_that_expires_is_rejected(sluice_factory, origin, keys):
    s = gateway(sluice_factory, origin, jwt_conf(keys, leeway="0s"))
    exp = int(time.time()) + 2
    token = mint(keys, exp=exp)
    assert call(s, token).status_code == 200
    assert call(s, token).status_code == 200
    time.sleep(max(0.0, exp - time.time()) + 0.3)
    assert_invalid(call(s, token))


# -- log and metrics ---------------------------------------------------------------------------


def test_the_access_log_has_auth_and_sub_and_never_the_token(gw, keys):
    token = mint(keys, sub="alice@example")
    assert call(gw, token).status_code == 200
    assert call(gw).status_code == 401
    assert call(gw, token[:-4]).status_code == 401
    wait = time.monotonic() + 5
    while len(gw.access_log()) < 3 and time.monotonic() < wait:
        time.sleep(0.02)
    lines = gw.access_log()
    assert [(l["auth"], l.get("sub")) for l in lines] == [
        ("allowed", "alice@example"), ("missing", None), ("invalid", None)]
    signature = token.rsplit(".", 1)[1]
    text = gw.access_text() + gw.error_log()
    assert token.split(".")[1] not in text and signature[:20] not in text


def test_metrics_count_auth_decisions_by_result(sluice_factory, origin, keys):
    admin = free_port()
    s = gateway(sluice_factory, origin, jwt_conf(keys, scopes=["users:read"]),
                admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    call(s, mint(keys))
    call(s, mint(keys))
    call(s)
    call(s, "x.y.z")
    call(s, mint(keys, exp=int(time.time()) - 3600))
    call(s, mint(keys, scope="other"))
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    got = {}
    for m in re.finditer(r'^sluice_auth_decisions_total\{route="api",plugin="jwt",'
                         r'result="(\w+)"\} (\d+)$', text, re.M):
        got[m.group(1)] = int(m.group(2))
    assert got == {"allowed": 2, "missing": 1, "invalid": 1, "expired": 1, "forbidden": 1,
                   "unavailable": 0}
    assert "# TYPE sluice_auth_decisions_total counter" in text


# -- sluice -t ---------------------------------------------------------------------------------


def check_jwt_conf(tmp_path, origin, jwt_section, needle):
    """Check a config whose route has jwt_section; the line of needle."""
    conf = basic_config(free_port(), {"app": [origin.address]},
                        routes=[{"name": "api", "match": {"path": "/"}, "upstream": "app",
                                 "plugins": {"jwt": jwt_section}}])
    path = tmp_path / "bad.yaml"
    text = yaml.safe_dump(conf, sort_keys=False)
    path.write_text(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if needle in l)
    rc, out, err = check_config(path)
    assert rc == 1, out + err
    return line, err, path


@pytest.mark.parametrize("case", ["unknown alg", "not a key", "hs256 with a file",
                                  "rs256 with an ec key", "es256 with a p-384 key",
                                  "empty secret", "unknown key"])
def test_sluice_t_reports_a_bad_jwt_key_with_file_line_and_column(tmp_path, origin, keys, case):
    f = keys["files"]
    section, needle, message = {
        "unknown alg": ({"keys": [{"file": str(f["rsa"]), "alg": "RS257"}]}, "RS257",
                        "unknown alg"),
        "not a key": ({"keys": [{"file": str(f["junk"]), "alg": "RS256"}]}, "not-a-key",
                      "not a PEM public key"),
        "hs256 with a file": ({"keys": [{"file": str(f["rsa"]), "alg": "HS256"}]}, "HS256",
                              "takes a secret"),
        "rs256 with an ec key": ({"keys": [{"file": str(f["p256"]), "alg": "RS256"}]}, "RS256",
                                 "needs an RSA key"),
        "es256 with a p-384 key": ({"keys": [{"file": str(f["p384"]), "alg": "ES256"}]}, "ES256",
                                   "needs a P-256 key"),
        "empty secret": ({"keys": [{"secret": "", "alg": "HS256"}]}, "secret", "empty"),
        "unknown key": ({"keys": [{"secret": SECRET, "alg": "HS256"}], "jwks_uri": "x"},
                        "jwks_uri", "jwks_uri"),
    }[case]
    line, err, path = check_jwt_conf(tmp_path, origin, section, needle)
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: routes\[0\]\.plugins\.jwt\."
                     rf".*{re.escape(message)}", err, re.M), err


@pytest.mark.parametrize("case", ["no keys", "token_from", "claim name", "forward claim name",
                                  "duplicate kid", "bad scope"])
def test_sluice_t_reports_bad_jwt_settings(tmp_path, origin, keys, case):
    good = [{"secret": SECRET, "alg": "HS256"}]
    section, message = {
        "no keys": ({"issuer": ISS}, "keys: is required"),
        "token_from": ({"keys": good, "token_from": ["body:token"]}, "expected header:NAME"),
        "claim name": ({"keys": good, "claims": {"org..id": ["1"]}}, "bad claim name"),
        "forward claim name": ({"keys": good, "forward_claims": {".sub": "X-User"}},
                               "bad claim name"),
        "duplicate kid": ({"keys": [dict(good[0], kid="a"), dict(good[0], kid="a")]},
                          "already key 1's"),
        "bad scope": ({"keys": good, "scopes": ['a"b']}, "a scope is printable"),
    }[case]
    conf = basic_config(free_port(), {"app": [origin.address]},
                        routes=[{"name": "api", "match": {"path": "/"}, "upstream": "app",
                                 "plugins": {"jwt": section}}])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    rc, out, err = check_config(path)
    assert rc == 1
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: error: .*{re.escape(message)}", err,
                     re.M), err


def test_sluice_t_accepts_a_good_jwt_config(tmp_path, origin, keys):
    conf = basic_config(free_port(), {"app": [origin.address]},
                        routes=[{"name": "api", "match": {"path": "/"}, "upstream": "app",
                                 "plugins": {"jwt": jwt_conf(keys, scopes=["a"])}}])
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    rc, out, err = check_config(path)
    assert rc == 0, err
    assert "configuration ok" in out
