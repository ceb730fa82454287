#!/usr/bin/env bash
# Load benchmark: no proxy, nginx, HAProxy, a Go ReverseProxy, a bare hyper
# proxy and sidekey injecting the same header in front of the same upstream,
# in scenarios (plain, access logs on, HTTPS upstream, SigV4 signing). See
# README.md next to this file.
#
#   benches/load/run.sh                              # all scenarios, about 9 minutes
#   SCENARIOS=plain benches/load/run.sh              # the plain path only, about 4 minutes
#   ROUNDS=5 DURATION=5 SCENARIOS=logs,https benches/load/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-4}        # seconds per wrk run
ROUNDS=${ROUNDS:-3}            # interleaved rounds over all contestants
CONNS=${CONNS:-32}             # the "many connections" case
QUOTA=${QUOTA:-50}             # % of one CPU for the proxy-bound run
IDLE_CONNS=${IDLE_CONNS:-1000} # keep-alive connections for the RSS-per-connection figure
NPROC=$(nproc)
PROXY_CPU=${PROXY_CPU:-$((NPROC - 1))}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$ROOT/target/bench-load}
SIDEKEY_BIN=${SIDEKEY_BIN:-}
SCENARIOS=${SCENARIOS:-plain,logs,https,sigv4}

# shellcheck source=lib.sh
source "$HERE/lib.sh"

# --- tools -----------------------------------------------------------------
need_tools nginx haproxy wrk python3 taskset:util-linux openssl go:golang-go
build_sidekey
# The floor: a bare hyper proxy with sidekey's stack and nothing else (bare_hyper.rs).
if [[ -z ${HYPER_BIN:-} ]]; then
    say "building the bare hyper proxy (release)"
    (cd "$ROOT" && cargo build --release --quiet --example bare_hyper)
    HYPER_BIN=$ROOT/target/release/examples/bare_hyper
fi
[[ $PROXY_CPU != "$LOAD_CPU" ]] || die "needs 2 CPUs: the proxy on one, load generator and upstream on the other"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- contestants per scenario ---------------------------------------------
declare -A SCENARIO=(
    [plain]="none nginx haproxy hyper go sidekey"
    [logs]="nginx nginx-log sidekey sidekey-log sidekey-json"
    [https]="nginx-tls go-tls sidekey-tls"
    [sigv4]="sidekey sidekey-sigv4"
)
ALL=(none nginx nginx-log nginx-tls haproxy hyper go go-tls sidekey sidekey-log sidekey-json sidekey-tls sidekey-sigv4)
declare -A WANT=()
IFS=, read -ra SCENARIO_LIST <<<"$SCENARIOS"
for sc in "${SCENARIO_LIST[@]}"; do
    [[ -n ${SCENARIO[$sc]:-} ]] || die "unknown scenario $sc (plain, logs, https, sigv4)"
    for c in ${SCENARIO[$sc]}; do WANT[$c]=1; done
done
CONTESTANTS=()
for c in "${ALL[@]}"; do [[ -n ${WANT[$c]:-} ]] && CONTESTANTS+=("$c"); done
PROXIES=()
for c in "${CONTESTANTS[@]}"; do [[ $c == none ]] || PROXIES+=("$c"); done
plain=0
[[ ,$SCENARIOS, == *,plain,* ]] && plain=1

# --- setup -----------------------------------------------------------------
# The Go build cache survives between runs (it takes a while to fill).
mkdir -p "$OUT"
find "$OUT" -mindepth 1 -maxdepth 1 ! -name go -exec rm -rf {} +
DIR=$OUT
if [[ -n ${WANT[go]:-}${WANT[go-tls]:-} ]]; then
    say "building the Go ReverseProxy (standard library only)"
    mkdir -p "$DIR/go"
    (cd "$HERE/goproxy" && GOCACHE=$DIR/go/cache GOPATH=$DIR/go/path GOFLAGS= GOPROXY=off \
        go build -o "$DIR/go/goproxy" .)
