"""The script task and callint() (SPEC §6, issue 5), through the binary."""
import time

from conftest import by_integration, failing, integration, set_task


def script(tid, source, **more):
    t = {"id": tid, "type": "script", "lang": "lua", "source": source}
    t.update(more)
    return t


# Its output is its whole payload, whatever its type (a string here).
TEST_INTEGRATION = integration("test_integration", [set_task("s", {"got": "{{input.payload}}"})],
                               outputs=["got"])


def test_plain_callint_with_a_string_payload(braid, run_json):
    braid.publish(TEST_INTEGRATION)
    braid.publish(integration("s/plain", [
        script("sc", 'x = callint("test_integration", "input_str")\nvars.x = x\nreturn x'),
    ]))
    rec = run_json("s/plain", {})
    assert rec["status"] == "succeeded", rec
    assert rec["output"]["x"] == {"got": "input_str"}
    child = by_integration(braid.runs(), "test_integration")[0]
    assert child["parent_id"] == rec["id"]
    assert child["root_id"] == rec["id"]
    assert child["depth"] == 1
    assert child["task"] == "sc"
    shown = braid.show(child["id"])
    assert "callint" in str(shown["trigger"])


def test_failing_child_caught_by_pcall(braid, run_json):
    braid.publish(failing("s/bad", code="nope", message="no luck"))
    braid.publish(integration("s/catch", [
        script("sc", 'local ok, e = pcall(callint, "s/bad", {})\n'
                     'vars.ok = ok vars.code = e.code vars.msg = e.message vars.rid = e.run_id'),
    ]))
    rec = run_json("s/catch", {})
    assert rec["status"] == "succeeded", rec
    out = rec["output"]
    child = by_integration(braid.runs(), "s/bad")[0]
    assert (out["ok"], out["code"], out["msg"], out["rid"]) == (False, "nope", "no luck",
                                                               child["id"])


def test_failing_child_not_caught_fails_the_run_with_its_code(braid, run_json):
    braid.publish(failing("s/bad", code="nope", message="no luck"))
    braid.publish(integration("s/nocatch", [script("sc", 'callint("s/bad", {})')]))
    rec = run_json("s/nocatch", {})
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "nope"
    assert rec["error"]["run_id"] == by_integration(braid.runs(), "s/bad")[0]["id"]


def test_async_callint_returns_run_id_and_drain_runs_it(braid, run_json):
    braid.publish(TEST_INTEGRATION)
    braid.publish(integration("s/async", [
        script("sc", 'local r = callint("test_integration", {a = 1}, false, "async")\n'
                     'vars.rid = r.run_id'),
    ]))
    rec = run_json("s/async", {}, "--drain")
    assert rec["status"] == "succeeded", rec
    rid = rec["output"]["rid"]
    child = braid.show(rid)
    assert child["parent_id"] == rec["id"]
    assert child["status"] == "succeeded"
    assert child["output"] == {"got": {"a": 1}}


def test_extended_payload(braid, run_json):
    braid.publish(integration("s/ctx", [set_task("s", {"m": "{{input.method}}",
                                                      "p": "{{input.params.q}}",
                                                      "b": "{{input.payload.b}}"})],
                              outputs=["m", "p", "b"]))
    braid.publish(integration("s/ext", [
        script("sc", 'vars.r = callint("s/ctx", {payload = {b = 2}, params = {q = "x"},'
                     ' method = "PUT"}, true)'),
    ]))
    rec = run_json("s/ext", {})
    assert rec["output"]["r"] == {"m": "PUT", "p": "x", "b": 2}


def test_callint_depth_and_callers_apply(braid, run_json):
    braid.publish(integration("s/rec", [
        script("sc", 'return callint("s/rec", {}, false, "sync")'),
    ]))
    rec = run_json("s/rec", {}, "--max-call-depth", "5")
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "call_depth_exceeded"
    assert len(braid.runs("--root", rec["id"])) == 6
    braid.publish(integration("s/guarded", [set_task("s", {"ok": True})], callers=["ok/*"]))
    braid.publish(integration("s/intruder", [
        script("sc", 'local ok, e = pcall(callint, "s/guarded", {})\nvars.code = e.code'),
    ]))
    assert run_json("s/intruder", {})["output"]["code"] == "forbidden"


