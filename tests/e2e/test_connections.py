"""Connectors, connections and the master key from the command line (SPEC §5, §10).

Secrets go in on standard input and must never come out: not in any command's output, not in
run records, not in clear in any file of the data directory. A small upstream on 127.0.0.1
checks that a connector task really sends the secret (the run opens it), before and after
`braid keys rotate`.
"""
import base64
import http.server
import json
import os
import stat
import threading

import pytest

from conftest import REPO, integration

# SPEC §5's example connector; tests/api loads the same file.
with open(os.path.join(REPO, "tests", "cases", "connectors", "billing.json")) as _f:
    BILLING = json.load(_f)

# Like BILLING with a second secret, sent in a header, and more config fields.
BILLING2 = dict(BILLING, secrets=["api_key", "signing_key"],
                config={"base_url": {"type": "string", "required": True},
                        "retries": {"type": "integer"},
                        "sandbox": {"type": "boolean"},
                        "region": {"type": "string"}})
BILLING2["operations"] = {
    "create_invoice": dict(BILLING["operations"]["create_invoice"],
                           headers={"X-Signing-Key": "{{secret.signing_key}}"}),
}

SECRET = "sk_live_Zq8vX3nP0aLm"
SECRET2 = "sig_9fK2wQe7Rt"
KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes([1] * 32)).decode()
KEY_C = base64.b64encode(bytes([7] * 32)).decode()


def secret_forms(value):
    """The value and the encodings a leak would most likely take."""
    raw = value.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]


def assert_no_leak(text, *values):
    for v in values:
        assert v not in (text or ""), f"secret value leaked into output: {text!r}"


def assert_data_dir_clean(data, *values):
    """No file of the data directory holds a value in clear or in base64 (raw bytes of the
    database, its WAL and everything else)."""
    for name in os.listdir(data):
        path = os.path.join(data, name)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            blob = f.read()
        for v in values:
            for form in secret_forms(v):
                assert form not in blob, f"{name} holds a secret value ({form!r})"


