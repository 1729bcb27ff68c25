#!/usr/bin/env bash
# Installs the Debian packages that only `make bench` needs, on top of scripts/deps.sh:
# gnuplot (the requests/s chart), nginx (the upstream of the outbound benchmark), curl (the
# scripts publish and check with it) and procps (free).
# Idempotent and quiet: when everything is present it prints nothing and exits 0.
# Kept apart from scripts/deps.sh so that CI's test run installs none of it.
set -euo pipefail

packages=(gnuplot-nox nginx curl procps)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps-bench: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# policy-rc.d: the nginx package must not start (and keep running) a system-wide nginx; the
# bench starts its own on 127.0.0.1 with a config of its own and stops it.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    made_policy=1
fi
rc=0
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
[ "$made_policy" -eq 0 ] || $SUDO rm -f "$policy"
exit "$rc"
