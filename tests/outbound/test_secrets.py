"""Secrets on the command line and at rest (SPEC §5, §10): `braid connection set` reads values
from standard input only, `connection list` shows names, the master key (BRAID_MASTER_KEY or
DATA/master.key 0600), `braid keys rotate`, and a tampered ciphertext failing with
`secret_unreadable` instead of sending garbage."""
import base64
import json
import os
import re
import sqlite3
import stat
import uuid

import pytest

from conftest import integration

def connector_doc(slug="vault"):
    return {
        "slug": slug,
        "base_url": "{{conn.base_url}}",
        "config": {"base_url": {"type": "string", "required": True}},
        "secrets": ["api_key", "password"],
        "auth": {"type": "bearer", "token": "{{secret.api_key}}"},
        "operations": {
            "echo": {"method": "POST", "path": "/echo",
                     "headers": {"X-Password": "{{secret.password}}"},
                     "body": {"hello": "there"}},
        },
    }


def new_secret(tag):
    return f"{tag}-{uuid.uuid4().hex}"


def data_bytes(data):
    """Every byte of every file under the data directory."""
    out = {}
    for root, _, files in os.walk(data):
        for f in files:
            p = os.path.join(root, f)
            try:
                with open(p, "rb") as fh:
                    out[p] = fh.read()
            except OSError:
                pass
    return out


def assert_not_stored(data, *values):
    for path, content in data_bytes(data).items():
        for v in values:
            for form in (v.encode(), base64.b64encode(v.encode())):
                assert form not in content, f"{form!r} stored in plain in {path}"


@pytest.fixture
def vault(braid, upstream):
    """A data dir with connector `vault`, connection `v1` (two secrets) and integration
    `s/echo` using it. Returns (braid, api_key, password)."""
    upstream.reset()
    braid.publish(connector_doc())
    key, pw = new_secret("key"), new_secret("pw")
    r = braid("connection", "set", "v1", "--connector", "vault",
              "--config", f"base_url={upstream.base}", "--secret", "api_key",
              "--secret", "password", input=f"{key}\n{pw}\n")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert key not in r.stdout + r.stderr and pw not in r.stdout + r.stderr
    braid.publish(integration("s/echo", [
        {"id": "c", "type": "connector", "connector": "vault", "operation": "echo",
         "connection": "v1", "continue_on_error": True}],
        outputs={"o": "{{tasks.c}}", "status": "{{vars.integrationStatus}}",
                 "ok": "{{vars.integrationOk}}"}))
    return braid, key, pw


def run_echo(braid, *flags, env=None):
    args = ["run", "s/echo", "--json", "--allow-net", "127.0.0.1/32", *flags]
    r = braid(*args, env=env)
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"no JSON (exit {r.returncode}): {r.stdout}\n{r.stderr}")


def sent_auth(upstream):
    reqs = upstream.requests_to("/echo")
    return [(dict((k.lower(), v) for k, v in q["headers"]).get("authorization"),
             dict((k.lower(), v) for k, v in q["headers"]).get("x-password")) for q in reqs]


def test_connection_set_and_use(vault, upstream):
    braid, key, pw = vault
    r, rec = run_echo(braid)
    assert rec["status"] == "succeeded", rec
    assert rec["output"]["o"]["success"] is True and rec["output"]["status"] == 200
    assert rec["output"]["ok"] is True
    assert sent_auth(upstream) == [("Bearer " + key, pw)]
    assert key not in r.stdout + r.stderr and pw not in r.stdout + r.stderr
    assert_not_stored(braid.data, key, pw)


def test_connection_list_shows_names_only(vault):
    braid, key, pw = vault
    r = braid("connection", "list")
    assert r.returncode == 0 and "v1" in r.stdout
    assert key not in r.stdout and pw not in r.stdout
    assert "api_key" in r.stdout and "password" in r.stdout
    doc = braid.json("connection", "list")
    items = doc["connections"] if isinstance(doc, dict) else doc
    (c,) = [c for c in items if c["id"] == "v1"]
    assert c["connector"] == "vault"
    names = sorted(s["name"] if isinstance(s, dict) else s for s in c["secrets"])
    assert names == ["api_key", "password"]
    assert key not in json.dumps(doc) and pw not in json.dumps(doc)


