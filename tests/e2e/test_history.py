"""Run history: records, steps, filters, trees (SPEC §8, §10 runs/show)."""
import json
import time

from conftest import (FINISHED, UUID7_RE, assert_time, by_integration, call, failing,
                      integration, parse_time, set_task)

RECORD_FIELDS = {"id", "integration", "version", "status", "trigger", "parent_id", "root_id",
                 "depth", "task", "input", "output", "error", "created_at", "scheduled_at",
                 "started_at", "finished_at", "attempt", "duration_ms"}


def estate(braid):
    """A root calling a sync child, a failing child (caught), and two async grandchildren."""
    braid.publish(integration("h/leaf", [set_task("s", {"leaf": "{{vars.n}}"})]))
    braid.publish(failing("h/bad", code="bad_thing"))
    braid.publish(integration("h/mid", [
        call("fan", "h/leaf", strategy="async", for_each=[1, 2], input={"n": "{{item}}"}),
    ]))
    braid.publish(integration("h/root", [
        call("mid", "h/mid", strategy="sync"),
        call("bad", "h/bad", strategy="sync", continue_on_error=True),
        set_task("done", {"ok": True}),
    ]))


def test_run_record_fields(braid, run_json):
    estate(braid)
    rec = run_json("h/root", {"x": 1}, "--drain")
    assert RECORD_FIELDS <= set(rec)
    assert UUID7_RE.match(rec["id"])
    assert rec["integration"] == "h/root" and rec["version"] == 1
    assert rec["status"] == "succeeded"
    assert rec["trigger"] == "cli"
    assert rec["parent_id"] is None and rec["root_id"] == rec["id"] and rec["depth"] == 0
    assert rec["input"]["payload"] == {"x": 1}
    assert rec["output"] == {"x": 1, "ok": True}
    assert rec["error"] is None
    assert rec["attempt"] == 1
    for k in ("created_at", "scheduled_at", "started_at", "finished_at"):
        assert_time(rec[k])
    assert parse_time(rec["created_at"]) <= parse_time(rec["started_at"]) \
        <= parse_time(rec["finished_at"])
    assert abs(parse_time(rec["created_at"]) - time.time()) < 60
    assert isinstance(rec["duration_ms"], int) and rec["duration_ms"] >= 0

    child = by_integration(braid.runs(), "h/mid")[0]
    assert child["trigger"] == "call"


