"""The jwt plugin with keys from a JWKS document (jwks_uri:) or found through
OIDC discovery (issuer: with discovery: true), fetched from a test IdP.

The IdP (idp.py) is a small HTTPS server on 127.0.0.1 with a certificate
from a test CA (made with the PKI of tls_helpers.py) that the gateway is told
to trust with ca:. Its JWKS can be switched, made to fail with 500, or taken
down; it counts the requests for each path. Tokens are minted with PyJWT.
"""

import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from conftest import basic_config, check_config, free_port, wait_for, wait_port
from idp import IdP, idp, idp_pki  # noqa: F401 (idp and idp_pki are fixtures)

AUD = "users-api"


# -- keys and tokens ---------------------------------------------------------------------------


class Key:
    def __init__(self, kind, kid):
        self.kid = kind + "-" + kid
        if kind == "rsa":
            self.priv, self.alg, to_jwk = (
                rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256",
                RSAAlgorithm.to_jwk)
        elif kind == "ec":
            self.priv, self.alg, to_jwk = ec.generate_private_key(ec.SECP256R1()), "ES256", \
                ECAlgorithm.to_jwk
        else:
            self.priv, self.alg, to_jwk = ed25519.Ed25519PrivateKey.generate(), "EdDSA", \
                OKPAlgorithm.to_jwk
        self.jwk = dict(json.loads(to_jwk(self.priv.public_key())), kid=self.kid, use="sig")

    def mint(self, iss, kid=None, **over):
        now = int(time.time())
        c = {"sub": "alice", "iss": iss, "aud": AUD, "iat": now, "exp": now + 300}
        c.update(over)
        return jwt.encode(c, self.priv, algorithm=self.alg,
                          headers={"kid": kid if kid is not None else self.kid})


@pytest.fixture(scope="module")
def keys():
    return {name: Key(kind, name) for name, kind in
            [("a", "rsa"), ("b", "rsa"), ("e", "ec"), ("d", "ed")]}


def jwks_conf(idp, idp_pki, **over):
    c = {"jwks_uri": idp.jwks_uri, "ca": idp_pki.idp_ca.path, "issuer": idp.issuer,
         "audience": AUD, "realm": "api"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def gateway(sluice_factory, origin, conf, **extra):
    routes = [{"name": "api", "match": {"path": "/"}, "upstream": "app",
               "plugins": {"jwt": conf}}]
    return sluice_factory(basic_config(free_port(), {"app": [origin.address]}, routes=routes,
                                       **extra))


def call(s, token, session=None):
    return (session or requests).get(s.url + "/headers",
                                     headers={"Authorization": f"Bearer {token}"}, timeout=20)


def assert_ok(r):
    assert r.status_code == 200, r.text


def assert_invalid(r):
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_token"


# -- loading keys ------------------------------------------------------------------------------


def test_a_token_signed_with_a_key_from_the_jwks_uri_is_accepted(sluice_factory, origin, idp,
                                                                 idp_pki, keys):
    idp.keys = [keys["a"].jwk, keys["b"].jwk]
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki))
    assert_ok(call(s, keys["a"].mint(idp.issuer)))
    assert_ok(call(s, keys["b"].mint(idp.issuer)))
    assert_invalid(call(s, keys["a"].mint(idp.issuer, aud="other")))
    assert "loaded 2 keys from " + idp.jwks_uri in s.error_log()


def test_discovery_finds_the_jwks_from_the_issuer_alone(sluice_factory, origin, idp_pki, keys):
    # A trailing slash in the issuer: the discovery document is still
    # ISSUER-without-slash + /.well-known/openid-configuration.
    idp = IdP(idp_pki.idp, issuer_slash=True).start()
    try:
        idp.keys = [keys["a"].jwk]
        conf = jwks_conf(idp, idp_pki, jwks_uri=None, discovery=True)
        s = gateway(sluice_factory, origin, conf)
        assert_ok(call(s, keys["a"].mint(idp.issuer)))
        assert idp.counts["/.well-known/openid-configuration"] >= 1
    finally:
        idp.stop()


@pytest.mark.parametrize("name", ["e", "d"])
def test_ec_and_ed25519_keys_from_a_jwks_are_accepted(sluice_factory, origin, idp, idp_pki, keys,
                                                      name):
    idp.keys = [keys["a"].jwk, keys["e"].jwk, keys["d"].jwk]
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki))
    assert_ok(call(s, keys[name].mint(idp.issuer)))


