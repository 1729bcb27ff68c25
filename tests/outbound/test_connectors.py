"""Connectors, connections and connector tasks over the HTTP API (SPEC §5, §9): publishing
connectors, managing connections (secrets write-only), running operations, version pinning,
publish-time checks, and connector tasks sharing http's outcomes, guard and retry rules."""
import json
import uuid

import pytest

from conftest import (execute, http_task, integration, publish, publish_connector,
                      put_connection, set_task)

SECRET = "sk_live_" + uuid.uuid4().hex


def connector_doc(slug="echoapi", **over):
    doc = {
        "slug": slug,
        "base_url": "{{conn.base_url}}",
        "config": {"base_url": {"type": "string", "required": True},
                   "tenant": {"type": "string", "default": "t0"}},
        "secrets": ["api_key"],
        "auth": {"type": "bearer", "token": "{{secret.api_key}}"},
        "operations": {
            "create_invoice": {
                "method": "POST", "path": "/echo",
                "inputs": {"lines": {"type": "array", "required": True}},
                "headers": {"X-Tenant": "{{conn.tenant}}"},
                "body": {"lines": "{{input.lines}}"},
                "outputs": {"echoed_lines": "body.json.lines", "echoed_method": "body.method"},
            },
            "status": {
                "method": "GET", "path": "/status/{{input.code}}",
                "inputs": {"code": {"type": "integer", "required": True}},
                "outputs": {"got": "body.status"},
            },
            "flaky_get": {
                "method": "GET", "path": "/flaky",
                "query": {"key": "{{input.key}}", "fail": "{{input.fail}}"},
                "inputs": {"key": {"type": "string"}, "fail": {"type": "integer"}},
            },
            "flaky_post": {
                "method": "POST", "path": "/flaky",
                "query": {"key": "{{input.key}}", "fail": "{{input.fail}}"},
                "inputs": {"key": {"type": "string"}, "fail": {"type": "integer"}},
                "body": {"k": "{{input.key}}"},
            },
        },
    }
    doc.update(over)
    return doc


def connector_task(tid="bill", operation="create_invoice", connection="echo-prod",
                   connector="echoapi", **more):
    t = {"id": tid, "type": "connector", "connector": connector, "operation": operation,
         "connection": connection}
    t.update(more)
    return t


@pytest.fixture(scope="module")
def srv(allowed_server, upstream):
    publish_connector(allowed_server, connector_doc())
    put_connection(allowed_server, "echo-prod", "echoapi", {"base_url": upstream.base},
                   {"api_key": SECRET})
    return allowed_server


# ---- connectors ----

def test_publish_connector_versions(srv):
    doc = connector_doc("c-versions")
    r = srv.put("/connectors/c-versions", json=doc)
    assert r.status == 201, r
    assert r.json()["version"] == 1
    r = srv.put("/connectors/c-versions", json=doc)
    assert r.status == 200 and r.json()["version"] == 1, r
    doc2 = connector_doc("c-versions", description="second")
    doc2["operations"]["status"]["path"] = "/status/{{input.code}}?v=2"
    r = srv.put("/connectors/c-versions", json=doc2)
    assert r.status == 201 and r.json()["version"] == 2, r
    r = srv.get("/connectors/c-versions")
    assert r.status == 200
    got = r.json()
    assert got["slug"] == "c-versions" and got.get("version") in (2, None), got
    r = srv.get("/connectors")
    assert r.status == 200
    assert "c-versions" in r.text and "echoapi" in r.text


@pytest.mark.parametrize("broken", [
    {"base_url": "{{conn.base_url"},                        # template syntax
    {"slug": "Bad Slug"},
    {"operations": {"op": {"method": "FETCH", "path": "/"}}},
    {"auth": {"type": "kerberos"}},
    {"operations": {"op": {"path": "/{{vars.x}}"}}},         # vars is not a connector root
])
def test_publish_connector_invalid(srv, broken):
    doc = connector_doc("c-bad")
    doc.update(broken)
    r = srv.put("/connectors/c-bad", json=doc)
    assert r.status == 422, r
    assert r.json()["error"]["detail"]["errors"], r


def test_connector_slug_must_match_path(srv):
    r = srv.put("/connectors/other-slug", json=connector_doc("c-mismatch"))
    assert r.status in (400, 422), r


def test_unknown_connector_is_404(srv):
    assert srv.get("/connectors/nope-nothing").status == 404


