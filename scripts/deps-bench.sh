#!/usr/bin/env bash
# Installs the Debian packages that only `make bench` needs, on top of scripts/deps.sh:
# gnuplot (the requests/s chart), nginx (the upstream of the outbound benchmark), curl (the
# scripts publish and check with it) and procps (free). Kept apart from scripts/deps.sh so that
# CI's test run installs none of it. The nginx package must not start (and keep running) a
# system-wide nginx: the bench starts its own on 127.0.0.1 and stops it.
# Idempotent and quiet: when everything is present it prints nothing and exits 0.
set -euo pipefail
. "$(dirname "$0")/apt.sh"

APT_NO_START=1 apt_ensure deps-bench gnuplot-nox nginx curl procps
