#!/usr/bin/env bash
# http.sh - the HTTP benchmark: `braid serve` answering POST /integrations/execute/NAME for each
# scenario in bench/scenarios/, side by side in the same run with the ceiling (bench/ceiling.c,
# bare libmicrohttpd answering a fixed JSON document). Writes one Markdown report section.
#
#   bench/http.sh [SECTION_FILE]        default: the section goes to standard output
#
# Environment (defaults in brackets):
#   BENCH_BIN             directory holding braid and ceiling [build-release]
#   BENCH_HTTP_SCENARIOS  scenarios, names of bench/scenarios/*.json [s1]
#   BENCH_HTTP_CONNS      connection counts for the requests/s runs [32]
#   BENCH_HTTP_RUNS       repetitions of each measurement [3]
#   BENCH_HTTP_SECS       seconds per measurement [10]
#   BENCH_HTTP_THREADS    HTTP threads of both servers (braid --http-threads) [2]
#
# Only 127.0.0.1. Every process started here is stopped on exit, error, SIGINT or SIGTERM.
# Measurements are interleaved (ceiling, then each scenario, in every round) so slow drifts of a
# shared machine fall on both sides alike. Figures are reported, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-build-release}
SCENARIOS=${BENCH_HTTP_SCENARIOS:-s1}
CONNS=${BENCH_HTTP_CONNS:-32}
RUNS=${BENCH_HTTP_RUNS:-3}
SECS=${BENCH_HTTP_SECS:-10}
THREADS=${BENCH_HTTP_THREADS:-2}
WARMUP_SECS=3
section=${1:-/dev/stdout}

tmp=$(mktemp -d /tmp/braid-bench-http.XXXXXX)
braid_pid='' ceiling_pid='' wrk_pid=''

# PID: SIGTERM, up to 5 s to go, then SIGKILL; reaps it. A zombie counts as gone.
stop() {
    local p=$1 i st
    [[ -n $p ]] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for i in $(seq 50); do
        st=$(cat "/proc/$p/stat" 2>/dev/null) || break
        st=${st##*) }
        [[ ${st:0:1} == Z ]] && break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop "$wrk_pid"
    stop "$braid_pid"
    stop "$ceiling_pid"
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "bench/http.sh: $*" >&2
    exit 1
}

# Runs a command in the background and waits for it, so a signal reaches the traps at once
# instead of after the command ends.
run_bg() {
    "$@" &
    wrk_pid=$!
    wait "$wrk_pid"
    wrk_pid=''
}

# FILE: the port from the 'listening on http://127.0.0.1:PORT' line, waiting up to 10 s.
port_from() {
    local i port
    for i in $(seq 100); do
        port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$1" 2>/dev/null)
        [[ -n $port ]] && { echo "$port"; return 0; }
        sleep 0.1
    done
    return 1
}

# PID FIELD: a memory figure (VmRSS, VmHWM) of a process, in KiB.
mem_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

scen() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "bench/scenarios/$1.json" "$2"; }

for s in $SCENARIOS; do
    [[ -f bench/scenarios/$s.json ]] || die "no scenario bench/scenarios/$s.json"
done
for p in "$BIN/braid" "$BIN/ceiling"; do
    [[ -x $p ]] || die "$p is missing; build first (make bench)"
done
command -v wrk >/dev/null || die "wrk is missing (Debian package wrk; scripts/deps.sh installs it)"

# --- the servers -------------------------------------------------------------------------------
"$BIN/ceiling" --port 0 --threads "$THREADS" >"$tmp/ceiling.out" 2>"$tmp/ceiling.log" &
ceiling_pid=$!
"$BIN/braid" serve --listen 127.0.0.1:0 --http-threads "$THREADS" --grace-ms 2000 \
    --data "$tmp/data" >"$tmp/braid.out" 2>"$tmp/braid.log" &
braid_pid=$!
ceiling_port=$(port_from "$tmp/ceiling.out") || die "the ceiling did not start: $(cat "$tmp/ceiling.log")"
braid_port=$(port_from "$tmp/braid.out") || die "braid did not start: $(tail -5 "$tmp/braid.log")"
token=$(<"$tmp/data/admin.token")
[[ -n $token ]] || die "no admin token in $tmp/data/admin.token"