def test_master_key_file_created_0600(vault):
    braid, key, pw = vault
    path = os.path.join(braid.data, "master.key")
    assert os.path.isfile(path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    text = open(path, "rb").read()
    assert key.encode() not in text


def test_env_master_key(braid, upstream):
    upstream.reset()
    k1 = base64.b64encode(os.urandom(32)).decode()
    k2 = base64.b64encode(os.urandom(32)).decode()
    env1 = {"BRAID_MASTER_KEY": k1}
    braid.publish(connector_doc())
    key, pw = new_secret("key"), new_secret("pw")
    r = braid("connection", "set", "v1", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret", "api_key", "--secret", "password",
              input=f"{key}\n{pw}\n", env=env1)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(braid.data, "master.key"))
    braid.publish(integration("s/echo", [
        {"id": "c", "type": "connector", "connector": "vault", "operation": "echo",
         "connection": "v1", "continue_on_error": True}],
        outputs={"o": "{{tasks.c}}"}))
    r, rec = run_echo(braid, env=env1)
    assert rec["output"]["o"]["success"] is True, rec
    assert sent_auth(upstream) == [("Bearer " + key, pw)]
    # another key cannot open it: the task fails, nothing is sent
    r, rec = run_echo(braid, env={"BRAID_MASTER_KEY": k2})
    assert rec["output"]["o"]["error"]["code"] == "secret_unreadable", rec
    assert len(upstream.requests_to("/echo")) == 1
    # a malformed key opens nothing either
    r, rec = run_echo(braid, env={"BRAID_MASTER_KEY": "not-base64-of-32-bytes"})
    assert rec["output"]["o"]["success"] is False, rec
    assert rec["output"]["o"]["error"]["code"] in ("secret_unreadable", "internal"), rec
    assert len(upstream.requests_to("/echo")) == 1


def test_key_file_open_to_others_is_refused(vault, upstream):
    braid, key, pw = vault
    path = os.path.join(braid.data, "master.key")
    os.chmod(path, 0o644)
    try:
        r = braid("run", "s/echo", "--json", "--allow-net", "127.0.0.1/32")
        assert r.returncode != 0 or '"secret_unreadable"' in r.stdout, (r.stdout, r.stderr)
        assert upstream.requests_to("/echo") == []
    finally:
        os.chmod(path, 0o600)
    r, rec = run_echo(braid)
    assert rec["output"]["o"]["success"] is True, rec


def test_keys_rotate_with_env_key(braid, upstream):
    upstream.reset()
    k1 = base64.b64encode(os.urandom(32)).decode()
    k2 = base64.b64encode(os.urandom(32)).decode()
    braid.publish(connector_doc())
    key, pw = new_secret("key"), new_secret("pw")
    r = braid("connection", "set", "v1", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret", "api_key", "--secret", "password",
              input=f"{key}\n{pw}\n", env={"BRAID_MASTER_KEY": k1})
    assert r.returncode == 0, r.stderr
    braid.publish(integration("s/echo", [
        {"id": "c", "type": "connector", "connector": "vault", "operation": "echo",
         "connection": "v1", "continue_on_error": True}], outputs={"o": "{{tasks.c}}"}))
    r = braid("keys", "rotate", env={"BRAID_MASTER_KEY": k1, "BRAID_NEW_MASTER_KEY": k2})
    assert r.returncode == 0, (r.stdout, r.stderr)
    r, rec = run_echo(braid, env={"BRAID_MASTER_KEY": k2})
    assert rec["output"]["o"]["success"] is True, rec
    r, rec = run_echo(braid, env={"BRAID_MASTER_KEY": k1})
    assert rec["output"]["o"]["error"]["code"] == "secret_unreadable", rec
    assert sent_auth(upstream) == [("Bearer " + key, pw)]


