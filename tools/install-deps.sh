#!/usr/bin/env bash
# Installs what the build and the tests need and is missing: Debian packages, then npm ci.
# Idempotent: a machine that has everything is left alone in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev libcmocka-dev
  nodejs npm chromium fonts-liberation wrk
  patchelf zip unzip debootstrap shellcheck azure-cli ca-certificates openssl
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere than Debian (a newer build); a working node and npm are enough.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules was not installed from this very lock file. The lock file's hash is
# compared, not its time: a checkout (or a git worktree sharing node_modules) gives the lock file
# a new time without changing it, and npm ci empties node_modules before it fills it again.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.enviromon-lock-sha256
if [ ! -f node_modules/.package-lock.json ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >"$stamp"
fi
