# Shared by run.sh and instructions.sh (sourced): the bench's secrets, test
# CA, upstream and contestant configs. Expects HERE (this folder), DIR (the
# scratch folder), and PORT and ADMIN (associative arrays of ports by
# contestant, set by pick_ports).
# The forward and gRPC benchmarks source it for the helpers up to
# make_secrets (tools, ports, CPU time, cgroup quota), which expect only ROOT.

say() { printf '[bench] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need_tools() { # need_tools COMMAND[:PACKAGE]...: installs the Debian packages of the missing ones
    local need=() t
    for t in "$@"; do command -v "${t%%:*}" >/dev/null || need+=("${t#*:}"); done
    if ((${#need[@]})); then
        say "installing ${need[*]} from Debian packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

build_sidekey() { # sets SIDEKEY_BIN, building the release binary unless it is given
    if [[ -z ${SIDEKEY_BIN:-} ]]; then
        say "building sidekey (release)"
        (cd "$ROOT" && cargo build --release --quiet --bin sidekey)
        SIDEKEY_BIN=$ROOT/target/release/sidekey
    fi
}

free_ports() {
    python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])' "$1"
}

wait_port() {
    for _ in $(seq 1 500); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.01
    done
    die "nothing listens on port $1"
}

ticks() { # utime + stime of the PIDs, in clock ticks
    local sum=0 p
    for p in $1; do
        sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$sum"
}

round_order() { # round_order ROUND NAME...: the names rotated by ROUND - 1, so none always runs first
    local n=$((($1 - 1) % ($# - 1)))
    shift
    local names=("$@")
    echo "${names[@]:n}" "${names[@]:0:n}"
}

# CPU quota: one cgroup per group of processes, limited only during the
# quota run. cgroup_detect PREFIX finds the controller (CG_KIND v2, v1 or
# none); cgroup_join NAME PIDS moves a group into a cgroup of its own;
# cgroup_check N gives up on the quota unless N groups were moved; quota
# NAME on|off limits a group to QUOTA % of one CPU or lifts it. CGROUPS
# lists the cgroups made, for the caller's cleanup to remove.
CGROUPS=()
declare -A CG=()
CG_KIND=none
cgroup_detect() {
    CG_PREFIX=$1
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers \
        && mkdir -p "/sys/fs/cgroup/$1-probe" 2>/dev/null && rmdir "/sys/fs/cgroup/$1-probe"; then
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        CG_KIND=v2 CG_BASE=/sys/fs/cgroup
    elif [[ -d /sys/fs/cgroup/cpu ]] && mkdir -p "/sys/fs/cgroup/cpu/$1-probe" 2>/dev/null \
        && rmdir "/sys/fs/cgroup/cpu/$1-probe"; then
        CG_KIND=v1 CG_BASE=/sys/fs/cgroup/cpu
    fi
}
quota() { # quota NAME on|off
    local d=${CG[$1]:-}
    [[ -n $d ]] || return 0
    if [[ $CG_KIND == v2 ]]; then
        if [[ $2 == on ]]; then echo "$((QUOTA * 1000)) 100000" >"$d/cpu.max"; else echo "max 100000" >"$d/cpu.max"; fi
    else
        echo 100000 >"$d/cpu.cfs_period_us"
        if [[ $2 == on ]]; then echo $((QUOTA * 1000)) >"$d/cpu.cfs_quota_us"; else echo -1 >"$d/cpu.cfs_quota_us"; fi
    fi
}
cgroup_join() { # cgroup_join NAME PIDS
    local d=$CG_BASE/$CG_PREFIX-$1-$$ ok=1 p
    [[ $CG_KIND != none ]] && mkdir "$d" 2>/dev/null || return 0
    CGROUPS+=("$d")
    for p in $2; do echo "$p" >"$d/cgroup.procs" 2>/dev/null || ok=0; done
    if ((ok)); then CG[$1]=$d; quota "$1" off; else say "cannot move $1 into a cgroup"; fi
}
cgroup_check() { # cgroup_check N
    ((${#CG[@]} == $1)) || { say "no usable cgroup CPU controller: skipping the quota run"; CG_KIND=none; }
    say "cgroup CPU quota: $CG_KIND"
}

# The bench tokens (the upstream accepts these), AWS keys and a test CA with
# the upstream's certificate (localhost and 127.0.0.1). The credential files
# get a folder of their own, as a Kubernetes secret mount: sidekey watches
# the folder, and a log file written beside them would wake the watcher at
# every line. Logs go to a folder of their own too (sidekey also watches its
# config file's folder).
make_secrets() {
    mkdir -p "$DIR/secrets" "$DIR/logs"
    TOKEN=skb-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    ROT_TOKENS=()
    for i in $(seq 1 20); do ROT_TOKENS+=("$TOKEN-r$i"); done
    AWS_KEY_ID=AKIASIDEKEYBENCH0000
    {
        for t in "$TOKEN" "${ROT_TOKENS[@]}"; do printf '"Bearer %s" 1;\n' "$t"; done
        # SigV4: the upstream checks that a signature by the bench key is there, not that it verifies.
        printf '"~^AWS4-HMAC-SHA256 Credential=%s/" 1;\n' "$AWS_KEY_ID"
    } >"$DIR/tokens.map"
    printf '%s' "$TOKEN" >"$DIR/secrets/token"
    printf '%s' "$AWS_KEY_ID" >"$DIR/secrets/aws_key_id"
    od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$DIR/secrets/aws_secret"

    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=sidekey-bench-ca -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
        -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
        'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$DIR/server.ext"
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
        -days 2 -extfile "$DIR/server.ext" -out "$DIR/server.pem" 2>/dev/null
}

render() { # render TEMPLATE OUTPUT [sed expressions...]
    local in=$1 out=$2
    shift 2
    sed "$@" -e "s|@DIR@|$DIR|g" -e "s|@TOKEN@|$TOKEN|g" \
        -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@UPSTREAM_TLS_PORT@|$UPSTREAM_TLS_PORT|g" \
        -e "s|@HAPROXY_PORT@|${PORT[haproxy]:-0}|g" "$HERE/$in" >"$DIR/$out"
}

render_nginx() { # render_nginx NAME ACCESS_LOG SCHEME UPSTREAM
    render proxy.nginx.conf.in "$1.conf" -e "s|@NAME@|$1|g" -e "s|@PORT@|${PORT[$1]}|g" \
        -e "s|@ACCESS_LOG@|$2|g" -e "s|@SCHEME@|$3|g" -e "s|@UPSTREAM@|$4|g"
}

render_sidekey() { # render_sidekey NAME ACCESS_LOG FORMAT UPSTREAM_URL KIND(bearer|sigv4) ROUTE_EXTRA
    local cred keys inject
    if [[ $5 == sigv4 ]]; then
        cred=aws
        keys="source = \"aws\"\\naccess_key_id = { file = \"$DIR/secrets/aws_key_id\" }\\nsecret_access_key = { file = \"$DIR/secrets/aws_secret\" }"
        inject='{ aws_sigv4 = { service = "s3", region = "eu-west-1" } }'
    else
        cred=bench
        keys="source = \"file\"\\npath = \"$DIR/secrets/token\""
        inject='{ header = "Authorization", format = "Bearer {secret}" }'
    fi
    render sidekey.toml.in "$1.toml" -e "s|@PORT@|${PORT[$1]}|g" -e "s|@ADMIN_PORT@|${ADMIN[$1]}|g" \
        -e "s|@ACCESS_LOG@|$2|g" -e "s|@LOG_FORMAT@|$3|g" -e "s|@UPSTREAM_URL@|$4|g" \
        -e "s|@CREDENTIAL@|$cred|g" -e "s|@CREDENTIAL_KEYS@|$keys|g" -e "s|@INJECT@|$inject|g" \
        -e "s|@ROUTE_EXTRA@|$6|g"
}

# URLs of the upstream; call after the ports are chosen.
upstream_urls() {
    PLAIN_URL=http://127.0.0.1:$UPSTREAM_PORT
    TLS_URL=https://127.0.0.1:$UPSTREAM_TLS_PORT
    CA_LINE="ca_file = \"$DIR/ca.pem\""
}

pick_ports() { # pick_ports CONTESTANT...: the upstream's ports and URLs; PORT and ADMIN of each contestant
    local ports c i=0
    read -r UPSTREAM_PORT UPSTREAM_TLS_PORT < <(free_ports 2)
    upstream_urls
    declare -gA PORT=([none]=$UPSTREAM_PORT) ADMIN=()
    read -ra ports < <(free_ports $((2 * $#)))
    for c in "$@"; do PORT[$c]=${ports[$i]} ADMIN[$c]=${ports[$((i + 1))]}; i=$((i + 2)); done
}

render_contestant() { # render_contestant NAME: its config file in DIR
    local c=$1
    case $c in
    nginx) render_nginx "$c" off http up ;;
    nginx-log) render_nginx "$c" "$DIR/logs/$c.access.log combined" http up ;;
    nginx-tls) render_nginx "$c" off https up_tls ;;
    sidekey) render_sidekey "$c" false text "$PLAIN_URL" bearer "" ;;
    sidekey-log) render_sidekey "$c" true text "$PLAIN_URL" bearer "" ;;
    sidekey-json) render_sidekey "$c" true json "$PLAIN_URL" bearer "" ;;
    sidekey-tls) render_sidekey "$c" false text "$TLS_URL" bearer "$CA_LINE" ;;
    sidekey-sigv4) render_sidekey "$c" false text "$PLAIN_URL" sigv4 "" ;;
    esac
}
