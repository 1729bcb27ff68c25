#!/usr/bin/env bash
# http.sh - the HTTP benchmark: `braid serve` answering POST /integrations/execute/NAME for the
# scenarios S0, S1 and S10 (bench/scenarios/), side by side in the same run with the ceiling
# (bench/ceiling.c, bare libmicrohttpd answering a fixed JSON document); then a sweep of
# requests/s against connections for braid S1 and the ceiling (the chart).
#
#   bench/http.sh RESULTS_DIR
#
# Writes RESULTS_DIR/http.jsonl (one line per wrk run: server, scenario, conns, round, phase,
# rps, latency percentiles, errors, the server's CPU seconds during the run),
# RESULTS_DIR/http_meta.json and RESULTS_DIR/http_commands.txt; bench/report.py reads them.
#
# Environment (defaults in brackets):
#   BENCH_BIN             directory holding braid and ceiling [build-release]
#   BENCH_HTTP_SCENARIOS  scenarios, names of bench/scenarios/*.json [s0 s1 s10]
#   BENCH_HTTP_RUNS       repetitions of each measurement [3]
#   BENCH_HTTP_SECS       seconds per measurement [5]
#   BENCH_HTTP_THREADS    HTTP threads of both servers (braid --http-threads) [2]
#   BENCH_SWEEP_CONNS     connection counts of the chart [1 2 4 8 16 32 64]
#   BENCH_SWEEP_RUNS      repetitions of each point of the chart [2]
#   BENCH_SWEEP_SECS      seconds per point [3]
#
# Each scenario has a braid server of its own (so each has its own peak memory); all servers
# run at once on 127.0.0.1 and are measured in turns (ceiling, then each scenario, in every
# round) so slow drifts of a shared machine fall on all alike. Every process started here is
# stopped on exit, error, SIGINT or SIGTERM. Figures are reported, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${BENCH_BIN:-build-release}
SCENARIOS=${BENCH_HTTP_SCENARIOS:-s0 s1 s10}
RUNS=${BENCH_HTTP_RUNS:-3}
SECS=${BENCH_HTTP_SECS:-5}
THREADS=${BENCH_HTTP_THREADS:-2}
SWEEP_CONNS=${BENCH_SWEEP_CONNS:-1 2 4 8 16 32 64}
SWEEP_RUNS=${BENCH_SWEEP_RUNS:-2}
SWEEP_SECS=${BENCH_SWEEP_SECS:-3}
WARMUP_SECS=2
out=${1:?usage: bench/http.sh RESULTS_DIR}
mkdir -p "$out"
bench_traps http

for s in $SCENARIOS; do
    [[ -f bench/scenarios/$s.json ]] || die "no scenario bench/scenarios/$s.json"
done
for p in "$BIN/braid" "$BIN/ceiling"; do
    [[ -x $p ]] || die "$p is missing; build first (make bench)"
done
command -v wrk >/dev/null || die "wrk is missing (Debian package wrk; scripts/deps.sh installs it)"

scen() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "bench/scenarios/$1.json" "$2"; }

# --- the servers -------------------------------------------------------------------------------
spawn ceiling_pid "$BIN/ceiling" --port 0 --threads "$THREADS" >"$BENCH_TMP/ceiling.out" 2>"$BENCH_TMP/ceiling.log"
ceiling_port=$(port_from "$BENCH_TMP/ceiling.out") || die "the ceiling did not start: $(cat "$BENCH_TMP/ceiling.log")"
ceiling_url="http://127.0.0.1:$ceiling_port/integrations/execute/bench/s1"
ceiling_body='{"n": 1}'
check "$ceiling_url" "" "$ceiling_body" '{"y": 2}'

declare -A pid port token url body idle
for s in $SCENARIOS; do
    start_braid "pid[$s]" "port[$s]" "$BENCH_TMP/data-$s"
    token[$s]=$(<"$BENCH_TMP/data-$s/admin.token")
    publish_scenario "${port[$s]}" "${token[$s]}" "bench/scenarios/$s.json"
    url[$s]="http://127.0.0.1:${port[$s]}/integrations/execute/$(scen "$s" 'd["entry"]')"
    body[$s]=$(scen "$s" 'json.dumps(d["payload"])')
    check "${url[$s]}" "${token[$s]}" "${body[$s]}" "$(scen "$s" 'json.dumps(d["expect"])')"
    idle[$s]=$(mem_kib "${pid[$s]}" VmRSS)
done

