#!/usr/bin/python3
"""A token service for docker-registry's `token` auth, for the tests.

Usage: token_issuer.py CERT_OUT USER PASSWORD REFRESH_TOKEN LOG [MODE]

Makes an RSA key and a self-signed certificate (written to CERT_OUT, the
registry's rootcertbundle), listens on 127.0.0.1 (an ephemeral port, printed
as `PORT <n>`), and answers GET /token (Basic auth with USER:PASSWORD) and
POST /token (grant_type=refresh_token with REFRESH_TOKEN) with RS256 JWTs
carrying the certificate in `x5c`. With MODE `expire-odd` (the default)
every odd-numbered token it issues has already expired (beyond the
registry's leeway), so each client's first token must be renewed; with
`valid` every token is good for 5 minutes. Each
issued token is logged to LOG as a line `token <n> <scope>`. Anonymous
requests get 401.
"""
import base64
import datetime
import http.server
import json
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

cert_out, user, password, refresh_token, log_path = sys.argv[1:6]
mode = sys.argv[6] if len(sys.argv) > 6 else "expire-odd"

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wasm-engine test token issuer")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=1))
    .not_valid_after(now + datetime.timedelta(days=1))
    .sign(key, hashes.SHA256())
)
with open(cert_out, "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
private_pem = key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
lock = threading.Lock()
issued = [0]


def token_for(scope, service):
    access = []
    if scope:
        kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    with lock:
        issued[0] += 1
        number = issued[0]
        with open(log_path, "a") as log:
            log.write(f"token {number} {scope}\n")
    t = int(time.time())
    # Odd tokens expired long ago (the registry allows 60 s of leeway).
    exp = t - 600 if mode == "expire-odd" and number % 2 == 1 else t + 300
    claims = {
        "iss": "test-issuer",
        "sub": user,
        "aud": service,
        "iat": t - 900,
        "nbf": t - 900,
        "exp": exp,
        "jti": f"token-{number}",
        "access": access,
    }
    return jwt.encode(claims, private_pem, algorithm="RS256", headers={"x5c": x5c})


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self.answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
        scope = query.get("scope", [""])[0]
        service = query.get("service", [""])[0]
        # Both field names, as Docker Hub sends; a long expires_in so that
        # the client keeps the expired first token until the registry says no.
        self.answer(200, {"token": token_for(scope, service), "expires_in": 3600})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [refresh_token]:
            return self.answer(401, {"error": "invalid_grant"})
        scope = form.get("scope", [""])[0]
        service = form.get("service", [""])[0]
        self.answer(200, {"access_token": token_for(scope, service), "expires_in": 3600})


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
