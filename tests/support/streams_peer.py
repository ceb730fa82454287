"""Test peers for tests/streams_grpc.rs, tests/streams_websocket.rs and tests/streams_sse.rs: grpcio, websockets and hypercorn servers that check the credential, and clients (grpcio, websockets, requests) that call them through sidekey.

Servers print one JSON line {"port": N} once listening, then serve until killed.
Clients print one JSON object with what they saw.
"""
import asyncio
import json
import os
import sys
import threading
import time

from asgi_tls import lifespan, serve_asgi, websocket_connected

GRPC_OPTS = [
    ("grpc.max_receive_message_length", 32 << 20),
    ("grpc.max_send_message_length", 32 << 20),
]


def accepted(path):
    with open(path) as f:
        return "Bearer " + f.read().strip()


# --- gRPC (generic handlers: bytes in, bytes out, no protobuf codegen) ---

def grpc_server(accept_path, cert=None, key=None):
    import grpc
    from concurrent import futures

    def check(context):
        auth = dict(context.invocation_metadata()).get("authorization")
        if auth != accepted(accept_path):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad or missing authorization")

    def unary(req, context):
        check(context)
        return b"echo:" + req

    def server_stream(req, context):
        check(context)
        n = int(req.decode())
        for i in range(n):
            yield str(i).encode()
            time.sleep(0.002)

    def late_reject(req, context):
        # One message first, then the credential check: a rejection that
        # comes in the trailers, after the answer has started.
        yield b"first"
        check(context)
        yield b"second"

    def bidi(requests, context):
        check(context)
        for r in requests:
            yield b"echo:" + r

    def slow(req, context):
        check(context)
        time.sleep(5)
        return b"late"

    def watch(req, context):
        # A watch that stays quiet for `req` seconds before its first
        # message: grpcio sends the response headers with that message.
        check(context)
        time.sleep(float(req.decode()))
        yield b"change"

    def watch_early(req, context):
        # The same, but the headers go out at once.
        check(context)
        context.send_initial_metadata(())
        time.sleep(float(req.decode()))
        yield b"change"

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "LateReject": grpc.unary_stream_rpc_method_handler(late_reject),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Watch": grpc.unary_stream_rpc_method_handler(watch),
        "WatchEarly": grpc.unary_stream_rpc_method_handler(watch_early),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=GRPC_OPTS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", handlers),))
    if cert:
        creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"port": port}), flush=True)
    server.wait_for_termination()


def grpc_client(target, scenario, proxy=None, ca=None):
    """With `proxy` and `ca`: over TLS trusting only `ca`, through the HTTP
    proxy `proxy` (grpcio's `grpc.http_proxy`: a CONNECT to `target`)."""
    import grpc

    if proxy:
        creds = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
        ch = grpc.secure_channel(target, creds, options=GRPC_OPTS + [("grpc.http_proxy", proxy)])
    else:
        ch = grpc.insecure_channel(target, options=GRPC_OPTS)
    unary = ch.unary_unary("/t.T/Unary")
    out = {}
    if scenario == "unary":
        try:
            out["reply"] = unary(b"hi", timeout=10).decode()
        except grpc.RpcError as e:
            out["code"] = e.code().name
    elif scenario == "proxied":
        try:
            out["unary"] = unary(b"hi", timeout=10).decode()
            stream = ch.unary_stream("/t.T/ServerStream")
            out["stream"] = [m.decode() for m in stream(b"5", timeout=10)]
        except grpc.RpcError as e:
            out["code"] = e.code().name
            out["details"] = e.details()
    elif scenario in ("Watch", "WatchEarly"):
        # The method named, quiet for 2 s before its one message.
        try:
            out["got"] = [m.decode() for m in ch.unary_stream(f"/t.T/{scenario}")(b"2", timeout=10)]
        except grpc.RpcError as e:
            out["code"] = e.code().name
            out["details"] = e.details()
    elif scenario == "late":
        got = []
        try:
            for m in ch.unary_stream("/t.T/LateReject")(b"x", timeout=10):
                got.append(m.decode())
        except grpc.RpcError as e:
            out["code"] = e.code().name
        out["got"] = got
    elif scenario == "all":
        out["unary"] = unary(b"hi", timeout=10).decode()
        big = bytes(range(256)) * (8 << 12)  # 8 MiB
        out["big_ok"] = unary(big, timeout=30) == b"echo:" + big
        stream = ch.unary_stream("/t.T/ServerStream")
        out["stream"] = [m.decode() for m in stream(b"50", timeout=10)]
        # Bidirectional, ping-pong: each message is sent only once the echo of
        # the one before came back, so a proxy that held data back would stall it.
        bidi = ch.stream_stream("/t.T/Bidi")
        got = threading.Semaphore(0)

        def gen():
            for i in range(20):
                yield f"m{i}".encode()
                if not got.acquire(timeout=5):
                    return  # the echo never came: stop short, the count tells

        echoes = []
        for m in bidi(gen(), timeout=30):
            echoes.append(m.decode())
            got.release()
        out["bidi"] = echoes
        futs = [unary.future(f"c{i}".encode(), timeout=20) for i in range(100)]
        out["concurrent"] = sum(1 for i, f in enumerate(futs) if f.result() == f"echo:c{i}".encode())
        slow = ch.unary_unary("/t.T/Slow")
        t0 = time.monotonic()
        try:
            slow(b"x", timeout=0.5)
            out["deadline"] = "no error"
        except grpc.RpcError as e:
            out["deadline"] = e.code().name
        out["deadline_secs"] = time.monotonic() - t0
    print(json.dumps(out), flush=True)


# --- WebSocket ---

