"""Runs whose only waits are outbound requests run on the outbound loop: many runs on one
thread, each on a fiber, so waiting on upstreams costs no thread per run; retries pause
there without holding up the others, and cancellation and wait_ms work as on a thread. Sync
executions go there from the HTTP server, async runs from the workers (up to --loop-runs)."""
import os
import threading
import time

import pytest

from conftest import ALLOW, call, execute, http_task, integration, publish


@pytest.fixture
def srv(allowed_server):
    return allowed_server


def threads_of(srv):
    return len(os.listdir(f"/proc/{srv.proc.pid}/task"))


def at_once(srv, name, payloads):
    """Execute NAME once per payload, all at once, the first payload alone before (the loop
    and libcurl start once). Returns (seconds, records, threads the process grew by at most
    while they ran)."""
    execute(srv, name, payloads[0])
    before = threads_of(srv)
    results, peak = [], before
    workers = [threading.Thread(target=lambda p=p: results.append(execute(srv, name, p)))
               for p in payloads[1:]]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        peak = max(peak, threads_of(srv))
        time.sleep(0.05)
    return time.monotonic() - t0, results, peak - before


def test_waiting_runs_share_one_thread(srv, up):
    """40 runs waiting 600 ms each on an upstream at once: they overlap, and the process does
    not grow a thread per run (a pool thread per waiting run would add 40)."""
    publish(srv, integration("loop/wait", [http_task("h", up.base + "/slow?ms=600&i={{vars.i}}")],
                             outputs={"slept": "{{vars.httpResult.slept}}"}))
    took, results, grew = at_once(srv, "loop/wait", [{"i": i} for i in range(-1, 40)])
    assert len(results) == 40
    assert all(r["status"] == "succeeded" and r["output"] == {"slept": 600} for r in results)
    assert up.hits_of("/slow") == 41
    assert took < 40 * 0.6 / 4, f"40 runs waiting 600 ms took {took:.1f}s: not concurrent"
    assert grew < 10, f"threads grew by {grew} while runs waited"


def test_a_retry_pause_holds_up_no_other_run(srv, up):
    """A run pausing between attempts (1.5 s) leaves the loop to the others: a quick run
    started during the pause finishes at once, and the retrying run still makes its three
    attempts with their pauses."""
    publish(srv, integration("loop/retry", [http_task(
        "h", up.base + "/flaky?key=loop-retry&fail=2",
        retry={"max_attempts": 3, "initial_ms": 750, "multiplier": 1, "jitter": False})],
        outputs={"hit": "{{vars.httpResult.hit}}"}))
    publish(srv, integration("loop/quick", [http_task("h", up.base + "/json")],
                             outputs={"n": "{{vars.httpResult.n}}"}))
    box = {}

    def retrying():
        t = time.monotonic()
        box["rec"] = execute(srv, "loop/retry")
        box["took"] = time.monotonic() - t

    worker = threading.Thread(target=retrying)
    worker.start()
    time.sleep(0.3)  # inside the first pause
    t0 = time.monotonic()
    quick = execute(srv, "loop/quick")
    quick_took = time.monotonic() - t0
    worker.join(30)
    assert quick["status"] == "succeeded" and quick["output"] == {"n": 42}
    assert quick_took < 0.5, f"a quick run took {quick_took:.2f}s behind a pausing one"
    rec = box["rec"]
    assert rec["status"] == "succeeded" and rec["output"] == {"hit": 3}, rec
    assert 1.4 < box["took"] < 10, box["took"]
    step = [s for s in srv.get(f"/runs/{rec['id']}").json()["steps"] if s["task"] == "h"][0]
    assert step["attempt"] == 3, step


def test_cancel_and_wait_ms_on_the_loop(srv, up):
    """wait_ms answers 202 with the id of a run waiting on the loop; cancelling it ends its
    request in flight, and the run is recorded as cancelled."""
    publish(srv, integration("loop/hang", [http_task("h", up.base + "/hang", timeout_ms=60000)]))
    r = srv.execute("loop/hang", {}, query="wait_ms=200")
    assert r.status == 202, r
    run_id = r.json()["run_id"]
    assert srv.get(f"/runs/{run_id}").json()["status"] == "running"
    t0 = time.monotonic()
    assert srv.post(f"/runs/{run_id}/cancel").status in (200, 202)
    status = None
    while time.monotonic() - t0 < 10:
        status = srv.get(f"/runs/{run_id}").json()["status"]
        if status != "running":
            break
        time.sleep(0.05)
    assert status == "cancelled"
    assert time.monotonic() - t0 < 3


def test_timeouts_on_the_loop(srv, up):
    """A request's timeout_ms is kept by the loop's transfers as by a thread's."""
    publish(srv, integration("loop/timeout", [http_task(
        "h", up.base + "/slow?ms=3000", timeout_ms=300, continue_on_error=True)],
        outputs={"o": "{{tasks.h}}"}))
    t0 = time.monotonic()
    rec = execute(srv, "loop/timeout")
    assert time.monotonic() - t0 < 2.5
    assert rec["output"]["o"]["success"] is False
    assert rec["output"]["o"]["error"]["code"] == "timeout"


