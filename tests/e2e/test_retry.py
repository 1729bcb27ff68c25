"""Retry policies (SPEC §2 retry)."""
from conftest import by_integration, call, failing, integration, set_task


def caller(name, target, task_retry=None, **fields):
    t = call("c", target, strategy="sync", continue_on_error=True)
    if task_retry is not None:
        t["retry"] = task_retry
    return integration(name, [t], outputs={"o": "{{tasks.c}}"}, **fields)


def test_listed_code_is_retried(braid, run_json):
    braid.publish(failing("r/child", code="my_code"))
    braid.publish(caller("r/parent", "r/child",
                         {"max_attempts": 3, "initial_ms": 10, "on": ["my_code"]}))
    o = run_json("r/parent", {})["output"]["o"]
    assert o["success"] is False
    assert o["attempts"] == 3
    assert o["error"]["code"] == "my_code"
    children = by_integration(braid.runs(), "r/child")
    assert len(children) == 3
    assert o["run_id"] in {c["id"] for c in children}


def test_unlisted_code_is_not_retried(braid, run_json):
    braid.publish(failing("r/child", code="other_code"))
    braid.publish(caller("r/parent", "r/child",
                         {"max_attempts": 3, "initial_ms": 10, "on": ["my_code"]}))
    o = run_json("r/parent", {})["output"]["o"]
    assert o["attempts"] == 1
    assert len(by_integration(braid.runs(), "r/child")) == 1


def test_default_policy_does_not_retry(braid, run_json):
    braid.publish(failing("r/child", code="timeout"))
    braid.publish(caller("r/parent", "r/child"))
    o = run_json("r/parent", {})["output"]["o"]
    assert o["attempts"] == 1


def test_default_on_list_retries_retryable_codes(braid, run_json):
    braid.publish(failing("r/t", code="timeout"))
    braid.publish(failing("r/n", code="nope"))
    braid.publish(caller("r/pt", "r/t", {"max_attempts": 2, "initial_ms": 10}))
    braid.publish(caller("r/pn", "r/n", {"max_attempts": 2, "initial_ms": 10}))
    assert run_json("r/pt", {})["output"]["o"]["attempts"] == 2
    assert run_json("r/pn", {})["output"]["o"]["attempts"] == 1


def test_integration_retry_is_the_tasks_default(braid, run_json):
    braid.publish(failing("r/child", code="my_code"))
    braid.publish(caller("r/parent", "r/child", None,
                         retry={"max_attempts": 2, "initial_ms": 10, "on": ["my_code"]}))
    assert run_json("r/parent", {})["output"]["o"]["attempts"] == 2


def test_backoff_waits_and_max_ms_caps(braid, run_json):
    braid.publish(failing("r/child", code="my_code"))
    braid.publish(caller("r/slow", "r/child", {"max_attempts": 3, "initial_ms": 200,
                                               "multiplier": 2.0, "jitter": False,
                                               "on": ["my_code"]}))
    o = run_json("r/slow", {})["output"]["o"]
    assert o["attempts"] == 3
    assert 600 <= o["duration_ms"] < 3000  # 200 + 400

    braid.publish(caller("r/capped", "r/child", {"max_attempts": 3, "initial_ms": 200,
                                                 "multiplier": 10, "max_ms": 250,
                                                 "jitter": False, "on": ["my_code"]}))
    o = run_json("r/capped", {})["output"]["o"]
    assert o["attempts"] == 3
    assert 450 <= o["duration_ms"] < 1500  # 200 + 250, not 200 + 2000


def test_retry_on_any_task(braid, run_json):
    braid.publish(integration("r/set", [
        set_task("calc", {"r": "{{1 / vars.z}}"}, continue_on_error=True,
                 retry={"max_attempts": 3, "initial_ms": 5, "on": ["expression_error"]}),
    ], outputs={"o": "{{tasks.calc}}"}))
    o = run_json("r/set", {"z": 0})["output"]["o"]
    assert o["attempts"] == 3
    assert o["error"]["code"] == "expression_error"


def test_retry_then_cases(braid, run_json):
    braid.publish(failing("r/child", code="my_code"))
    braid.publish(integration("r/route", [
        call("c", "r/child", strategy="sync", cases={"my_code": "handle"},
             retry={"max_attempts": 2, "initial_ms": 5, "on": ["my_code"]}),
        set_task("handle", {"attempts": "{{tasks.c.attempts}}"}),
    ]))
    rec = run_json("r/route", {})
    assert rec["status"] == "succeeded"
    assert rec["output"] == {"attempts": 2}
