"""Where a run's steps are written (docs/architecture.md, "Sync children in history"): a sync
child that has not been written yet holds its steps in its own record and writes them with it;
every run already in history writes each step as it ends. History shows the same steps either
way (SPEC §8)."""
import json
import os
import sqlite3
import time

from apilib import call, integration, set_task


def db_rows(server, run_id):
    """(steps held in the run's row, seqs of its rows in the steps table), read from the file."""
    db = sqlite3.connect(os.path.join(server.data, "braid.db"), timeout=10)
    try:
        held = db.execute("SELECT steps FROM runs WHERE id=?", (run_id,)).fetchone()
        rows = db.execute("SELECT seq FROM steps WHERE run_id=? ORDER BY seq",
                          (run_id,)).fetchall()
    finally:
        db.close()
    return (json.loads(held[0]) if held and held[0] else []), [r[0] for r in rows]


def slow_fail(tid, wait_ms):
    """A task that fails, waits WAIT_MS, fails again, and lets the run go on."""
    return {"id": tid, "type": "fail", "code": "slow", "message": "waiting",
            "retry": {"max_attempts": 2, "initial_ms": wait_ms, "jitter": False, "on": ["slow"]},
            "continue_on_error": True}


def test_a_short_child_writes_its_steps_with_its_record(server):
    server.publish(integration("h/child", [set_task("inc", {"y": "{{vars.x + 1}}"}),
                                           set_task("more", {"z": "a \"quoted\"\n\u00e9"})],
                               inputs={"x": {"type": "integer", "required": True}}),
                   integration("h/parent", [call("c", "h/child", input={"x": "{{vars.n}}"}),
                                            set_task("s", {"done": True})]))
    rec = server.execute("h/parent", {"n": 4}).json()
    assert rec["status"] == "succeeded" and rec["output"]["done"] is True

    one = server.run(rec["id"])
    assert [(s["task"], s["type"], s["status"]) for s in one["steps"]] == [
        ("c", "call_integration", "succeeded"), ("s", "set", "succeeded")]
    child_id = one["steps"][0]["child_run_ids"][0]
    child = server.run(child_id)
    assert [(s["task"], s["type"], s["status"]) for s in child["steps"]] == [
        ("inc", "set", "succeeded"), ("more", "set", "succeeded")]
    assert child["steps"][0]["result"]["y"] == 5
    assert child["steps"][1]["result"]["z"] == "a \"quoted\"\n\u00e9"

    # The root was in history from its start: a row per step. The child wrote one row.
    assert db_rows(server, rec["id"]) == ([], [0, 1])
    held, rows = db_rows(server, child_id)
    assert [s["task_id"] for s in held] == ["inc", "more"] and rows == []
    assert all(s["attempt"] == 1 for s in held)


def test_a_child_that_goes_on_writes_what_it_held(server):
    # h/mid holds 'a', then its call to the slow h/leaf puts it in history, 'a' with it.
    server.publish(integration("h/leaf", [slow_fail("wait", 1500)]),
                   integration("h/mid", [set_task("a", {"a": 1}), call("deep", "h/leaf"),
                                         set_task("b", {"b": 2})]),
                   integration("h/top", [call("m", "h/mid")]))
    r = server.execute("h/top", {}, query="mode=async")
    assert r.status == 202, r
    top = r.json()["run_id"]
    deadline = time.time() + 20
    mid = None
    while time.time() < deadline:
        kids = server.get("/runs?parent_id=" + top).json()["runs"]
        if kids:
            mid = server.run(kids[0]["id"])
            break
        time.sleep(0.02)
    assert mid is not None, "h/mid never showed up while it was calling h/leaf"
    assert mid["status"] == "running"
    assert [s["task"] for s in mid["steps"]] == ["a"]
    assert mid["steps"][0]["result"]["a"] == 1

    assert server.wait_run(top)["status"] == "succeeded"
    assert [s["task"] for s in server.run(mid["id"])["steps"]] == ["a", "deep", "b"]
    held, rows = db_rows(server, mid["id"])
    assert [s["task_id"] for s in held] == ["a"] and rows == [1, 2]


def test_a_child_holds_a_bounded_number_of_steps(server):
    # 70 rounds of 'inc' and 'loop': 140 steps, of which a child holds at most 64.
    server.publish(
        integration("h/loop", [
            set_task("inc", {"i": "{{vars.i + 1}}"}),
            {"id": "loop", "type": "switch", "value": "{{vars.i < 70 ? 'again' : 'done'}}",
             "cases": {"again": "inc"}},
        ]),
        integration("h/caller", [call("l", "h/loop", input={"i": 0})]))
    rec = server.execute("h/caller", {}).json()
    assert rec["status"] == "succeeded"
    child_id = server.run(rec["id"])["steps"][0]["child_run_ids"][0]
    steps = server.run(child_id)["steps"]
    assert [s["task"] for s in steps] == ["inc", "loop"] * 70
    assert steps[-2]["result"]["i"] == 70
    held, rows = db_rows(server, child_id)
    assert [s["seq"] for s in held] == list(range(64)) and rows == list(range(64, 140))