def test_a_key_still_pins_its_alg_and_hmac_never_comes_from_a_jwks(sluice_factory, origin, idp,
                                                                   idp_pki, keys):
    secret = "s" * 64
    idp.keys = [keys["a"].jwk, dict(keys["e"].jwk, alg="ES256"),
                {"kty": "oct", "kid": "hs", "k": jwt.utils.base64url_encode(secret.encode())
                 .decode()}]
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki))
    assert_ok(call(s, keys["e"].mint(idp.issuer)))
    now = int(time.time())
    hs = jwt.encode({"sub": "x", "iss": idp.issuer, "aud": AUD, "exp": now + 60}, secret,
                    algorithm="HS256", headers={"kid": "hs"})
    assert_invalid(call(s, hs))
    # An RS256 token naming the EC key's kid: the alg is not the key's.
    assert_invalid(call(s, keys["a"].mint(idp.issuer, kid=keys["e"].kid)))


def test_requests_before_the_first_load_wait_for_it(sluice_factory, origin, idp, idp_pki, keys):
    idp.keys = [keys["a"].jwk]
    idp.delay = 1.0
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki))
    assert_ok(call(s, keys["a"].mint(idp.issuer)))


# -- rotation ----------------------------------------------------------------------------------


def test_a_rotated_key_is_accepted_on_its_first_request(sluice_factory, origin, idp, idp_pki,
                                                        keys):
    idp.keys = [keys["a"].jwk]
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki))
    assert_ok(call(s, keys["a"].mint(idp.issuer)))
    idp.keys = [keys["a"].jwk, keys["b"].jwk]
    assert_ok(call(s, keys["b"].mint(idp.issuer)))
    assert "changed to 2 keys from" in s.error_log()


def test_a_removed_key_stops_verifying_after_the_refresh(sluice_factory, origin, idp, idp_pki,
                                                         keys):
    idp.keys = [keys["a"].jwk, keys["b"].jwk]
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki, jwks_refresh="1s"))
    old = keys["a"].mint(idp.issuer)
    assert_ok(call(s, old))
    assert_ok(call(s, old))  # now from the cache
    idp.keys = [keys["b"].jwk]
    before = idp.jwks_fetches()
    wait_for(lambda: idp.jwks_fetches() >= before + 2, timeout=10, what="two refreshes")
    assert_invalid(call(s, old))
    assert_ok(call(s, keys["b"].mint(idp.issuer)))


# -- an IdP that fails -------------------------------------------------------------------------


def test_cached_keys_keep_working_while_the_idp_is_down(sluice_factory, origin, idp, idp_pki,
                                                        keys):
    idp.keys = [keys["a"].jwk]
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki, jwks_refresh="1s"))
    assert_ok(call(s, keys["a"].mint(idp.issuer)))
    idp.status = 500
    before = idp.jwks_fetches()
    wait_for(lambda: idp.jwks_fetches() >= before + 2, timeout=10, what="failed refreshes")
    assert_ok(call(s, keys["a"].mint(idp.issuer, sub="bob")))
    idp.stop()
    time.sleep(1.5)
    assert_ok(call(s, keys["a"].mint(idp.issuer, sub="carol")))
    log = s.error_log()
    assert log.count("cannot refresh the keys of " + idp.jwks_uri) == 1, log
    assert "the last good keys keep serving" in log


def test_an_idp_down_from_the_start_gives_503_and_never_200(sluice_factory, origin, idp, idp_pki,
                                                            keys):
    idp.keys = [keys["a"].jwk]
    idp.stop()
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki))
    for _ in range(5):
        r = call(s, keys["a"].mint(idp.issuer))
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "auth_unavailable"
        assert r.headers["Retry-After"] == "1"
    assert "no key set could be loaded" in s.error_log()
    # The IdP comes up: the keys load on a retry and tokens pass.
    idp.start()
    wait_for(lambda: call(s, keys["a"].mint(idp.issuer)).status_code == 200, timeout=15,
             interval=0.5, what="the keys to load")


def test_an_idp_answering_500_from_the_start_gives_503(sluice_factory, origin, idp, idp_pki,
                                                       keys):
    idp.status = 500
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki))
    r = call(s, keys["a"].mint(idp.issuer))
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "auth_unavailable"


