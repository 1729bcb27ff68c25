"""The http task (SPEC §4): result and vars, request fields, status outcomes and cases,
timeouts, response size, redirects. One `braid serve --allow-net 127.0.0.1/32` and one
upstream per module."""
import base64
import json
import time

import pytest

from conftest import (ALLOW, execute, http_task, integration, outcome, probe, publish, set_task)


@pytest.fixture
def srv(allowed_server):
    return allowed_server


def test_get_json_result_and_vars(srv, up):
    publish(srv, probe("h/json", http_task("h", up.url("/json"))))
    out = outcome(srv, "h/json")
    o = out["o"]
    assert o["success"] is True and o["error"] is None
    assert o["status"] == 200
    assert o["attempts"] == 1
    assert isinstance(o["duration_ms"], int) and o["duration_ms"] >= 0
    res = o["result"]
    assert set(res) == {"status", "headers", "body"}, res
    assert res["status"] == 200
    assert res["body"] == {"hello": "world", "n": 42, "list": [1, 2, 3], "nested": {"a": None}}
    assert isinstance(res["headers"], dict)
    assert all(k == k.lower() for k in res["headers"]), res["headers"]
    assert "application/json" in res["headers"]["content-type"]
    assert out["result"] == res["body"]
    assert out["status"] == 200 and out["ok"] is True
    assert up.hits_of("/json") == 1
    req = up.requests_to("/json")[0]
    assert req["method"] == "GET" and req["target"] == "/json"


def test_text_body_is_a_string(srv, up):
    publish(srv, probe("h/text", http_task("h", up.url("/text"))))
    out = outcome(srv, "h/text")
    assert out["o"]["success"] is True
    assert out["result"] == "plain text, not JSON\n"
    assert out["o"]["result"]["body"] == "plain text, not JSON\n"


def test_response_var(srv, up):
    publish(srv, probe("h/rvar", http_task("h", up.url("/json"), response_var="answer"),
                       response_var="answer"))
    out = outcome(srv, "h/rvar")
    assert out["result"]["hello"] == "world"
    assert out["status"] == 200 and out["ok"] is True


def test_run_uses_response_in_later_tasks(srv, up):
    publish(srv, integration("h/chain", [
        http_task("h", up.url("/json")),
        set_task("s", {"greeting": "{{vars.httpResult.hello}}", "code": "{{tasks.h.status}}",
                       "n2": "{{tasks.h.result.body.n + 1}}"}),
    ], outputs=["greeting", "code", "n2"]))
    rec = execute(srv, "h/chain")
    assert rec["status"] == "succeeded", rec
    assert rec["output"] == {"greeting": "world", "code": 200, "n2": 43}


def test_non_2xx_is_http_status_failure(srv, up):
    publish(srv, probe("h/404", http_task("h", up.url("/status/404"))))
    out = outcome(srv, "h/404")
    o = out["o"]
    assert o["success"] is False
    assert o["status"] == 404
    assert o["error"]["code"] == "http_status"
    assert o["error"]["status"] == 404
    assert o["error"]["task"] == "h"
    assert o["result"]["status"] == 404 and o["result"]["body"] == {"status": 404}
    assert out["status"] == 404 and out["ok"] is False
    assert out["result"] == {"status": 404}
    assert o["error"]["retryable"] is False


def test_unhandled_http_failure_fails_the_run(srv, up):
    publish(srv, integration("h/500run", [http_task("h", up.url("/status/500")),
                                          set_task("after", {"x": 1})]))
    rec = execute(srv, "h/500run")
    assert rec["status"] == "failed"
    assert rec["error"]["code"] == "http_status" and rec["error"]["status"] == 500
    assert rec["error"]["task"] == "h"
    assert rec["error"]["retryable"] is True


@pytest.mark.parametrize("code", [201, 204, 299])
def test_every_2xx_is_success(srv, up, code):
    publish(srv, probe(f"h/ok{code}", http_task("h", up.url(f"/status/{code}"))))
    out = outcome(srv, f"h/ok{code}")
    assert out["o"]["success"] is True and out["ok"] is True and out["status"] == code


def _routed(name, url, cases, **task):
    """Task h with CASES; each case target records which one ran in vars.route."""
    targets = sorted(set(v for v in cases.values() if v != "end"))
    tasks = [http_task("h", url, cases=cases, **task)]
    tasks.append(set_task("fallthrough", {"route": "next"}, next="end"))
    for t in targets:
        tasks.append(set_task(t, {"route": t}, next="end"))
    return integration(name, tasks, outputs=["route"])


