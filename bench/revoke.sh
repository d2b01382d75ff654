#!/usr/bin/env bash
# Revocation at the seed's scale (issue 15), on 127.0.0.1:
#
#   bash bench/revoke.sh
#
# A store of BENCH_REVOKE_N (30,000) certificates (+5 spare) with Ed25519 keys on a BENCH_CA
# (rsa4096) CA, filled once by a batch create job and kept in BENCH_REVOKE_DIR; each phase runs on
# a fresh copy of it (revokes mutate), with rate limits off:
#   clients-8, clients-64  N revocations, one POST .../revoke each, from 8 / 64 wrk connections:
#                          wall time, acknowledged revocations/s, ack latency p50/p99, CRL builds,
#                          peak RSS; every answer checked (200 with "revoked":true), the final CRL
#                          must list all N, and no CRL wait may have reached its bound
#                          (certmate_crl_wait_timeouts_total 0). The file store answers a revoke once
#                          it is durable, and each CRL request waits for the build of the revocations
#                          acknowledged before it (docs/architecture.md "CRL publication"): during the
#                          storm, spare identifiers are revoked one at a time and /crl.der fetched
#                          right after each answer must list it (the "in /crl.der" column: checked,
#                          the fetch's p50/max time while the storm runs).
#   batch                  one batch revoke job of the N identifiers.
#   rebuild                with 3,000 and with N revoked: one revoke -> in /crl.der (curl
#                          time_total, the median of 5), the CRL size, beside `openssl ca -gencrl`
#                          over the same serials with the same CA key (the median of 3), and the ratio.
#
# Knobs: BENCH_REVOKE_N=30000, BENCH_CA=rsa4096, BENCH_REVOKE_DIR=dir (default
# build-bench/revoke-data-<CA>-<N>), CERTMATE_BIN=path skips the build, BENCH_REVOKE_CLIENTS_ONLY=1
# runs the clients-8 and clients-64 phases only. Logs: build-bench/bench-logs/revoke-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_REVOKE_N:-30000}
CA=${BENCH_CA:-rsa4096}
SPARE=25 # N+1..N+5: the single revokes; N+6..N+25: the in-storm checks (10 per phase)
TOTAL=$((N + SPARE))
BENCH_TAG="revoke"
# shellcheck source=bench/common.sh
. bench/common.sh

bench_install wrk curl jq openssl procps
bench_build
LOGS=$ROOT/build-bench/bench-logs
mkdir -p "$LOGS"
CACHE=${BENCH_REVOKE_DIR:-$ROOT/build-bench/revoke-data-$CA-$N}
WORK=$(mktemp -d /tmp/certmate-revoke.XXXXXX)
PID=""
stop_server() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }'; }
rss() { awk -v k="$1" '$1 == k":" { printf "%.0f", $2 / 1024 }' "/proc/$PID/status"; }
metric() { curl -s "$URL/metrics" | sed -n "s/^$1 //p"; }
builds() { metric 'certmate_crl_builds_total{result="ok"}'; }

start_server() { # DATA_DIR NAME
    "$CERTMATE_BIN" serve --data-dir "$1" --listen 127.0.0.1:0 --ca.key_type "$CA" \
        --issuance.default_key_type ed25519 --server.max_connections_per_ip 0 --jobs.max_rows 1000000 --rate_limit.default 0 \
        --rate_limit.create 0 --rate_limit.batch 0 --rate_limit.ocsp 0 --rate_limit.crl 0 \
        >"$WORK/serve.out" 2>"$LOGS/revoke-$2.err" &
    PID=$!
    PORT=""
    for _ in $(seq 1 1200); do
        PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$WORK/serve.out" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$PORT" ] || die "certmate did not start (see $LOGS/revoke-$2.err)"
    URL=http://127.0.0.1:$PORT
    TOKEN=$(cat "$1/admin.token")
    AUTH="Authorization: Bearer $TOKEN"
    # The start-up CRL: the phases time revocations, not the first build.
    for _ in $(seq 1 600); do curl -sf -o /dev/null "$URL/crl.der" && break; sleep 0.1; done
}

