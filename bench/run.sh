#!/usr/bin/env bash
# CertMate benchmarks, all on 127.0.0.1; prints a table of figures (BENCHMARKS.md records them).
#
#   bash bench/run.sh
#
# 1. Installs what is missing (wrk, the build dependencies) and builds a Release tree in build-bench/.
# 2. Waits while a compiler or the CI's ASan build runs on the machine (polls every 60 s, at most
#    BENCH_WAIT_MAX seconds), so the figures are not distorted by a build sharing the cores.
# 3. Runs the measurements in a private network namespace whose only interface is loopback:
#    `openssl ocsp` (the peer) binds [::]:PORT and has no option to bind 127.0.0.1; inside the
#    namespace there is nothing but loopback to be reached. Without root/unshare the peer is skipped.
#
# Phases, each bounded in time (load phases BENCH_SECS seconds, batches of creates 180 s) and count:
#   issuance  BENCH_ISSUE creates (ec-p256) through POST /api/client-certs, BENCH_PAR in parallel,
#             next to the same number of `openssl req | openssl x509 -req` runs, BENCH_PAR in parallel
#   ocsp      wrk against certmate (POST, GET, nonce, new connection per request) and against
#             `openssl ocsp -index` (one process and -multi 2) answering for the same certificates
#   memory    VmRSS of certmate empty, after BENCH_MEM_CERTS ed25519 creates, and after a restart
#
# Knobs (environment): BENCH_SECS=10 BENCH_THREADS=2 BENCH_CONNS=32 BENCH_ISSUE=200 BENCH_PAR=8
# BENCH_MEM_CERTS=5000 BENCH_WAIT_MAX=1200; CERTMATE_BIN=path skips the build.
# Raw outputs (wrk, server logs) are kept in build-bench/bench-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${BENCH_SECS:-10}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}
ISSUE_N=${BENCH_ISSUE:-200}
PAR=${BENCH_PAR:-8}
MEM_N=${BENCH_MEM_CERTS:-5000}
WAIT_MAX=${BENCH_WAIT_MAX:-1200}

BENCH_TAG="bench"
# shellcheck source=bench/common.sh
. bench/common.sh

# ---------------------------------------------------------------- outside: install, build, wait
if [ "${CERTMATE_BENCH_INNER:-}" != 1 ]; then
    bench_install wrk curl openssl iproute2 util-linux procps
    bench_build
    bench_wait_quiet "$WAIT_MAX"

    export CERTMATE_BENCH_INNER=1
    if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
        exec unshare -n bash "$0" "$@"
    fi
    log "no private network namespace (needs root and unshare -n): the openssl ocsp peer is skipped"
    export CERTMATE_BENCH_NO_NETNS=1
    exec bash "$0" "$@"
fi

# ---------------------------------------------------------------- inside: measure
BIN=$CERTMATE_BIN
if [ -z "${CERTMATE_BENCH_NO_NETNS:-}" ]; then
    ip link set lo up
fi

WORK=$(mktemp -d /tmp/certmate-bench.XXXXXX)
LOGS=$ROOT/build-bench/bench-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
RESULTS=$WORK/results.tsv
PIDS=()
HZ=$(getconf CLK_TCK)

