"""Every route of SPEC §9 and each status it documents, with the shapes of its answers."""
import json
import os
import stat
import time

from apilib import (UUID7_RE, assert_time, call, ctx_doc, echo, error_of, failing, integration,
                    nop_doc, set_task, slow_doc)


def test_healthz_without_auth(server):
    r = server.get("/healthz", token=None)
    assert r.status == 200
    assert r.json() == {"status": "ok"}
    assert "json" in r.headers.get("content-type", "")


def test_admin_token_file_and_listen_line(server):
    path = os.path.join(server.data, "admin.token")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert server.admin.startswith("brd_")
    assert server.admin not in server.stdout()
    assert server.admin not in server.stderr()


def test_admin_token_kept_across_restarts(server):
    first = server.admin
    server.stop()
    server.start()
    assert server.admin == first
    assert server.get("/integrations").status == 200


def test_auth_required_everywhere_but_healthz(server):
    for method, path in [("GET", "/integrations"), ("GET", "/runs"), ("GET", "/tokens"),
                         ("GET", "/graph"), ("GET", "/metrics"), ("POST", "/tokens"),
                         ("POST", "/integrations/execute/x"), ("GET", "/nope"),
                         ("GET", "/runs/0190a0a0-0000-7000-8000-000000000000")]:
        for token in (None, "brd_notatoken", "garbage"):
            r = server.request(method, path, token=token)
            error_of(r, 401)
    r = server.get("/integrations", headers={"Authorization": "Basic YWRtaW46YWRtaW4="},
                   token=None)
    error_of(r, 401)
    r = server.get("/integrations", headers={"Authorization": "Bearer"}, token=None)
    error_of(r, 401)


def test_unknown_path_404_and_wrong_method_405(server):
    for path in ("/nope", "/integration", "/runs/x/y/z", "/tokens/a/b", "/healthz/x"):
        error_of(server.get(path), 404)
    for method, path, allowed in [
            ("DELETE", "/runs", {"GET"}),
            ("POST", "/integrations", {"GET"}),
            ("PATCH", "/integrations/x", {"GET", "PUT", "DELETE"}),
            ("GET", "/integrations/execute/x", {"POST"}),
            ("GET", "/triggers/x/execute", {"POST"}),
            ("PUT", "/tokens", {"GET", "POST"}),
            ("GET", "/runs/0190a0a0-0000-7000-8000-000000000000/cancel", {"POST"}),
            ("POST", "/graph", {"GET"}),
            ("POST", "/metrics", {"GET"})]:
        r = server.request(method, path)
        error_of(r, 405)
        assert "allow" in r.headers, f"{method} {path}: no Allow header"
        got = {m.strip() for m in r.headers["allow"].split(",")}
        assert allowed <= got, f"{method} {path}: Allow {got}"


def test_publish_201_200_and_read_back(server):
    doc = echo("r/echo", triggers=[{"type": "api", "id": "r-trig"}])
    r = server.put("/integrations/r/echo", json=doc)
    assert r.status == 201, r
    body = r.json()
    assert body["name"] == "r/echo" and body["version"] == 1 and body["created"] is True
    assert isinstance(body.get("warnings", []), list)

    r = server.put("/integrations/r/echo", json=doc)
    assert r.status == 200, r
    assert r.json()["version"] == 1 and r.json()["created"] is False

    doc2 = echo("r/echo", description="second", triggers=[{"type": "api", "id": "r-trig"}])
    r = server.put("/integrations/r/echo", json=doc2)
    assert r.status == 201 and r.json()["version"] == 2, r

    r = server.get("/integrations/r/echo")
    assert r.status == 200
    assert r.headers.get("braid-version") == "2"
    got = r.json()
    assert got["name"] == "r/echo" and got["description"] == "second"
    assert got["tasks"] == doc2["tasks"]

    r = server.get("/integrations/r/echo/versions")
    assert r.status == 200
    versions = r.json()["versions"]
    assert [v["version"] for v in versions] in ([1, 2], [2, 1])
    for v in versions:
        assert_time(v["created_at"])

    r = server.get("/integrations/r/echo/versions/1")
    assert r.status == 200
    assert "description" not in r.json() and r.json()["name"] == "r/echo"
    error_of(server.get("/integrations/r/echo/versions/3"), 404)
    assert server.get("/integrations/r/echo/versions/zero").status in (400, 404)
    error_of(server.get("/integrations/r/nope"), 404)
    error_of(server.get("/integrations/r/nope/versions"), 404)

    r = server.get("/integrations")
    assert r.status == 200
    items = {i["name"]: i for i in r.json()["integrations"]}
    assert items["r/echo"]["latest_version"] == 2
    assert items["r/echo"]["archived"] is False
    assert items["r/echo"]["triggers"] in (["r-trig"], [{"type": "api", "id": "r-trig"}])
    assert_time(items["r/echo"]["updated_at"])


