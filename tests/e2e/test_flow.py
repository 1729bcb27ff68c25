"""set, switch, await, fail and the flow between tasks (SPEC §2 next/cases, §6)."""
import time

from conftest import by_integration, call, failing, integration, set_task

# ---- set ----


def test_set_assigns_and_dotted_keys_nest(braid, run_json):
    braid.publish(integration("s/set", [
        set_task("a", {"n": 1, "customer.name": "{{vars.who | upper}}", "customer.tier": "gold",
                       "deep.a.b.c": [1, "{{vars.who}}"], "obj": {"k": "{{vars.who}}"}}),
        set_task("b", {"n": "{{vars.n + 1}}", "customer.since": 2020}),
    ]))
    out = run_json("s/set", {"who": "ada"})["output"]
    assert out == {
        "who": "ada",
        "n": 2,
        "customer": {"name": "ADA", "tier": "gold", "since": 2020},
        "deep": {"a": {"b": {"c": [1, "ada"]}}},
        "obj": {"k": "ada"},
    }


def test_set_values_see_vars_before_the_task(braid, run_json):
    braid.publish(integration("s/set2", [
        set_task("a", {"x": 1}),
        set_task("b", {"x": "{{vars.x + 10}}"}),
    ]))
    out = run_json("s/set2", {})["output"]
    assert out["x"] == 11
    # The outcome of a set task
    braid.publish(integration("s/set3", [set_task("a", {"x": 1})],
                              outputs={"o": "{{tasks.a}}"}))
    o = run_json("s/set3", {})["output"]["o"]
    assert o["success"] is True and o["error"] is None and o["attempts"] == 1


# ---- switch ----

SWITCH = integration("s/switch", [
    {"id": "route", "type": "switch", "value": "{{vars.tier}}",
     "cases": {"gold": "vip", "silver": "end", "3": "three", "true": "yes"},
     "default": "standard"},
    set_task("fell", {"path": "fell through"}, next="end"),
    set_task("vip", {"path": "vip"}, next="end"),
    set_task("standard", {"path": "standard"}, next="end"),
    set_task("three", {"path": "three"}, next="end"),
    set_task("yes", {"path": "yes"}),
])


def test_switch_cases_and_default(braid, run_json):
    braid.publish(SWITCH)
    assert run_json("s/switch", {"tier": "gold"})["output"]["path"] == "vip"
    assert "path" not in run_json("s/switch", {"tier": "silver"})["output"]
    assert run_json("s/switch", {"tier": "bronze"})["output"]["path"] == "standard"
    assert run_json("s/switch", {})["output"]["path"] == "standard"


def test_switch_compares_rendered_text(braid, run_json):
    braid.publish(SWITCH)
    assert run_json("s/switch", {"tier": 3})["output"]["path"] == "three"
    assert run_json("s/switch", {"tier": "3"})["output"]["path"] == "three"
    assert run_json("s/switch", {"tier": True})["output"]["path"] == "yes"
    assert run_json("s/switch", {"tier": 3.5})["output"]["path"] == "standard"


def test_switch_without_default_falls_through(braid, run_json):
    braid.publish(integration("s/fall", [
        {"id": "route", "type": "switch", "value": "{{vars.x > 10 ? 'big' : 'small'}}",
         "cases": {"big": "big"}},
        set_task("small", {"size": "small"}, next="end"),
        set_task("big", {"size": "big"}),
    ]))
    assert run_json("s/fall", {"x": 50})["output"]["size"] == "big"
    assert run_json("s/fall", {"x": 5})["output"]["size"] == "small"


def test_switch_outcome_and_next(braid, run_json):
    braid.publish(integration("s/sw2", [
        {"id": "route", "type": "switch", "value": "{{vars.v}}", "cases": {"a": "end"},
         "next": "jump"},
        set_task("skipped", {"skipped": True}),
        set_task("jump", {"jumped": True, "ok": "{{tasks.route.success}}"}),
    ]))
    out = run_json("s/sw2", {"v": "b"})["output"]
    assert out.get("skipped") is None
    assert out["jumped"] is True
    assert out["ok"] is True
    assert run_json("s/sw2", {"v": "a"})["output"] == {"v": "a"}


# ---- fail ----