wait_job() { # ID -> prints the job document once finished
    local doc state
    for _ in $(seq 1 7200); do
        doc=$(curl -sf -H "$AUTH" "$URL/api/jobs/$1?errors_limit=5")
        state=$(jq -r .state <<<"$doc")
        [ "$state" = queued ] || [ "$state" = running ] || break
        sleep 0.5
    done
    echo "$doc"
}

crl_count() { curl -sf "$URL/crl.der" | openssl crl -inform DER -noout -text | grep -c 'Serial Number:' || true; }

# ---- the store, filled once ----
if [ ! -e "$CACHE/.filled" ]; then
    rm -rf "$CACHE"
    mkdir -p "$(dirname "$CACHE")"
    log "filling $CACHE: $TOTAL certificates (batch create, Ed25519 keys, $CA CA)"
    start_server "$CACHE" fill
    { echo "identifier,common_name,key_type"; for i in $(seq 1 "$TOTAL"); do echo "r-$i,r-$i,ed25519"; done; } >"$WORK/fill.csv"
    t0=$(now)
    id=$(curl -sf -H "$AUTH" -H 'Content-Type: text/csv' --data-binary @"$WORK/fill.csv" \
        "$URL/api/client-certs/batch" | jq -r .id) || die "the fill batch was refused"
    doc=$(wait_job "$id")
    [ "$(jq -r .succeeded <<<"$doc")" = "$TOTAL" ] || die "fill: $(jq -c '{state,succeeded,failed,errors}' <<<"$doc")"
    log "filled in $(since "$t0") s"
    stop_server
    touch "$CACHE/.filled"
fi

fresh_copy() { rm -rf "$WORK/data"; cp -a "$CACHE" "$WORK/data"; rm -f "$WORK/data/serve.lock"; }

# Revokes r-$1 and fetches /crl.der right after the answer: prints "<revoke secs> <fetch secs>"
# (curl time_total each), or dies when the answer is not 200 or the CRL does not list the serial.
revoke_then_crl() {
    local i=$1 t c serial
    serial=$(curl -sf -H "$AUTH" "$URL/api/client-certs/r-$i/certificate" | openssl x509 -noout -serial | cut -d= -f2)
    [ -n "$serial" ] || die "r-$i: no certificate (a store filled with fewer spares? remove $CACHE)"
    t=$(curl -s -o "$WORK/one-$i.json" -w '%{http_code} %{time_total}' -H "$AUTH" -H 'Content-Type: application/json' \
        -d '{"reason":"keyCompromise"}' "$URL/api/client-certs/r-$i/revoke")
    [ "${t%% *}" = 200 ] || die "revoke r-$i: $t $(cat "$WORK/one-$i.json")"
    c=$(curl -s -o "$WORK/crl-$i.der" -w '%{http_code} %{time_total}' "$URL/crl.der")
    [ "${c%% *}" = 200 ] || die "r-$i acknowledged, then /crl.der answered $c"
    openssl crl -inform DER -noout -text -in "$WORK/crl-$i.der" | grep -q "Serial Number: $serial\$" ||
        die "r-$i ($serial) acknowledged but not in the /crl.der fetched after"
    echo "${t#* } ${c#* }"
}

# One revoke of a spare identifier after another, timed from the request to a /crl.der that lists
# it (the revoke's and the fetch's curl time_total added). Prints the median in seconds.
single_revokes() {
    local i r
    : >"$WORK/single.times"
    for i in $(seq $((N + 1)) $((N + 5))); do
        r=$(revoke_then_crl "$i") || exit 1
        awk '{ print $1 + $2 }' <<<"$r" >>"$WORK/single.times"
    done
    median <"$WORK/single.times"
}

# While the storm runs: revoke_then_crl on spares FROM..TO, 0.5 s apart (the storm still running),
# into $1. A failed check kills the bench (die in a subshell: the marker file says so).
storm_checks() { # OUT FROM TO MARKS
    local i
    for i in $(seq "$2" "$3"); do
        [ "$(grep -c '^end' "$4")" -lt 2 ] || break
        (revoke_then_crl "$i") >>"$1" || { echo "failed r-$i" >"$1.failed"; return; }
        sleep 0.5
    done
}