@pytest.mark.parametrize("path,cases,expected", [
    ("/status/404", {"404": "exact", "4xx": "cls", "failure": "fail"}, "exact"),
    ("/status/404", {"4xx": "cls", "failure": "fail"}, "cls"),
    ("/status/409", {"404": "exact", "4xx": "cls", "failure": "fail"}, "cls"),
    ("/status/503", {"404": "exact", "4xx": "cls", "failure": "fail"}, "fail"),
    ("/status/503", {"5xx": "cls5", "failure": "fail"}, "cls5"),
    ("/status/201", {"201": "exact", "2xx": "cls2", "success": "ok"}, "exact"),
    ("/status/202", {"201": "exact", "2xx": "cls2", "success": "ok"}, "cls2"),
    ("/json", {"success": "ok", "failure": "fail"}, "ok"),
    ("/json", {"failure": "fail"}, "next"),
])
def test_cases_most_specific_first(srv, up, path, cases, expected):
    name = "h/case-" + path.strip("/").replace("/", "-") + "-" + "-".join(sorted(cases))
    name = name.replace("_", "-")
    publish(srv, _routed(name, up.url(path), cases))
    rec = execute(srv, name)
    assert rec["status"] == "succeeded", rec
    assert rec["output"]["route"] == expected


def test_cases_timeout_network_blocked_too_large(srv, up):
    cases = {"timeout": "t", "network": "n", "blocked": "b", "response_too_large": "big",
             "failure": "fail"}
    publish(srv, _routed("h/c-timeout", up.url("/slow?ms=3000"), cases, timeout_ms=300))
    publish(srv, _routed("h/c-big", up.url("/huge?bytes=5000"), cases, max_response_bytes=100))
    publish(srv, _routed("h/c-blocked", "http://127.0.0.2:%d/json" % up.port, cases))
    publish(srv, _routed("h/c-network", "http://127.0.0.1:1/json", cases))
    assert execute(srv, "h/c-timeout")["output"]["route"] == "t"
    assert execute(srv, "h/c-big")["output"]["route"] == "big"
    assert execute(srv, "h/c-blocked")["output"]["route"] == "b"
    assert execute(srv, "h/c-network")["output"]["route"] == "n"


def test_no_response_is_status_zero(srv, up):
    # Port 1 on loopback: nothing listens, the connect is refused.
    publish(srv, probe("h/refused", http_task("h", "http://127.0.0.1:1/x")))
    out = outcome(srv, "h/refused")
    o = out["o"]
    assert o["success"] is False
    assert o["error"]["code"] == "network"
    assert o["status"] == 0
    assert out["status"] == 0 and out["ok"] is False


# ---- request fields ----

def test_method_headers_query(srv, up):
    publish(srv, probe("h/req", http_task(
        "h", up.url("/echo"), method="DELETE",
        headers={"X-One": "1", "X-Name": "{{vars.who}}"},
        query={"q": "{{vars.q}}", "plain": "x", "n": 5})))
    q = "a b&c=d/é?+%"
    out = outcome(srv, "h/req", {"who": "Ada", "q": q})
    echo = out["result"]
    assert echo["method"] == "DELETE"
    assert echo["headers"]["x-one"] == "1"
    assert echo["headers"]["x-name"] == "Ada"
    assert echo["query"] == {"q": q, "plain": "x", "n": "5"}
    # percent-encoded: no raw space, '&' or '=' inside the value
    raw = echo["raw_query"]
    assert " " not in raw and raw.count("&") == 2 and raw.count("=") == 3, raw


def test_query_appends_to_url_query(srv, up):
    publish(srv, probe("h/req2", http_task("h", up.url("/echo?a=1"), query={"b": "2"})))
    echo = outcome(srv, "h/req2")["result"]
    assert echo["query"] == {"a": "1", "b": "2"}


def test_json_body(srv, up):
    body = {"order": "{{vars.order}}", "fixed": [1, True, None], "text": "x{{vars.n}}"}
    publish(srv, probe("h/body", http_task("h", up.url("/echo"), method="POST", body=body)))
    out = outcome(srv, "h/body", {"order": {"id": 7, "lines": []}, "n": 3})
    echo = out["result"]
    assert echo["method"] == "POST"
    assert echo["headers"]["content-type"].startswith("application/json")
    assert echo["json"] == {"order": {"id": 7, "lines": []}, "fixed": [1, True, None],
                            "text": "x3"}