def test_publish_422_lists_every_error(server):
    bad = integration("r/bad", [
        {"id": "a", "type": "set", "values": {"x": "{{ vars.x + }}"}},
        {"id": "b", "type": "call_integration", "integration": "r/missing"},
        {"id": "c", "type": "nosuch"},
    ])
    r = server.put("/integrations/r/bad", json=bad)
    err = error_of(r, 422, "invalid_definition")
    errors = err["detail"]["errors"]
    assert len(errors) >= 3, errors
    pointers = [e["pointer"] for e in errors]
    for e in errors:
        assert isinstance(e["message"], str) and e["message"]
    assert any(p.startswith("/tasks/0") for p in pointers), pointers
    assert any(p.startswith("/tasks/1") for p in pointers), pointers
    assert any(p.startswith("/tasks/2") for p in pointers), pointers
    error_of(server.get("/integrations/r/bad"), 404)


def test_publish_syntax_error_has_line_and_column(server):
    r = server.put("/integrations/r/syn", body='{"name": "r/syn",\n  "tasks": [,]}',
                   headers={"Content-Type": "application/json"})
    err = error_of(r, 422, "invalid_definition")
    e = err["detail"]["errors"][0]
    assert e["line"] == 2 and isinstance(e["column"], int), e


def test_publish_name_must_match_path(server):
    r = server.put("/integrations/r/one", json=echo("r/two"))
    assert r.status in (400, 422), r
    error_of(r)
    error_of(server.get("/integrations/r/one"), 404)
    error_of(server.get("/integrations/r/two"), 404)


def test_archive(server):
    server.publish(echo("r/gone"))
    assert server.execute("r/gone", {"v": 1}).status == 200
    r = server.delete("/integrations/r/gone")
    assert r.status == 200, r
    assert r.json() == {"name": "r/gone", "archived": True} or (
        r.json()["name"] == "r/gone" and r.json()["archived"] is True)
    error_of(server.execute("r/gone", {"v": 1}), 404)
    # History is kept.
    assert len(server.runs(integration="r/gone")) == 1
    error_of(server.delete("/integrations/r/never"), 404)
    items = {i["name"]: i for i in server.get("/integrations").json()["integrations"]}
    if "r/gone" in items:
        assert items["r/gone"]["archived"] is True


def test_execute_statuses(server):
    server.publish(echo("r/e"), failing("r/f"),
                   integration("r/req", [set_task("s", {"ok": True})],
                               inputs={"n": {"type": "integer", "required": True}}))
    r = server.execute("r/e", {"v": 5})
    assert r.status == 200 and r.json()["status"] == "succeeded"
    r = server.execute("r/f", {})
    assert r.status == 200 and r.json()["status"] == "failed"
    assert r.json()["error"]["code"] == "boom"
    r = server.execute("r/e", {"v": 5}, query="mode=async")
    assert r.status == 202 and r.headers["location"] == "/runs/" + r.json()["run_id"]
    err = error_of(server.execute("r/req", {"n": "x"}), 400, "input_invalid")
    assert err["detail"]["errors"][0]["field"] == "n"
    error_of(server.execute("r/req", {}), 400, "input_invalid")
    assert server.runs(integration="r/req") == []
    error_of(server.execute("r/unknown", {}), 404)
    error_of(server.execute("r/e", {}, query="version=7"), 404)
    error_of(server.execute("r/e", {}, query="mode=sometimes"), 400)
    error_of(server.execute("r/e", {}, query="wait_ms=soon"), 400)


def test_trigger_execute(server):
    server.publish(echo("r/t1", triggers=[{"type": "api", "id": "r-fan"}]),
                   integration("r/t2", [set_task("s", {"two": "{{vars.v}}"})],
                               triggers=[{"type": "api", "id": "r-fan"}]))
    r = server.post("/triggers/r-fan/execute", json={"v": 3})
    assert r.status in (200, 202), r
    if r.status == 200:
        runs = r.json()["runs"]
        assert sorted(x["integration"] for x in runs) == ["r/t1", "r/t2"]
        for x in runs:
            assert x["status"] == "succeeded"
    error_of(server.post("/triggers/r-nobody/execute", json={}), 404)