cleanup() {
    local p c kids
    for p in "${PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || continue
        kids=$(pgrep -P "$p" || true)   # openssl ocsp -multi: the parent first, or it respawns them
        kill "$p" 2>/dev/null || true
        for c in $kids; do kill "$c" 2>/dev/null || true; done
    done
    sleep 0.5
    for p in "${PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }'; }

row() { # benchmark server value unit p50 p99 errors cpu notes
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

# CPU ticks (user+system) of a process and its children (openssl ocsp -multi forks responders).
cpu_ticks() {
    local total=0 p t
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
# Cores busy on the whole machine over SECONDS (from /proc/stat).
machine_busy() { # SECONDS
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" -v hz="$HZ" -v s="$1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", (y[1] - x[1]) / hz / s }'
}
# Names of other heavy work running on the machine now (a compiler, a linker, a test suite).
foreign_work() {
    { local n
      for n in cc1plus ctest ld collect2; do pgrep -x -l "$n" || true; done
      pgrep -f '(^|/)test_[a-z_]+( |$)' -l || true
      pgrep -f 'build-asan' -l || true; } | awk '{ print $2 }' | sort -u | tr '\n' ' '
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# ---- certmate
CM_PID="" CM_PORT="" CM_READY_SECS=""
start_certmate() { # DATA_DIR NAME
    local dir=$1 name=$2 t0 i
    t0=$(now)
    # stdout holds the admin token: it stays in $WORK (removed at exit).
    "$BIN" serve --data-dir "$dir" --listen 127.0.0.1:0 \
        --ca.key_type ec-p384 --issuance.default_key_type ec-p256 \
        --rate_limit.default 0 --rate_limit.create 0 --rate_limit.batch 0 \
        --rate_limit.ocsp 0 --rate_limit.crl 0 \
        >"$WORK/$name.out" 2>"$LOGS/$name.err" &
    CM_PID=$!
    PIDS+=("$CM_PID")
    CM_PORT=""
    for i in $(seq 1 1200); do   # 60 s at most
        CM_PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$WORK/$name.out" | head -1)
        [ -n "$CM_PORT" ] && break
        kill -0 "$CM_PID" 2>/dev/null || die "certmate exited at start; see $LOGS/$name.err"
        sleep 0.05
    done
    [ -n "$CM_PORT" ] || die "certmate did not report its port"
    CM_READY_SECS=$(elapsed "$t0")
    printf 'Authorization: Bearer %s\nContent-Type: application/json\n' "$(cat "$dir/admin.token")" >"$WORK/auth.hdr"
    log "certmate pid $CM_PID on 127.0.0.1:$CM_PORT (ready after ${CM_READY_SECS}s)"
}
stop_certmate() {
    local i
    kill -TERM "$CM_PID" 2>/dev/null || true
    for i in $(seq 1 300); do
        kill -0 "$CM_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$CM_PID" 2>/dev/null && kill -9 "$CM_PID" 2>/dev/null || true
    wait "$CM_PID" 2>/dev/null || true
}

# N creates through the API with one curl process running PAR transfers at once.
# Prints "<created> <seconds>".
create_certs() { # PREFIX N KEY_TYPE PARALLEL
    local prefix=$1 n=$2 kt=$3 par=$4 cfg=$WORK/create-$1.cfg i t0 ok
    {
        for ((i = 1; i <= n; i++)); do
            [ "$i" -gt 1 ] && echo next
            printf 'url = "http://127.0.0.1:%s/api/client-certs"\nheader = "@%s"\nmax-time = 60\n' "$CM_PORT" "$WORK/auth.hdr"
            printf 'data = "{\\"common_name\\":\\"%s-%d\\",\\"identifier\\":\\"%s-%d\\",\\"key_type\\":\\"%s\\"}"\n' \
                "$prefix" "$i" "$prefix" "$i" "$kt"
            printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'
        done
    } >"$cfg"
    t0=$(now)
    timeout 180 curl -s --no-progress-meter -Z --parallel-max "$par" -K "$cfg" >"$WORK/create-$prefix.codes" 2>>"$LOGS/curl.err" || true
    local secs
    secs=$(elapsed "$t0")
    ok=$(grep -c '^201$' "$WORK/create-$prefix.codes" || true)
    echo "$ok $secs"
}

# ---- OCSP helpers
post_ocsp() { # URL REQ OUT
    curl -sf --max-time 10 --data-binary @"$2" -H 'Content-Type: application/ocsp-request' -o "$3" "$1"
}
get_ocsp() { curl -sf --max-time 10 -o "$2" "$1"; }
# The response verifies against our CA (signed by the delegated responder) and says "good".
verify_good() { # RESP CERT LABEL
    local out
    out=$(openssl ocsp -respin "$1" -issuer "$CA" -CAfile "$CA" -cert "$2" -no_nonce 2>&1) || true
    echo "== $3" >>"$LOGS/verify.txt"
    echo "$out" >>"$LOGS/verify.txt"
    grep -q 'Response verify OK' <<<"$out" && grep -q ': good' <<<"$out" || die "$3: not a valid 'good' response: $out"
}
has_nonce() { openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null | grep -q 'OCSP Nonce'; }

# One wrk load phase; adds a table row. Extra arguments are environment for the Lua script.
run_wrk() { # LABEL SERVER NOTES URL PID [VAR=VALUE...]
    local label=$1 server=$2 notes=$3 url=$4 pid=$5 c0 c1 t0 secs stat
    shift 5
    c0=$(cpu_ticks "$pid")
    t0=$(now)
    # Watch for other work on the machine while wrk runs (the cores are shared with CI builds).
    ( while sleep 1; do foreign_work; echo; done ) >"$WORK/foreign.txt" 2>/dev/null &
    local watcher=$!
    PIDS+=("$watcher")
    local out
    out="$LOGS/wrk-$(tr -c 'a-zA-Z0-9\n' '-' <<<"$server $label" | tr -s '-').txt"
    env "$@" timeout $((SECS + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --timeout 5s --latency \
        -s "$ROOT/bench/ocsp.lua" "$url" >"$out" 2>&1 || true
    secs=$(elapsed "$t0")
    c1=$(cpu_ticks "$pid")
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    local foreign
    foreign=$(tr ' ' '\n' <"$WORK/foreign.txt" | grep -v '^$' | sort -u | tr '\n' ' ' || true)
    [ -z "$foreign" ] || notes="$notes; DISTURBED by: $foreign"
    stat=$(grep '^WRKSTAT' "$out" || true)
    [ -n "$stat" ] || die "wrk $label printed no figures; see $out"
    f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $stat"; }
    local errs
    errs=$(( $(f err_connect) + $(f err_read) + $(f err_write) + $(f err_timeout) + $(f non2xx) ))
    # Bytes read per answer (headers included): an OCSP error answer is 5 bytes of DER, a signed
    # one ~800, and both come with HTTP 200, so this tells that the load got real answers.
    local per
    per=$(awk '/requests in .* read$/ { t = $(NF - 1); v = t + 0; u = t; sub(/^[0-9.]+/, "", u)
            m = (u == "GB") ? 1073741824 : (u == "MB") ? 1048576 : (u == "KB") ? 1024 : 1
            if ($1 > 0) printf "%.0f", v * m / $1 }' "$out")
    notes="$notes; ${per:-?} B read per answer"
    local cpu
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v s="$secs" 'BEGIN { printf "%.2f", t / hz / s }')
    row "ocsp: $label" "$server" "$(f rps)" "req/s" "$(f p50_ms)" "$(f p99_ms)" \
        "$errs (c$(f err_connect)/r$(f err_read)/w$(f err_write)/t$(f err_timeout)/s$(f non2xx))" "$cpu" "$notes"
    log "$label ($server): $(f rps) req/s, p50 $(f p50_ms) ms, p99 $(f p99_ms) ms, errors $errs, server cpu $cpu cores"
}

# ---- the openssl ocsp peer
PEER_PORT=18888 PEER_PID=""
start_peer() { # NAME PROCESSES
    local args=(ocsp -index "$WORK/index.txt" -port "$PEER_PORT" -CA "$CA"
        -rsigner "$DATA/certs/ocsp/responder.crt" -rkey "$DATA/certs/ocsp/responder.key"
        -ndays 1 -nrequest 5000000) i
    [ "$2" -gt 1 ] && args+=(-multi "$2")
    openssl "${args[@]}" >"$LOGS/$1.log" 2>&1 &
    PEER_PID=$!
    PIDS+=("$PEER_PID")
    for i in $(seq 1 100); do
        ss -ltnH "sport = :$PEER_PORT" | grep -q . && break
        kill -0 "$PEER_PID" 2>/dev/null || die "openssl ocsp exited; see $LOGS/$1.log"
        sleep 0.05
    done
    sleep 0.3   # -multi: let the responders fork
}
stop_peer() {
    local c kids
    kids=$(pgrep -P "$PEER_PID" || true)
    kill "$PEER_PID" 2>/dev/null || true
    for c in $kids; do kill "$c" 2>/dev/null || true; done
    wait "$PEER_PID" 2>/dev/null || true
    for c in $(seq 1 50); do ss -ltnH "sport = :$PEER_PORT" | grep -q . || break; sleep 0.1; done
}

# ================================================================= run
: >"$RESULTS"
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
log "machine: $(nproc) cores, $CPU_MODEL; $(uptime | sed 's/.*load/load/')"
log "certmate: $BIN ($("$BIN" version 2>/dev/null | head -1)); $(openssl version); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_BEFORE=$(machine_busy 3)
FOREIGN_BEFORE=$(foreign_work)
log "machine busy over 3 s before measuring: $BUSY_BEFORE cores; other work: ${FOREIGN_BEFORE:-none}"

# ---- server A: issuance, then OCSP over its certificates
DATA=$WORK/data-a
start_certmate "$DATA" certmate-a
CA=$DATA/certs/ca/ca.crt

log "issuance: $ISSUE_N ec-p256 creates, $PAR in parallel"
read -r ok secs < <(create_certs iss "$ISSUE_N" ec-p256 "$PAR")
[ "$ok" -eq "$ISSUE_N" ] || die "only $ok of $ISSUE_N creates answered 201 (codes: $WORK/create-iss.codes)"
row "issuance: POST /api/client-certs ec-p256, $PAR parallel" certmate "$(ratio "$ok" "$secs")" "certs/s" \
    "-" "-" "0" "-" "$ok in ${secs}s; key generated server-side, files fsynced, audit entry"
log "issuance: $ok in ${secs}s"

SEQ_N=$(( ISSUE_N / 4 ))
read -r ok secs < <(create_certs seq "$SEQ_N" ec-p256 1)
[ "$ok" -eq "$SEQ_N" ] || die "only $ok of $SEQ_N sequential creates answered 201"
row "issuance: POST /api/client-certs ec-p256, sequential" certmate "$(ratio "$ok" "$secs")" "certs/s" \
    "-" "-" "0" "-" "$ok in ${secs}s, mean $(awk -v s="$secs" -v n="$ok" 'BEGIN { printf "%.1f", s * 1000 / n }') ms per create"

log "issuance: $ISSUE_N openssl req | openssl x509 -req runs, $PAR in parallel"
mkdir -p "$WORK/ossl"
t0=$(now)
seq 1 "$ISSUE_N" | timeout 300 xargs -P "$PAR" -I{} sh -c \
    'openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout "$1/$2.key" -subj "/CN=ossl-$2" 2>/dev/null |
     openssl x509 -req -CA "$3" -CAkey "$4" -days 365 -sha384 -out "$1/$2.crt" 2>/dev/null' \
    _ "$WORK/ossl" {} "$CA" "$DATA/certs/ca/ca.key" || true
secs=$(elapsed "$t0")
ok=$(find "$WORK/ossl" -name '*.crt' -size +0 | wc -l)
openssl verify -CAfile "$CA" "$WORK/ossl/1.crt" >/dev/null || die "openssl-issued certificate does not verify"
row "issuance: openssl req | openssl x509 -req, ec-p256, $PAR parallel" "openssl CLI" "$(ratio "$ok" "$secs")" "certs/s" \
    "-" "-" "$((ISSUE_N - ok))" "-" "$ok in ${secs}s; 2 processes per cert, no fsync, no index"
log "openssl CLI: $ok in ${secs}s"

# -- OCSP: requests for one of our certificates
CERT=$(find "$DATA/certs/client" -path '*/iss-1/cert.crt' | head -1)
[ -f "$CERT" ] || die "no certificate iss-1 in $DATA"
openssl ocsp -issuer "$CA" -cert "$CERT" -no_nonce -reqout "$WORK/req.der" >/dev/null
openssl ocsp -issuer "$CA" -cert "$CERT" -reqout "$WORK/req-nonce.der" >/dev/null
B64=$(base64 -w0 "$WORK/req.der" | sed 's/+/%2B/g; s#/#%2F#g; s/=/%3D/g')
CM=http://127.0.0.1:$CM_PORT

log "ocsp: checking certmate's answers"
post_ocsp "$CM/ocsp" "$WORK/req.der" "$WORK/cm-post1.der" && post_ocsp "$CM/ocsp" "$WORK/req.der" "$WORK/cm-post2.der" ||
    die "POST /ocsp failed"
verify_good "$WORK/cm-post1.der" "$CERT" "certmate POST no nonce"
cmp -s "$WORK/cm-post1.der" "$WORK/cm-post2.der" && CM_CACHED="same bytes twice (cached)" || CM_CACHED="re-signed each time"
get_ocsp "$CM/ocsp/$B64" "$WORK/cm-get.der" || die "GET /ocsp failed"
verify_good "$WORK/cm-get.der" "$CERT" "certmate GET"
post_ocsp "$CM/ocsp" "$WORK/req-nonce.der" "$WORK/cm-nonce1.der" && post_ocsp "$CM/ocsp" "$WORK/req-nonce.der" "$WORK/cm-nonce2.der" ||
    die "POST /ocsp with nonce failed"
verify_good "$WORK/cm-nonce1.der" "$CERT" "certmate POST nonce"
has_nonce "$WORK/cm-nonce1.der" || die "certmate's nonce response carries no nonce"
cmp -s "$WORK/cm-nonce1.der" "$WORK/cm-nonce2.der" && die "certmate's nonce responses are identical (not re-signed)"
CM_RESP_BYTES=$(stat -c %s "$WORK/cm-post1.der")
# A client that connects and closes without sending (a port probe) must not stall the server.
exec 3<>"/dev/tcp/127.0.0.1/$CM_PORT" && exec 3<&-
post_ocsp "$CM/ocsp" "$WORK/req.der" "$WORK/cm-post3.der" || die "certmate stalls after an empty connection"

run_wrk "POST no nonce" certmate "keep-alive; $CM_CACHED; ${CM_RESP_BYTES} B" "$CM/ocsp" "$CM_PID" OCSP_REQ="$WORK/req.der"
run_wrk "GET no nonce" certmate "keep-alive; cache headers" "$CM/ocsp/$B64" "$CM_PID"
run_wrk "POST nonce" certmate "keep-alive; signed per request (ECDSA P-256)" "$CM/ocsp" "$CM_PID" OCSP_REQ="$WORK/req-nonce.der"
run_wrk "POST no nonce, Connection: close" certmate "new TCP connection per request" "$CM/ocsp" "$CM_PID" \
    OCSP_REQ="$WORK/req.der" WRK_CLOSE=1
run_wrk "POST nonce, Connection: close" certmate "new TCP connection per request; signed per request" "$CM/ocsp" "$CM_PID" \
    OCSP_REQ="$WORK/req-nonce.der" WRK_CLOSE=1

# Every answer certmate gave under load, by OCSP status, from its own counters.
METRICS=$(curl -sf --max-time 10 -H @"$WORK/auth.hdr" "$CM/metrics" || true)
ocsp_counts=$(awk -F'[{}"= ]+' '/^certmate_ocsp_responses_total\{/ && $NF > 0 { printf "%s%s=%s", sep, $3, $NF; sep = " " }' <<<"$METRICS")
cache_counts=$(awk -F'[{}"= ]+' '/^certmate_ocsp_cache_total\{/ { printf "%s%s=%s", sep, $3, $NF; sep = " " }' <<<"$METRICS")
row "ocsp: answers by status over all certmate phases" certmate "-" "-" "-" "-" "-" "-" \
    "/metrics: ${ocsp_counts:-unavailable}; cache ${cache_counts:-unavailable}"
log "certmate OCSP answers: ${ocsp_counts:-?}; cache: ${cache_counts:-?}"

# -- the peer: OpenSSL's own responder over the same certificates, CA and responder key
if [ -z "${CERTMATE_BENCH_NO_NETNS:-}" ]; then
    log "ocsp: building index.txt for openssl ocsp"
    : >"$WORK/index.txt"
    while IFS= read -r c; do
        serial=$(openssl x509 -in "$c" -noout -serial | cut -d= -f2)
        end=$(openssl x509 -in "$c" -noout -enddate | cut -d= -f2)
        subj=$(openssl x509 -in "$c" -noout -subject -nameopt compat | sed 's/^subject=//')
        printf 'V\t%s\t\t%s\tunknown\t%s\n' "$(date -u -d "$end" +%y%m%d%H%M%SZ)" "$serial" "$subj" >>"$WORK/index.txt"
    done < <(find "$DATA/certs/client" -name cert.crt | sort)
    log "index.txt: $(wc -l <"$WORK/index.txt") certificates"
    PEER=http://127.0.0.1:$PEER_PORT

    # One responder per phase: when wrk stops it drops connections it has just opened and not
    # written to yet, and such a connection wedges openssl ocsp for good (see bench/ocsp.lua).
    peer_phase() { # PROCESSES LABEL NOTES URL [VAR=VALUE...]
        local procs=$1 label=$2 notes=$3 url=$4 name="openssl ocsp"
        shift 4
        [ "$procs" -gt 1 ] && name="openssl ocsp -multi $procs"
        start_peer "peer-$procs-$(tr -c 'a-zA-Z0-9\n' '-' <<<"$label" | tr -s '-')" "$procs"
        post_ocsp "$PEER/ocsp" "$WORK/req.der" "$WORK/peer-post.der" || die "$name: POST failed"
        verify_good "$WORK/peer-post.der" "$CERT" "$name POST no nonce"
        PEER_RESP_BYTES=$(stat -c %s "$WORK/peer-post.der")
        post_ocsp "$PEER/ocsp" "$WORK/req-nonce.der" "$WORK/peer-nonce.der" || die "$name: POST nonce failed"
        verify_good "$WORK/peer-nonce.der" "$CERT" "$name POST nonce"
        has_nonce "$WORK/peer-nonce.der" || die "$name: nonce response carries no nonce"
        # openssl ocsp decodes GET paths from the root: /<base64>, not /ocsp/<base64>.
        get_ocsp "$PEER/$B64" "$WORK/peer-get.der" || die "$name: GET failed"
        verify_good "$WORK/peer-get.der" "$CERT" "$name GET"
        run_wrk "$label" "$name" "$notes; ${PEER_RESP_BYTES} B" "$url" "$PEER_PID" "$@"
        stop_peer
    }
    CLOSES="closes every connection (HTTP/1.0); signs every request"
    peer_phase 1 "POST no nonce" "$CLOSES" "$PEER/ocsp" OCSP_REQ="$WORK/req.der"
    peer_phase 1 "GET no nonce" "$CLOSES" "$PEER/$B64"
    peer_phase 1 "POST nonce" "$CLOSES" "$PEER/ocsp" OCSP_REQ="$WORK/req-nonce.der"
    peer_phase 2 "POST no nonce" "$CLOSES; 2 forked responders" "$PEER/ocsp" OCSP_REQ="$WORK/req.der"
    peer_phase 2 "POST nonce" "$CLOSES; 2 forked responders" "$PEER/ocsp" OCSP_REQ="$WORK/req-nonce.der"
fi
stop_certmate

# ---- server B: memory
log "memory: certmate with an empty store"
DATA=$WORK/data-b
start_certmate "$DATA" certmate-b
sleep 1
row "memory: VmRSS after start, empty store" certmate "$(( $(status_kb "$CM_PID" VmRSS) / 1024 ))" "MiB" "-" "-" "-" "-" \
    "ready ${CM_READY_SECS}s after launch (includes CA creation)"

log "memory: $MEM_N ed25519 creates, $PAR in parallel (bounded to 180 s)"
read -r ok secs < <(create_certs mem "$MEM_N" ed25519 "$PAR")
[ "$ok" -gt 0 ] || die "no certificate created for the memory phase"
sleep 1
row "memory: VmRSS after $ok creates (ed25519)" certmate "$(( $(status_kb "$CM_PID" VmRSS) / 1024 ))" "MiB" "-" "-" "-" "-" \
    "peak VmHWM $(( $(status_kb "$CM_PID" VmHWM) / 1024 )) MiB"
row "issuance: POST /api/client-certs ed25519, $PAR parallel" certmate "$(ratio "$ok" "$secs")" "certs/s" "-" "-" \
    "$((MEM_N - ok))" "-" "$ok in ${secs}s, store growing to $ok"
stop_certmate

log "memory: restart on the $ok-certificate store"
start_certmate "$DATA" certmate-b2
sleep 1
row "memory: VmRSS after restart, $ok certificates loaded" certmate "$(( $(status_kb "$CM_PID" VmRSS) / 1024 ))" "MiB" \
    "-" "-" "-" "-" "ready ${CM_READY_SECS}s after launch (index built at start); data dir $(du -sh "$DATA" | cut -f1)"
stop_certmate

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table
{
    echo
    echo "CertMate benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "machine: $(nproc) cores, $CPU_MODEL, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "load average before: $LOAD_BEFORE (includes the build just made), after: $LOAD_AFTER; waited ${BENCH_WAITED:-0}s for builds to finish"
    echo "cores busy over 3 s before measuring: $BUSY_BEFORE; other work then: ${FOREIGN_BEFORE:-none}; a row marked DISTURBED had a build or test running beside it"
    echo "wrk: $THREADS threads, $CONNS connections, ${SECS}s per phase; everything on 127.0.0.1 (same 2 cores as the servers)"
    echo "server cpu = cores used by the server process(es) during the phase"
    echo
    {
        printf 'benchmark\tserver\tvalue\tunit\tp50 ms\tp99 ms\terrors\tserver cpu\tnotes\n'
        cat "$RESULTS"
    } | column -t -s $'\t'
} | tee "$LOGS/table.txt"