# ---- connections ----

def test_connection_lifecycle(srv, up):
    value = "conn-secret-" + uuid.uuid4().hex
    body = {"connector": "echoapi", "config": {"base_url": up.base},
            "secrets": {"api_key": value}}
    r = srv.put("/connections/life", json=body)
    assert r.status == 201, r
    assert value not in r.text
    r = srv.put("/connections/life", json=body)
    assert r.status == 200, r
    assert value not in r.text
    r = srv.get("/connections/life")
    assert r.status == 200, r
    assert value not in r.text
    c = r.json()
    assert c["id"] == "life" and c["connector"] == "echoapi"
    assert c["config"]["base_url"] == up.base
    assert isinstance(c["secrets"], list) and len(c["secrets"]) == 1
    s = c["secrets"][0]
    assert s["name"] == "api_key" and isinstance(s["updated_at"], str)
    assert set(s) <= {"name", "updated_at"}, s
    r = srv.get("/connections")
    assert r.status == 200 and value not in r.text
    doc = r.json()
    items = doc["connections"] if isinstance(doc, dict) else doc
    assert "life" in [i["id"] for i in items]
    r = srv.delete("/connections/life")
    assert r.status == 204, r
    assert srv.get("/connections/life").status == 404
    assert srv.delete("/connections/life").status == 404


@pytest.mark.parametrize("body,statuses", [
    ({"connector": "no-such-connector", "config": {}, "secrets": {}}, (404, 422)),
    ({"connector": "echoapi", "config": {}, "secrets": {"api_key": "abcdef"}}, (400, 422)),
    ({"connector": "echoapi", "config": {"base_url": 5}, "secrets": {}}, (400, 422)),
    ({"connector": "echoapi", "config": {"base_url": "http://x"},
      "secrets": {"not_declared": "abcdef"}}, (400, 422)),
    ({"connector": "echoapi", "config": {"base_url": "http://x"},
      "secrets": {"api_key": 12345}}, (400, 422)),
    ({"config": {}}, (400, 422)),
])
def test_connection_invalid(srv, body, statuses):
    r = srv.put("/connections/bad-conn", json=body)
    assert r.status in statuses, r
    assert srv.get("/connections/bad-conn").status == 404


def test_viewer_cannot_write_connections(srv):
    tok, _ = srv.token("viewer")
    r = srv.put("/connections/v-conn", token=tok,
                json={"connector": "echoapi", "config": {"base_url": "http://x"},
                      "secrets": {"api_key": "abcdefgh"}})
    assert r.status == 403, r
    r = srv.get("/connections/echo-prod", token=tok)
    assert r.status in (200, 403), r
    assert SECRET not in r.text


# ---- connector tasks ----

def test_connector_task_runs(srv, up):
    publish(srv, integration("c/bill", [connector_task(input={"lines": "{{vars.lines}}"})]))
    rec = execute(srv, "c/bill", {"lines": [{"sku": "a", "qty": 2}]})
    assert rec["status"] == "succeeded", rec
    out = rec["output"]
    assert out["integrationStatus"] == 200 and out["integrationOk"] is True
    assert out["echoed_lines"] == [{"sku": "a", "qty": 2}]
    assert out["echoed_method"] == "POST"
    reqs = up.requests_to("/echo")
    assert len(reqs) == 1
    h = {k.lower(): v for k, v in reqs[0]["headers"]}
    assert h["authorization"] == "Bearer " + SECRET
    assert h["x-tenant"] == "t0"
    assert h["content-type"].startswith("application/json")
    assert json.loads(reqs[0]["body"]) == {"lines": [{"sku": "a", "qty": 2}]}
    assert SECRET not in json.dumps(rec)


def test_connector_task_outcome_and_output_override(srv, up):
    publish(srv, integration("c/bill2", [
        connector_task(input={"lines": [1, 2]}, output={"m": "body.method", "st": "status"},
                       continue_on_error=True),
    ], outputs={"o": "{{tasks.bill}}", "m": "{{vars.m}}", "st": "{{vars.st}}",
                "lines": "{{vars.echoed_lines}}"}))
    out = execute(srv, "c/bill2")["output"]
    o = out["o"]
    assert o["success"] is True and o["status"] == 200 and o["attempts"] == 1
    assert set(o["result"]) >= {"status", "headers", "body"}
    assert out["m"] == "POST" and out["st"] == 200
    assert out["lines"] == [1, 2]  # the operation's default mappings stay


