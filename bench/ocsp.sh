#!/usr/bin/env bash
# OCSP at 30,000 certificates (issue 15, benchmark 3), on loopback, in one run beside three peers:
#
#   bash bench/ocsp.sh
#
# Servers, all answering POSTs for the same BENCH_OCSP_N (30,000) certificates, keep-alive:
#   certmate            POST /ocsp, answers signed once and cached (the cache is filled before timing)
#   openssl ocsp        `openssl ocsp -index index.txt -rsigner responder.crt ...` (signs every answer,
#                       HTTP/1.0: a new connection per answer); -multi 2 unpinned, one process pinned
#   cfssl ocspserve     Debian's golang-cfssl serving a responses file: certmate's own signed
#                       answers for the 30,000 serials (the same bytes certmate serves from cache)
#   nginx               a 1 KB static file: the ceiling of an HTTP server on this machine
# Load: wrk with 64 connections; every request an OCSPRequest for a serial picked at random among
# the 30,000 (bench/ocsp_random.lua); every answer is checked (HTTP 200 and a successful OCSP
# response, or the 1 KB file) and a wrong one counts as an error, not a request.
# Two layouts:
#   unpinned  servers with their defaults (certmate one io thread per core, nginx 2 workers,
#             openssl -multi 2, cfssl GOMAXPROCS=cores), wrk -t2; BENCH_ROUNDS rounds, peers alternating
#   pinned    each server on core 0 (taskset) with one io thread / one worker / one process /
#             GOMAXPROCS=1, wrk -t1 on core 1; BENCH_PINNED_ROUNDS rounds
# Prints a table with certmate's ratio to each peer, per round, and the targets of issue 15.
#
# The store (default CA RSA-4096, ed25519 keys, made with one batch job) and the fixtures derived
# from it are kept in BENCH_OCSP_DIR (build-bench/ocsp-store) and reused by the next run.
# Knobs: BENCH_OCSP_N=30000 BENCH_SECS=10 BENCH_CONNS=64 BENCH_ROUNDS=3 BENCH_PINNED_ROUNDS=2
# BENCH_WAIT_MAX=1200 (seconds to wait for compilers to finish; 0 = do not wait);
# CERTMATE_BIN=path skips the build; CERTMATE_BEFORE_BIN=path adds a fifth server, "certmate
# before", that binary over a copy of the store (one serve per data dir), in the same rotation:
# before and after side by side; BENCH_FILL_ONLY=1 makes the store and fixtures, then stops.
# Logs: build-bench/bench-logs/ocsp-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_OCSP_N:-30000}
SECS=${BENCH_SECS:-10}
CONNS=${BENCH_CONNS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
PROUNDS=${BENCH_PINNED_ROUNDS:-2}
WAIT_MAX=${BENCH_WAIT_MAX:-1200}
STORE=${BENCH_OCSP_DIR:-$ROOT/build-bench/ocsp-store}
BEFORE_BIN=${CERTMATE_BEFORE_BIN:-}

BENCH_TAG="ocsp"
# shellcheck source=bench/common.sh
. bench/common.sh

# ---------------------------------------------------------------- outside: install, build, wait
if [ "${CERTMATE_BENCH_INNER:-}" != 1 ]; then
    [ "$(id -u)" -eq 0 ] || die "needs root: a private network namespace (unshare -n) for openssl ocsp, which binds [::]"
    bench_install wrk golang-cfssl openssl python3 util-linux iproute2 procps
    if ! command -v nginx >/dev/null; then # any nginx flavour will do
        bench_install nginx
        # Debian's package may start its own nginx on port 80: not ours to keep running.
        if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then systemctl stop nginx || true; fi
    fi
    bench_build
    [ -z "$BEFORE_BIN" ] || [ -x "$BEFORE_BIN" ] || die "no certmate binary at CERTMATE_BEFORE_BIN=$BEFORE_BIN"
    [ "${BENCH_FILL_ONLY:-}" = 1 ] || bench_wait_quiet "$WAIT_MAX"
    export CERTMATE_BENCH_INNER=1
    exec unshare -n bash "$0" "$@"
fi

# ---------------------------------------------------------------- inside the namespace
ip link set lo up
BIN=$CERTMATE_BIN
LOGS=$ROOT/build-bench/bench-logs
mkdir -p "$LOGS" "$STORE"
rm -f "$LOGS"/ocsp-*
WORK=$(mktemp -d /tmp/certmate-ocsp.XXXXXX)
RESULTS=$WORK/results.tsv
: >"$RESULTS"
HZ=$(getconf CLK_TCK)
PIDS=()
cleanup() {
    local p c
    for p in "${PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || continue
        for c in $(pgrep -P "$p" || true); do kill "$c" 2>/dev/null || true; done
        kill "$p" 2>/dev/null || true
    done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
wait_port() { # PORT PID NAME [SECONDS]
    local i
    for i in $(seq 1 $((${4:-10} * 20))); do
        ss -ltnH "sport = :$1" | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited at start (see $LOGS/ocsp-$3.log)"
        sleep 0.05
    done
    die "$3 does not listen on $1"
}
stop_pid() { # PID: the children first (openssl ocsp -multi respawns them otherwise... parent first)
    local p=$1 kids c i
    kids=$(pgrep -P "$p" || true)
    kill "$p" 2>/dev/null || true
    for c in $kids; do kill "$c" 2>/dev/null || true; done
    for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cpu_ticks() { # PID: user+system ticks of it and its children
    local total=0 p t
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

# ---- certmate
CM_PID="" CM_PORT=""
start_certmate() { # NAME [taskset prefix...]
    local name=$1 i
    shift
    "$@" "${CM_BIN:-$BIN}" serve --data-dir "${CM_DATA:-$STORE/data}" --listen 127.0.0.1:0 \
        --rate_limit.default 0 --rate_limit.create 0 --rate_limit.batch 0 --rate_limit.ocsp 0 --rate_limit.crl 0 \
        ${CM_EXTRA:-} >"$WORK/$name.out" 2>"$LOGS/ocsp-$name.log" &
    CM_PID=$!
    PIDS+=("$CM_PID")
    CM_PORT=""
    for i in $(seq 1 1200); do
        CM_PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$WORK/$name.out" | head -1)
        [ -n "$CM_PORT" ] && break
        kill -0 "$CM_PID" 2>/dev/null || die "certmate exited at start; see $LOGS/ocsp-$name.log"
        sleep 0.05
    done
    [ -n "$CM_PORT" ] || die "certmate did not report its port"
}

# ---- the store: N certificates, made once with a batch job and kept
count_store() { find "$STORE/data/certs/client" -name metadata.json 2>/dev/null | wc -l; }
if [ "$(cat "$STORE/filled" 2>/dev/null || true)" != "$N" ] || [ "$(count_store)" -lt "$N" ]; then
    log "filling the store: $N certificates with ed25519 keys, RSA-4096 CA, one batch job (kept in $STORE)"
    rm -rf "$STORE/data" "$STORE/fixtures" "$STORE/filled"
    CM_EXTRA="--jobs.max_rows $N" start_certmate fill
    AUTH="Authorization: Bearer $(cat "$STORE/data/admin.token")"
    { echo "common_name,key_type"; for i in $(seq 1 "$N"); do echo "ocsp-$i,ed25519"; done; } >"$WORK/fill.csv"
    t0=$(now)
    doc=$(curl -sf -H "$AUTH" -H 'Content-Type: text/csv' --data-binary @"$WORK/fill.csv" \
        "http://127.0.0.1:$CM_PORT/api/client-certs/batch") || die "the batch was refused"
    id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$doc")
    for _ in $(seq 1 1800); do   # 15 minutes at most
        doc=$(curl -sf -H "$AUTH" "http://127.0.0.1:$CM_PORT/api/jobs/$id?errors_limit=0")
        grep -q '"state":"\(queued\|running\)"' <<<"$doc" || break
        sleep 0.5
    done
    grep -q '"state":"succeeded"' <<<"$doc" || die "fill job did not succeed: $doc"
    log "filled in $(elapsed "$t0") s"
    stop_pid "$CM_PID"
    echo "$N" >"$STORE/filled"
fi
DATA=$STORE/data
CA=$DATA/certs/ca/ca.crt
FIX=$STORE/fixtures
if [ ! -s "$FIX/reqs.hex" ]; then
    mkdir -p "$FIX"
    openssl ocsp -issuer "$CA" -serial 1 -no_nonce -reqout "$FIX/template.der" >/dev/null
    log "fixtures: $(python3 bench/ocsp_fixtures.py prepare "$DATA" "$FIX/template.der" "$FIX") requests, index.txt"
fi
NREQ=$(wc -l <"$FIX/reqs.hex")
[ "$NREQ" -ge "$N" ] || die "only $NREQ requests in $FIX (store has $(count_store))"
cp "$FIX/index.txt" "$WORK/index.txt"
if [ "${BENCH_FILL_ONLY:-}" = 1 ]; then
    log "store and fixtures ready in $STORE ($N certificates); BENCH_FILL_ONLY: not measuring"
    exit 0
fi
if [ -n "$BEFORE_BIN" ]; then
    t0=$(now)
    rm -rf "$STORE/data-before"
    cp -a "$DATA" "$STORE/data-before"
    log "copied the store for certmate before ($BEFORE_BIN) in $(elapsed "$t0") s"
fi

# ---- one load phase
run_wrk() { # LAYOUT ROUND SERVER URL PID [VAR=VALUE...]: a row of the table
    local layout=$1 round=$2 server=$3 url=$4 pid=$5 c0 c1 t0 secs out stat wrk_cmd
    shift 5
    out="$LOGS/ocsp-wrk-$layout-$round-$(tr -c 'a-zA-Z0-9\n' '-' <<<"$server" | tr -s '-').txt"
    if [ "$layout" = pinned ]; then
        wrk_cmd=(taskset -c 1 wrk -t1)
    else
        wrk_cmd=(wrk -t2)
    fi
    c0=$(cpu_ticks "$pid")
    t0=$(now)
    env "$@" timeout $((SECS + 30)) "${wrk_cmd[@]}" -c"$CONNS" -d"${SECS}s" --timeout 5s --latency \
        -s "$ROOT/bench/ocsp_random.lua" "$url" >"$out" 2>&1 || true
    secs=$(elapsed "$t0")
    c1=$(cpu_ticks "$pid")
    stat=$(grep '^WRKSTAT' "$out" || true)
    [ -n "$stat" ] || die "wrk printed no figures for $server; see $out"
    f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $stat"; }
    local errs=$(($(f bad) + $(f err_connect) + $(f err_read) + $(f err_write) + $(f err_timeout)))
    local cpu
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v s="$secs" 'BEGIN { printf "%.2f", t / hz / s }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$layout" "$round" "$server" "$(f rps)" "$(f p50_ms)" "$(f p99_ms)" \
        "$errs" "$cpu" >>"$RESULTS"
    log "$layout round $round $server: $(f rps) good answers/s, p50 $(f p50_ms) ms, p99 $(f p99_ms) ms, errors $errs (bad $(f bad)), server cpu $cpu"
}

# ---- peers
PORT_OSSL=18881 PORT_CFSSL=18882 PORT_NGINX=18883
start_openssl() { # LAYOUT -> PEER_PID
    local args=(ocsp -index "$WORK/index.txt" -port "$PORT_OSSL" -CA "$CA"
        -rsigner "$DATA/certs/ocsp/responder.crt" -rkey "$DATA/certs/ocsp/responder.key" -ndays 1 -nrequest 100000000)
    if [ "$1" = pinned ]; then
        taskset -c 0 openssl "${args[@]}" >"$LOGS/ocsp-openssl.log" 2>&1 &
    else
        openssl "${args[@]}" -multi 2 >"$LOGS/ocsp-openssl.log" 2>&1 &
    fi
    PEER_PID=$!
    PIDS+=("$PEER_PID")
    wait_port "$PORT_OSSL" "$PEER_PID" openssl
    sleep 0.3   # -multi: let the responders fork
}
check_ocsp() { # URL NAME: one request, a verified "good" answer
    local line der
    line=$(sed -n "$((RANDOM % NREQ + 1))p" "$FIX/reqs.hex")
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$line" >"$WORK/check.req"
    curl -sf --max-time 10 --data-binary @"$WORK/check.req" -H 'Content-Type: application/ocsp-request' \
        -o "$WORK/check.resp" "$1" || die "$2: POST failed"
    openssl ocsp -reqin "$WORK/check.req" -respin "$WORK/check.resp" -CAfile "$CA" -issuer "$CA" -resp_text \
        >"$WORK/check.txt" 2>&1 || true
    grep -q 'Response verify OK' "$WORK/check.txt" && grep -q 'Cert Status: good' "$WORK/check.txt" ||
        die "$2: not a verified good answer: $(head -c 600 "$WORK/check.txt")"
}
NGINX_PID=""
start_nginx() { # LAYOUT
    local workers=auto pre=()
    [ "$1" = pinned ] && { workers=1; pre=(taskset -c 0); }
    mkdir -p "$WORK/nginx/www" "$WORK/nginx/logs"
    head -c 1024 /dev/urandom >"$WORK/nginx/www/1k.bin"
    cat >"$WORK/nginx/nginx.conf" <<EOF
user root;
worker_processes $workers;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $LOGS/ocsp-nginx.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp-body;
    proxy_temp_path $WORK/nginx/tmp-proxy;
    fastcgi_temp_path $WORK/nginx/tmp-fcgi;
    uwsgi_temp_path $WORK/nginx/tmp-uwsgi;
    scgi_temp_path $WORK/nginx/tmp-scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$PORT_NGINX;
        root $WORK/nginx/www;
        default_type application/octet-stream;
    }
}
EOF
    "${pre[@]}" nginx -e "$LOGS/ocsp-nginx.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >>"$LOGS/ocsp-nginx.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_port "$PORT_NGINX" "$NGINX_PID" nginx
    [ "$(curl -sf "http://127.0.0.1:$PORT_NGINX/1k.bin" | wc -c)" = 1024 ] || die "nginx does not serve the 1 KB file"
}
CFSSL_PID=""
start_cfssl() { # LAYOUT
    local pre=(env GOMAXPROCS="$(nproc)")
    [ "$1" = pinned ] && pre=(taskset -c 0 env GOMAXPROCS=1)
    # loglevel 2 (warnings): at its default it logs a line per request.
    "${pre[@]}" cfssl ocspserve -address 127.0.0.1 -port "$PORT_CFSSL" -responses "$FIX/responses.b64" -loglevel 2 \
        >"$LOGS/ocsp-cfssl.log" 2>&1 &
    CFSSL_PID=$!
    PIDS+=("$CFSSL_PID")
    wait_port "$PORT_CFSSL" "$CFSSL_PID" cfssl 180   # it parses every response of the file first
    check_ocsp "http://127.0.0.1:$PORT_CFSSL/" "cfssl ocspserve"
}

# ---- the run
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
log "machine: $(nproc) cores, $CPU_MODEL; $(uptime | sed 's/.*load/load/'); $N certificates, $NREQ requests"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
OTHERS=$( { pgrep -x cc1plus; pgrep -x ld; pgrep -f build-asan; true; } 2>/dev/null | wc -l)

for layout in unpinned pinned; do
    if [ "$layout" = pinned ]; then
        rounds=$PROUNDS
        CM_EXTRA="--server.threads 1 --server.pool_threads 1" start_certmate "cm-$layout" taskset -c 0
    else
        rounds=$ROUNDS
        CM_EXTRA="" start_certmate "cm-$layout"
    fi
    CM=http://127.0.0.1:$CM_PORT/ocsp
    CMB="" CMB_PID=""
    if [ -n "$BEFORE_BIN" ]; then
        main_pid=$CM_PID main_port=$CM_PORT
        if [ "$layout" = pinned ]; then
            CM_BIN=$BEFORE_BIN CM_DATA=$STORE/data-before CM_EXTRA="--server.threads 1 --server.pool_threads 1" \
                start_certmate "cmb-$layout" taskset -c 0
        else
            CM_BIN=$BEFORE_BIN CM_DATA=$STORE/data-before CM_EXTRA="" start_certmate "cmb-$layout"
        fi
        CMB=http://127.0.0.1:$CM_PORT/ocsp CMB_PID=$CM_PID
        CM_PID=$main_pid CM_PORT=$main_port
        t0=$(now)
        python3 bench/ocsp_fixtures.py collect "$CMB" "$FIX/reqs.hex" "$WORK/responses-before.b64" >/dev/null ||
            die "certmate before did not answer every serial"
        log "certmate before ($layout): all $NREQ serials answered and cached in $(elapsed "$t0") s"
        check_ocsp "$CMB" "certmate before"
    fi
    # Fills certmate's cache (every serial once) and, the first time, cfssl's responses file.
    t0=$(now)
    python3 bench/ocsp_fixtures.py collect "$CM" "$FIX/reqs.hex" "$WORK/responses.b64" >/dev/null ||
        die "certmate did not answer every serial"
    [ -s "$FIX/responses.b64" ] || cp "$WORK/responses.b64" "$FIX/responses.b64"
    log "certmate ($layout): all $NREQ serials answered and cached in $(elapsed "$t0") s"
    check_ocsp "$CM" certmate
    start_nginx "$layout"
    start_cfssl "$layout"
    for ((r = 1; r <= rounds; r++)); do
        # The order turns each round, so no server always runs first or right after another.
        order=(certmate nginx openssl cfssl)
        [ -z "$BEFORE_BIN" ] || order+=(before)
        for ((k = 0; k < (r - 1) % ${#order[@]}; k++)); do order=("${order[@]:1}" "${order[0]}"); done
        for s in "${order[@]}"; do
            case $s in
            certmate) run_wrk "$layout" "$r" certmate "$CM" "$CM_PID" OCSP_REQS="$FIX/reqs.hex" ;;
            before) run_wrk "$layout" "$r" "certmate before" "$CMB" "$CMB_PID" OCSP_REQS="$FIX/reqs.hex" ;;
            nginx) run_wrk "$layout" "$r" "nginx 1 KB" "http://127.0.0.1:$PORT_NGINX/1k.bin" "$NGINX_PID" STATIC_LEN=1024 ;;
            cfssl) run_wrk "$layout" "$r" "cfssl ocspserve" "http://127.0.0.1:$PORT_CFSSL/" "$CFSSL_PID" OCSP_REQS="$FIX/reqs.hex" ;;
            openssl)
                # A fresh responder per phase: wrk's dropped connections at its end wedge it (bench/ocsp.lua).
                start_openssl "$layout"
                check_ocsp "http://127.0.0.1:$PORT_OSSL/" "openssl ocsp"
                name="openssl ocsp -multi 2"
                [ "$layout" = pinned ] && name="openssl ocsp"
                run_wrk "$layout" "$r" "$name" "http://127.0.0.1:$PORT_OSSL/" "$PEER_PID" OCSP_REQS="$FIX/reqs.hex"
                stop_pid "$PEER_PID"
                ;;
            esac
        done
    done
    stop_pid "$NGINX_PID"
    stop_pid "$CFSSL_PID"
    stop_pid "$CM_PID"
    [ -z "$CMB_PID" ] || stop_pid "$CMB_PID"
done
[ -z "$BEFORE_BIN" ] || rm -rf "$STORE/data-before"

# ---- the table
{
    echo
    echo "OCSP at $N certificates, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "machine: $(nproc) cores, $CPU_MODEL; load before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg); compiler processes at start: $OTHERS; waited ${BENCH_WAITED:-0}s"
    echo "wrk: $CONNS connections, ${SECS}s per phase, random serials, keep-alive; req/s counts checked answers only"
    echo "cpu: cores the server used during the phase; req/cpu-s: answers per second of server CPU (steadier than req/s on a shared machine)"
    echo
    awk -F'\t' '
        { k = $1 "\t" $2; rps[k, $3] = $4; keys[k] = 1; rows[++n] = $0 }
        END {
            printf "%-9s %-5s %-22s %9s %8s %8s %6s %6s %10s   %s\n", "layout", "round", "server", "req/s", "p50 ms", "p99 ms", "errors", "cpu", "req/cpu-s", "certmate ÷ this"
            for (i = 1; i <= n; i++) {
                split(rows[i], f, "\t"); k = f[1] "\t" f[2]
                cm = rps[k, "certmate"]
                r = (f[3] == "certmate" || f[4] == 0) ? "" : sprintf("%.2f×", cm / f[4])
                pc = (f[8] > 0) ? sprintf("%.0f", f[4] / f[8]) : "-"
                printf "%-9s %-5s %-22s %9s %8s %8s %6s %6s %10s   %s\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], pc, r
            }
            print ""
            print "targets (issue 15): pinned certmate ≥ 0.8× nginx; unpinned certmate ≥ 2× cfssl and ≥ 3× openssl ocsp -multi 2 in every round; certmate p99 ≤ 5 ms"
            for (i = 1; i <= n; i++) {
                split(rows[i], f, "\t"); k = f[1] "\t" f[2]; cm = rps[k, "certmate"]
                if (f[3] == "certmate") { printf "  %s round %s: certmate p99 %s ms %s\n", f[1], f[2], f[6], (f[6] <= 5 ? "met" : "NOT met") ; continue }
                if (f[1] == "pinned" && f[3] ~ /^nginx/) t = 0.8
                else if (f[1] == "unpinned" && f[3] ~ /^cfssl/) t = 2
                else if (f[1] == "unpinned" && f[3] ~ /^openssl/) t = 3
                else continue
                printf "  %s round %s: certmate ÷ %s = %.2f (target ≥ %s) %s\n", f[1], f[2], f[3], cm / f[4], t, (cm / f[4] >= t ? "met" : "NOT met")
            }
        }' "$RESULTS"
} | tee "$LOGS/ocsp-table.txt"
