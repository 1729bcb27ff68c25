#!/usr/bin/env bash
# async.sh - durable async runs and scheduled runs over HTTP.
#
#   bench/async.sh RESULTS_DIR
#
# 1. Durable async: a fresh server accepts N async executions of S0
#    (`POST /integrations/execute/bench/s0?mode=async`, 32 connections, wrk with
#    bench/wrk_count.lua) while its workers drain them; bench/async_watch.py reads GET /metrics
#    and the store's commit counter. The server is bench_serve (bench/bench_serve.c): the same
#    server, engine and store as `braid serve`, which also writes the store's commit count to a
#    file — the only way to count commits from outside without touching src/.
# 2. Drain alone: N queued runs of S0 are put in a fresh store by the command line, with no
#    worker about (`braid run bench/fill`, a for_each of async calls to bench/s0, N / 10000
#    times: the runs are children of 10 roots); then bench_serve starts on that store and its
#    workers drain the backlog. Timed from the server's start until braid_runs_finished_total
#    reaches N (GET /metrics every 100 ms: each scrape counts the queue, some ms of server CPU
#    while the backlog is large); the server's CPU and store commits over the same span.
# 3. Scheduled runs: a fresh `braid serve`; its resident size idle; then M runs scheduled an
#    hour ahead (an integration whose async call_integration has delay_ms 3600000, for_each over
#    M / 10 items, executed 10 times); the resident size then, and after a restart with the M
#    scheduled runs in the store.
#
# Writes RESULTS_DIR/async.jsonl, RESULTS_DIR/drain.jsonl and RESULTS_DIR/scheduled.jsonl (one
# line per repetition) and RESULTS_DIR/async_commands.txt.
#
# Environment: BENCH_BIN [build-release], BENCH_ASYNC_N [100000], BENCH_ASYNC_RUNS [3],
# BENCH_DRAIN_N [100000, a multiple of 10000], BENCH_DRAIN_RUNS [3], BENCH_SCHED_N [100000],
# BENCH_SCHED_RUNS [2], BENCH_ASYNC_WORKERS [4, braid's default]. A RUNS of 0 skips its part.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${BENCH_BIN:-build-release}
N=${BENCH_ASYNC_N:-100000}
RUNS=${BENCH_ASYNC_RUNS:-3}
DRAIN_N=${BENCH_DRAIN_N:-100000}
DRAIN_RUNS=${BENCH_DRAIN_RUNS:-3}
SCHED_N=${BENCH_SCHED_N:-100000}
SCHED_RUNS=${BENCH_SCHED_RUNS:-2}
WORKERS=${BENCH_ASYNC_WORKERS:-4}
THREADS=2
out=${1:?usage: bench/async.sh RESULTS_DIR}
mkdir -p "$out"
bench_traps async
for p in "$BIN/braid" "$BIN/bench_serve"; do
    [[ -x $p ]] || die "$p is missing; build first (make bench)"
done

s0_doc=$BENCH_TMP/s0.json
python3 -c 'import json; print(json.dumps(json.load(open("bench/scenarios/s0.json"))["integrations"][0]))' >"$s0_doc"

cat >"$out/async_commands.txt" <<EOF2
build-release/bench_serve --listen 127.0.0.1:0 --http-threads $THREADS --grace-ms 2000 --data DATA --commits DATA.commits --workers $WORKERS
BENCH_TOTAL=$N BENCH_THREADS=2 BENCH_BODY='{"n": 1}' BENCH_TOKEN=\$TOKEN wrk -t2 -c32 -d600s -s bench/wrk_count.lua 'http://127.0.0.1:PORT/integrations/execute/bench/s0?mode=async'
python3 bench/async_watch.py PORT \$TOKEN $N DATA.commits T0 600 COMMITS0
EOF2

# --- 1. durable async ----------------------------------------------------------------------------
: >"$out/async.jsonl"
for round in $(seq 1 "$RUNS"); do
    echo "bench: async: accept and drain $N runs, round $round of $RUNS" >&2
    data=$BENCH_TMP/async-$round
    SERVE=("$BIN/bench_serve" --commits "$data.commits" --workers "$WORKERS")
    start_braid spid sport "$data"
    unset SERVE
    token=$(<"$data/admin.token")
    publish "$sport" "$token" "$s0_doc"
    sleep 0.2
    c0=$(<"$data.commits")
    cpu0=$(cpu_secs "$spid")
    t0=$(date +%s.%N)
    BENCH_TOTAL=$N BENCH_THREADS=2 BENCH_BODY='{"n": 1}' BENCH_TOKEN=$token \
        BENCH_OUT=$BENCH_TMP/wrk-async.jsonl BENCH_TAG="\"round\": $round" \
        spawn wrk_pid wrk -t2 -c32 -d600s -s bench/wrk_count.lua \
        "http://127.0.0.1:$sport/integrations/execute/bench/s0?mode=async" >/dev/null
    run_fg python3 bench/async_watch.py "$sport" "$token" "$N" "$data.commits" "$t0" 600 "$c0" \
        >"$BENCH_TMP/watch.json"
    cpu1=$(cpu_secs "$spid")
    forget "$wrk_pid"
    python3 - "$BENCH_TMP/watch.json" "$round" "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}')" \
        "$(mem_kib "$spid" VmHWM)" >>"$out/async.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if r.get("timeout"):
    sys.exit("bench: async: the runs did not drain in time: " + json.dumps(r))
