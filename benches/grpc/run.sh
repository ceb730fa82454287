#!/usr/bin/env bash
# gRPC unary calls per second, and sidekey's CPU per call, through sidekey
# (h2c in, h2c out, bearer token added) against calling the grpcio server
# directly with the token. Same method as benches/load: release build,
# sidekey pinned to one CPU (PROXY_CPU) and the grpcio server and client to
# the other (LOAD_CPU), interleaved rounds in rotating order, medians;
# figures are ratios from one run.
#
#   benches/grpc/run.sh
#   ROUNDS=5 DURATION=5 CONCURRENCY=32 benches/grpc/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$ROOT/target/bench-grpc}
SIDEKEY_BIN=${SIDEKEY_BIN:-}
PY=$ROOT/.venv/bin/python

# shellcheck source=../load/lib.sh
source "$ROOT/benches/load/lib.sh"

[[ -x $PY ]] && "$PY" -c 'import grpc' 2>/dev/null || "$ROOT/scripts/install-test-peers"
build_sidekey

rm -rf "$OUT" && mkdir -p "$OUT"
read -r SIDEKEY_PORT ADMIN_PORT < <(free_ports 2)
TOKEN=skg-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s' "$TOKEN" >"$OUT/token"
printf '%s' "$TOKEN" >"$OUT/accept"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

taskset -c "$LOAD_CPU" "$PY" "$ROOT/tests/support/streams_peer.py" grpc-server "$OUT/accept" >"$OUT/server.port" &
PIDS+=($!)
for _ in $(seq 1 300); do [[ -s $OUT/server.port ]] && break; sleep 0.05; done
GRPC_PORT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$OUT/server.port")

cat >"$OUT/sidekey.toml" <<TOML
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
[log]
access_log = false
[credentials.bench]
source = "file"
path = "$OUT/token"
[[routes]]
name = "grpc"
listen = "127.0.0.1:$SIDEKEY_PORT"
upstream = "http://127.0.0.1:$GRPC_PORT"
credential = "bench"
inject = { header = "Authorization", format = "Bearer {secret}" }
TOML
taskset -c "$PROXY_CPU" "$SIDEKEY_BIN" run -c "$OUT/sidekey.toml" 2>"$OUT/sidekey.log" &
SIDEKEY_PID=$!
PIDS+=($SIDEKEY_PID)
for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.05
done

: >"$OUT/results"
for round in $(seq 1 "$ROUNDS"); do
    for who in $(round_order "$round" direct sidekey); do
        case $who in
            direct) r=$(taskset -c "$LOAD_CPU" "$PY" "$HERE/load.py" "127.0.0.1:$GRPC_PORT" "$DURATION" "$CONCURRENCY" "$TOKEN") ;;
            sidekey) r=$(taskset -c "$LOAD_CPU" "$PY" "$HERE/load.py" "127.0.0.1:$SIDEKEY_PORT" "$DURATION" "$CONCURRENCY" - "$SIDEKEY_PID") ;;
        esac
        say "round $round $who: $r"
        printf '%s %s\n' "$who" "$r" >>"$OUT/results"
    done
done

"$PY" - "$OUT/results" <<'PYEOF' | tee "$OUT/report.md"
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, data = line.split(" ", 1)
    rows.setdefault(who, []).append(json.loads(data))
med = lambda who, k: statistics.median(r[k] for r in rows[who] if k in r)
d, s = med("direct", "calls_per_s"), med("sidekey", "calls_per_s")
print("| path | unary calls/s (median) | sidekey CPU per call |")
print("|---|---|---|")
print(f"| direct (client sends the token) | {d:.0f} | - |")
print(f"| through sidekey (h2c in and out) | {s:.0f} ({s / d:.0%} of direct) | {med('sidekey', 'proxy_cpu_us_per_call'):.1f} µs |")
fails = sum(r["failed"] for rs in rows.values() for r in rs)
print(f"\nfailed calls: {fails}")
PYEOF