def test_fail_code_message_detail(braid, run_json):
    braid.publish(integration("s/fail", [
        set_task("a", {"sku": "TEA-1"}),
        {"id": "stop", "type": "fail", "code": "out_of_stock",
         "message": "no stock for {{vars.sku}} (wanted {{vars.qty}})",
         "detail": {"sku": "{{vars.sku}}", "qty": "{{vars.qty}}", "fixed": [1, 2]}},
        set_task("never", {"reached": True}),
    ]))
    rec = run_json("s/fail", {"qty": 4})
    assert rec["status"] == "failed"
    assert rec["output"] is None
    err = rec["error"]
    assert err["code"] == "out_of_stock"
    assert err["message"] == "no stock for TEA-1 (wanted 4)"
    assert err["detail"] == {"sku": "TEA-1", "qty": 4, "fixed": [1, 2]}
    assert err["task"] == "stop"
    assert err["run_id"] == rec["id"]
    assert err["retryable"] is False
    r = braid.run("s/fail", {"qty": 1})
    assert r.returncode == 1
    assert "error: out_of_stock: no stock for TEA-1 (wanted 1)" in r.stderr
    assert r.stdout.strip() == ""


def test_fail_code_is_a_template(braid, run_json):
    braid.publish(integration("s/fail2", [{"id": "f", "type": "fail", "code": "{{vars.c}}"}]))
    rec = run_json("s/fail2", {"c": "custom_code"})
    assert rec["error"]["code"] == "custom_code"


def test_fail_caught_by_continue_on_error(braid, run_json):
    braid.publish(integration("s/fail3", [
        {"id": "f", "type": "fail", "code": "soft", "message": "m", "continue_on_error": True},
        set_task("after", {"code": "{{tasks.f.error.code}}", "ok": "{{tasks.f.success}}"}),
    ]))
    rec = run_json("s/fail3", {})
    assert rec["status"] == "succeeded"
    assert rec["output"] == {"code": "soft", "ok": False}


def test_next_and_end(braid, run_json):
    braid.publish(integration("s/next", [
        set_task("a", {"a": 1}, next="c"),
        set_task("b", {"b": 1}),
        set_task("c", {"c": 1}, next="end"),
        set_task("d", {"d": 1}),
    ]))
    assert run_json("s/next", {})["output"] == {"a": 1, "c": 1}


# ---- await ----

KID = integration("aw/kid", [
    {"id": "chk", "type": "switch", "value": "{{vars.v}}", "cases": {"bad": "die"}},
    set_task("s", {"done": "{{vars.v}}"}, next="end"),
    {"id": "die", "type": "fail", "code": "kid_failed", "message": "kid {{vars.v}} failed"},
], outputs=["done"])


def awaiting(name, items, mode=None, tolerate=None, timeout_ms=None, delay_ms=None, cont=False):
    fan = call("fan", "aw/kid", strategy="async", for_each=items, input={"v": "{{item}}"})
    if delay_ms is not None:
        fan["delay_ms"] = delay_ms
    w = {"id": "wait", "type": "await", "runs": "{{tasks.fan.result}}"}
    if mode is not None:
        w["mode"] = mode
    if tolerate is not None:
        w["tolerate_failures"] = tolerate
    if timeout_ms is not None:
        w["timeout_ms"] = timeout_ms
    if cont:
        w["continue_on_error"] = True
    return integration(name, [fan, w], outputs={"fan": "{{tasks.fan.result}}",
                                               "wait": "{{tasks.wait}}"})


def test_await_all(braid, run_json):
    braid.publish_all(KID, awaiting("aw/all", ["x", "y", "z"]))
    rec = run_json("aw/all", {}, "--drain")
    assert rec["status"] == "succeeded"
    w = rec["output"]["wait"]
    assert w["success"] is True
    ids = [f["run_id"] for f in rec["output"]["fan"]]
    assert [r["run_id"] for r in w["result"]] == ids  # in the order given
    assert [r["status"] for r in w["result"]] == ["succeeded"] * 3
    assert [r["output"] for r in w["result"]] == [{"done": v} for v in "xyz"]
    assert all(r["error"] is None for r in w["result"])


def test_await_all_without_drain_runs_the_children(braid, run_json):
    # An await must never deadlock: with no worker around, the waiting run runs them itself.
    braid.publish_all(KID, awaiting("aw/all2", ["x", "y"], timeout_ms=20000))
    rec = run_json("aw/all2", {})
    assert rec["status"] == "succeeded", rec["error"]
    assert [r["status"] for r in rec["output"]["wait"]["result"]] == ["succeeded"] * 2


