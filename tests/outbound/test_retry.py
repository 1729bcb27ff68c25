"""Retries of http tasks (SPEC §2 retry, §4): the default `on` list, the POST/PATCH rule,
Idempotency-Key on every attempt, and the W3C traceparent header."""
import re
import uuid

import pytest

from conftest import call, execute, http_task, integration, outcome, probe, publish

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
FAST = {"max_attempts": 3, "initial_ms": 10, "jitter": False}


@pytest.fixture
def srv(allowed_server):
    return allowed_server


def key():
    return uuid.uuid4().hex


def flaky(up, k, fail, status=503):
    return up.base + f"/flaky?key={k}&fail={fail}&status={status}"


def test_no_retry_by_default(srv, up):
    k = key()
    publish(srv, probe("r/none", http_task("h", "{{vars.url}}")))
    o = outcome(srv, "r/none", {"url": flaky(up, k, 1)})["o"]
    assert o["success"] is False and o["attempts"] == 1
    assert o["error"]["code"] == "http_status" and o["error"]["status"] == 503
    assert len(up.seen[k]) == 1


def test_get_retried_until_success(srv, up):
    k = key()
    publish(srv, probe("r/get", http_task("h", "{{vars.url}}", retry=FAST)))
    out = outcome(srv, "r/get", {"url": flaky(up, k, 2)})
    o = out["o"]
    assert o["success"] is True and o["attempts"] == 3, o
    assert out["result"] == {"hit": 3, "ok": True}
    assert len(up.seen[k]) == 3


def test_get_gives_up_after_max_attempts(srv, up):
    k = key()
    publish(srv, probe("r/give-up", http_task("h", "{{vars.url}}", retry=FAST)))
    o = outcome(srv, "r/give-up", {"url": flaky(up, k, 10)})["o"]
    assert o["success"] is False and o["attempts"] == 3
    assert o["error"]["code"] == "http_status" and o["status"] == 503
    assert len(up.seen[k]) == 3


@pytest.mark.parametrize("status,retried", [(503, True), (500, True), (502, True),
                                            (429, True), (404, False), (400, False),
                                            (409, False)])
def test_default_on_list(srv, up, status, retried):
    k = key()
    publish(srv, probe("r/on", http_task("h", "{{vars.url}}", retry=FAST)))
    o = outcome(srv, "r/on", {"url": flaky(up, k, 1, status)})["o"]
    if retried:
        assert o["success"] is True and o["attempts"] == 2, o
        assert len(up.seen[k]) == 2
    else:
        assert o["success"] is False and o["attempts"] == 1, o
        assert len(up.seen[k]) == 1


def test_explicit_on_list(srv, up):
    k = key()
    publish(srv, probe("r/on404", http_task("h", "{{vars.url}}",
                                            retry=dict(FAST, on=["4xx"]))))
    o = outcome(srv, "r/on404", {"url": flaky(up, k, 1, 404)})["o"]
    assert o["success"] is True and o["attempts"] == 2
    k = key()
    publish(srv, probe("r/on-timeout-only", http_task("h", "{{vars.url}}",
                                                      retry=dict(FAST, on=["timeout"]))))
    o = outcome(srv, "r/on-timeout-only", {"url": flaky(up, k, 1, 503)})["o"]
    assert o["success"] is False and o["attempts"] == 1


def test_timeout_is_retried(srv, up):
    publish(srv, probe("r/timeout", http_task("h", up.url("/slow?ms=2000"), timeout_ms=200,
                                              retry=dict(FAST, max_attempts=2))))
    o = outcome(srv, "r/timeout")["o"]
    assert o["success"] is False and o["attempts"] == 2
    assert o["error"]["code"] == "timeout"
    assert up.hits_of("/slow") == 2


def test_network_is_retried(srv, up):
    publish(srv, probe("r/network", http_task("h", "http://127.0.0.1:1/",
                                              retry=dict(FAST, max_attempts=2))))
    o = outcome(srv, "r/network")["o"]
    assert o["success"] is False and o["attempts"] == 2 and o["error"]["code"] == "network"


def test_blocked_is_not_retried(srv, up):
    publish(srv, probe("r/blocked", http_task("h", "http://127.0.0.2:%d/json" % up.port,
                                              retry=FAST)))
    o = outcome(srv, "r/blocked")["o"]
    assert o["error"]["code"] == "blocked" and o["attempts"] == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_integration_retry_applies_to_idempotent_methods(srv, up, method):
    k = key()
    name = "r/int-" + method.lower()
    publish(srv, probe(name, http_task("h", "{{vars.url}}", method=method), retry=FAST))
    o = outcome(srv, name, {"url": flaky(up, k, 1)})["o"]
    assert o["success"] is True and o["attempts"] == 2, o
    assert len(up.seen[k]) == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_patch_not_retried_by_integration_retry(srv, up, method):
    k = key()
    name = "r/int-" + method.lower()
    publish(srv, probe(name, http_task("h", "{{vars.url}}", method=method, body={"a": 1}),
                       retry=FAST))
    o = outcome(srv, name, {"url": flaky(up, k, 1)})["o"]
    assert o["success"] is False and o["attempts"] == 1, o
    assert len(up.seen[k]) == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_patch_retried_when_task_sets_retry(srv, up, method):
    k = key()
    name = "r/task-" + method.lower()
    publish(srv, probe(name, http_task("h", "{{vars.url}}", method=method, body={"a": 1},
                                       retry=FAST)))
    o = outcome(srv, name, {"url": flaky(up, k, 2)})["o"]
    assert o["success"] is True and o["attempts"] == 3, o
    assert len(up.seen[k]) == 3


