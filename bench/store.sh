#!/usr/bin/env bash
# The store at the seed's scale (issue 15, docs/api.md "Listing certificates"), on 127.0.0.1:
#
#   bash bench/store.sh
#
# Fills BENCH_STORE_N (30,000) certificates on the default RSA-4096 CA (one batch job of
# server-generated ed25519 keys; a tenth (numbers ending in 1) then revoked), keeps the data directory in
# BENCH_STORE_DIR (build-bench/store-30000) so later runs skip the fill, and measures:
#   start-up  exec to the first /health 200: cold (after `echo 3 > /proc/sys/vm/drop_caches`, when
#             permitted; otherwise "warm only") and warm (median of 3)
#   list      wrk -t2 -c16 for BENCH_SECS (10) s per row: first page, deep offset, cursor page,
#             filtered and sorted, search for one CN, search matching everything, stats;
#             every answer must be 200 (bench/status200.lua counts the others as errors), and one
#             answer per row is checked for content with jq before the load
#             with the server's CPU time (user + system, /proc/PID/stat) per answer, which other
#             work on the machine does not inflate the way it inflates latency
#   memory    VmRSS idle after start-up, and after the list load
# Knobs: BENCH_STORE_N=30000 BENCH_STORE_DIR=dir BENCH_SECS=10 BENCH_JOB_WAIT=1800;
# BENCH_PIN=1 runs the server on core 0 with one io thread and one pool thread and wrk -t1 on
# core 1 (taskset; as bench/ocsp.sh's pinned layout), so the two do not take each other's core;
# CERTMATE_BIN=path skips the build. Logs stay in build-bench/bench-logs/store-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_STORE_N:-30000}
SECS=${BENCH_SECS:-10}
JOB_WAIT=${BENCH_JOB_WAIT:-1800}
STORE=${BENCH_STORE_DIR:-$ROOT/build-bench/store-$N}
PIN=${BENCH_PIN:-0}
SERVER_PRE=() SERVER_ARGS=() WRK=(wrk -t2)
if [ "$PIN" = 1 ]; then
    SERVER_PRE=(taskset -c 0) SERVER_ARGS=(--server.threads 1 --server.pool_threads 1) WRK=(taskset -c 1 wrk -t1)
fi
BENCH_TAG="store"
# shellcheck source=bench/common.sh
. bench/common.sh