r.update(round=int(sys.argv[2]), server_cpu_s=float(sys.argv[3]), hwm_kib=int(sys.argv[4]))
r["accepted_per_s"] = r["accepted"] / r["t_accepted"]
r["finished_per_s"] = r["accepted_total"] / r["t_drained"]
backlog = r["accepted"] - r["finished_at_accept"]
r["backlog_at_accept"] = backlog
r["drain_per_s"] = backlog / (r["t_drained"] - r["t_accepted"]) if backlog > 1000 else None
r["commits_per_run"] = (r["commits_end"] - r["commits0"]) / r["accepted_total"]
r["runs_per_commit"] = r["accepted_total"] / max(1, r["commits_end"] - r["commits0"])
print(json.dumps(r))
PY
    forget "$spid"
    rm -rf "$data"
done

# --- 2. drain alone -------------------------------------------------------------------------------
cat >"$BENCH_TMP/fill.json" <<'EOF2'
{"name": "bench/fill", "inputs": {"items": {"type": "array", "required": true}},
 "outputs": {"queued": "{{tasks.each.result | length}}"},
 "tasks": [{"id": "each", "type": "call_integration", "integration": "bench/s0",
            "strategy": "async", "for_each": "{{vars.items}}", "input": {"n": "{{item}}"}}]}
EOF2
python3 -c 'import json; print(json.dumps({"items": list(range(10000))}))' >"$BENCH_TMP/fill-body.json"
# PORT TOKEN N T0 TIMEOUT_S: polls GET /metrics until N runs have finished; one JSON line.
cat >"$BENCH_TMP/drain_watch.py" <<'PY'
import json, sys, time, urllib.request
port, token, n, t0, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
while True:
    now = time.time()
    with urllib.request.urlopen(req, timeout=10) as r:
        fin = sum(int(float(l.split()[-1])) for l in r.read().decode().splitlines()
                  if l.startswith("braid_runs_finished_total{"))
    if fin >= n or now - t0 > timeout:
        print(json.dumps({"finished": fin, "t_drained": now - t0, "timeout": fin < n}))
        break
    time.sleep(0.1)
PY
cat >>"$out/async_commands.txt" <<EOF2
# $((DRAIN_N / 10000)) times, no server running; bench/async.sh holds bench/fill (for_each async calls of bench/s0)
build-release/braid run bench/fill --data DATA --input @fill-body.json   # {"items": [0, 1, ..., 9999]}
build-release/bench_serve --listen 127.0.0.1:0 --http-threads $THREADS --grace-ms 2000 --data DATA --commits DATA.commits --workers $WORKERS
EOF2
: >"$out/drain.jsonl"
for round in $(seq 1 "$DRAIN_RUNS"); do
    echo "bench: async: drain $DRAIN_N queued runs, round $round of $DRAIN_RUNS" >&2
    data=$BENCH_TMP/drain-$round
    mkdir -p "$data"
    run_fg "$BIN/braid" publish --data "$data" "$s0_doc" >/dev/null
    run_fg "$BIN/braid" publish --data "$data" "$BENCH_TMP/fill.json" >/dev/null
    for i in $(seq $((DRAIN_N / 10000))); do
        run_fg "$BIN/braid" run bench/fill --data "$data" --input @"$BENCH_TMP/fill-body.json" \
            >/dev/null || die "filling the queue failed"
    done
    t0=$(date +%s.%N)
    SERVE=("$BIN/bench_serve" --commits "$data.commits" --workers "$WORKERS")
    start_braid spid sport "$data"
    unset SERVE
    token=$(<"$data/admin.token")
    run_fg python3 "$BENCH_TMP/drain_watch.py" "$sport" "$token" "$DRAIN_N" "$t0" 600 \
        >"$BENCH_TMP/drain.json"
    cpu=$(cpu_secs "$spid")
    forget "$spid"
    commits=$(<"$data.commits") # written once more as it stopped
    python3 - "$BENCH_TMP/drain.json" "$round" "$DRAIN_N" "$cpu" "$commits" >>"$out/drain.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if r["timeout"]:
    sys.exit("bench: drain: the runs did not drain in time: " + json.dumps(r))
