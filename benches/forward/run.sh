#!/usr/bin/env bash
# Forward-proxy benchmark: sidekey's intercepted CONNECT tunnel against its
# reverse-proxy route and against nginx terminating TLS for the same host,
# all injecting the same header in front of the same upstream. See the
# "Forward-proxy benchmark" section of benches/README.md.
#
#   benches/forward/run.sh              # about 4 minutes
#   ROUNDS=5 DURATION=5 benches/forward/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LOAD=$ROOT/benches/load        # the upstream config and the start-up helper are the load benchmark's
DURATION=${DURATION:-4}        # seconds per run
ROUNDS=${ROUNDS:-3}            # interleaved rounds over all contestants
CONNS=${CONNS:-32}             # the "many connections" case
FRESH_CONNS=${FRESH_CONNS:-8}  # concurrent clients of the new-connection-per-request run
QUOTA=${QUOTA:-50}             # % of one CPU for the proxy-bound run
NPROC=$(nproc)
PROXY_CPU=${PROXY_CPU:-$((NPROC - 1))}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$ROOT/target/bench-forward}
SIDEKEY_BIN=${SIDEKEY_BIN:-}
LOADGEN=${LOADGEN:-}
HOST=api.bench.test

# shellcheck source=../load/lib.sh
source "$LOAD/lib.sh"

# --- tools -----------------------------------------------------------------
need_tools nginx openssl python3 taskset:util-linux
# Built one at a time, as the load benchmark does: sidekey without the
# dev-dependencies' features, the load generator (an example) with them.
build_sidekey
if [[ -z $LOADGEN ]]; then
    say "building the load generator (release)"
    (cd "$ROOT" && cargo build --release --quiet --example fwdload)
    LOADGEN=$ROOT/target/release/examples/fwdload
fi
[[ $PROXY_CPU != "$LOAD_CPU" ]] || die "needs 2 CPUs: the proxy on one, load generator and upstream on the other"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- setup -----------------------------------------------------------------
rm -rf "$OUT" && mkdir -p "$OUT"
DIR=$OUT
read -r UPSTREAM_PORT UPSTREAM_TLS_PORT NGINX_PORT NGINX_TLS_PORT ROUTE_PORT PROXY_PORT ADMIN_PORT < <(free_ports 7)
TOKEN=skb-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '"Bearer %s" 1;\n' "$TOKEN" >"$DIR/tokens.map"
printf '%s' "$TOKEN" >"$DIR/token"

# nginx's certificate for the bench host: ECDSA P-256 like sidekey's leaves,
# from a bench CA; the chain it sends holds the CA too, as sidekey's does.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$DIR/bench-ca-key.pem" -out "$DIR/bench-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$HOST" \
    -keyout "$DIR/leaf-key.pem" -out "$DIR/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$HOST" >"$DIR/leaf.ext"
openssl x509 -req -in "$DIR/leaf.csr" -CA "$DIR/bench-ca.pem" -CAkey "$DIR/bench-ca-key.pem" \
    -CAcreateserial -days 1 -extfile "$DIR/leaf.ext" -out "$DIR/leaf-only.pem" 2>/dev/null
cat "$DIR/leaf-only.pem" "$DIR/bench-ca.pem" >"$DIR/leaf.pem"
# The upstream's config (the load benchmark's) has a TLS listener too: it
# gets the same certificate; no contestant here uses it.
cp "$DIR/leaf.pem" "$DIR/server.pem"
cp "$DIR/leaf-key.pem" "$DIR/server.key"

fill() { # fill TEMPLATE OUTPUT: the template with this bench's values, in DIR
    sed -e "s|@DIR@|$DIR|g" -e "s|@TOKEN@|$TOKEN|g" -e "s|@HOST@|$HOST|g" \
        -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@UPSTREAM_TLS_PORT@|$UPSTREAM_TLS_PORT|g" \
        -e "s|@NGINX_PORT@|$NGINX_PORT|g" \
        -e "s|@NGINX_TLS_PORT@|$NGINX_TLS_PORT|g" -e "s|@ROUTE_PORT@|$ROUTE_PORT|g" \
        -e "s|@PROXY_PORT@|$PROXY_PORT|g" -e "s|@ADMIN_PORT@|$ADMIN_PORT|g" "$1" >"$DIR/$2"
}
fill "$LOAD/upstream.nginx.conf.in" upstream.conf
fill "$HERE/proxy.nginx.conf.in" nginx.conf
fill "$HERE/sidekey.toml.in" sidekey.toml
"$SIDEKEY_BIN" ca -c "$DIR/sidekey.toml" >"$DIR/sidekey-ca.pem" 2>"$DIR/sidekey-ca.log"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "${SIDEKEY_PID:-0}" 2>/dev/null || break; sleep 0.01; done
    for c in "${CGROUPS[@]:-}"; do [[ -n $c ]] && rmdir "$c" 2>/dev/null || true; done
}
trap cleanup EXIT

