"""report.py - turns the raw figures of bench/run.sh's stages into bench/report.md and the chart.

    python3 bench/report.py RESULTS_DIR REPORT.md CHART.svg

RESULTS_DIR holds what the stages wrote: subcall.jsonl, outbound.jsonl (the in-process
programs), http.jsonl + http_meta.json + http_commands.txt (bench/http.sh), async.jsonl +
scheduled.jsonl + async_commands.txt (bench/async.sh), outbound_http.jsonl +
outbound_http_meta.json (bench/outbound_http.sh), env.json and stages.jsonl (bench/run.sh).
Every figure is shown as the median of its repetitions with min and max beside it; a ratio of
two figures measured in the same round is computed per round, then summarised the same way.
The goals of issue 6 are judged on the medians. Nothing here asserts: it only reports.
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

res, report_path, chart_path = sys.argv[1], sys.argv[2], sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    p = os.path.join(res, name)
    return [json.loads(l) for l in open(p) if l.strip()] if os.path.exists(p) else []


def load1(name):
    p = os.path.join(res, name)
    return json.load(open(p)) if os.path.exists(p) else {}


def spread(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[0], statistics.median(v), v[-1]


def cell(values, fmt="{:,.0f}", scale=1.0):
    s = spread([x * scale for x in values if x is not None])
    if not s:
        return "–"
    if s[0] == s[2]:
        return fmt.format(s[1])
    return f"{fmt.format(s[1])} ({fmt.format(s[0])} – {fmt.format(s[2])})"


def med(values):
    s = spread(values)
    return s[1] if s else None


env = load1("env.json")
out = []
w = out.append
goals = []  # (figure, value text, goal text, met or None)


def goal(figure, value, text, ok):
    goals.append((figure, value, text, ok))


# ---- in process: sync sub-call -------------------------------------------------------------------
sub = load("subcall.jsonl")
sub_call = [r["us_per_call"] for r in sub if r.get("mode", "call") == "call"]
sub_callint = [r["us_per_call"] for r in sub if r.get("mode") == "callint"]
sub_rpc = [r["runs_per_commit"] for r in sub if r.get("mode", "call") == "call"]
calls = env.get("calls", 100000)
sec_sub = []
if sub:
    s = sec_sub.append
    s("## In-process sync sub-call (history on)\n")
    s(f"A parent calls a child {calls:,} times (`for_each`, parallelism 1); the child binds one")
    s("integer input and answers `{\"y\": x + 1}`. Every child run and step is recorded in the")
    s("SQLite store (group commit, `synchronous=FULL`, WAL); the time includes the final commit.")
    s(f"Commands: `build-release/bench_subcall {calls} DIR call` and `build-release/bench_subcall {calls} DIR callint`.\n")
    s("| figure | median (min – max) | goal |\n|---|---|---|")
    s(f"| µs per sub-call ({len(sub_call)} runs) | {cell(sub_call, '{:.2f}')} | ≤ 5 |")
    s(f"| runs per store commit | {cell(sub_rpc)} | |")
    if sub_callint:
        s(f"| µs per sub-call through `callint()` ({len(sub_callint)} runs) | {cell(sub_callint, '{:.2f}')} | |")
    s("\nThe `callint()` row: the parent is one Lua `script` task that calls the same child with")
    s("`callint('bench/child', {x = i})` in a loop, the same number of times. Both paths end in")
    s("the same engine call; the difference is the Lua round trip (table to JSON and back), and")
    s("the `for_each` variant also builds the whole result array.\n")
    m = med(sub_call)
    goal("in-process sync sub-call, history on", f"{m:.2f} µs", "≤ 5 µs", m <= 5)

# ---- HTTP: S0 / S1 / S10 against the ceiling -----------------------------------------------------
http = [r for r in load("http.jsonl") if r["round"] > 0]
meta = load1("http_meta.json")
sec_http = []
if http:
    s = sec_http.append
    scenarios = meta["scenarios"].split()
    main = [r for r in http if r.get("phase", "main") == "main"]
    rounds = sorted({r["round"] for r in main})
    by = {(r["server"], r["scenario"], r["conns"], r["round"]): r for r in main}

    def fig(server, scen, conns, key):
        return [by[(server, scen, conns, k)][key] for k in rounds if (server, scen, conns, k) in by]

    def per_round(fn):
        vals = []
        for k in rounds:
            try:
                vals.append(fn(lambda srv, sc, c, key: by[(srv, sc, c, k)][key]))
            except (KeyError, ZeroDivisionError):
                pass
        return vals

    def cpu_us(srv, sc, c):
        return [by[(srv, sc, c, k)]["server_cpu_s"] * 1e6 / by[(srv, sc, c, k)]["requests"]
                for k in rounds if (srv, sc, c, k) in by]

    mem = meta.get("memory", {})
    servers = [("ceiling", "-", "ceiling")] + [("braid", sc, f"braid {sc.upper()}") for sc in scenarios]
    s("## HTTP: POST /integrations/execute/NAME — S0, S1, S10 against the ceiling\n")
    s("Each scenario runs on a `braid serve` of its own (release build, a fresh data directory,")
    s("the SQLite store, the request log to a file), beside the ceiling, `build-release/ceiling`:")
    s("bare libmicrohttpd with the same daemon flags, limits and thread count")
    s(f"({meta['threads']} HTTP threads) answering `{{\"y\": 2}}` after reading the body. All run at")
    s("once on 127.0.0.1 and are measured in turns (ceiling, S0, S1, S10 in each of")
    s(f"{meta['runs']} rounds, {meta['secs']} s per measurement, after a {meta['warmup_secs']}-second warm-up), so")
    s("the machine's drift falls on all alike; wrk runs on the same two cores as the servers.")
    s("S0: `bench/s0` answers `{\"y\": n + 1}` itself. S1: it calls `bench/s1-child`")
    s("synchronously with `{\"x\": n}`, the child answers `{\"y\": x + 1}`. S10: ten such calls")
    s("in sequence, each feeding the next, answering `{\"y\": 11}` (`bench/scenarios/*.json`).")
    s("Before measuring, one request to each server is checked with curl: 200 and the expected")
    s("output. Every answer is a sync run: its record is committed before the answer (SPEC §8).\n")
    s("| server | requests/s, 32 conn. | p50, 1 conn. (ms) | p99, 1 conn. (ms) | requests/s, 1 conn. | server CPU per request, 32 conn. (µs) | peak RSS (MiB) |")
    s("|---|---|---|---|---|---|---|")
    for srv, sc, label in servers:
        key = "ceiling" if srv == "ceiling" else sc
        hwm = mem.get(key, {}).get("hwm_kib")
        s(f"| {label} | {cell(fig(srv, sc, 32, 'rps'))} | {cell(fig(srv, sc, 1, 'p50_us'), '{:.3f}', 1e-3)}"
          f" | {cell(fig(srv, sc, 1, 'p99_us'), '{:.3f}', 1e-3)} | {cell(fig(srv, sc, 1, 'rps'))}"
          f" | {cell(cpu_us(srv, sc, 32), '{:.0f}')} | {hwm / 1024:.1f} |" if hwm else " | – |")
    for sc in scenarios:
        r32 = per_round(lambda g: g("braid", sc, 32, "rps") / g("ceiling", "-", 32, "rps"))
        p50 = per_round(lambda g: g("braid", sc, 1, "p50_us") / g("ceiling", "-", 1, "p50_us"))
        p99 = per_round(lambda g: g("braid", sc, 1, "p99_us") / g("ceiling", "-", 1, "p99_us"))
        r1 = per_round(lambda g: g("braid", sc, 1, "rps") / g("ceiling", "-", 1, "rps"))
        s(f"| braid {sc.upper()} ÷ ceiling | {cell(r32, '{:.3f}')} | {cell(p50, '{:.2f}')} | {cell(p99, '{:.2f}')} | {cell(r1, '{:.3f}')} | | |")
    s("")
    s(f"Each cell: the median of {len(rounds)} rounds (min – max); a ratio is taken within each")
    s("round. Peak RSS: the server's VmHWM (`/proc/PID/status`) after the measurements above;")
    idle = {sc: mem.get(sc, {}).get("idle_kib") for sc in scenarios}
    s("idle before them: " + ", ".join(f"{sc.upper()} {v / 1024:.1f} MiB" for sc, v in idle.items() if v) + ".")
    if "s1_after_sweep" in mem:
        s(f"After the chart's sweep (up to {meta['sweep_conns'].split()[-1]} connections) S1's server peaked at {mem['s1_after_sweep']['hwm_kib'] / 1024:.1f} MiB.")
    s("Server CPU: user + system time of the server process (all threads) during the run, per")
    s("request answered.\n")

    if "s1" in scenarios and "s10" in scenarios:
        sub_lat = per_round(lambda g: (g("braid", "s10", 1, "p50_us") - g("braid", "s1", 1, "p50_us")) / 9)
        sub_mean = per_round(lambda g: (1e6 / g("braid", "s10", 1, "rps") - 1e6 / g("braid", "s1", 1, "rps")) / 9)
        sub_cpu32 = per_round(lambda g: (1e6 / g("braid", "s10", 32, "rps") - 1e6 / g("braid", "s1", 32, "rps")) / 9)
        srv_cpu = []
        for k in rounds:
            try:
                a, b = by[("braid", "s10", 32, k)], by[("braid", "s1", 32, k)]
                srv_cpu.append((a["server_cpu_s"] / a["requests"] - b["server_cpu_s"] / b["requests"]) * 1e6 / 9)
            except KeyError:
                pass
        s("**Per sub-call** (S10 has nine more sync sub-calls than S1):\n")
        s("| figure | µs, median (min – max) |\n|---|---|")
        s(f"| latency per sub-call at 1 connection, (p50(S10) − p50(S1)) / 9 | {cell(sub_lat, '{:.1f}')} |")
        s(f"| the same from mean latencies, (1/rps(S10) − 1/rps(S1)) / 9 at 1 connection | {cell(sub_mean, '{:.1f}')} |")
        s(f"| CPU per extra sub-call, (1/rps(S10) − 1/rps(S1)) / 9 at 32 connections (the issue's definition: the machine's time per request, both cores) | {cell(sub_cpu32, '{:.1f}')} |")
        s(f"| server CPU per extra sub-call at 32 connections, measured (/proc CPU time ÷ requests) | {cell(srv_cpu, '{:.1f}')} |")
        s("")
        m = med(sub_cpu32)
        goal("CPU per extra sub-call over HTTP, (1/rps(S10) − 1/rps(S1)) / 9 at 32 conn.", f"{m:.1f} µs", "≤ 5 µs", m <= 5)

    if "s1" in scenarios:
        r = med(per_round(lambda g: g("braid", "s1", 32, "rps") / g("ceiling", "-", 32, "rps")))
        goal("S1 requests/s at 32 conn. ÷ the ceiling's", f"{r:.3f} ({med(fig('braid', 's1', 32, 'rps')):,.0f} ÷ {med(fig('ceiling', '-', 32, 'rps')):,.0f})", "≥ 0.5", r >= 0.5)
        p = med(per_round(lambda g: g("braid", "s1", 1, "p50_us") / g("ceiling", "-", 1, "p50_us")))
        goal("S1 p50 at 1 conn. ÷ the ceiling's", f"{p:.2f} ({med(fig('braid', 's1', 1, 'p50_us')) / 1e3:.3f} ms ÷ {med(fig('ceiling', '-', 1, 'p50_us')) / 1e3:.3f} ms)", "≤ 1.3", p <= 1.3)
        hwm = mem.get("s1", {}).get("hwm_kib")
        if hwm:
            goal("peak memory of the server under S1 (32 and 1 conn.)", f"{hwm / 1024:.1f} MiB", "≤ 20 MiB", hwm / 1024 <= 20)

    errs = defaultdict(int)
    for r in http:
        for k, v in r["errors"].items():
            errs[(r["server"], r["scenario"], k)] += v
    bad = {k: v for k, v in errs.items() if v}
    if bad:
        s("wrk counted errors (non-2xx answers are `status`): "
          + ", ".join(f"{a} {b} {k} {v}" for (a, b, k), v in sorted(bad.items())) + ".\n")
    else:
        s("No errors: every request got a 2xx answer, no socket errors or timeouts.\n")

    # The chart.
    sweep = [r for r in http if r.get("phase") == "sweep"]
    if sweep:
        conns = [int(c) for c in meta["sweep_conns"].split()]
        pts = defaultdict(list)
        for r in sweep:
            pts[(r["server"], r["conns"])].append(r["rps"])
        dat = os.path.join(res, "chart.dat")
        with open(dat, "w") as f:
            f.write("# conns ceiling_med ceiling_min ceiling_max braid_med braid_min braid_max\n")
            for c in conns:
                a, b = spread(pts[("ceiling", c)]), spread(pts[("braid", c)])
                f.write(f"{c} {a[1]} {a[0]} {a[2]} {b[1]} {b[0]} {b[2]}\n")
        gp = f"""set terminal svg size 800,480 dynamic font 'sans,12' background rgb 'white'
