"""Where a run's steps are written (docs/architecture.md, "Steps held in the run's row"): a run
that ends soon after its steps keeps them in its own row; a run that goes on, or waits, writes
them as it goes, and history shows the same steps either way (SPEC §8)."""
import json
import os
import sqlite3
import time

from apilib import call, integration, set_task


def db_rows(server, run_id):
    """(steps held in the run's row, rows of the steps table) for RUN_ID, read from the file."""
    db = sqlite3.connect(os.path.join(server.data, "braid.db"), timeout=10)
    try:
        held = db.execute("SELECT steps FROM runs WHERE id=?", (run_id,)).fetchone()
        rows = db.execute("SELECT seq FROM steps WHERE run_id=? ORDER BY seq",
                          (run_id,)).fetchall()
    finally:
        db.close()
    return (json.loads(held[0]) if held and held[0] else []), [r[0] for r in rows]


def slow_fail(tid, wait_ms, attempts=2):
    """A task that fails and retries: it takes about WAIT_MS * (2^(ATTEMPTS-1) - 1) ms."""
    return {"id": tid, "type": "fail", "code": "slow", "message": "waiting",
            "retry": {"max_attempts": attempts, "initial_ms": wait_ms, "jitter": False,
                      "on": ["slow"]},
            "continue_on_error": True}


def poll_running(server, run_id, want, timeout=20):
    """The run's record the first time it is running with the tasks WANT as its steps."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = server.run(run_id)
        assert rec["status"] in ("queued", "running"), rec
        if [s["task"] for s in rec["steps"]] == want:
            return rec
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} never showed steps {want} while running")


def test_short_runs_keep_their_steps_in_their_row(server):
    server.publish(integration("h/child", [set_task("inc", {"y": "{{vars.x + 1}}"})],
                               inputs={"x": {"type": "integer", "required": True}}),
                   integration("h/parent", [call("c", "h/child", input={"x": "{{vars.n}}"}),
                                            set_task("s", {"done": True})]))
    rec = server.execute("h/parent", {"n": 4}).json()
    assert rec["status"] == "succeeded" and rec["output"]["done"] is True

    one = server.run(rec["id"])
    assert [(s["task"], s["type"], s["status"]) for s in one["steps"]] == [
        ("c", "call_integration", "succeeded"), ("s", "set", "succeeded")]
    assert one["steps"][0]["result"]["y"] == 5 and one["steps"][1]["result"]["done"] is True
    child_id = one["steps"][0]["child_run_ids"][0]
    child = server.run(child_id)
    assert [s["task"] for s in child["steps"]] == ["inc"]
    assert child["steps"][0]["result"]["y"] == 5

    # Both runs wrote one row each: their steps are in it, the steps table holds none.
    for run_id, tasks in ((rec["id"], ["c", "s"]), (child_id, ["inc"])):
        held, rows = db_rows(server, run_id)
        assert [s["task_id"] for s in held] == tasks and rows == []
        assert all(s["attempt"] == 1 for s in held)


def test_a_run_going_on_writes_its_steps_as_it_goes(server):
    # 'wait' takes ~300 ms, past the time a run holds its steps; 'long' takes ~3 s.
    server.publish(integration("h/long", [set_task("a", {"a": 1}), slow_fail("wait", 300),
                                          set_task("b", {"b": 2}),
                                          slow_fail("long", 1000, attempts=3)]))
    r = server.execute("h/long", {}, query="mode=async")
    assert r.status == 202, r
    run_id = r.json()["run_id"]
    # While 'long' retries, the steps before it are in history already.
    rec = poll_running(server, run_id, ["a", "wait", "b"])
    assert rec["steps"][1]["status"] == "failed" and rec["steps"][2]["result"]["b"] == 2
    held, rows = db_rows(server, run_id)
    assert [s["task_id"] for s in held] == ["a", "wait"] and rows == [2]

    done = server.wait_run(run_id)
    assert done["status"] == "succeeded"
    assert [s["task"] for s in server.run(run_id)["steps"]] == ["a", "wait", "b", "long"]
    held, rows = db_rows(server, run_id)
    assert [s["task_id"] for s in held] == ["a", "wait"] and rows == [2, 3]


def test_a_run_about_to_wait_writes_what_it_holds(server):
    server.publish(integration("h/later", [set_task("s", {"done": True})]),
                   integration("h/waiter", [
                       set_task("a", {"a": 1}),
                       call("spawn", "h/later", strategy="async", delay_ms=1500),
                       {"id": "wait", "type": "await", "runs": "{{tasks.spawn.result.run_id}}"},
                   ]))
    r = server.execute("h/waiter", {}, query="mode=async")
    assert r.status == 202, r
    run_id = r.json()["run_id"]
    rec = poll_running(server, run_id, ["a", "spawn"])
    assert rec["steps"][1]["child_run_ids"]
    assert server.wait_run(run_id)["status"] == "succeeded"
    assert [s["task"] for s in server.run(run_id)["steps"]] == ["a", "spawn", "wait"]
