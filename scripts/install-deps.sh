#!/usr/bin/env bash
# Installs the Debian 12 packages CertMate needs to build, run and test, if any is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config ccache git curl openssl libssl-dev zlib1g-dev
      libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev libboost-test1.81-dev
      libspdlog-dev libsystemd-dev libpq-dev systemd jq clang-format lintian clang llvm)
# CERTMATE_TEST_DEPS=1 (scripts/test.sh): also Debian's Chromium, driven by the dashboard test
# (test/dashboard, playwright-core; never a browser download); the PostgreSQL server, for the throwaway clusters of the PostgreSQL store's tests, and nginx, the
# load balancer in front of two instances (test_ha).
if [ "${CERTMATE_TEST_DEPS:-0}" = 1 ]; then pkgs+=(chromium postgresql nginx); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