def test_vars_written_back_input_read_only_logs_in_step(braid, run_json):
    braid.publish(integration("s/vars", [
        script("sc", 'vars.n = vars.n + 1\n'
                     'local ok = pcall(function() input.payload = 1 end)\n'
                     'vars.ro = not ok\n'
                     'vars.e = json.array()\n'
                     'log("hello", vars.n)\n'
                     'return {sum = vars.n + 0.5, none = json.null}'),
        set_task("after", {"seen": "{{vars.n}}", "r": "{{tasks.sc.result}}"}),
    ]))
    rec = run_json("s/vars", {"n": 1})
    out = rec["output"]
    assert out["n"] == 2 and out["seen"] == 2 and out["ro"] is True and out["e"] == []
    assert out["r"] == {"sum": 2.5, "none": None}
    steps = braid.show(rec["id"])["steps"]
    assert steps[0]["type"] == "script"
    assert steps[0]["result"]["logs"] == ["hello\t2"]
    assert steps[0]["result"]["result"] == {"sum": 2.5, "none": None}


def test_runtime_error_and_limits(braid, run_json):
    braid.publish(integration("s/err", [script("sc", "local x = nil\nreturn x.y")]))
    rec = run_json("s/err", {})
    assert rec["error"]["code"] == "script_error"
    assert "script:2:" in rec["error"]["message"]
    braid.publish(integration("s/loop", [
        script("sc", "while true do pcall(function() while true do end end) end")]))
    t0 = time.time()
    rec = run_json("s/loop", {})
    assert rec["error"]["code"] == "script_limit"
    braid.publish(integration("s/bomb", [
        script("sc", 'local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1000) .. i end')]))
    rec = run_json("s/bomb", {})
    assert rec["error"]["code"] == "script_limit"
    assert time.time() - t0 < 30


def test_sandbox_from_a_published_script(braid, run_json):
    braid.publish(integration("s/holes", [script("sc", (
        "vars.r = {io == nil, os == nil, debug == nil, package == nil, require == nil,"
        " dofile == nil, loadfile == nil, string.dump == nil,"
        " (load(string.char(27) .. 'Lua', 'x', 'b')) == nil}"))]))
    assert run_json("s/holes", {})["output"]["r"] == [True] * 9


def test_syntax_error_refused_at_publish_with_its_line(braid):
    doc = integration("s/syntax", [script("sc", "local a = 1\nlocal b = \nreturn a")])
    out = braid.json("validate", braid.write(doc), ok=False)
    errs = {e["pointer"]: e["message"] for e in out[0]["errors"]}
    assert "/tasks/0/source" in errs, out
    assert "line 3" in errs["/tasks/0/source"] or "line 2" in errs["/tasks/0/source"]
    assert braid("publish", braid.write(doc)).returncode == 1


def test_budgets_are_engine_settings(braid):
    braid.publish(integration("sc/spin", [{"id": "s", "type": "script", "lang": "lua",
                                           "source": "local n = 0\nwhile true do n = n + 1 end"}]))
    r = braid("run", "sc/spin", "--script-max-instructions", "100000")
    assert r.returncode == 1 and "script_limit" in r.stderr
    assert "100000 instructions" in r.stderr
    braid.publish(integration("sc/big", [{"id": "s", "type": "script", "lang": "lua",
                                          "source": "local t = {}\nfor i = 1, 1e7 do t[i] = i end"}]))
    r = braid("run", "sc/big", "--script-max-memory", str(2 << 20))
    assert r.returncode == 1 and "script_limit" in r.stderr
    r = braid("run", "sc/spin", "--script-max-instructions", "10")
    assert r.returncode == 2
