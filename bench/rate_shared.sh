#!/usr/bin/env bash
# The cost of rate_limit.shared (issue 18): one instance on a throwaway PostgreSQL cluster (fsync
# on), GET /api/ca with an admin token through wrk, with the token buckets kept by the instance
# (rate_limit.shared = false) and in the database (true), the limit high enough never to refuse:
#
#   bash bench/rate_shared.sh
#
# Every answer must be 200 (wrk's script counts the others as errors). Prints req/s and p50/p99
# for both and the ratio. Knobs: BENCH_SECS=10, BENCH_CONNS=16, CERTMATE_BIN=path skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${BENCH_SECS:-10}
CONNS=${BENCH_CONNS:-16}
BENCH_TAG="rate-shared"
# shellcheck source=bench/common.sh
. bench/common.sh

bench_install postgresql wrk curl openssl
bench_build

WORK=$(mktemp -d /tmp/certmate-rate-XXXXXX)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
chown postgres: "$WORK"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -U certmate --auth=trust -E UTF8 -N >/dev/null
printf "listen_addresses = ''\nunix_socket_directories = '%s'\n" "$WORK" >>"$WORK/pg/postgresql.conf"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start >/dev/null
psql -X -q "host=$WORK user=certmate dbname=postgres" -c "CREATE DATABASE certmate" >/dev/null
CONN="host=$WORK user=certmate dbname=certmate"
openssl rand -hex 32 >"$WORK/kek" && chmod 600 "$WORK/kek"
"$CERTMATE_BIN" init --data-dir "$WORK/data" --ca.key_type ec-p384 >/dev/null
TOKEN=$(cat "$WORK/data/admin.token")

run_mode() { # $1 = false|true
    "$CERTMATE_BIN" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 --storage.backend postgresql \
        --storage.postgresql "$CONN" --storage.key_encryption_key_file "$WORK/kek" \
        --rate_limit.default 1000000 --rate_limit.shared "$1" --renewal.enabled false \
        >"$WORK/serve.out" 2>"$WORK/serve.err" &
    SERVER_PID=$!
    local port="" i
    for i in $(seq 1 100); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/serve.out" | head -1 | sed 's/.*://') || true
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || die "the server did not start: $(cat "$WORK/serve.err")"
    curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/ca" >/dev/null || die "GET /api/ca failed"
    AUTH_TOKEN=$TOKEN wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s bench/status200.lua \
        "http://127.0.0.1:$port/api/ca" >"$WORK/wrk-$1.txt"
    kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    grep WRKSTAT "$WORK/wrk-$1.txt" || die "wrk printed no figures: $(cat "$WORK/wrk-$1.txt")"
}

bench_wait_quiet 0
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
local_line=$(run_mode false)
shared_line=$(run_mode true)
field() { echo "$2" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
for l in "$local_line" "$shared_line"; do
    [ "$(field non200 "$l")" = 0 ] && [ "$(field errors "$l")" = 0 ] || die "answers other than 200: $l"
done
printf '%-8s %10s %8s %8s\n' mode req/s p50_ms p99_ms
printf '%-8s %10s %8s %8s\n' local "$(field rps "$local_line")" "$(field p50_ms "$local_line")" "$(field p99_ms "$local_line")"
printf '%-8s %10s %8s %8s\n' shared "$(field rps "$shared_line")" "$(field p50_ms "$shared_line")" "$(field p99_ms "$shared_line")"
rps() { field rps "$1"; }
python3 -c "print('shared / local req/s: %.2fx' % (float('$(rps "$shared_line")') / float('$(rps "$local_line")')))"