def test_string_body_sent_as_is(srv, up):
    publish(srv, probe("h/sbody", http_task("h", up.url("/echo"), method="PUT",
                                            body="raw <body> {{vars.n}} \"q\"",
                                            headers={"Content-Type": "text/plain"})))
    echo = outcome(srv, "h/sbody", {"n": 9})["result"]
    assert echo["method"] == "PUT"
    assert echo["body"] == 'raw <body> 9 "q"'
    assert echo["headers"]["content-type"] == "text/plain"


def test_patch_method(srv, up):
    publish(srv, probe("h/patch", http_task("h", up.url("/echo"), method="PATCH",
                                            body={"a": 1})))
    echo = outcome(srv, "h/patch")["result"]
    assert echo["method"] == "PATCH" and echo["json"] == {"a": 1}


@pytest.mark.parametrize("auth,header,expected", [
    ({"type": "basic", "username": "ada", "password": "{{vars.pw}}"}, "authorization",
     "Basic " + base64.b64encode(b"ada:s3cr:et!").decode()),
    ({"type": "bearer", "token": "tok-{{vars.pw}}"}, "authorization", "Bearer tok-s3cr:et!"),
    ({"type": "header", "name": "X-Api-Key", "value": "{{vars.pw}}"}, "x-api-key", "s3cr:et!"),
])
def test_auth(srv, up, auth, header, expected):
    name = "h/auth-" + auth["type"]
    publish(srv, probe(name, http_task("h", up.url("/echo"), auth=auth)))
    echo = outcome(srv, name, {"pw": "s3cr:et!"})["result"]
    assert echo["headers"][header] == expected


def test_url_template(srv, up):
    publish(srv, probe("h/urlt", http_task("h", up.base + "/status/{{vars.code}}")))
    assert outcome(srv, "h/urlt", {"code": 418})["status"] == 418


# ---- timeouts ----

def test_timeout_ms(srv, up):
    publish(srv, probe("h/slow", http_task("h", up.url("/slow?ms=3000"), timeout_ms=300)))
    t0 = time.monotonic()
    out = outcome(srv, "h/slow")
    took = time.monotonic() - t0
    o = out["o"]
    assert o["success"] is False and o["error"]["code"] == "timeout"
    assert o["status"] == 0 and out["status"] == 0
    assert took < 2.5, f"a 300 ms timeout took {took:.1f}s"
    assert o["duration_ms"] < 2500


def test_slow_but_within_timeout(srv, up):
    publish(srv, probe("h/slowok", http_task("h", up.url("/slow?ms=200"), timeout_ms=3000)))
    out = outcome(srv, "h/slowok")
    assert out["o"]["success"] is True and out["result"] == {"slept": 200}


def test_drip_past_timeout(srv, up):
    # 30 bytes, one per 100 ms: 3 s in all; the attempt's 800 ms deadline covers the body too.
    publish(srv, probe("h/drip", http_task("h", up.url("/drip?bytes=30&interval_ms=100"),
                                           timeout_ms=800)))
    t0 = time.monotonic()
    o = outcome(srv, "h/drip")["o"]
    assert o["success"] is False and o["error"]["code"] == "timeout"
    assert time.monotonic() - t0 < 2.5


def test_drip_within_timeout(srv, up):
    publish(srv, probe("h/dripok", http_task("h", up.url("/drip?bytes=5&interval_ms=20"),
                                             timeout_ms=3000)))
    out = outcome(srv, "h/dripok")
    assert out["o"]["success"] is True and out["result"] == "xxxxx"


@pytest.mark.parametrize("value", [60001, 0, -1, "soon"])
def test_timeout_ms_out_of_range_is_refused_at_publish(srv, value):
    doc = probe("h/badtimeout", http_task("h", "http://127.0.0.1:1/", timeout_ms=value))
    r = srv.put("/integrations/h/badtimeout", json=doc)
    assert r.status == 422, r
    assert "/tasks/0/timeout_ms" in {e["pointer"] for e in r.json()["error"]["detail"]["errors"]}


def test_timeout_ms_60000_is_accepted(srv):
    doc = probe("h/maxtimeout", http_task("h", "http://127.0.0.1:1/", timeout_ms=60000))
    r = srv.put("/integrations/h/maxtimeout", json=doc)
    assert r.status in (200, 201), r


