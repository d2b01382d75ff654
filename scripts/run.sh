#!/usr/bin/env bash
# Installs what is missing, builds (Release) and starts CertMate on the embedded default:
# data in ./data, http://127.0.0.1:8080, a CA made on first start, the admin token printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_TYPE=Release bash scripts/build.sh build -DCERTMATE_TESTS=OFF
exec ./build/certmate serve --data-dir ./data "$@"