def test_runs_filters(braid, run_json):
    estate(braid)
    first = run_json("h/root", {}, "--drain")
    second = run_json("h/root", {}, "--drain")
    all_runs = braid.runs()
    assert len(all_runs) == 2 * 5
    # Newest first, and UUIDv7 ids sort by time.
    created = [parse_time(r["created_at"]) for r in all_runs]
    assert created == sorted(created, reverse=True)
    ids = [r["id"] for r in all_runs]
    assert all(UUID7_RE.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    for a, b in zip(all_runs, all_runs[1:]):
        if a["created_at"] != b["created_at"]:
            assert a["id"] > b["id"]
    assert first["id"] < second["id"]

    roots = braid.runs("--integration", "h/root")
    assert [r["id"] for r in roots] == [second["id"], first["id"]]
    failed = braid.runs("--status", "failed")
    assert len(failed) == 2 and all(r["integration"] == "h/bad" for r in failed)
    tree = braid.runs("--root", first["id"])
    assert len(tree) == 5 and all(r["root_id"] == first["id"] for r in tree)
    mid = by_integration(tree, "h/mid")[0]
    kids = braid.runs("--parent", mid["id"])
    assert sorted(k["output"]["leaf"] for k in kids) == [1, 2]
    assert len(braid.runs("--limit", "3")) == 3
    assert braid.json("runs", "--limit", "1") == [all_runs[0]]
    assert braid.runs("--integration", "no/such") == []


def test_runs_table(braid, run_json):
    estate(braid)
    rec = run_json("h/root", {}, "--drain")
    r = braid("runs")
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 + 5  # a heading and one line per run
    assert any(rec["id"] in l and "h/root" in l and "succeeded" in l for l in lines)
    assert any("h/bad" in l and "failed" in l for l in lines)
    r = braid("runs", "--integration", "h/leaf")
    assert len(r.stdout.strip().splitlines()) == 1 + 2


def test_show_text_and_steps(braid, run_json):
    estate(braid)
    rec = run_json("h/root", {}, "--drain")
    r = braid("show", rec["id"])
    assert r.returncode == 0
    assert rec["id"] in r.stdout
    assert "h/root" in r.stdout and "succeeded" in r.stdout
    for task in ("mid", "bad", "done"):
        assert task in r.stdout

    doc = braid.show(rec["id"])
    assert RECORD_FIELDS <= set(doc)
    steps = {s["task"]: s for s in doc["steps"]}
    assert list(steps) == ["mid", "bad", "done"]
    for s in doc["steps"]:
        assert {"task", "type", "status", "attempt", "started_at", "duration_ms", "result",
                "error"} <= set(s)
        assert_time(s["started_at"])
    assert steps["mid"]["type"] == "call_integration"
    assert steps["mid"]["status"] == "succeeded"
    mid = by_integration(braid.runs(), "h/mid")[0]
    assert steps["mid"]["child_run_ids"] == [mid["id"]]
    assert steps["bad"]["status"] == "failed"
    assert steps["bad"]["error"]["code"] == "bad_thing"
    assert steps["done"]["type"] == "set" and steps["done"]["attempt"] == 1

    mid_doc = braid.show(mid["id"])
    fan = mid_doc["steps"][0]
    assert len(fan["child_run_ids"]) == 2


def test_show_unknown_run(braid):
    braid.publish(integration("h/x", [set_task("s", {"a": 1})]))
    r = braid("show", "0190a000-0000-7000-8000-000000000000")
    assert r.returncode == 1
    assert "not_found" in r.stderr


def test_show_tree_text(braid, run_json):
    estate(braid)
    rec = run_json("h/root", {}, "--drain")
    r = braid("show", rec["id"], "--tree")
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    runs = braid.runs("--root", rec["id"])
    assert len(lines) == len(runs) == 5  # one line per run
    for run in runs:
        assert sum(run["id"] in l for l in lines) == 1, run["id"]
    assert rec["id"] in lines[0]
    assert any("├── " in l for l in lines)
    assert any("└── " in l for l in lines)
    leaf_lines = [l for l in lines if "h/leaf" in l]
    # Grandchildren are drawn deeper than children.
    mid_line = next(l for l in lines if "h/mid" in l)
    assert all(l.index("h/leaf") > mid_line.index("h/mid") for l in leaf_lines)
    assert any("failed" in l and "h/bad" in l for l in lines)


def test_show_tree_json_nested(braid, run_json):
    estate(braid)
    rec = run_json("h/root", {}, "--drain")
    tree = braid.tree(rec["id"])
    assert tree["id"] == rec["id"]
    assert RECORD_FIELDS <= set(tree)
    kids = {c["integration"]: c for c in tree["children"]}
    assert set(kids) == {"h/mid", "h/bad"}
    assert kids["h/bad"]["children"] == []
    grand = kids["h/mid"]["children"]
    assert len(grand) == 2
    assert all(g["integration"] == "h/leaf" and g["children"] == [] for g in grand)
    assert all(g["parent_id"] == kids["h/mid"]["id"] and g["depth"] == 2 for g in grand)

    # A subtree: show a child with --tree.
    sub = braid.tree(kids["h/mid"]["id"])
    assert sub["id"] == kids["h/mid"]["id"] and len(sub["children"]) == 2


def test_failed_run_record(braid, run_json):
    braid.publish(failing("h/bad", code="bad_thing", message="went wrong"))
    rec = run_json("h/bad", {})
    assert rec["status"] == "failed"
    assert rec["output"] is None
    assert rec["error"]["code"] == "bad_thing"
    assert rec["error"]["message"] == "went wrong"
    assert rec["status"] in FINISHED
    stored = braid.show(rec["id"])
    assert stored["error"] == rec["error"]
    assert stored["steps"][0]["status"] == "failed"


def test_step_result_cut_at_64_kib(braid, run_json):
    braid.publish(integration("h/bigchild", [set_task("s", {"x": "{{vars.s}}"})],
                              outputs=["x"]))
    braid.publish(integration("h/bigparent", [
        call("c", "h/bigchild", strategy="sync", input={"s": "{{vars.s}}"}),
    ], outputs={"n": "{{tasks.c.result.x | length}}"}))
    rec = run_json("h/bigparent", {"s": "y" * 200000})
    # The run itself sees the whole value ...
    assert rec["output"] == {"n": 200000}
    # ... while the step kept in history is cut at 64 KiB, and says so.
    step = braid.show(rec["id"])["steps"][0]
    size = len(json.dumps(step["result"]).encode())
    assert size <= 64 * 1024 + 1024, f"the step's result is {size} bytes"
    said = "truncated" in json.dumps(step).lower()
    assert said, "the step does not say its result was cut"
    # The child's own output is its run's output, kept whole.
    child = by_integration(braid.runs(), "h/bigchild")[0]
    assert len(child["output"]["x"]) == 200000
