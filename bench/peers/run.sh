#!/usr/bin/env bash
# run.sh - `make bench-peers`: braid, Node-RED and n8n side by side on the same scenarios (S0, S1,
# S10), in the same session, with the same wrk settings as bench/http.sh. Writes
# bench/peers/report.md and puts that section into bench/report.md under the heading
# "Side by side with Node-RED and n8n" (replacing any previous one).
#
#   bench/peers/run.sh
#
# Environment (defaults in brackets):
#   BENCH_PEERS           servers to measure, in order [braid node-red n8n]
#   BENCH_PEERS_CACHE     where install.sh puts Node.js, Node-RED and n8n
#                         [${XDG_CACHE_HOME:-$HOME/.cache}/braid-bench-peers]
#   BENCH_BIN             directory holding braid [build-release]
#   BENCH_HTTP_RUNS       repetitions of each measurement [3]       (as bench/http.sh)
#   BENCH_HTTP_SECS       seconds per measurement [10]              (as bench/http.sh)
#   BENCH_HTTP_CONNS      connections of the requests/s runs [32]   (as bench/http.sh)
#   BENCH_HTTP_THREADS    braid --http-threads and wrk's -t cap [2] (as bench/http.sh)
#   BENCH_PEERS_N8N_SECS  seconds of n8n's S10 runs at BENCH_HTTP_CONNS connections [60]: n8n
#                         works the 32 requests in hand side by side, so its answers to S10 come
#                         back only after ~15 s; a 10 s run would count almost none
#   BENCH_PEERS_TIMEOUT   wrk --timeout [60s]: wrk's default (2 s) would drop n8n's slow answers
#                         from the latency figures; it changes nothing else
#   BENCH_PEERS_REPORT    also write the section into bench/report.md [1]
#   BENCH_PEERS_KEEP      set: keep the temporary directory (logs, data) for a look afterwards
#
# The install (bench/peers/install.sh) is the only step that reaches the network (Debian's and
# the npm registry). Everything after it runs in a network namespace of its own where only
# loopback exists (unshare -n), so no server can send a packet off the machine, telemetry or not;
# every server listens on 127.0.0.1. Every process started here runs in a process group of its
# own and is stopped (the whole group and all its descendants) on exit, error, SIGINT or SIGTERM.
# Figures are reported, never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BENCH_BIN:-build-release}
PEERS=${BENCH_PEERS:-braid node-red n8n}
SCENARIOS="s0 s1 s10"
CONNS=${BENCH_HTTP_CONNS:-32}
RUNS=${BENCH_HTTP_RUNS:-3}
SECS=${BENCH_HTTP_SECS:-10}
THREADS=${BENCH_HTTP_THREADS:-2}
WRK_TIMEOUT=${BENCH_PEERS_TIMEOUT:-60s}
N8N_SECS=${BENCH_PEERS_N8N_SECS:-60}
WARMUP_SECS=3
PEERS_DIR=bench/peers
t_epoch=${BENCH_PEERS_T0:-$(date +%s)}

tmp=$(mktemp -d /tmp/braid-bench-peers.XXXXXX)
groups=() # process groups started here (each server, its RSS sampler, the install)
fg_pid='' # the foreground child being waited for (wrk, curl loops)

