"""Black-box tests of `braid serve` (SPEC §9, issue 3).

Each server runs on a free port (`--listen 127.0.0.1:0`) with its own data directory; the
binary is BRAID_BIN, else <repo>/build/braid. Helpers live in apilib.py.
Run with Debian's Python: /usr/bin/python3 -m pytest -q tests/api
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from apilib import BIN, start_server  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def braid_binary():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        pytest.fail(f"braid binary not found or not executable: {BIN} "
                    "(build it with `make`, or set BRAID_BIN)", pytrace=False)
    return BIN


@pytest.fixture
def make_server(tmp_path):
    """start(args=(), name="s") -> a started Server with its own data dir; every server still
    running at teardown is stopped with SIGTERM and must exit 0 without a sanitizer report."""
    servers = []

    def start(args=(), name="s"):
        srv = start_server(tmp_path / name, args)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
        srv.check_sanitizers()


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One server for a module's read-only checks."""
    srv = start_server(tmp_path_factory.mktemp("srv"))
    yield srv
    srv.stop()
    srv.check_sanitizers()
