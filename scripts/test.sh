#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite through CTest: once in
# Release, once with AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
CERTMATE_TEST_DEPS=1 bash scripts/install-deps.sh
# The OpenAPI 3.1 validator (npm ci, pinned); without npm the ctest test openapi_document is skipped.
if command -v npm >/dev/null; then bash scripts/openapi.sh install; else echo "npm not found: openapi_document will be skipped"; fi
jobs=$(nproc)
BUILD_TYPE=Release bash scripts/build.sh build-test
ctest --test-dir build-test --output-on-failure -j"$jobs"
if [ "${CERTMATE_SKIP_SANITIZERS:-0}" != 1 ]; then
  BUILD_TYPE=Debug bash scripts/build.sh build-asan -DCERTMATE_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
fi
