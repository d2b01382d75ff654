#!/usr/bin/env bash
# Issuance and OCSP on the PostgreSQL store beside the file system store, in one run (issue 18,
# acceptance 7):
#
#   bash bench/pg.sh
#
# A throwaway PostgreSQL cluster (Debian's postgresql; `initdb` into a temp dir on the same disk as
# the data dirs, a Unix socket only, run as the `postgres` user) with fsync and synchronous_commit
# ON: a commit waits for its WAL flush, as a file system create waits for its fsyncs. certmate runs
# on each store in turn, same binary, same CA key type (BENCH_PG_CA, ec-p256: a fast CA signature
# leaves the store's share of a create visible), same options:
#   fs          storage.backend = fs (the data dir)
#   postgresql  storage.backend = postgresql (certificates, CA-wide state and the audit chain in
#               the database; private keys sealed with AES-256-GCM)
# Per store:
#   creates     POST /api/client-certs, BENCH_PAR (8) at once (curl -Z): BENCH_PG_N server-generated
#               ed25519 keys, then BENCH_PG_N from P-256 CSRs made beforehand (not timed); an answer
#               counts only if it is 201; one certificate of each kind is checked with openssl verify
#   ocsp        wrk -t2 -cBENCH_CONNS (64) for BENCH_SECS (10) s, each request an OCSPRequest for a
#               random one of the store's certificates (bench/ocsp_random.lua; an answer counts only
#               if it is 200 and a successful OCSP response); the answer cache is filled first
#               (bench/ocsp_fixtures.py collect), as in bench/ocsp.sh
# The serials of the PostgreSQL store are read back with `certmate db export` into a scratch dir.
# Prints a table with PostgreSQL / fs ratios. Targets (issue 18): creates ≥ 0.8× the file system
# store's; OCSP unchanged (it is answered from memory on both).
#
# Knobs: BENCH_PG_N=1000 BENCH_PAR=8 BENCH_SECS=10 BENCH_CONNS=64 BENCH_PG_CA=ec-p256
# BENCH_WAIT_MAX=1200 (seconds to wait for compilers; 0 = do not wait), CERTMATE_BIN=path skips
# the build. Logs: build-bench/bench-logs/pg-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_PG_N:-1000}
PAR=${BENCH_PAR:-8}
SECS=${BENCH_SECS:-10}
CONNS=${BENCH_CONNS:-64}
CA_TYPE=${BENCH_PG_CA:-ec-p256}
WAIT_MAX=${BENCH_WAIT_MAX:-1200}
CORES=$(nproc)
BENCH_TAG="pg"
# shellcheck source=bench/common.sh
. bench/common.sh

[ "$(id -u)" -eq 0 ] || die "needs root (the cluster runs as the postgres user)"
bench_install postgresql wrk curl openssl python3 procps util-linux
bench_build
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || die "no initdb under /usr/lib/postgresql/*/bin"
id postgres >/dev/null 2>&1 || die "no postgres user (Debian's postgresql-common makes it)"

LOGS=$ROOT/build-bench/bench-logs
mkdir -p "$LOGS"
rm -f "$LOGS"/pg-*
WORK=$(mktemp -d /tmp/certmate-pg.XXXXXX)
chmod 755 "$WORK"
PG=$WORK/pg
PID=""
PG_UP=""
stop_certmate() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID"
        wait "$PID" 2>/dev/null || true
    fi
    PID=""
}
cleanup() {
    stop_certmate
    [ -z "$PG_UP" ] || runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# ---- the cluster: fsync on (the default), synchronous_commit on (the default)
mkdir -p "$PG"
chown postgres "$PG"
runuser -u postgres -- "$PGBIN/initdb" -D "$PG/data" -U postgres --auth=trust -E UTF8 >"$LOGS/pg-initdb.log" 2>&1 ||
    die "initdb failed (see $LOGS/pg-initdb.log)"
cat >>"$PG/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PG'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 100
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/server.log" -w start >/dev/null ||
    die "pg_ctl start failed (see $PG/server.log)"
PG_UP=1
runuser -u postgres -- psql -X -q -h "$PG" -d postgres -c "CREATE DATABASE certmate" >/dev/null
CONNINFO="host=$PG user=postgres dbname=certmate"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/kek"
chmod 600 "$WORK/kek"
DB_ARGS=(--storage.backend postgresql --storage.postgresql "$CONNINFO" --storage.key_encryption_key_file "$WORK/kek")
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }') in $PG: fsync $(runuser -u postgres -- psql -X -At -h "$PG" -d certmate -c 'SHOW fsync'), synchronous_commit $(runuser -u postgres -- psql -X -At -h "$PG" -d certmate -c 'SHOW synchronous_commit')"