set output '{chart_path}'
set title 'Requests/s against connections: braid S1 and the libmicrohttpd ceiling ({env.get("cores", "?")} cores, same run)'
set xlabel 'connections (wrk)'
set ylabel 'requests/s'
set logscale x 2
set logscale y 10
set xtics ({', '.join(str(c) for c in conns)})
set xrange [{min(conns) * 0.8}:{max(conns) * 1.25}]
set grid
set key top left
set format y '%.0f'
plot '{dat}' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'ceiling (bare libmicrohttpd)', \\
     '{dat}' using 1:5:6:7 with yerrorlines lw 2 pt 5 title 'braid S1 (a sync sub-call, history on)'
"""
        try:
            subprocess.run(["gnuplot"], input=gp, text=True, check=True, capture_output=True)
            chart_ok = True
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"report.py: gnuplot failed: {e}", file=sys.stderr)
            chart_ok = False
        s("### Requests/s against connections\n")
        if chart_ok:
            s(f"![requests/s against connections](chart.svg)\n")
        s(f"Braid S1 and the ceiling at {', '.join(map(str, conns))} connections, {meta['sweep_runs']} runs of")
        s(f"{meta['sweep_secs']} s per point, in turns (the chart: medians, bars from min to max; wrk with")
        s(f"min(connections, 2) threads). Made with gnuplot from this table:\n")
        s("| connections | ceiling, requests/s | braid S1, requests/s | braid ÷ ceiling |\n|---|---|---|---|")
        for c in conns:
            a, b = pts[("ceiling", c)], pts[("braid", c)]
            s(f"| {c} | {cell(a)} | {cell(b)} | {med(b) / med(a):.3f} |")
        s("")

    s("Commands (`TOKEN` is the admin token from `DATA/admin.token`; `bench/wrk_post.lua` sends the")
    s("body, `Content-Type: application/json` and `Authorization: Bearer TOKEN`, and records the")
    s("figures; the sweep uses the same wrk line with `-c` and `-t` varied):\n")
    s("```sh")
    s(f"build-release/ceiling --port 0 --threads {meta['threads']}")
    s(f"build-release/braid serve --listen 127.0.0.1:0 --http-threads {meta['threads']} --grace-ms 2000 --data DATA   # one per scenario")
    s("curl -X PUT -H 'Authorization: Bearer TOKEN' --data-binary @DOC http://127.0.0.1:PORT/integrations/NAME   # each document of the scenario")
    s(open(os.path.join(res, "http_commands.txt")).read().strip())
    s("```\n")

# ---- durable async ---------------------------------------------------------------------------------
asy = load("async.jsonl")
sec_async = []
if asy:
    s = sec_async.append
    n = asy[0]["n"]
    s("## Durable async runs over HTTP\n")
    s(f"A fresh server accepts {n:,} async executions of S0 (`POST /integrations/execute/bench/s0?mode=async`,")
    s("`{\"n\": 1}`, wrk at 32 connections, each thread stopping after its share of answers) while")
    s("its 4 workers (braid's default) run them. Every `202` is sent only once the run's `queued`")
    s("record is committed (SPEC §8). The times come from the server's own counters")
    s("(`GET /metrics`, every 50 ms): accepted when the 202s reached the total, drained when")
    s("`braid_runs_finished_total` reached every accepted run. Store commits are counted by the")
    s("store itself: the server here is `build-release/bench_serve` (`bench/bench_serve.c`),")
    s("the same server, engine and store as `braid serve`, which also writes the store's commit")
    s(f"counter to a file. {len(asy)} repetitions, each on a fresh data directory.\n")
    s("| figure | median (min – max) | goal |\n|---|---|---|")
    s(f"| accepted per second (202 answers) | {cell([r['accepted_per_s'] for r in asy])} | ≥ 20,000 |")
    s(f"| finished per second (all accepted runs, from the first request to the last run's end) | {cell([r['finished_per_s'] for r in asy])} | ≥ 20,000 |")
    s(f"| finished per second after acceptance ended (the backlog drained alone) | {cell([r['drain_per_s'] for r in asy])} | |")
    s(f"| runs finished while accepting | {cell([r['finished_at_accept'] for r in asy])} | |")
    s(f"| seconds to accept | {cell([r['t_accepted'] for r in asy], '{:.2f}')} | |")
    s(f"| seconds until all finished | {cell([r['t_drained'] for r in asy], '{:.2f}')} | |")
    s(f"| store commits per run (accepting and running) | {cell([r['commits_per_run'] for r in asy], '{:.3f}')} | |")
    s(f"| runs per store commit | {cell([r['runs_per_commit'] for r in asy], '{:.1f}')} | |")
    s(f"| server CPU per run, accepted and run (µs) | {cell([r['server_cpu_s'] * 1e6 / r['accepted_total'] for r in asy], '{:.0f}')} | |")
    s(f"| peak RSS of the server (MiB) | {cell([r['hwm_kib'] / 1024 for r in asy], '{:.1f}')} | |")
    s("")
    s("Commands:\n\n```sh")
    s(open(os.path.join(res, "async_commands.txt")).read().strip())
    s("```\n")
    a, f_ = med([r["accepted_per_s"] for r in asy]), med([r["finished_per_s"] for r in asy])
    goal("durable async: accepted per second", f"{a:,.0f}", "≥ 20,000", a >= 20000)
    d = [r["drain_per_s"] for r in asy]
    dra = load("drain.jsonl")
    if dra:
        n_d = dra[0]["n"]
        s(f"**Draining alone.** {n_d:,} runs of S0 are put in the queue with the command line while no")
        s(f"server runs (`braid run bench/fill`: a `for_each` of async calls, 10,000 per run), then")
        s("`bench_serve` starts and its workers drain them; timed from the server's start until")
        s(f"`braid_runs_finished_total` reaches {n_d:,}. {len(dra)} repetitions, each on a fresh data directory.\n")
        s("| figure | median (min – max) | goal |\n|---|---|---|")
        s(f"| finished per second | {cell([r['drained_per_s'] for r in dra])} | ≥ 20,000 |")
        s(f"| server CPU per run (µs) | {cell([r['cpu_us_per_run'] for r in dra], '{:.0f}')} | |")
        s(f"| store commits per run | {cell([r['commits_per_run'] for r in dra], '{:.3f}')} | |")
        s("")
        dm = med([r["drained_per_s"] for r in dra])
        goal("durable async: finished (drained) per second", f"{dm:,.0f} draining a queue of "
             f"{n_d:,} alone; {f_:,.0f} over the accept-while-running cycle", "≥ 20,000",
             dm >= 20000)
    elif all(x is not None for x in d):
        # The backlog left when acceptance ended, drained alone: the workers' own rate.
        dm = med(d)
        goal("durable async: finished (drained) per second", f"{dm:,.0f} draining the backlog alone; "
             f"{f_:,.0f} over the whole cycle", "≥ 20,000", dm >= 20000)
    else:
        # The workers kept up with acceptance: the whole cycle is the drain rate.
        goal("durable async: finished (drained) per second", f"{f_:,.0f} over the whole cycle "
             "(the workers kept up)", "≥ 20,000", f_ >= 20000)

# ---- memory ------------------------------------------------------------------------------------------
sch = load("scheduled.jsonl")
sec_mem = []
if sch or meta:
    s = sec_mem.append
    s("## Memory\n")
    s("Resident size of `braid serve` (VmRSS, and VmHWM for peaks, from `/proc/PID/status`).\n")
    s("| state | MiB, median (min – max) |\n|---|---|")
    if sch:
        n = sch[0]["n"]
        s(f"| idle: started on a fresh data directory, 1 s later | {cell([r['idle_kib'] / 1024 for r in sch], '{:.1f}')} |")
        s(f"| with {n:,} scheduled runs, just after scheduling them (VmRSS) | {cell([r['rss_kib'] / 1024 for r in sch], '{:.1f}')} |")
        s(f"| the same, peak while scheduling them (VmHWM) | {cell([r['hwm_kib'] / 1024 for r in sch], '{:.1f}')} |")
        s(f"| restarted with the {n:,} scheduled runs in its store, 2 s later | {cell([r['rss_restart_kib'] / 1024 for r in sch], '{:.1f}')} |")
    mem = meta.get("memory", {})
    for sc in meta.get("scenarios", "").split():
        if sc in mem:
            s(f"| peak under {sc.upper()} (32 and 1 connections, HTTP section) | {mem[sc]['hwm_kib'] / 1024:.1f} |")
    if "ceiling" in mem:
        s(f"| the ceiling's peak | {mem['ceiling']['hwm_kib'] / 1024:.1f} |")
    s("")
    if sch:
        s(f"Scheduling: the integration `bench/schedule` has one async `call_integration` with")
        s(f"`delay_ms` 3600000 (an hour) and `for_each` over its input; it was executed 10 times with")
        s(f"{n // 10:,} items each ({cell([r['schedule_s'] for r in sch], '{:.2f}')} s for all {n:,}). GET /metrics counted")
        s(f"{cell([r['scheduled'] for r in sch])} runs `scheduled`, and after the restart")
        s(f"{cell([r['scheduled_restart'] for r in sch])}; restarted, the server is as large as an idle one: scheduled")
        s("runs are kept in the store, not in memory. Data directory afterwards: "
          f"{cell([r['data_kib'] / 1024 for r in sch], '{:.0f}')} MiB. {len(sch)} repetitions.\n")

# ---- outbound -----------------------------------------------------------------------------------------
ob = load("outbound.jsonl")
ohttp = [r for r in load("outbound_http.jsonl") if r["round"] > 0]
ometa = load1("outbound_http_meta.json")
sec_out = []
if ob or ohttp:
    s = sec_out.append
    s("## Outbound `http` tasks\n")
if ohttp:
    s("### Over HTTP, against a libcurl multi loop\n")
    s("A local nginx (127.0.0.1, one process, a configuration of its own in a temporary directory)")
    s("serves a 17-byte JSON file. `braid serve --allow-net 127.0.0.1/32` answers")
    s("`bench/out1` (one `http` GET of it) and `bench/out10` (ten GETs in sequence), each run")
    s("recorded with its steps, at 32 connections (wrk). The ceiling: `build-release/curl_multi`")
    s("(`bench/curl_multi.c`), a bare libcurl multi loop making the same GETs to the same nginx")
    s("with 32 transfers in flight, reusing each handle and its keep-alive connection. Measured in")
    s(f"turns (curl_multi, out1, out10) in {ometa.get('runs', '?')} rounds after a warm-up round.\n")
    rounds = sorted({r["round"] for r in ohttp})
    cm = {r["round"]: r for r in ohttp if r["mode"] == "curl_multi"}
    br = {(r["calls"], r["round"]): r for r in ohttp if r["mode"] == "braid"}
    s("| figure | median (min – max) | goal |\n|---|---|---|")
    s(f"| libcurl multi loop, requests/s (32 in flight) | {cell([cm[k]['rps'] for k in rounds if k in cm])} | |")
    for n in (1, 10):
        rps = [br[(n, k)]["rps"] for k in rounds if (n, k) in br]
        calls_s = [x * n for x in rps]
        ratio = [br[(n, k)]["rps"] * n / cm[k]["rps"] for k in rounds if (n, k) in br and k in cm]
        s(f"| braid out{n}: runs/s at 32 connections | {cell(rps)} | |")
        s(f"| braid out{n}: outbound requests/s | {cell(calls_s)} | |")
        s(f"| braid out{n}: p50 / p99 latency at 32 connections (ms) | {cell([br[(n, k)]['p50_us'] for k in rounds if (n, k) in br], '{:.1f}', 1e-3)} / {cell([br[(n, k)]['p99_us'] for k in rounds if (n, k) in br], '{:.1f}', 1e-3)} | |")
        s(f"| braid out{n}: outbound requests/s ÷ the libcurl loop's | {cell(ratio, '{:.3f}')} | ≥ 0.7 |")
        s(f"| braid out{n}: server CPU per outbound request (µs) | {cell([br[(n, k)]['server_cpu_s'] * 1e6 / (br[(n, k)]['requests'] * n) for k in rounds if (n, k) in br], '{:.0f}')} | |")
        m = med(ratio)
        goal(f"outbound `http` task over HTTP, {n} call{'s' if n > 1 else ''} per run: requests/s ÷ the libcurl multi loop's", f"{m:.3f}", "≥ 0.7", m >= 0.7)
    s(f"\nPeak RSS of braid after these runs: {ometa.get('braid_hwm_kib', 0) / 1024:.1f} MiB. nginx {ometa.get('nginx', '?')}, libcurl {ometa.get('libcurl', '?')}.")
    s("The braid figures are of the whole execution over HTTP (accept the request, run, commit the")
    s("run record, answer), so out1 carries the cost of S0 as well as the outbound request.\n")
    s("Commands:\n\n```sh")
    for c in ometa.get("commands", []):
        s(c)
    s("```\n")
if ob:
    n = env.get("outbound", 20000)
    curl = [r["rps"] for r in ob if r["mode"] == "curl"]
    task = [r["rps"] for r in ob if r["mode"] == "task"]
    ratios = [t["rps"] / c["rps"] for c, t in zip([r for r in ob if r["mode"] == "curl"],
                                                  [r for r in ob if r["mode"] == "task"])]
    s("### In process, against a bare libcurl loop\n")
    s("An upstream on 127.0.0.1 (a forked child: keep-alive HTTP/1.1, a 17-byte JSON answer)")
    s(f"is called {n:,} times, first by a bare libcurl loop (one easy handle, `curl_easy_perform`")
    s("in a loop), then by a run whose `call_integration` calls, one after another, a child whose")
    s("one task is an `http` GET — so each request also costs a sub-call, a step record and a run")
    s(f"record. Command: `build-release/bench_outbound {n} DIR`.\n")
    s("| figure | median (min – max) | goal |\n|---|---|---|")
    s(f"| bare libcurl loop, requests/s | {cell(curl)} | |")
    s(f"| `http` task in a run, requests/s | {cell(task)} | |")
    s(f"| ratio within a run | {cell(ratios, '{:.2f}')} | ≥ 0.7 |")
    m = med(ratios)
    goal("outbound `http` task in process (one at a time): requests/s ÷ the bare libcurl loop's", f"{m:.2f}", "≥ 0.7", m >= 0.7)
    wait = [r for r in ob if r["mode"] == "wait"]
    if wait:
        x = wait[len(wait) // 2]
        s(f"\n**Waiting runs cost no thread of their own.** {x['callers']} threads each start 5 sync runs")
        s("against an upstream route that answers after 200 ms (median run shown):")
        s(f"{x['runs']} runs took {x['seconds']:.2f} s ({x['rps']:.0f} runs/s, i.e. all waits overlapped).")
        s(f"While they waited the process had {x['threads_in_flight']} threads (the {x['callers']} callers and the engine's own) and {x['sockets_in_flight']} sockets;")
        s(f"afterwards {x['threads_idle']} threads and {x['sockets_idle']} sockets — the idle keep-alive")
        s("connections stay open for reuse and no thread waits on any of them.\n")

# ---- the report ------------------------------------------------------------------------------------
stages = load("stages.jsonl")
v = env.get("versions", {})
w("# braid benchmark report\n")
w(f"Generated {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')} by `make bench` at commit "
  f"`{env.get('commit', '?')}`{' (with uncommitted changes in src/ or bench/)' if env.get('dirty') else ''};"
  f" the whole run took {env.get('total_seconds', 0) / 60:.1f} minutes ("
  + ", ".join(f"{st['stage']} {st['seconds']} s" for st in stages) + ").\n")
w(f"Machine: {env.get('cpu', '?')}, {env.get('cores', '?')} cores, {env.get('memory', '?')} memory;"
  f" {env.get('os', '?')}, {env.get('kernel', '?')}; temporary files on {env.get('disk', '?')}.")
w(f"Build: {env.get('build', '?')}, gcc {v.get('gcc', '?')}, CMake {v.get('cmake', '?')}.")
w(f"Libraries: SQLite {v.get('sqlite', '?')}, jansson {v.get('jansson', '?')}, libmicrohttpd"
  f" {v.get('libmicrohttpd', '?')}, libcurl {v.get('libcurl', '?')}, Lua {v.get('lua', '?')},"
  f" libsodium {v.get('libsodium', '?')}. Tools: wrk {v.get('wrk', '?')}, nginx {v.get('nginx', '?')},"
  f" gnuplot {v.get('gnuplot', '?')}.\n")
w("Everything runs on this one machine, on 127.0.0.1, the load generator on the same cores as")
w("the server it measures. The machine may be shared: every figure is the median of repeated")
w("runs with min – max beside it, so the noise shows. Figures are never asserted in tests.")
w("Reproduce with `make bench` (`bench/run.sh`); each section gives its exact commands.\n")
w("## Goals (issue 6)\n")
w("| figure | this run (median) | goal | |\n|---|---|---|---|")
ORDER = ["S1 requests/s", "S1 p50", "CPU per extra", "in-process sync", "peak memory",
         "durable async: accepted", "durable async: finished", "outbound"]
goals.sort(key=lambda g: next((i for i, k in enumerate(ORDER) if g[0].startswith(k)), len(ORDER)))
for figure, value, text, ok in goals:
    w(f"| {figure} | {value} | {text} | {'met' if ok else '**not met**'} |")
w("")
w("Section index: [HTTP S0/S1/S10](#http-post-integrationsexecutename--s0-s1-s10-against-the-ceiling),"
  " [chart](#requestss-against-connections), [in-process sub-call](#in-process-sync-sub-call-history-on),"
  " [durable async](#durable-async-runs-over-http), [memory](#memory), [outbound](#outbound-http-tasks),"
  " profiles ([sub-call](#where-the-sub-call-time-goes-profiles), [HTTP](#where-the-http-time-goes-profiles)).\n")
for sec in (sec_http, sec_sub, sec_async, sec_mem, sec_out):
    out.extend(sec)
# The profiles, then the last `make bench-peers` side by side (written at its own time; it
# says when), so that rewriting this report never drops it.
for extra in ("analysis.md", "http_analysis.md", os.path.join("peers", "report.md")):
    p = os.path.join(HERE, extra)
    if os.path.exists(p):
        w(open(p).read().rstrip() + "\n")
with open(report_path, "w") as f:
    f.write("\n".join(out).rstrip() + "\n")
print("\n".join(out[:40]))
