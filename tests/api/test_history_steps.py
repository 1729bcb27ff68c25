"""When a run's record and steps are written (docs/architecture.md, "Runs not written yet"): a
run nobody has been told of yet (a sync root run here, a sync child) holds its steps in its own
record, and the records of its finished sync children wait with it, until it ends or first
must be written (a task that can take time, a retry's wait, a bound); a run already in history
writes each step as it ends. History shows the same runs and steps either way (SPEC §8), and
never a run without its parent."""
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

    # Neither run could take time: each wrote one row, its steps in it.
    held, rows = db_rows(server, rec["id"])
    assert [s["task_id"] for s in held] == ["c", "s"] and rows == []
    assert held[0]["result"]["y"] == 5
    held, rows = db_rows(server, child_id)
    assert [s["task_id"] for s in held] == ["inc", "more"] and rows == []
    assert all(s["attempt"] == 1 for s in held)


def test_a_child_that_goes_on_writes_what_it_held(server):
    # h/mid holds 'a'; h/leaf, waiting to retry, puts its callers in history, 'a' with h/mid.
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


def children(server, run_id):
    return server.runs(parent_id=run_id)


def test_every_caller_not_yet_written_goes_first_when_a_run_below_waits(server):
    # h/upper and h/lower are sync children not written yet when h/bottom, two calls down,
    # waits to retry: h/upper is written first, then h/lower, each with the step it held.
    server.publish(integration("h/bottom", [slow_fail("wait", 1500)]),
                   integration("h/lower", [set_task("l1", {"l": 1}), call("b", "h/bottom")]),
                   integration("h/upper", [set_task("u1", {"u": 1}), call("l", "h/lower"),
                                           set_task("u2", {"u": 2})]),
                   integration("h/async-root", [call("u", "h/upper")]))
    top = server.execute("h/async-root", {}, query="mode=async").json()["run_id"]
    deadline = time.time() + 20
    lower = []
    while time.time() < deadline and not lower:
        upper = children(server, top)
        lower = children(server, upper[0]["id"]) if upper else []
        time.sleep(0.02)
    assert lower, "h/lower never showed up while h/bottom was waiting"
    upper = server.run(upper[0]["id"])
    lower = server.run(lower[0]["id"])
    assert upper["status"] == lower["status"] == "running"
    assert [s["task"] for s in upper["steps"]] == ["u1"]
    assert [s["task"] for s in lower["steps"]] == ["l1"]

    assert server.wait_run(top)["status"] == "succeeded"
    assert [s["task"] for s in server.run(upper["id"])["steps"]] == ["u1", "l", "u2"]
    held, rows = db_rows(server, upper["id"])
    assert [s["task_id"] for s in held] == ["u1"] and rows == [1, 2]


def test_a_run_not_written_keeps_a_bounded_number_of_finished_children(server):
    # h/fan, not written yet, calls h/one 100 times one by one. The first 64 children wait in
    # memory for h/fan's record; the 64th has h/fan written, and so its one step is a row.
    server.publish(integration("h/one", [set_task("s", {"y": "{{vars.x}}"})],
                               inputs={"x": {"type": "integer", "required": True}}),
                   integration("h/fan", [call("each", "h/one", for_each="{{vars.items}}",
                                              parallelism=1, input={"x": "{{item}}"})]),
                   integration("h/fan-root", [call("f", "h/fan",
                                                   input={"items": list(range(100))})]))
    top = server.execute("h/fan-root", {}, query="mode=async").json()["run_id"]
    assert server.wait_run(top)["status"] == "succeeded"
    fan = children(server, top)
    assert len(fan) == 1
    kids = children(server, fan[0]["id"])
    assert len(kids) == 100 and all(k["root_id"] == top for k in kids)
    assert sorted(server.run(k["id"])["output"]["y"] for k in kids) == list(range(100))
    held, rows = db_rows(server, fan[0]["id"])
    assert held == [] and rows == [0]


def test_a_queued_child_has_its_parent_in_history(server):
    # h/later runs async by its own definition: h/starter, a sync child not written yet, is
    # written before the child is queued, so its call step and the next are rows.
    server.publish(integration("h/later", [set_task("s", {"done": True})], run_async=True),
                   integration("h/starter", [call("go", "h/later"), set_task("s", {"x": 1})]),
                   integration("h/starter-root", [call("st", "h/starter")]))
    top = server.execute("h/starter-root", {}, query="mode=async").json()["run_id"]
    assert server.wait_run(top)["status"] == "succeeded"
    starter = children(server, top)
    assert len(starter) == 1
    later = children(server, starter[0]["id"])
    assert [k["integration"] for k in later] == ["h/later"]
    assert server.wait_run(later[0]["id"])["status"] == "succeeded"
    held, rows = db_rows(server, starter[0]["id"])
    assert held == [] and rows == [0, 1]
