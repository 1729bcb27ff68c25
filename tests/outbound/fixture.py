"""A small threaded HTTP/1.1 upstream for the outbound suite (keep-alive, one thread per
connection), run inside the pytest process so tests can also read what it saw directly.

It listens on every loopback address of the test's network namespace (a dual-stack socket on
"::" when IPv6 is up, else 0.0.0.0): the suite only runs where `lo` is the sole interface, so
nothing outside can reach it, and a request that slips past braid's address guard through any
loopback form (127.0.0.2, [::1], [::ffff:127.0.0.1], ...) lands here and is counted, instead
of failing quietly with "connection refused". Tests address it as http://127.0.0.1:PORT.

Routes (every request but the control routes is recorded and counted per path):
  /status/N                      status N, body {"status": N}
  /echo                          {"method", "path", "query", "headers", "body", "json"}
  /echo-secret                   the request's header values and body, echoed in the response
                                 headers and body raw, base64, base64url, percent-encoded and
                                 JSON-escaped (each header value, each space-separated word of
                                 it, and the decoded credentials of a Basic header)
  /slow?ms=N                     waits N ms, then {"slept": N}
  /drip?bytes=N&interval_ms=M    N bytes of "x", one at a time, M ms apart (Content-Length set)
  /huge?bytes=N[&chunked=1]      N bytes of "a", with Content-Length or chunked
  /redirect?to=URL&code=302      a redirect to URL
  /redirect-chain?n=K            K hops (/redirect-chain?n=K-1 ...), then 200 {"hops": "done"}
  /flaky?key=K&fail=N[&status=S] the first N hits with key K answer S (503), then 200
  /json, /text                   a JSON body, a text/plain body
  /hang                          reads the request, never answers (until the fixture stops)
Control (not recorded): /hits (counts per path), /hits/reset, /seen?key=K (headers of each
hit of /flaky with key K), /requests (every recorded request).
"""
import base64
import collections
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTROL = ("/hits", "/hits/reset", "/seen", "/requests")


def forms(value):
    """The encoded forms of a text VALUE that /echo-secret emits and the canary searches."""
    raw = value.encode("utf-8", "surrogateescape")
    b64 = base64.b64encode(raw).decode()
    b64u = base64.urlsafe_b64encode(raw).decode()
    return {
        "raw": value,
        "base64": b64,
        "base64url": b64u.rstrip("="),
        "base64url_padded": b64u,
        "percent": urllib.parse.quote(value, safe=""),
        "json": json.dumps(value)[1:-1],
    }


def pieces(value):
    """VALUE, each space-separated word of it, and the decoded parts of a Basic credential."""
    out = [value]
    words = value.split()
    out += words
    if len(words) == 2 and words[0].lower() == "basic":
        try:
            dec = base64.b64decode(words[1], validate=True).decode("utf-8", "replace")
            out.append(dec)
            out += dec.split(":", 1)
        except ValueError:
            pass
    return [p for p in dict.fromkeys(out) if p]


