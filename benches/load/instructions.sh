#!/usr/bin/env bash
# Instructions per request (valgrind's callgrind), for sidekey in the load
# benchmark's configurations: access log off / text / JSON, SigV4 signing,
# HTTPS upstream (and nginx's, for reference, when asked). Valgrind counts
# instructions, so these figures repeat on a busy machine. See README.md
# next to this file.
#
#   benches/load/instructions.sh
#   VARIANTS=sidekey,sidekey-log SECS=5 benches/load/instructions.sh
#   VARIANTS=nginx,nginx-log,nginx-tls benches/load/instructions.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VARIANTS=${VARIANTS:-sidekey,sidekey-log,sidekey-json,sidekey-sigv4,sidekey-tls}
SECS=${SECS:-10}              # measured seconds per variant
WARMUP=${WARMUP:-3}           # seconds of load before the counters are zeroed
NPROC=$(nproc)
PROXY_CPU=${PROXY_CPU:-$((NPROC - 1))}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$ROOT/target/bench-instructions}
SIDEKEY_BIN=${SIDEKEY_BIN:-}
# shellcheck source=lib.sh
source "$HERE/lib.sh"

need_tools nginx wrk valgrind openssl python3
build_sidekey

rm -rf "$OUT" && mkdir -p "$OUT"
DIR=$OUT
IFS=, read -ra LIST <<<"$VARIANTS"
pick_ports "${LIST[@]}"
make_secrets
render upstream.nginx.conf.in upstream.conf

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
taskset -c "$LOAD_CPU" nginx -p "$DIR" -e "$DIR/upstream.error.log" -c "$DIR/upstream.conf" &
PIDS+=($!)
wait_port "$UPSTREAM_PORT"

load() { # load PORT SECONDS: prints the requests served
    taskset -c "$LOAD_CPU" wrk -t1 -c4 -d"$2s" "http://127.0.0.1:$1/" >"$DIR/wrk.out"
    grep -q 'Non-2xx' "$DIR/wrk.out" && die "non-2xx answers: $(cat "$DIR/wrk.out")"
    awk '/requests in/ { print $1 }' "$DIR/wrk.out"
}

RESULTS=$DIR/instructions.tsv
: >"$RESULTS"
for c in "${LIST[@]}"; do
    render_contestant "$c"
    cg=$DIR/cg.$c.out
    case $c in
    sidekey*)
        # valgrind shows sidekey every CPU: ask for the runtime it gets on one.
        SIDEKEY_RUNTIME=current_thread taskset -c "$PROXY_CPU" valgrind --tool=callgrind \
            --callgrind-out-file="$cg" "$SIDEKEY_BIN" run -c "$DIR/$c.toml" >"$DIR/logs/$c.log" 2>&1 &
        ;;
    nginx*)
        taskset -c "$PROXY_CPU" valgrind --tool=callgrind --callgrind-out-file="$cg" \
            nginx -p "$DIR" -e "$DIR/$c.error.log" -c "$DIR/$c.conf" -g 'master_process off;' \
            >"$DIR/logs/$c.log" 2>&1 &
        ;;
    *) die "unknown variant $c (sidekey, sidekey-log, sidekey-json, sidekey-sigv4, sidekey-tls, nginx, nginx-log, nginx-tls)" ;;
    esac
    pid=$!
    PIDS+=($pid)
    # valgrind starts slowly; sidekey answers 503 until its credential is read.
    for _ in $(seq 1 60); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$c]}/" || true)
        [[ $code == 200 ]] && break
        sleep 0.5
    done
    [[ $code == 200 ]] || die "$c answered $code, not 200 (see $DIR/logs/$c.log)"
    load "${PORT[$c]}" "$WARMUP" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    reqs=$(load "${PORT[$c]}" "$SECS")
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    dump=$(ls "$cg".* 2>/dev/null | grep -v '\.out$' | head -1)
    [[ -n $dump ]] || die "no callgrind dump for $c"
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
    say "$c: $ir instructions over $reqs requests"
    printf '%s\t%s\t%s\t%s\n' "$c" "$reqs" "$ir" "$dump" >>"$RESULTS"
done

python3 - "$RESULTS" <<'PY' | tee "$DIR/report.md"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
per = {c: int(ir) / int(n) for c, n, ir, _ in rows}
base = per.get("sidekey")
print("| variant | requests | instructions per request | vs sidekey, access log off |")
print("|---|---:|---:|---:|")
for c, n, ir, _ in rows:
    vs = "–" if base is None or c == "sidekey" or not c.startswith("sidekey") else f"{(per[c] / base - 1) * 100:+.1f} %"
    print(f"| {c} | {int(n):,} | {per[c] / 1000:.1f}k | {vs} |")
PY
say "profiles: callgrind_annotate --inclusive=yes $DIR/cg.NAME.out.1 | head -80"