def test_a_flood_of_random_kids_causes_at_most_a_few_fetches(sluice_factory, origin, idp,
                                                             idp_pki, keys):
    idp.keys = [keys["a"].jwk]
    # Four workers: one shared key set, one refetch at a time for all.
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki), workers=4)
    assert_ok(call(s, keys["a"].mint(idp.issuer)))
    before = idp.jwks_fetches()
    tokens = [keys["a"].mint(idp.issuer, kid="%016x" % random.getrandbits(64))
              for _ in range(1000)]

    def send(chunk):
        with requests.Session() as session:
            return [call(s, t, session).status_code for t in chunk]

    with ThreadPoolExecutor(4) as pool:
        codes = [c for part in pool.map(send, [tokens[i::4] for i in range(4)]) for c in part]
    assert codes == [401] * 1000
    assert idp.jwks_fetches() - before <= 5, idp.jwks_fetches() - before


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_count_jwks_refreshes_by_issuer_and_result(sluice_factory, origin, idp, idp_pki,
                                                           keys):
    idp.keys = [keys["a"].jwk]
    admin = free_port()
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki, jwks_refresh="1s"),
                admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    assert_ok(call(s, keys["a"].mint(idp.issuer)))
    idp.status = 500
    before = idp.jwks_fetches()
    wait_for(lambda: idp.jwks_fetches() >= before + 1, timeout=10, what="a failed refresh")
    time.sleep(0.3)

    def series(text, result):
        m = re.search(r'^sluice_jwks_refreshes_total\{issuer="%s",result="%s"\} (\d+)$'
                      % (re.escape(idp.jwks_uri), result), text, re.M)
        return int(m.group(1)) if m else None

    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    assert "# TYPE sluice_jwks_refreshes_total counter" in text
    assert "# HELP sluice_jwks_refreshes_total" in text
    assert series(text, "ok") >= 1, text
    assert series(text, "failed") >= 1, text
    idp.stop()
    r = call(s, "x.y.z")
    assert r.status_code == 401


def test_unavailable_is_counted_as_an_auth_decision(sluice_factory, origin, idp, idp_pki, keys):
    idp.stop()
    admin = free_port()
    s = gateway(sluice_factory, origin, jwks_conf(idp, idp_pki),
                admin={"address": f"127.0.0.1:{admin}"})
    wait_port(admin)
    assert call(s, keys["a"].mint(idp.issuer)).status_code == 503
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
    assert re.search(r'^sluice_auth_decisions_total\{route="api",plugin="jwt",'
                     r'result="unavailable"\} 1$', text, re.M), text


# -- sluice -t ---------------------------------------------------------------------------------


def check_section(tmp_path, origin, section):
    conf = basic_config(free_port(), {"app": [origin.address]},
                        routes=[{"name": "api", "match": {"path": "/"}, "upstream": "app",
                                 "plugins": {"jwt": section}}])
    path = tmp_path / "check.yaml"
    text = yaml.safe_dump(conf, sort_keys=False)
    path.write_text(text)
    rc, out, err = check_config(path)
    return rc, out, err, path, text


def test_an_http_jwks_uri_on_loopback_loads_without_a_warning(tmp_path, origin):
    rc, out, err, _, _ = check_section(
        tmp_path, origin, {"jwks_uri": "http://127.0.0.1:9/jwks.json", "issuer": "x"})
    assert rc == 0, err
    assert "configuration ok" in out
    assert "warning" not in err, err


def test_a_non_loopback_http_jwks_uri_gets_a_warning_and_nothing_is_fetched(tmp_path, origin):
    started = time.monotonic()
    rc, out, err, path, text = check_section(
        tmp_path, origin, {"jwks_uri": "http://idp.example.invalid/jwks.json", "issuer": "x"})
    assert rc == 0, err
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "jwks_uri" in l)
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: warning: .*plain http://", err,
                     re.M), err
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("case", ["discovery without issuer", "neither keys nor jwks_uri",
                                  "jwks_uri and discovery", "refresh too short", "bad scheme",
                                  "unreadable ca", "ca without a jwks"])
def test_sluice_t_reports_bad_jwks_settings_with_file_line_and_column(tmp_path, origin, case):
    good = "https://idp.test/jwks.json"
    section, needle, message = {
        "discovery without issuer": ({"discovery": True}, "discovery", "needs issuer"),
        "neither keys nor jwks_uri": ({"issuer": "https://idp.test/", "audience": "a"}, "issuer:",
                                      "keys: is required"),
        "jwks_uri and discovery": ({"jwks_uri": good, "discovery": True,
                                    "issuer": "https://idp.test/"}, "discovery", "not both"),
        "refresh too short": ({"jwks_uri": good, "jwks_refresh": "100ms"}, "jwks_refresh",
                              "expected 1s to 1d"),
        "bad scheme": ({"jwks_uri": "ftp://idp.test/jwks.json"}, "jwks_uri", "expected an https"),
        "unreadable ca": ({"jwks_uri": good, "ca": str(tmp_path / "none.pem")}, "ca:",
                          "cannot read"),
        "ca without a jwks": ({"keys": [{"secret": "s" * 64, "alg": "HS256"}],
                               "ca": "/etc/hostname"}, "ca:", "only with jwks_uri"),
    }[case]
    rc, out, err, path, text = check_section(tmp_path, origin, section)
    assert rc == 1, out + err
    line = next(i for i, l in enumerate(text.splitlines(), 1) if needle in l)
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: routes\[0\]\.plugins\.jwt"
                     rf".*{re.escape(message)}", err, re.M), err