class Upstream(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Fan-outs open many connections at once; the default backlog of 5 drops their SYNs, and
    # the retries (1 s, 3 s...) would stand in for the engine's own concurrency.
    request_queue_size = 256

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = collections.Counter()
        self.requests = []
        self.flaky = collections.Counter()
        self.seen = collections.defaultdict(list)
        self.stopping = threading.Event()
        try:
            self.address_family = socket.AF_INET6
            super().__init__(("::", 0), Handler, bind_and_activate=False)
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.server_bind()
            self.server_activate()
        except OSError:
            self.address_family = socket.AF_INET
            super().__init__(("0.0.0.0", 0), Handler)
        self.port = self.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()

    # -- what it saw --

    def reset(self):
        with self.lock:
            self.hits.clear()
            self.requests.clear()
            self.flaky.clear()
            self.seen.clear()

    def total_hits(self):
        with self.lock:
            return sum(self.hits.values())

    def hits_of(self, path):
        with self.lock:
            return self.hits[path]

    def requests_to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def url(self, path):
        return self.base + path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstream/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    # every method goes through one dispatcher
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def do_CONNECT(self):  # a proxy tunnel request: record it, refuse it
        self._record(b"")
        self._send(405, {"error": "no proxy here"})

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _record(self, body):
        u = urllib.parse.urlsplit(self.path)
        rec = {
            "method": self.command,
            "target": self.path,
            "path": u.path if not u.scheme else self.path,
            "query": u.query,
            "headers": [(k, v) for k, v in self.headers.items()],
            "body": body,
            "time": time.monotonic(),
        }
        with self.server.lock:
            self.server.hits[rec["path"]] += 1
            self.server.requests.append(rec)
        return rec

    def _send(self, status, body, ctype="application/json", headers=(), chunked=False):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status in (204, 304) or 100 <= status < 200:
            self.end_headers()
            return
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = 65536
            for i in range(0, len(body), step):
                part = body[i:i + step]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def _dispatch(self):
        body = self._read_body()
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        if path in CONTROL and not u.scheme:
            return self._control(path, q)
        self._rec = self._record(body)
        try:
            self._route(path, q, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _control(self, path, q):
        srv = self.server
        with srv.lock:
            if path == "/hits":
                doc = dict(srv.hits)
            elif path == "/hits/reset":
                srv.hits.clear()
                srv.requests.clear()
                srv.flaky.clear()
                srv.seen.clear()
                doc = {"reset": True}
            elif path == "/seen":
                doc = srv.seen.get(q.get("key", ""), [])
            else:
                doc = [{k: (v.decode("latin-1") if isinstance(v, bytes) else v)
                        for k, v in r.items()} for r in srv.requests]
        self._send(200, doc)

    def _route(self, path, q, body):
        srv = self.server
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return self._send(code, {"status": code})
        if path == "/echo":
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            return self._send(200, {
                "method": self.command,
                "path": path,
                "target": self.path,
                "query": dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                                     keep_blank_values=True)),
                "raw_query": urllib.parse.urlsplit(self.path).query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "json": parsed,
            })
        if path == "/echo-secret":
            return self._echo_secret(body)
        if path == "/slow":
            ms = int(q.get("ms", "1000"))
            srv.stopping.wait(ms / 1000.0)
            return self._send(200, {"slept": ms})
        if path == "/drip":
            n = int(q.get("bytes", "10"))
            gap = int(q.get("interval_ms", "100")) / 1000.0
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.flush()
            for _ in range(n):
                if srv.stopping.wait(gap):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
            return
        if path == "/huge":
            n = int(q.get("bytes", "1024"))
            return self._send(200, b"a" * n, ctype="application/octet-stream",
                              chunked=q.get("chunked") == "1")
        if path == "/redirect":
            code = int(q.get("code", "302"))
            return self._send(code, {"redirect": q.get("to", "/json")},
                              headers=[("Location", q.get("to", "/json"))])
        if path == "/redirect-chain":
            n = int(q.get("n", "1"))
            if n <= 0:
                return self._send(200, {"hops": "done"})
            return self._send(302, {"left": n},
                              headers=[("Location", f"/redirect-chain?n={n - 1}")])
        if path == "/flaky":
            key = q.get("key", "")
            fail = int(q.get("fail", "1"))
            status = int(q.get("status", "503"))
            with srv.lock:
                srv.flaky[key] += 1
                n = srv.flaky[key]
                srv.seen[key].append({k.lower(): v for k, v in self.headers.items()})
            if n <= fail:
                return self._send(status, {"hit": n, "ok": False})
            return self._send(200, {"hit": n, "ok": True})
        if path == "/json":
            return self._send(200, {"hello": "world", "n": 42, "list": [1, 2, 3],
                                    "nested": {"a": None}})
        if path == "/text":
            return self._send(200, "plain text, not JSON\n", ctype="text/plain; charset=utf-8")
        if path == "/hang":
            srv.stopping.wait(120)
            self.close_connection = True
            return
        return self._send(404, {"error": "no route", "path": path})

    def _echo_secret(self, body):
        values = [v for _, v in self.headers.items()]
        target = urllib.parse.urlsplit(self.path)
        values.append(self.path)
        values += [v for _, v in urllib.parse.parse_qsl(target.query, keep_blank_values=True)]
        text = body.decode("utf-8", "replace")
        if text:
            values.append(text)
            try:
                doc = json.loads(text)
                values += [v for v in _strings(doc)]
            except ValueError:
                pass
        out = []
        hdrs = []
        i = 0
        for v in values:
            for p in pieces(v):
                f = forms(p)
                out.append(f)
                for name, enc in f.items():
                    # header values must stay one printable latin-1 line
                    if all(32 <= ord(c) < 127 for c in enc):
                        hdrs.append((f"X-Echo-{i}-{name}", enc))
                i += 1
        doc = json.dumps({"target": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": text, "forms": out}).encode()
        hdrs = hdrs[:400]
        with self.server.lock:  # what was sent back, for the canary's self-check
            self._rec["response"] = doc + b"\n".join(f"{k}: {v}".encode() for k, v in hdrs)
        self._send(200, doc, headers=hdrs)


def _strings(doc):
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)
