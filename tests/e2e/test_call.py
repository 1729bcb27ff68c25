"""call_integration (SPEC §3): sync, async, delays, triggers, for_each, mappings, keys."""
import time

from conftest import (UUID7_RE, by_integration, call, echo, failing, integration, parse_time,
                      set_task)

DOUBLE = integration("c/double", [set_task("s", {"r": "{{vars.n * 2}}"})],
                     inputs={"n": {"type": "integer", "required": True}}, outputs=["r"])


def test_sync_call_result_and_outcome(braid, run_json):
    braid.publish(DOUBLE)
    braid.publish(integration("c/parent", [
        call("c", "c/double", strategy="sync", input={"n": "{{vars.n}}"}),
    ], outputs={"outcome": "{{tasks.c}}"}))
    rec = run_json("c/parent", {"n": 21})
    assert rec["status"] == "succeeded"
    o = rec["output"]["outcome"]
    assert o["success"] is True
    assert o["result"] == {"r": 42}
    assert o["error"] is None
    assert o["attempts"] == 1
    assert isinstance(o["duration_ms"], int) and o["duration_ms"] >= 0
    assert UUID7_RE.match(o["run_id"])
    child = braid.show(o["run_id"])
    assert child["integration"] == "c/double"
    assert child["status"] == "succeeded"
    assert child["output"] == {"r": 42}
    assert child["parent_id"] == rec["id"]
    assert child["task"] == "c"


def test_child_failure_fails_the_caller_with_the_childs_error(braid, run_json):
    braid.publish(failing("c/bad", code="nope", message="bad {{vars.why}}"))
    braid.publish(integration("c/caller", [call("c", "c/bad", strategy="sync",
                                                input={"why": "luck"})]))
    rec = run_json("c/caller", {})
    assert rec["status"] == "failed"
    err = rec["error"]
    assert err["code"] == "nope"
    assert err["message"] == "bad luck"
    child = by_integration(braid.runs(), "c/bad")[0]
    # The error names the task and run where it arose: the child's.
    assert err["run_id"] == child["id"]
    assert err["task"] == "f"
    assert err["retryable"] is False
    assert child["status"] == "failed"
    assert child["error"]["code"] == "nope"


def test_failure_routed_by_cases(braid, run_json):
    braid.publish(failing("c/bad", code="nope", message="no"))
    braid.publish(integration("c/route", [
        call("c", "c/bad", strategy="sync", cases={"failure": "handled"}),
        set_task("not_here", {"path": "wrong"}, next="end"),
        set_task("handled", {"path": "failure", "code": "{{tasks.c.error.code}}",
                             "ok": "{{tasks.c.success}}"}),
    ]))
    out = run_json("c/route", {})["output"]
    assert out == {"path": "failure", "code": "nope", "ok": False}


def test_error_code_case_is_more_specific_than_failure(braid, run_json):
    braid.publish(failing("c/bad", code="nope"))
    braid.publish(integration("c/route2", [
        call("c", "c/bad", strategy="sync", cases={"failure": "generic", "nope": "specific",
                                                   "success": "end"}),
        set_task("generic", {"via": "failure"}, next="end"),
        set_task("specific", {"via": "nope"}),
    ]))
    assert run_json("c/route2", {})["output"] == {"via": "nope"}


def test_success_case(braid, run_json):
    braid.publish(DOUBLE)
    braid.publish(integration("c/route3", [
        call("c", "c/double", strategy="sync", input={"n": 1},
             cases={"success": "yes", "failure": "end"}),
        set_task("no", {"via": "next"}),
        set_task("yes", {"via": "success"}),
    ]))
    assert run_json("c/route3", {})["output"] == {"via": "success"}


def test_continue_on_error(braid, run_json):
    braid.publish(failing("c/bad", code="nope"))
    braid.publish(integration("c/cont", [
        call("c", "c/bad", strategy="sync", continue_on_error=True),
        set_task("after", {"reached": True, "err": "{{tasks.c.error.code}}"}),
    ]))
    rec = run_json("c/cont", {})
    assert rec["status"] == "succeeded"
    assert rec["output"] == {"reached": True, "err": "nope"}


