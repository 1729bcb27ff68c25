"""Helpers of the black-box HTTP API suite (SPEC §9): a `braid serve` process on a free port
with its own data directory, and a small HTTP client over http.client that sends the request
target exactly as written (requests/urllib3 would normalise `/../` and `//` away, which the
path-trick tests must not).

The document builders and the sanitizer check come from the CLI suite (tests/e2e/conftest.py),
loaded under another module name so that both suites can share one source.
"""
import http.client
import importlib.util
import json as jsonlib
import os
import re
import select
import signal
import subprocess
import threading
import time

_E2E = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e",
                    "conftest.py")
_spec = importlib.util.spec_from_file_location("braid_e2e_helpers", _E2E)
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)

BIN = _e2e.BIN
REPO = _e2e.REPO
JSON_TEST_SUITE = _e2e.JSON_TEST_SUITE
UUID7_RE = _e2e.UUID7_RE
FINISHED = _e2e.FINISHED
check_sanitizers = _e2e.check_sanitizers
integration = _e2e.integration
set_task = _e2e.set_task
call = _e2e.call
echo = _e2e.echo
failing = _e2e.failing
assert_time = _e2e.assert_time

LISTEN_RE = re.compile(r"^listening on http://127\.0\.0\.1:(\d+)\s*$")
START_TIMEOUT = float(os.environ.get("BRAID_START_TIMEOUT", "20"))


# ---- documents used by several modules ----

def ctx_doc(name="t/ctx"):
    """An integration whose output is its whole input context."""
    return integration(name, [set_task("s", {"seen": True})], outputs={"input": "{{input}}"})


def nop_doc(name="t/nop"):
    return integration(name, [set_task("s", {"done": True})], outputs={"done": "{{vars.done}}"})


def slow_doc(name="t/slow", nop="t/nop", **fields):
    """A run that lasts about `ms` milliseconds (payload `{"ms": N}`, default 1500): it
    schedules an async child with that delay and awaits it. Publish nop_doc(nop) first."""
    return integration(name, [
        call("c", nop, strategy="async", delay_ms="{{vars.ms}}"),
        {"id": "w", "type": "await", "runs": ["{{tasks.c.run_id}}"], "timeout_ms": 120000},
    ], inputs={"ms": {"type": "integer", "default": 1500}}, outputs={"slept": "{{vars.ms}}"},
        **fields)


def billing_connector(slug="billing", **fields):
    """The connector of SPEC §5's example (tests/cases/connectors/billing.json, which the CLI
    suite loads too), under SLUG; FIELDS override top-level members."""
    with open(os.path.join(REPO, "tests", "cases", "connectors", "billing.json")) as f:
        doc = jsonlib.load(f)
    doc["slug"] = slug
    doc.update(fields)
    return doc


def billing_connection(secret, connector="billing", base_url="https://billing.example.com/v1",
                       **fields):
    """A PUT /connections/ID body for billing_connector() with api_key = SECRET."""
    body = {"connector": connector, "config": {"base_url": base_url},
            "secrets": {"api_key": secret}}
    body.update(fields)
    return body


# ---- HTTP ----

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            raise AssertionError(f"HTTP {self.status}: body is not JSON: {self.body[:500]!r}")

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


def error_of(resp, status=None, code=None):
    """Assert RESP is an error `{"error": {"code", "message", "detail"?}}`; return that object."""
    if status is not None:
        assert resp.status == status, f"expected {status}, got {resp!r}"
    doc = resp.json()
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), f"no error object: {resp!r}"
    err = doc["error"]
    assert isinstance(err.get("code"), str) and err["code"], resp
    assert isinstance(err.get("message"), str), resp
    if code is not None:
        assert err["code"] == code, f"expected code {code}, got {resp!r}"
    return err


class Conn:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, port, timeout=60):
        self.port = port
        self.timeout = timeout
        self.c = None

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                resp = Resp(r.status, r.getheaders(), data)
                if (r.getheader("connection") or "").lower() == "close":
                    self.close()
                return resp
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                # A closed keep-alive connection: retry once on a fresh one.
                self.close()
                if attempt:
                    raise


_NO_TOKEN = object()


