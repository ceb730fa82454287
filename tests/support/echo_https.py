"""An HTTPS server for tests/transparent.rs: answers each request with what it
received (path, Host, Authorization) and appends the same line to a file.
A path under /reject is answered 401 (the credential refused).

usage: echo_https.py CERT KEY SEEN_FILE ADDR [ADDR...]   (ADDR: 127.0.0.2:443, [fd00::2]:443)
"""
import http.server
import socket
import ssl
import sys
import threading

cert, key, seen = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
lock = threading.Lock()


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        line = "path=%s host=%s auth=%s\n" % (
            self.path,
            self.headers.get("Host"),
            self.headers.get("Authorization", "none"),
        )
        with lock:
            with open(seen, "a") as f:
                f.write(line)
        body = line.encode()
        self.send_response(401 if self.path.startswith("/reject") else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class V4(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET


class V6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


servers = []
for addr in sys.argv[4:]:
    host, port = addr.rsplit(":", 1)
    cls = V4
    if host.startswith("["):
        host, cls = host[1:-1], V6
    srv = cls((host, int(port)), Echo)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    servers.append(srv)
for srv in servers[1:]:
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("ready", flush=True)
servers[0].serve_forever()