taskset -c "$LOAD_CPU" nginx -p "$DIR" -e "$DIR/upstream.error.log" -c "$DIR/upstream.conf" &
PIDS+=($!)
taskset -c "$PROXY_CPU" nginx -p "$DIR" -e "$DIR/nginx.error.log" -c "$DIR/nginx.conf" &
NGINX_MASTER=$!
PIDS+=($NGINX_MASTER)
read -r _ SIDEKEY_PID < <(python3 "$LOAD/helper.py" launch-ready "http://127.0.0.1:$ADMIN_PORT/readyz" \
    "$DIR/sidekey.log" taskset -c "$PROXY_CPU" "$SIDEKEY_BIN" run -c "$DIR/sidekey.toml")
PIDS+=($SIDEKEY_PID)
for p in $UPSTREAM_PORT $NGINX_PORT $NGINX_TLS_PORT $ROUTE_PORT $PROXY_PORT; do wait_port "$p"; done
sleep 0.3
NGINX_PIDS="$NGINX_MASTER $(pgrep -P "$NGINX_MASTER" | tr '\n' ' ')"

# How the load generator reaches each contestant.
declare -A ARGS=(
    [route]="--to 127.0.0.1:$ROUTE_PORT"
    [intercept]="--to 127.0.0.1:$PROXY_PORT --connect $HOST:443 --tls $HOST --ca $DIR/sidekey-ca.pem"
    [nginx]="--to 127.0.0.1:$NGINX_PORT --host $HOST"
    [nginx-tls]="--to 127.0.0.1:$NGINX_TLS_PORT --tls $HOST --ca $DIR/bench-ca.pem"
)
declare -A PROCS=([route]=$SIDEKEY_PID [intercept]=$SIDEKEY_PID [nginx]=$NGINX_PIDS [nginx-tls]=$NGINX_PIDS)
declare -A GROUP=([route]=sidekey [intercept]=sidekey [nginx]=nginx [nginx-tls]=nginx)
CONTESTANTS=(route intercept nginx nginx-tls)

# Each contestant must inject the right header: the upstream answers 401 otherwise.
for c in "${CONTESTANTS[@]}"; do
    # shellcheck disable=SC2086
    out=$("$LOADGEN" ${ARGS[$c]} -c 1 -d 0.3 2>"$DIR/tls-$c.txt")
    [[ ! -s $DIR/tls-$c.txt ]] || say "$c: $(cat "$DIR/tls-$c.txt")"
    echo -e "extra\ttls_$c\t$(cat "$DIR/tls-$c.txt")" >>"$DIR/tls.tsv"
    [[ $out == *" non2xx=0 errors=0" && $out != requests=0* ]] || die "$c: $out (the header is not injected right?)"
done

# --- CPU quota: one cgroup per proxy process group, limited only during the quota run
cgroup_detect skfwd
cgroup_join sidekey "$SIDEKEY_PID"
cgroup_join nginx "$NGINX_PIDS"
cgroup_check 2

# --- runs ------------------------------------------------------------------
RESULTS=$DIR/results.tsv
CLK_TCK=$(getconf CLK_TCK)
run_load() { # run_load NAME LABEL CONNS SECONDS [--fresh]
    local name=$1 label=$2 conns=$3 secs=$4 before after out
    before=$(ticks "${PROCS[$name]}")
    # shellcheck disable=SC2086
    out=$(taskset -c "$LOAD_CPU" "$LOADGEN" ${ARGS[$name]} -c "$conns" -d "$secs" ${5:-} 2>>"$DIR/fwdload.log")
    after=$(ticks "${PROCS[$name]}")
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$ROUND" "$(((after - before) * 1000000 / CLK_TCK))" "$out" >>"$RESULTS"
}

say "ports: upstream $UPSTREAM_PORT nginx $NGINX_PORT/$NGINX_TLS_PORT route $ROUTE_PORT proxy $PROXY_PORT; proxy CPU $PROXY_CPU, load CPU $LOAD_CPU"
ROUND=warmup
for c in "${CONTESTANTS[@]}"; do run_load "$c" warm "$CONNS" 1; done
: >"$RESULTS"
for ROUND in $(seq 1 "$ROUNDS"); do
    read -ra order < <(round_order "$ROUND" "${CONTESTANTS[@]}")
    say "round $ROUND/$ROUNDS: ${order[*]}"
    for c in "${order[@]}"; do
        run_load "$c" c1 1 "$DURATION"
        run_load "$c" "c$CONNS" "$CONNS" "$DURATION"
        if [[ $CG_KIND != none ]]; then
            quota "${GROUP[$c]}" on
            run_load "$c" quota "$CONNS" "$DURATION"
            quota "${GROUP[$c]}" off
        fi
        run_load "$c" fresh "$FRESH_CONNS" "$DURATION" --fresh
    done
done
MINTED=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^sidekey_proxy_leaves_minted_total/ { print $2 }')
{
    cat "$DIR/tls.tsv"
    echo -e "extra\tleaves_minted\t${MINTED:-?}"
    echo -e "extra\tquota\t$CG_KIND $QUOTA"
    echo -e "extra\tsetup\t$ROUNDS rounds x ${DURATION}s, $CONNS connections (new-connection run: $FRESH_CONNS), proxy CPU $PROXY_CPU"
} >>"$RESULTS"
python3 "$HERE/report.py" "$RESULTS" | tee "$DIR/report.md"
