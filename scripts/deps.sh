#!/usr/bin/env bash
# Installs the Debian packages braid needs to build, test and run its demo.
# Idempotent and quiet: when everything is present it prints nothing and exits 0.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libjansson-dev libsqlite3-dev libmicrohttpd-dev libsodium-dev liblua5.4-dev
    libcmocka-dev libcurl4-openssl-dev iproute2 util-linux
    python3 python3-pytest python3-requests
    wrk
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