def test_run_deadline_caps_the_request(srv, up):
    # The run's own 500 ms deadline is shorter than the task's default 10 s.
    publish(srv, integration("h/rundl", [http_task("h", up.url("/slow?ms=5000"))],
                             timeout_ms=500))
    t0 = time.monotonic()
    rec = execute(srv, "h/rundl")
    assert time.monotonic() - t0 < 3.5
    assert rec["status"] == "failed" and rec["error"]["code"] == "timeout", rec


# ---- response size ----

@pytest.mark.parametrize("chunked", ["0", "1"])
def test_max_response_bytes(srv, up, chunked):
    name = "h/huge" + chunked
    publish(srv, probe(name, http_task("h", up.base + "/huge?bytes={{vars.n}}&chunked=" + chunked,
                                       max_response_bytes=1000)))
    o = outcome(srv, name, {"n": 1000})["o"]
    assert o["success"] is True and len(o["result"]["body"]) == 1000
    out = outcome(srv, name, {"n": 1001})
    o = out["o"]
    assert o["success"] is False and o["error"]["code"] == "response_too_large", o
    assert out["ok"] is False


def test_default_max_response_is_10_mib(srv, up):
    publish(srv, probe("h/huge-default", http_task(
        "h", up.base + "/huge?bytes={{vars.n}}&chunked=1", timeout_ms=30000)))
    o = outcome(srv, "h/huge-default", {"n": 10 * 1024 * 1024 + 1})["o"]
    assert o["success"] is False and o["error"]["code"] == "response_too_large", o
    o = outcome(srv, "h/huge-default", {"n": 2 * 1024 * 1024})["o"]
    assert o["success"] is True


# ---- redirects ----

def test_redirect_followed(srv, up):
    publish(srv, probe("h/redir", http_task("h", up.url("/redirect?to=/json&code=302"))))
    out = outcome(srv, "h/redir")
    assert out["o"]["success"] is True and out["status"] == 200
    assert out["result"]["hello"] == "world"
    assert up.hits_of("/redirect") == 1 and up.hits_of("/json") == 1


@pytest.mark.parametrize("code", [301, 303, 307, 308])
def test_redirect_codes(srv, up, code):
    name = f"h/redir{code}"
    publish(srv, probe(name, http_task("h", up.url(f"/redirect?to=/json&code={code}"))))
    out = outcome(srv, name)
    assert out["o"]["success"] is True and out["result"]["hello"] == "world"


def test_five_hops_allowed(srv, up):
    publish(srv, probe("h/hops5", http_task("h", up.url("/redirect-chain?n=5"))))
    out = outcome(srv, "h/hops5")
    assert out["o"]["success"] is True and out["result"] == {"hops": "done"}
    assert up.hits_of("/redirect-chain") == 6


def test_sixth_hop_fails(srv, up):
    # retried on network errors, yet a redirect loop is not walked again
    publish(srv, probe("h/hops6", http_task("h", up.url("/redirect-chain?n=6"),
                                            retry={"max_attempts": 3, "initial_ms": 10})))
    o = outcome(srv, "h/hops6")["o"]
    assert o["success"] is False, o
    assert o["error"]["code"] == "network", o
    assert "redirect" in o["error"]["message"], o
    assert o["error"]["retryable"] is False and o["attempts"] == 1, o
    # the first request and five redirects; the sixth is not followed
    assert up.hits_of("/redirect-chain") == 6
    assert up.requests_to("/redirect-chain")[-1]["target"] == "/redirect-chain?n=1"


def test_follow_redirects_false(srv, up):
    publish(srv, probe("h/nofollow", http_task("h", up.url("/redirect?to=/json&code=302"),
                                               follow_redirects=False)))
    out = outcome(srv, "h/nofollow")
    o = out["o"]
    assert o["success"] is False
    assert o["status"] == 302 and o["error"]["code"] == "http_status"
    assert o["result"]["headers"]["location"] == "/json"
    assert up.hits_of("/json") == 0