def test_connector_task_http_failure(srv, up):
    publish(srv, integration("c/fail", [
        connector_task(operation="status", input={"code": 502}, continue_on_error=True),
    ], outputs={"o": "{{tasks.bill}}", "s": "{{vars.integrationStatus}}",
                "ok": "{{vars.integrationOk}}"}))
    out = execute(srv, "c/fail")["output"]
    assert out["o"]["success"] is False
    assert out["o"]["error"]["code"] == "http_status" and out["o"]["error"]["status"] == 502
    assert out["s"] == 502 and out["ok"] is False


def test_connector_cases(srv, up):
    publish(srv, integration("c/cases", [
        connector_task(operation="status", input={"code": "{{vars.code}}"},
                       cases={"404": "nf", "4xx": "c4", "5xx": "c5", "success": "ok"}),
        set_task("nf", {"r": "404"}, next="end"),
        set_task("c4", {"r": "4xx"}, next="end"),
        set_task("c5", {"r": "5xx"}, next="end"),
        set_task("ok", {"r": "ok"}, next="end"),
    ], outputs=["r"]))
    assert execute(srv, "c/cases", {"code": 404})["output"]["r"] == "404"
    assert execute(srv, "c/cases", {"code": 418})["output"]["r"] == "4xx"
    assert execute(srv, "c/cases", {"code": 500})["output"]["r"] == "5xx"
    assert execute(srv, "c/cases", {"code": 200})["output"]["r"] == "ok"


def test_connector_version_is_pinned(srv, up):
    publish_connector(srv, connector_doc("pinned"))
    put_connection(srv, "pinned-conn", "pinned", {"base_url": up.base}, {"api_key": SECRET})
    publish(srv, integration("c/pinned", [
        connector_task(connector="pinned", connection="pinned-conn", operation="status",
                       input={"code": 200}),
    ], outputs=["got", "integrationStatus"]))
    doc = srv.get("/integrations/c/pinned").json()
    assert doc["tasks"][0]["version"] == 1, doc
    # v2 of the connector sends the same operation elsewhere
    v2 = connector_doc("pinned")
    v2["operations"]["status"]["path"] = "/status/500"
    r = publish_connector(srv, v2)
    assert r.json()["version"] == 2
    rec = execute(srv, "c/pinned")
    assert rec["status"] == "succeeded", rec
    assert rec["output"]["integrationStatus"] == 200
    assert up.hits_of("/status/200") == 1 and up.hits_of("/status/500") == 0
    # a new integration pins the newest version
    publish(srv, integration("c/pinned2", [
        connector_task(connector="pinned", connection="pinned-conn", operation="status",
                       input={"code": 200}, continue_on_error=True),
    ], outputs=["integrationStatus"]))
    assert srv.get("/integrations/c/pinned2").json()["tasks"][0]["version"] == 2
    assert execute(srv, "c/pinned2")["output"]["integrationStatus"] == 500


def test_explicit_version(srv, up):
    publish(srv, integration("c/v1", [
        connector_task(connector="pinned", connection="pinned-conn", operation="status",
                       version=1, input={"code": 201}),
    ], outputs=["integrationStatus"]))
    assert execute(srv, "c/v1")["output"]["integrationStatus"] == 201
    r = srv.put("/integrations/c/v99", json=integration("c/v99", [
        connector_task(connector="pinned", connection="pinned-conn", operation="status",
                       version=99, input={"code": 201})]))
    assert r.status == 422, r


@pytest.mark.parametrize("task,pointer_part", [
    (connector_task(connector="nope"), "connector"),
    (connector_task(operation="nope"), "operation"),
    (connector_task(connection="nope"), "connection"),
    (connector_task(input={}), "input"),                   # required input lines missing
])
def test_publish_checks_connector_tasks(srv, task, pointer_part):
    r = srv.put("/integrations/c/badtask", json=integration("c/badtask", [task]))
    assert r.status == 422, r
    errs = r.json()["error"]["detail"]["errors"]
    assert any(e["pointer"].startswith("/tasks/0") for e in errs), errs


