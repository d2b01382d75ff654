#!/usr/bin/env bash
# Issuance and OCSP on the PostgreSQL store beside the file system store, in one run (issue 18,
# acceptance 7):
#
#   bash bench/pg.sh
#
# A throwaway PostgreSQL cluster (Debian's postgresql; `initdb` into a temp dir on the same disk as
# the data dirs, a Unix socket only, run as the `postgres` user) with fsync and synchronous_commit
# ON: a commit waits for its WAL flush, as a file system create waits for its fsyncs. Two certmate
# servers, same binary, same CA key type (BENCH_PG_CA, ec-p256: a fast CA signature leaves the
# store's share of a create visible), same options, each on its own fresh data dir:
#   fs          storage.backend = fs (the data dir)
#   postgresql  storage.backend = postgresql (certificates, CA-wide state and the audit chain in
#               the database; private keys sealed with AES-256-GCM)
# Both are up; the load goes to one at a time, BENCH_ROUNDS rounds with the stores alternating
# (which goes first swaps each round), so a neighbour's load on a shared machine hits both alike.
# Per store and round:
#   creates     POST /api/client-certs, BENCH_PAR (8) at once (curl -Z): BENCH_PG_N server-generated
#               ed25519 keys, then BENCH_PG_N from P-256 CSRs made beforehand (not timed); an answer
#               counts only if it is 201; one certificate of each kind is fetched and checked with
#               openssl verify
#   ocsp        wrk -t2 -cBENCH_CONNS (64) for BENCH_SECS (10) s, each request an OCSPRequest for a
#               random one of the store's round-1 certificates (bench/ocsp_random.lua: an answer
#               counts only if it is 200 and a successful OCSP response); the answer cache is filled
#               first (bench/ocsp_fixtures.py collect), as in bench/ocsp.sh
# The serials of the PostgreSQL store are read back with `certmate db export` into a scratch dir.
# Prints every round and the medians with PostgreSQL / fs ratios. Targets (issue 18): creates
# ≥ 0.8× the file system store's; OCSP unchanged (both answer from memory).
#
# Knobs: BENCH_PG_N=500 BENCH_ROUNDS=3 BENCH_PAR=8 BENCH_SECS=10 BENCH_CONNS=64 BENCH_PG_CA=ec-p256
# BENCH_WAIT_MAX=1200 (seconds to wait for compilers; 0 = do not wait), CERTMATE_BIN=path skips
# the build. Logs: build-bench/bench-logs/pg-*. Needs root (the cluster runs as `postgres`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_PG_N:-500}
ROUNDS=${BENCH_ROUNDS:-3}
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
PG_UP=""
stop_certmates() { :; }
cleanup() {
    stop_certmates
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

# ---- CSRs and bodies (not timed): one CSR per create, fresh identifiers each round
mkdir -p "$WORK/csr" "$WORK/bodies"
log "P-256 CSRs ($((N * ROUNDS)))"
seq 1 $((N * ROUNDS)) | timeout 900 xargs -P 2 -I{} openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -noenc -keyout /dev/null -subj "/CN=csr-{}" -out "$WORK/csr/{}.csr" 2>/dev/null
python3 - "$WORK/bodies" "$WORK/csr" "$N" "$ROUNDS" <<'EOF'
import json, sys
out, csr_dir, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for r in range(1, rounds + 1):
    for i in range(1, n + 1):
        with open(f"{out}/ed25519-{r}-{i}.json", "w") as f:
            json.dump({"common_name": f"ed25519-{r}-{i}", "identifier": f"ed25519-{r}-{i}", "key_type": "ed25519"}, f)
        k = (r - 1) * n + i
        with open(f"{csr_dir}/{k}.csr") as c, open(f"{out}/csr-p256-{r}-{i}.json", "w") as f:
            json.dump({"common_name": f"csr-{k}", "identifier": f"csr-p256-{r}-{i}", "csr": c.read()}, f)
EOF

# ---- both servers, up side by side (each idle while the other is measured)
declare -A PIDS PORTS DATA
start_certmate() { # STORE [ARGS...]
    local store=$1 data=$WORK/$1-data i port=""
    shift
    DATA[$store]=$data
    "$CERTMATE_BIN" init --data-dir "$data" --ca.key_type "$CA_TYPE" >"$LOGS/pg-init-$store.log" 2>&1 || die "init failed"
    printf 'Authorization: Bearer %s\nContent-Type: application/json\n' "$(cat "$data/admin.token")" >"$WORK/$store.hdr"
    "$CERTMATE_BIN" serve --data-dir "$data" --listen 127.0.0.1:0 \
        --rate_limit.default 0 --rate_limit.create 0 --rate_limit.batch 0 --rate_limit.ocsp 0 --rate_limit.crl 0 \
        --renewal.enabled false "$@" >"$WORK/$store.out" 2>"$LOGS/pg-serve-$store.log" &
    PIDS[$store]=$!
    for i in $(seq 1 1200); do
        port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$WORK/$store.out" | head -1)
        [ -n "$port" ] && break
        kill -0 "${PIDS[$store]}" 2>/dev/null || die "certmate ($store) exited at start (see $LOGS/pg-serve-$store.log)"
        sleep 0.05
    done
    [ -n "$port" ] || die "certmate ($store) did not start"
    PORTS[$store]=$port
    log "certmate on $store: pid ${PIDS[$store]} port $port, CA $CA_TYPE"
}
stop_certmates() {
    local s
    for s in "${!PIDS[@]}"; do
        kill "${PIDS[$s]}" 2>/dev/null || true
        wait "${PIDS[$s]}" 2>/dev/null || true
        unset "PIDS[$s]"
    done
}
"$CERTMATE_BIN" db migrate --data-dir "$WORK" "${DB_ARGS[@]}" >"$LOGS/pg-migrate.log" 2>&1 ||
    die "db migrate failed (see $LOGS/pg-migrate.log)"
start_certmate fs
start_certmate postgresql "${DB_ARGS[@]}"

bench_wait_quiet "$WAIT_MAX"
OTHERS=$( { pgrep -x cc1plus; pgrep -x ld; pgrep -f build-asan; true; } 2>/dev/null | wc -l)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS=$WORK/results.tsv
: >"$RESULTS"

creates() { # STORE KIND ROUND: a row (metric store round count seconds value)
    local store=$1 kind=$2 r=$3 port=${PORTS[$1]} cfg=$WORK/$1-$2-$3.cfg i t0 secs ok
    : >"$cfg"
    for ((i = 1; i <= N; i++)); do
        [ "$i" -gt 1 ] && echo next >>"$cfg"
        printf 'url = "http://127.0.0.1:%s/api/client-certs"\nheader = "@%s"\ndata = "@%s"\nmax-time = 120\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
            "$port" "$WORK/$store.hdr" "$WORK/bodies/$kind-$r-$i.json" >>"$cfg"
    done
    t0=$(now)
    timeout 600 curl -s --no-progress-meter -Z --parallel-max "$PAR" -K "$cfg" >"$WORK/$store-$kind-$r.codes" 2>>"$LOGS/pg-curl.log" || true
    secs=$(elapsed "$t0")
    ok=$(grep -c '^201$' "$WORK/$store-$kind-$r.codes" || true)
    [ "$ok" -eq "$N" ] || log "$store $kind: answers other than 201: $(grep -v '^201$' "$WORK/$store-$kind-$r.codes" | sort | uniq -c | tr '\n' ' ')"
    [ "$ok" -gt 0 ] || die "$store $kind: no create answered 201"
    # One certificate of the kind, fetched back and verified against the CA.
    curl -sf -H "@$WORK/$store.hdr" "http://127.0.0.1:$port/api/client-certs/$kind-$r-1/download/crt" \
        -o "$WORK/$store-$kind-$r.crt" || die "$store: cannot fetch $kind-$r-1's certificate"
    openssl verify -CAfile "${DATA[$store]}/certs/ca/ca.crt" "$WORK/$store-$kind-$r.crt" >/dev/null ||
        die "$store: $kind-$r-1 does not verify against the CA"
    printf 'create %s/s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$store" "$r" "$ok/$N" "$secs" \
        "$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" >>"$RESULTS"
    log "round $r $store $kind: $ok of $N in ${secs}s"
}

fixtures() { # STORE: OCSP requests for every certificate of the store so far, the answer cache filled
    local store=$1 data=${DATA[$1]} from=${DATA[$1]}
    if [ "$store" = postgresql ]; then
        # The store's serials, read back through `db export` (export only reads the database).
        from=$WORK/pg-export
        mkdir -p "$from/certs/audit"
        cp "$data/certs/audit/audit_signing.pub" "$from/certs/audit/"
        "$CERTMATE_BIN" db export --data-dir "$from" "${DB_ARGS[@]}" >"$LOGS/pg-export.log" 2>&1 ||
            die "db export failed (see $LOGS/pg-export.log)"
    fi
    openssl ocsp -issuer "$data/certs/ca/ca.crt" -serial 1 -no_nonce -reqout "$WORK/$store-template.der" >/dev/null ||
        die "$store: openssl ocsp -reqout failed"
    python3 bench/ocsp_fixtures.py prepare "$from" "$WORK/$store-template.der" "$WORK/$store-fix" >/dev/null ||
        die "$store: ocsp_fixtures.py prepare failed"
    python3 bench/ocsp_fixtures.py collect "http://127.0.0.1:${PORTS[$store]}/ocsp" "$WORK/$store-fix/reqs.hex" \
        "$WORK/$store-fix/resp.b64" >/dev/null || die "$store: an OCSP answer was not a successful response"
}

ocsp() { # STORE ROUND
    local store=$1 r=$2 out=$LOGS/pg-wrk-$1-$2.txt stat
    OCSP_REQS="$WORK/$store-fix/reqs.hex" timeout $((SECS + 30)) wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 5s \
        --latency -s bench/ocsp_random.lua "http://127.0.0.1:${PORTS[$store]}/ocsp" >"$out" 2>&1 || true
    stat=$(grep '^WRKSTAT' "$out" || true)
    [ -n "$stat" ] || die "wrk printed no figures for $store; see $out"
    f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $stat"; }
    local errs=$(($(f bad) + $(f err_connect) + $(f err_read) + $(f err_write) + $(f err_timeout)))
    [ "$errs" -eq 0 ] || log "$store ocsp: $errs answers were not good"
    local n
    n=$(wc -l <"$WORK/$store-fix/reqs.hex")
    printf 'ocsp req/s\t%s\t%s\t%s serials, %s bad\t%s\t%s\n' "$store" "$r" "$n" "$errs" "$SECS" "$(f rps)" >>"$RESULTS"
    printf 'ocsp p99 ms\t%s\t%s\t\t\t%s\n' "$store" "$r" "$(f p99_ms)" >>"$RESULTS"
    log "round $r $store ocsp: $(f rps) good answers/s, p99 $(f p99_ms) ms, errors $errs"
}

# ---- rounds, the stores alternating (which goes first swaps each round)
for r in $(seq 1 "$ROUNDS"); do
    order=(fs postgresql)
    [ $((r % 2)) -eq 0 ] && order=(postgresql fs)
    for s in "${order[@]}"; do creates "$s" ed25519 "$r"; done
    for s in "${order[@]}"; do creates "$s" csr-p256 "$r"; done
    if [ "$r" -eq 1 ]; then for s in "${order[@]}"; do fixtures "$s"; done; fi
    for s in "${order[@]}"; do ocsp "$s" "$r"; done
done
stop_certmates

median() { # METRIC STORE
    awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s { print $6 }' "$RESULTS" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
summary_row() { # METRIC TARGET
    local a b
    a=$(median "$1" fs)
    b=$(median "$1" postgresql)
    # The per-round ratios too: the spread says how much the shared machine moved the figures.
    local per
    per=$(awk -F'\t' -v m="$1" '$1 == m && $2 == "fs" { a[$3] = $6 } $1 == m && $2 == "postgresql" { b[$3] = $6 }
        END { for (r = 1; r in a; ++r) printf "%s%.2f", (r > 1 ? " " : ""), (a[r] > 0 ? b[r] / a[r] : 0) }' "$RESULTS")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')" "$per" "$2"
}
{
    echo
    echo "PostgreSQL store beside the file system store, CA $CA_TYPE, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "machine: $CORES cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg); compiler processes at start: $OTHERS; waited ${BENCH_WAITED}s"
    echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'): local cluster on $(df --output=fstype "$PG" | tail -1) (the data dirs' disk), Unix socket, fsync on, synchronous_commit on"
    echo "creates: POST /api/client-certs, $N per kind per round, $PAR at once (curl -Z); OCSP: wrk -t2 -c$CONNS -d${SECS}s, random serials of the store's round-1 certificates, answer cache filled first; $ROUNDS rounds, the stores alternating"
    echo
    {
        printf 'measure\tstore\tround\tcount\tseconds\tvalue\n'
        sort -t $'\t' -k1,1 -k3,3n -k2,2 "$RESULTS"
    } | column -t -s $'\t'
    echo
    {
        printf 'measure\tfs (median)\tpostgresql (median)\tpostgresql / fs\tper round\ttarget\n'
        summary_row 'create ed25519/s' '≥ 0.80'
        summary_row 'create csr-p256/s' '≥ 0.80'
        summary_row 'ocsp req/s' 'unchanged'
        summary_row 'ocsp p99 ms' 'unchanged'
    } | column -t -s $'\t'
} | tee "$LOGS/pg-table.txt"
