"""Publishing and validating integrations (SPEC §1 Publishing, §10 publish/validate)."""
import json

from conftest import call, echo, integration, set_task


def pointers(errors):
    return {e["pointer"] for e in errors}


def test_publish_versions_and_unchanged(braid):
    doc = echo("greet/hello")
    r = braid("publish", braid.write(doc))
    assert r.returncode == 0, r.stderr
    assert "published greet/hello version 1" in r.stdout

    doc["description"] = "second version"
    r = braid("publish", braid.write(doc))
    assert r.returncode == 0, r.stderr
    assert "published greet/hello version 2" in r.stdout

    # The same document again, even formatted differently, publishes nothing.
    r = braid("publish", braid.write(json.dumps(doc, indent=None, separators=(",", ":"))))
    assert r.returncode == 0, r.stderr
    assert "unchanged greet/hello version 2" in r.stdout

    out = braid.json("publish", braid.write(doc))
    assert len(out) == 1
    assert out[0]["ok"] is True
    assert out[0]["name"] == "greet/hello"
    assert out[0]["version"] == 2
    assert out[0]["created"] is False

    doc["description"] = "third"
    out = braid.json("publish", braid.write(doc))
    assert out[0]["ok"] is True and out[0]["version"] == 3 and out[0]["created"] is True
    assert out[0]["file"].endswith(".json")


def test_versions_are_immutable_and_runnable(braid, run_json):
    braid.publish(integration("v/x", [set_task("s", {"v": 1})]))
    braid.publish(integration("v/x", [set_task("s", {"v": 2})]))
    assert run_json("v/x", {})["output"] == {"v": 2}
    rec = run_json("v/x", {}, "--version", "1")
    assert rec["output"] == {"v": 1}
    assert rec["version"] == 1


def test_every_problem_at_once_with_pointers(braid):
    doc = {
        "name": "Bad Name",
        "tiemout_ms": 5,
        "inputs": {"n": {"type": "integer", "default": "zero"}},
        "tasks": [
            {"id": "a", "type": "set", "values": {"x": 1}},
            {"id": "a", "type": "set", "values": {"y": 2}},
            {"id": "c", "type": "switch", "value": "{{vars.x}}", "cases": {"1": "nowhere"}},
            {"id": "d", "type": "fail", "code": "x", "next": "missing"},
        ],
    }
    path = braid.write(doc)
    r = braid("validate", path)
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.startswith(path)]
    assert len(lines) >= 5, r.stderr

    out = braid.json("validate", path, ok=False)
    assert out[0]["valid"] is False
    ptrs = pointers(out[0]["errors"])
    for p in ("/name", "/tiemout_ms", "/inputs/n/default", "/tasks/1/id",
              "/tasks/2/cases/1", "/tasks/3/next"):
        assert p in ptrs, (p, out[0]["errors"])
    for e in out[0]["errors"]:
        assert e["message"]
        # The file's text is known, so every problem is located.
        assert isinstance(e.get("line"), int) and e["line"] >= 1, e
        assert isinstance(e.get("column"), int) and e["column"] >= 1, e

    # The text form: FILE:LINE:COLUMN: POINTER: message
    assert any(l.startswith(path + ":") and ": /tasks/1/id: " in l for l in lines), r.stderr
    assert any(": /name: " in l for l in lines), r.stderr


def test_diagnostic_line_and_column_point_at_the_field(braid):
    text = ('{\n'
            '  "name": "loc/x",\n'
            '  "tasks": [\n'
            '    {"id": "a", "type": "set", "values": {"x": 1}, "next": "nope"}\n'
            '  ]\n'
            '}\n')
    path = braid.write(text)
    out = braid.json("validate", path, ok=False)
    errs = out[0]["errors"]
    assert len(errs) == 1, errs
    assert errs[0]["pointer"] == "/tasks/0/next"
    assert errs[0]["line"] == 4
    assert errs[0]["column"] == text.splitlines()[3].index('"nope"') + 1
    r = braid("validate", path)
    assert r.returncode == 1
    assert f"{path}:4:{errs[0]['column']}: /tasks/0/next: " in r.stderr


def test_syntax_error_has_line_and_column(braid):
    text = '{\n  "name": "syn/x",\n  "tasks": [,]\n}\n'
    path = braid.write(text)
    r = braid("publish", path)
    assert r.returncode == 1
    assert r.stderr.startswith(path + ":3:"), r.stderr
    out = braid.json("validate", path, ok=False)
    assert out[0]["valid"] is False
    assert out[0]["errors"][0]["line"] == 3
    assert out[0]["errors"][0]["column"] >= 1
    # Nothing was published.
    r = braid("run", "syn/x")
    assert r.returncode == 1
    assert "not_found" in r.stderr