def test_runs_list_filters_and_pagination(server):
    server.publish(echo("r/a"), echo("r/b"), failing("r/c"))
    ids = []
    for i in range(7):
        ids.append(server.execute("r/a", {"v": i}).json()["id"])
    b = server.execute("r/b", {"v": 1}).json()
    c = server.execute("r/c", {}).json()

    r = server.get("/runs")
    assert r.status == 200
    doc = r.json()
    assert "runs" in doc and "next_cursor" in doc
    listed = [x["id"] for x in doc["runs"]]
    assert listed[:2] == [c["id"], b["id"]], "not newest first"

    r = server.get("/runs?integration=r/a&limit=3")
    page1 = r.json()
    assert [x["id"] for x in page1["runs"]] == ids[::-1][:3]
    assert page1["next_cursor"]
    r = server.get(f"/runs?integration=r/a&limit=3&cursor={page1['next_cursor']}")
    page2 = r.json()
    assert [x["id"] for x in page2["runs"]] == ids[::-1][3:6]
    assert [x["id"] for x in server.runs(limit=2, integration="r/a")] == ids[::-1]

    failed = server.get("/runs?status=failed").json()["runs"]
    assert [x["id"] for x in failed] == [c["id"]]
    assert server.get("/runs?root_id=" + b["id"]).json()["runs"][0]["id"] == b["id"]
    since = server.get("/runs?since=2000-01-01T00:00:00.000Z").json()["runs"]
    assert len(since) >= 9
    assert server.get("/runs?since=2999-01-01T00:00:00.000Z").json()["runs"] == []
    error_of(server.get("/runs?status=bogus"), 400)
    error_of(server.get("/runs?limit=-1"), 400)
    error_of(server.get("/runs?cursor=%7Bnot-a-cursor"), 400)


def test_run_record_steps_and_tree(server):
    server.publish(echo("r/child"),
                   integration("r/parent", [call("c", "r/child", input={"v": "{{vars.v}}"}),
                                            set_task("s", {"done": True})]))
    rec = server.execute("r/parent", {"v": 9}).json()
    assert rec["status"] == "succeeded"
    one = server.run(rec["id"])
    assert one["id"] == rec["id"]
    assert [s["task"] for s in one["steps"]] == ["c", "s"]
    assert one["steps"][0]["child_run_ids"] and one["steps"][0]["status"] == "succeeded"
    assert UUID7_RE.match(rec["id"])

    kids = server.get("/runs?parent_id=" + rec["id"]).json()["runs"]
    assert len(kids) == 1 and kids[0]["integration"] == "r/child"
    assert kids[0]["parent_id"] == rec["id"] and kids[0]["root_id"] == rec["id"]
    assert kids[0]["depth"] == 1

    r = server.get(f"/runs/{rec['id']}/tree")
    assert r.status == 200
    tree = r.json()
    assert tree["id"] == rec["id"]
    assert [c["id"] for c in tree["children"]] == [kids[0]["id"]]
    assert tree["children"][0]["children"] == []

    missing = "0190a0a0-0000-7000-8000-000000000000"
    error_of(server.get("/runs/" + missing), 404)
    error_of(server.get(f"/runs/{missing}/tree"), 404)
    error_of(server.post(f"/runs/{missing}/cancel"), 404)
    error_of(server.get("/runs/not-a-uuid"), 404)


def test_cancel_scheduled_run(server):
    server.publish(nop_doc("r/nop"),
                   integration("r/later", [call("c", "r/nop", strategy="async",
                                                delay_ms=600000)]))
    rec = server.execute("r/later", {}).json()
    assert rec["status"] == "succeeded"
    kids = server.get("/runs?parent_id=" + rec["id"]).json()["runs"]
    assert len(kids) == 1
    child = kids[0]
    assert child["status"] == "scheduled"
    assert_time(child["scheduled_at"])
    r = server.post(f"/runs/{child['id']}/cancel")
    assert r.status == 200, r
    assert r.json()["status"] == "cancelled"
    assert server.run(child["id"])["status"] == "cancelled"
    # Cancelling a finished run changes nothing.
    r = server.post(f"/runs/{rec['id']}/cancel")
    assert r.status in (200, 409), r
    assert server.run(rec["id"])["status"] == "succeeded"


def test_graph(server):
    server.publish(echo("g/leaf"),
                   integration("g/root", [call("a", "g/leaf", strategy="sync"),
                                          call("b", "g/leaf", strategy="async")]))
    r = server.get("/graph")
    assert r.status == 200
    g = r.json()
    names = {n["name"] if isinstance(n, dict) else n for n in g["nodes"]}
    assert {"g/leaf", "g/root"} <= names
    edges = [e for e in g["edges"] if e["from"] == "g/root"]
    assert {(e["to"], e["task"], e["strategy"]) for e in edges} == {
        ("g/leaf", "a", "sync"), ("g/leaf", "b", "async")}