bench_install wrk curl jq procps
bench_build
LOGS=$ROOT/build-bench/bench-logs
mkdir -p "$LOGS" "$(dirname "$STORE")"
WORK=$(mktemp -d /tmp/certmate-store.XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

ms_now() { date +%s%N | cut -b1-13; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$PID/status"; }

# Starts certmate on the store; sets PID, URL, AUTH; sets STARTUP_MS (exec to /health 200).
start() {
    local t0 code=""
    : >"$WORK/serve.out"
    t0=$(ms_now)
    "${SERVER_PRE[@]}" "$CERTMATE_BIN" serve --data-dir "$STORE" --listen 127.0.0.1:0 --rate_limit.default 0 \
        --rate_limit.create 0 --rate_limit.batch 0 --rate_limit.ocsp 0 --rate_limit.crl 0 "${SERVER_ARGS[@]}" \
        >"$WORK/serve.out" 2>>"$LOGS/store-serve.err" &
    PID=$!
    local port=""
    for _ in $(seq 1 30000); do # 5 ms steps, at most about 3 minutes
        [ -n "$port" ] || port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$WORK/serve.out" | head -1)
        if [ -n "$port" ]; then
            code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
            [ "$code" = 200 ] && break
        fi
        kill -0 "$PID" 2>/dev/null || die "certmate exited (see $LOGS/store-serve.err)"
        sleep 0.005
    done
    [ "$code" = 200 ] || die "no /health 200 (see $LOGS/store-serve.err)"
    STARTUP_MS=$(($(ms_now) - t0))
    URL=http://127.0.0.1:$port
    TOKEN=$(cat "$STORE/admin.token")
    AUTH="Authorization: Bearer $TOKEN"
}
stop() {
    kill "$PID" && wait "$PID" 2>/dev/null || true
    PID=""
}
wait_job() { # JOB_ID: waits for its end, prints the job document
    local doc state
    for _ in $(seq 1 $((JOB_WAIT * 2))); do
        doc=$(curl -sf -H "$AUTH" "$URL/api/jobs/$1?errors_limit=0")
        state=$(jq -r .state <<<"$doc")
        [ "$state" = queued ] || [ "$state" = running ] || break
        sleep 0.5
    done
    echo "$doc"
}

# ---------------------------------------------------------------- fill (cached)
if [ ! -e "$STORE/.bench-filled-$N" ]; then
    log "filling $STORE with $N certificates (RSA-4096 CA, ed25519 keys, one batch job)"
    rm -rf "$STORE"
    start
    usages=(api-mtls vpn other)
    {
        echo "identifier,common_name,cert_usage,key_type,validity_days"
        for i in $(seq 1 "$N"); do
            printf 's-%05d,user-%05d.store.test,%s,ed25519,%d\n' "$i" "$i" "${usages[$((i % 3))]}" $((30 + (i * 37) % 790))
        done
    } >"$WORK/fill.csv"
    t0=$(ms_now)
    curl -sS -o "$WORK/batch.json" -H "$AUTH" -H 'Content-Type: text/csv' --data-binary @"$WORK/fill.csv" \
        "$URL/api/client-certs/batch" || die "the batch was not sent"
    id=$(jq -r '.id // empty' "$WORK/batch.json")
    [ -n "$id" ] || die "the batch was refused: $(head -c 500 "$WORK/batch.json")"
    doc=$(wait_job "$id")
    [ "$(jq -r .succeeded <<<"$doc")" = "$N" ] || die "fill: $(jq -c '{state,succeeded,failed}' <<<"$doc")"
    log "filled in $(( ($(ms_now) - t0) / 1000 )) s; revoking the tenth ending in 1"
    id=$(curl -sf -H "$AUTH" -H 'Content-Type: application/json' \
        -d '{"filter":{"search":"1.store.test"},"reason":"cessationOfOperation"}' "$URL/api/client-certs/batch/revoke" |
        jq -r .id) || die "the revoke batch was refused"
    doc=$(wait_job "$id")
    [ "$(jq -r .state <<<"$doc")" = succeeded ] || die "revoke: $(jq -c '{state,succeeded,failed}' <<<"$doc")"
    stop
    touch "$STORE/.bench-filled-$N"
fi

# ---------------------------------------------------------------- start-up
COLD="warm only"
if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    start
    COLD="$STARTUP_MS ms"
    stop
fi
warm=()
for _ in 1 2 3; do
    start
    warm+=("$STARTUP_MS")
    [ ${#warm[@]} -lt 3 ] && stop
done
WARM=$(printf '%s\n' "${warm[@]}" | sort -n | sed -n 2p)
sleep 2
RSS_IDLE=$(rss_mib)
COUNT=$(curl -sf -H "$AUTH" "$URL/api/client-certs/stats" | jq .total)
[ "$COUNT" -ge "$N" ] || die "the store holds $COUNT certificates, not $N"
log "certmate pid $PID at $URL: $COUNT certificates; start-up cold $COLD, warm ${warm[*]} ms; load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- list load
ROWS=()
# LABEL PATH JQ_CHECK: one answer checked with jq (must print true), then wrk on it.
measure() {
    local label=$1 path=$2 check=$3 body out stat
    body=$(curl -sf -H "$AUTH" "$URL$path") || die "$label: $path is not 200"
    [ "$(jq "$check" <<<"$body")" = true ] || die "$label: $path fails $check"
    out="$LOGS/store-wrk-$(tr -c 'a-zA-Z0-9\n' '-' <<<"$label" | tr -s '-').txt"
    local c0
    c0=$(cpu_ticks)
    AUTH_TOKEN=$TOKEN timeout $((SECS + 30)) "${WRK[@]}" -c16 -d"${SECS}s" --timeout 5s --latency \
        -s "$ROOT/bench/status200.lua" "$URL$path" >"$out" 2>&1 || true
    stat=$(grep '^WRKSTAT' "$out" || true)
    [ -n "$stat" ] || die "wrk $label printed no figures; see $out"
    eval "$(sed 's/^WRKSTAT //' <<<"$stat")"
    # The server's CPU per answer (user + system): what the request costs, whatever else runs.
    local cpu_us
    cpu_us=$(awk -v t="$(($(cpu_ticks) - c0))" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
        'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-" }')
    ROWS+=("$(printf '| %-42s | %7s | %7s | %7s | %7s | %6s |' "$label" "$p50_ms" "$p99_ms" "$rps" "$cpu_us" "$((errors + non200))")")
    log "$label: p50 $p50_ms ms, p99 $p99_ms ms, $rps req/s, server CPU $cpu_us us/request, errors $errors, non-200 $non200"
}
HALF=$((N / 2))
CUR=$(curl -sf -H "$AUTH" "$URL/api/client-certs?limit=50&offset=$((HALF - 50))" | jq -r '.next_cursor // empty')
[ -n "$CUR" ] || log "no next_cursor at offset $((HALF - 50)) (a server without cursors): no cursor row"
CN=$(printf 'user-%05d.store.test' $((N * 2 / 3)))
measure "first page (limit=50)" "/api/client-certs?limit=50" "(.certificates | length) == 50 and .total >= $N"
measure "deep offset (offset=$HALF, limit=50)" "/api/client-certs?limit=50&offset=$HALF" "(.certificates | length) == 50"
[ -z "$CUR" ] || measure "cursor (after=<offset $HALF>, limit=50)" "/api/client-certs?limit=50&after=$CUR" "(.certificates | length) == 50"
measure "status=active&usage=vpn, -expires_at, 100" "/api/client-certs?status=active&usage=vpn&limit=100&sort=-expires_at" \
    '(.certificates | length) == ([100, .total] | min) and .total > 0 and all(.certificates[]; .status == "active" and .cert_usage == "vpn")'
measure "search=<one CN> (limit=50)" "/api/client-certs?search=$CN&limit=50" ".total == 1 and .certificates[0].common_name == \"$CN\""
measure "search=store.test (every one, limit=50)" "/api/client-certs?search=store.test&limit=50" ".total >= $N and (.certificates | length) == 50"
measure "stats" "/api/client-certs/stats" ".total >= $N"
RSS_LOADED=$(rss_mib)

echo "# bash bench/store.sh  ($COUNT certificates, RSA-4096 CA, $(nproc) cores, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), binary $CERTMATE_BIN)"
echo "# ${WRK[*]} -c16 -d${SECS}s per row${SERVER_ARGS:+ (server: ${SERVER_PRE[*]} ${SERVER_ARGS[*]})}, loopback, rate limits off; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| start-up (exec to /health 200) | cold | warm (median of 3) |"
echo "|---|---:|---:|"
echo "| $COUNT certificates | $COLD | $WARM ms |"
echo
echo "| request | p50 ms | p99 ms | req/s | server CPU µs/req | errors |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "RSS: idle after start-up $RSS_IDLE MiB, after the list load $RSS_LOADED MiB"
