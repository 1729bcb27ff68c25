"""http_report.py - turns bench/http.sh's measurements into the report's HTTP section (Markdown
on standard output).

    python3 bench/http_report.py RESULTS.jsonl META.json COMMANDS.txt

RESULTS holds one line per wrk run, written by bench/wrk_post.lua: server, scenario, conns,
round (0 = warm-up, dropped), rps, p50_us, p99_us, errors. Every figure is shown as the median
of the rounds with min and max beside it, so the noise of a shared machine shows.
"""
import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
meta = json.load(open(sys.argv[2]))
commands = open(sys.argv[3]).read().strip()
rows = [r for r in rows if r["round"] > 0]
conns = [int(c) for c in meta["conns"].split()]
scenarios = meta["scenarios"].split()

series = defaultdict(list)  # (server, scenario, conns, figure) -> values
for r in rows:
    for fig in ("rps", "p50_us", "p99_us"):
        series[(r["server"], r["scenario"], r["conns"], fig)].append(r[fig])


def med(key):
    return statistics.median(series[key])


def cell(key, scale=1.0, fmt="{:,.0f}"):
    v = sorted(x * scale for x in series[key])
    if not v:
        return "–"
    return f"{fmt.format(statistics.median(v))} ({fmt.format(v[0])} – {fmt.format(v[-1])})"


def ms(key):
    return cell(key, 1e-3, "{:.3f}")


servers = [("ceiling", "-", "ceiling")] + [("braid", s, f"braid {s.upper()}") for s in scenarios]
out = []
w = out.append
w("## HTTP: POST /integrations/execute/NAME (S1)\n")
w("`braid serve` (release build, a fresh data directory, SQLite store, request log to a file)")
w("against the ceiling, `build-release/ceiling`: bare libmicrohttpd with the same daemon flags,")
w(f"limits and thread count ({meta['threads']} HTTP threads) answering `{{\"y\": 2}}` after reading")
w("the body. Both run at once on 127.0.0.1 and are measured in turns (ceiling, then braid, in")
w(f"each of {meta['runs']} rounds, after a {meta['warmup_secs']}-second warm-up each), so the machine's drift falls on")
w("both alike. S1: `bench/s1` calls `bench/s1-child` synchronously with `{\"x\": n}`; the child")
w("answers `{\"y\": x + 1}` (`bench/scenarios/s1.json`). Before measuring, one request to each")
w("server is checked with curl: 200 and `\"y\": 2` in the answer. wrk runs on the same two")
w("cores as the server it measures. Commands (`TOKEN` is the admin token from")
w("`DATA/admin.token`; `bench/wrk_post.lua` sends the body, `Content-Type: application/json` and")
w("`Authorization: Bearer TOKEN`, and records the figures):\n")
w("```sh")
w("build-release/ceiling --port 0 --threads " + str(meta["threads"]))
w(f"build-release/braid serve --listen 127.0.0.1:0 --http-threads {meta['threads']} "
  "--grace-ms 2000 --data DATA")
w("curl -X PUT -H 'Authorization: Bearer TOKEN' --data-binary @DOC "
  "http://127.0.0.1:PORT/integrations/NAME   # each document of the scenario")
w(commands)
w("```\n")

head = "| server |" + "".join(f" requests/s, {c} conn. |" for c in conns)
head += " p50, 1 conn. (ms) | p99, 1 conn. (ms) | requests/s, 1 conn. |"
w(head)
w("|---" * (head.count("|") - 1) + "|")
for server, scen, label in servers:
    line = f"| {label} |"
    for c in conns:
        line += f" {cell((server, scen, c, 'rps'))} |"
    line += f" {ms((server, scen, 1, 'p50_us'))} | {ms((server, scen, 1, 'p99_us'))} |"
    line += f" {cell((server, scen, 1, 'rps'))} |"
    w(line)
for scen in scenarios:
    line = f"| braid {scen.upper()} ÷ ceiling |"
    for c in conns:
        line += f" {med(('braid', scen, c, 'rps')) / med(('ceiling', '-', c, 'rps')):.2f} |"
    for fig in ("p50_us", "p99_us"):
        line += f" {med(('braid', scen, 1, fig)) / med(('ceiling', '-', 1, fig)):.2f} |"
    line += f" {med(('braid', scen, 1, 'rps')) / med(('ceiling', '-', 1, 'rps')):.2f} |"
    w(line)
w("")
w(f"Each cell: the median of {meta['runs']} runs of {meta['secs']} s (min – max). Ratios are of the")
w("medians.\n")

if "s1" in scenarios and 32 in conns:
    rps = med(("braid", "s1", 32, "rps")) / med(("ceiling", "-", 32, "rps"))
    p50 = med(("braid", "s1", 1, "p50_us")) / med(("ceiling", "-", 1, "p50_us"))
    w("| goal (issue 3) | braid S1 ÷ ceiling | goal | where it stands |")
    w("|---|---|---|---|")
    w(f"| requests/s at 32 connections | {rps:.2f} | ≥ 0.5 | "
      + ("met" if rps >= 0.5 else f"not met: {0.5 / rps:.1f} × short") + " |")
    w(f"| p50 at 1 connection | {p50:.2f} | ≤ 1.3 | "
      + ("met" if p50 <= 1.3 else f"not met: {p50 / 1.3:.1f} × too slow") + " |")
    w("")

mib = lambda kib: kib / 1024.0
w(f"Memory (`/proc/PID/status`): braid's peak resident size after the load (VmHWM) "
  f"{mib(meta['braid_hwm_kib']):.1f} MiB (issue 6's goal: ≤ 20 MiB), idle before it "
  f"{mib(meta['braid_idle_kib']):.1f} MiB; the ceiling's peak {mib(meta['ceiling_hwm_kib']):.1f} MiB.\n")

errs = defaultdict(int)
for r in rows:
    for k, v in r["errors"].items():
        errs[(r["server"], k)] += v
bad = {k: v for k, v in errs.items() if v}
if bad:
    w("wrk counted errors (non-2xx answers are `status`): "
      + ", ".join(f"{s} {k} {v}" for (s, k), v in sorted(bad.items())) + ".\n")
else:
    w("No errors: every request got a 2xx answer, no socket errors or timeouts.\n")
w(f"Versions: wrk {meta['wrk']}, libmicrohttpd {meta['mhd']}.")
print("\n".join(out))
