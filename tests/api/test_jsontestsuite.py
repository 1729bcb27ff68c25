"""Issue 3: every n_ file of JSONTestSuite POSTed as JSON to an execute route gets a 400, no run
starts, and the server stays healthy; every y_ file is accepted."""
import os

import pytest

from apilib import JSON_TEST_SUITE, Conn, ctx_doc


def suite_files(prefix):
    if not os.path.isdir(JSON_TEST_SUITE):
        pytest.fail(f"JSONTestSuite not found at {JSON_TEST_SUITE}", pytrace=False)
    files = sorted(f for f in os.listdir(JSON_TEST_SUITE)
                   if f.startswith(prefix) and f.endswith(".json"))
    assert files, f"no {prefix}*.json files in {JSON_TEST_SUITE}"
    return [os.path.join(JSON_TEST_SUITE, f) for f in files]


def post_all(srv, files):
    conn = Conn(srv.port)
    h = {"Authorization": f"Bearer {srv.admin}", "Content-Type": "application/json"}
    try:
        for path in files:
            with open(path, "rb") as f:
                body = f.read()
            yield os.path.basename(path), conn.request("POST", "/integrations/execute/j/open",
                                                       body, h)
    finally:
        conn.close()


def test_n_files_are_400(server):
    server.publish(ctx_doc("j/open"))
    bad = []
    for name, r in post_all(server, suite_files("n_")):
        ok = False
        if r.status == 400:
            try:
                err = r.json()["error"]
                ok = isinstance(err["code"], str) and isinstance(err["message"], str)
            except (AssertionError, KeyError, TypeError):
                ok = False
        if not ok:
            bad.append(f"{name}: {r!r}")
    assert not bad, f"{len(bad)} n_ files not refused with 400:\n" + "\n".join(bad)
    server.healthy()
    assert server.runs(integration="j/open") == []


def test_y_files_are_accepted(server):
    server.publish(ctx_doc("j/open"))
    bad = [f"{name}: {r!r}" for name, r in post_all(server, suite_files("y_")) if r.status != 200]
    assert not bad, "\n".join(bad)
    server.healthy()