def ws_server(accept_path, cert=None, key=None, client_ca=None):
    """With `cert` and `key`, serves TLS. With `client_ca` too, requires a
    client certificate signed by it (the credential is that certificate: no
    Authorization check)."""
    import ssl
    from websockets.asyncio.server import serve
    from websockets.http11 import Response
    from websockets.datastructures import Headers

    tls = None
    if cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
    if client_ca:
        tls.load_verify_locations(client_ca)
        tls.verify_mode = ssl.CERT_REQUIRED

    def check(connection, request):
        if client_ca:
            return None
        if request.headers.get("Authorization") != accepted(accept_path):
            return Response(401, "Unauthorized", Headers(), b"bad or missing authorization\n")
        return None

    async def echo(ws):
        async for m in ws:
            await ws.send(m)

    async def main():
        async with serve(echo, "127.0.0.1", 0, process_request=check, max_size=None,
                         ping_interval=None, ssl=tls) as server:
            port = server.sockets[0].getsockname()[1]
            print(json.dumps({"port": port}), flush=True)
            await asyncio.Future()

    asyncio.run(main())


def ws_h2_server(accept_path, cert, key):
    """A hypercorn ASGI WebSocket echo server over TLS with ALPN h2 and
    http/1.1; over h2 hypercorn announces SETTINGS_ENABLE_CONNECT_PROTOCOL
    (RFC 8441). Each echo is prefixed with the HTTP version the handshake
    came over ("2:" or "1.1:")."""

    async def app(scope, receive, send):
        if not await websocket_connected(scope, receive, send):
            return
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        if auth != accepted(accept_path):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        version = scope["http_version"]
        while True:
            m = await receive()
            if m["type"] != "websocket.receive":
                return
            text = m.get("text") or (m.get("bytes") or b"").decode()
            await send({"type": "websocket.send", "text": f"{version}:{text}"})

    serve_asgi(app, cert, key)


def ws_client(url, scenario):
    """`proxied PROXY CA`: through an HTTP proxy (CONNECT, then TLS trusting
    CA, as an app with HTTPS_PROXY does), then 100 echoes."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    extra = {}
    if scenario == "proxied":
        import ssl
        extra = {"proxy": sys.argv[4], "ssl": ssl.create_default_context(cafile=sys.argv[5])}

    async def main():
        out = {}
        try:
            async with connect(url, max_size=None, ping_interval=None, **extra) as ws:
                if scenario == "proxied":
                    ok = 0
                    for i in range(100):
                        await ws.send(f"message {i}")
                        if await ws.recv() == f"message {i}":
                            ok += 1
                    out["echoed"] = ok
                elif scenario == "once":
                    await ws.send("hello")
                    out["echo"] = await ws.recv()
                elif scenario == "echo":
                    ok = 0
                    for i in range(1000):
                        await ws.send(f"message {i}")
                        if await ws.recv() == f"message {i}":
                            ok += 1
                    out["echoed"] = ok
                    big = os.urandom(10 << 20)  # random: permessage-deflate cannot shrink it
                    await ws.send(big)
                    back = await ws.recv()
                    out["big_ok"] = back == big
                    out["big_len"] = len(back)
                elif scenario == "idle":
                    await ws.send("before")
                    out["first"] = await ws.recv()
                    await asyncio.sleep(float(sys.argv[4]))
                    try:
                        await ws.send("after")
                        out["after"] = await asyncio.wait_for(ws.recv(), 5)
                    except (ConnectionClosed, asyncio.TimeoutError) as e:
                        out["closed"] = type(e).__name__
        except InvalidStatus as e:
            out["status"] = e.response.status_code
        print(json.dumps(out), flush=True)

    asyncio.run(main())


# --- Server-sent events ---

SSE_EVENTS = 100


def sse_server(accept_path):
    """An SSE endpoint under hypercorn (HTTP/1.1 chunked, or h2c with prior
    knowledge): checks `Authorization`, then sends SSE_EVENTS events 10 ms
    apart, each `id: N` with its send time (time.time_ns(), the host's
    clock) and the HTTP version it was served over as data."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        if auth != accepted(accept_path):
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"bad or missing authorization\n"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"),
                                (b"cache-control", b"no-cache")]})
        for i in range(SSE_EVENTS):
            await asyncio.sleep(0.01)
            event = f"id: {i}\ndata: {time.time_ns()} {scope['http_version']}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    serve_asgi(app)


def sse_client(url, auth_path=None):
    """Reads an SSE stream with requests (stream=True): prints the status,
    the content type, the HTTP version and each event's text with the time
    (time.time_ns()) its chunk arrived. With `auth_path`, sends the
    credential itself (straight to the server)."""
    import requests

    headers = {"Accept": "text/event-stream"}
    if auth_path:
        headers["Authorization"] = accepted(auth_path)
    events, buf = [], b""
    with requests.get(url, headers=headers, stream=True, timeout=30) as r:
        # chunk_size=None: each chunk as it is read, not a fixed-size block.
        for chunk in r.iter_content(chunk_size=None):
            now = time.time_ns()
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                events.append([event.decode(), now])
        out = {"status": r.status_code, "content_type": r.headers.get("content-type"),
               "version": r.raw.version, "events": events, "rest": buf.decode()}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "grpc-server":
        grpc_server(*sys.argv[2:])
    elif cmd == "grpc-client":
        grpc_client(*sys.argv[2:])
    elif cmd == "ws-server":
        ws_server(*sys.argv[2:])
    elif cmd == "ws-h2-server":
        ws_h2_server(*sys.argv[2:])
    elif cmd == "ws-client":
        ws_client(sys.argv[2], sys.argv[3])
    elif cmd == "sse-server":
        sse_server(*sys.argv[2:])
    elif cmd == "sse-client":
        sse_client(*sys.argv[2:])
    else:
        sys.exit(f"unknown command {cmd}")