# ---- CSRs and bodies (not timed)
mkdir -p "$WORK/csr" "$WORK/bodies"
log "P-256 CSRs ($N)"
seq 1 "$N" | timeout 600 xargs -P 2 -I{} openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
    -keyout /dev/null -subj "/CN=csr-{}" -out "$WORK/csr/{}.csr" 2>/dev/null
python3 - "$WORK/bodies" "$WORK/csr" "$N" <<'EOF'
import json, sys
out, csr_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(1, n + 1):
    with open(f"{out}/ed25519-{i}.json", "w") as f:
        json.dump({"common_name": f"ed25519-{i}", "identifier": f"ed25519-{i}", "key_type": "ed25519"}, f)
    with open(f"{csr_dir}/{i}.csr") as c, open(f"{out}/csr-p256-{i}.json", "w") as f:
        json.dump({"common_name": f"csr-{i}", "identifier": f"csr-p256-{i}", "csr": c.read()}, f)
EOF

bench_wait_quiet "$WAIT_MAX"
OTHERS=$( { pgrep -x cc1plus; pgrep -x ld; pgrep -f build-asan; true; } 2>/dev/null | wc -l)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

RESULTS=$WORK/results.tsv
: >"$RESULTS"
PORT=""
start_certmate() { # STORE DATA-DIR [ARGS...]
    local store=$1 data=$2 i
    shift 2
    "$CERTMATE_BIN" serve --data-dir "$data" --listen 127.0.0.1:0 \
        --rate_limit.default 0 --rate_limit.create 0 --rate_limit.batch 0 --rate_limit.ocsp 0 --rate_limit.crl 0 \
        --renewal.enabled false "$@" >"$WORK/$store.out" 2>"$LOGS/pg-serve-$store.log" &
    PID=$!
    PORT=""
    for i in $(seq 1 1200); do
        PORT=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$WORK/$store.out" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || die "certmate ($store) exited at start (see $LOGS/pg-serve-$store.log)"
        sleep 0.05
    done
    [ -n "$PORT" ] || die "certmate ($store) did not start"
}

creates() { # STORE KIND DATA-DIR -> a row: store kind ok seconds rate
    local store=$1 kind=$2 data=$3 cfg=$WORK/$1-$2.cfg i t0 secs ok
    : >"$cfg"
    for ((i = 1; i <= N; i++)); do
        [ "$i" -gt 1 ] && echo next >>"$cfg"
        printf 'url = "http://127.0.0.1:%s/api/client-certs"\nheader = "@%s"\ndata = "@%s"\nmax-time = 120\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
            "$PORT" "$WORK/$store.hdr" "$WORK/bodies/$kind-$i.json" >>"$cfg"
    done
    t0=$(now)
    timeout 600 curl -s --no-progress-meter -Z --parallel-max "$PAR" -K "$cfg" >"$WORK/$store-$kind.codes" 2>>"$LOGS/pg-curl.log" || true
    secs=$(elapsed "$t0")
    ok=$(grep -c '^201$' "$WORK/$store-$kind.codes" || true)
    [ "$ok" -eq "$N" ] || log "$store $kind: answers other than 201: $(grep -v '^201$' "$WORK/$store-$kind.codes" | sort | uniq -c | tr '\n' ' ')"
    [ "$ok" -gt 0 ] || die "$store $kind: no create answered 201"
    # One certificate of the kind, fetched back and verified against the CA.
    curl -sf -H "@$WORK/$store.hdr" "http://127.0.0.1:$PORT/api/client-certs/$kind-1/download/crt" -o "$WORK/$store-$kind-1.crt" ||
        die "$store $kind: cannot fetch $kind-1's certificate"
    openssl verify -CAfile "$data/certs/ca/ca.crt" "$WORK/$store-$kind-1.crt" >/dev/null ||
        die "$store $kind: $kind-1 does not verify against the CA"
    printf 'create %s\t%s\t%s/%s\t%s\t%s\n' "$kind" "$store" "$ok" "$N" "$secs" \
        "$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" >>"$RESULTS"
    log "$store $kind: $ok of $N in ${secs}s"
}