def test_keys_rotate(vault, upstream):
    braid, key, pw = vault
    path = os.path.join(braid.data, "master.key")
    before_key = open(path, "rb").read()
    before_rows = sealed_rows(braid.data)
    r = braid("keys", "rotate")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert key not in r.stdout + r.stderr
    assert open(path, "rb").read() != before_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    after_rows = sealed_rows(braid.data)
    assert after_rows != before_rows
    r, rec = run_echo(braid)
    assert rec["output"]["o"]["success"] is True, rec
    assert sent_auth(upstream) == [("Bearer " + key, pw)]
    assert_not_stored(braid.data, key, pw)
    # twice in a row is fine too
    assert braid("keys", "rotate").returncode == 0
    r, rec = run_echo(braid)
    assert rec["output"]["o"]["success"] is True, rec


def sealed_rows(data):
    db = sqlite3.connect(os.path.join(data, "braid.db"))
    try:
        return db.execute("SELECT id, secrets FROM connections ORDER BY id").fetchall()
    finally:
        db.close()


SEALED_RE = re.compile(r"v\d+:([A-Za-z0-9+/=]{20,})")


def flip_sealed(data, which=0):
    """Flip one base64 character of the WHICH-th sealed value in connections.secrets."""
    db = sqlite3.connect(os.path.join(data, "braid.db"))
    try:
        rows = db.execute("SELECT rowid, secrets FROM connections").fetchall()
        assert rows, "no connections stored"
        rowid, secrets = rows[0]
        text = secrets.decode() if isinstance(secrets, bytes) else secrets
        ms = list(SEALED_RE.finditer(text))
        assert ms, f"no sealed 'v1:' value in connections.secrets: {text[:200]!r}"
        m = ms[which]
        i = m.start(1) + 30  # inside the ciphertext, past the 24-byte nonce's 32 characters
        i = min(i, m.end(1) - 5)
        c = text[i]
        repl = "A" if c != "A" else "B"
        text = text[:i] + repl + text[i + 1:]
        db.execute("UPDATE connections SET secrets = ? WHERE rowid = ?",
                   (text if not isinstance(secrets, bytes) else text.encode(), rowid))
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize("which", [0, 1])
def test_tampered_ciphertext(vault, upstream, which):
    braid, key, pw = vault
    flip_sealed(braid.data, which)
    r, rec = run_echo(braid)
    o = rec["output"]["o"]
    assert o["success"] is False
    assert o["error"]["code"] == "secret_unreadable", o
    assert rec["output"]["status"] == 0
    assert upstream.requests_to("/echo") == [], "a request left with an unreadable secret"


def test_tampered_ciphertext_unhandled_fails_run(vault, upstream):
    braid, key, pw = vault
    braid.publish(integration("s/strict", [
        {"id": "c", "type": "connector", "connector": "vault", "operation": "echo",
         "connection": "v1"}]))
    flip_sealed(braid.data)
    r = braid("run", "s/strict", "--json", "--allow-net", "127.0.0.1/32")
    assert r.returncode == 1
    rec = json.loads(r.stdout)
    assert rec["status"] == "failed" and rec["error"]["code"] == "secret_unreadable"
    assert upstream.requests_to("/echo") == []


def test_secret_bound_to_connection_id(vault, upstream):
    """A sealed value copied onto another connection does not open there."""
    braid, key, pw = vault
    r = braid("connection", "set", "v2", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret", "api_key", "--secret", "password",
              input="other-key-123\nother-pw-456\n")
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(os.path.join(braid.data, "braid.db"))
    try:
        (s1,) = db.execute("SELECT secrets FROM connections WHERE id = 'v1'").fetchone()
        db.execute("UPDATE connections SET secrets = ? WHERE id = 'v2'", (s1,))
        db.commit()
    finally:
        db.close()
    braid.publish(integration("s/echo2", [
        {"id": "c", "type": "connector", "connector": "vault", "operation": "echo",
         "connection": "v2", "continue_on_error": True}], outputs={"o": "{{tasks.c}}"}))
    r = braid("run", "s/echo2", "--json", "--allow-net", "127.0.0.1/32")
    rec = json.loads(r.stdout)
    assert rec["output"]["o"]["error"]["code"] == "secret_unreadable", rec
    assert upstream.requests_to("/echo") == []


