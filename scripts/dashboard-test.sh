#!/usr/bin/env bash
# The dashboard test's tools (test/dashboard: playwright-core from the npm registry, pinned in
# package-lock.json; it drives Debian's /usr/bin/chromium and never downloads a browser):
#   install   npm ci in test/dashboard (scripts/test.sh runs it; the ctest test test_dashboard
#             runs it too when node_modules is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-install}" in
  install)
    command -v npm >/dev/null || { echo "npm not found: install Node.js 20 and npm" >&2; exit 1; }
    (cd test/dashboard && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
