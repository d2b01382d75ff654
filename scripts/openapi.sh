#!/usr/bin/env bash
# The OpenAPI document's tools (docs/api.md "The OpenAPI document"), from the npm registry with
# versions pinned in test/openapi/package-lock.json:
#   install   npm ci in test/openapi (the validator and a YAML parser)
#   write     regenerate docs/openapi.json from docs/openapi.yaml (commit both)
#   check     validate both as OpenAPI 3.1 and check they agree (also the ctest test openapi_document)
set -euo pipefail
cd "$(dirname "$0")/.."
tools=test/openapi
install() {
  command -v npm >/dev/null || { echo "npm not found: install Node.js 20 and npm" >&2; exit 1; }
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
}
version=$(sed -n 's/^project(certmate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
case "${1:-check}" in
  install) install ;;
  write)
    [ -d "$tools/node_modules" ] || install
    node "$tools/check.mjs" write docs/openapi.yaml docs/openapi.json
    node "$tools/check.mjs" check docs/openapi.yaml docs/openapi.json "$version" ;;
  check)
    [ -d "$tools/node_modules" ] || install
    node "$tools/check.mjs" check docs/openapi.yaml docs/openapi.json "$version" ;;
  *) echo "usage: $0 install|write|check" >&2; exit 2 ;;
esac