# --- publish and check every scenario by hand --------------------------------------------------
# check URL TOKEN BODY EXPECT: one POST with curl; 200 and EXPECT in the answer (braid answers
# the run record, the expected document being its output; the ceiling answers it bare).
check() {
    local code
    code=$(curl -sS -m 10 -o "$tmp/answer.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' ${2:+-H "Authorization: Bearer $2"} \
        --data-binary "$3" "$1") || die "POST $1 failed"
    [[ $code == 200 ]] || die "POST $1 answered $code: $(head -c 500 "$tmp/answer.json")"
    python3 - "$tmp/answer.json" "$4" <<'PY' || die "POST $1 did not answer $4: $(head -c 500 "$tmp/answer.json")"
import json, sys
got, want = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
got = got.get("output", got) if "status" in got else got
sys.exit(0 if all(got.get(k) == v for k, v in want.items()) else 1)
PY
}

for s in $SCENARIOS; do
    n=$(scen "$s" 'len(d["integrations"])')
    for i in $(seq 0 $((n - 1))); do
        scen "$s" "json.dumps(d['integrations'][$i])" >"$tmp/doc.json"
        name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$tmp/doc.json")
        code=$(curl -sS -m 10 -o "$tmp/put.json" -w '%{http_code}' -X PUT \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data-binary @"$tmp/doc.json" "http://127.0.0.1:$braid_port/integrations/$name")
        [[ $code == 200 || $code == 201 ]] || die "PUT $name answered $code: $(cat "$tmp/put.json")"
    done
    check "http://127.0.0.1:$braid_port/integrations/execute/$(scen "$s" 'd["entry"]')" "$token" \
        "$(scen "$s" 'json.dumps(d["payload"])')" "$(scen "$s" 'json.dumps(d["expect"])')"
done
# The ceiling answers {"y": 2} to anything; S1's body is the one sent to it.
ceiling_body='{"n": 1}'
check "http://127.0.0.1:$ceiling_port/integrations/execute/bench/s1" "" "$ceiling_body" '{"y": 2}'
braid_idle_kib=$(mem_kib "$braid_pid" VmRSS)

# --- measure -----------------------------------------------------------------------------------
results=$tmp/http.jsonl
: >"$results"
: >"$tmp/commands.txt"
# measure SERVER SCENARIO URL TOKEN BODY CONNS ROUND: one wrk run, one line in $results. Round 0
# is the warm-up and is dropped from the report.
measure() {
    local server=$1 scenario=$2 url=$3 tok=$4 body=$5 conns=$6 round=$7
    local threads=$((conns < THREADS ? conns : THREADS)) secs=$SECS
    ((round == 0)) && secs=$WARMUP_SECS
    local cmd=(wrk "-t$threads" "-c$conns" "-d${secs}s")
    ((conns == 1)) && cmd=(wrk -t1 -c1 "-d${secs}s" --latency)
    cmd+=(-s bench/wrk_post.lua "$url")
    if ((round == 1)); then
        printf '%s\n' "BENCH_BODY='$body'${tok:+ BENCH_TOKEN=\$TOKEN} ${cmd[*]}" |
            sed "s|127\.0\.0\.1:[0-9]*|127.0.0.1:PORT|" >>"$tmp/commands.txt"
    fi
    echo "bench: $server $scenario, $conns connection(s), round $round" >&2
    BENCH_BODY=$body BENCH_TOKEN=$tok BENCH_OUT=$results \
        BENCH_TAG="\"server\": \"$server\", \"scenario\": \"$scenario\", \"conns\": $conns, \"round\": $round" \
        run_bg "${cmd[@]}" >>"$tmp/wrk.txt"
    sleep 1 # let braid's store writer finish the batch in hand before the next measurement
}

for round in $(seq 0 "$RUNS"); do
    conn_list="$CONNS 1"
    ((round == 0)) && conn_list=$CONNS
    for c in $conn_list; do
        measure ceiling - "http://127.0.0.1:$ceiling_port/integrations/execute/bench/s1" "" \
            "$ceiling_body" "$c" "$round"
        for s in $SCENARIOS; do
            measure braid "$s" \
                "http://127.0.0.1:$braid_port/integrations/execute/$(scen "$s" 'd["entry"]')" \
                "$token" "$(scen "$s" 'json.dumps(d["payload"])')" "$c" "$round"
        done
    done
done

# Peak memory: VmHWM is the resident high-water mark since the process started.
braid_hwm_kib=$(mem_kib "$braid_pid" VmHWM)
ceiling_hwm_kib=$(mem_kib "$ceiling_pid" VmHWM)
kill -0 "$braid_pid" 2>/dev/null || die "braid died during the benchmark: $(tail -5 "$tmp/braid.log")"

cat >"$tmp/meta.json" <<EOF
{"scenarios": "$SCENARIOS", "conns": "$CONNS", "runs": $RUNS, "secs": $SECS, "threads": $THREADS,
 "warmup_secs": $WARMUP_SECS,
 "braid_idle_kib": $braid_idle_kib, "braid_hwm_kib": $braid_hwm_kib,
 "ceiling_hwm_kib": $ceiling_hwm_kib,
 "wrk": "$(dpkg-query -W -f '${Version}' wrk 2>/dev/null || echo '?')",
 "mhd": "$(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')"}
EOF
stop "$braid_pid"
braid_pid=''
stop "$ceiling_pid"
ceiling_pid=''

# --- the report section ------------------------------------------------------------------------
python3 bench/http_report.py "$results" "$tmp/meta.json" "$tmp/commands.txt" >"$section"
