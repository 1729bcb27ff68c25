"""The secret canary (SPEC §5 "Scrubbing"): a connection with two random secrets is used by
connector and http tasks (bearer, basic, custom headers, query, body) against an upstream
(/echo-secret) that echoes every header, query value and body back in headers and body, raw
and base64, base64url, percent-encoded and JSON-escaped. Afterwards no form of either secret
may appear in any API answer, any line the server printed, any byte of any file in the data
directory (braid.db, -wal, -shm: read raw), or any CLI output about those runs."""
import base64
import json
import os
import re
import secrets as pysecrets
import string
import urllib.parse

import pytest

from conftest import (ALLOW, apilib, e2e, execute, http_task, integration, publish,
                      publish_connector, put_connection, set_task)

ALPHABET = string.ascii_letters + string.digits


def random_secret(tag):
    core = "".join(pysecrets.choice(ALPHABET) for _ in range(24))
    # characters that change under JSON escaping, percent-encoding and base64 alignment
    return f"{tag}_{core}\"\\/+=%?~'{pysecrets.token_hex(6)}"


def b64_cores(raw):
    """The base64 characters that depend on RAW alone when it sits 0, 1 or 2 bytes into a
    longer base64 stream (an echoed `Authorization: Basic` header), standard and url."""
    out = set()
    for k in range(3):
        start = -(-8 * k // 6)
        end = (8 * k + 8 * len(raw)) // 6
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            core = enc(b"\0" * k + raw + b"\0\0\0").decode()[start:end]
            if len(core) >= 8:
                out.add(core)
    return out


def all_forms(value):
    raw = value.encode()
    j = json.dumps(value)[1:-1]
    forms = {
        "raw": value,
        "base64": base64.b64encode(raw).decode(),
        "base64-nopad": base64.b64encode(raw).decode().rstrip("="),
        "base64url": base64.urlsafe_b64encode(raw).decode(),
        "base64url-nopad": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "percent": urllib.parse.quote(value, safe=""),
        "percent-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                                urllib.parse.quote(value, safe="")),
        "json": j,
        "json-in-json": json.dumps(j)[1:-1],
    }
    for i, c in enumerate(sorted(b64_cores(raw))):
        forms[f"base64-core{i}"] = c
    return {k: v.encode() for k, v in forms.items()}


class Canary:
    def __init__(self):
        self.api_key = random_secret("ak")
        self.password = random_secret("pw")
        self.forms = {}
        for name, v in (("api_key", self.api_key), ("password", self.password)):
            for f, b in all_forms(v).items():
                self.forms[f"{name}/{f}"] = b

    def leaks(self, blob):
        if isinstance(blob, str):
            blob = blob.encode("utf-8", "surrogateescape")
        return sorted(f for f, b in self.forms.items() if b in blob)

    def check(self, where, blob):
        found = self.leaks(blob)
        if found:
            b = self.forms[found[0]]
            i = blob.find(b) if isinstance(blob, bytes) else blob.encode().find(b)
            ctx = (blob if isinstance(blob, bytes) else blob.encode())[max(0, i - 120):i + 120]
            raise AssertionError(f"secret forms {found} in {where}: ...{ctx!r}...")


def connector_doc():
    return {
        "slug": "canary",
        "base_url": "{{conn.base_url}}",
        "config": {"base_url": {"type": "string", "required": True}},
        "secrets": ["api_key", "password"],
        "auth": {"type": "bearer", "token": "{{secret.api_key}}"},
        "operations": {
            "echo": {
                "method": "POST", "path": "/echo-secret",
                "query": {"sig": "{{secret.password}}"},
                "headers": {"X-Password": "{{secret.password}}"},
                "body": {"k": "{{secret.api_key}}", "p": "{{secret.password}}",
                         "nested": ["{{secret.api_key}}"]},
                "outputs": {"echoed": "body", "echo_headers": "headers"},
            },
            "fail": {"method": "GET", "path": "/status/500",
                     "query": {"k": "{{secret.api_key}}"}},
        },
    }


def canary_docs():
    ok = integration("canary/ok", [
        set_task("init", {"scheme": "ftp"}),
        {"id": "conn", "type": "connector", "connector": "canary", "operation": "echo",
         "connection": "canary-conn"},
        http_task("basic", "{{conn.base_url}}/echo-secret?token={{secret.api_key | urlencode}}",
                  connection="canary-conn", method="PUT",
                  auth={"type": "basic", "username": "user", "password": "{{secret.password}}"},
                  headers={"X-Api": "{{secret.api_key}}",
                           "X-B64": "{{secret.api_key | base64}}",
                           "X-B64url": "{{secret.password | base64url}}"},
                  body="{{secret.password}}", response_var="basicEcho"),
        http_task("hdr", "{{conn.base_url}}/echo-secret", connection="canary-conn",
                  auth={"type": "header", "name": "X-Auth", "value": "{{secret.password}}"},
                  method="POST", body={"key": "{{secret.api_key}}"}, response_var="hdrEcho"),
        http_task("err", "{{conn.base_url}}/status/500?k={{secret.password | urlencode}}",
                  connection="canary-conn", continue_on_error=True),
        http_task("redir", "{{conn.base_url}}/redirect?to="
                  "{{(\"http://10.0.0.1/x?k=\" + secret.api_key) | urlencode}}",
                  connection="canary-conn", continue_on_error=True),
        http_task("userinfo", "http://user:{{secret.password | urlencode}}@10.0.0.1/y",
                  connection="canary-conn", continue_on_error=True),
        http_task("badscheme", "{{vars.scheme}}://{{secret.api_key | urlencode}}@127.0.0.1/",
                  connection="canary-conn", continue_on_error=True),
        {"id": "cerr", "type": "connector", "connector": "canary", "operation": "fail",
         "connection": "canary-conn", "continue_on_error": True},
        set_task("copy", {"copied": "{{vars.basicEcho}}", "as_text": "{{vars.hdrEcho | json}}",
                          "first": "{{vars.echoed.forms[0].raw}}"}),
        {"id": "lua", "type": "script", "lang": "lua",
         "source": "log(json.encode(vars.copied)); log(vars.first); "
                   "return {again = vars.hdrEcho, first = vars.first}"},
    ])
    failing = integration("canary/fail", [
        http_task("h", "{{conn.base_url}}/echo-secret", connection="canary-conn",
                  headers={"X-Api": "{{secret.api_key}}"}),
        {"id": "f", "type": "fail", "code": "leaky",
         "message": "upstream said {{vars.httpResult.headers[\"x-api\"]}}",
         "detail": {"echo": "{{vars.httpResult}}"}},
    ])
    return ok, failing


@pytest.fixture(scope="module")
def canary(tmp_path_factory, upstream):
    """A server with the canary connection; both canary integrations run once (sync), and
    once async. Yields (server, Canary, [run records])."""
    c = Canary()
    srv = apilib.start_server(tmp_path_factory.mktemp("canary"), ALLOW)
    try:
        publish_connector(srv, connector_doc())
        r = srv.put("/connections/canary-conn", json={
            "connector": "canary", "config": {"base_url": upstream.base},
            "secrets": {"api_key": c.api_key, "password": c.password}})
        assert r.status == 201, r
        c.check("PUT /connections answer", r.body)
        ok, failing = canary_docs()
        publish(srv, ok, failing)
        answers = []
        rec_ok = execute(srv, "canary/ok")
        assert rec_ok["status"] == "succeeded", json.dumps(rec_ok)[:3000]
        rec_fail = execute(srv, "canary/fail")
        assert rec_fail["status"] == "failed" and rec_fail["error"]["code"] == "leaky", rec_fail
        r = srv.execute("canary/ok", {}, query="mode=async")
        assert r.status == 202, r
        answers.append(("async execute answer", r.body))
        rec_async = srv.wait_run(r.json()["run_id"])
        yield srv, c, [rec_ok, rec_fail, rec_async], answers
    finally:
        srv.stop()


def test_the_upstream_really_saw_the_secrets(canary, upstream):
    srv, c, recs, _ = canary
    seen = b"".join(json.dumps(r["headers"]).encode() + r["body"] + r["target"].encode()
                    for r in upstream.requests)
    assert c.api_key.encode() in seen or json.dumps(c.api_key)[1:-1].encode() in seen
    assert c.password.encode() in seen or json.dumps(c.password)[1:-1].encode() in seen
    # and echoed them back in every form the canary looks for
    echoed = b"".join(r.get("response", b"") for r in upstream.requests)
    found = set(c.leaks(echoed))
    for name in ("api_key", "password"):
        for form in ("raw", "base64", "base64url", "base64url-nopad", "percent", "json"):
            assert f"{name}/{form}" in found, (name, form, sorted(found))
    assert any(f.startswith("password/base64-core") for f in found)  # the Basic header


def test_run_records_and_answers(canary):
    srv, c, recs, answers = canary
    for where, body in answers:
        c.check(where, body)
    for rec in recs:
        c.check(f"execute answer of {rec['integration']}", json.dumps(rec))
        rid = rec["id"]
        for path in (f"/runs/{rid}", f"/runs/{rid}/tree", f"/runs?root_id={rid}",
                     f"/runs?integration={rec['integration']}"):
            r = srv.get(path)
            assert r.status == 200, (path, r)
            c.check(f"GET {path}", r.body)
    # the scrubbed places still say something: the mark is there
    full = srv.get(f"/runs/{recs[0]['id']}").text
    assert "[secret]" in full


def test_steps_keep_shape(canary):
    srv, c, recs, _ = canary
    rec = srv.run(recs[0]["id"])
    steps = {s.get("task") or s.get("id"): s for s in rec["steps"]}
    assert {"conn", "basic", "hdr", "err", "redir", "userinfo", "badscheme", "cerr", "copy",
            "lua"} <= set(steps), list(steps)
    for t in ("redir", "userinfo", "badscheme"):
        assert steps[t]["error"]["code"] == "blocked", steps[t]
    assert steps["conn"]["status"] == "succeeded" and steps["basic"]["status"] == "succeeded"
    assert rec["output"]["basicEcho"]["body"] == "[secret]"


def test_other_api_answers(canary):
    srv, c, recs, _ = canary
    for path in ("/connections", "/connections/canary-conn", "/connectors",
                 "/connectors/canary", "/integrations", "/integrations/canary/ok",
                 "/graph", "/metrics", "/runs?limit=100"):
        r = srv.get(path)
        assert r.status == 200, (path, r)
        c.check(f"GET {path}", r.body)


def test_server_logs(canary):
    srv, c, recs, _ = canary
    c.check("server stderr", srv.stderr().encode())
    c.check("server stdout", srv.stdout().encode())


def test_data_files_while_running(canary):
    srv, c, recs, _ = canary
    _check_data_dir(c, srv.data)


def _check_data_dir(c, data):
    seen = []
    for root, _, files in os.walk(data):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                blob = fh.read()
            seen.append(f)
            c.check(f"data file {p}", blob)
    assert "braid.db" in seen, seen


def test_after_stop_files_and_cli(canary, tmp_path):
    srv, c, recs, _ = canary
    srv.stop()
    c.check("server stderr after stop", srv.stderr().encode())
    _check_data_dir(c, srv.data)
    cli = e2e.Braid(srv.data, str(tmp_path))
    for rec in recs:
        for args in (("show", rec["id"]), ("show", rec["id"], "--tree")):
            for j in ((), ("--json",)):
                r = cli(*args, *j)
                assert r.returncode == 0, (args, r.stderr)
                c.check(f"braid {' '.join(args + j)}", r.stdout + r.stderr)
    for args in (("runs", "--limit", "100"), ("connection", "list")):
        for j in ((), ("--json",)):
            r = cli(*args, *j)
            c.check(f"braid {' '.join(args + j)}", r.stdout + r.stderr)
    _check_data_dir(c, srv.data)


def test_child_runs_are_scrubbed_too(tmp_path, upstream):
    """Echoed secret data handed to a child run (input, output, error) is scrubbed there
    too: the tree of a root run never shows a secret the root used."""
    c = Canary()
    srv = apilib.start_server(tmp_path / "child", ALLOW)
    try:
        publish_connector(srv, connector_doc())
        put_connection(srv, "canary-conn", "canary", {"base_url": upstream.base},
                       {"api_key": c.api_key, "password": c.password})
        publish(srv, integration("canary/child", [set_task("s", {"got": "{{vars.echo}}"})],
                                 outputs=["got"]))
        publish(srv, integration("canary/parent", [
            http_task("h", "{{conn.base_url}}/echo-secret", connection="canary-conn",
                      headers={"X-Api": "{{secret.api_key}}"}),
            {"id": "c", "type": "call_integration", "integration": "canary/child",
             "strategy": "sync", "input": {"echo": "{{vars.httpResult}}"}},
            {"id": "a", "type": "call_integration", "integration": "canary/child",
             "strategy": "async", "input": {"echo": "{{vars.httpResult.headers}}"}},
        ]))
        rec = execute(srv, "canary/parent")
        assert rec["status"] == "succeeded", rec
        c.check("parent record", json.dumps(rec))
        children = srv.runs(integration="canary/child")
        assert len(children) == 2, children
        for ch in children:
            c.check("child run", json.dumps(srv.wait_run(ch["id"])))
        r = srv.get(f"/runs/{rec['id']}/tree")
        c.check("tree", r.body)
        for run in srv.runs(root_id=rec["id"]):
            c.check(f"GET /runs/{run['id']}", srv.get(f"/runs/{run['id']}").body)
        srv.stop()
        c.check("stderr", srv.stderr().encode())
        _check_data_dir(c, srv.data)
    finally:
        srv.stop()
