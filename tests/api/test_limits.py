"""Limits and hostile clients (SPEC §9 "Limits", issue 3 §4): body size, JSON depth, header
size, slow clients; the server stays healthy after each."""
import socket
import time

import pytest

from apilib import ctx_doc, error_of


@pytest.fixture
def srv(make_server):
    s = make_server(["--max-body", "4096"])
    s.publish(ctx_doc("l/ctx"))
    return s


def test_body_over_max_body_is_413(srv):
    ok = srv.post("/integrations/execute/l/ctx", body=b'"' + b"a" * 4000 + b'"',
                  headers={"Content-Type": "application/json"})
    assert ok.status == 200, ok
    r = srv.post("/integrations/execute/l/ctx", body=b'"' + b"a" * 5000 + b'"',
                 headers={"Content-Type": "application/json"}, fresh=True)
    error_of(r, 413)
    # Also for a publish, and without Content-Length (chunked).
    r = srv.put("/integrations/l/big", body=b" " * 5000 + b"{}", fresh=True)
    error_of(r, 413)
    r = srv.post("/integrations/execute/l/ctx", body=iter([b"x" * 3000, b"y" * 3000]),
                 fresh=True)  # no Content-Length: http.client sends it chunked
    error_of(r, 413)
    srv.healthy()
    assert len(srv.runs(integration="l/ctx")) == 1


def send_big(srv, path, size, declared=True):
    """POST SIZE bytes over a raw socket, tolerating the server answering (and closing)
    before the whole body is sent; return the status line and the body of the answer."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.admin}\r\n"
                f"Content-Length: {size}\r\nConnection: close\r\n\r\n")
        s.sendall(head.encode())
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < size:
                n = min(len(chunk), size - sent)
                s.sendall(chunk[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                out += data
        except ConnectionResetError:
            pass
    finally:
        s.close()
    assert out, "no answer at all"
    status_line, _, rest = out.partition(b"\r\n")
    return status_line, rest.partition(b"\r\n\r\n")[2]


def test_default_max_body_is_10_mib(server):
    server.publish(ctx_doc("l/ctx"))
    status, body = send_big(server, "/integrations/execute/l/ctx", 10 * 1024 * 1024 + 10)
    assert status.split()[1] == b"413", (status, body[:200])
    assert b'"error"' in body
    status, body = send_big(server, "/integrations/execute/l/ctx", 10 * 1024 * 1024 - 100)
    assert status.split()[1] == b"200", (status, body[:200])
    server.healthy()


def nested(depth):
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("ctype", [None, "application/json"])
def test_depth_bomb_is_400(server, ctype):
    srv = server
    srv.publish(ctx_doc("l/ctx"))
    h = {"Content-Type": ctype} if ctype else {}
    r = srv.post("/integrations/execute/l/ctx", body=nested(64), headers=h)
    assert r.status == 200, r
    for depth in (65, 1000, 2000):
        error_of(srv.post("/integrations/execute/l/ctx", body=nested(depth), headers=h), 400)
    r = srv.post("/integrations/execute/l/ctx", body=b'{"a":' * 1500 + b"1" + b"}" * 1500,
                 headers=h)
    error_of(r, 400)
    srv.healthy()
    assert len(srv.runs(integration="l/ctx")) == 1


def test_depth_bomb_in_a_definition(server):
    srv = server
    r = srv.put("/integrations/l/deep", body=b'{"name": "l/deep", "tasks": ' + nested(1000)
                + b"}", headers={"Content-Type": "application/json"})
    assert r.status in (400, 422), r
    error_of(r)
    srv.healthy()


def test_huge_header(srv):
    r = srv.get("/healthz", token=None, headers={"X-Big": "a" * 200000}, fresh=True)
    assert r.status in (413, 431), r
    r = srv.get("/healthz", token=None,
                headers={f"X-H{i}": "v" * 100 for i in range(2000)}, fresh=True)
    assert r.status in (413, 431), r
    srv.healthy()


def test_header_limit_is_a_setting(make_server):
    """--max-header-bytes (default 16 KiB) bounds a request's line and headers: a head just
    under it is read, one over it gets 431, and a larger setting admits it."""
    small = make_server(name="small")
    assert small.get("/healthz", token=None, headers={"X-Big": "a" * 15000},
                     fresh=True).status == 200
    assert small.get("/healthz", token=None, headers={"X-Big": "a" * 17000},
                     fresh=True).status == 431
    small.healthy()
    large = make_server(["--max-header-bytes", "65536"], name="large")
    assert large.get("/healthz", token=None, headers={"X-Big": "a" * 40000},
                     fresh=True).status == 200
    r = large.execute("nope", {}, headers={"X-Big": "a" * 40000})
    assert r.status == 404 and error_of(r)["code"] == "not_found"


def test_huge_url(srv):
    r = srv.get("/runs?integration=" + "a" * 200000, fresh=True)
    assert r.status in (413, 414, 431), r
    srv.healthy()


def raw(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_garbage_requests(srv):
    for data in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /integrations/execute/l/ctx HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: -5\r\n\r\n",
                 b"POST /integrations/execute/l/ctx HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 99999999999999999999999\r\n\r\n"):
        try:
            out = raw(srv.port, data)
        except TimeoutError:
            raise AssertionError(f"{data!r}: neither answered nor closed within 10 s") from None
        assert not out.startswith(b"HTTP/1.1 2"), (data, out[:200])
        srv.healthy()


def test_slow_clients_do_not_hold_the_server(srv):
    socks = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(b"POST /integrations/execute/l/ctx HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
        t0 = time.monotonic()
        srv.healthy()
        r = srv.post("/integrations/execute/l/ctx", json={"a": 1}, fresh=True)
        assert r.status == 200, r
        assert time.monotonic() - t0 < 2
    finally:
        for s in socks:
            s.close()
