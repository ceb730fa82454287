"""An upstream that verifies RFC 9421 signatures with the PyPI package http-message-signatures.

Usage: httpsig_verifier.py ALG KEYID KEYFILE [CERT CERTKEY [h2]]
ALG is hmac-sha256, ed25519 or ecdsa-p256-sha256. KEYFILE holds the HMAC key
bytes or a public key PEM; it is read again for every request, so a test can
change the key the upstream trusts.

Prints {"port": N} once listening on 127.0.0.1. Every request is verified
(signature, created/expires, and the body against the Content-Digest when one is sent); the
answer is 200 or 401 with JSON: whether it verified, why not, the covered
components and parameters, and the request as seen (method, target, headers,
body as latin-1) so a test can send it again altered.

With CERT and CERTKEY it is instead a WebSocket echo server over TLS
(`websockets`): the handshake is verified as an `https://` request; a refused
one is answered 401 (the reason on stderr), an accepted one echoes each
message as JSON {"echo": text, "verified": ..., "covered": ..., "params": ...}.
With `h2` as well, the WebSocket server is hypercorn, offering h2 and
http/1.1 by ALPN and RFC 8441 over h2: a handshake that came as an extended
CONNECT is verified as the CONNECT it is (RFC 9421 `@method`), and each echo
also says the HTTP version it came over ("version": "2" or "1.1").
"""
import asyncio
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms

from asgi_tls import serve_asgi, websocket_connected

ALGS = {
    "hmac-sha256": algorithms.HMAC_SHA256,
    "ed25519": algorithms.ED25519,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
}
ALG, KEYID, KEYFILE = sys.argv[1], sys.argv[2], sys.argv[3]
TLS = sys.argv[4:6]
H2 = sys.argv[6:7] == ["h2"]


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


def verify(method, url, headers, body):
    """The library's verdict on one request: (True, result) or (False, reason)."""
    verifier = HTTPMessageVerifier(signature_algorithm=ALGS[ALG], key_resolver=Keys())
    try:
        # A body is checked against the Content-Digest when one was sent;
        # a signature that does not cover the body leaves it unchecked.
        checked = body if "content-digest" in headers else None
        r = verifier.verify(Message(method, url, headers), body=checked, max_age=None)[0]
    except Exception as e:  # any failure is a refusal, with its reason
        return False, f"{type(e).__name__}: {e}"
    return True, {
        "verified": True,
        "label": r.label,
        "covered": dict(r.covered_components),
        "params": {k: v for k, v in r.parameters.items()},
        "digest_checked": r.body is not None,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_one(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = [(k, v) for k, v in self.headers.items()]
        url = "http://" + self.headers["host"] + self.path
        ok, result = verify(self.command, url, self.headers, body)
        seen = {
            "method": self.command,
            "target": self.path,
            "headers": headers,
            "body": body.decode("latin-1"),
        }
        if ok:
            answer, status = dict(result, seen=seen), 200
        else:
            answer, status = {"verified": False, "error": result, "seen": seen}, 401
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_one


def ws_over_tls(cert, key):
    from websockets.asyncio.server import serve
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Response

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)

    def check(connection, request):
        url = "https://" + request.headers["Host"] + request.path
        ok, result = verify("GET", url, request.headers, b"")
        if not ok:
            print(f"handshake refused: {result}", file=sys.stderr, flush=True)
            return Response(401, "Unauthorized", Headers(), result.encode())
        connection.verified = result
        return None

    async def echo(ws):
        try:
            async for m in ws:
                await ws.send(json.dumps(dict(ws.verified, echo=m)))
        except ConnectionClosed:
            pass  # a client that drops the connection without a close frame

    async def main():
        async with serve(echo, "127.0.0.1", 0, process_request=check, ssl=tls) as server:
            print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
            await asyncio.Future()

    asyncio.run(main())


def ws_over_h2(cert, key):
    from websockets.datastructures import Headers

    async def app(scope, receive, send):
        if not await websocket_connected(scope, receive, send):
            return
        headers = Headers([(k.decode(), v.decode()) for k, v in scope["headers"]])
        version = scope["http_version"]
        method = "CONNECT" if version == "2" else "GET"
        target = scope["raw_path"].decode()
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode()
        ok, result = verify(method, "https://" + headers["host"] + target, headers, b"")
        if not ok:
            print(f"{method} handshake refused: {result}", file=sys.stderr, flush=True)
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] != "websocket.receive":
                return
            text = m.get("text") or (m.get("bytes") or b"").decode()
            echo = dict(result, echo=text, version=version)
            await send({"type": "websocket.send", "text": json.dumps(echo)})

    serve_asgi(app, cert, key)


if TLS and H2:
    ws_over_h2(*TLS)
elif TLS:
    ws_over_tls(*TLS)
else:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()
