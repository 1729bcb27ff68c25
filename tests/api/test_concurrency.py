"""Issue 3: 50 clients executing sync runs at once all get their own correct answers."""
import threading

from apilib import call, echo, integration

N = 50


def test_fifty_sync_clients(server):
    server.publish(echo("c/child"),
                   integration("c/parent", [
                       call("c", "c/child", strategy="sync", input={"v": "{{vars.v}}"},
                            output={"r": "echoed"})], outputs=["r", "tag"]))
    barrier = threading.Barrier(N)
    results = [None] * N

    def client(i):
        barrier.wait(30)
        try:
            results[i] = server.execute("c/parent", {"v": i, "tag": f"t{i}" * (i + 1)})
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    bad = []
    for i, r in enumerate(results):
        if isinstance(r, Exception) or r is None or r.status != 200:
            bad.append(f"{i}: {r!r}")
            continue
        rec = r.json()
        if rec["status"] != "succeeded" or rec["output"] != {"r": i, "tag": f"t{i}" * (i + 1)}:
            bad.append(f"{i}: {rec['status']} {rec['output']} {rec['error']}")
        if rec["input"]["payload"]["v"] != i:
            bad.append(f"{i}: input {rec['input']['payload']}")
    assert not bad, "\n".join(bad)
    assert len({r.json()["id"] for r in results}) == N
    assert len(server.runs(integration="c/child")) == N
    server.healthy()