# kill_tree PID: SIGTERM to the process group PID leads and to all its descendants, up to 10 s to
# go, then SIGKILL. A zombie counts as gone.
tree_alive() {
    local p st
    for p in "$@"; do
        st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        st=${st##*) }
        [[ ${st:0:1} == Z ]] || return 0
    done
    return 1
}
kill_tree() {
    local root=$1 pids i
    [[ -n $root ]] || return 0
    pids=$(python3 "$PEERS_DIR/proctree.py" pids "$root" 2>/dev/null || true)
    kill -TERM -- "-$root" 2>/dev/null || true
    # shellcheck disable=SC2086
    [[ -z $pids ]] || kill -TERM $pids 2>/dev/null || true
    for i in $(seq 100); do
        # shellcheck disable=SC2086
        tree_alive $pids "$root" || break
        sleep 0.1
    done
    kill -KILL -- "-$root" 2>/dev/null || true
    # shellcheck disable=SC2086
    [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
    wait "$root" 2>/dev/null || true
}
cleanup() {
    local rc=$? g
    trap - EXIT INT TERM
    [[ -n $fg_pid ]] && kill_tree "$fg_pid"
    for g in "${groups[@]}"; do
        kill_tree "$g"
    done
    if [[ -n ${BENCH_PEERS_KEEP:-} ]]; then
        echo "bench/peers/run.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "bench/peers/run.sh: $*" >&2
    exit 1
}
say() { echo "bench-peers: $*" >&2; }

# spawn LOG CMD...: start CMD in a session (and process group) of its own, output to LOG; sets
# $spawned to its id, which is also its process group's.
spawn() {
    local log=$1
    shift
    setsid "$@" >"$log" 2>&1 </dev/null &
    spawned=$!
    groups+=("$spawned")
}
# unspawn PID: stop that group and forget it.
unspawn() {
    local g=$1 i
    kill_tree "$g"
    for i in "${!groups[@]}"; do
        if [[ ${groups[$i]} == "$g" ]]; then unset "groups[$i]"; fi
    done
    groups=("${groups[@]}")
}
# fg CMD...: run CMD in a group of its own and wait for it, so a signal reaches the traps at once.
fg() {
    setsid "$@" &
    fg_pid=$!
    local rc=0
    wait "$fg_pid" || rc=$?
    fg_pid=''
    return "$rc"
}

# --- 1. install (the only step with a network), then into a namespace with loopback only ------
if [[ -z ${BENCH_PEERS_NETNS:-} ]]; then
    for p in "$BIN/braid"; do
        [[ -x $p ]] || die "$p is missing; build first (make bench-peers builds it)"
    done
    command -v wrk >/dev/null || die "wrk is missing (Debian package wrk; scripts/deps.sh installs it)"
    say "installing the peers (bench/peers/install.sh)"
    t0=$SECONDS
    fg bash "$PEERS_DIR/install.sh" >"$tmp/install.env" || die "bench/peers/install.sh failed"
    echo "$((SECONDS - t0))" >"$tmp/install.secs"
    say "install step took $((SECONDS - t0)) s"
    if unshare -n true 2>/dev/null; then
        # The traps of this shell go with exec; the new one (same process id) sets its own and
        # removes $tmp, whose name it is handed.
        trap - EXIT INT TERM
        exec unshare -n env BENCH_PEERS_NETNS="$tmp" BENCH_PEERS_T0="$t_epoch" \
            bash -c 'ip link set lo up && exec bash bench/peers/run.sh'
    fi
    say "warning: unshare -n is not permitted here; running in the machine's network namespace" \
        "(every server still listens on 127.0.0.1 only, telemetry is off)"
    echo 0 >"$tmp/netns"
else
    # Re-executed inside the namespace: take over the directory the first half made.
    rmdir "$tmp"
    tmp=$BENCH_PEERS_NETNS
    [[ -f $tmp/netns ]] || echo 1 >"$tmp/netns"
fi
# shellcheck disable=SC1091
source "$tmp/install.env"
install_secs=$(<"$tmp/install.secs")
for f in "$NODE_BIN" "$NODERED_JS" "$N8N_JS"; do
    [[ -e $f ]] || die "$f is missing after bench/peers/install.sh"
done

# A free port on 127.0.0.1 (for the peers, which take a port number rather than port 0).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# check URL BODY EXPECT_Y [HEADERS...]: one POST; 200 and "y" == EXPECT_Y in the answer (braid
# answers the run record, whose output is the answer).
check() {
    local url=$1 body=$2 want=$3 code
    shift 3
    code=$(curl -sS -m 120 -o "$tmp/answer.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' "$@" --data-binary "$body" "$url") ||
        die "POST $url failed"
    [[ $code == 200 ]] || die "POST $url answered $code: $(head -c 500 "$tmp/answer.json")"
    python3 - "$tmp/answer.json" "$want" <<'PY' || die "POST $url did not answer y = $want: $(head -c 500 "$tmp/answer.json")"
import json, sys
got = json.load(open(sys.argv[1]))
if isinstance(got, list) and got:
    got = got[0]
got = got.get("output", got) if "status" in got else got
sys.exit(0 if got.get("y") == int(sys.argv[2]) else 1)
PY
}

# wait_http URL SECONDS PID LOG: until URL answers at all (any status), or die.
wait_http() {
    local url=$1 secs=$2 pid=$3 log=$4 i
    for i in $(seq $((secs * 5))); do
        curl -s -o /dev/null -m 2 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || die "the server died while starting: $(tail -20 "$log")"
        sleep 0.2
    done
    die "no answer from $url after $secs s: $(tail -20 "$log")"
}

expect_y() { case $1 in s0 | s1) echo 2 ;; s10) echo 11 ;; esac; }

results=$tmp/peers.jsonl
: >"$results"
: >"$tmp/commands.txt"
: >"$tmp/meta.txt"

# measure SERVER ROOT SCENARIO URL CONNS ROUND [TOKEN]: one wrk run, one line in $results; then
# waits until the server's process tree is idle again, so a backlog is not measured twice.
measure() {
    local server=$1 root=$2 scenario=$3 url=$4 conns=$5 round=$6 tok=${7:-}
    local threads=$((conns < THREADS ? conns : THREADS)) secs=$SECS
    if [[ $server == n8n && $scenario == s10 ]] && ((conns > 1 && N8N_SECS > SECS)); then
        secs=$N8N_SECS
    fi
    ((round == 0)) && secs=$WARMUP_SECS
    local cmd=(wrk "-t$threads" "-c$conns" "-d${secs}s" --timeout "$WRK_TIMEOUT")
    ((conns == 1)) && cmd=(wrk -t1 -c1 "-d${secs}s" --timeout "$WRK_TIMEOUT" --latency)
    cmd+=(-s bench/wrk_post.lua "$url")
    if ((round == 1)); then
        printf '%s\n' "$server: BENCH_BODY='{\"n\": 1}'${tok:+ BENCH_TOKEN=\$TOKEN} ${cmd[*]}" |
            sed "s|127\.0\.0\.1:[0-9]*|127.0.0.1:PORT|" >>"$tmp/commands.txt"
    fi
    say "$server $scenario, $conns connection(s), round $round"
    BENCH_BODY='{"n": 1}' BENCH_TOKEN=$tok BENCH_OUT=$results \
        BENCH_TAG="\"server\": \"$server\", \"scenario\": \"$scenario\", \"conns\": $conns, \"round\": $round" \
        fg "${cmd[@]}" >>"$tmp/wrk.txt"
    fg python3 "$PEERS_DIR/proctree.py" settle "$root" 120
    sleep 1
}

# bench_server NAME ROOT URL_PREFIX [TOKEN]: check every scenario, then the rounds: round 0 warms
# up (at $CONNS, dropped from the report); rounds 1..RUNS measure every scenario at $CONNS and 1,
# interleaved so slow drifts of a shared machine fall on every scenario alike.
bench_server() {
    local name=$1 root=$2 prefix=$3 tok=${4:-} s round c conn_list
    for s in $SCENARIOS; do
        check "$prefix/$s" '{"n": 1}' "$(expect_y "$s")" ${tok:+-H "Authorization: Bearer $tok"}
        say "$name $s answers y = $(expect_y "$s")"
    done
    for round in $(seq 0 "$RUNS"); do
        conn_list="$CONNS 1"
        ((round == 0)) && conn_list=$CONNS
        for c in $conn_list; do
            for s in $SCENARIOS; do
                measure "$name" "$root" "$s" "$prefix/$s" "$c" "$round" "$tok"
            done
        done
    done
}

# start_sampler ROOT NAME: samples the tree's summed RSS into $tmp/NAME.peak_kib.
start_sampler() {
    spawn "$tmp/$2.sampler.log" python3 "$PEERS_DIR/proctree.py" peak "$1" "$tmp/$2.peak_kib" 0.1
    sampler_pid=$spawned
}

# --- braid -------------------------------------------------------------------------------------
# As bench/http.sh starts it (same flags), with the same scenarios: bench/scenarios/*.json.
run_braid() {
    local pid port token s n i name
    spawn "$tmp/braid.log" "$BIN/braid" serve --listen 127.0.0.1:0 --http-threads "$THREADS" \
        --grace-ms 2000 --data "$tmp/braid-data"
    pid=$spawned
    start_sampler "$pid" braid
    for i in $(seq 100); do
        port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$tmp/braid.log" 2>/dev/null)
        [[ -n $port ]] && break
        sleep 0.1
    done
    [[ -n $port ]] || die "braid did not start: $(tail -5 "$tmp/braid.log")"
    token=$(<"$tmp/braid-data/admin.token")
    for s in $SCENARIOS; do
        n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["integrations"]))' "$PEERS_DIR/../scenarios/$s.json")
        for i in $(seq 0 $((n - 1))); do
            python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["integrations"][int(sys.argv[2])]))' \
                "$PEERS_DIR/../scenarios/$s.json" "$i" >"$tmp/doc.json"
            name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$tmp/doc.json")
            code=$(curl -sS -m 10 -o "$tmp/put.json" -w '%{http_code}' -X PUT \
                -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
                --data-binary @"$tmp/doc.json" "http://127.0.0.1:$port/integrations/$name")
            [[ $code == 200 || $code == 201 ]] || die "PUT $name answered $code: $(cat "$tmp/put.json")"
        done
    done
    echo "braid_start=$BIN/braid serve --listen 127.0.0.1:0 --http-threads $THREADS --grace-ms 2000 --data DIR" >>"$tmp/meta.txt"
    bench_server braid "$pid" "http://127.0.0.1:$port/integrations/execute/bench" "$token"
    kill -0 "$pid" 2>/dev/null || die "braid died during the benchmark: $(tail -5 "$tmp/braid.log")"
    unspawn "$sampler_pid"
    unspawn "$pid"
}