def test_templated_target(braid, run_json):
    braid.publish(integration("c/one", [set_task("s", {"who": "one"})]))
    braid.publish(integration("c/two", [set_task("s", {"who": "two"})]))
    braid.publish(integration("c/dyn", [
        call("c", "c/{{vars.which}}", strategy="sync", output={"who": "who"}),
    ], outputs=["who"]))
    assert run_json("c/dyn", {"which": "one"})["output"] == {"who": "one"}
    assert run_json("c/dyn", {"which": "two"})["output"] == {"who": "two"}
    rec = run_json("c/dyn", {"which": "three"})
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "not_found"
    assert rec["error"]["task"] == "c"


def test_version_pin(braid, run_json):
    braid.publish(integration("c/ver", [set_task("s", {"v": 1})]))
    braid.publish(integration("c/ver", [set_task("s", {"v": 2})]))
    braid.publish(integration("c/pin", [
        call("latest", "c/ver", strategy="sync"),
        call("pinned", "c/ver", strategy="sync", version=1),
    ], outputs={"latest": "{{tasks.latest.result.v}}", "pinned": "{{tasks.pinned.result.v}}",
                "ids": ["{{tasks.latest.run_id}}", "{{tasks.pinned.run_id}}"]}))
    out = run_json("c/pin", {})["output"]
    assert (out["latest"], out["pinned"]) == (2, 1)
    # The version used is recorded on each child run.
    assert braid.show(out["ids"][0])["version"] == 2
    assert braid.show(out["ids"][1])["version"] == 1


def test_version_not_found(braid, run_json):
    braid.publish(integration("c/ver", [set_task("s", {"v": 1})]))
    braid.publish(integration("c/pin9", [call("c", "c/ver", strategy="sync", version=9)]))
    rec = run_json("c/pin9", {})
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "version_not_found"
    assert by_integration(braid.runs(), "c/ver") == []
    r = braid("run", "c/ver", "--version", "9")
    assert r.returncode == 1 and "version_not_found" in r.stderr


LISTENER_A = integration("t/a", [set_task("s", {"got": "{{vars.x}}", "by": "a"})],
                         triggers=[{"type": "api", "id": "evt"}])
LISTENER_B = integration("t/b", [set_task("s", {"got": "{{vars.x}}", "by": "b"})],
                         triggers=[{"type": "api", "id": "evt"}, {"type": "api", "id": "other"}])


def test_trigger_sync(braid, run_json):
    braid.publish_all(LISTENER_A, LISTENER_B)
    braid.publish(integration("t/caller", [
        {"id": "fan", "type": "call_integration", "trigger": "evt", "strategy": "sync",
         "input": {"x": "{{vars.x}}"}},
    ], outputs={"outcome": "{{tasks.fan}}"}))
    rec = run_json("t/caller", {"x": 7})
    o = rec["output"]["outcome"]
    assert o["success"] is True
    items = sorted(o["result"], key=lambda i: i["integration"])
    assert [i["integration"] for i in items] == ["t/a", "t/b"]
    for i, who in zip(items, "ab"):
        assert set(i) >= {"integration", "version", "run_id", "status", "output", "error"}
        assert i["version"] == 1
        assert i["status"] == "succeeded"
        assert i["output"] == {"x": 7, "got": 7, "by": who}
        assert i["error"] is None
        child = braid.show(i["run_id"])
        assert child["parent_id"] == rec["id"] and child["task"] == "fan"


