"""The hypercorn peers' common parts: serving an ASGI app on a free
loopback port (TLS with ALPN h2 and http/1.1 when given a certificate, else
HTTP/1.1 and h2c with prior knowledge), printing {"port": N} first as every
test peer does, the lifespan protocol, and answering what is not a
WebSocket. Imported by the peers next to it (httpsig_verifier.py,
streams_peer.py)."""

import asyncio
import json
import socket


def serve_asgi(app, cert=None, key=None):
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    if cert:
        config.certfile = cert
        config.keyfile = key
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    asyncio.run(serve(app, config))


async def lifespan(receive, send):
    """Answers hypercorn's start-up and shutdown events."""
    while True:
        m = await receive()
        if m["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif m["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket_connected(scope, receive, send):
    """Answers the lifespan protocol and any plain HTTP request (404);
    for a WebSocket, reads its connect event and returns True."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return False
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return False
    await receive()  # websocket.connect
    return True