def test_metrics(server):
    server.publish(echo("m/e"))
    server.execute("m/e", {"v": 1})
    deadline = time.monotonic() + 2
    while True:  # counters may be bumped just after the answer
        r = server.get("/metrics")
        assert r.status == 200
        text = r.text
        if "braid_runs_finished_total{" in text or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.headers.get("content-type", "").startswith("text/plain")
    for name in ("braid_http_requests_total", "braid_runs_finished_total", "braid_queue_depth"):
        assert f"# TYPE {name}" in text, name
    assert any(line.startswith("braid_runs_finished_total{") and 'm/e' in line
               and 'succeeded' in line for line in text.splitlines()), text
    for line in text.splitlines():
        assert line.startswith("#") or not line or len(line.rsplit(" ", 1)) == 2, line
    assert server.admin not in text


def test_error_bodies_are_json_objects(server):
    for r in (server.get("/nope"), server.get("/integrations/nope"),
              server.request("DELETE", "/runs"), server.get("/runs", token=None),
              server.execute("nope", {})):
        error_of(r)
        assert "json" in r.headers.get("content-type", "")


def test_ctx_doc_publishes(server):
    server.publish(ctx_doc(), nop_doc(), slow_doc())


def test_each_request_leaves_one_log_line(server):
    """One JSON line per answered request: method, path, route, status, duration, the run it
    started and the token that asked (its id, never its secret)."""
    server.publish(integration("log/echo", [set_task("s", {"y": 1})]))
    rec = server.execute("log/echo", {}).json()
    assert server.get("/runs/not-a-run").status == 404
    deadline = time.time() + 10
    lines = []
    while time.time() < deadline:
        lines = [json.loads(x) for x in server.stderr().splitlines() if x.startswith("{")]
        lines = [x for x in lines if x.get("msg") == "request"]
        if any(x["path"] == "/runs/not-a-run" for x in lines):
            break
        time.sleep(0.05)
    execute = [x for x in lines if x["path"] == "/integrations/execute/log/echo"]
    assert len(execute) == 1, lines
    line = execute[0]
    assert list(line)[:3] == ["ts", "level", "msg"] and line["level"] == "info"
    assert line["method"] == "POST" and line["status"] == 200
    assert line["route"] == "/integrations/execute/{name}"
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert line["run_id"] == rec["id"]
    assert line["token_id"].startswith("t_") and server.admin not in json.dumps(line)
    missing = [x for x in lines if x["path"] == "/runs/not-a-run"]
    assert len(missing) == 1 and missing[0]["status"] == 404 and "run_id" not in missing[0]


def test_log_runs_logs_each_finished_run_without_its_values(make_server):
    """--log-runs: one line per finished run (the root and its child alike) with ids, status,
    duration and the error's code; never the run's input, output or messages."""
    server = make_server(args=("--log-runs",))
    server.publish(integration("lr/child", [set_task("s", {"y": "secret-output-7"})]))
    server.publish(integration("lr/root", [call("c", "lr/child"), {
        "id": "f", "type": "fail", "code": "no_luck", "message": "secret-message-9"}]))
    rec = server.execute("lr/root", {"secret": "secret-input-5"}).json()
    assert rec["status"] == "failed", rec
    deadline = time.time() + 10
    runs = []
    while time.time() < deadline and len(runs) < 2:
        lines = [json.loads(x) for x in server.stderr().splitlines() if x.startswith("{")]
        runs = [x for x in lines if x.get("msg") == "run finished"]
        time.sleep(0.05)
    assert len(runs) == 2, runs
    root = next(x for x in runs if x["run_id"] == rec["id"])
    child = next(x for x in runs if x["run_id"] != rec["id"])
    assert root["integration"] == "lr/root" and root["status"] == "failed"
    assert root["error_code"] == "no_luck" and "parent_id" not in root
    assert child["integration"] == "lr/child" and child["status"] == "succeeded"
    assert child["parent_id"] == rec["id"] and child["root_id"] == rec["id"]
    assert isinstance(child["duration_ms"], int) and child["trigger"] == "call"
    text = server.stderr()
    for secret in ("secret-output-7", "secret-message-9", "secret-input-5"):
        assert secret not in text


def test_runs_are_not_logged_by_default(server):
    server.publish(integration("lr/quiet", [set_task("s", {"y": 1})]))
    assert server.execute("lr/quiet", {}).status == 200
    time.sleep(0.2)
    assert '"run finished"' not in server.stderr()
