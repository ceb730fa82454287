"""The hypercorn WebSocket peers' common parts: serving an ASGI app over
TLS (ALPN h2 and http/1.1) on a free loopback port, printing {"port": N}
first as every test peer does, and answering what is not a WebSocket.
Imported by the peers next to it (httpsig_verifier.py, streams_peer.py)."""

import asyncio
import json
import socket


def serve_tls(app, cert, key):
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.certfile = cert
    config.keyfile = key
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    asyncio.run(serve(app, config))


async def websocket_connected(scope, receive, send):
    """Answers the lifespan protocol and any plain HTTP request (404);
    for a WebSocket, reads its connect event and returns True."""
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return False
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return False
    await receive()  # websocket.connect
    return True
