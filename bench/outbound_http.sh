#!/usr/bin/env bash
# outbound_http.sh - outbound http tasks over HTTP: `braid serve --allow-net 127.0.0.1/32`
# answering POST /integrations/execute/NAME for integrations that make 1 and 10 `http` GETs (in
# sequence) to a local nginx serving a small JSON file, at 32 connections (wrk), against the
# ceiling: a bare libcurl multi loop (bench/curl_multi.c) making the same GETs to the same nginx
# with 32 transfers in flight.
#
#   bench/outbound_http.sh RESULTS_DIR
#
# nginx runs from a configuration of its own in a temporary directory (one process, no master,
# 127.0.0.1 only, no access log); it is stopped with everything else on exit, error, SIGINT or
# SIGTERM. Writes RESULTS_DIR/outbound_http.jsonl and RESULTS_DIR/outbound_http_meta.json.
#
# Environment: BENCH_BIN [build-release], BENCH_OUT_RUNS [3], BENCH_OUT_SECS [5],
# BENCH_OUT_CURL_N [requests of one curl_multi run, 40000].
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${BENCH_BIN:-build-release}
RUNS=${BENCH_OUT_RUNS:-3}
SECS=${BENCH_OUT_SECS:-5}
CURL_N=${BENCH_OUT_CURL_N:-40000}
THREADS=2
WARMUP_SECS=2
out=${1:?usage: bench/outbound_http.sh RESULTS_DIR}
mkdir -p "$out"
bench_traps outbound
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx is missing (Debian package nginx; scripts/deps-bench.sh installs it)"
for p in "$BIN/braid" "$BIN/curl_multi"; do
    [[ -x $p ]] || die "$p is missing; build first (make bench)"
done

# --- nginx on a free port of 127.0.0.1 -----------------------------------------------------------
ngx=$BENCH_TMP/nginx
mkdir -p "$ngx/www" "$ngx/tmp"
printf '{"ok":true,"n":1}' >"$ngx/www/ok.json"
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$ngx/nginx.conf" <<EOF2
daemon off;
master_process off;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $ngx/tmp/body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$nginx_port;
        root $ngx/www;
        default_type application/json;
        location / { }
    }
}
EOF2
spawn nginx_pid "$NGINX" -p "$ngx" -c "$ngx/nginx.conf" 2>"$ngx/stderr.log"
ok_url="http://127.0.0.1:$nginx_port/ok.json"
for i in $(seq 50); do
    curl -fsS -m 2 -o /dev/null "$ok_url" 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx did not start: $(cat "$ngx/stderr.log" "$ngx/error.log" 2>/dev/null)"
    sleep 0.1
done
curl -fsS -m 2 "$ok_url" | grep -q '"ok":true' || die "nginx does not serve $ok_url"

# --- braid with the two integrations --------------------------------------------------------------
start_braid braid_pid braid_port "$BENCH_TMP/data" --allow-net 127.0.0.1/32
token=$(<"$BENCH_TMP/data/admin.token")
python3 - "$ok_url" "$BENCH_TMP" <<'PY'
import json, sys
url, tmp = sys.argv[1], sys.argv[2]
for n in (1, 10):
    tasks = [{"id": f"get{i}", "type": "http", "url": url} for i in range(1, n + 1)]
    doc = {"name": f"bench/out{n}", "outputs": {"n": "{{vars.httpResult.n}}"}, "tasks": tasks}
    json.dump(doc, open(f"{tmp}/out{n}.json", "w"))
PY
for n in 1 10; do
    publish "$braid_port" "$token" "$BENCH_TMP/out$n.json"
    check "http://127.0.0.1:$braid_port/integrations/execute/bench/out$n" "$token" '{}' '{"n": 1}'
done

# --- measure --------------------------------------------------------------------------------------
results=$out/outbound_http.jsonl
: >"$results"
for round in $(seq 0 "$RUNS"); do
    secs=$SECS curl_n=$CURL_N
    ((round == 0)) && { secs=$WARMUP_SECS; curl_n=$((CURL_N / 4)); }
    echo "bench: outbound over HTTP: curl_multi, round $round" >&2
    run_fg "$BIN/curl_multi" "$ok_url" "$curl_n" 32 >"$BENCH_TMP/curl.json"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["round"]=int(sys.argv[2]); print(json.dumps(r))' \
        "$BENCH_TMP/curl.json" "$round" >>"$results"
    for n in 1 10; do
        echo "bench: outbound over HTTP: braid out$n, 32 connections, round $round" >&2
        cpu0=$(cpu_secs "$braid_pid")
        BENCH_BODY='{}' BENCH_TOKEN=$token BENCH_OUT=$BENCH_TMP/one.jsonl \
            BENCH_TAG="\"mode\": \"braid\", \"calls\": $n, \"conns\": 32, \"round\": $round" \
            run_fg wrk -t2 -c32 "-d${secs}s" --latency -s bench/wrk_post.lua \
            "http://127.0.0.1:$braid_port/integrations/execute/bench/out$n" >/dev/null
        cpu1=$(cpu_secs "$braid_pid")
        python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read()); r["server_cpu_s"]=float(sys.argv[2]); print(json.dumps(r))' \
            "$BENCH_TMP/one.jsonl" "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}')" >>"$results"
        rm -f "$BENCH_TMP/one.jsonl"
        sleep 0.5
    done
done
kill -0 "$braid_pid" 2>/dev/null || die "braid died during the benchmark: $(tail -5 "$BENCH_TMP/data.log")"
cat >"$out/outbound_http_meta.json" <<EOF2
{"runs": $RUNS, "secs": $SECS, "curl_n": $CURL_N, "braid_hwm_kib": $(mem_kib "$braid_pid" VmHWM),
 "nginx": "$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')",
 "libcurl": "$(curl-config --version 2>/dev/null | sed 's/libcurl //' || echo '?')",
 "commands": [
  "nginx -p TMP -c TMP/nginx.conf   # daemon off, master_process off, 127.0.0.1:PORT, serving ok.json = {\"ok\":true,\"n\":1}",
  "build-release/braid serve --listen 127.0.0.1:0 --http-threads $THREADS --grace-ms 2000 --data DATA --allow-net 127.0.0.1/32",
  "build-release/curl_multi http://127.0.0.1:PORT/ok.json $CURL_N 32",
  "BENCH_BODY='{}' BENCH_TOKEN=\$TOKEN wrk -t2 -c32 -d${SECS}s --latency -s bench/wrk_post.lua http://127.0.0.1:PORT/integrations/execute/bench/out1",
  "BENCH_BODY='{}' BENCH_TOKEN=\$TOKEN wrk -t2 -c32 -d${SECS}s --latency -s bench/wrk_post.lua http://127.0.0.1:PORT/integrations/execute/bench/out10"]}
EOF2
stop_all