def test_await_all_with_a_failure(braid, run_json):
    braid.publish_all(KID, awaiting("aw/allf", ["x", "bad", "z"]))
    rec = run_json("aw/allf", {}, "--drain")
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "await_failed"
    assert rec["error"]["task"] == "wait"
    kids = by_integration(braid.runs(), "aw/kid")
    assert sorted(k["status"] for k in kids) == ["failed", "succeeded", "succeeded"]


def test_await_tolerate_failures(braid, run_json):
    braid.publish_all(KID, awaiting("aw/tol", ["x", "bad", "z"], tolerate=1),
                      awaiting("aw/tol2", ["bad", "bad", "z"], tolerate=1, cont=True))
    rec = run_json("aw/tol", {}, "--drain")
    assert rec["status"] == "succeeded"
    w = rec["output"]["wait"]
    assert w["success"] is True
    assert [r["status"] for r in w["result"]] == ["succeeded", "failed", "succeeded"]
    assert w["result"][1]["error"]["code"] == "kid_failed"

    w2 = run_json("aw/tol2", {}, "--drain")["output"]["wait"]
    assert w2["success"] is False
    assert w2["error"]["code"] == "await_failed"


def test_await_any(braid, run_json):
    braid.publish_all(KID, awaiting("aw/any", ["bad", "y", "bad"], mode="any"),
                      awaiting("aw/none", ["bad", "bad"], mode="any", cont=True))
    rec = run_json("aw/any", {}, "--drain")
    w = rec["output"]["wait"]
    assert w["success"] is True
    assert "succeeded" in [r["status"] for r in w["result"]]
    assert len(w["result"]) == 3

    w2 = run_json("aw/none", {}, "--drain")["output"]["wait"]
    assert w2["success"] is False
    assert w2["error"]["code"] == "await_failed"


def test_await_at_least(braid, run_json):
    braid.publish_all(KID,
                      awaiting("aw/two", ["x", "bad", "z"], mode={"at_least": 2}),
                      awaiting("aw/three", ["x", "bad", "z"], mode={"at_least": 3}, cont=True))
    w = run_json("aw/two", {}, "--drain")["output"]["wait"]
    assert w["success"] is True
    assert sum(r["status"] == "succeeded" for r in w["result"]) >= 2
    w = run_json("aw/three", {}, "--drain")["output"]["wait"]
    assert w["success"] is False
    assert w["error"]["code"] == "await_failed"


def test_await_timeout_leaves_runs_with_their_status(braid, run_json):
    braid.publish_all(KID, awaiting("aw/slow", ["x", "y"], timeout_ms=200, delay_ms=60000,
                                    cont=True))
    t0 = time.time()
    rec = run_json("aw/slow", {})
    assert time.time() - t0 < 20
    assert rec["status"] == "succeeded"
    w = rec["output"]["wait"]
    assert w["success"] is False
    assert w["error"]["code"] == "timeout"
    assert w["error"]["retryable"] is True
    assert [r["status"] for r in w["result"]] == ["scheduled", "scheduled"]
    assert [r["run_id"] for r in w["result"]] == [f["run_id"] for f in rec["output"]["fan"]]
    assert all(r["output"] is None for r in w["result"])
    # The children are untouched by the await's timeout.
    assert [k["status"] for k in by_integration(braid.runs(), "aw/kid")] == ["scheduled"] * 2


def test_await_plain_ids_and_unknown_id(braid, run_json):
    braid.publish(KID)
    braid.publish(integration("aw/ids", [
        call("a", "aw/kid", strategy="async", input={"v": "a"}),
        call("b", "aw/kid", strategy="async", input={"v": "b"}),
        {"id": "wait", "type": "await",
         "runs": ["{{tasks.b.result.run_id}}", "{{tasks.a.result.run_id}}"]},
    ], outputs={"r": "{{tasks.wait.result}}", "a": "{{tasks.a.result.run_id}}",
                "b": "{{tasks.b.result.run_id}}"}))
    out = run_json("aw/ids", {}, "--drain")["output"]
    assert [x["run_id"] for x in out["r"]] == [out["b"], out["a"]]
    assert [x["output"] for x in out["r"]] == [{"done": "b"}, {"done": "a"}]

    braid.publish(integration("aw/ghost", [
        {"id": "wait", "type": "await", "runs": ["0190a000-0000-7000-8000-000000000000"],
         "timeout_ms": 2000},
    ]))
    rec = run_json("aw/ghost", {})
    assert rec["status"] == "failed"
    # An id no run has yet may still be committed by another process: judged at the deadline.
    assert rec["error"]["code"] in ("not_found", "await_failed", "timeout")
