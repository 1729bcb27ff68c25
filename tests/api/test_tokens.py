"""Tokens (SPEC §9, issue 3 §3): created with their secret shown once, listed without it,
revoked; the CLI and the server share them."""
import os
import re
import subprocess
import time

from apilib import BIN, echo, error_of

TOKEN_RE = re.compile(r"brd_[A-Za-z0-9_\-]+")


def test_create_list_revoke(server):
    r = server.post("/tokens", json={"role": "viewer", "scopes": [], "description": "ci"})
    assert r.status == 201, r
    doc = r.json()
    secret, tid = doc["token"], doc["id"]
    assert secret.startswith("brd_") and len(secret) >= 24
    assert doc["role"] == "viewer"
    assert server.get("/integrations", token=secret).status == 200

    r = server.get("/tokens")
    assert r.status == 200
    tokens = r.json()["tokens"]
    mine = [t for t in tokens if t["id"] == tid]
    assert len(mine) == 1 and mine[0]["role"] == "viewer" and mine[0]["description"] == "ci"
    assert any(t["role"] == "admin" for t in tokens)
    assert secret not in r.text and server.admin not in r.text
    assert secret[4:] not in r.text
    for t in tokens:
        assert "token" not in t and "hash" not in t and "secret" not in t, t

    r = server.delete(f"/tokens/{tid}")
    assert r.status in (200, 204), r
    deadline = time.monotonic() + 1.5
    while server.get("/integrations", token=secret, fresh=True).status != 401:
        assert time.monotonic() < deadline, "revoked token still accepted"
        time.sleep(0.05)
    error_of(server.get("/integrations", token=secret), 401)
    # Revoking again: idempotent (200) or gone (404).
    assert server.delete(f"/tokens/{tid}").status in (200, 204, 404)
    error_of(server.delete("/tokens/nosuch"), 404)


def test_bad_token_requests(server):
    for body in ({"role": "root"}, {}, {"role": "invoker", "scopes": "m/*"},
                 {"role": "viewer", "scopes": [3]}):
        r = server.post("/tokens", json=body)
        assert r.status in (400, 422), (body, r)
        error_of(r)
    error_of(server.post("/tokens", body=b"{nope", headers={"Content-Type": "application/json"}),
             400)


def test_secret_never_logged(server):
    secret, _ = server.token("invoker", scopes=["*"])
    server.publish(echo("tk/e"))
    assert server.execute("tk/e", {"v": 1}, token=secret).status == 200
    server.get("/runs", token=secret)
    server.get("/integrations", token="brd_wrong_" + "x" * 20)
    server.stop()
    for text in (server.stderr(), server.stdout()):
        assert secret not in text and server.admin not in text
        assert "brd_wrong_" not in text


def test_cli_token_create_works_with_running_server(server):
    r = subprocess.run([BIN, "token", "create", "--role", "invoker", "--scope", "tk/*",
                        "--data", server.data], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    m = TOKEN_RE.search(r.stdout)
    assert m, r.stdout
    server.publish(echo("tk/e"), echo("other"))
    assert server.execute("tk/e", {"v": 1}, token=m.group(0)).status == 200
    error_of(server.execute("other", {"v": 1}, token=m.group(0)), 403, "forbidden")
    r = subprocess.run([BIN, "token", "list", "--data", server.data], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and m.group(0) not in r.stdout and server.admin not in r.stdout


def test_token_file_only_hashes_in_store(server):
    secret, _ = server.token("viewer")
    for root, _, files in os.walk(server.data):
        for f in files:
            if f == "admin.token":
                continue
            with open(os.path.join(root, f), "rb") as fh:
                data = fh.read()
            assert secret.encode() not in data, f"token secret stored in {f}"
            assert server.admin.encode() not in data, f"admin secret stored in {f}"
