"""Engine limits and deadlines (SPEC §2 max_steps and timeouts, §3 rules)."""
import subprocess
import time

from conftest import BIN, by_integration, call, integration, parse_time, set_task


def self_caller(name, strategy):
    return integration(name, [call("again", name, strategy=strategy,
                                   input={"n": "{{vars.n + 1}}"})],
                       inputs={"n": {"type": "integer", "default": 0}})


def check_depth_chain(runs, max_depth):
    """The runs of one recursion: depths 0..MAX_DEPTH, one each; the deepest failed."""
    assert sorted(r["depth"] for r in runs) == list(range(max_depth + 1))
    deepest = max(runs, key=lambda r: r["depth"])
    assert deepest["status"] == "failed"
    assert deepest["error"]["code"] == "call_depth_exceeded"
    assert deepest["error"]["run_id"] == deepest["id"]
    return deepest


def test_recursion_sync_self(braid, run_json):
    braid.publish(self_caller("rec/self", "sync"))
    t0 = time.time()
    rec = run_json("rec/self", {}, "--max-call-depth", "8")
    assert time.time() - t0 < 20
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "call_depth_exceeded"
    runs = braid.runs("--root", rec["id"])
    deepest = check_depth_chain(runs, 8)
    # The error keeps the run where it arose as it propagates.
    assert rec["error"]["run_id"] == deepest["id"]
    assert all(r["status"] == "failed" for r in runs)


def test_recursion_sync_default_limit_is_32(braid, run_json):
    braid.publish(self_caller("rec/deep", "sync"))
    rec = run_json("rec/deep", {})
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "call_depth_exceeded"
    check_depth_chain(braid.runs("--root", rec["id"]), 32)


def test_recursion_sync_mutual(braid, run_json):
    braid.publish(integration("rec/a", [set_task("s", {"x": 1})]))  # so rec/b can name it
    braid.publish(integration("rec/b", [call("to_a", "rec/a", strategy="sync")]))
    braid.publish(integration("rec/a", [call("to_b", "rec/b", strategy="sync")]))
    rec = run_json("rec/a", {}, "--max-call-depth", "8")
    assert rec["error"]["code"] == "call_depth_exceeded"
    runs = braid.runs("--root", rec["id"])
    check_depth_chain(runs, 8)
    for r in runs:
        assert r["integration"] == ("rec/a" if r["depth"] % 2 == 0 else "rec/b")


def test_recursion_async_self(braid, run_json):
    braid.publish(self_caller("rec/async", "async"))
    t0 = time.time()
    rec = run_json("rec/async", {}, "--max-call-depth", "8", "--drain")
    assert time.time() - t0 < 30
    assert rec["status"] == "succeeded"  # its own async call was accepted
    runs = braid.runs("--root", rec["id"])
    deepest = check_depth_chain(runs, 8)
    assert all(r["status"] == "succeeded" for r in runs if r is not deepest)
    assert braid.runs("--status", "queued") == []


def test_recursion_async_mutual(braid, run_json):
    braid.publish(integration("rec/x", [set_task("s", {"x": 1})]))
    braid.publish(integration("rec/y", [call("to_x", "rec/x", strategy="async")]))
    braid.publish(integration("rec/x", [call("to_y", "rec/y", strategy="async")]))
    rec = run_json("rec/x", {}, "--max-call-depth", "6", "--drain")
    runs = braid.runs("--root", rec["id"])
    check_depth_chain(runs, 6)


def test_descendant_limit(braid, run_json):
    braid.publish(integration("lim/leaf", [set_task("s", {"x": 1})]))
    braid.publish(integration("lim/fan", [
        call("each", "lim/leaf", strategy="sync", for_each="{{vars.items}}", parallelism=1,
             input={"i": "{{item}}"}),
    ]))
    rec = run_json("lim/fan", {"items": list(range(10))}, "--max-descendants", "5")
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "descendant_limit"
    assert rec["error"]["detail"]["index"] == 5
    assert len(by_integration(braid.runs(), "lim/leaf")) == 5
    # Within the limit it works.
    rec = run_json("lim/fan", {"items": list(range(5))}, "--max-descendants", "5")
    assert rec["status"] == "succeeded"


def test_descendant_limit_counts_the_whole_tree(braid, run_json):
    braid.publish(integration("lim/leaf", [set_task("s", {"x": 1})]))
    braid.publish(integration("lim/mid", [
        call("each", "lim/leaf", strategy="async", for_each=[1, 2, 3], input={"i": "{{item}}"}),
    ]))
    braid.publish(integration("lim/top", [
        call("each", "lim/mid", strategy="async", for_each=[1, 2, 3], input={"i": "{{item}}"}),
    ]))
    # 3 mids + 9 leaves = 12 descendants; allow 7.
    rec = run_json("lim/top", {}, "--max-descendants", "7", "--drain")
    runs = braid.runs("--root", rec["id"])
    assert len(runs) == 1 + 7
    failed = [r for r in runs if r["status"] == "failed"]
    assert failed and all(r["error"]["code"] == "descendant_limit" for r in failed)