def test_trigger_sync_one_listener_fails(braid, run_json):
    braid.publish_all(LISTENER_A, failing("t/c", code="down", triggers=[
        {"type": "api", "id": "evt"}]))
    braid.publish(integration("t/caller", [
        {"id": "fan", "type": "call_integration", "trigger": "evt", "strategy": "sync",
         "continue_on_error": True},
    ], outputs={"outcome": "{{tasks.fan}}"}))
    o = run_json("t/caller", {})["output"]["outcome"]
    assert o["success"] is False
    by = {i["integration"]: i for i in o["result"]}
    assert by["t/a"]["status"] == "succeeded"
    assert by["t/c"]["status"] == "failed"
    assert by["t/c"]["error"]["code"] == "down"
    assert o["error"]["code"] == "down"


def test_trigger_nobody_listens(braid, run_json):
    braid.publish(integration("t/lonely", [
        {"id": "fan", "type": "call_integration", "trigger": "nobody-here", "strategy": "sync"},
        {"id": "fan2", "type": "call_integration", "trigger": "nobody-here", "strategy": "async"},
    ], outputs={"a": "{{tasks.fan}}", "b": "{{tasks.fan2.result}}"}))
    rec = run_json("t/lonely", {})
    assert rec["status"] == "succeeded"
    assert rec["output"]["a"]["success"] is True
    assert rec["output"]["a"]["result"] == []
    assert rec["output"]["b"] == []


def test_trigger_async(braid, run_json):
    braid.publish_all(LISTENER_A, LISTENER_B)
    braid.publish(integration("t/acaller", [
        {"id": "fan", "type": "call_integration", "trigger": "evt", "strategy": "async",
         "input": {"x": 1}},
    ], outputs={"r": "{{tasks.fan.result}}"}))
    rec = run_json("t/acaller", {}, "--drain")
    items = sorted(rec["output"]["r"], key=lambda i: i["integration"])
    assert [sorted(i) for i in items] == [["integration", "run_id"]] * 2
    assert [i["integration"] for i in items] == ["t/a", "t/b"]
    for i in items:
        child = braid.show(i["run_id"])
        assert child["status"] == "succeeded"
        assert child["output"]["got"] == 1
        assert child["parent_id"] == rec["id"] and child["root_id"] == rec["id"]


def test_async_call_result_then_drain(braid, run_json):
    braid.publish(DOUBLE)
    braid.publish(integration("a/parent", [
        call("c", "c/double", strategy="async", input={"n": 5}),
    ], outputs={"outcome": "{{tasks.c}}"}))
    rec = run_json("a/parent", {})
    assert rec["status"] == "succeeded"
    o = rec["output"]["outcome"]
    assert o["success"] is True
    res = o["result"]
    assert res["status"] == "queued"
    assert UUID7_RE.match(res["run_id"])
    parse_time(res["scheduled_at"])
    # Committed before the call returned, not run yet (no --drain).
    child = braid.show(res["run_id"])
    assert child["status"] == "queued"
    assert child["parent_id"] == rec["id"]

    rec2 = run_json("a/parent", {}, "--drain")
    child2 = braid.show(rec2["output"]["outcome"]["result"]["run_id"])
    assert child2["status"] == "succeeded"
    assert child2["output"] == {"r": 10}
    # --drain runs every due run, including the one left queued before.
    assert braid.show(res["run_id"])["status"] == "succeeded"
    assert braid.runs("--status", "queued") == []


def test_run_async_default_from_target(braid, run_json):
    braid.publish(integration("a/bg", [set_task("s", {"x": 1})], run_async=True))
    braid.publish(integration("a/fg", [set_task("s", {"x": 1})]))
    braid.publish(integration("a/default", [call("bg", "a/bg"), call("fg", "a/fg")],
                              outputs={"bg": "{{tasks.bg.result}}", "fg": "{{tasks.fg.result}}"}))
    out = run_json("a/default", {})["output"]
    assert out["fg"] == {"x": 1}
    assert out["bg"]["status"] == "queued" and "run_id" in out["bg"]


