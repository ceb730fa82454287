"""An upstream that accepts a request only if its bearer token is an OpenBao identity token
whose signature checks against OpenBao's own JWKS (PyJWT), for the audience given.

Usage: oidc_verifier.py JWKS_URL AUDIENCE. Prints {"port": N} once listening; answers 200 with
the token's subject, or 401 with the reason.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

JWKS_URL, AUDIENCE = sys.argv[1], sys.argv[2]
JWKS = jwt.PyJWKClient(JWKS_URL, cache_keys=False)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        try:
            if not auth.startswith("Bearer "):
                raise ValueError("no bearer token")
            token = auth[len("Bearer "):]
            key = JWKS.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE)
            status, body = 200, {"sub": claims.get("sub"), "iat": claims.get("iat")}
        except Exception as e:  # any failure to verify is a refusal
            status, body = 401, {"error": type(e).__name__, "message": str(e)}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
