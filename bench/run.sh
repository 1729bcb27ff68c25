#!/usr/bin/env bash
# run.sh - braid's benchmarks on the optimised build (build-release/); writes bench/report.md and
# bench/chart.svg. `make bench` builds, installs the bench-only packages
# (scripts/deps-bench.sh) and runs this.
#
# Stages, each writing raw figures (JSON lines) into one results directory that
# bench/report.py turns into the report:
#   1. bench_subcall    in-process sync sub-call, history on (also through callint())
#   2. bench_outbound   in-process outbound http task against a bare libcurl loop
#   3. http.sh          S0 / S1 / S10 over HTTP against the libmicrohttpd ceiling; the chart sweep
#   4. async.sh         durable async: accept and drain; memory with scheduled runs
#   5. outbound_http.sh outbound http tasks over HTTP against a libcurl multi loop, local nginx
#
# Each figure is measured several times; the report gives min / median / max so the noise of a
# shared machine shows. Figures are never asserted anywhere: they are read, not tested.
# Everything listens on 127.0.0.1 only. Every process started, here or by a stage, is stopped
# on exit, error, SIGINT or SIGTERM (each stage's own trap stops its servers, nginx and wrk).
#
# Environment: BENCH_RUNS [5] repetitions of the in-process figures, BENCH_CALLS [100000],
# BENCH_OUTBOUND [20000]; BENCH_KEEP=DIR keeps the raw results in DIR. The stages take their
# own settings (see each script's header).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=build-release
RUNS=${BENCH_RUNS:-5}
CALLS=${BENCH_CALLS:-100000}
OUTBOUND=${BENCH_OUTBOUND:-20000}
bench_traps run
results=${BENCH_KEEP:-$BENCH_TMP/results}
mkdir -p "$results"
rm -f "$results"/*.jsonl "$results"/*.json "$results"/*.txt "$results"/chart.dat
start=$(date +%s)
export BENCH_BIN=$BIN

stage() {
    local t0=$SECONDS name=$1
    shift
    run_fg "$@"
    printf '{"stage": "%s", "seconds": %d}\n' "$name" $((SECONDS - t0)) >>"$results/stages.jsonl"
}

# 1 and 2: in process.
subcall() {
    local i
    for i in $(seq "$RUNS"); do
        echo "bench: in-process sync sub-call, $CALLS calls, round $i of $RUNS" >&2
        run_fg "$BIN/bench_subcall" "$CALLS" "$BENCH_TMP/subcall-data-$i" call >>"$results/subcall.jsonl"
        run_fg "$BIN/bench_subcall" "$CALLS" "$BENCH_TMP/callint-data-$i" callint >>"$results/subcall.jsonl"
        rm -rf "$BENCH_TMP/subcall-data-$i" "$BENCH_TMP/callint-data-$i"
    done
}
outbound() {
    local i
    for i in $(seq "$RUNS"); do
        echo "bench: in-process outbound http task against a bare libcurl loop, round $i of $RUNS" >&2
        run_fg "$BIN/bench_outbound" "$OUTBOUND" "$BENCH_TMP/outbound-data-$i" >>"$results/outbound.jsonl"
        rm -rf "$BENCH_TMP/outbound-data-$i"
    done
}
: >"$results/stages.jsonl"
stage subcall subcall
stage outbound outbound
stage http bash bench/http.sh "$results"
stage async bash bench/async.sh "$results"
stage outbound_http bash bench/outbound_http.sh "$results"

# Versions and the machine, for the report's head.
ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }
python3 - "$results/env.json" <<PY
import json, sys
json.dump({
    "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo '?')",
    "dirty": $( [[ -n $(git status --porcelain -- src bench 2>/dev/null) ]] && echo True || echo False),
    "cpu": "$(lscpu | sed -n 's/^Model name:\s*//p' | head -1)",
    "cores": "$(nproc)",
    "memory": "$(free -h | awk '/Mem:/{print $2}')",
    "kernel": "$(uname -sr)",
    "os": "$(. /etc/os-release && echo "$PRETTY_NAME")",
    "disk": "$(df -h --output=fstype,source "$BENCH_TMP" | tail -1 | tr -s ' ')",
    "versions": {
        "gcc": "$(gcc -dumpfullversion 2>/dev/null || echo '?')",
        "cmake": "$(cmake --version | head -1 | awk '{print $3}')",
        "sqlite": "$(pkg-config --modversion sqlite3)",
        "jansson": "$(pkg-config --modversion jansson)",
        "libmicrohttpd": "$(pkg-config --modversion libmicrohttpd)",
        "libcurl": "$(pkg-config --modversion libcurl)",
        "lua": "$(pkg-config --modversion lua5.4)",
        "libsodium": "$(pkg-config --modversion libsodium)",
        "wrk": "$(ver wrk)",
        "nginx": "$(ver nginx)",
        "gnuplot": "$(ver gnuplot-nox)",
    },
    "build": "$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BIN/CMakeCache.txt") ($(sed -n 's/^CMAKE_C_FLAGS_RELEASE:STRING=//p' "$BIN/CMakeCache.txt"))",
    "runs": $RUNS, "calls": $CALLS, "outbound": $OUTBOUND,
    "total_seconds": $(($(date +%s) - start)),
}, open(sys.argv[1], "w"), indent=1)
PY
python3 bench/report.py "$results" bench/report.md bench/chart.svg
echo "bench: wrote bench/report.md and bench/chart.svg in $(($(date +%s) - start)) s" >&2
