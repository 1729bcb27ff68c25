#!/usr/bin/env bash
# Runs braid's benchmarks on the optimised build (build-release/) and writes bench/report.md.
# Each figure is measured several times; the report gives min / median / max so the noise of a
# shared machine shows. Figures are never asserted anywhere: they are read, not tested.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build-release
RUNS=${BENCH_RUNS:-5}
CALLS=${BENCH_CALLS:-100000}
out=bench/report.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "bench: sync sub-call, $CALLS calls x $RUNS runs" >&2
for i in $(seq "$RUNS"); do
    "$BIN/bench_subcall" "$CALLS" >>"$tmp/subcall.jsonl"
done

python3 - "$tmp/subcall.jsonl" "$out" "$CALLS" "$RUNS" <<'PY'
import json, platform, statistics, subprocess, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
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
print(open(sys.argv[2]).read())
PY
printf '\n' >>"$out"
cat bench/analysis.md >>"$out"
