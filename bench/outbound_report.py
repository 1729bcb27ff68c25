"""Turns bench_outbound's JSON lines (several runs) into the report's outbound section."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
n = sys.argv[2]


def spread(mode, key):
    v = sorted(r[key] for r in rows if r["mode"] == mode)
    return v[0], statistics.median(v), v[-1]


curl, task = spread("curl", "rps"), spread("task", "rps")
ratios = sorted(t["rps"] / c["rps"] for c, t in zip([r for r in rows if r["mode"] == "curl"],
                                                    [r for r in rows if r["mode"] == "task"]))
wait = [r for r in rows if r["mode"] == "wait"]
w = wait[len(wait) // 2] if wait else None

print("## Outbound `http` task (in process, history on)\n")
print("An upstream on 127.0.0.1 (a forked child: keep-alive HTTP/1.1, a 17-byte JSON answer)")
print(f"is called {n} times, first by a bare libcurl loop (one easy handle, `curl_easy_perform`")
print("in a loop), then by a run whose `call_integration` calls, one after another, a child whose")
print("one task is an `http` GET — so each request also costs a sub-call, a step record and a run")
print("record. Command: `build-release/bench_outbound " + n + "`.\n")
print("| figure | min | median | max | goal |\n|---|---|---|---|---|")
print(f"| bare libcurl loop, requests/s | {curl[0]:.0f} | {curl[1]:.0f} | {curl[2]:.0f} | |")
print(f"| `http` task in a run, requests/s | {task[0]:.0f} | {task[1]:.0f} | {task[2]:.0f} | |")
print(f"| ratio within a run | {ratios[0]:.2f} | {statistics.median(ratios):.2f} | {ratios[-1]:.2f} | ≥ 0.7 |")
if w:
    print(f"\n**Waiting runs share one I/O thread.** {w['callers']} threads each start 5 sync runs")
    print("against an upstream route that answers after 200 ms (median run shown):")
    print(f"{w['runs']} runs took {w['seconds']:.2f} s ({w['rps']:.0f} runs/s, i.e. all waits overlapped).")
    print(f"While they waited the process had {w['threads_in_flight']} threads (the {w['callers']} callers,")
    print(f"the outbound I/O thread, the store writer and the main thread) and {w['sockets_in_flight']} sockets;")
    print(f"afterwards {w['threads_idle']} threads and {w['sockets_idle']} sockets — the idle keep-alive")
    print("connections stay open for reuse and no thread waits on any of them.")
