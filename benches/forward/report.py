#!/usr/bin/env python3
"""The forward benchmark's tables from results.tsv (standard library only).

Each line: NAME LABEL ROUND PROXY_CPU_US "requests=N rps=R p50_us=.. ..." (from fwdload),
or: extra KEY VALUE.
"""
import statistics, sys

NAMES = {
    "route": "sidekey route (plain HTTP in)",
    "intercept": "sidekey forward proxy (CONNECT + TLS, minted leaf)",
    "nginx": "nginx (plain HTTP in)",
    "nginx-tls": "nginx (TLS terminated)",
}


def main(path):
    runs, extra = {}, {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "extra":
            extra[f[1]] = f[2]
            continue
        name, label, _rnd, cpu_us, out = f
        kv = dict(p.split("=", 1) for p in out.split())
        kv = {k: float(v) for k, v in kv.items()}
        kv["cpu_us"] = float(cpu_us)
        runs.setdefault((name, label), []).append(kv)

    def med(name, label, key):
        rs = runs.get((name, label), [])
        return statistics.median(r[key] for r in rs) if rs else None

    def per_req(name, label):
        rs = runs.get((name, label), [])
        vals = [r["cpu_us"] / r["requests"] for r in rs if r["requests"]]
        return statistics.median(vals) if vals else None

    def bad(name):
        return int(sum(r["non2xx"] + r["errors"] for (n, _), rs in runs.items() if n == name for r in rs))

    def fmt(v, unit="", digits=0):
        return "-" if v is None else f"{v:,.{digits}f}{unit}"

    labels = sorted({l for (_, l) in runs if l.startswith("c") and l != "c1"})
    many = labels[0] if labels else "c32"
    order = [n for n in NAMES if any(k[0] == n for k in runs)]
    print(f"Kept-alive connections ({extra.get('setup', '')}; quota: {extra.get('quota', '')}), medians:\n")
    print(f"| contestant | req/s, 1 conn | p50 / p99, 1 conn | req/s, {many[1:]} conns | proxy CPU per request | req/s, proxy at quota | non-2xx + errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in order:
        print(
            f"| {NAMES[n]} | {fmt(med(n, 'c1', 'rps'))} | {fmt(med(n, 'c1', 'p50_us'), ' µs')} / {fmt(med(n, 'c1', 'p99_us'), ' µs')}"
            f" | {fmt(med(n, many, 'rps'))} | {fmt(per_req(n, many), ' µs', 1)} | {fmt(med(n, 'quota', 'rps'))} | {bad(n)} |"
        )
    print("\nRatios (quota req/s; CPU per request at many connections):\n")
    for a, b in [("intercept", "route"), ("intercept", "nginx-tls"), ("nginx-tls", "nginx"), ("route", "nginx")]:
        qa, qb = med(a, "quota", "rps"), med(b, "quota", "rps")
        ca, cb = per_req(a, many), per_req(b, many)
        q = f"{qa / qb:.2f}x req/s" if qa and qb else "- req/s"
        c = f"{ca / cb:.2f}x CPU per request" if ca and cb else "- CPU"
        print(f"- {a} vs {b}: {q}, {c}")
    print("\nA new connection per request (CONNECT, full TLS handshake without resumption, one request):\n")
    print("| contestant | connections/s | p50 / p99 | proxy CPU per connection |")
    print("|---|---:|---:|---:|")
    for n in order:
        print(
            f"| {NAMES[n]} | {fmt(med(n, 'fresh', 'rps'))} | {fmt(med(n, 'fresh', 'p50_us'), ' µs')} / {fmt(med(n, 'fresh', 'p99_us'), ' µs')}"
            f" | {fmt(per_req(n, 'fresh'), ' µs', 1)} |"
        )
    for n in order:
        if extra.get(f"tls_{n}"):
            print(f"\nTLS with {NAMES[n]}: {extra[f'tls_{n}'].removeprefix('fwdload: ')}")
    print(f"\nLeaves minted by sidekey over the whole run: {extra.get('leaves_minted', '?')} (all tunnels after the first used the cached leaf).")


if __name__ == "__main__":
    main(sys.argv[1])