def test_step_limit_through_cases(braid, run_json):
    braid.publish(integration("lim/loop", [
        set_task("inc", {"i": "{{(vars.i | default:0) + 1}}"}),
        {"id": "again", "type": "switch", "value": "{{vars.i < 1000000}}",
         "cases": {"true": "inc"}},
    ]))
    rec = run_json("lim/loop", {}, "--max-steps", "50")
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "step_limit"
    assert rec["error"]["run_id"] == rec["id"]


def test_step_limit_through_next(braid, run_json):
    braid.publish(integration("lim/next", [
        set_task("a", {"n": "{{(vars.n | default:0) + 1}}"}, next="b"),
        set_task("b", {"m": 1}, next="a"),
    ]))
    rec = run_json("lim/next", {}, "--max-steps", "20")
    assert rec["error"]["code"] == "step_limit"
    # A loop that ends within the limit is fine.
    braid.publish(integration("lim/short", [
        set_task("inc", {"i": "{{(vars.i | default:0) + 1}}"}),
        {"id": "again", "type": "switch", "value": "{{vars.i < 10}}", "cases": {"true": "inc"}},
    ]))
    rec = run_json("lim/short", {}, "--max-steps", "20")
    assert rec["status"] == "succeeded"
    assert rec["output"]["i"] == 10


def test_step_limit_default(braid, run_json):
    braid.publish(integration("lim/forever", [set_task("a", {"x": 1}, next="a")]))
    rec = run_json("lim/forever", {})
    assert rec["error"]["code"] == "step_limit"


# ---- timeouts and deadlines ----

SLOW = integration("slow/child", [
    call("later", "slow/tick", strategy="async", delay_ms=3000),
    {"id": "wait", "type": "await", "runs": ["{{tasks.later.result.run_id}}"],
     "timeout_ms": 60000},
])
TICK = integration("slow/tick", [set_task("s", {"tick": True})])


def test_run_timeout(braid, run_json):
    braid.publish_all(TICK, integration("slow/self", SLOW["tasks"], timeout_ms=300))
    t0 = time.time()
    rec = run_json("slow/self", {})
    assert time.time() - t0 < 2.5
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "timeout"
    assert rec["error"]["retryable"] is True
    assert 250 <= rec["duration_ms"] < 2500


def test_task_attempt_timeout_on_a_call(braid, run_json):
    braid.publish_all(TICK, SLOW)
    braid.publish(integration("slow/caller", [
        call("c", "slow/child", strategy="sync", timeout_ms=300, continue_on_error=True),
        set_task("after", {"code": "{{tasks.c.error.code}}"}),
    ]))
    t0 = time.time()
    rec = run_json("slow/caller", {})
    assert time.time() - t0 < 2.5
    assert rec["status"] == "succeeded"
    assert rec["output"]["code"] == "timeout"


def test_deadline_flows_down_to_sync_child(braid, run_json):
    braid.publish_all(TICK, SLOW)
    braid.publish(integration("slow/parent", [call("c", "slow/child", strategy="sync")],
                              timeout_ms=400))
    t0 = time.time()
    rec = run_json("slow/parent", {})
    assert time.time() - t0 < 2.5
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "timeout"
    child = by_integration(braid.runs(), "slow/child")[0]
    assert child["status"] == "failed"
    assert child["error"]["code"] == "timeout"
    assert parse_time(child["finished_at"]) - parse_time(rec["created_at"]) < 2.5


def test_max_concurrency_refuses_a_second_sync_run(braid, run_json):
    braid.publish(integration("lim/single", [set_task("s", {"x": 1})]))
    braid.publish(integration("lim/single", [
        {"id": "first", "type": "switch", "value": "{{vars.n | default:0}}",
         "cases": {"0": "again"}, "default": "end"},
        call("again", "lim/single", strategy="sync", input={"n": 1}, continue_on_error=True),
        set_task("s", {"code": "{{tasks.again.error.code}}"}),
    ], max_concurrency=1))
    rec = run_json("lim/single", {})
    assert rec["status"] == "succeeded"
    assert rec["output"]["code"] == "concurrency_limit"
    # Refused before it started: only the root ran.
    assert len(braid.runs()) == 1


def test_deep_recursion_never_overflows_the_stack(braid):
    """At the highest depth allowed, and on a small stack, recursion ends with an error."""
    braid.publish(integration("deep/loop", [call("again", "deep/loop")]))
    r = braid("run", "deep/loop", "--max-call-depth", "1000")
    assert r.returncode == 1 and "call_depth_exceeded" in r.stderr, r.stderr
    r = braid("run", "deep/loop", "--max-call-depth", "1001")
    assert r.returncode == 2
    small = subprocess.run(["sh", "-c", 'ulimit -s 512 && exec "$0" "$@"', BIN, "run",
                            "deep/loop", "--max-call-depth", "1000", "--data", braid.data],
                           capture_output=True, text=True, timeout=60)
    assert small.returncode == 1, small.stderr
    assert "call_depth_exceeded" in small.stderr and "stack" in small.stderr, small.stderr
