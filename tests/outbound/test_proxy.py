"""Environment proxies are ignored (SPEC §4: every connection is checked against the address
it actually connects to): with http_proxy, HTTPS_PROXY, ALL_PROXY ... pointing at a second
fixture, braid still connects straight to the target (or refuses it), and the would-be proxy
receives nothing."""
import pytest

from conftest import apilib, http_task, outcome, probe, publish
from fixture import Upstream

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "ftp_proxy", "FTP_PROXY")


@pytest.fixture(scope="module")
def proxy():
    p = Upstream().start()
    yield p
    p.stop()


def proxy_env(proxy):
    env = {v: proxy.base for v in PROXY_VARS}
    env["no_proxy"] = ""
    env["NO_PROXY"] = ""
    return env


def test_cli_ignores_proxy_env(braid, up, proxy):
    proxy.reset()
    braid.publish(probe("p/get", http_task("h", "{{vars.url}}")))
    env = proxy_env(proxy)
    r = braid("run", "p/get", "--json", "--allow-net", "127.0.0.1/32", "--input",
              '{"url": "%s"}' % up.url("/json"), env=env)
    assert '"success": true' in r.stdout.replace('":true', '": true'), (r.stdout, r.stderr)
    assert up.hits_of("/json") == 1
    # a refused target stays refused, even though the "proxy" itself is allowed
    for url in ("http://10.0.0.1/json", "http://169.254.169.254/latest/meta-data/",
                f"http://127.0.0.2:{up.port}/json", "https://10.0.0.1/json"):
        r = braid("run", "p/get", "--json", "--allow-net", "127.0.0.1/32", "--input",
                  '{"url": "%s"}' % url, env=env)
        assert '"blocked"' in r.stdout, (url, r.stdout, r.stderr)
    assert proxy.total_hits() == 0, proxy.requests
    assert up.hits_of("/json") == 1


def test_serve_ignores_proxy_env(tmp_path, up, proxy, monkeypatch):
    proxy.reset()
    for k, v in proxy_env(proxy).items():
        monkeypatch.setenv(k, v)
    srv = apilib.start_server(tmp_path / "proxied", ("--allow-net", "127.0.0.1/32"))
    try:
        publish(srv, probe("p/srv", http_task("h", "{{vars.url}}")))
        out = outcome(srv, "p/srv", {"url": up.url("/json")})
        assert out["o"]["success"] is True, out
        out = outcome(srv, "p/srv", {"url": "http://10.0.0.1/json"})
        assert out["o"]["error"]["code"] == "blocked", out
        assert proxy.total_hits() == 0, proxy.requests
    finally:
        srv.stop()


def test_no_proxy_requests_on_upstream(braid, up):
    """Proxy-form request targets (absolute URI, CONNECT) never reach the upstream either."""
    braid.publish(probe("p/self", http_task("h", up.url("/json"))))
    env = {v: up.base for v in PROXY_VARS}
    braid("run", "p/self", "--allow-net", "127.0.0.1/32", env=env)
    assert all(not r["target"].startswith(("http:", "https:")) and r["method"] != "CONNECT"
               for r in up.requests), up.requests
