"""POST /integrations/execute/NAME and /triggers/ID/execute (SPEC §9, §1 "Input context",
§8): sync, async, scheduled children, wait_ms, idempotency, the input context, mode and
version, trigger fan-out, concurrency_limit."""
import sqlite3
import threading
import time

from apilib import (UUID7_RE, assert_time, call, ctx_doc, echo, error_of, failing, integration,
                    nop_doc, set_task, slow_doc)


def test_sync_run_record(server):
    server.publish(echo("x/echo"))
    r = server.execute("x/echo", {"v": 7})
    assert r.status == 200, r
    rec = r.json()
    assert UUID7_RE.match(rec["id"])
    assert rec["integration"] == "x/echo" and rec["version"] == 1
    assert rec["status"] == "succeeded"
    assert rec["output"] == {"v": 7, "echoed": 7}
    assert rec["error"] is None
    assert rec["trigger"] == "api"
    assert isinstance(rec["trigger_info"]["token"], str)
    assert server.admin not in str(rec)
    assert rec["parent_id"] is None and rec["root_id"] == rec["id"] and rec["depth"] == 0
    assert rec["attempt"] == 1
    assert rec["input"]["payload"] == {"v": 7}
    for k in ("created_at", "started_at", "finished_at"):
        assert_time(rec[k])
    # The record is in the store before the answer.
    assert server.run(rec["id"])["status"] == "succeeded"


def test_failed_run_is_200(server):
    server.publish(failing("x/fail", code="nope", message="no way"))
    r = server.execute("x/fail", {})
    assert r.status == 200
    rec = r.json()
    assert rec["status"] == "failed" and rec["output"] is None
    assert rec["error"]["code"] == "nope" and rec["error"]["message"] == "no way"


def test_async_mode_202_then_succeeds(server):
    server.publish(echo("x/echo"))
    r = server.execute("x/echo", {"v": 3}, query="mode=async")
    assert r.status == 202, r
    body = r.json()
    # "running" when the server took the run at once (below), else "queued"
    assert body["status"] in ("queued", "running") and UUID7_RE.match(body["run_id"])
    assert list(body) == ["run_id", "status", "scheduled_at"], body
    assert_time(body["scheduled_at"])
    assert r.headers["location"] == f"/runs/{body['run_id']}"
    assert r.headers["content-type"] == "application/json"
    rec = server.wait_run(body["run_id"])
    assert rec["status"] == "succeeded" and rec["output"]["echoed"] == 3
    assert rec["scheduled_at"] == body["scheduled_at"]


def test_async_run_taken_at_once_is_written_running_and_owned(server):
    """A server with idle workers and nothing queued takes an async run at once: the one write
    that accepts it leaves it running, owned by the server and leased, as a claim would; the
    answer says so."""
    server.publish(nop_doc(), slow_doc())
    time.sleep(0.3)  # the scheduler's first look at the queue, at start
    before = int(time.time() * 1000)
    r = server.execute("t/slow", {"ms": 1500}, query="mode=async")
    assert r.status == 202 and r.json()["status"] == "running", r
    run_id = r.json()["run_id"]
    db = sqlite3.connect(f"file:{server.data}/braid.db?mode=ro", uri=True)
    try:
        status, owner, lease_until, started_at, attempt = db.execute(
            "SELECT status, owner, lease_until, started_at, attempt FROM runs WHERE id=?",
            (run_id,)).fetchone()
    finally:
        db.close()
    assert status == "running" and attempt == 1
    assert owner and lease_until > int(time.time() * 1000)
    assert started_at >= before
    rec = server.wait_run(run_id, timeout=30)
    assert rec["status"] == "succeeded" and rec["output"] == {"slept": 1500}
    assert rec["attempt"] == 1


