"""Declared inputs, the input context and outputs (SPEC §1 inputs/outputs, Input context)."""
from conftest import call, integration, set_task

DECLARED = integration(
    "io/declared",
    [set_task("s", {"seen_extra": "{{vars.extra}}", "raw_extra": "{{input.payload.extra}}"})],
    inputs={
        "name": {"type": "string", "required": True, "description": "who"},
        "count": {"type": "integer", "default": 3},
        "ratio": {"type": "number", "default": 0.5},
        "flags": {"type": "array", "default": []},
        "opts": {"type": "object", "default": {"a": 1}},
        "on": {"type": "boolean", "default": False},
        "anything": {"type": "any"},
    },
)


def test_declared_inputs_bound_with_defaults(braid, run_json):
    braid.publish(DECLARED)
    rec = run_json("io/declared", {"name": "ada", "extra": 5})
    assert rec["status"] == "succeeded"
    out = rec["output"]
    assert out["name"] == "ada"
    assert out["count"] == 3
    assert out["ratio"] == 0.5
    assert out["flags"] == []
    assert out["opts"] == {"a": 1}
    assert out["on"] is False
    # Undeclared keys are not vars, but stay reachable in input.payload.
    assert "extra" not in out
    assert out["seen_extra"] is None
    assert out["raw_extra"] == 5


def test_given_values_override_defaults_and_types_accepted(braid, run_json):
    braid.publish(DECLARED)
    out = run_json("io/declared", {"name": "x", "count": -7, "ratio": 2, "flags": [1],
                                   "opts": {}, "on": True, "anything": [None]})["output"]
    assert (out["count"], out["ratio"], out["flags"], out["opts"], out["on"], out["anything"]) \
        == (-7, 2, [1], {}, True, [None])


def test_required_input_missing_starts_no_run(braid):
    braid.publish(DECLARED)
    r = braid.run("io/declared", {"count": 1})
    assert r.returncode == 1
    assert r.stderr.startswith("error: input_invalid: "), r.stderr
    assert braid.runs() == []


def test_wrong_types_refused(braid):
    braid.publish(DECLARED)
    for bad in ({"name": 5}, {"name": "x", "count": "3"}, {"name": "x", "count": 1.5},
                {"name": "x", "ratio": "1"}, {"name": "x", "flags": {}},
                {"name": "x", "opts": []}, {"name": "x", "on": "true"}):
        r = braid.run("io/declared", bad)
        assert r.returncode == 1, bad
        assert "input_invalid" in r.stderr, (bad, r.stderr)
    assert braid.runs() == []


def test_input_invalid_detail_lists_each_field(braid, run_json):
    braid.publish(DECLARED)
    braid.publish(integration("io/caller", [
        call("c", "io/declared", strategy="sync", payload={"count": "many"},
             continue_on_error=True),
        set_task("s", {"err": "{{tasks.c.error}}", "ok": "{{tasks.c.success}}"}),
    ], outputs=["err", "ok"]))
    rec = run_json("io/caller", {})
    assert rec["status"] == "succeeded"
    err = rec["output"]["err"]
    assert rec["output"]["ok"] is False
    assert err["code"] == "input_invalid"
    assert err["retryable"] is False
    fields = sorted(e["field"] for e in err["detail"]["errors"])
    assert fields == ["count", "name"]
    # The child never started.
    assert [r["integration"] for r in braid.runs()] == ["io/caller"]


def test_no_declarations_every_key_is_a_var(braid, run_json):
    braid.publish(integration("io/open", [set_task("s", {"sum": "{{vars.a + vars.b}}"})]))
    rec = run_json("io/open", {"a": 2, "b": 3, "nested": {"x": [1]}})
    assert rec["output"] == {"a": 2, "b": 3, "nested": {"x": [1]}, "sum": 5}
    # The record's input is the run's input context; the payload is in it.
    assert rec["input"]["payload"] == {"a": 2, "b": 3, "nested": {"x": [1]}}


def test_non_object_payload_without_declarations(braid, run_json):
    braid.publish(integration("io/raw", [set_task("s", {"p": "{{input.payload}}"})]))
    assert run_json("io/raw", [1, 2])["output"] == {"p": [1, 2]}
    assert run_json("io/raw", "text")["output"] == {"p": "text"}


def test_null_input_counts_as_missing(braid):
    braid.publish(DECLARED)
    r = braid.run("io/declared", {"name": None})
    assert r.returncode == 1 and "input_invalid" in r.stderr
    rec = braid.run_json("io/declared", {"name": "n", "count": None})
    assert rec["output"]["count"] == 3


def test_input_context_defaults_for_a_call(braid, run_json):
    braid.publish(integration("io/ctx", [set_task("s", {"x": 1})], outputs={
        "payload": "{{input.payload}}",
        "params": "{{input.params}}",
        "path": "{{input.path}}",
        "headers": "{{input.headers}}",
        "method": "{{input.method}}",
        "fullpath": "{{input.fullpath}}",
    }))
    braid.publish(integration("io/ctx-caller", [
        call("c", "io/ctx", strategy="sync", input={"k": "v"}),
    ], outputs={"child": "{{tasks.c.result}}"}))
    child = run_json("io/ctx-caller", {})["output"]["child"]
    assert child == {
        "payload": {"k": "v"},
        "params": {},
        "path": "/integrations/execute/io/ctx",
        "headers": {},
        "method": "POST",
        "fullpath": "/integrations/execute/io/ctx",
    }


def test_outputs_list_form(braid, run_json):
    braid.publish(integration("io/list", [set_task("s", {"a": 1, "b": "two", "c": 3})],
                              outputs=["a", "b"]))
    assert run_json("io/list", {"z": 0})["output"] == {"a": 1, "b": "two"}


def test_outputs_object_form(braid, run_json):
    braid.publish(integration("io/obj", [set_task("s", {"a": 4})], outputs={
        "double": "{{vars.a * 2}}",
        "label": "a is {{vars.a}}",
        "fixed": [1, {"n": "{{vars.a}}"}],
        "run": "{{run.integration}}",
    }))
    out = run_json("io/obj", {})["output"]
    assert out == {"double": 8, "label": "a is 4", "fixed": [1, {"n": 4}], "run": "io/obj"}


def test_outputs_absent_gives_final_vars(braid, run_json):
    braid.publish(integration("io/vars", [
        set_task("a", {"x": 1}),
        set_task("b", {"x": "{{vars.x + 1}}", "y.z": True}),
    ]))
    assert run_json("io/vars", {"in": "p"})["output"] == {"in": "p", "x": 2, "y": {"z": True}}
