#!/usr/bin/env bash
# clang-format over the C++ sources (.clang-format): `scripts/format.sh` rewrites them,
# `scripts/format.sh --check` lists the files that differ and fails (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'app/*.cpp' 'app/*.hpp' 'core/*.cpp' 'core/*.hpp' 'net/*.cpp' 'net/*.hpp' \
                                  'storage/*.cpp' 'storage/*.hpp' 'test/*.cpp' 'test/*.hpp' 'bench/*.cpp' 'bench/*.hpp' \
                                  'fuzz/*.cpp' 'fuzz/*.hpp')
if [ "${1:-}" = --check ]; then
  bad=()
  for f in "${files[@]}"; do
    clang-format --style=file "$f" | cmp -s - "$f" || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'not clang-formatted (run scripts/format.sh):\n'; printf '  %s\n' "${bad[@]}"
    exit 1
  fi
  echo "format: ${#files[@]} files clean"
else
  clang-format --style=file -i "${files[@]}"
fi
