"""The address guard (SPEC §4 "Address guard"): with no --allow-net, every special-purpose
address is refused with `blocked` however it is written, and no packet reaches it.

Every URL goes through one published integration (`g/fetch`, the url is its input) on one
`braid serve` without --allow-net. The upstream listens on every loopback address of the
namespace, so any loopback form that slipped through would be counted there; a non-loopback
form that slipped through fails with `network` (the namespace has no route), not `blocked`.
"""
import json

import pytest

from conftest import execute, http_task, integration, outcome, probe, publish

# Forms that must be refused with `blocked`. {p} is the upstream's port.
BLOCKED = [
    # loopback, plainly and in every numeric spelling
    "http://127.0.0.1:{p}/json",
    "https://127.0.0.1:{p}/json",
    "http://127.0.0.2:{p}/json",
    "http://127.255.255.254:{p}/json",
    "http://localhost:{p}/json",
    "http://LocalHost:{p}/json",
    "http://2130706433:{p}/json",
    "http://0177.0.0.1:{p}/json",
    "http://0177.0000.0000.0001:{p}/json",
    "http://017700000001:{p}/json",
    "http://127.000.000.001:{p}/json",
    "http://0x7f000001:{p}/json",
    "http://0X7F000001:{p}/json",
    "http://0x7f.0.0.1:{p}/json",
    "http://0x7f.0x0.0x0.0x1:{p}/json",
    "http://0x7f.1:{p}/json",
    "http://127.1:{p}/json",
    "http://127.0.1:{p}/json",
    "http://[::1]:{p}/json",
    "http://[0:0:0:0:0:0:0:1]:{p}/json",
    "http://[0000::0001]:{p}/json",
    # unspecified
    "http://0:{p}/json",
    "http://0.0.0.0:{p}/json",
    "http://0.0.0.0/json",
    "http://[::]:{p}/json",
    "http://0.1.2.3/json",
    # IPv6 forms embedding a refused IPv4 address
    "http://[::ffff:127.0.0.1]:{p}/json",
    "http://[::ffff:7f00:1]:{p}/json",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/json",
    "http://[::ffff:7f00:0001]:{p}/json",
    "http://[::127.0.0.1]:{p}/json",
    "http://[64:ff9b::7f00:1]:{p}/json",
    "http://[64:ff9b::127.0.0.1]:{p}/json",
    "http://[2002:7f00:1::]:{p}/json",
    "http://[::ffff:10.0.0.1]/json",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[2002:a9fe:a9fe::]/latest/meta-data/",
    "http://[2002:c0a8:101::1]/json",
    "http://[::ffff:192.168.1.1]/json",
    # link-local, the cloud metadata address first
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254:80/latest/meta-data/iam/security-credentials/",
    "http://2852039166/latest/meta-data/",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://169.254.0.1/json",
    "http://[fe80::1]/json",
    "http://[fe80::1]:{p}/json",
    "http://[febf:ffff::1]/json",
    # private, shared, multicast, broadcast, reserved
    "http://10.0.0.1:{p}/json",
    "http://10.255.255.255/json",
    "http://012.0.0.1/json",
    "http://172.16.0.1/json",
    "http://172.31.255.254/json",
    "http://192.168.1.1/json",
    "http://192.168.0.1:8080/json",
    "http://[fc00::1]/json",
    "http://[fd12:3456::1]:{p}/json",
    "http://100.64.0.1/json",
    "http://100.127.255.254/json",
    "http://224.0.0.1/json",
    "http://239.255.255.250:1900/json",
    "http://[ff02::1]/json",
    "http://[ff05::1:3]/json",
    "http://255.255.255.255/json",
    "http://240.0.0.1/json",
    "http://250.1.2.3/json",
    # other special-purpose blocks (docs/security.md): documentation, benchmarking
    "http://192.0.2.1/json",
    "http://198.51.100.7/json",
    "http://203.0.113.9/json",
    "http://198.18.0.1/json",
    "http://[2001:db8::1]/json",
    # userinfo and fragment tricks: the host is still loopback
    "http://example.com@127.0.0.1:{p}/json",
    "http://example.com:80@127.0.0.1:{p}/json",
    "http://user:pass@127.0.0.1:{p}/json",
    "http://127.0.0.1:{p}#@example.com/",
    "http://127.0.0.1:{p}/json#@example.com",
    "http://127.0.0.1:{p}?@example.com/",
    # other schemes
    "file:///etc/passwd",
    "ftp://127.0.0.1:{p}/json",
    "gopher://127.0.0.1:{p}/_GET%20/json",
    "dict://127.0.0.1:{p}/info",
]

# Odd spellings: they must fail and reach nothing, with whatever error says why.
ODD = [
    "http://%31%32%37.0.0.1:{p}/json",
    "http://127.0.0.1.:{p}/json",
    "http://[::ffff:127.0.0.1%25lo]:{p}/json",
    "http://127.0.0.1:{p}@example.invalid/json",
    "http://127.0.0.1%00.example.invalid:{p}/json",
    "http://[::1:{p}/json",
    "http:/127.0.0.1:{p}/json",
    "http:127.0.0.1:{p}/json",
    "http://127.0.0.1:{p}:80/json",
    " http://127.0.0.1:{p}/json",
]


def test_enough_forms():
    assert len(BLOCKED) >= 40


@pytest.fixture(scope="module")
def guard_srv(guarded_server):
    publish(guarded_server, probe("g/fetch", http_task("h", "{{vars.url}}", timeout_ms=5000)))
    return guarded_server


