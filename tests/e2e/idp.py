"""A test identity provider, shared by test_jwt_jwks.py and
test_oauth_introspection.py.

The IdP is a small HTTP server on 127.0.0.1 (HTTPS by default, with a
certificate for 127.0.0.1 from a test CA made with the PKI of tls_helpers.py,
which the gateway is told to trust with ca:). It serves

  GET  /.well-known/openid-configuration   {"issuer", "jwks_uri", "introspection_endpoint"}
  GET  /jwks.json                          {"keys": idp.keys}, or idp.status with "oops"
  POST /introspect                         RFC 7662 token introspection

/introspect checks `Authorization: Basic base64(client_id:client_secret)`
(each half form-urlencoded first, RFC 6749 2.3.1)
(else 401 {"error": "invalid_client"}), reads the form body (token=...) and
answers idp.tokens[token] (a dict is sent as JSON, bytes or str as they are),
or {"active": false} for a token it does not know. idp.introspect_status
(when not 200) makes it answer that status instead.

idp.delay holds every answer back that many seconds. idp.counts counts the
requests per path, idp.token_counts the introspection requests per token
(idp.introspections(token)); idp.requests keeps every introspection request
(method, path, headers, body, form) and idp.last the latest one.

A ThreadingHTTPServer, with the TLS handshake done in each connection's own
thread: many requests at once are served at once.
"""

import base64
import collections
import datetime
import ipaddress
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import free_port, wait_port
from tls_helpers import PKI

CLIENT_ID = "gw"
CLIENT_SECRET = "gw-secret-4f7c2a9e"


def server_cert(pki, ca, name="idp"):
    """A certificate for 127.0.0.1 and localhost (PKI.issue names DNS only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.now - datetime.timedelta(days=1))
        .not_valid_after(pki.now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return pki._write(name, cert, key)


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # a client gone mid-answer (a gateway timeout), a failed handshake: not news


class IdP:
    """The test IdP; start() it, stop() it, start() it again on the same port."""

    def __init__(self, cert=None, port=None, issuer_slash=False, tls=True,
                 client_id=CLIENT_ID, client_secret=CLIENT_SECRET):
        self.cert = cert
        self.tls = tls
        self.port = port or free_port()
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.issuer = self.base + ("/" if issuer_slash else "")
        self.jwks_uri = self.base + "/jwks.json"
        self.introspection_endpoint = self.base + "/introspect"
        self.keys = []        # JWK dicts served
        self.status = 200     # what /jwks.json answers
        self.delay = 0.0      # seconds before answering
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens = {}      # token -> introspection answer (dict, or raw bytes/str)
        self.introspect_status = 200
        self.counts = collections.Counter()        # requests per path
        self.token_counts = collections.Counter()  # introspection requests per token
        self.requests = []    # every introspection request, as a dict
        self.last = None      # the latest of them
        self.lock = threading.Lock()
        self.server = None

    # -- what a test reads ---------------------------------------------------------------------

    def jwks_fetches(self):
        with self.lock:
            return self.counts["/jwks.json"]

    def introspections(self, token=None):
        """How many introspection requests came, for token or for all."""
        with self.lock:
            if token is None:
                return self.counts["/introspect"]
            return self.token_counts[token]

    def basic(self, client_id=None, client_secret=None):
        """The Authorization value the IdP accepts."""
        q = lambda v: urllib.parse.quote(v, safe="")  # noqa: E731
        pair = f"{q(client_id or self.client_id)}:{q(client_secret or self.client_secret)}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    # -- the server ----------------------------------------------------------------------------

    def _authorized(self, values):
        if len(values) != 1:
            return False
        scheme, _, cred = values[0].strip().partition(" ")
        try:
            pair = base64.b64decode(cred.strip(), validate=True).decode()
        except ValueError:
            return False
        # RFC 6749 2.3.1: each half form-urlencoded before base64.
        cid, colon, secret = pair.partition(":")
        return (scheme.lower() == "basic" and colon == ":"
                and urllib.parse.unquote_plus(cid) == self.client_id
                and urllib.parse.unquote_plus(secret) == self.client_secret)

    def _introspect(self, handler, body):
        form = urllib.parse.parse_qs(body.decode("latin-1"), keep_blank_values=True)
        token = form.get("token", [None])[0]
        headers = handler.headers
        rec = {"method": handler.command, "path": handler.path,
               "headers": {k.lower(): v for k, v in headers.items()},
               "header_list": list(headers.items()), "body": body, "form": form,
               "token": token}
        with self.lock:
            self.requests.append(rec)
            self.last = rec
            if token is not None:
                self.token_counts[token] += 1
        if not self._authorized(headers.get_all("Authorization") or []):
            return 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="idp"'}
        if self.introspect_status != 200:
            return self.introspect_status, {"error": "server_error"}, {}
        if token is None:
            return 400, {"error": "invalid_request"}, {}
        return 200, self.tokens.get(token, {"active": False}), {}

    def start(self):
        idp = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

            def setup(self):
                if idp.tls:
                    self.request.settimeout(self.timeout)
                    self.request.do_handshake()
                super().setup()

            def answer(self, status, body, headers=None):
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                elif isinstance(body, str):
                    data = body.encode()
                else:
                    data = body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def read_body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return body
                        body += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self):
                with idp.lock:
                    idp.counts[self.path] += 1
                time.sleep(idp.delay)
                if self.path == "/.well-known/openid-configuration":
                    self.answer(200, {"issuer": idp.issuer, "jwks_uri": idp.jwks_uri,
                                      "introspection_endpoint": idp.introspection_endpoint})
                elif self.path == "/jwks.json":
                    status = idp.status
                    self.answer(status, {"keys": idp.keys} if status == 200 else b"oops")
                else:
                    self.answer(404, {"error": "not found"})

            def do_POST(self):
                with idp.lock:
                    idp.counts[self.path] += 1
                body = self.read_body()
                if self.path.split("?", 1)[0] == "/introspect":
                    status, answer, headers = idp._introspect(self, body)
                else:
                    status, answer, headers = 404, {"error": "not found"}, {}
                time.sleep(idp.delay)
                self.answer(status, answer, headers)

        self.server = _Server(("127.0.0.1", self.port), Handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert.path, self.cert.key_path)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        wait_port(self.port)
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# -- fixtures (a test file imports them) -------------------------------------------------------


@pytest.fixture(scope="module")
def idp_pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("idp-pki"))
    p.idp_ca = p.ca("idp-ca", "sluice test IdP CA")
    p.idp = server_cert(p, p.idp_ca)
    return p


@pytest.fixture
def idp(idp_pki):
    i = IdP(idp_pki.idp).start()
    yield i
    i.stop()