def test_idempotency_key_same_on_every_attempt(srv, up):
    k = key()
    publish(srv, probe("r/idem", http_task("h", "{{vars.url}}", method="POST", body={"a": 1},
                                           retry=FAST)))
    assert outcome(srv, "r/idem", {"url": flaky(up, k, 2)})["o"]["attempts"] == 3
    keys = [h.get("idempotency-key") for h in up.seen[k]]
    assert len(keys) == 3 and keys[0], keys
    assert len(set(keys)) == 1, keys
    # A second run is another operation: another key.
    k2 = key()
    outcome(srv, "r/idem", {"url": flaky(up, k2, 0)})
    assert up.seen[k2][0]["idempotency-key"] not in keys


def test_idempotency_key_over_http_endpoint(srv, up):
    """The fixture's /seen route tells the same (the helpers read it in-process)."""
    import json
    import urllib.request
    k = key()
    publish(srv, probe("r/idem2", http_task("h", "{{vars.url}}", retry=FAST)))
    outcome(srv, "r/idem2", {"url": flaky(up, k, 1)})
    with urllib.request.urlopen(up.url(f"/seen?key={k}"), timeout=10) as r:
        seen = json.loads(r.read())
    assert len(seen) == 2 and seen[0]["idempotency-key"] == seen[1]["idempotency-key"]


def test_distinct_tasks_distinct_keys(srv, up):
    k1, k2 = key(), key()
    publish(srv, integration("r/two", [
        http_task("a", "{{vars.u1}}", method="POST", body={}),
        http_task("b", "{{vars.u2}}", method="POST", body={}),
    ]))
    rec = execute(srv, "r/two", {"u1": flaky(up, k1, 0), "u2": flaky(up, k2, 0)})
    assert rec["status"] == "succeeded"
    assert up.seen[k1][0]["idempotency-key"] != up.seen[k2][0]["idempotency-key"]


def _trace(h):
    tp = h.get("traceparent")
    assert tp, f"no traceparent header in {h}"
    m = TRACEPARENT_RE.match(tp)
    assert m, f"malformed traceparent {tp!r}"
    return m.group(1), m.group(2)


def test_traceparent_is_the_root_run(srv, up):
    publish(srv, integration("r/trace", [http_task("h", up.url("/echo"))],
                             outputs={"echo": "{{vars.httpResult}}"}))
    rec = execute(srv, "r/trace")
    trace, span = _trace(rec["output"]["echo"]["headers"])
    assert trace == rec["id"].replace("-", "")
    assert span != "0" * 16


def test_traceparent_same_on_retries(srv, up):
    k = key()
    publish(srv, probe("r/trace-retry", http_task("h", "{{vars.url}}", retry=FAST)))
    rec = execute(srv, "r/trace-retry", {"url": flaky(up, k, 2)})
    traces = {_trace(h)[0] for h in up.seen[k]}
    assert traces == {rec["id"].replace("-", "")}


def test_child_call_carries_the_root_trace(srv, up):
    publish(srv, integration("r/trace-child", [http_task("h", up.url("/echo"))],
                             outputs={"echo": "{{vars.httpResult}}"}))
    publish(srv, integration("r/trace-mid", [call("c", "r/trace-child", strategy="sync")],
                             outputs={"echo": "{{tasks.c.result.echo}}"}))
    publish(srv, integration("r/trace-root", [
        http_task("h", up.url("/echo")),
        call("c", "r/trace-mid", strategy="sync"),
    ], outputs={"mine": "{{vars.httpResult}}", "child": "{{tasks.c.result.echo}}"}))
    rec = execute(srv, "r/trace-root")
    assert rec["status"] == "succeeded", rec
    root = rec["id"].replace("-", "")
    t_root, s_root = _trace(rec["output"]["mine"]["headers"])
    t_child, s_child = _trace(rec["output"]["child"]["headers"])
    assert t_root == root and t_child == root
    assert s_root != s_child


def test_incoming_traceparent_is_continued(srv, up):
    publish(srv, integration("r/trace-in", [http_task("h", up.url("/echo"))],
                             outputs={"echo": "{{vars.httpResult}}"}))
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    rec = execute(srv, "r/trace-in", headers={"traceparent": incoming})
    trace, span = _trace(rec["output"]["echo"]["headers"])
    assert trace == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span != "00f067aa0ba902b7"