def test_delay_ms_schedules_then_drain_runs_no_earlier(braid, run_json):
    braid.publish(DOUBLE)
    braid.publish(integration("a/later", [
        call("c", "c/double", strategy="async", delay_ms=1200, input={"n": 1}),
    ], outputs={"r": "{{tasks.c.result}}"}))
    t0 = time.time()
    rec = run_json("a/later", {}, "--drain")
    elapsed = time.time() - t0
    r = rec["output"]["r"]
    assert r["status"] == "scheduled"
    sched = parse_time(r["scheduled_at"])
    created = parse_time(rec["created_at"])
    assert 1.15 <= sched - created <= 3.0
    child = braid.show(r["run_id"])
    assert child["status"] == "succeeded"
    assert parse_time(child["started_at"]) >= sched - 0.001
    assert parse_time(child["scheduled_at"]) == sched
    assert elapsed >= 1.1


def test_delay_ms_template(braid, run_json):
    braid.publish(DOUBLE)
    braid.publish(integration("a/later2", [
        call("c", "c/double", strategy="async", delay_ms="{{vars.d * 2}}", input={"n": 1}),
    ], outputs={"r": "{{tasks.c.result}}"}))
    rec = run_json("a/later2", {"d": 5000})
    r = rec["output"]["r"]
    assert r["status"] == "scheduled"
    assert 9.9 <= parse_time(r["scheduled_at"]) - parse_time(rec["created_at"]) <= 12
    assert braid.show(r["run_id"])["status"] == "scheduled"


ITEM = integration("f/item", [
    {"id": "chk", "type": "switch", "value": "{{vars.v}}", "cases": {"bad": "die"}},
    set_task("s", {"seen": "{{vars.v}}-{{vars.i}}"}, next="end"),
    {"id": "die", "type": "fail", "code": "bad_item", "message": "item {{vars.i}} is bad"},
], outputs=["seen"])


def test_for_each_sync_in_element_order(braid, run_json):
    braid.publish(ITEM)
    items = [f"e{k}" for k in range(12)]
    braid.publish(integration("f/parent", [
        call("each", "f/item", strategy="sync", for_each="{{vars.items}}", parallelism=4,
             input={"v": "{{item}}", "i": "{{index}}"}),
    ], outputs={"o": "{{tasks.each}}"}))
    rec = run_json("f/parent", {"items": items})
    o = rec["output"]["o"]
    assert o["success"] is True
    assert o["result"] == [{"seen": f"e{k}-{k}"} for k in range(12)]
    children = by_integration(braid.runs("--parent", rec["id"]), "f/item")
    assert len(children) == 12
    assert all(c["task"] == "each" and c["depth"] == 1 for c in children)


def test_for_each_literal_array_and_empty(braid, run_json):
    braid.publish(ITEM)
    braid.publish(integration("f/lit", [
        call("each", "f/item", strategy="sync", for_each=["x", "{{vars.y}}", 3],
             input={"v": "{{item}}", "i": "{{index}}"}),
        call("none", "f/item", strategy="sync", for_each="{{vars.empty}}",
             input={"v": "{{item}}", "i": "{{index}}"}),
    ], outputs={"each": "{{tasks.each.result}}", "none": "{{tasks.none}}"}))
    out = run_json("f/lit", {"y": "why", "empty": []})["output"]
    assert out["each"] == [{"seen": "x-0"}, {"seen": "why-1"}, {"seen": "3-2"}]
    assert out["none"]["success"] is True and out["none"]["result"] == []


def test_for_each_failing_element_has_index(braid, run_json):
    braid.publish(ITEM)
    braid.publish(integration("f/fail", [
        call("each", "f/item", strategy="sync", for_each="{{vars.items}}", parallelism=2,
             input={"v": "{{item}}", "i": "{{index}}"}, continue_on_error=True),
    ], outputs={"o": "{{tasks.each}}"}))
    o = run_json("f/fail", {"items": ["a", "b", "bad", "c"]})["output"]["o"]
    assert o["success"] is False
    assert o["error"]["code"] == "bad_item"
    assert o["error"]["message"] == "item 2 is bad"
    assert o["error"]["detail"]["index"] == 2
    assert o["result"][0] == {"seen": "a-0"}