fi
pick_ports "${PROXIES[@]}"
make_secrets
render upstream.nginx.conf.in upstream.conf
render proxy.haproxy.cfg.in haproxy.cfg

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # sidekey is not this shell's child (the helper started it): wait for it
    # to go, or its cgroup cannot be removed.
    for p in "${SIDEKEY_PIDS[@]:-}"; do
        for _ in $(seq 1 200); do kill -0 "${p:-0}" 2>/dev/null || break; sleep 0.01; done
    done
    for c in "${CGROUPS[@]:-}"; do [[ -n $c ]] && rmdir "$c" 2>/dev/null || true; done
}
trap cleanup EXIT


declare -A PROCS=([none]="")
SIDEKEY_PIDS=()
taskset -c "$LOAD_CPU" nginx -p "$DIR" -e "$DIR/upstream.error.log" -c "$DIR/upstream.conf" &
PIDS+=($!)
start() { # start NAME: renders its config and starts it on the proxy CPU
    local c=$1 pid
    render_contestant "$c"
    case $c in
    nginx*)
        taskset -c "$PROXY_CPU" nginx -p "$DIR" -e "$DIR/$c.error.log" -c "$DIR/$c.conf" &
        pid=$!
        PIDS+=($pid)
        wait_port "${PORT[$c]}"
        PROCS[$c]="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
        ;;
    haproxy)
        taskset -c "$PROXY_CPU" haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
        PROCS[$c]=$!
        PIDS+=($!)
        ;;
    hyper)
        taskset -c "$PROXY_CPU" "$HYPER_BIN" "127.0.0.1:${PORT[$c]}" "127.0.0.1:$UPSTREAM_PORT" "Bearer $TOKEN" &
        PROCS[$c]=$!
        PIDS+=($!)
        ;;
    go)
        taskset -c "$PROXY_CPU" "$DIR/go/goproxy" "127.0.0.1:${PORT[$c]}" "$PLAIN_URL" "Bearer $TOKEN" \
            >"$DIR/logs/$c.log" 2>&1 &
        PROCS[$c]=$!
        PIDS+=($!)
        ;;
    go-tls)
        taskset -c "$PROXY_CPU" "$DIR/go/goproxy" "127.0.0.1:${PORT[$c]}" "$TLS_URL" "Bearer $TOKEN" \
            "$DIR/ca.pem" >"$DIR/logs/$c.log" 2>&1 &
        PROCS[$c]=$!
        PIDS+=($!)
        ;;
    sidekey*)
        # Started by the helper, so its start-up to ready is timed from the exec.
        local ms
        read -r ms pid < <(python3 "$HERE/helper.py" launch-ready "http://127.0.0.1:${ADMIN[$c]}/readyz" \
            "$DIR/logs/$c.log" taskset -c "$PROXY_CPU" "$SIDEKEY_BIN" run -c "$DIR/$c.toml")
        [[ $ms != timeout ]] || die "$c did not become ready (see $DIR/logs/$c.log)"
        [[ $c == sidekey ]] && STARTUP_MS=$ms
        PROCS[$c]=$pid
        PIDS+=($pid)
        SIDEKEY_PIDS+=($pid)
        ;;
    esac
}
STARTUP_MS=–
wait_port "$UPSTREAM_PORT"
for c in "${PROXIES[@]}"; do start "$c"; done
for c in "${PROXIES[@]}"; do wait_port "${PORT[$c]}"; done
sleep 0.3

for c in "${PROXIES[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$c]}/")
    [[ $code == 200 ]] || die "$c answered $code, not 200: the header is not injected right"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$UPSTREAM_PORT/")
[[ $code == 401 ]] || die "the upstream answered $code without the header, not 401"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DIR/ca.pem" "https://localhost:$UPSTREAM_TLS_PORT/")
[[ $code == 401 ]] || die "the upstream's TLS listener answered $code without the header, not 401"
# The contestants with an access log write one line per request.
for c in nginx-log sidekey-log sidekey-json; do
    [[ -n ${WANT[$c]:-} ]] || continue
    f=$DIR/logs/$c.log
    [[ $c == nginx-log ]] && f=$DIR/logs/$c.access.log
    grep -q 'GET / ' "$f" 2>/dev/null || grep -q '"path":"/"' "$f" 2>/dev/null || grep -q 'path="/"' "$f" 2>/dev/null \
        || die "$c wrote no access line to $f"
done

