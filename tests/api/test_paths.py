"""Path tricks (issue 3: "authorisation is decided after the path is normalised"): an encoded
slash, an empty segment, dot segments, a trailing slash and case never reach a route
unchecked. Each is refused (400 `bad_path`, or 404) and no handler runs."""
import pytest

from apilib import echo, error_of


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server
    s.publish(echo("a/b"), echo("a"), echo("runs"))
    s.viewer = s.token("viewer")[0]
    return s


BAD_PATHS = [
    "//runs",
    "/runs/",
    "/./runs",
    "/runs/.",
    "/runs/..",
    "/runs/../tokens",
    "/integrations/../tokens",
    "/integrations//a",
    "/integrations/a%2Fb",
    "/integrations/a%2fb/versions",
    "/runs/%2e%2e/tokens",
    "/runs/%2E%2E/tokens",
    "/runs/..%2Ftokens",
    "/%2e/tokens",
    "/tokens/",
    "/tokens/.",
    "/integrations/",
    "/graph/",
    "/metrics/",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_path_refused_for_viewer(srv, path):
    r = srv.get(path, token=srv.viewer)
    assert r.status in (400, 404), f"{path}: {r!r}"
    if r.status == 400:
        error_of(r, 400, "bad_path")
    else:
        error_of(r, 404)
    assert "tokens" not in r.json() and "runs" not in r.json()


@pytest.mark.parametrize("path", ["//runs", "/runs/../tokens", "/integrations/a%2Fb", "/runs/"])
def test_bad_path_unauthenticated_is_401(srv, path):
    error_of(srv.get(path, token=None), 401)


EXECUTE_TRICKS = [
    "/integrations/execute/a%2Fb",
    "/integrations/execute/a%2fb",
    "/integrations/execute//a/b",
    "/integrations/execute/a//b",
    "/integrations/execute/a/b/",
    "/integrations/execute/./a/b",
    "/integrations/execute/a/./b",
    "/integrations/execute/x/../a/b",
    "/integrations/execute/a/%2e%2e/a/b",
    "/integrations/execute/A/B",
    "/Integrations/execute/a/b",
    "/integrations/Execute/a/b",
    "/integrations/execute/a%00/b",
    "/integrations/execute/a/b%00",
    "/integrations/execute/a/b%",
    "/integrations/execute/a/b%zz",
]


def test_execute_tricks_never_run_anything(srv):
    for path in EXECUTE_TRICKS:
        r = srv.post(path, json={"v": 1})
        # 405: `/integrations/Execute/a/b` is the route /integrations/NAME, which has no POST.
        assert r.status in (400, 404, 405), f"{path}: {r!r}"
        error_of(r)
        if r.status == 400:
            assert r.json()["error"]["code"] == "bad_path", f"{path}: {r!r}"
    for name in ("a/b", "a", "runs"):
        assert srv.runs(integration=name) == [], f"a trick reached {name}"
    # The honest path works.
    assert srv.post("/integrations/execute/a/b", json={"v": 1}).status == 200


def test_case_matters(srv):
    for path in ("/Integrations", "/RUNS", "/Tokens", "/Healthz", "/GRAPH", "/integrations/A/B"):
        error_of(srv.get(path), 404)
    error_of(srv.get("/Tokens", token=srv.viewer), 404)


def test_encoded_letters_decode_to_the_route_and_roles_still_apply(srv):
    """`/tok%65ns` decodes to `/tokens`: whatever the server does, a viewer never lists
    tokens."""
    for path in ("/tok%65ns", "/%74okens", "/runs/%2E%2E/tok%65ns"):
        r = srv.get(path, token=srv.viewer)
        assert r.status in (400, 403, 404), f"{path}: {r!r}"
        error_of(r)


def test_query_strings_are_not_paths(srv):
    r = srv.get("/runs?integration=../tokens", token=srv.viewer)
    assert r.status == 200 and r.json()["runs"] == []
    r = srv.get("/runs?integration=a%2Fb", token=srv.viewer)
    assert r.status == 200


def test_absolute_form_and_odd_targets(srv):
    for target in ("*", "http://127.0.0.1/tokens", "tokens"):
        r = srv.get(target, token=srv.viewer, fresh=True)
        assert r.status in (400, 403, 404), f"{target}: {r!r}"
    srv.healthy()