def test_validate_valid_file(braid):
    path = braid.write(echo("val/ok"))
    r = braid("validate", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{path}: valid"
    out = braid.json("validate", path)
    assert out == [{"file": path, "valid": True, "errors": []}]
    # validate stores nothing
    assert braid("run", "val/ok").returncode == 1


def test_publish_continues_with_next_file(braid):
    bad = braid.write(integration("multi/bad", [{"id": "x", "type": "nope"}]))
    good = braid.write(echo("multi/good"))
    r = braid("publish", bad, good)
    assert r.returncode == 1
    assert "published multi/good version 1" in r.stdout
    assert bad in r.stderr and "/tasks/0/type" in r.stderr
    out = braid.json("publish", bad, good, ok=False)
    assert [o["ok"] for o in out] == [False, True]
    assert out[0]["file"] == bad and out[0]["errors"][0]["pointer"] == "/tasks/0/type"
    assert out[1]["version"] == 1 and out[1]["created"] is False


def test_unknown_literal_target_refused(braid):
    doc = integration("t/caller", [call("c", "no/such-thing")])
    out = braid.json("publish", braid.write(doc), ok=False)
    assert out[0]["ok"] is False
    errs = out[0]["errors"]
    assert pointers(errs) == {"/tasks/0/integration"}
    assert "no/such-thing" in errs[0]["message"]
    # A templated target cannot be checked at publish: it is accepted.
    braid.publish(integration("t/dynamic", [call("c", "{{vars.target}}")]))


def test_http_and_connector_checked_at_publish(braid):
    """Both types publish now; their problems are reported like any other (the connector task
    names a connector nobody published, the http task a scheme braid never calls)."""
    doc = integration("later/types", [
        {"id": "h", "type": "http", "url": "ftp://example.com/"},
        {"id": "k", "type": "connector", "connector": "billing", "operation": "x",
         "connection": "billing-prod"},
    ])
    r = braid("publish", braid.write(doc))
    assert r.returncode == 1
    out = braid.json("validate", braid.write(doc), ok=False)
    pointers = {e["pointer"] for e in out[0]["errors"]}
    assert "/tasks/0/url" in pointers, out
    assert any(p.startswith("/tasks/1/connector") for p in pointers), out
    ok = integration("later/ok", [{"id": "h", "type": "http", "url": "https://example.com/"}])
    assert braid("publish", braid.write(ok)).returncode == 0


def test_unknown_task_type_refused(braid):
    out = braid.json("validate", braid.write(integration("x/y", [{"id": "a", "type": "wait"}])),
                     ok=False)
    assert out[0]["errors"][0]["pointer"] == "/tasks/0/type"


def test_bad_template_refused(braid):
    doc = integration("tmpl/bad", [
        set_task("a", {"x": "{{vars.a +}}", "y": "{{vars.b | nosuchfilter}}", "z": "{{vars.c"}),
    ])
    out = braid.json("validate", braid.write(doc), ok=False)
    assert pointers(out[0]["errors"]) == {"/tasks/0/values/x", "/tasks/0/values/y",
                                          "/tasks/0/values/z"}


def test_case_targets_must_exist(braid):
    braid.publish(echo("ct/child"))
    doc = integration("ct/parent", [
        call("c", "ct/child", cases={"failure": "ghost", "success": "end"}),
        {"id": "sw", "type": "switch", "value": "{{1}}", "cases": {"1": "c"}, "default": "ghost2"},
    ])
    out = braid.json("validate", braid.write(doc), ok=False)
    assert pointers(out[0]["errors"]) == {"/tasks/0/cases/failure", "/tasks/1/default"}


def test_delay_ms_and_detached_only_for_async(braid):
    braid.publish(echo("d/child"))
    doc = integration("d/parent", [
        call("a", "d/child", strategy="sync", delay_ms=10),
        call("b", "d/child", delay_ms=10),  # no explicit strategy: refused too
        call("c", "d/child", detached=True),
    ])
    out = braid.json("validate", braid.write(doc), ok=False)
    assert pointers(out[0]["errors"]) == {"/tasks/0/delay_ms", "/tasks/1/delay_ms",
                                          "/tasks/2/detached"}
    ok = integration("d/ok", [call("a", "d/child", strategy="async", delay_ms=10,
                                   detached=True)])
    braid.publish(ok)


def test_delay_ms_bounds(braid):
    braid.publish(echo("d2/child"))
    thirty_days = 30 * 24 * 3600 * 1000
    braid.publish(integration("d2/max", [call("a", "d2/child", strategy="async",
                                              delay_ms=thirty_days)]))
    out = braid.json("validate", braid.write(integration("d2/over", [
        call("a", "d2/child", strategy="async", delay_ms=thirty_days + 1),
        call("b", "d2/child", strategy="async", delay_ms=-1)])), ok=False)
    assert pointers(out[0]["errors"]) == {"/tasks/0/delay_ms", "/tasks/1/delay_ms"}


def test_name_rules(braid):
    for bad in ("Upper/x", "a//b", "/a", "a/", "orders/execute", "versions", "a" * 129,
                "-a", "a b"):
        out = braid.json("validate", braid.write(echo(bad)), ok=False)
        assert not out[0]["valid"], bad
        assert "/name" in pointers(out[0]["errors"]), (bad, out)
    for good in ("a", "a" * 128, "orders/intake", "x9/y_z.w-1", "0/1"):
        braid.publish(echo(good))


def test_task_id_and_trigger_rules(braid):
    doc = integration("ids/x", [set_task("9bad", {"a": 1}), set_task("ok_1", {"b": 1})],
                      triggers=[{"type": "api", "id": "Bad Id"}])
    out = braid.json("validate", braid.write(doc), ok=False)
    assert pointers(out[0]["errors"]) == {"/tasks/0/id", "/triggers/0/id"}


def test_required_fields(braid):
    out = braid.json("validate", braid.write({"description": "nothing"}), ok=False)
    assert {"/name", "/tasks"} <= pointers(out[0]["errors"]), out
    out = braid.json("validate", braid.write({"name": "empty/tasks", "tasks": []}), ok=False)
    assert pointers(out[0]["errors"]) == {"/tasks"}
    out = braid.json("validate", braid.write([1, 2]), ok=False)
    assert out[0]["valid"] is False


def test_input_declarations_checked(braid):
    doc = integration("in/bad", [set_task("a", {"x": 1})], inputs={
        "a": {"type": "float"},
        "b": {"type": "integer", "default": "zero"},
        "c": {"type": "string", "required": True, "default": "x"},
    })
    out = braid.json("validate", braid.write(doc), ok=False)
    ptrs = pointers(out[0]["errors"])
    assert "/inputs/a/type" in ptrs and "/inputs/b/default" in ptrs
    assert any(p.startswith("/inputs/c") for p in ptrs)


def test_document_limits(braid):
    many = integration("lim/tasks", [set_task(f"t{i}", {"x": i}) for i in range(1001)])
    out = braid.json("validate", braid.write(many), ok=False)
    assert out[0]["valid"] is False
    ok = integration("lim/tasks-ok", [set_task(f"t{i}", {"x": i}) for i in range(1000)])
    braid.publish(ok)

    deep = {"v": 1}
    for _ in range(70):
        deep = {"v": deep}
    out = braid.json("validate", braid.write(integration("lim/deep", [set_task("a", deep)])),
                     ok=False)
    assert out[0]["valid"] is False

    big = integration("lim/big", [set_task("a", {"x": "y" * (1024 * 1024 + 10)})])
    out = braid.json("validate", braid.write(big), ok=False)
    assert out[0]["valid"] is False
    assert out[0]["errors"][0]["message"]


def test_warning_when_new_callee_version_breaks_caller(braid):
    braid.publish(integration("w/callee", [set_task("s", {"r": "{{vars.a}}"})],
                              inputs={"a": {"type": "string", "required": True}}))
    braid.publish(integration("w/caller", [call("c", "w/callee", input={"a": "x"})]))
    braid.publish(integration("w/other", [call("c", "w/callee", input={"a": "y"})]))

    # A compatible new version: no warnings.
    out = braid.json("publish", braid.write(integration(
        "w/callee", [set_task("s", {"r": "{{vars.a}}!"})],
        inputs={"a": {"type": "string", "required": True},
                "b": {"type": "integer", "default": 1}})))
    assert out[0]["ok"] and out[0]["version"] == 2
    assert not out[0].get("warnings")

    # Now `b` is required and no caller maps it: both callers are named.
    breaking = integration("w/callee", [set_task("s", {"r": "{{vars.a}}{{vars.b}}"})],
                           inputs={"a": {"type": "string", "required": True},
                                   "b": {"type": "integer", "required": True}})
    path = braid.write(breaking)
    out = braid.json("publish", path)
    assert out[0]["ok"] is True and out[0]["version"] == 3
    warned = {w["integration"]: w for w in out[0]["warnings"]}
    assert set(warned) == {"w/caller", "w/other"}
    assert warned["w/caller"]["task"] == "c" and warned["w/caller"]["version"] == 1
    assert "'b'" in warned["w/caller"]["message"]

    breaking["description"] = "again"
    r = braid("publish", braid.write(breaking))
    assert r.returncode == 0
    wl = [l for l in r.stdout.splitlines() if l.startswith("warning: ")]
    assert any("w/caller" in l for l in wl) and any("w/other" in l for l in wl), r.stdout


def test_var_names_have_at_most_32_segments(braid):
    deep = ".".join(["a"] * 33)
    ok = ".".join(["b"] * 32)
    path = braid.write(integration("p/dots", [set_task("s", {deep: 1, ok: 2})]))
    r = braid("validate", path)
    assert r.returncode == 1
    assert "at most 32 names" in r.stderr and "/tasks/0/values/" in r.stderr
    braid.publish(integration("p/dots", [set_task("s", {ok: 2})]))