rss() { # field of /proc/PID/status (KiB), largest over the PIDs
    local max=0 v
    for p in $2; do
        v=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$p/status")
        ((v > max)) && max=$v
    done
    echo "$max"
}
IDLE_RSS=$(rss VmRSS "${PROCS[sidekey]:-}")

# --- CPU quota: one cgroup per proxy, limited only during the quota run ----
cgroup_detect skbench
for c in "${PROXIES[@]}"; do cgroup_join "$c" "${PROCS[$c]}"; done
cgroup_check ${#PROXIES[@]}

# --- runs ------------------------------------------------------------------
RESULTS=$DIR/results.tsv
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

run_wrk() { # run_wrk NAME LABEL CONNS SECONDS
    local name=$1 label=$2 conns=$3 secs=$4 before after out
    before=$(ticks "${PROCS[$name]}")
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:${PORT[$name]}/")
    after=$(ticks "${PROCS[$name]}")
    echo "$out" >>"$DIR/wrk.log"
    python3 "$HERE/helper.py" parse-wrk "$name" "$label" "$ROUND" "$((after - before))" "$CLK_TCK" <<<"$out" >>"$RESULTS"
}

say "scenarios $SCENARIOS: ${CONTESTANTS[*]}; upstream $UPSTREAM_PORT (TLS $UPSTREAM_TLS_PORT); proxy CPU $PROXY_CPU, load CPU $LOAD_CPU"
ROUND=warmup
for c in "${CONTESTANTS[@]}"; do run_wrk "$c" warm "$CONNS" 1 >/dev/null; done
: >"$RESULTS"
for ROUND in $(seq 1 "$ROUNDS"); do
    read -ra order < <(round_order "$ROUND" "${CONTESTANTS[@]}")
    say "round $ROUND/$ROUNDS: ${order[*]}"
    for c in "${order[@]}"; do
        run_wrk "$c" c1 1 "$DURATION"
        run_wrk "$c" "c$CONNS" "$CONNS" "$DURATION"
        if [[ $c != none && $CG_KIND != none ]]; then
            quota "$c" on
            run_wrk "$c" quota "$CONNS" "$DURATION"
            quota "$c" off
        fi
    done
done
for c in "${PROXIES[@]}"; do
    echo -e "rss\t$c\t$(rss VmHWM "${PROCS[$c]}")" >>"$RESULTS"
done

ROTATIONS=0 ROT_LAT="- - -"
declare -A PER_CONN=()
if ((plain)); then
    say "sidekey with its credential file rotated every 100 ms under load"
    ROUND=rot
    python3 "$HERE/helper.py" rotate "$DIR/secrets/token" 0.1 $((DURATION * 2)) "${ROT_TOKENS[@]}" >"$DIR/rotations" &
    run_wrk sidekey rotating "$CONNS" $((DURATION * 2))
    wait $!
    ROTATIONS=$(cat "$DIR/rotations")

    say "file rotation to first request with the new value"
    ROT_LAT=$(python3 "$HERE/helper.py" rotation-latency "${PORT[sidekey]}" "$DIR/secrets/token" 20)

    say "RSS per $IDLE_CONNS idle keep-alive connections"
    for c in ${SCENARIO[plain]}; do
        [[ $c == none ]] && continue
        PER_CONN[$c]=$(python3 "$HERE/helper.py" idle-conns "${PORT[$c]}" "$IDLE_CONNS" ${PROCS[$c]})
    done
fi

{
    echo -e "extra\tscenarios\t$SCENARIOS"
    echo -e "extra\tstartup_ms\t$STARTUP_MS"
    echo -e "extra\tidle_rss_kib\t$IDLE_RSS"
    echo -e "extra\trotations\t$ROTATIONS"
    echo -e "extra\trotation_latency_ms\t$ROT_LAT"
    for c in "${!PER_CONN[@]}"; do echo -e "extra\tper_1000_conns_kib_$c\t${PER_CONN[$c]}"; done
    echo -e "extra\tquota\t$CG_KIND $QUOTA"
    echo -e "extra\tsetup\t$ROUNDS rounds x ${DURATION}s, $CONNS connections, proxy CPU $PROXY_CPU"
} >>"$RESULTS"

python3 "$HERE/helper.py" report "$RESULTS" | tee "$DIR/report.md"
