#!/usr/bin/env bash
# Builds the libFuzzer targets (CERTMATE_FUZZ=ON, clang, in build-fuzz) and runs each for
# SECONDS (default 60) over its seed corpus fuzz/corpus/<target>/ (docs/fuzzing.md).
# New corpus entries go to build-fuzz/corpus/<target>/ (the committed seeds are not touched).
# Prints exec/s and corpus size per target; exits non-zero on a crash, keeping the input as
# build-fuzz/crashes/<target>/crash-*.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
dir=${CERTMATE_FUZZ_BUILD:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCERTMATE_FUZZ=ON -DCERTMATE_TESTS=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target fuzz_all
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do
    t=$(basename "$f" .cpp)
    targets+=("${t#fuzz_}")
  done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# One target: its summary line in $dir/logs/summary_<t>, and exit 1 on a crash.
fuzz_one() {
  local t=$1
  local corpus="$dir/corpus/$t" crashes="$dir/crashes/$t" log="$dir/logs/fuzz_$t.log"
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  echo "== fuzz $t for ${seconds} s"
  local rc=0
  "$dir/fuzz_$t" "$corpus" "fuzz/corpus/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1 &
  local pid=$!
  wait "$pid" || rc=$?
  # The target's scratch files (fuzz/support/fuzz_support.hpp), left behind when it did not exit normally.
  rm -rf "/dev/shm/certmate-fuzz-$pid"
  local execs runs cov units bytes line
  execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  units=$(find "$corpus" -type f | wc -l)
  bytes=$(du -sb "$corpus" | cut -f1)
  line=$(printf '%-8s exec/s %-7s runs %-9s cov %-6s corpus %s files, %s bytes' "$t" "${execs:-?}" "${runs:-?}" \
    "${cov:-?}" "$units" "$bytes")
  if [ "$rc" -ne 0 ]; then
    line="$line  CRASH (exit $rc): $(ls "$crashes" | head -3 | tr '\n' ' ')see $log"
    grep -m20 -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" || true
  fi
  echo "$line" | tee "$dir/logs/summary_$t"
  [ "$rc" -eq 0 ]
}
# Targets run CERTMATE_FUZZ_JOBS at a time (default: one per core; each fuzzer is one thread).
parallel=${CERTMATE_FUZZ_JOBS:-$(nproc)}
failed=()
summary=()
pids=()
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  fuzz_one "$t" &
  pids+=("$!")
done
for i in "${!targets[@]}"; do
  wait "${pids[$i]}" || failed+=("${targets[$i]}")
  summary+=("$(cat "$dir/logs/summary_${targets[$i]}")")
done
echo "== fuzz summary (${seconds} s per target, $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "crashes in: ${failed[*]} (inputs in $dir/crashes/)"
  exit 1
fi