@pytest.mark.parametrize("target", [
    "http://127.0.0.2:{port}/json",
    "http://2130706434:{port}/json",
    "http://[::1]:{port}/json",
    "http://[::ffff:127.0.0.2]:{port}/json",
    "http://10.0.0.1/json",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/json",
])
def test_redirect_to_refused_address_is_blocked(srv, up, target):
    target = target.format(port=up.port)
    name = "h/redir-blocked"
    publish(srv, probe(name, http_task("h", up.base + "/redirect?to={{vars.to | urlencode}}")))
    o = outcome(srv, name, {"to": target})["o"]
    assert o["success"] is False
    assert o["error"]["code"] == "blocked", o
    assert up.hits_of("/redirect") == 1
    assert up.hits_of("/json") == 0, "the refused hop reached the upstream"


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1:{port}/json",
                                    "gopher://127.0.0.1:{port}/_GET%20/json",
                                    "dict://127.0.0.1:{port}/json"])
def test_redirect_to_other_scheme_is_blocked(srv, up, target):
    target = target.format(port=up.port)
    publish(srv, probe("h/redir-scheme", http_task(
        "h", up.base + "/redirect?to={{vars.to | urlencode}}")))
    o = outcome(srv, "h/redir-scheme", {"to": target})["o"]
    assert o["success"] is False, o
    assert o["error"]["code"] == "blocked", o
    assert "root:" not in json.dumps(o)
    assert up.hits_of("/json") == 0 and up.hits_of("/_GET /json") == 0


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "FILE:///etc/passwd", "ftp://127.0.0.1:{port}/json",
    "gopher://127.0.0.1:{port}/_GET%20/json%20HTTP/1.0%0D%0A%0D%0A",
    "dict://127.0.0.1:{port}/info", "ldap://127.0.0.1:{port}/", "telnet://127.0.0.1:{port}/",
    "scp://127.0.0.1:{port}/x", "tftp://127.0.0.1:{port}/x", "smtp://127.0.0.1:{port}/",
])
def test_other_schemes_are_blocked(srv, up, url):
    url = url.format(port=up.port)
    publish(srv, probe("h/scheme", http_task("h", "{{vars.url}}")))
    o = outcome(srv, "h/scheme", {"url": url})["o"]
    assert o["success"] is False, o
    assert o["error"]["code"] == "blocked", o
    assert url.split(":")[0].lower() in o["error"]["message"].lower(), o["error"]
    assert "root:" not in json.dumps(o)
    assert up.total_hits() == 0, up.requests


@pytest.mark.parametrize("url", [
    "127.0.0.1:{port}/json", "//127.0.0.1:{port}/json", "/json", "javascript:alert(1)",
    "", "http://", "not a url at all",
])
def test_urls_without_http_scheme_are_refused(srv, up, url):
    """No scheme (libcurl would guess http) or no URL at all: refused before any connect,
    as `blocked` or as `input_invalid` (not a valid URL)."""
    url = url.format(port=up.port)
    publish(srv, probe("h/noscheme", http_task("h", "{{vars.url}}")))
    o = outcome(srv, "h/noscheme", {"url": url})["o"]
    assert o["success"] is False, o
    assert o["error"]["code"] in ("blocked", "input_invalid"), o
    assert o["status"] == 0
    assert up.total_hits() == 0, up.requests


# ---- header and URL injection ----

@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nX-Injected: 1", "a\rX-Injected: 1",
                                   "a\r\n\r\nGET /json HTTP/1.1"])
def test_header_value_cannot_inject(srv, up, value):
    publish(srv, probe("h/inject", http_task("h", up.url("/echo"), headers={"X-A": "{{vars.v}}"})))
    o = outcome(srv, "h/inject", {"v": value})["o"]
    for r in up.requests:
        names = {k.lower() for k, _ in r["headers"]}
        assert "x-injected" not in names, r
    assert up.hits_of("/json") == 0
    if o["success"]:
        assert "x-injected" not in o["result"]["body"]["headers"]
    else:
        assert o["error"]["code"] in ("input_invalid", "blocked"), o


@pytest.mark.parametrize("tail", ["/echo HTTP/1.1\r\nX-Injected: 1\r\n\r\n", "/echo\r\nX-Injected: 1",
                                  "/echo?a=1 HTTP/1.1\r\nX-Injected: 1"])
def test_url_cannot_inject(srv, up, tail):
    publish(srv, probe("h/uinject", http_task("h", up.base + "{{vars.tail}}")))
    outcome(srv, "h/uinject", {"tail": tail})
    for r in up.requests:
        assert "x-injected" not in {k.lower() for k, _ in r["headers"]}, r