def test_connection_of_another_connector_refused(srv, up):
    publish_connector(srv, connector_doc("otherapi"))
    put_connection(srv, "other-conn", "otherapi", {"base_url": up.base}, {"api_key": "abcdefgh"})
    r = srv.put("/integrations/c/mismatch", json=integration("c/mismatch", [
        connector_task(connection="other-conn", input={"lines": []})]))
    assert r.status == 422, r


@pytest.mark.parametrize("where", ["set", "fail", "call", "output"])
def test_secret_templates_only_in_request_fields(srv, where):
    if where == "set":
        tasks = [set_task("s", {"x": "{{secret.api_key}}"})]
        extra = {}
    elif where == "fail":
        tasks = [{"id": "f", "type": "fail", "code": "x", "message": "{{secret.api_key}}"}]
        extra = {}
    elif where == "call":
        tasks = [{"id": "c", "type": "call_integration", "integration": "c/bill",
                  "input": {"lines": "{{secret.api_key}}"}}]
        extra = {}
    else:
        tasks = [set_task("s", {"x": 1})]
        extra = {"outputs": {"leak": "{{secret.api_key}}"}}
    r = srv.put("/integrations/c/secret-misuse", json=integration("c/secret-misuse", tasks,
                                                                    **extra))
    assert r.status == 422, r


def test_http_task_with_connection(srv, up):
    publish(srv, integration("c/http-conn", [http_task(
        "h", "{{conn.base_url}}/echo", connection="echo-prod",
        headers={"X-Key": "{{secret.api_key}}", "X-Tenant": "{{conn.tenant}}"})],
        outputs={"echo": "{{vars.httpResult}}"}))
    rec = execute(srv, "c/http-conn")
    assert rec["status"] == "succeeded", rec
    got = up.requests_to("/echo")[0]
    h = {k.lower(): v for k, v in got["headers"]}
    assert h["x-key"] == SECRET and h["x-tenant"] == "t0"
    # the upstream echoed the secret back: scrubbed in the run record
    assert rec["output"]["echo"]["headers"]["x-key"] == "[secret]"
    assert SECRET not in json.dumps(rec)


def test_connection_deleted_after_publish(srv, up):
    put_connection(srv, "short-lived", "echoapi", {"base_url": up.base}, {"api_key": "abcdefgh"})
    publish(srv, integration("c/gone", [connector_task(connection="short-lived",
                                                       input={"lines": []})]))
    assert srv.delete("/connections/short-lived").status == 204
    rec = execute(srv, "c/gone")
    assert rec["status"] == "failed" and rec["error"]["code"] == "connection_not_found", rec
    assert up.hits_of("/echo") == 0


def test_connection_replaced_secret_is_used(srv, up):
    put_connection(srv, "rotating", "echoapi", {"base_url": up.base}, {"api_key": "first-abc"})
    publish(srv, integration("c/rot", [connector_task(connection="rotating",
                                                      input={"lines": []})]))
    execute(srv, "c/rot")
    put_connection(srv, "rotating", "echoapi", {"base_url": up.base},
                   {"api_key": "second-xyz"})
    execute(srv, "c/rot")
    auths = [dict((k.lower(), v) for k, v in r["headers"])["authorization"]
             for r in up.requests_to("/echo")]
    assert auths == ["Bearer first-abc", "Bearer second-xyz"]


# ---- shared rules with http ----

def test_connector_guard(srv, up):
    put_connection(srv, "refused", "echoapi", {"base_url": f"http://127.0.0.2:{up.port}"},
                   {"api_key": "abcdefgh"})
    publish(srv, integration("c/refused", [connector_task(connection="refused",
                                                          input={"lines": []},
                                                          continue_on_error=True)],
                             outputs={"o": "{{tasks.bill}}", "s": "{{vars.integrationStatus}}"}))
    out = execute(srv, "c/refused")["output"]
    assert out["o"]["error"]["code"] == "blocked" and out["s"] == 0
    assert up.total_hits() == 0


def test_connector_guard_on_default_server(guarded_server, upstream):
    upstream.reset()
    publish_connector(guarded_server, connector_doc())
    put_connection(guarded_server, "echo-prod", "echoapi", {"base_url": upstream.base},
                   {"api_key": SECRET})
    publish(guarded_server, integration("c/g", [connector_task(input={"lines": []})]))
    rec = execute(guarded_server, "c/g")
    assert rec["status"] == "failed" and rec["error"]["code"] == "blocked", rec
    assert upstream.total_hits() == 0