def test_for_each_not_an_array(braid, run_json):
    braid.publish(ITEM)
    braid.publish(integration("f/notarr", [
        call("each", "f/item", strategy="sync", for_each="{{vars.items}}",
             input={"v": "{{item}}", "i": "{{index}}"}),
    ]))
    rec = run_json("f/notarr", {"items": "nope"})
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "expression_error"
    assert rec["error"]["task"] == "each"


def test_for_each_async(braid, run_json):
    braid.publish(ITEM)
    braid.publish(integration("f/async", [
        call("each", "f/item", strategy="async", for_each="{{vars.items}}",
             input={"v": "{{item}}", "i": "{{index}}"}),
    ], outputs={"r": "{{tasks.each.result}}"}))
    rec = run_json("f/async", {"items": ["p", "q", "r"]}, "--drain")
    r = rec["output"]["r"]
    assert len(r) == 3
    assert all(x["status"] == "queued" for x in r)
    for k, x in enumerate(r):
        child = braid.show(x["run_id"])
        assert child["status"] == "succeeded"
        assert child["output"] == {"seen": f"{'pqr'[k]}-{k}"}


def test_output_mapping_into_vars(braid, run_json):
    braid.publish(integration("m/child", [set_task("s", {
        "total": 12.5, "items": [{"id": "a"}, {"id": "b"}], "meta": {"x.y": 1}})]))
    braid.publish(integration("m/parent", [
        call("c", "m/child", strategy="sync", output={
            "sum": "total", "second": "items[1].id", "whole": "", "customer.total": "total",
            "odd": 'meta["x.y"]', "missing": "nope.nothing"}),
    ], outputs=["sum", "second", "whole", "customer", "odd", "missing"]))
    out = run_json("m/parent", {})["output"]
    assert out["sum"] == 12.5
    assert out["second"] == "b"
    assert out["whole"]["items"] == [{"id": "a"}, {"id": "b"}]
    assert out["customer"] == {"total": 12.5}
    assert out["odd"] == 1
    assert out.get("missing") is None


def test_payload_whole(braid, run_json):
    braid.publish(integration("p/child", [set_task("s", {"x": 1})],
                              outputs={"p": "{{input.payload}}", "vars": "{{vars}}"}))
    braid.publish(integration("p/parent", [
        call("arr", "p/child", strategy="sync", payload="{{vars.list}}"),
        call("obj", "p/child", strategy="sync", payload={"k": "{{vars.list[0]}}"}),
    ], outputs={"arr": "{{tasks.arr.result}}", "obj": "{{tasks.obj.result}}"}))
    out = run_json("p/parent", {"list": [3, 4]})["output"]
    assert out["arr"]["p"] == [3, 4]
    assert out["obj"]["p"] == {"k": 3}
    assert out["obj"]["vars"] == {"k": 3, "x": 1}


def test_extended_payload(braid, run_json):
    braid.publish(integration("p/ctx", [set_task("s", {"x": 1})], outputs={
        "payload": "{{input.payload}}", "params": "{{input.params}}", "path": "{{input.path}}",
        "headers": "{{input.headers}}", "method": "{{input.method}}", "vars": "{{vars}}"}))
    braid.publish(integration("p/ext", [
        call("c", "p/ctx", strategy="sync", extended_payload={
            "payload": {"order": "{{vars.id}}"},
            "params": {"page": "2"},
            "path": "/orders/{{vars.id}}",
            "headers": {"x-request-id": "req-{{vars.id}}"},
            "method": "PUT",
        }),
    ], outputs={"r": "{{tasks.c.result}}"}))
    r = run_json("p/ext", {"id": "o7"})["output"]["r"]
    assert r["payload"] == {"order": "o7"}
    assert r["params"] == {"page": "2"}
    assert r["path"] == "/orders/o7"
    assert r["headers"] == {"x-request-id": "req-o7"}
    assert r["method"] == "PUT"
    assert r["vars"] == {"order": "o7", "x": 1}


