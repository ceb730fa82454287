"""Python's http.client as an app whose HTTP proxy is a unix socket (standard library only).

  proxy_unix_client.py SOCKET HOST CAFILE PATH...

Opens the socket, tunnels to HOST:443 with http.client's own CONNECT (set_tunnel), verifies the
TLS certificate for HOST against CAFILE only, GETs each PATH on that one connection (opened again
only if the proxy closes it), and prints the answers and how many tunnels it opened as JSON.
"""
import http.client
import json
import socket
import ssl
import sys

sock_path, host, cafile, *paths = sys.argv[1:]
tunnels = 0


class UnixProxied(http.client.HTTPSConnection):
    """HTTPSConnection.connect with the proxy reached over a unix socket: TCP_NODELAY (which
    http.client sets on the proxy socket) does not apply to it, the rest is http.client's."""

    def connect(self):
        global tunnels
        tunnels += 1
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(sock_path)
        self._tunnel()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._tunnel_host)


ctx = ssl.create_default_context(cafile=cafile)
conn = UnixProxied("proxy.invalid", 80, context=ctx, timeout=20)
conn.set_tunnel(host, 443)
answers = []
for path in paths:
    conn.request("GET", path, headers={"Accept": "application/json"})
    r = conn.getresponse()
    body = r.read().decode()
    answers.append({"status": r.status, "body": body, "error": r.getheader("sidekey-error")})
print(json.dumps({"answers": answers, "tunnels": tunnels}))