ocsp() { # STORE DATA-DIR FIXTURE-DIR
    local store=$1 data=$2 fix=$3 out=$LOGS/pg-wrk-$1.txt stat
    openssl ocsp -issuer "$data/certs/ca/ca.crt" -serial 1 -no_nonce -reqout "$WORK/$store-template.der" >/dev/null
    python3 bench/ocsp_fixtures.py prepare "$fix" "$WORK/$store-template.der" "$WORK/$store-fix" >/dev/null
    python3 bench/ocsp_fixtures.py collect "http://127.0.0.1:$PORT/ocsp" "$WORK/$store-fix/reqs.hex" "$WORK/$store-fix/resp.b64" >/dev/null ||
        die "$store: an OCSP answer was not a successful response"
    OCSP_REQS="$WORK/$store-fix/reqs.hex" timeout $((SECS + 30)) wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 5s --latency \
        -s bench/ocsp_random.lua "http://127.0.0.1:$PORT/ocsp" >"$out" 2>&1 || true
    stat=$(grep '^WRKSTAT' "$out" || true)
    [ -n "$stat" ] || die "wrk printed no figures for $store; see $out"
    f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $stat"; }
    local errs=$(($(f bad) + $(f err_connect) + $(f err_read) + $(f err_write) + $(f err_timeout)))
    printf 'ocsp req/s\t%s\t%s serials, %s bad\t%s\t%s\n' "$store" "$(wc -l <"$WORK/$store-fix/reqs.hex")" "$errs" "$SECS" "$(f rps)" >>"$RESULTS"
    printf 'ocsp p99 ms\t%s\t\t\t%s\n' "$store" "$(f p99_ms)" >>"$RESULTS"
    log "$store ocsp: $(f rps) good answers/s, p99 $(f p99_ms) ms, errors $errs"
}

for store in fs postgresql; do
    data=$WORK/$store-data
    "$CERTMATE_BIN" init --data-dir "$data" --ca.key_type "$CA_TYPE" >"$LOGS/pg-init-$store.log" 2>&1 || die "init failed"
    printf 'Authorization: Bearer %s\nContent-Type: application/json\n' "$(cat "$data/admin.token")" >"$WORK/$store.hdr"
    extra=()
    [ "$store" = postgresql ] && extra=("${DB_ARGS[@]}")
    start_certmate "$store" "$data" "${extra[@]}"
    log "certmate on $store: pid $PID port $PORT, CA $CA_TYPE"
    creates "$store" ed25519 "$data"
    creates "$store" csr-p256 "$data"
    if [ "$store" = fs ]; then
        ocsp "$store" "$data" "$data"
    else
        # The store's serials, read back through `db export` (the server keeps running: export
        # only reads the database).
        mkdir -p "$WORK/pg-export/certs/audit"
        cp "$data/certs/audit/audit_signing.pub" "$WORK/pg-export/certs/audit/"
        "$CERTMATE_BIN" db export --data-dir "$WORK/pg-export" "${DB_ARGS[@]}" >"$LOGS/pg-export.log" 2>&1 ||
            die "db export failed (see $LOGS/pg-export.log)"
        ocsp "$store" "$data" "$WORK/pg-export"
    fi
    stop_certmate
done

ratio() { # METRIC: postgresql / fs
    awk -F'\t' -v m="$1" '$1 == m && $2 == "fs" { a = $5 } $1 == m && $2 == "postgresql" { b = $5 }
        END { if (a > 0) printf "%.2f", b / a; else print "-" }' "$RESULTS"
}
{
    echo
    echo "PostgreSQL store beside the file system store, CA $CA_TYPE, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "machine: $CORES cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg); compiler processes at start: $OTHERS; waited ${BENCH_WAITED}s"
    echo "PostgreSQL: $("$PGBIN/postgres" --version | awk '{ print $3 }'), local cluster on $(df --output=fstype "$PG" | tail -1), Unix socket, fsync on, synchronous_commit on"
    echo "creates: POST /api/client-certs, $PAR at once (curl -Z); OCSP: wrk -t2 -c$CONNS -d${SECS}s, random serials, cache filled first"
    echo
    {
        printf 'measure\tstore\tcount\tseconds\tvalue\n'
        cat "$RESULTS"
    } | column -t -s $'\t'
    echo
    echo "PostgreSQL / fs:"
    echo "  create ed25519   $(ratio 'create ed25519')  (target ≥ 0.80)"
    echo "  create csr-p256  $(ratio 'create csr-p256')  (target ≥ 0.80)"
    echo "  ocsp req/s       $(ratio 'ocsp req/s')  (target: unchanged)"
    echo "  ocsp p99 ms      $(ratio 'ocsp p99 ms')"
} | tee "$LOGS/pg-table.txt"