def hits_over_http(up):
    """The upstream's /hits route (what it counted since the test began)."""
    import urllib.request
    with urllib.request.urlopen(up.url("/hits"), timeout=10) as r:
        return json.loads(r.read())


def _fetch(srv, url):
    out = outcome(srv, "g/fetch", {"url": url})
    return out


@pytest.mark.parametrize("form", BLOCKED)
def test_blocked(guard_srv, up, form):
    url = form.format(p=up.port)
    out = _fetch(guard_srv, url)
    o = out["o"]
    assert o["success"] is False, f"{url} was fetched: {o}"
    assert o["error"]["code"] == "blocked", f"{url}: {o['error']}"
    assert o["status"] == 0 and out["status"] == 0 and out["ok"] is False
    if url.split(":", 1)[0] not in ("http", "https"):
        assert url.split(":", 1)[0] in o["error"]["message"].lower(), o["error"]
    assert up.total_hits() == 0, f"{url} reached the upstream: {up.requests}"
    assert hits_over_http(up) == {}
    assert "root:" not in json.dumps(o)


@pytest.mark.parametrize("form", ODD)
def test_odd_forms_reach_nothing(guard_srv, up, form):
    url = form.format(p=up.port)
    o = _fetch(guard_srv, url)["o"]
    assert o["success"] is False, f"{url} was fetched: {o}"
    assert o["error"]["code"] not in ("timeout",), o["error"]
    assert up.total_hits() == 0, f"{url} reached the upstream: {up.requests}"


def test_blocked_in_cases_and_continue(guard_srv, up):
    publish(guard_srv, integration("g/cases", [
        http_task("h", up.url("/json"), cases={"blocked": "b", "failure": "f"}),
        {"id": "f", "type": "fail", "code": "wrong_case"},
        {"id": "b", "type": "set", "values": {"route": "blocked"}},
    ], outputs=["route"]))
    rec = execute(guard_srv, "g/cases")
    assert rec["status"] == "succeeded" and rec["output"]["route"] == "blocked", rec
    assert up.total_hits() == 0


def test_blocked_fails_the_run_unhandled(guard_srv, up):
    publish(guard_srv, integration("g/unhandled", [http_task("h", up.url("/json"))]))
    rec = execute(guard_srv, "g/unhandled")
    assert rec["status"] == "failed" and rec["error"]["code"] == "blocked"
    assert rec["error"]["task"] == "h"
    assert up.total_hits() == 0


def test_cli_run_blocks_without_allow_net(braid, up):
    braid.publish(probe("g/cli", http_task("h", up.url("/json"))))
    rec = braid.run_json("g/cli", {})
    assert rec["output"]["o"]["error"]["code"] == "blocked"
    assert up.total_hits() == 0


def test_cli_run_allow_net(braid, up):
    braid.publish(probe("g/cli", http_task("h", up.url("/json"))))
    rec = braid.run_json("g/cli", {}, "--allow-net", "127.0.0.1/32")
    assert rec["output"]["o"]["success"] is True, rec
    assert rec["output"]["result"]["hello"] == "world"
    # repeatable; an unrelated range opens nothing
    rec = braid.run_json("g/cli", {}, "--allow-net", "10.0.0.0/8", "--allow-net", "127.0.0.0/8")
    assert rec["output"]["o"]["success"] is True, rec
    assert up.hits_of("/json") == 2
    rec = braid.run_json("g/cli", {}, "--allow-net", "10.0.0.0/8")
    assert rec["output"]["o"]["error"]["code"] == "blocked"
    # a bare address is one host
    rec = braid.run_json("g/cli", {}, "--allow-net", "127.0.0.2")
    assert rec["output"]["o"]["error"]["code"] == "blocked"
    assert up.hits_of("/json") == 2


def test_allow_127_0_0_1_does_not_open_its_neighbours(braid, up):
    braid.publish(probe("g/neigh", http_task("h", "{{vars.url}}")))
    for url in (f"http://127.0.0.2:{up.port}/json", f"http://[::1]:{up.port}/json",
                f"http://0.0.0.0:{up.port}/json", f"http://[::ffff:127.0.0.2]:{up.port}/json"):
        rec = braid.run_json("g/neigh", {"url": url}, "--allow-net", "127.0.0.1/32")
        assert rec["output"]["o"]["error"]["code"] == "blocked", (url, rec["output"])
    assert up.total_hits() == 0


@pytest.mark.parametrize("cidr", ["127.0.0.1/33", "nonsense", "127.0.0.1/", "::1/129",
                                  "300.0.0.0/8", ""])
def test_bad_allow_net_is_a_usage_error(braid, cidr):
    braid.publish(probe("g/bad", http_task("h", "http://127.0.0.1:1/")))
    r = braid("run", "g/bad", "--allow-net", cidr)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)


def test_serve_bad_allow_net_refuses_to_start(braid):
    r = braid("serve", "--listen", "127.0.0.1:0", "--allow-net", "10.0.0.0/99", timeout=20)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)


def test_ipv6_allow_net(braid, up):
    braid.publish(probe("g/v6", http_task("h", f"http://[::1]:{up.port}/json")))
    rec = braid.run_json("g/v6", {}, "--allow-net", "::1/128")
    o = rec["output"]["o"]
    if o["error"] and o["error"]["code"] == "network":
        pytest.skip("no IPv6 loopback in this namespace")
    assert o["success"] is True, o
    rec = braid.run_json("g/v6", {}, "--allow-net", "127.0.0.1/32")
    assert rec["output"]["o"]["error"]["code"] == "blocked"
