#!/usr/bin/env bash
# A bounded soak on 127.0.0.1 (issue 14 "Soak"):
#
#   bash bench/soak.sh
#
# certmate (Release, a fresh data dir, CA ec-p384, generated keys ec-p256, the default connection
# limits and timeouts, rate limits off so the load reaches the server) under, for SOAK_SECS (60) s:
#   - SOAK_CLIENTS (100) well-behaved clients on keep-alive connections, each one operation then a
#     pause of 0..2*SOAK_THINK_MS (100) ms: OCSP POST 60 %, list 25 %, create 10 %, revoke 5 % (of
#     a certificate it created);
#   - SOAK_IDLE (1000) idle connections and SOAK_SLOW (100) slowloris ones (a header byte a second),
#     each opened again when the server closes it; with the clients that is more than
#     server.max_connections (1024), so the pressure timeouts and 503 refusals are part of the run.
# bench/soak_client.cpp makes the load and prints: the server's VmRSS before, after the warm-up
# (SOAK_WARMUP, 10 s) and at the end; per operation the count, p50/p99/max latency and statuses
# (after the warm-up); what happened to the idle and slowloris connections; and the acceptance
# (RSS growth after the warm-up < 20 MiB, no status but 2xx/429/503, OCSP p99 < 20 ms): exit 1
# when missed.
#
# CERTMATE_BIN=path skips building certmate (soak_client is always built, in build-bench/).
# Logs stay in build-bench/bench-logs/soak-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SOAK_SECS:-60}
WARMUP=${SOAK_WARMUP:-10}
CLIENTS=${SOAK_CLIENTS:-100}
IDLE=${SOAK_IDLE:-1000}
SLOW=${SOAK_SLOW:-100}
THINK=${SOAK_THINK_MS:-100}
BENCH_TAG="soak"
# shellcheck source=bench/common.sh
. bench/common.sh

bench_install curl jq openssl procps
BENCH_CMAKE_ARGS=-DCERTMATE_BENCH_TOOLS=ON bench_build soak_client
LOGS=$ROOT/build-bench/bench-logs
mkdir -p "$LOGS"
WORK=$(mktemp -d /tmp/certmate-soak.XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# The load holds ~1,300 sockets on each side: the soft limit up to the hard one (both inherit it).
ulimit -n "$(ulimit -Hn)"
"$CERTMATE_BIN" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 --ca.key_type ec-p384 \
    --issuance.default_key_type ec-p256 --rate_limit.default 0 --rate_limit.create 0 \
    --rate_limit.batch 0 --rate_limit.ocsp 0 --rate_limit.crl 0 --renewal.enabled false \
    >"$WORK/serve.out" 2>"$LOGS/soak-serve.err" &
PID=$!
for _ in $(seq 1 600); do
    PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$WORK/serve.out" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "${PORT:-}" ] || die "certmate did not start (see $LOGS/soak-serve.err)"
URL=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer $(cat "$WORK/data/admin.token")"

# The OCSP request: for a real certificate, made by openssl.
curl -sf -H "$AUTH" -H 'Content-Type: application/json' -d '{"common_name":"soak-ocsp","identifier":"soak-ocsp"}' \
    "$URL/api/client-certs" | jq -r .certificate >"$WORK/ocsp.crt"
curl -sf "$URL/api/client-certs/ca" -H "$AUTH" >"$WORK/ca.crt"
openssl ocsp -issuer "$WORK/ca.crt" -cert "$WORK/ocsp.crt" -no_nonce -reqout "$WORK/req.der" >/dev/null 2>&1 ||
    die "openssl ocsp could not make the request"

log "certmate pid $PID at $URL, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ${SECS} s of load"
echo "# bash bench/soak.sh  (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, $(date -u +%FT%TZ))"
status=0
"$ROOT/build-bench/soak_client" --port "$PORT" --token-file "$WORK/data/admin.token" --ocsp-der "$WORK/req.der" \
    --pid "$PID" --secs "$SECS" --warmup "$WARMUP" --clients "$CLIENTS" --idle "$IDLE" --slow "$SLOW" \
    --think-ms "$THINK" | tee "$LOGS/soak.out" || status=$?
echo "certificates at the end: $(curl -sf -H "$AUTH" "$URL/api/client-certs/stats" | jq -c "{total, active, revoked}")"
exit "$status"