class Upstream:
    """An HTTP server on 127.0.0.1 answering every POST with an invoice and recording the
    requests' headers."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                seen.append({"headers": dict(self.headers), "body": body, "path": self.path})
                out = json.dumps({"id": "inv_1", "total": 42}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


def set_connection(braid, cid, connector, *, config=(), secrets=(), stdin="", env=None):
    args = ["connection", "set", cid, "--connector", connector]
    for c in config:
        args += ["--config", c]
    for s in secrets:
        args += ["--secret", s]
    return braid(*args, input=stdin, env=env)


def invoice_integration(connection="billing-prod"):
    return integration("invoice", [{
        "id": "c", "type": "connector", "connector": "billing",
        "operation": "create_invoice", "connection": connection,
        "input": {"lines": "{{vars.lines}}"}}])


def run_invoice(braid, env=None):
    """Run the invoice integration against the upstream; return (record, CompletedProcess)."""
    r = braid("run", "invoice", "--input", '{"lines": [1, 2]}', "--allow-net", "127.0.0.1/32",
              "--json", env=env)
    try:
        return json.loads(r.stdout), r
    except ValueError:
        raise AssertionError(f"run printed no JSON (exit {r.returncode}): {r.stderr}") from None


def key_lines(data):
    with open(os.path.join(data, "master.key")) as f:
        return [line.split()[0] for line in f if line.strip() and not line.startswith("#")]


# ---- connectors ----------------------------------------------------------------------------

def test_connector_validate_and_publish(braid):
    path = braid.write(BILLING)
    r = braid("validate", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{path}: valid"
    r = braid("publish", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "published connector billing v1"
    r = braid("publish", path)
    assert r.stdout.strip() == "unchanged connector billing v1"
    doc = braid.json("publish", braid.write(dict(BILLING, base_url="https://x.example.com")))
    assert doc[0]["slug"] == "billing" and doc[0]["version"] == 2 and doc[0]["created"] is True
    assert doc[0]["ok"] is True


def test_connector_problems_are_reported(braid):
    bad = dict(BILLING, secrets=["api_key"], auth={"type": "bearer", "token": "{{secret.nope}}"})
    r = braid("validate", braid.write(bad))
    assert r.returncode == 1
    assert "nope" in r.stderr
    r = braid("publish", braid.write(bad))
    assert r.returncode == 1
    assert "nope" in r.stderr


# ---- connections ---------------------------------------------------------------------------

def test_connection_set_list_show_never_show_values(braid):
    braid.publish(BILLING)
    r = set_connection(braid, "billing-prod", "billing",
                       config=["base_url=https://billing.example.com"],
                       secrets=["api_key"], stdin=SECRET + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "created connection billing-prod (connector billing; secrets: api_key)"
    assert_no_leak(r.stdout + r.stderr, SECRET)

    r = braid("connection", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "CONNECTOR", "SECRETS", "UPDATED"]
    assert lines[1].split()[:3] == ["billing-prod", "billing", "api_key"]
    assert_no_leak(r.stdout, SECRET)

    conns = braid.json("connection", "list")
    assert [c["id"] for c in conns] == ["billing-prod"]
    c = conns[0]
    assert c["connector"] == "billing"
    assert c["config"] == {"base_url": "https://billing.example.com"}
    assert [s["name"] for s in c["secrets"]] == ["api_key"]
    for key in ("created_at", "updated_at"):
        assert c[key].endswith("Z")
    assert c["secrets"][0]["updated_at"].endswith("Z")
    text = json.dumps(conns)
    assert_no_leak(text, SECRET, "v1:")

    one = braid.json("connection", "show", "billing-prod")
    assert one == c
    r = braid("connection", "show", "billing-prod")
    assert r.returncode == 0 and "api_key" in r.stdout
    assert_no_leak(r.stdout, SECRET)

    # Nothing in the data directory holds the value: the database, its WAL, the key file.
    assert_data_dir_clean(braid.data, SECRET)
    mode = stat.S_IMODE(os.stat(os.path.join(braid.data, "master.key")).st_mode)
    assert mode == 0o600


def test_connection_secrets_kept_replaced_removed(braid):
    braid.publish(BILLING2)
    r = set_connection(braid, "b", "billing", config=["base_url=https://b.example.com"],
                       secrets=["api_key", "signing_key"], stdin=f"{SECRET}\r\n{SECRET2}\n")
    assert r.returncode == 0, r.stderr
    # No --config: the config stays; the unnamed secret stays.
    r = set_connection(braid, "b", "billing", secrets=["api_key"], stdin="other")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("updated connection b")
    c = braid.json("connection", "show", "b")
    assert c["config"] == {"base_url": "https://b.example.com"}
    assert sorted(s["name"] for s in c["secrets"]) == ["api_key", "signing_key"]
    assert_data_dir_clean(braid.data, SECRET, SECRET2, "other")


def test_config_values_json_when_they_parse(braid):
    braid.publish(BILLING2)
    r = set_connection(braid, "b", "billing",
                       config=["base_url=https://b.example.com", "retries=3", "sandbox=true",
                               "region=eu-west"])
    assert r.returncode == 0, r.stderr
    c = braid.json("connection", "show", "b")
    assert c["config"] == {"base_url": "https://b.example.com", "retries": 3, "sandbox": True,
                           "region": "eu-west"}
    assert c["secrets"] == []


def test_connection_delete(braid):
    braid.publish(BILLING)
    assert set_connection(braid, "b", "billing", config=["base_url=u"]).returncode == 0
    r = braid("connection", "delete", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "deleted connection b"
    assert braid.json("connection", "list") == []
    r = braid("connection", "delete", "b")
    assert r.returncode == 1
    assert "connection_not_found" in r.stderr


def test_connection_refusals(braid):
    braid.publish(BILLING)
    # Unknown connector: the operation fails (1).
    r = set_connection(braid, "b", "nope", config=["base_url=u"])
    assert r.returncode == 1
    assert "connector 'nope' is not published" in r.stderr
    # Undeclared secret name: named, its value never echoed (2).
    r = set_connection(braid, "b", "billing", config=["base_url=u"], secrets=["password"],
                       stdin=SECRET + "\n")
    assert r.returncode == 2
    assert "'password'" in r.stderr and "api_key" in r.stderr
    assert_no_leak(r.stdout + r.stderr, SECRET)
    # Bad ids (2).
    for bad in ("bad id", ".x", "a/b", "x" * 129):
        r = set_connection(braid, bad, "billing", config=["base_url=u"])
        assert r.returncode == 2, bad
        assert "is not valid" in r.stderr
    # Config checked against the connector (2).
    r = set_connection(braid, "b", "billing")
    assert r.returncode == 2
    assert "base_url" in r.stderr
    # Command line mistakes (2).
    for args, msg in [
        (["connection", "set", "b"], "--connector"),
        (["connection", "set", "b", "--connector", "billing", "--config", "novalue"], "KEY=VALUE"),
        (["connection", "set"], "usage"),
        (["connection", "frobnicate"], "unknown subcommand"),
        (["connection"], "subcommand"),
        (["keys", "spin"], "unknown subcommand"),
    ]:
        r = braid(*args)
        assert r.returncode == 2, args
        assert msg in r.stderr, (args, r.stderr)
    r = braid("connection", "set", "b", "--connector", "billing", "--config", "base_url=u",
              "--secret", "api_key", "--secret", "api_key", input="a\nb\n")
    assert r.returncode == 2 and "twice" in r.stderr
    # Standard input ends before every secret has a line (2), nothing stored.
    r = set_connection(braid, "b", "billing", config=["base_url=u"], secrets=["api_key"], stdin="")
    assert r.returncode == 2
    assert "standard input ended" in r.stderr
    assert braid.json("connection", "list") == []


def test_help(braid):
    for args in (["connection", "--help"], ["connection", "set", "--help"],
                 ["connection", "list", "--help"], ["connection", "show", "--help"],
                 ["connection", "delete", "--help"], ["keys", "--help"],
                 ["keys", "rotate", "--help"]):
        r = braid(*args)
        assert r.returncode == 0, args
        assert "usage: braid" in r.stdout
    r = braid("--help")
    assert "connection" in r.stdout and "keys" in r.stdout
    r = braid("connection", "set", "--help")
    assert "standard input" in r.stdout


def test_key_file_with_loose_mode_is_refused(braid):
    braid.publish(BILLING)
    assert set_connection(braid, "b", "billing", config=["base_url=u"], secrets=["api_key"],
                          stdin=SECRET).returncode == 0
    os.chmod(os.path.join(braid.data, "master.key"), 0o644)
    r = set_connection(braid, "b", "billing", secrets=["api_key"], stdin=SECRET)
    assert r.returncode == 1
    assert "master.key" in r.stderr and "chmod 600" in r.stderr
    assert_no_leak(r.stdout + r.stderr, SECRET)


# ---- the secret in use, and rotation -----------------------------------------------------------

def test_run_uses_secret_and_rotation_keeps_it(braid, upstream):
    braid.publish(BILLING2)
    r = set_connection(braid, "billing-prod", "billing", config=[f"base_url={upstream.url}"],
                       secrets=["api_key"], stdin=SECRET + "\n")
    assert r.returncode == 0, r.stderr
    braid.publish(invoice_integration())
    rec, r = run_invoice(braid)
    assert rec["status"] == "succeeded", rec
    assert rec["output"]["invoice_id"] == "inv_1"
    assert upstream.seen[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert_no_leak(r.stdout + r.stderr, SECRET)
    assert key_lines(braid.data) == ["1"]

    r = braid("keys", "rotate")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "re-sealed 1 secrets under key version 2"
    assert key_lines(braid.data) == ["2"]
    mode = stat.S_IMODE(os.stat(os.path.join(braid.data, "master.key")).st_mode)
    assert mode == 0o600
    assert not [n for n in os.listdir(braid.data) if n.endswith(".tmp")]

    # Still opens: a run sends it, and a second secret set afterwards works alongside.
    rec, r = run_invoice(braid)
    assert rec["status"] == "succeeded", rec
    assert upstream.seen[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    r = set_connection(braid, "billing-prod", "billing", secrets=["signing_key"],
                       stdin=SECRET2 + "\n")
    assert r.returncode == 0, r.stderr
    rec, r = run_invoice(braid)
    assert rec["status"] == "succeeded", rec
    assert upstream.seen[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert upstream.seen[-1]["headers"]["X-Signing-Key"] == SECRET2

    doc = braid.json("keys", "rotate")
    assert doc == {"resealed": 2, "key_source": "file", "key_version": 3}
    rec, r = run_invoice(braid)
    assert rec["status"] == "succeeded", rec
    assert_data_dir_clean(braid.data, SECRET, SECRET2)
    # Run history holds no value either.
    runs = braid.json("runs", "--limit", "100")
    assert_no_leak(json.dumps(runs), SECRET, SECRET2)


def test_rotate_with_no_connections(braid):
    r = braid("keys", "rotate")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "re-sealed 0 secrets under key version 2"


def test_master_key_from_environment(braid, upstream):
    env = {"BRAID_MASTER_KEY": KEY_A}
    braid.publish(BILLING)
    r = set_connection(braid, "billing-prod", "billing", config=[f"base_url={upstream.url}"],
                       secrets=["api_key"], stdin=SECRET + "\n", env=env)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(braid.data, "master.key"))
    braid.publish(invoice_integration())
    rec, _ = run_invoice(braid, env=env)
    assert rec["status"] == "succeeded", rec

    # Without the new key: refused, with a message saying what to do.
    r = braid("keys", "rotate", env=env)
    assert r.returncode == 2
    assert "BRAID_NEW_MASTER_KEY" in r.stderr
    # A malformed new key: refused, the key never echoed.
    r = braid("keys", "rotate", env=dict(env, BRAID_NEW_MASTER_KEY="not-a-key"))
    assert r.returncode == 1
    assert "not-a-key" not in r.stderr

    r = braid("keys", "rotate", env=dict(env, BRAID_NEW_MASTER_KEY=KEY_B))
    assert r.returncode == 0, r.stderr
    assert "re-sealed 1 secrets" in r.stdout
    assert "set BRAID_MASTER_KEY" in r.stderr
    assert KEY_A not in r.stdout + r.stderr and KEY_B not in r.stdout + r.stderr

    # The old key opens nothing now: the run fails clearly, and so does another rotation.
    rec, _ = run_invoice(braid, env=env)
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "secret_unreadable", rec["error"]
    assert "api_key" in rec["error"]["message"]
    r = braid("keys", "rotate", env=dict(env, BRAID_NEW_MASTER_KEY=KEY_C))
    assert r.returncode == 1
    assert "nothing was changed" in r.stderr
    # The new key does.
    env = {"BRAID_MASTER_KEY": KEY_B}
    rec, _ = run_invoice(braid, env=env)
    assert rec["status"] == "succeeded", rec
    assert upstream.seen[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"

    # BRAID_NEW_MASTER_KEY alone (key file mode) is refused.
    r = braid("keys", "rotate", env={"BRAID_NEW_MASTER_KEY": KEY_C})
    assert r.returncode == 2
    assert "BRAID_MASTER_KEY" in r.stderr
    assert_data_dir_clean(braid.data, SECRET)
