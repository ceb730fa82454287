#!/usr/bin/env python3
"""Small measuring helpers for run.sh (standard library only).

  launch-ready URL LOG CMD...     start CMD (output to LOG), print "MS PID": ms from exec until URL answers 200
  idle-conns PORT N PID...        print RSS growth (KiB per 1000) of PIDs while N keep-alive connections sit idle
  rotation-latency PORT FILE N    N times: atomically replace FILE, time until /echo through PORT shows the new value
  rotate FILE EVERY_S SECONDS T.. replace FILE with the next token every EVERY_S seconds, for SECONDS
  parse-wrk NAME LABEL ROUND TICKS CLK_TCK   wrk --latency output on stdin -> one results.tsv line
  report RESULTS.tsv              the markdown tables
"""
import os, re, socket, statistics, sys, time


def request(sock, path="/"):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        body += sock.recv(65536)
    return status, body


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def replace(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(value)
    os.rename(tmp, path)


def launch_ready(url, log, cmd):
    """Starts cmd and times it to ready; this helper's own start-up is not counted."""
    import subprocess
    out = open(log, "w")
    t0 = time.time_ns()
    child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    ms = wait_ready(url, t0)
    print(ms, child.pid)


def wait_ready(url, t0_ns):
    host_port, _, path = url.removeprefix("http://").partition("/")
    port = int(host_port.rsplit(":", 1)[1])
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            s = connect(port)
            status, _ = request(s, "/" + path)
            s.close()
            if status == 200:
                return f"{(time.time_ns() - t0_ns) / 1e6:.1f}"
        except OSError:
            pass
        time.sleep(0.001)
    return "timeout"


def idle_conns(port, n, pids):
    before = rss_kib(pids)
    socks = []
    for _ in range(n):
        s = connect(port)
        request(s)
        socks.append(s)
    time.sleep(1.0)
    after = rss_kib(pids)
    for s in socks:
        s.close()
    print(f"{(after - before) * 1000 / n:.0f}")


def rotation_latency(port, path, n):
    """Times n rotations, then puts the original value back (and waits for it)."""
    with open(path) as f:
        original = f.read()
    s = connect(port)
    took = []
    values = [f"rot-{os.getpid()}-{i}-{time.time_ns()}" for i in range(n)] + [original]
    for value in values:
        t0 = time.perf_counter()
        replace(path, value)
        while True:
            _, body = request(s, "/echo")
            if value.encode() in body:
                break
            if time.perf_counter() - t0 > 10:
                print("timeout")
                return
        took.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.05)
    took.pop()
    took.sort()
    print(f"{statistics.median(took):.2f} {took[int(len(took) * 0.9)]:.2f} {took[-1]:.2f}")


def rotate(path, every, seconds, tokens):
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        i += 1
        replace(path, tokens[i % len(tokens)])
        time.sleep(every)
    print(i)


UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(name, label, rnd, ticks, clk_tck):
    out = sys.stdin.read()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_us(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_us(re.search(r"\s99%\s+(\S+)", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(x) for x in m.groups()) if m else 0
    cpu = int(ticks) / int(clk_tck) * 1e6 / reqs if reqs else 0.0
    print("wrk", name, label, rnd, f"{rps:.1f}", f"{p50:.1f}", f"{p99:.1f}", reqs, non2xx, errors, f"{cpu:.2f}", sep="\t")


NAMES = {"none": "no proxy", "nginx": "nginx", "nginx-log": "nginx, access log on",
         "nginx-tls": "nginx, HTTPS upstream", "haproxy": "HAProxy",
         "hyper": "bare hyper (floor)", "go": "Go ReverseProxy", "go-tls": "Go ReverseProxy, HTTPS upstream",
         "sidekey": "sidekey", "sidekey-log": "sidekey, access log on (text)",
         "sidekey-json": "sidekey, access log on (JSON)", "sidekey-tls": "sidekey, HTTPS upstream",
         "sidekey-sigv4": "sidekey, SigV4 signing"}

# The comparisons each scenario is about: (contestant, against).
COMPARE = {
    "plain": [("haproxy", "nginx"), ("hyper", "nginx"), ("go", "nginx"), ("sidekey", "nginx"),
              ("sidekey", "hyper"), ("sidekey", "go")],
    "logs": [("nginx-log", "nginx"), ("sidekey-log", "sidekey"), ("sidekey-json", "sidekey"),
             ("sidekey-log", "nginx-log"), ("sidekey-json", "nginx-log")],
    "https": [("go-tls", "nginx-tls"), ("sidekey-tls", "nginx-tls"), ("sidekey-tls", "go-tls")],
    "sigv4": [("sidekey-sigv4", "sidekey")],
}
TITLES = {"plain": "Plain-HTTP upstream, access logs off", "logs": "Access logs on",
          "https": "HTTPS upstream (TLS origination, kept-alive connections, resumed sessions)",
          "sigv4": "SigV4 signing per request"}


def report(path):
    runs, rss, extra = {}, {}, {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "wrk":
            runs.setdefault((f[1], f[2]), []).append(
                dict(rps=float(f[4]), p50=float(f[5]), p99=float(f[6]), reqs=int(f[7]),
                     non2xx=int(f[8]), errors=int(f[9]), cpu=float(f[10])))
        elif f[0] == "rss":
            rss[f[1]] = int(f[2])
        elif f[0] == "extra":
            extra[f[1]] = f[2]
    conns = next(l for (_, l) in runs if l.startswith("c") and l != "c1")
    present = [c for c in NAMES if (c, "c1") in runs]
    scenarios = extra.get("scenarios", "plain").split(",")

    def med(name, label, key):
        rs = runs.get((name, label))
        return statistics.median(r[key] for r in rs) if rs else None

    def spread(name, label, key):
        rs = [r[key] for r in runs.get((name, label), [])]
        if len(rs) < 2:
            return None
        return (max(rs) - min(rs)) / statistics.median(rs)

    def fmt(v, unit=""):
        if v is None:
            return "–"
        if unit == "rps":
            return f"{v:,.0f}"
        if unit == "us":
            return f"{v:,.0f} µs"
        return f"{v:.2f}"

    def ratio(a, b):
        # A ratio of added latencies means nothing when the baseline's was
        # not smaller (noise at 1 connection).
        return "–" if a is None or b is None or b <= 0 else f"{a / b:.2f}×"

    base50, base99 = med("none", "c1", "p50"), med("none", "c1", "p99")

    def added(c, k):
        if c == "none" or base50 is None:
            return None
        return med(c, "c1", k) - (base50 if k == "p50" else base99)

    def signed(v):
        return "–" if v is None else f"{v:+,.0f}"

    out = []
    w = out.append
    w(f"| contestant | req/s, 1 conn | p50 / p99, 1 conn | added p50 / p99 | req/s, {conns[1:]} conns | p50 / p99, {conns[1:]} conns | req/s, proxy at {extra['quota'].split()[1]} % CPU | proxy CPU per request | non-2xx + errors | peak RSS |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in present:
        bad = sum(r["non2xx"] + r["errors"] for (n, _), rs in runs.items() if n == c for r in rs)
        total = sum(r["reqs"] for (n, _), rs in runs.items() if n == c for r in rs)
        w("| " + " | ".join([
            NAMES[c],
            fmt(med(c, "c1", "rps"), "rps"),
            f"{fmt(med(c, 'c1', 'p50'), 'us')} / {fmt(med(c, 'c1', 'p99'), 'us')}",
            "–" if c == "none" else f"{signed(added(c, 'p50'))} / {signed(added(c, 'p99'))} µs",
            fmt(med(c, conns, "rps"), "rps"),
            f"{fmt(med(c, conns, 'p50'), 'us')} / {fmt(med(c, conns, 'p99'), 'us')}",
            fmt(med(c, "quota", "rps"), "rps"),
            "–" if c == "none" else f"{med(c, conns, 'cpu'):.1f} µs",
            f"{bad} of {total:,}",
            f"{rss[c] / 1024:.1f} MB" if c in rss else "–",
        ]) + " |")
    w("")
    w("Ratios within this run, per scenario (for req/s higher is better, for the rest lower is better):")
    for sc in scenarios:
        pairs = [(a, b) for a, b in COMPARE.get(sc, []) if a in present and b in present]
        if not pairs:
            continue
        w("")
        w(f"{TITLES[sc]}:")
        w("")
        w(f"| contestant | against | proxy-bound req/s | proxy CPU per request | req/s, {conns[1:]} conns | req/s, 1 conn | added p50 / p99 |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for a, b in pairs:
            w("| " + " | ".join([
                NAMES[a], NAMES[b],
                ratio(med(a, "quota", "rps"), med(b, "quota", "rps")),
                ratio(med(a, conns, "cpu"), med(b, conns, "cpu")),
                ratio(med(a, conns, "rps"), med(b, conns, "rps")),
                ratio(med(a, "c1", "rps"), med(b, "c1", "rps")),
                f"{ratio(added(a, 'p50'), added(b, 'p50'))} / {ratio(added(a, 'p99'), added(b, 'p99'))}",
            ]) + " |")
    w("")
    noise = []
    for c in present:
        for label in ["c1", conns, "quota"]:
            s = spread(c, label, "rps")
            if s is not None:
                noise.append(s)
    if noise:
        w(f"Noise: req/s of one contestant in one setting varied by up to {max(noise) * 100:.0f} % "
          f"(median {statistics.median(noise) * 100:.0f} %) across rounds, as (max - min) / median.")
        w("")
    w("sidekey, other figures:")
    w("")
    w(f"- start-up to ready (`/readyz` 200): {extra.get('startup_ms')} ms")
    w(f"- idle RSS: {int(extra.get('idle_rss_kib') or 0) / 1024:.1f} MB")
    per = [c for c in NAMES if "per_1000_conns_kib_" + c in extra]
    if per:
        w("- RSS per 1,000 idle keep-alive connections: " + ", ".join(
            f"{NAMES[c]} {int(extra['per_1000_conns_kib_' + c]) / 1024:.1f} MB" for c in per))
    rot = runs.get(("sidekey", "rotating"), [{}])[0]
    lat = extra.get("rotation_latency_ms", "- - -").split()
    if rot:
        w(f"- file rotation to first request with the new value: median {lat[0]} ms, p90 {lat[1]} ms, max {lat[2]} ms (20 rotations)")
        w(f"- credential file rotated every 100 ms under {conns[1:]}-connection load ({extra.get('rotations')} rotations): "
          f"{rot['rps']:,.0f} req/s, p99 {rot['p99']:,.0f} µs (without rotation: {fmt(med('sidekey', conns, 'p99'), 'us')}), "
          f"non-2xx + errors: {rot['non2xx'] + rot['errors']} of {rot['reqs']:,}")
    w(f"- setup: {extra.get('setup')}, scenarios {extra.get('scenarios')}, cgroup CPU quota via {extra['quota'].split()[0]}")
    print("\n".join(out))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "launch-ready":
        launch_ready(args[0], args[1], args[2:])
    elif cmd == "idle-conns":
        idle_conns(int(args[0]), int(args[1]), args[2:])
    elif cmd == "rotation-latency":
        rotation_latency(int(args[0]), args[1], int(args[2]))
    elif cmd == "rotate":
        rotate(args[0], float(args[1]), float(args[2]), args[3:])
    elif cmd == "parse-wrk":
        parse_wrk(*args)
    elif cmd == "report":
        report(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