def test_secret_values_never_from_argv(braid, upstream):
    braid.publish(connector_doc())
    value = new_secret("argv")
    r = braid("connection", "set", "v1", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret-value", value, input="")
    assert r.returncode == 2, (r.stdout, r.stderr)
    r = braid("connection", "set", "v1", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret", f"api_key={value}",
              input="from-stdin-1\nfrom-stdin-2\n")
    # Either a usage error or the text is taken as a (then invalid) name: never as a value.
    assert r.returncode != 0 or value not in json.dumps(braid.json("connection", "list"))
    if os.path.isdir(braid.data):
        assert_not_stored(braid.data, value)


def test_connection_set_needs_every_secret_line(braid, upstream):
    braid.publish(connector_doc())
    r = braid("connection", "set", "v1", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret", "api_key", "--secret", "password",
              input="only-one-line\n")
    assert r.returncode != 0
    doc = braid.json("connection", "list", ok=False)
    items = doc["connections"] if isinstance(doc, dict) else doc
    assert all(c["id"] != "v1" for c in items)


@pytest.mark.parametrize("args", [
    ["--connector", "no-such"],
    ["--connector", "vault"],                                     # base_url missing
    ["--connector", "vault", "--config", "base_url=http://x", "--secret", "undeclared"],
])
def test_connection_set_refused(braid, upstream, args):
    braid.publish(connector_doc())
    r = braid("connection", "set", "bad", *args, input="abcdefgh\n")
    assert r.returncode in (1, 2), (r.returncode, r.stdout, r.stderr)


def test_connection_set_usage(braid):
    assert braid("connection", "set", "--help").returncode == 0
    assert braid("connection", "set").returncode == 2
    assert braid("connection", "frobnicate").returncode == 2
    assert braid("keys", "--help").returncode == 0


def test_publish_connector_file(braid):
    out = braid.publish(connector_doc("filed"))
    assert "filed" in out
    r = braid("validate", braid.write(connector_doc("filed2")))
    assert r.returncode == 0, r.stderr
    bad = connector_doc("filed3")
    bad["operations"]["echo"]["method"] = "FETCH"
    r = braid("publish", braid.write(bad))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)


def test_connection_show_and_delete(vault, upstream):
    braid, key, pw = vault
    r = braid("connection", "show", "v1")
    assert r.returncode == 0 and "api_key" in r.stdout, (r.stdout, r.stderr)
    assert key not in r.stdout and pw not in r.stdout
    doc = braid.json("connection", "show", "v1")
    assert doc["id"] == "v1" and doc["config"]["base_url"] == upstream.base
    assert sorted(s["name"] for s in doc["secrets"]) == ["api_key", "password"]
    assert key not in json.dumps(doc) and pw not in json.dumps(doc)
    assert braid("connection", "show", "nope").returncode == 1
    assert braid("connection", "delete", "v1").returncode == 0
    assert braid("connection", "show", "v1").returncode == 1
    r, rec = run_echo(braid)
    assert rec["output"]["o"]["error"]["code"] == "connection_not_found", rec
    assert upstream.requests_to("/echo") == []


def test_connection_set_replaces_secrets(vault, upstream):
    braid, key, pw = vault
    key2, pw2 = new_secret("key2"), new_secret("pw2")
    r = braid("connection", "set", "v1", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret", "api_key", "--secret", "password",
              input=f"{key2}\n{pw2}\n")
    assert r.returncode == 0, r.stderr
    r, rec = run_echo(braid)
    assert rec["output"]["o"]["success"] is True
    assert sent_auth(upstream) == [("Bearer " + key2, pw2)]
    assert_not_stored(braid.data, key, pw, key2, pw2)


def test_secret_from_stdin_keeps_inner_spaces(braid, upstream):
    upstream.reset()
    braid.publish(connector_doc())
    key, pw = "key with  spaces " + uuid.uuid4().hex, "pw\twith tab " + uuid.uuid4().hex
    r = braid("connection", "set", "v1", "--connector", "vault", "--config",
              f"base_url={upstream.base}", "--secret", "api_key", "--secret", "password",
              input=f"{key}\r\n{pw}\n")
    assert r.returncode == 0, r.stderr
    braid.publish(integration("s/echo", [
        {"id": "c", "type": "connector", "connector": "vault", "operation": "echo",
         "connection": "v1", "continue_on_error": True}], outputs={"o": "{{tasks.c}}"}))
    r, rec = run_echo(braid)
    assert sent_auth(upstream) == [("Bearer " + key, pw)]
