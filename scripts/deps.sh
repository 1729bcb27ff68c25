#!/usr/bin/env bash
# Installs the Debian packages braid needs to build, test and run its demo.
# Idempotent and quiet: when everything is present it prints nothing and exits 0.
set -euo pipefail
. "$(dirname "$0")/apt.sh"

apt_ensure deps \
    build-essential cmake pkg-config \
    libjansson-dev libsqlite3-dev libmicrohttpd-dev libsodium-dev liblua5.4-dev \
    libcmocka-dev libcurl4-openssl-dev iproute2 util-linux \
    python3 python3-pytest python3-requests \
    wrk