def test_connector_get_retried_by_integration_retry(srv, up):
    k = uuid.uuid4().hex
    publish(srv, integration("c/rget", [connector_task(operation="flaky_get",
                                                       input={"key": k, "fail": 1},
                                                       continue_on_error=True)],
                             outputs={"o": "{{tasks.bill}}"},
                             retry={"max_attempts": 3, "initial_ms": 10}))
    o = execute(srv, "c/rget")["output"]["o"]
    assert o["success"] is True and o["attempts"] == 2


def test_connector_post_needs_task_retry(srv, up):
    k = uuid.uuid4().hex
    publish(srv, integration("c/rpost", [connector_task(operation="flaky_post",
                                                        input={"key": k, "fail": 1},
                                                        continue_on_error=True)],
                             outputs={"o": "{{tasks.bill}}"},
                             retry={"max_attempts": 3, "initial_ms": 10}))
    o = execute(srv, "c/rpost")["output"]["o"]
    assert o["success"] is False and o["attempts"] == 1
    k = uuid.uuid4().hex
    publish(srv, integration("c/rpost2", [connector_task(
        operation="flaky_post", input={"key": k, "fail": 2}, continue_on_error=True,
        retry={"max_attempts": 3, "initial_ms": 10})], outputs={"o": "{{tasks.bill}}"}))
    o = execute(srv, "c/rpost2")["output"]["o"]
    assert o["success"] is True and o["attempts"] == 3
    keys = {h["idempotency-key"] for h in up.seen[k]}
    assert len(up.seen[k]) == 3 and len(keys) == 1


def test_connector_traceparent(srv, up):
    publish(srv, integration("c/trace", [connector_task(input={"lines": []})],
                             outputs=["integrationStatus"]))
    rec = execute(srv, "c/trace")
    h = {k.lower(): v for k, v in up.requests_to("/echo")[0]["headers"]}
    assert h["traceparent"].split("-")[1] == rec["id"].replace("-", "")


def test_secret_null_removes_it(srv, up):
    put_connection(srv, "nulls", "echoapi", {"base_url": up.base}, {"api_key": "abcdefgh123"})
    assert [s["name"] for s in srv.get("/connections/nulls").json()["secrets"]] == ["api_key"]
    r = srv.put("/connections/nulls", json={"connector": "echoapi",
                                            "config": {"base_url": up.base},
                                            "secrets": {"api_key": None}})
    assert r.status == 200, r
    assert srv.get("/connections/nulls").json()["secrets"] == []


@pytest.mark.parametrize("task", [
    http_task("h", "http://127.0.0.1:1/", headers={"X-K": "{{secret.api_key}}"}),
    http_task("h", "{{conn.base_url}}/echo"),
    http_task("h", "http://127.0.0.1:1/", connection="no-such-connection"),
])
def test_http_secret_needs_a_connection(srv, task):
    """secret.* and conn.* come only from a `connection`, which must exist at publish (SPEC §1
    "connections must exist")."""
    r = srv.put("/integrations/c/http-secret", json=integration("c/http-secret", [task]))
    assert r.status == 422, r


def test_connection_config_defaults_and_updated_at(srv, up):
    put_connection(srv, "dflt", "echoapi", {"base_url": up.base}, {"api_key": "abcdefgh123"})
    c1 = srv.get("/connections/dflt").json()
    assert c1["config"] == {"base_url": up.base, "tenant": "t0"}
    put_connection(srv, "dflt", "echoapi", {"base_url": up.base, "tenant": "t9"},
                   {"api_key": "zyxwvut987"})
    c2 = srv.get("/connections/dflt").json()
    assert c2["config"]["tenant"] == "t9"
    assert c2["secrets"][0]["updated_at"] >= c1["secrets"][0]["updated_at"]


def test_http_task_missing_connection_at_run(srv, up):
    put_connection(srv, "brief", "echoapi", {"base_url": up.base}, {"api_key": "abcdefgh123"})
    publish(srv, integration("c/http-gone", [http_task(
        "h", "{{conn.base_url}}/echo", connection="brief",
        headers={"X-K": "{{secret.api_key}}"})]))
    assert srv.delete("/connections/brief").status == 204
    rec = execute(srv, "c/http-gone")
    assert rec["status"] == "failed" and rec["error"]["code"] == "connection_not_found", rec
    assert up.total_hits() == 0