# --- Node-RED ----------------------------------------------------------------------------------
run_nodered() {
    local pid port
    port=$(free_port)
    mkdir -p "$tmp/node-red"
    cp "$PEERS_DIR/node-red/flows.json" "$tmp/node-red/flows.json"
    spawn "$tmp/node-red.log" env BENCH_NODERED_PORT="$port" \
        BENCH_NODERED_FLOWS="$tmp/node-red/flows.json" BENCH_NODERED_USERDIR="$tmp/node-red" \
        "$NODE_BIN" "$NODERED_JS" --settings "$PEERS_DIR/node-red/settings.js"
    pid=$spawned
    start_sampler "$pid" node-red
    wait_http "http://127.0.0.1:$port/" 120 "$pid" "$tmp/node-red.log"
    echo "node-red_start=node $NODERED_JS --settings bench/peers/node-red/settings.js (flows bench/peers/node-red/flows.json)" >>"$tmp/meta.txt"
    bench_server node-red "$pid" "http://127.0.0.1:$port/bench"
    kill -0 "$pid" 2>/dev/null || die "Node-RED died during the benchmark: $(tail -5 "$tmp/node-red.log")"
    unspawn "$sampler_pid"
    unspawn "$pid"
}

# --- n8n ---------------------------------------------------------------------------------------
# Its settings: sqlite (the default) in a user folder of this run, 127.0.0.1 only, nothing that
# phones home. The workflows (bench/peers/n8n/*.json) are imported and published with the n8n CLI
# before the server starts.
n8n_env=()
set_n8n_env() {
    n8n_env=(N8N_USER_FOLDER="$tmp/n8n" DB_TYPE=sqlite
        N8N_LISTEN_ADDRESS=127.0.0.1 N8N_HOST=127.0.0.1 N8N_PORT="$n8n_port" N8N_PROTOCOL=http
        N8N_WEBHOOK_URL="http://127.0.0.1:$n8n_port/"
        N8N_RUNNERS_BROKER_LISTEN_ADDRESS=127.0.0.1 N8N_RUNNERS_BROKER_PORT="$n8n_broker_port"
        N8N_RUNNERS_MODE=internal
        N8N_DIAGNOSTICS_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false
        N8N_PERSONALIZATION_ENABLED=false N8N_TEMPLATES_ENABLED=false
        N8N_HIRING_BANNER_ENABLED=false N8N_DIAGNOSTICS_CONFIG_FRONTEND=
        N8N_DIAGNOSTICS_CONFIG_BACKEND= EXTERNAL_FRONTEND_HOOKS_URLS=
        N8N_COMMUNITY_PACKAGES_ENABLED=false N8N_AI_ENABLED=false
        N8N_LICENSE_AUTO_RENEW_ENABLED=false N8N_PUBLIC_API_SWAGGERUI_DISABLED=true
        N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS=false N8N_SECURE_COOKIE=false
        N8N_DISABLED_MODULES=mcp-registry N8N_LOG_LEVEL=warn NODE_ENV=production NODE_OPTIONS=)
}
run_n8n() {
    local pid f code t_n8n id
    n8n_port=$(free_port)
    n8n_broker_port=$(free_port)
    set_n8n_env
    mkdir -p "$tmp/n8n"
    for f in "$PEERS_DIR"/n8n/*.json; do
        say "n8n: importing $f"
        fg env "${n8n_env[@]}" "$NODE_BIN" "$N8N_JS" import:workflow --input="$f" >>"$tmp/n8n-cli.log" 2>&1 ||
            die "n8n import:workflow --input=$f failed: $(tail -20 "$tmp/n8n-cli.log")"
    done
    for f in "$PEERS_DIR"/n8n/*.json; do
        id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$f")
        fg env "${n8n_env[@]}" "$NODE_BIN" "$N8N_JS" publish:workflow --id="$id" >>"$tmp/n8n-cli.log" 2>&1 ||
            die "n8n publish:workflow --id=$id failed: $(tail -20 "$tmp/n8n-cli.log")"
    done
    t_n8n=$SECONDS
    spawn "$tmp/n8n.log" env "${n8n_env[@]}" "$NODE_BIN" "$N8N_JS" start
    pid=$spawned
    start_sampler "$pid" n8n
    wait_http "http://127.0.0.1:$n8n_port/healthz/readiness" 300 "$pid" "$tmp/n8n.log"
    # Ready is not yet published: the workflows are activated in the background after it; wait
    # until the last webhook is registered (any answer but 404).
    for f in $(seq 600); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -m 60 -X POST -H 'Content-Type: application/json' \
            --data-binary '{"n": 1}' "http://127.0.0.1:$n8n_port/webhook/bench/s10" || true)
        [[ $code != 404 && $code != 000 ]] && break
        kill -0 "$pid" 2>/dev/null || die "n8n died while starting: $(tail -20 "$tmp/n8n.log")"
        sleep 0.2
    done
    say "n8n ready after $((SECONDS - t_n8n)) s"
    echo "n8n_start=n8n import:workflow --input=bench/peers/n8n/FILE.json; n8n publish:workflow --id=ID; n8n start (environment: set_n8n_env in bench/peers/run.sh)" >>"$tmp/meta.txt"
    bench_server n8n "$pid" "http://127.0.0.1:$n8n_port/webhook/bench"
    kill -0 "$pid" 2>/dev/null || die "n8n died during the benchmark: $(tail -5 "$tmp/n8n.log")"
    unspawn "$sampler_pid"
    unspawn "$pid"
}

for peer in $PEERS; do
    t0=$SECONDS
    case $peer in
    braid) run_braid ;;
    node-red) run_nodered ;;
    n8n) run_n8n ;;
    *) die "unknown peer $peer (braid, node-red, n8n)" ;;
    esac
    say "$peer measured in $((SECONDS - t0)) s"
    echo "${peer}_secs=$((SECONDS - t0))" >>"$tmp/meta.txt"
done

# --- the report --------------------------------------------------------------------------------
for peer in $PEERS; do
    echo "${peer}_peak_kib=$(cat "$tmp/$peer.peak_kib" 2>/dev/null || echo 0)" >>"$tmp/meta.txt"
done
cat >>"$tmp/meta.txt" <<EOF
peers=$PEERS
conns=$CONNS
runs=$RUNS
secs=$SECS
threads=$THREADS
warmup_secs=$WARMUP_SECS
wrk_timeout=$WRK_TIMEOUT
n8n_secs=$N8N_SECS
install_secs=$install_secs
netns=$(<"$tmp/netns")
node_version=$NODE_VERSION
nodered_version=$NODERED_VERSION
n8n_version=$N8N_VERSION
wrk=$(dpkg-query -W -f '${Version}' wrk 2>/dev/null || echo '?')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
total_secs=$(($(date +%s) - t_epoch))
EOF
python3 "$PEERS_DIR/report.py" "$results" "$tmp/meta.txt" "$tmp/commands.txt" >"$PEERS_DIR/report.md"
say "wrote $PEERS_DIR/report.md"
if [[ ${BENCH_PEERS_REPORT:-1} == 1 && -f bench/report.md ]]; then
    python3 - bench/report.md "$PEERS_DIR/report.md" <<'PY'
import sys
head = "## Side by side with Node-RED and n8n"
lines = open(sys.argv[1]).read().split("\n")
out, skip = [], False
for l in lines:
    if l.strip() == head:
        skip = True
        continue
    if skip and l.startswith("## "):
        skip = False
    if not skip:
        out.append(l)
text = "\n".join(out).rstrip("\n") + "\n\n" + open(sys.argv[2]).read()
open(sys.argv[1], "w").write(text)
PY
    say "put the section into bench/report.md"
fi
cat "$PEERS_DIR/report.md"
