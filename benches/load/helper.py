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


NAMES = {"none": "no proxy", "nginx": "nginx", "haproxy": "HAProxy",
         "hyper": "bare hyper (floor)", "sidekey": "sidekey"}
PROXIES = [c for c in NAMES if c != "none"]


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
    added = lambda c, k: None if c == "none" else med(c, "c1", k) - (base50 if k == "p50" else base99)
    out = []
    w = out.append
    w(f"| contestant | req/s, 1 conn | p50 / p99, 1 conn | added p50 / p99 | req/s, {conns[1:]} conns | p50 / p99, {conns[1:]} conns | req/s, proxy at {extra['quota'].split()[1]} % CPU | proxy CPU per request | non-2xx + errors | peak RSS |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in NAMES:
        bad = sum(r["non2xx"] + r["errors"] for (n, _), rs in runs.items() if n == c for r in rs)
        total = sum(r["reqs"] for (n, _), rs in runs.items() if n == c for r in rs)
        w("| " + " | ".join([
            NAMES[c],
            fmt(med(c, "c1", "rps"), "rps"),
            f"{fmt(med(c, 'c1', 'p50'), 'us')} / {fmt(med(c, 'c1', 'p99'), 'us')}",
            "–" if c == "none" else f"{added(c, 'p50'):+,.0f} / {added(c, 'p99'):+,.0f} µs",
            fmt(med(c, conns, "rps"), "rps"),
            f"{fmt(med(c, conns, 'p50'), 'us')} / {fmt(med(c, conns, 'p99'), 'us')}",
            fmt(med(c, "quota", "rps"), "rps"),
            "–" if c == "none" else f"{med(c, conns, 'cpu'):.1f} µs",
            f"{bad} of {total:,}",
            f"{rss[c] / 1024:.1f} MB" if c in rss else "–",
        ]) + " |")
    w("")
    w("Ratios (each proxy against nginx and against no proxy; for req/s higher is better, for the rest lower is better):")
    w("")
    w(f"| contestant | req/s 1 conn vs nginx / vs none | req/s {conns[1:]} conns vs nginx / vs none | proxy-bound req/s vs nginx | CPU per request vs nginx | added p50 / p99 vs nginx | peak RSS vs nginx |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for c in PROXIES[1:]:
        w("| " + " | ".join([
            NAMES[c],
            f"{ratio(med(c, 'c1', 'rps'), med('nginx', 'c1', 'rps'))} / {ratio(med(c, 'c1', 'rps'), med('none', 'c1', 'rps'))}",
            f"{ratio(med(c, conns, 'rps'), med('nginx', conns, 'rps'))} / {ratio(med(c, conns, 'rps'), med('none', conns, 'rps'))}",
            ratio(med(c, "quota", "rps"), med("nginx", "quota", "rps")),
            ratio(med(c, conns, "cpu"), med("nginx", conns, "cpu")),
            f"{ratio(added(c, 'p50'), added('nginx', 'p50'))} / {ratio(added(c, 'p99'), added('nginx', 'p99'))}",
            ratio(rss.get(c), rss.get("nginx")),
        ]) + " |")
    w("")
    noise = []
    for c in NAMES:
        for label in ["c1", conns, "quota"]:
            s = spread(c, label, "rps")
            if s is not None:
                noise.append(s)
    if noise:
        w(f"Noise: req/s of one contestant in one setting varied by up to {max(noise) * 100:.0f} % "
          f"(median {statistics.median(noise) * 100:.0f} %) across rounds, as (max - min) / median.")
        w("")
    rot = runs.get(("sidekey", "rotating"), [{}])[0]
    lat = extra.get("rotation_latency_ms", "- - -").split()
    w("sidekey, other figures:")
    w("")
    w(f"- start-up to ready (`/readyz` 200): {extra.get('startup_ms')} ms")
    w(f"- idle RSS: {int(extra.get('idle_rss_kib', 0)) / 1024:.1f} MB")
    w("- RSS per 1,000 idle keep-alive connections: " + ", ".join(
        f"{NAMES[c]} {int(extra.get('per_1000_conns_kib_' + c, 0)) / 1024:.1f} MB" for c in PROXIES))
    w(f"- file rotation to first request with the new value: median {lat[0]} ms, p90 {lat[1]} ms, max {lat[2]} ms (20 rotations)")
    if rot:
        w(f"- credential file rotated every 100 ms under {conns[1:]}-connection load ({extra.get('rotations')} rotations): "
          f"{rot['rps']:,.0f} req/s, p99 {rot['p99']:,.0f} µs (without rotation: {fmt(med('sidekey', conns, 'p99'), 'us')}), "
          f"non-2xx + errors: {rot['non2xx'] + rot['errors']} of {rot['reqs']:,}")
    w(f"- setup: {extra.get('setup')}, cgroup CPU quota via {extra['quota'].split()[0]}")
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