def test_runs_taken_ahead_go_back_to_the_queue_on_stop(make_server):
    """Runs the server took while its one worker was busy wait in its ready list, running in
    the store; a stop gives them back to the queue, never started, and the next start runs
    them as their first attempt."""
    srv = make_server(["--workers", "1", "--grace-ms", "10000"])
    srv.publish(nop_doc(), slow_doc())
    time.sleep(0.3)
    ids, statuses = [], []
    for _ in range(3):
        r = srv.execute("t/slow", {"ms": 1000}, query="mode=async")
        assert r.status == 202, r
        ids.append(r.json()["run_id"])
        statuses.append(r.json()["status"])
    assert statuses[0] == "running", statuses
    srv.stop()  # the first run ends within the grace period; the others are given back
    db = sqlite3.connect(f"file:{srv.data}/braid.db?mode=ro", uri=True)
    try:
        rows = dict(db.execute(
            "SELECT id, status FROM runs WHERE id IN (?, ?, ?)", ids).fetchall())
    finally:
        db.close()
    assert rows[ids[0]] == "succeeded"
    assert rows[ids[1]] == rows[ids[2]] == "queued", rows
    srv.start()
    for run_id in ids:
        rec = srv.wait_run(run_id, timeout=60)
        assert rec["status"] == "succeeded" and rec["attempt"] == 1, rec


def test_run_async_default_and_mode_override(server):
    server.publish(echo("x/bg", run_async=True))
    r = server.execute("x/bg", {"v": 1})
    assert r.status == 202, r
    server.wait_run(r.json()["run_id"])
    r = server.execute("x/bg", {"v": 2}, query="mode=sync")
    assert r.status == 200 and r.json()["output"]["echoed"] == 2, r


def test_delay_gives_a_scheduled_child_that_runs_when_due(server):
    server.publish(nop_doc("x/nop"),
                   integration("x/later", [call("c", "x/nop", strategy="async", delay_ms=800)]))
    t0 = time.monotonic()
    rec = server.execute("x/later", {}).json()
    assert rec["status"] == "succeeded"
    child = server.get("/runs?parent_id=" + rec["id"]).json()["runs"][0]
    assert child["status"] == "scheduled"
    assert_time(child["scheduled_at"])
    done = server.wait_run(child["id"], timeout=30)
    assert done["status"] == "succeeded"
    assert time.monotonic() - t0 >= 0.7


def test_async_parent_with_delayed_child(server):
    server.publish(nop_doc("x/nop"),
                   integration("x/later", [call("c", "x/nop", strategy="async", delay_ms=300)]))
    r = server.execute("x/later", {}, query="mode=async")
    assert r.status == 202 and r.json()["status"] in ("queued", "running"), r
    parent = server.wait_run(r.json()["run_id"])
    child = server.get("/runs?parent_id=" + parent["id"]).json()["runs"][0]
    assert server.wait_run(child["id"])["status"] == "succeeded"


def test_wait_ms_202_then_the_run_finishes(server):
    server.publish(nop_doc(), slow_doc())
    t0 = time.monotonic()
    r = server.execute("t/slow", {"ms": 1500}, query="wait_ms=200")
    took = time.monotonic() - t0
    assert r.status == 202, r
    body = r.json()
    assert body["status"] == "running"
    assert r.headers["location"] == f"/runs/{body['run_id']}"
    assert took < 1.4, f"answered after {took:.2f}s"
    rec = server.wait_run(body["run_id"], timeout=30)
    assert rec["status"] == "succeeded" and rec["output"] == {"slept": 1500}


def test_wait_ms_0_answers_with_a_committed_run(server):
    """wait_ms=0 answers 202 as soon as the run exists, and only once its record is
    committed: the id it hands out is in history at once, every time."""
    server.publish(nop_doc(), slow_doc())
    for _ in range(10):
        r = server.execute("t/slow", {"ms": 300}, query="wait_ms=0")
        assert r.status == 202, r
        run_id = r.json()["run_id"]
        got = server.get(f"/runs/{run_id}")
        assert got.status == 200, got
        assert got.json()["status"] in ("running", "succeeded")


def test_sync_waits_for_a_slow_run(server):
    server.publish(nop_doc(), slow_doc())
    t0 = time.monotonic()
    r = server.execute("t/slow", {"ms": 700})
    assert r.status == 200 and r.json()["output"] == {"slept": 700}, r
    assert time.monotonic() - t0 >= 0.6