def _async_batch(srv, up, n, ms, tag):
    """Start N async runs that each wait MS on the upstream; return (seconds until all
    succeeded, their records)."""
    name = f"loop/async-{tag}"
    publish(srv, integration(name, [http_task("h", up.base + f"/slow?ms={ms}&i={{{{vars.i}}}}")],
                             outputs={"slept": "{{vars.httpResult.slept}}"}))
    t0 = time.monotonic()
    ids = []
    for i in range(n):
        r = srv.execute(name, {"i": i}, query="mode=async")
        assert r.status == 202, r
        ids.append(r.json()["run_id"])
    recs = [srv.wait_run(run_id, timeout=60) for run_id in ids]
    return time.monotonic() - t0, recs


def test_async_runs_waiting_on_the_network_pass_the_workers(make_server, up):
    """With one worker, 12 async runs waiting 500 ms each finish together on the outbound
    loop; with --loop-runs 0 they take the worker one after another."""
    srv = make_server(ALLOW + ("--workers", "1"), name="loop")
    took, recs = _async_batch(srv, up, 12, 500, "loop")
    assert all(r["status"] == "succeeded" and r["output"] == {"slept": 500} for r in recs), recs
    assert took < 12 * 0.5 / 3, f"12 async runs of 500 ms took {took:.1f}s on the loop"

    serial = make_server(ALLOW + ("--workers", "1", "--loop-runs", "0"), name="workers")
    took, recs = _async_batch(serial, up, 4, 500, "workers")
    assert all(r["status"] == "succeeded" for r in recs), recs
    assert took >= 4 * 0.5, f"4 async runs of 500 ms on one worker took only {took:.1f}s"


def test_loop_runs_is_a_limit(make_server, up):
    """--loop-runs 2: two async runs wait on the loop and the rest take the one worker, so 6
    runs of 600 ms need at least two rounds, and all finish."""
    srv = make_server(ALLOW + ("--workers", "1", "--loop-runs", "2"), name="limited")
    took, recs = _async_batch(srv, up, 6, 600, "limited")
    assert all(r["status"] == "succeeded" for r in recs), recs
    assert took >= 2 * 0.6, f"6 runs with room for 3 at once took only {took:.1f}s"
    assert took < 6 * 0.6, f"6 runs with room for 3 at once took {took:.1f}s: none overlapped"


def test_a_deep_call_chain_runs_on_a_fiber(srv, up):
    """Sync calls recurse on the fiber's own stack: a chain 30 deep whose leaf calls out runs
    on the loop to the end, each level mapping the leaf's answer back up."""
    publish(srv, integration("loop/chain0", [http_task("h", up.base + "/json")],
                             outputs={"n": "{{vars.httpResult.n}}"}))
    for i in range(1, 31):
        publish(srv, integration(f"loop/chain{i}", [call("c", f"loop/chain{i - 1}")],
                                 outputs={"n": "{{tasks.c.result.n}}"}))
    rec = execute(srv, "loop/chain30")
    assert rec["status"] == "succeeded" and rec["output"] == {"n": 42}, rec
    assert up.hits_of("/json") == 1


def test_a_fan_out_runs_on_fibers_of_the_loop(srv, up):
    """A for_each with parallelism 8 over an http integration runs on the loop with fibers for
    helpers: 10 such runs of 16 calls of 300 ms overlap as the parallelism allows, add no
    thread, and every item's result comes back in order."""
    publish(srv, integration("loop/one", [http_task("h", up.base + "/slow?ms=300&i={{vars.i}}")],
                             outputs={"i": "{{vars.i}}", "slept": "{{vars.httpResult.slept}}"}))
    publish(srv, integration("loop/fan", [call("c", "loop/one", for_each="{{vars.items}}",
                                               parallelism=8, input={"i": "{{item}}"})],
                             outputs={"r": "{{tasks.c.result}}"}))
    items = list(range(16))
    took, results, grew = at_once(srv, "loop/fan", [{"items": [0]}] + [{"items": items}] * 10)
    assert len(results) == 10
    for r in results:
        assert r["status"] == "succeeded", r
        assert r["output"]["r"] == [{"i": i, "slept": 300} for i in items]
    # 16 items at 8 at once: two rounds of 300 ms per run, the ten runs side by side.
    assert 0.6 <= took < 10 * 0.6 / 3, f"10 fan-outs of 16 x 300 ms took {took:.1f}s"
    assert grew < 10, f"threads grew by {grew} while runs waited"
    assert up.hits_of("/slow") == 161


def test_a_for_each_in_turn_runs_on_the_loop(srv, up):
    """A for_each that calls an http integration one item at a time (parallelism 1) waits on
    the loop: 20 such runs of two 300 ms calls each overlap and add no thread per run."""
    publish(srv, integration("loop/fetch", [http_task("h", up.base + "/slow?ms=300&i={{vars.i}}")],
                             outputs={"slept": "{{vars.httpResult.slept}}"}))
    publish(srv, integration("loop/each", [call("c", "loop/fetch", for_each="{{vars.items}}",
                                                parallelism=1, input={"i": "{{item}}"})],
                             outputs={"r": "{{tasks.c.result}}"}))
    took, results, grew = at_once(srv, "loop/each", [{"items": [0]}] + [{"items": [1, 2]}] * 20)
    assert len(results) == 20
    assert all(r["output"] == {"r": [{"slept": 300}, {"slept": 300}]} for r in results), results
    assert took < 20 * 0.6 / 4, f"20 runs of two 300 ms calls took {took:.1f}s"
    assert grew < 10, f"threads grew by {grew} while runs waited"
