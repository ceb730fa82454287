# Shared by run.sh and instructions.sh (sourced): the bench's secrets, test
# CA, upstream and contestant configs. Expects HERE (this folder), DIR (the
# scratch folder), PORT and ADMIN (associative arrays of ports by contestant).

say() { printf '[bench] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

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