# `openssl ca -gencrl` over the serials of the current /crl.der, with the CA's key (or a fresh key
# of the same type when the CA key is encrypted). Prints the median of 3 runs in seconds.
openssl_gencrl() {
    local d=$WORK/ossl
    rm -rf "$d"; mkdir -p "$d"
    curl -sf "$URL/crl.der" | openssl crl -inform DER -noout -text |
        sed -n 's/^ *Serial Number: \([0-9A-F]*\)$/\1/p' |
        awk -v when="$(date -u +%y%m%d%H%M%SZ)" '{ printf "R\t491231235959Z\t%s,keyCompromise\t%s\tunknown\t/CN=r\n", when, $1 }' >"$d/index.txt"
    echo 01 >"$d/crlnumber"
    if openssl pkey -in "$WORK/data/certs/ca/ca.key" -passin pass: -noout 2>/dev/null; then
        cp "$WORK/data/certs/ca/ca.key" "$d/ca.key"; cp "$WORK/data/certs/ca/ca.crt" "$d/ca.crt"
    else
        case $CA in rsa4096) alg=(-newkey rsa:4096);; rsa3072) alg=(-newkey rsa:3072);;
            ec-p384) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-384);; *) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256);; esac
        openssl req -x509 "${alg[@]}" -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -subj /CN=gencrl -days 30 2>/dev/null
    fi
    cat >"$d/ca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
database = $d/index.txt
crlnumber = $d/crlnumber
default_md = $([ "$CA" = ec-p384 ] && echo sha384 || echo sha256)
default_crl_days = 1
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
CNF
    : >"$d/times"
    for _ in 1 2 3; do
        local t0; t0=$(now)
        openssl ca -config "$d/ca.cnf" -gencrl -keyfile "$d/ca.key" -cert "$d/ca.crt" -out "$d/crl.pem" -batch 2>"$d/err" ||
            die "openssl ca -gencrl: $(cat "$d/err")"
        since "$t0" >>"$d/times"; echo >>"$d/times"
    done
    [ "$(openssl crl -in "$d/crl.pem" -noout -text | grep -c 'Serial Number:')" = "$(wc -l <"$d/index.txt")" ] ||
        die "openssl's CRL does not list the set"
    grep . "$d/times" | median
}

echo "# bash bench/revoke.sh  (N=$N, CA $CA, Ed25519 leaves, $(nproc) cores, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo -))"
printf '%-10s %7s %8s %10s %14s %14s %8s %9s %9s %22s\n' phase revoked secs "revoked/s" "ack p50/p99" "ack max" builds "RSS MiB" timeouts "in /crl.der (p50/max)"

for C in 8 64; do
    fresh_copy
    start_server "$WORK/data" "clients-$C"
    idle=$(rss VmRSS)
    b0=$(builds)
    marks=$WORK/marks-$C
    : >"$marks"
    REVOKE_MARKS=$marks REVOKE_THREADS=2 REVOKE_FROM=1 REVOKE_TO=$N REVOKE_TOKEN=$TOKEN \
        wrk -t2 -c"$C" -d900s --timeout 30s -s bench/revoke.lua "$URL" >"$LOGS/revoke-clients-$C.wrk" 2>&1 &
    WRK=$!
    checks=$WORK/checks-$C
    : >"$checks"
    first=$((N + (C == 8 ? 6 : 16)))
    sleep 1
    storm_checks "$checks" "$first" $((first + 9)) "$marks" &
    CHECKS=$!
    while kill -0 "$WRK" 2>/dev/null && [ "$(grep -c '^end' "$marks")" -lt 2 ]; do sleep 0.2; done
    kill -INT "$WRK" 2>/dev/null || true
    wait "$WRK" || true
    wait "$CHECKS" || true
    [ ! -e "$checks.failed" ] || die "clients-$C: $(cat "$checks.failed")"
    nchecks=$(wc -l <"$checks")
    [ "$nchecks" -gt 0 ] || die "clients-$C: no revoke -> /crl.der check ran during the storm"
    fetch=$(awk '{ print $2 }' "$checks" | sort -g | awk '{ v[NR] = $1 } END { printf "%d ok, %.0f/%.0f ms", NR, v[int((NR + 1) / 2)] * 1000, v[NR] * 1000 }')
    out=$(grep REVOKESTAT "$LOGS/revoke-clients-$C.wrk") || die "wrk: $(cat "$LOGS/revoke-clients-$C.wrk")"
    secs=$(awk '$1 == "start" && (s == "" || $3 < s) { s = $3 } $1 == "end" && $3 > e { e = $3 } END { printf "%.2f", e - s }' "$marks")
    val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
    [ "$(val acked)" = "$N" ] && [ "$(val bad)" = 0 ] || die "clients-$C: $out"
    listed=$(crl_count)
    [ "$listed" = $((N + nchecks)) ] || die "clients-$C: /crl.der lists $listed, not $N + $nchecks"
    timeouts=$(metric certmate_crl_wait_timeouts_total)
    printf '%-10s %7s %8s %10s %14s %14s %8s %9s %9s %22s\n' "clients-$C" "$(val acked)" "$secs" \
        "$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')" \
        "$(val p50_ms)/$(val p99_ms) ms" "$(val max_ms) ms" "$(($(builds) - b0))" "$idle/$(rss VmHWM)" "${timeouts:-?}" "$fetch"
    [ "${timeouts:-x}" = 0 ] || die "clients-$C: $timeouts CRL waits reached their bound"
    if [ "$C" = 64 ] && [ -z "${BENCH_REVOKE_CLIENTS_ONLY:-}" ]; then
        REBUILD_N=$(single_revokes); CRL_N=$(curl -sf "$URL/crl.der" | wc -c); GENCRL_N=$(openssl_gencrl)
    fi
    stop_server