class Server:
    def __init__(self, data, log_dir, args=()):
        self.data = str(data)
        self.log_dir = str(log_dir)
        self.args = [str(a) for a in args]
        self.proc = None
        self.done = True
        self.port = None
        self.admin = None
        self.starts = 0
        self._local = threading.local()

    # -- process --

    def start(self, extra=()):
        os.makedirs(self.log_dir, exist_ok=True)
        self.starts += 1
        self.stderr_path = os.path.join(self.log_dir, f"serve{self.starts}.stderr")
        self.stdout_path = os.path.join(self.log_dir, f"serve{self.starts}.stdout")
        self._err = open(self.stderr_path, "wb")
        cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--data", self.data, *self.args,
               *[str(a) for a in extra]]
        env = dict(os.environ)
        env.pop("BRAID_DATA", None)
        self.cmd = cmd
        self.done = False
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, env=env)
        line = self._first_line(START_TIMEOUT)
        m = LISTEN_RE.match(line)
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"braid serve printed {line!r} instead of 'listening on ...'"
                                 f"\nstderr:\n{self.stderr()[-3000:]}")
        self.port = int(m.group(1))
        assert self.port > 0
        # Keep draining stdout so the server can never block on a full pipe.
        self._out = open(self.stdout_path, "wb")
        self._out.write(line.encode() + b"\n")
        threading.Thread(target=self._drain, args=(self.proc, self._out), daemon=True).start()
        with open(os.path.join(self.data, "admin.token")) as f:
            self.admin = f.read().strip()
        assert self.admin, "admin.token is empty"
        self._local = threading.local()
        return self

    def _first_line(self, timeout):
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"braid serve said nothing within {timeout}s "
                                     f"(stdout so far {buf!r})\nstderr:\n{self.stderr()[-3000:]}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait()
                    raise AssertionError(f"braid serve exited ({self.proc.returncode}) before "
                                         f"listening; stdout {buf!r}\nstderr:\n"
                                         f"{self.stderr()[-3000:]}")
                buf += chunk
        line, _, rest = buf.partition(b"\n")
        self._rest = rest
        return line.decode("utf-8", "replace")

    @staticmethod
    def _drain(proc, out):
        try:
            for chunk in iter(lambda: proc.stdout.read1(4096), b""):
                out.write(chunk)
                out.flush()
        except (ValueError, OSError):
            pass

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def check_sanitizers(self):
        check_sanitizers(self.stderr(), self.cmd)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        rc = self.proc.wait(timeout=timeout)
        self.done = True
        self._close_conns()
        self._err.close()
        self.check_sanitizers()
        return rc

    def stop(self, timeout=60):
        """SIGTERM; assert exit code 0 and no sanitizer report."""
        if self.proc is None or self.done:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"braid serve did not exit within {timeout}s of SIGTERM\n"
                                 f"stderr:\n{self.stderr()[-3000:]}")
        assert rc == 0, f"braid serve exited {rc} after SIGTERM\nstderr:\n{self.stderr()[-3000:]}"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.wait(30)
        assert self.proc.returncode == -signal.SIGKILL

    def _close_conns(self):
        self._local = threading.local()

    # -- HTTP --

    def conn(self):
        c = getattr(self._local, "conn", None)
        if c is None or c.port != self.port:
            c = self._local.conn = Conn(self.port)
        return c

    def request(self, method, path, token=_NO_TOKEN, body=None, json=_NO_TOKEN, headers=None,
                fresh=False):
        """METHOD PATH (sent byte for byte) with `Authorization: Bearer TOKEN` (the admin
        token unless told; None sends none). JSON= sends that value as application/json."""
        h = dict(headers or {})
        if token is _NO_TOKEN:
            token = self.admin
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if json is not _NO_TOKEN:
            body = jsonlib.dumps(json).encode()
            h.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        if body is None and method in ("POST", "PUT"):
            body = b""
        if fresh:
            c = Conn(self.port)
            try:
                return c.request(method, path, body, h)
            finally:
                c.close()
        return self.conn().request(method, path, body, h)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- conveniences --

    def publish(self, *docs):
        for doc in docs:
            r = self.put("/integrations/" + doc["name"], json=doc)
            assert r.status in (200, 201), f"publish {doc['name']}: {r!r}"

    def publish_connector(self, *docs):
        for doc in docs:
            r = self.put("/connectors/" + doc["slug"], json=doc)
            assert r.status in (200, 201), f"publish connector {doc['slug']}: {r!r}"

    def put_connection(self, cid, body):
        r = self.put("/connections/" + cid, json=body)
        assert r.status in (200, 201), f"PUT /connections/{cid}: {r!r}"
        return r.json()

    def token(self, role, scopes=None, description=None):
        """Create a token; return (secret, id)."""
        body = {"role": role}
        if scopes is not None:
            body["scopes"] = scopes
        if description is not None:
            body["description"] = description
        r = self.post("/tokens", json=body)
        assert r.status == 201, f"POST /tokens {body}: {r!r}"
        doc = r.json()
        assert doc["token"].startswith("brd_"), doc
        return doc["token"], doc["id"]

    def execute(self, name, payload=None, query="", token=_NO_TOKEN, headers=None):
        path = f"/integrations/execute/{name}" + (f"?{query}" if query else "")
        if payload is None:
            return self.post(path, token=token, headers=headers)
        return self.post(path, json=payload, token=token, headers=headers)

    def run(self, run_id, token=_NO_TOKEN):
        r = self.get(f"/runs/{run_id}", token=token)
        assert r.status == 200, f"GET /runs/{run_id}: {r!r}"
        return r.json()

    def wait_run(self, run_id, statuses=FINISHED, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            rec = self.run(run_id)
            if rec["status"] in statuses:
                return rec
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {rec['status']} after {timeout}s")
            time.sleep(0.05)

    def runs(self, limit=100, **filters):
        """Every run matching FILTERS, following next_cursor (newest first)."""
        out = []
        cursor = None
        for _ in range(10000):
            q = dict(filters, limit=limit)
            if cursor:
                q["cursor"] = cursor
            qs = "&".join(f"{k}={_quote(str(v))}" for k, v in q.items())
            r = self.get("/runs?" + qs)
            assert r.status == 200, f"GET /runs?{qs}: {r!r}"
            doc = r.json()
            out += doc["runs"]
            cursor = doc.get("next_cursor")
            if not cursor:
                return out
        raise AssertionError("GET /runs pagination does not end")

    def healthy(self):
        r = self.get("/healthz", token=None, fresh=True)
        assert r.status == 200 and r.json() == {"status": "ok"}, r
        return True


def _quote(s):
    from urllib.parse import quote
    return quote(s, safe="")


def start_server(tmp, args=()):
    return Server(os.path.join(str(tmp), "data"), os.path.join(str(tmp), "logs"), args).start()