# --- measure -----------------------------------------------------------------------------------
results=$out/http.jsonl
: >"$results"
: >"$out/http_commands.txt"
# measure PHASE SERVER SCENARIO URL TOKEN BODY CONNS ROUND SECS PID: one wrk run, one line in
# $results. Round 0 is the warm-up and is dropped from the report.
measure() {
    local phase=$1 server=$2 scenario=$3 url=$4 tok=$5 body=$6 conns=$7 round=$8 secs=$9 spid=${10}
    local threads=$((conns < THREADS ? conns : THREADS))
    local cmd=(wrk "-t$threads" "-c$conns" "-d${secs}s" --latency -s bench/wrk_post.lua "$url")
    if [[ $phase == main && $round == 1 ]]; then
        printf '%s\n' "BENCH_BODY='$body'${tok:+ BENCH_TOKEN=\$TOKEN} ${cmd[*]}" |
            sed "s|127\.0\.0\.1:[0-9]*|127.0.0.1:PORT|" >>"$out/http_commands.txt"
    fi
    echo "bench: http $phase: $server $scenario, $conns connection(s), round $round" >&2
    local cpu0 cpu1
    cpu0=$(cpu_secs "$spid")
    BENCH_BODY=$body BENCH_TOKEN=$tok BENCH_OUT=$BENCH_TMP/one.jsonl \
        BENCH_TAG="\"phase\": \"$phase\", \"server\": \"$server\", \"scenario\": \"$scenario\", \"conns\": $conns, \"round\": $round" \
        run_fg "${cmd[@]}" >>"$BENCH_TMP/wrk.txt"
    cpu1=$(cpu_secs "$spid")
    # The server's CPU seconds during the run go into the same line.
    python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read()); r["server_cpu_s"]=float(sys.argv[2]); print(json.dumps(r))' \
        "$BENCH_TMP/one.jsonl" "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}')" >>"$results"
    rm -f "$BENCH_TMP/one.jsonl"
    sleep 0.5 # let braid's store writer finish the batch in hand before the next measurement
}

for round in $(seq 0 "$RUNS"); do
    conn_list="32 1"
    secs=$SECS
    ((round == 0)) && { conn_list=32; secs=$WARMUP_SECS; }
    for c in $conn_list; do
        measure main ceiling - "$ceiling_url" "" "$ceiling_body" "$c" "$round" "$secs" "$ceiling_pid"
        for s in $SCENARIOS; do
            measure main braid "$s" "${url[$s]}" "${token[$s]}" "${body[$s]}" "$c" "$round" "$secs" "${pid[$s]}"
        done
    done
done

# Peak memory: VmHWM is the resident high-water mark since the process started, here after
# the main measurements (the sweep below goes to 64 connections and is reported apart).
hwm_json=''
for s in $SCENARIOS; do
    kill -0 "${pid[$s]}" 2>/dev/null || die "braid ($s) died during the benchmark: $(tail -5 "$BENCH_TMP/data-$s.log")"
    hwm_json+="\"$s\": {\"idle_kib\": ${idle[$s]}, \"hwm_kib\": $(mem_kib "${pid[$s]}" VmHWM)}, "
done
ceiling_hwm=$(mem_kib "$ceiling_pid" VmHWM)

# --- the sweep (the chart): braid S1 and the ceiling at each connection count --------------------
if [[ " $SCENARIOS " == *" s1 "* ]]; then
    for round in $(seq 1 "$SWEEP_RUNS"); do
        for c in $SWEEP_CONNS; do
            measure sweep ceiling - "$ceiling_url" "" "$ceiling_body" "$c" "$round" "$SWEEP_SECS" "$ceiling_pid"
            measure sweep braid s1 "${url[s1]}" "${token[s1]}" "${body[s1]}" "$c" "$round" "$SWEEP_SECS" "${pid[s1]}"
        done
    done
    hwm_json+="\"s1_after_sweep\": {\"hwm_kib\": $(mem_kib "${pid[s1]}" VmHWM)}, "
fi

cat >"$out/http_meta.json" <<EOF2
{"scenarios": "$SCENARIOS", "runs": $RUNS, "secs": $SECS, "threads": $THREADS,
 "warmup_secs": $WARMUP_SECS, "sweep_conns": "$SWEEP_CONNS", "sweep_runs": $SWEEP_RUNS,
 "sweep_secs": $SWEEP_SECS, "memory": {${hwm_json}"ceiling": {"hwm_kib": $ceiling_hwm}},
 "wrk": "$(dpkg-query -W -f '${Version}' wrk 2>/dev/null || echo '?')",
 "mhd": "$(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')"}
EOF2
stop_all
