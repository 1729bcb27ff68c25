"""API tokens from the command line (SPEC §9 roles and tokens, §10 `braid token`).

A token is "brd_<id>_<secret>"; the secret is printed once and stored only as a hash, so it
must never show up again: not in listings, not in any file of the data directory.
"""
import json
import os
import re

from conftest import assert_time

TOKEN_RE = re.compile(r"^brd_(t_[0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
LISTED_FIELDS = {"id", "role", "scopes", "description", "created_at", "revoked_at"}


def create(braid, *args):
    """`braid token create ARGS...`; returns (token, id, secret)."""
    r = braid("token", "create", *args)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    token = r.stdout.strip()
    m = TOKEN_RE.match(token)
    assert m, f"not a token: {r.stdout!r}"
    assert m.group(2) not in r.stderr
    return token, m.group(1), m.group(2)


def data_files(braid):
    for root, _dirs, files in os.walk(braid.data):
        for name in files:
            yield os.path.join(root, name)


def test_create_list_revoke(braid):
    token, tid, secret = create(braid, "--role", "invoker", "--scope", "orders/*",
                                "--scope", "trigger-7", "--description", "ci pipeline")
    listed = braid.json("token", "list")
    assert [t["id"] for t in listed] == [tid]
    t = listed[0]
    assert set(t) == LISTED_FIELDS
    assert t["role"] == "invoker"
    assert t["scopes"] == ["orders/*", "trigger-7"]
    assert t["description"] == "ci pipeline"
    assert_time(t["created_at"])
    assert t["revoked_at"] is None

    table = braid("token", "list")
    assert table.returncode == 0
    header = table.stdout.splitlines()[0].split()
    assert header == ["ID", "ROLE", "SCOPES", "CREATED", "REVOKED"]
    assert tid in table.stdout and "invoker" in table.stdout
    for out in (table.stdout, json.dumps(listed)):
        assert secret not in out and token not in out

    r = braid("token", "revoke", tid)
    assert r.returncode == 0, r.stderr
    assert tid in r.stdout
    t = braid.json("token", "list")[0]
    assert_time(t["revoked_at"])
    first = t["revoked_at"]
    # Revoking again keeps the first time.
    assert braid("token", "revoke", tid).returncode == 0
    assert braid.json("token", "list")[0]["revoked_at"] == first


def test_create_json(braid):
    doc = braid.json("token", "create", "--role", "admin")
    assert set(doc) == LISTED_FIELDS | {"token"}
    m = TOKEN_RE.match(doc["token"])
    assert m and m.group(1) == doc["id"]
    assert doc["role"] == "admin" and doc["scopes"] == [] and doc["description"] is None
    listed = braid.json("token", "list")
    assert "token" not in listed[0] and m.group(2) not in json.dumps(listed)


def test_each_role_and_newest_first(braid):
    ids = [create(braid, "--role", role)[1] for role in ("admin", "editor", "viewer", "invoker")]
    listed = braid.json("token", "list")
    assert [t["id"] for t in listed] == ids[::-1]
    assert [t["role"] for t in listed] == ["invoker", "viewer", "editor", "admin"]
    assert len(set(ids)) == 4


def test_usage_errors(braid):
    for args in (["token", "create", "--role", "root"],
                 ["token", "create", "--role", "Admin"],
                 ["token", "create"],
                 ["token", "create", "--role", "viewer", "--scope", ""],
                 ["token", "create", "--role", "viewer", "extra"],
                 ["token", "create", "--role"],
                 ["token", "revoke"],
                 ["token", "revoke", "a", "b"],
                 ["token", "list", "--bogus"],
                 ["token", "frobnicate"],
                 ["token"]):
        r = braid(*args)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert r.stdout == "", args
    # Nothing was made by the refused commands.
    assert braid.json("token", "list") == []


def test_revoke_unknown_fails(braid):
    r = braid("token", "revoke", "t_0000000000000000")
    assert r.returncode == 1
    assert "not_found" in r.stderr


def test_help(braid):
    r = braid("token", "--help")
    assert r.returncode == 0 and "usage" in r.stdout.lower()
    for sub in ("create", "list", "revoke"):
        assert sub in r.stdout
        r2 = braid("token", sub, "--help")
        assert r2.returncode == 0, (sub, r2.stderr)
        assert f"braid token {sub}" in r2.stdout and "--json" in r2.stdout
    assert "--role" in braid("token", "create", "--help").stdout


def test_secret_never_on_disk(braid):
    made = [create(braid, "--role", role, "--description", "disk check")
            for role in ("admin", "invoker")]
    braid("token", "revoke", made[0][1])
    braid("token", "list")
    files = list(data_files(braid))
    assert any(os.path.basename(f) == "braid.db" for f in files), files
    # The description is stored in plain text, so a search of these files does find what the
    # store keeps; the secrets, and the whole tokens, must not be among it.
    contents = b"".join(open(f, "rb").read() for f in files)
    assert b"disk check" in contents
    for token, tid, secret in made:
        assert tid.encode() in contents
        assert secret.encode() not in contents, "a token's secret reached the data directory"
        assert token.encode() not in contents