done

[ -z "${BENCH_REVOKE_CLIENTS_ONLY:-}" ] || exit 0

fresh_copy
start_server "$WORK/data" batch
b0=$(builds)
seq 1 "$N" | awk 'BEGIN { printf "{\"reason\":\"keyCompromise\",\"identifiers\":[" } { printf "%s\"r-%d\"", (NR > 1 ? "," : ""), $1 } END { print "]}" }' >"$WORK/ids.json"
t0=$(now)
id=$(curl -sf -H "$AUTH" -H 'Content-Type: application/json' --data-binary @"$WORK/ids.json" \
    "$URL/api/client-certs/batch/revoke" | jq -r .id) || die "the batch revoke was refused"
doc=$(wait_job "$id")
secs=$(since "$t0")
[ "$(jq -r .succeeded <<<"$doc")" = "$N" ] || die "batch: $(jq -c '{state,succeeded,failed,errors}' <<<"$doc")"
[ "$(crl_count)" = "$N" ] || die "batch: the CRL does not list $N"
printf '%-10s %7s %8s %10s %14s %14s %8s %9s %9s\n' batch "$N" "$secs" \
    "$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')" - - "$(($(builds) - b0))" "-/$(rss VmHWM)" -
stop_server

# 3,000 revoked: a batch job of r-1..r-3000, then the single revokes.
K=$((N < 3000 ? N : 3000))
fresh_copy
start_server "$WORK/data" rebuild-3000
seq 1 "$K" | awk 'BEGIN { printf "{\"reason\":\"keyCompromise\",\"identifiers\":[" } { printf "%s\"r-%d\"", (NR > 1 ? "," : ""), $1 } END { print "]}" }' >"$WORK/ids3k.json"
id=$(curl -sf -H "$AUTH" -H 'Content-Type: application/json' --data-binary @"$WORK/ids3k.json" \
    "$URL/api/client-certs/batch/revoke" | jq -r .id) || die "the 3,000 batch revoke was refused"
doc=$(wait_job "$id")
[ "$(jq -r .succeeded <<<"$doc")" = "$K" ] || die "$K: $(jq -c '{state,succeeded,failed}' <<<"$doc")"
REBUILD_3K=$(single_revokes); CRL_3K=$(curl -sf "$URL/crl.der" | wc -c); GENCRL_3K=$(openssl_gencrl)
stop_server

echo
printf '%-28s %10s %22s %24s %8s\n' "one revoke + /crl.der" "CRL bytes" "certmate (median of 5)" "openssl ca -gencrl (of 3)" ratio
for row in "$K $((K + SPARE)) $CRL_3K $REBUILD_3K $GENCRL_3K" "$N $((N + SPARE)) $CRL_N $REBUILD_N $GENCRL_N"; do
    set -- $row
    printf '%-28s %10s %20.3f s %22.3f s %7.2fx\n' "with ~$1 revoked" "$3" "$4" "$5" "$(awk -v a="$4" -v b="$5" 'BEGIN { print a / b }')"
done
