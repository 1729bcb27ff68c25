"""Black-box tests of braid's outbound calls (SPEC §2, §4, §5): http and connector tasks, the
address guard, connections, secrets and scrubbing.

The suite must run inside a network namespace whose only interface is loopback:
    unshare -n sh -c 'ip link set lo up && /usr/bin/python3 -m pytest -q tests/outbound'
(`make test-outbound`). There a request that slips past the address guard to a non-loopback
address fails with `network` instead of `blocked`, and one that slips through to a loopback
form reaches the upstream fixture, which counts it: either way the test fails, and no test can
ever send a packet off the machine. Anywhere else the suite refuses to start.

The binary is BRAID_BIN, else <repo>/build/braid. Helpers come from tests/e2e/conftest.py and
tests/api/apilib.py (loaded by path under other module names).
"""
import importlib.util
import json as jsonlib
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_API = os.path.join(os.path.dirname(HERE), "api", "apilib.py")
_spec = importlib.util.spec_from_file_location("braid_apilib", _API)
apilib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apilib)
e2e = apilib._e2e

from fixture import Upstream  # noqa: E402

BIN = apilib.BIN
ALLOW = ("--allow-net", "127.0.0.1/32")

# Every braid this suite starts keeps its master key in its data directory unless a test says
# otherwise.
for _v in ("BRAID_MASTER_KEY", "BRAID_NEW_MASTER_KEY", "BRAID_DATA"):
    os.environ.pop(_v, None)


# ---- the network namespace check ----

def _interfaces():
    """Names of the network interfaces this process can see (from /proc/net/dev)."""
    names = []
    with open("/proc/net/dev") as f:
        for line in f.readlines()[2:]:
            if ":" in line:
                names.append(line.split(":", 1)[0].strip())
    return names


def _isolation_problem():
    try:
        names = _interfaces()
    except OSError as e:
        return f"cannot read /proc/net/dev: {e}"
    if names != ["lo"]:
        return f"network interfaces besides lo are visible: {names}"
    try:
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                             timeout=10).stdout
        links = [ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines() if ":" in ln]
        if links and links != ["lo"]:
            return f"`ip -o link` shows interfaces besides lo: {links}"
        if "UP" not in out.split("lo:", 1)[-1].split(">", 1)[0]:
            return "lo is not up (run `ip link set lo up` first)"
    except (OSError, subprocess.SubprocessError):
        pass  # /proc/net/dev already said only lo
    return None


def pytest_configure(config):
    problem = _isolation_problem()
    if problem:
        raise pytest.UsageError(
            "tests/outbound must run in a network namespace where loopback is the only "
            f"interface ({problem}).\nRun it with `make test-outbound`, i.e.\n"
            "  unshare -n sh -c 'ip link set lo up && /usr/bin/python3 -m pytest -q "
            "tests/outbound'")


@pytest.fixture(scope="session", autouse=True)
def braid_binary():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        pytest.fail(f"braid binary not found or not executable: {BIN} "
                    "(build it with `make`, or set BRAID_BIN)", pytrace=False)
    return BIN


# ---- the upstream ----

@pytest.fixture(scope="module")
def upstream():
    up = Upstream().start()
    yield up
    up.stop()


@pytest.fixture
def up(upstream):
    """The module's upstream with fresh counters for this test."""
    upstream.reset()
    return upstream


# ---- braid ----

@pytest.fixture
def braid(tmp_path):
    """The CLI against a fresh data directory (tests/e2e's Braid)."""
    data = tmp_path / "data"
    files = tmp_path / "files"
    files.mkdir()
    return e2e.Braid(str(data), str(files))


def _server(tmp, args):
    return apilib.start_server(tmp, args)


@pytest.fixture(scope="module")
def allowed_server(tmp_path_factory):
    """One `braid serve --allow-net 127.0.0.1/32` per module."""
    srv = _server(tmp_path_factory.mktemp("allowed"), ALLOW)
    yield srv
    srv.stop()
    srv.check_sanitizers()


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    """One `braid serve` with the default address guard (nothing extra allowed)."""
    srv = _server(tmp_path_factory.mktemp("guarded"), ())
    yield srv
    srv.stop()
    srv.check_sanitizers()


@pytest.fixture
def make_server(tmp_path):
    servers = []

    def start(args=ALLOW, name="s"):
        srv = _server(tmp_path / name, args)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
        srv.check_sanitizers()


# ---- document builders ----

integration = e2e.integration
set_task = e2e.set_task
call = e2e.call


def http_task(tid, url, **more):
    t = {"id": tid, "type": "http", "url": url}
    t.update(more)
    return t


def probe(name, task, response_var="httpResult", extra_tasks=(), **fields):
    """An integration running TASK (continue_on_error) whose output is the task's outcome `o`
    and the vars an http task sets: `result`, `status`, `ok`."""
    task = dict(task)
    task.setdefault("continue_on_error", True)
    return integration(name, [task, *extra_tasks], outputs={
        "o": "{{tasks.%s}}" % task["id"],
        "result": "{{vars.%s}}" % response_var,
        "status": "{{vars.httpStatus}}",
        "ok": "{{vars.httpOk}}",
    }, **fields)


def execute(srv, name, payload=None, query="", headers=None):
    """Run NAME through POST /integrations/execute (sync); return the finished run record."""
    r = srv.execute(name, {} if payload is None else payload, query=query, headers=headers)
    assert r.status == 200, f"execute {name}: {r!r}"
    rec = r.json()
    assert rec["status"] in ("succeeded", "failed"), rec
    return rec


def outcome(srv, name, payload=None):
    """Execute a probe() integration; return its output (o, result, status, ok)."""
    rec = execute(srv, name, payload)
    assert rec["status"] == "succeeded", f"{name}: the probe run itself failed: {rec}"
    return rec["output"]


def publish(srv, *docs):
    for doc in docs:
        r = srv.put("/integrations/" + doc["name"], json=doc)
        assert r.status in (200, 201), f"publish {doc['name']}: {r!r}"


def publish_connector(srv, doc):
    r = srv.put("/connectors/" + doc["slug"], json=doc)
    assert r.status in (200, 201), f"publish connector {doc['slug']}: {r!r}"
    return r


def put_connection(srv, cid, connector, config=None, secrets=None):
    body = {"connector": connector, "config": config or {}, "secrets": secrets or {}}
    r = srv.put("/connections/" + cid, json=body)
    assert r.status in (200, 201), f"PUT /connections/{cid}: {r!r}"
    return r


def json_dumps(v):
    return jsonlib.dumps(v)
