"""Crash safety (SPEC §3 "an async child is committed before the call returns", §8 "nothing
accepted is lost", interrupted runs): kill a draining process with SIGKILL, start another,
and check every accepted run ends exactly once."""
import collections
import signal
import time

from conftest import by_integration, call, integration, set_task

N = 40


def kill_after(braid, seconds, *args):
    p = braid.popen(*args)
    time.sleep(seconds)
    assert p.poll() is None, f"finished before the kill: {p.communicate()}"
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    return p


def assert_nothing_pending(braid):
    for status in ("scheduled", "queued", "running"):
        left = braid.runs("--status", status)
        assert left == [], f"{len(left)} runs left {status}: {left[:3]}"


def test_sigkill_during_drain_loses_and_duplicates_nothing(braid):
    braid.publish(integration("crash/child", [set_task("s", {"done": "{{vars.i}}"})]))
    braid.publish(integration("crash/parent", [
        call("fan", "crash/child", strategy="async", for_each="{{vars.items}}",
             parallelism=8, delay_ms="{{index * 10 + 300}}", input={"i": "{{index}}"}),
    ]))
    braid.publish(integration("crash/parent2", [set_task("s", {"ok": True})]))
    payload = braid.write({"items": list(range(N))})

    kill_after(braid, 0.6, "run", "crash/parent", "--input", "@" + payload, "--drain")

    # A second process recovers what the first left and drains everything.
    rec = braid.run_json("crash/parent2", {}, "--drain", timeout=60)
    assert rec["status"] == "succeeded"
    assert_nothing_pending(braid)

    runs = braid.runs()
    parents = by_integration(runs, "crash/parent")
    assert len(parents) == 1
    assert parents[0]["status"] == "succeeded"
    children = by_integration(runs, "crash/child")
    per_index = collections.Counter(c["input"]["payload"]["i"] for c in children)
    assert sorted(per_index) == list(range(N)), "a child is missing"
    dupes = {i: n for i, n in per_index.items() if n != 1}
    assert not dupes, f"children recorded more than once: {dupes}"
    for c in children:
        assert c["status"] == "succeeded", c
        assert c["attempt"] >= 1
        assert c["output"]["done"] == c["input"]["payload"]["i"]
        assert c["parent_id"] == parents[0]["id"]


def sync_chain(braid, on_interrupt):
    braid.publish(integration("crash/grand", [set_task("s", {"g": True})]))
    braid.publish(integration("crash/mid", [
        call("later", "crash/grand", strategy="async", delay_ms=1500),
        {"id": "wait", "type": "await", "runs": ["{{tasks.later.result.run_id}}"],
         "timeout_ms": 30000},
    ]))
    braid.publish(integration("crash/top", [call("mid", "crash/mid", strategy="sync")],
                              on_interrupt=on_interrupt))
    braid.publish(integration("crash/noop", [set_task("s", {"ok": True})]))


def test_interrupted_async_run_is_retried_and_its_sync_child_fails(braid):
    sync_chain(braid, "retry")
    kill_after(braid, 0.8, "run", "crash/top", "--mode", "async", "--drain")
    before = braid.runs()
    assert [r["status"] for r in by_integration(before, "crash/top")] == ["running"]

    braid.run_json("crash/noop", {}, "--drain", timeout=60)
    assert_nothing_pending(braid)
    runs = braid.runs()
    tops = by_integration(runs, "crash/top")
    assert len(tops) == 1
    assert tops[0]["status"] == "succeeded"
    assert tops[0]["attempt"] == 2  # started again from the beginning
    mids = by_integration(runs, "crash/mid")
    assert sorted(m["status"] for m in mids) == ["failed", "succeeded"]
    dead = next(m for m in mids if m["status"] == "failed")
    assert dead["error"]["code"] == "interrupted"
    assert dead["error"]["retryable"] is True
    # The async grandchild of the dead attempt was accepted, so it still ran, once.
    grands = by_integration(runs, "crash/grand")
    assert len(grands) == 2 and all(g["status"] == "succeeded" for g in grands)


def test_interrupted_run_fails_when_on_interrupt_is_fail(braid):
    sync_chain(braid, "fail")
    kill_after(braid, 0.8, "run", "crash/top", "--mode", "async", "--drain")
    braid.run_json("crash/noop", {}, "--drain", timeout=60)
    assert_nothing_pending(braid)
    tops = by_integration(braid.runs(), "crash/top")
    assert len(tops) == 1
    assert tops[0]["status"] == "failed"
    assert tops[0]["error"]["code"] == "interrupted"
    assert tops[0]["attempt"] == 1