def test_idempotency_key_sync(braid, run_json):
    braid.publish(integration("k/child", [set_task("s", {"r": "{{vars.n}}"})]))
    braid.publish(integration("k/parent", [
        call("one", "k/child", strategy="sync", input={"n": 1},
             idempotency_key="order-{{vars.id}}"),
        call("two", "k/child", strategy="sync", input={"n": 2},
             idempotency_key="order-{{vars.id}}"),
        call("other", "k/child", strategy="sync", input={"n": 3},
             idempotency_key="order-{{vars.id}}-x"),
    ], outputs={"one": "{{tasks.one}}", "two": "{{tasks.two}}", "other": "{{tasks.other}}"}))
    out = run_json("k/parent", {"id": 9})["output"]
    assert out["one"]["run_id"] == out["two"]["run_id"]
    assert out["two"]["result"] == {"n": 1, "r": 1}  # the first run's result
    assert out["other"]["run_id"] != out["one"]["run_id"]
    assert len(by_integration(braid.runs(), "k/child")) == 2


def test_idempotency_key_across_runs_and_async(braid, run_json):
    braid.publish(integration("k/child", [set_task("s", {"r": "{{vars.n}}"})]))
    braid.publish(integration("k/async", [
        call("one", "k/child", strategy="async", input={"n": "{{vars.n}}"},
             idempotency_key="fixed-key"),
    ], outputs={"id": "{{tasks.one.result.run_id}}"}))
    first = run_json("k/async", {"n": 1}, "--drain")["output"]["id"]
    second = run_json("k/async", {"n": 2}, "--drain")["output"]["id"]
    assert first == second
    children = by_integration(braid.runs(), "k/child")
    assert len(children) == 1
    assert children[0]["output"]["r"] == 1


def test_callers_allow_list(braid, run_json):
    braid.publish(integration("sec/target", [set_task("s", {"ok": True})],
                              callers=["allowed/*", "exact/one"]))
    braid.publish(integration("allowed/x", [call("c", "sec/target", strategy="sync")]))
    braid.publish(integration("exact/one", [call("c", "sec/target", strategy="sync")]))
    braid.publish(integration("other/y", [call("c", "sec/target", strategy="sync")]))
    assert run_json("allowed/x", {})["status"] == "succeeded"
    assert run_json("exact/one", {})["status"] == "succeeded"
    rec = run_json("other/y", {})
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "forbidden"
    # Refused before a run started: only the two allowed calls made children.
    assert len(by_integration(braid.runs(), "sec/target")) == 2
    # The command line is not an integration: it may run it.
    assert run_json("sec/target", {})["status"] == "succeeded"


def test_child_records_parent_root_depth_task(braid, run_json):
    braid.publish(integration("tree/leaf", [set_task("s", {"leaf": "{{run.depth}}"})]))
    braid.publish(integration("tree/mid", [
        call("to_leaf", "tree/leaf", strategy="sync"),
        call("to_leaf_async", "tree/leaf", strategy="async"),
    ]))
    braid.publish(integration("tree/root", [call("to_mid", "tree/mid", strategy="sync")]))
    rec = run_json("tree/root", {}, "--drain")
    root = rec["id"]
    assert rec["parent_id"] is None and rec["root_id"] == root and rec["depth"] == 0
    assert rec["task"] is None
    runs = braid.runs("--root", root)
    assert len(runs) == 4
    mid = by_integration(runs, "tree/mid")[0]
    assert (mid["parent_id"], mid["root_id"], mid["depth"], mid["task"]) == (root, root, 1,
                                                                             "to_mid")
    leaves = {l["task"]: l for l in by_integration(runs, "tree/leaf")}
    assert set(leaves) == {"to_leaf", "to_leaf_async"}
    for leaf in leaves.values():
        assert (leaf["parent_id"], leaf["root_id"], leaf["depth"]) == (mid["id"], root, 2)
        assert leaf["status"] == "succeeded"
        assert leaf["output"]["leaf"] == 2
