"""Serves an ASGI app with hypercorn over TLS (ALPN h2 and http/1.1) on a
free loopback port, printing {"port": N} first as every test peer does.
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