def answered_beside_slow_runs(srv, slow_name, n):
    """Start N executions of SLOW_NAME lasting 2 s at once; meanwhile x/fast must be answered
    within 1.2 s. Returns the slow answers once all have come."""
    results = []

    def slow():
        results.append(srv.execute(slow_name, {"ms": 2000}))

    threads = [threading.Thread(target=slow) for _ in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.4)
    t0 = time.monotonic()
    r = srv.execute("x/fast", {"v": 1})
    assert r.status == 200 and r.json()["output"]["echoed"] == 1
    srv.healthy()
    assert time.monotonic() - t0 < 1.2, "a fast request waited behind slow ones"
    for t in threads:
        t.join(60)
    return results


def test_waiting_sync_requests_do_not_block_the_server(make_server):
    """Issue 3 §2: more slow sync requests than workers still leave the server answering."""
    srv = make_server(["--workers", "2"])
    srv.publish(nop_doc(), slow_doc(), echo("x/fast"))
    results = answered_beside_slow_runs(srv, "t/slow", 6)
    assert [r.status for r in results] == [200] * 6


def test_a_callee_that_starts_waiting_moves_its_callers_off_the_http_threads(make_server):
    """An execution that only computes runs on an HTTP thread; once a new version of a callee
    waits, its callers must go to the executor again, or slow runs would hold every HTTP thread."""
    srv = make_server(["--http-threads", "2"])
    srv.publish(nop_doc(), integration("t/mid", [set_task("s", {"ms": 1})], outputs=["ms"]),
                integration("t/top", [call("c", "t/mid", strategy="sync", input={"ms": "{{vars.ms}}"})],
                            inputs={"ms": {"type": "integer", "default": 1500}},
                            outputs={"slept": "{{tasks.c.result.slept}}"}),
                echo("x/fast"))
    assert srv.execute("t/top", {"ms": 5}).status == 200  # only computes: answered inline
    srv.publish(slow_doc("t/mid"))  # the callee now awaits a delayed child
    results = answered_beside_slow_runs(srv, "t/top", 4)
    assert [r.status for r in results] == [200] * 4
    assert all(r.json()["output"] == {"slept": 2000} for r in results), results[0].json()


def test_idempotency_key(server):
    server.publish(echo("x/echo"), echo("x/other"))
    h = {"Idempotency-Key": "order-42"}
    a = server.execute("x/echo", {"v": 1}, headers=h).json()
    b = server.execute("x/echo", {"v": 2}, headers=h)
    assert b.status == 200
    assert b.json()["id"] == a["id"] and b.json()["output"]["echoed"] == 1
    c = server.execute("x/echo", {"v": 3}, headers={"Idempotency-Key": "order-43"}).json()
    assert c["id"] != a["id"]
    # Scoped to the target integration.
    d = server.execute("x/other", {"v": 4}, headers=h).json()
    assert d["id"] != a["id"] and d["output"]["echoed"] == 4
    assert len(server.runs(integration="x/echo")) == 2
    # Async with a key: the same run id.
    e = server.execute("x/echo", {"v": 5}, query="mode=async", headers={"Idempotency-Key": "k5"})
    f = server.execute("x/echo", {"v": 6}, query="mode=async", headers={"Idempotency-Key": "k5"})
    assert e.status == 202 and f.status in (200, 202)
    f_id = f.json().get("run_id") or f.json().get("id")
    assert f_id == e.json()["run_id"]
    assert server.wait_run(f_id)["output"]["echoed"] == 5


def test_input_context(server):
    server.publish(ctx_doc("x/ctx"))
    r = server.post("/integrations/execute/x/ctx?a=1&b=two%20words&mode=sync",
                    json={"k": [1, 2]},
                    headers={"X-Request-Id": "abc", "Cookie": "session=secret",
                             "X-Mixed-Case": "Value"})
    assert r.status == 200, r
    ctx = r.json()["output"]["input"]
    assert ctx["payload"] == {"k": [1, 2]}
    assert ctx["params"]["a"] == "1" and ctx["params"]["b"] == "two words"
    assert ctx["path"] == "/integrations/execute/x/ctx"
    assert ctx["method"] == "POST"
    assert ctx["fullpath"] in ("/integrations/execute/x/ctx?a=1&b=two%20words&mode=sync",
                               "/integrations/execute/x/ctx?a=1&b=two words&mode=sync")
    hdrs = ctx["headers"]
    assert hdrs["x-request-id"] == "abc" and hdrs["x-mixed-case"] == "Value"
    assert hdrs["content-type"] == "application/json"
    assert all(k == k.lower() for k in hdrs)
    assert "authorization" not in hdrs and "cookie" not in hdrs
    assert server.admin not in r.text and "session=secret" not in r.text
    # The stored record has no secret either.
    assert server.admin not in server.get(f"/runs/{r.json()['id']}").text