n, cpu, commits = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
r.update(round=int(sys.argv[2]), n=n, server_cpu_s=cpu, commits=commits,
         drained_per_s=n / r["t_drained"], cpu_us_per_run=cpu * 1e6 / n, commits_per_run=commits / n)
print(json.dumps(r))
PY
    rm -rf "$data" "$data.out" "$data.log" "$data.commits"
done

# --- 3. scheduled runs ----------------------------------------------------------------------------
per=$((SCHED_N / 10))
cat >"$BENCH_TMP/sched-child.json" <<'EOF2'
{"name": "bench/later", "inputs": {"x": {"type": "integer", "required": true}},
 "outputs": ["y"], "tasks": [{"id": "inc", "type": "set", "values": {"y": "{{vars.x + 1}}"}}]}
EOF2
cat >"$BENCH_TMP/sched-parent.json" <<'EOF2'
{"name": "bench/schedule", "inputs": {"items": {"type": "array", "required": true}},
 "outputs": {"scheduled": "{{tasks.later.result | length}}"},
 "tasks": [{"id": "later", "type": "call_integration", "integration": "bench/later",
            "strategy": "async", "delay_ms": 3600000, "for_each": "{{vars.items}}",
            "input": {"x": "{{item}}"}}]}
EOF2
python3 -c 'import json,sys; print(json.dumps({"items": list(range(int(sys.argv[1])))}))' "$per" \
    >"$BENCH_TMP/sched-body.json"
cat >>"$out/async_commands.txt" <<EOF2
build-release/braid serve --listen 127.0.0.1:0 --http-threads $THREADS --grace-ms 2000 --data DATA
# 10 times; bench/async.sh holds bench/later and bench/schedule (delay_ms 3600000, for_each)
curl -X POST -H "Authorization: Bearer \$TOKEN" --data-binary '{"items": [0, 1, ..., $((per - 1))]}' http://127.0.0.1:PORT/integrations/execute/bench/schedule
EOF2
: >"$out/scheduled.jsonl"
for round in $(seq 1 "$SCHED_RUNS"); do
    echo "bench: memory: idle, then $SCHED_N scheduled runs, round $round of $SCHED_RUNS" >&2
    data=$BENCH_TMP/sched-$round
    start_braid spid sport "$data"
    token=$(<"$data/admin.token")
    sleep 1
    idle=$(mem_kib "$spid" VmRSS)
    publish "$sport" "$token" "$BENCH_TMP/sched-child.json"
    publish "$sport" "$token" "$BENCH_TMP/sched-parent.json"
    t0=$(date +%s.%N)
    for i in $(seq 10); do
        code=$(run_fg curl -sS -m 300 -o "$BENCH_TMP/sched-answer.json" -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data-binary @"$BENCH_TMP/sched-body.json" \
            "http://127.0.0.1:$sport/integrations/execute/bench/schedule")
        [[ $code == 200 ]] || die "scheduling answered $code: $(head -c 500 "$BENCH_TMP/sched-answer.json")"
    done
    t1=$(date +%s.%N)
    scheduled=$(metric "$sport" "$token" braid_queue_depth 'status="scheduled"')
    ((scheduled >= SCHED_N)) || die "$scheduled runs scheduled, $SCHED_N wanted"
    rss=$(mem_kib "$spid" VmRSS)
    hwm=$(mem_kib "$spid" VmHWM)
    forget "$spid"
    # The same data directory again: the scheduled runs are now only in the store.
    start_braid spid sport "$data"
    sleep 2
    rss_restart=$(mem_kib "$spid" VmRSS)
    scheduled_restart=$(metric "$sport" "$token" braid_queue_depth 'status="scheduled"')
    forget "$spid"
    db_kib=$(du -sk "$data" | cut -f1)
    printf '{"round": %d, "n": %d, "idle_kib": %d, "rss_kib": %d, "hwm_kib": %d, "rss_restart_kib": %d, "scheduled": %d, "scheduled_restart": %d, "schedule_s": %s, "data_kib": %d}\n' \
        "$round" "$SCHED_N" "$idle" "$rss" "$hwm" "$rss_restart" "$scheduled" "$scheduled_restart" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')" "$db_kib" >>"$out/scheduled.jsonl"
    rm -rf "$data" "$data.out" "$data.log"
done
stop_all
