"""Black-box tests of the braid command line (SPEC §1-3, §6-8, §10).

Every test gets its own data directory. The binary is BRAID_BIN, else <repo>/build/braid.
Run with Debian's Python: /usr/bin/python3 -m pytest -q tests/e2e
"""
import datetime
import json
import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BRAID_BIN") or os.path.join(REPO, "build", "braid")
JSON_TEST_SUITE = os.path.normpath(
    os.path.join(REPO, "..", "shared", "testdata", "JSONTestSuite", "test_parsing"))

UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
FINISHED = ("succeeded", "failed", "cancelled")


SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: ")


def check_sanitizers(stderr, cmd):
    """Fail on any sanitizer report: under the ASan build a report exits 1, the same code as
    an ordinary failed run, so the exit code alone would hide it."""
    m = SANITIZER_RE.search(stderr or "")
    if m:
        raise AssertionError(f"sanitizer report from {' '.join(map(str, cmd))}:\n"
                             f"{stderr[max(0, m.start() - 200):m.start() + 3000]}")


@pytest.fixture(scope="session", autouse=True)
def braid_binary():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        pytest.fail(f"braid binary not found or not executable: {BIN} "
                    "(build it with `make`, or set BRAID_BIN)", pytrace=False)
    return BIN


class Braid:
    """Runs the binary against one data directory."""

    def __init__(self, data, tmp):
        self.data = data
        self.tmp = tmp
        self._n = 0
        self.last = None  # the CompletedProcess of the latest run_json

    def __call__(self, *args, input=None, timeout=60, env=None):
        """Run `braid ARGS... --data DATA` and return the CompletedProcess (text)."""
        cmd = [BIN, *[str(a) for a in args], "--data", self.data]
        full_env = dict(os.environ)
        full_env.pop("BRAID_DATA", None)
        if env:
            full_env.update(env)
        # errors="replace": a message may quote the invalid bytes of a refused document.
        r = subprocess.run(cmd, input=input, capture_output=True, text=True,
                           errors="replace", timeout=timeout, env=full_env)
        check_sanitizers(r.stderr, cmd)
        return r

    def popen(self, *args, **kw):
        cmd = [BIN, *[str(a) for a in args], "--data", self.data]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", **kw)

    def write(self, content, suffix=".json"):
        """Write CONTENT (a str, or any JSON value) to a fresh file; return its path."""
        self._n += 1
        path = os.path.join(self.tmp, f"f{self._n}{suffix}")
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def publish(self, doc):
        """Publish DOC (a dict or JSON text); assert it worked; return stdout."""
        path = self.write(doc)
        r = self("publish", path)
        assert r.returncode == 0, f"publish failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def publish_all(self, *docs):
        for d in docs:
            self.publish(d)

    def run(self, name, payload=None, *flags, timeout=60):
        """`braid run NAME --input PAYLOAD FLAGS...` (no --json); return the CompletedProcess."""
        args = ["run", name]
        if payload is not None:
            args += ["--input", "@" + self.write(json.dumps(payload))]
        return self(*args, *flags, timeout=timeout)

    def run_json(self, name, payload=None, *flags, timeout=60):
        """`braid run NAME --input PAYLOAD FLAGS... --json`; return the parsed record."""
        r = self.run(name, payload, *flags, "--json", timeout=timeout)
        self.last = r
        try:
            rec = json.loads(r.stdout)
        except ValueError:
            raise AssertionError(
                f"run {name} --json printed no JSON (exit {r.returncode}):\n"
                f"stdout: {r.stdout}\nstderr: {r.stderr}") from None
        # Exit 0 when the run succeeded (or was queued), 1 when it failed.
        status = rec.get("status") if isinstance(rec, dict) else None
        if status in ("succeeded", "queued", "scheduled"):
            assert r.returncode == 0, f"{name}: {status} but exit {r.returncode}: {r.stderr}"
        elif status in ("failed", "cancelled"):
            assert r.returncode == 1, f"{name}: {status} but exit {r.returncode}: {r.stderr}"
        return rec

    def json(self, *args, ok=True, timeout=60):
        """Run a command with --json and return the parsed document."""
        r = self(*args, "--json", timeout=timeout)
        if ok:
            assert r.returncode == 0, f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"{args} --json printed no JSON (exit {r.returncode}):\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}") from None

    def runs(self, *filters):
        """The run records (`braid runs --json --limit 1000 FILTERS...`), newest first."""
        return self.json("runs", "--limit", "1000", *filters)

    def show(self, run_id):
        return self.json("show", run_id)

    def tree(self, run_id):
        return self.json("show", run_id, "--tree")


@pytest.fixture
def braid(tmp_path):
    data = tmp_path / "data"
    files = tmp_path / "files"
    files.mkdir()
    return Braid(str(data), str(files))


@pytest.fixture
def publish(braid):
    return braid.publish


@pytest.fixture
def run_json(braid):
    return braid.run_json


# ---- small document builders shared by the tests ----

def integration(name, tasks, **fields):
    """An integration document: NAME, TASKS, and any other top-level FIELDS."""
    doc = {"name": name}
    doc.update(fields)
    doc["tasks"] = tasks
    return doc


def set_task(tid, values, **more):
    t = {"id": tid, "type": "set", "values": values}
    t.update(more)
    return t


def call(tid, target, **more):
    t = {"id": tid, "type": "call_integration", "integration": target}
    t.update(more)
    return t


def echo(name, **fields):
    """An integration whose output is its payload's `v` (plus every other var)."""
    return integration(name, [set_task("s", {"echoed": "{{vars.v}}"})], **fields)


def failing(name, code="boom", message="it broke", **fields):
    return integration(name, [{"id": "f", "type": "fail", "code": code, "message": message}],
                       **fields)


def by_integration(records, name):
    return [r for r in records if r["integration"] == name]


def assert_time(value):
    assert isinstance(value, str) and TIME_RE.match(value), f"not RFC 3339 UTC ms: {value!r}"


def parse_time(value):
    """Seconds since the epoch of an RFC 3339 UTC time with milliseconds ("...T...123Z")."""
    assert_time(value)
    return (datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
            .replace(tzinfo=datetime.timezone.utc).timestamp())
