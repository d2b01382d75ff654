# shellcheck shell=bash
# Sourced by the bench/*.sh scripts (not run): logging, installing Debian packages, building
# build-bench, waiting for a quiet machine. Set BENCH_TAG before sourcing (the log prefix).
# The script has already cd'ed to the repository root; ROOT is that root.

log() { printf '[%s %s] %s\n' "${BENCH_TAG:-bench}" "$(date +%T)" "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}

# Installs those of the named Debian packages that are missing (as root, or through sudo).
bench_install() {
    local missing=() p sudo=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    log "installing: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Builds the named targets in build-bench (Release, no tests), and certmate itself unless
# CERTMATE_BIN names a binary already; exports CERTMATE_BIN. BENCH_CMAKE_ARGS adds CMake options.
bench_build() {
    local targets=("$@")
    if [ -z "${CERTMATE_BIN:-}" ]; then
        bash scripts/install-deps.sh
        targets+=(certmate)
    fi
    if [ ${#targets[@]} -gt 0 ]; then
        # shellcheck disable=SC2086 # BENCH_CMAKE_ARGS is a list of options
        cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCERTMATE_TESTS=OFF ${BENCH_CMAKE_ARGS:-} >/dev/null
        cmake --build build-bench -j2 --target "${targets[@]}"
    fi
    CERTMATE_BIN=${CERTMATE_BIN:-$ROOT/build-bench/certmate}
    [ -x "$CERTMATE_BIN" ] || die "no certmate binary at $CERTMATE_BIN"
    export CERTMATE_BIN
}

# Waits while a compiler or the CI's ASan build runs (polls every 60 s, at most $1 seconds; 0 = do
# not wait), so the figures are not distorted by a build sharing the cores. Sets BENCH_WAITED.
bench_wait_quiet() {
    local max=$1
    BENCH_WAITED=0
    while pgrep -f build-asan >/dev/null || pgrep -x cc1plus >/dev/null; do
        if [ "$BENCH_WAITED" -ge "$max" ]; then
            log "WARNING: a build is running; measuring anyway (figures distorted)"
            break
        fi
        log "a build is running (cc1plus / build-asan); waiting 60 s"
        sleep 60
        BENCH_WAITED=$((BENCH_WAITED + 60))
    done
    export BENCH_WAITED
}