def test_payload_forms(server):
    server.publish(ctx_doc("x/ctx"))

    def payload(body, headers=None):
        r = server.post("/integrations/execute/x/ctx", body=body, headers=headers)
        assert r.status == 200, r
        return r.json()["output"]["input"]["payload"]

    assert payload(b"") == {}
    assert payload(b"hello there", {"Content-Type": "text/plain"}) == "hello there"
    assert payload(b"{not json") == "{not json"
    assert payload(b'{"a": 1}') == {"a": 1}
    assert payload(b"[1, 2]", {"Content-Type": "application/json"}) == [1, 2]
    assert payload(b"42", {"Content-Type": "application/json; charset=utf-8"}) == 42
    err = error_of(server.post("/integrations/execute/x/ctx", body=b'{"a": 1,\n "b": }',
                               headers={"Content-Type": "application/json"}),
                   400, "input_invalid")
    assert "line" in str(err).lower() or err.get("detail", {}).get("line") == 2, err


def test_version_param(server):
    server.publish(integration("x/v", [set_task("s", {"which": 1})]))
    server.publish(integration("x/v", [set_task("s", {"which": 2})]))
    assert server.execute("x/v", {}).json()["output"] == {"which": 2}
    r = server.execute("x/v", {}, query="version=1").json()
    assert r["output"] == {"which": 1} and r["version"] == 1
    error_of(server.execute("x/v", {}, query="version=3"), 404)
    for bad in ("0", "-1", "two"):
        r = server.execute("x/v", {}, query="version=" + bad)
        assert r.status in (400, 404), r
        error_of(r)


def test_trigger_fan_out(server):
    server.publish(echo("x/t1", triggers=[{"type": "api", "id": "fan"}]),
                   integration("x/t2", [set_task("s", {"twice": "{{vars.v * 2}}"})],
                               triggers=[{"type": "api", "id": "fan"}]),
                   echo("x/t3", triggers=[{"type": "api", "id": "elsewhere"}]))
    r = server.post("/triggers/fan/execute", json={"v": 4})
    assert r.status == 200, r
    runs = sorted(r.json()["runs"], key=lambda x: x["integration"])
    assert [x["integration"] for x in runs] == ["x/t1", "x/t2"]
    assert runs[0]["output"]["echoed"] == 4 and runs[1]["output"]["twice"] == 8
    for x in runs:
        assert x["status"] == "succeeded"
        assert server.run(x.get("run_id") or x["id"])["trigger"] in ("api", "trigger")
    assert server.runs(integration="x/t3") == []
    r = server.post("/triggers/fan/execute?mode=async", json={"v": 5})
    assert r.status == 202, r
    error_of(server.post("/triggers/nobody/execute", json={}), 404)


def test_concurrency_limit_429(server):
    server.publish(nop_doc(), slow_doc("x/one", max_concurrency=1))
    first = server.execute("x/one", {"ms": 2500}, query="mode=async").json()["run_id"]
    server.wait_run(first, statuses=("running",), timeout=20)
    r = server.execute("x/one", {"ms": 10})
    error_of(r, 429, "concurrency_limit")
    assert server.wait_run(first)["status"] == "succeeded"


def test_call_depth_setting(make_server):
    srv = make_server(["--max-call-depth", "3"])
    srv.publish(integration("x/rec", [call("again", "x/rec", strategy="sync")]))
    rec = srv.execute("x/rec", {}).json()
    assert rec["status"] == "failed" and rec["error"]["code"] == "call_depth_exceeded"
    assert sorted(r["depth"] for r in srv.runs(root_id=rec["id"])) == [0, 1, 2, 3]
