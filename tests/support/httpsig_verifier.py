"""An upstream that verifies RFC 9421 signatures with the PyPI package http-message-signatures.

Usage: httpsig_verifier.py ALG KEYID KEYFILE
ALG is hmac-sha256, ed25519 or ecdsa-p256-sha256. KEYFILE holds the HMAC key
bytes or a public key PEM; it is read again for every request, so a test can
change the key the upstream trusts.

Prints {"port": N} once listening on 127.0.0.1. Every request is verified
(signature, created/expires, and the body against the Content-Digest when one is sent); the
answer is 200 or 401 with JSON: whether it verified, why not, the covered
components and parameters, and the request as seen (method, target, headers,
body as latin-1) so a test can send it again altered.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms

ALGS = {
    "hmac-sha256": algorithms.HMAC_SHA256,
    "ed25519": algorithms.ED25519,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
}
ALG, KEYID, KEYFILE = sys.argv[1], sys.argv[2], sys.argv[3]


class Keys(HTTPSignatureKeyResolver):
    def resolve_public_key(self, key_id):
        if key_id != KEYID:
            return None
        data = open(KEYFILE, "rb").read()
        if ALG == "hmac-sha256":
            return data.strip()
        return load_pem_public_key(data)


class Message:
    def __init__(self, method, url, headers):
        self.method = method
        self.url = url
        self.headers = headers


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_one(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = [(k, v) for k, v in self.headers.items()]
        msg = Message(self.command, "http://" + self.headers["host"] + self.path, self.headers)
        verifier = HTTPMessageVerifier(signature_algorithm=ALGS[ALG], key_resolver=Keys())
        seen = {
            "method": self.command,
            "target": self.path,
            "headers": headers,
            "body": body.decode("latin-1"),
        }
        try:
            # A body is checked against the Content-Digest when one was sent;
            # a signature that does not cover the body leaves it unchecked.
            checked = body if "content-digest" in self.headers else None
            results = verifier.verify(msg, body=checked, max_age=None)
            r = results[0]
            answer = {
                "verified": True,
                "label": r.label,
                "covered": dict(r.covered_components),
                "params": {k: v for k, v in r.parameters.items()},
                "digest_checked": r.body is not None,
                "seen": seen,
            }
            status = 200
        except Exception as e:  # any failure is a refusal, with its reason
            answer = {"verified": False, "error": f"{type(e).__name__}: {e}", "seen": seen}
            status = 401
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_one


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