def test_header_name_from_auth_cannot_inject(srv, up):
    publish(srv, probe("h/ninject", http_task("h", up.url("/echo"), auth={
        "type": "header", "name": "{{vars.n}}", "value": "v"})))
    outcome(srv, "h/ninject", {"n": "X-A: b\r\nX-Injected"})
    for r in up.requests:
        assert "x-injected" not in {k.lower() for k, _ in r["headers"]}, r


# ---- concurrency ----

def test_many_requests_in_parallel(srv, up):
    publish(srv, integration("h/one", [http_task("h", up.base + "/slow?ms=200&i={{vars.i}}")],
                             outputs={"slept": "{{vars.httpResult.slept}}"}))
    publish(srv, integration("h/fan", [
        {"id": "c", "type": "call_integration", "integration": "h/one", "strategy": "sync",
         "for_each": "{{vars.items}}", "parallelism": 32, "input": {"i": "{{item}}"}},
    ], outputs={"r": "{{tasks.c.result}}"}))
    t0 = time.monotonic()
    rec = execute(srv, "h/fan", {"items": list(range(48))})
    took = time.monotonic() - t0
    assert rec["status"] == "succeeded", rec
    assert [x["slept"] for x in rec["output"]["r"]] == [200] * 48
    assert up.hits_of("/slow") == 48
    assert took < 48 * 0.2 / 2, f"48 requests of 200 ms took {took:.1f}s: not concurrent"


# ---- the redirect rules for credentials ----

def test_authorization_not_carried_to_another_host(make_server, up):
    srv = make_server(("--allow-net", "127.0.0.0/8"))
    target = f"http://127.0.0.2:{up.port}/echo"
    publish(srv, probe("h/redir-auth", http_task(
        "h", up.base + "/redirect?to={{vars.to | urlencode}}",
        auth={"type": "bearer", "token": "tok-123456"})))
    out = outcome(srv, "h/redir-auth", {"to": target})
    assert out["o"]["success"] is True, out
    assert out["result"]["headers"]["host"].startswith("127.0.0.2")
    assert "authorization" not in out["result"]["headers"], out["result"]["headers"]
    first = up.requests_to("/redirect")[0]
    assert dict((k.lower(), v) for k, v in first["headers"])["authorization"] == "Bearer tok-123456"


# ---- the slow limits (about 11 s, run side by side) ----

def test_default_timeout_and_low_speed_limit(srv, up):
    publish(srv, probe("h/default-timeout", http_task("h", up.url("/slow?ms=15000"))))
    publish(srv, probe("h/low-speed", http_task("h", up.url("/drip?bytes=100&interval_ms=1500"),
                                                timeout_ms=40000)))
    t0 = time.monotonic()
    ids = []
    for name in ("h/default-timeout", "h/low-speed"):
        r = srv.execute(name, {}, query="mode=async")
        assert r.status == 202, r
        ids.append(r.json()["run_id"])
    recs = [srv.wait_run(i, timeout=40) for i in ids]
    took = time.monotonic() - t0
    for rec in recs:
        o = rec["output"]["o"]
        assert o["success"] is False and o["error"]["code"] == "timeout", (rec["integration"], o)
        assert 9000 <= o["duration_ms"] <= 16000, (rec["integration"], o["duration_ms"])
    assert took < 20


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1:1/x",
                                 "gopher://127.0.0.1:1/_x"])
def test_literal_other_scheme_refused_at_publish_or_run(srv, up, url):
    doc = probe("h/literal-scheme", http_task("h", url))
    r = srv.put("/integrations/h/literal-scheme", json=doc)
    if r.status == 422:
        assert "/tasks/0/url" in {e["pointer"] for e in r.json()["error"]["detail"]["errors"]}
        return
    assert r.status in (200, 201), r
    o = outcome(srv, "h/literal-scheme")["o"]
    assert o["error"]["code"] == "blocked", o


def test_low_speed_limit_is_a_setting(make_server, up):
    """--http-low-speed-bytes/-ms tighten the slow-response limit without touching timeout_ms."""
    srv = make_server(ALLOW + ("--http-low-speed-bytes", "100", "--http-low-speed-ms", "1000"),
                      name="lowspeed")
    publish(srv, probe("h/low-speed-flag", http_task("h", up.url("/drip?bytes=50&interval_ms=200"),
                                                     timeout_ms=30000)))
    o = outcome(srv, "h/low-speed-flag")["o"]
    assert o["success"] is False and o["error"]["code"] == "timeout", o
    assert 900 <= o["duration_ms"] <= 5000, o
