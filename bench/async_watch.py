"""async_watch.py - watches `bench_serve` while wrk sends async executions, and prints one JSON
line: when N answers were accepted (202s in GET /metrics), when every accepted run finished,
and the store's commit count at the start, at acceptance and at the end.

    python3 bench/async_watch.py PORT TOKEN N COMMITS_FILE T0 TIMEOUT_S COMMITS0

T0 is the wall-clock time (seconds since the epoch) just before wrk started, COMMITS0 the commit
count read then. Polls every 50 ms. The runs drain while more are accepted (the server's
workers never wait for the acceptance to end): "finished" is when the last accepted run ended.
"""
import json
import sys
import time
import urllib.request

port, token, n, commits_file, t0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
timeout = float(sys.argv[6])
req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                             headers={"Authorization": f"Bearer {token}"})


def scrape():
    accepted = finished = 0
    with urllib.request.urlopen(req, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("braid_http_requests_total{") and \
                    'route="/integrations/execute/{name}"' in line and 'status="202"' in line:
                accepted += int(float(line.split()[-1]))
            elif line.startswith("braid_runs_finished_total{"):
                finished += int(float(line.split()[-1]))
    return accepted, finished


def commits():
    for _ in range(20):
        try:
            return int(open(commits_file).read())
        except (OSError, ValueError):
            time.sleep(0.01)
    return -1


c0 = int(sys.argv[7])
out = {"n": n, "commits0": c0}
while True:
    now = time.time()
    if now - t0 > timeout:
        out["timeout"] = True
        break
    accepted, finished = scrape()
    if "t_accepted" not in out and accepted >= n:
        out.update(t_accepted=now - t0, accepted=accepted, finished_at_accept=finished,
                   commits_at_accept=commits())
        print(f"bench: async: {accepted} accepted after {now - t0:.2f} s, {finished} finished",
              file=sys.stderr)
    if "t_accepted" in out and finished >= accepted:
        out.update(t_drained=now - t0, accepted_total=accepted, finished=finished,
                   commits_end=commits())
        break
    time.sleep(0.05)
print(json.dumps(out))
