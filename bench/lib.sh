# lib.sh - shared helpers for the bench shell scripts (sourced, not run).
#
# Every process a script starts goes through `spawn` (servers, nginx) or `run_fg` (wrk, curl
# loops, bench programs), which record its id; `bench_cleanup`, installed as the EXIT trap by
# `bench_traps`, stops each recorded process by its id (SIGTERM, then SIGKILL after 5 s) and
# removes the script's temporary directory. SIGINT and SIGTERM exit through the same trap, and
# since foreground work runs in the background and is waited for, a signal is acted on at once.

BENCH_PIDS=()
BENCH_TMP=''

# PID: SIGTERM, up to 5 s to go, then SIGKILL; reaps it. A zombie counts as gone.
stop_pid() {
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

# Stops every process recorded so far, newest first.
stop_all() {
    local i
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${BENCH_PIDS[i]}"
    done
    BENCH_PIDS=()
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    [[ -n $BENCH_TMP ]] && rm -rf "$BENCH_TMP"
    exit "$rc"
}

# Installs the traps and makes the temporary directory $BENCH_TMP (PREFIX names it).
bench_traps() {
    BENCH_TMP=$(mktemp -d "/tmp/braid-bench-$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# spawn VAR CMD...: start CMD in the background, record it, set VAR to its id.
spawn() {
    local __var=$1
    shift
    "$@" &
    BENCH_PIDS+=($!)
    printf -v "$__var" '%s' "$!"
}

# forget PID: stop PID and drop it from the record.
forget() {
    local p=$1 keep=() q
    stop_pid "$p"
    for q in "${BENCH_PIDS[@]}"; do
        [[ $q == "$p" ]] || keep+=("$q")
    done
    BENCH_PIDS=("${keep[@]}")
}

# run_fg CMD...: run CMD in the background and wait for it (so signals are acted on at once);
# its exit status is returned.
run_fg() {
    local p rc=0
    "$@" &
    p=$!
    BENCH_PIDS+=("$p")
    wait "$p" || rc=$?
    local keep=() q
    for q in "${BENCH_PIDS[@]}"; do
        [[ $q == "$p" ]] || keep+=("$q")
    done
    BENCH_PIDS=("${keep[@]}")
    return "$rc"
}

die() {
    echo "bench: $*" >&2
    exit 1
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

# PID: user + system CPU seconds of a process (all its threads) so far.
cpu_secs() {
    local st
    st=$(cat "/proc/$1/stat")
    st=${st##*) }
    awk -v t="$(getconf CLK_TCK)" '{print ($12 + $13) / t}' <<<"$st"
}

# start_braid VAR_PID VAR_PORT DATA [ARGS...]: `braid serve` on a free port of 127.0.0.1 with
# DATA as its data directory (its output in DATA.out and DATA.log). The array SERVE, when set,
# replaces "$BIN/braid serve" with another program taking the same options (bench_serve).
start_braid() {
    local __bpid=$1 __bport=$2 __data=$3 __p __pt
    shift 3
    mkdir -p "$__data"
    local __cmd=("$BIN/braid" serve)
    [[ -n ${SERVE+x} ]] && __cmd=("${SERVE[@]}")
    spawn __p "${__cmd[@]}" --listen 127.0.0.1:0 --http-threads "${THREADS:-2}" \
        --grace-ms 2000 --data "$__data" "$@" >"$__data.out" 2>"$__data.log"
    __pt=$(port_from "$__data.out") || die "braid did not start: $(tail -5 "$__data.log")"
    printf -v "$__bpid" '%s' "$__p"
    printf -v "$__bport" '%s' "$__pt"
}

# publish PORT TOKEN FILE: PUT the integration document FILE.
publish() {
    local name code
    name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$3")
    code=$(curl -sS -m 10 -o "$BENCH_TMP/put.json" -w '%{http_code}' -X PUT \
        -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
        --data-binary @"$3" "http://127.0.0.1:$1/integrations/$name")
    [[ $code == 200 || $code == 201 ]] || die "PUT $name answered $code: $(cat "$BENCH_TMP/put.json")"
}

# publish_scenario PORT TOKEN SCENARIO_FILE: publish every document of a scenario.
publish_scenario() {
    local i n
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["integrations"]))' "$3")
    for ((i = 0; i < n; i++)); do
        python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["integrations"][int(sys.argv[2])]))' \
            "$3" "$i" >"$BENCH_TMP/doc.json"
        publish "$1" "$2" "$BENCH_TMP/doc.json"
    done
}

# check URL TOKEN BODY EXPECT: one POST with curl; 200 and EXPECT in the answer (braid answers
# the run record, the expected document being its output; the ceiling answers it bare).
check() {
    local code
    code=$(curl -sS -m 30 -o "$BENCH_TMP/answer.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' ${2:+-H "Authorization: Bearer $2"} \
        --data-binary "$3" "$1") || die "POST $1 failed"
    [[ $code == 200 ]] || die "POST $1 answered $code: $(head -c 500 "$BENCH_TMP/answer.json")"
    python3 - "$BENCH_TMP/answer.json" "$4" <<'PY' || die "POST $1 did not answer $4: $(head -c 500 "$BENCH_TMP/answer.json")"
import json, sys
got, want = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
got = got.get("output", got) if "status" in got else got
sys.exit(0 if all(got.get(k) == v for k, v in want.items()) else 1)
PY
}

# metric PORT TOKEN NAME [LABEL_FILTER]: the sum of a Prometheus series from GET /metrics.
metric() {
    curl -sS -m 10 -H "Authorization: Bearer $2" "http://127.0.0.1:$1/metrics" |
        awk -v n="$3" -v f="${4:-}" '$1 !~ /^#/ && index($1, n) == 1 &&
            (substr($1, length(n) + 1, 1) == "{" || length($1) == length(n)) &&
            (f == "" || index($1, f) > 0) {s += $2} END {printf "%d\n", s}'
}
