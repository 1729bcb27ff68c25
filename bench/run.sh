#!/usr/bin/env bash
# Runs braid's benchmarks on the optimised build (build-release/) and writes bench/report.md.
# Each figure is measured several times; the report gives min / median / max so the noise of a
# shared machine shows. Figures are never asserted anywhere: they are read, not tested.
# Sections: the in-process sync sub-call (bench_subcall), its profile notes (analysis.md), the
# outbound http task against a bare libcurl loop (bench_outbound, outbound_report.py), and the
# HTTP benchmark against the libmicrohttpd ceiling (http.sh, section appended at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build-release
RUNS=${BENCH_RUNS:-5}
CALLS=${BENCH_CALLS:-100000}
OUTBOUND=${BENCH_OUTBOUND:-20000}
out=bench/report.md
tmp=$(mktemp -d)
child=''
# Children run in the background and are waited for, so SIGINT/SIGTERM reach this trap at once;
# the child is stopped by its id (http.sh stops its own servers and wrk in its own trap).
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# run_child CMD...: run CMD in the background and wait for it; its exit status is returned.
run_child() {
    "$@" &
    child=$!
    local rc=0
    wait "$child" || rc=$?
    child=''
    return "$rc"
}

echo "bench: sync sub-call, $CALLS calls x $RUNS runs" >&2
for i in $(seq "$RUNS"); do
    run_child "$BIN/bench_subcall" "$CALLS" "$tmp/subcall-data-$i" call >>"$tmp/subcall.jsonl"
    run_child "$BIN/bench_subcall" "$CALLS" "$tmp/callint-data-$i" callint >>"$tmp/subcall.jsonl"
done

echo "bench: outbound http task against a bare libcurl loop, $OUTBOUND requests x $RUNS runs" >&2
for i in $(seq "$RUNS"); do
    run_child "$BIN/bench_outbound" "$OUTBOUND" "$tmp/outbound-data-$i" >>"$tmp/outbound.jsonl"
done
python3 bench/outbound_report.py "$tmp/outbound.jsonl" "$OUTBOUND" >"$tmp/outbound.md"

echo "bench: HTTP, braid S1 against the libmicrohttpd ceiling" >&2
run_child env BENCH_BIN="$BIN" bash bench/http.sh "$tmp/http.md"

python3 - "$tmp/subcall.jsonl" "$out" "$CALLS" "$RUNS" <<'PY'
import json, platform, statistics, subprocess, sys, datetime
all_rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in all_rows if r.get("mode", "call") == "call"]
ci = sorted(r["us_per_call"] for r in all_rows if r.get("mode") == "callint")
us = sorted(r["us_per_call"] for r in rows)
rpc = sorted(r["runs_per_commit"] for r in rows)
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name:\\s*//p'"], capture_output=True, text=True).stdout.strip()
mem = subprocess.run(["sh", "-c", "free -h | awk '/Mem:/{print $2}'"], capture_output=True, text=True).stdout.strip()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
with open(sys.argv[2], "w") as f:
    f.write("# braid benchmark report\n\n")
    f.write(f"Generated {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')} by `make bench` at commit `{commit}`.\n\n")
    f.write(f"Machine: {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, {mem} memory; {platform.platform()}.\n\n")
    f.write("## Sync sub-call cost (in process, history on)\n\n")
    f.write(f"A parent calls a child {sys.argv[3]} times (`for_each`, parallelism 1); the child binds\n")
    f.write("one integer input and answers `{\"y\": x + 1}`. Every child run and step is recorded in\n")
    f.write("the SQLite store (group commit, `synchronous=FULL`, WAL); the time includes the final\n")
    f.write("commit. Command: `build-release/bench_subcall " + sys.argv[3] + "`.\n\n")
    f.write(f"| figure | min | median | max | goal |\n|---|---|---|---|---|\n")
    f.write(f"| µs per sub-call ({sys.argv[4]} runs) | {us[0]:.2f} | {statistics.median(us):.2f} | {us[-1]:.2f} | ≤ 5 |\n")
    f.write(f"| runs per store commit | {rpc[0]:.0f} | {statistics.median(rpc):.0f} | {rpc[-1]:.0f} | |\n")
    if ci:
        f.write(f"| µs per sub-call through `callint()` ({len(ci)} runs) | {ci[0]:.2f} | {statistics.median(ci):.2f} | {ci[-1]:.2f} | |\n")
        f.write("\nThe `callint()` row: the parent is one Lua `script` task that calls the same child\n")
        f.write("with `callint('bench/child', {x = i})` in a loop, the same number of times\n")
        f.write("(`build-release/bench_subcall " + sys.argv[3] + " DIR callint`). Both paths end in the same engine\n")
        f.write("call; the difference is the Lua round trip (table to JSON and back), and the\n")
        f.write("`for_each` variant also builds the whole result array.\n")
print(open(sys.argv[2]).read())
PY
{
    printf '\n'
    cat bench/analysis.md
    printf '\n'
    cat "$tmp/outbound.md"
    printf '\n'
    cat "$tmp/http.md"
    printf '\n'
    cat bench/http_analysis.md
} >>"$out"
