"""The role × route matrix (SPEC §9 "Roles"): every role against every route. Allowed means
neither 401 nor 403; refused means 403 `forbidden` (404 for an invoker on a run it did not
start), and a refused request changes nothing. No answer to any role ever holds a
connection's secret value (a viewer reads "everything but secrets")."""
import pytest

from apilib import billing_connection, billing_connector, echo, error_of

ROLES = ("admin", "editor", "viewer", "invoker")

# name -> (method, path, JSON body or None)
ROUTES = {
    "healthz": ("GET", "/healthz", None),
    "list_integrations": ("GET", "/integrations", None),
    "get_integration": ("GET", "/integrations/m/echo", None),
    "versions": ("GET", "/integrations/m/echo/versions", None),
    "version": ("GET", "/integrations/m/echo/versions/1", None),
    "put_integration": ("PUT", "/integrations/m/put-{role}", "put"),
    "delete_integration": ("DELETE", "/integrations/m/del-{role}", None),
    "execute": ("POST", "/integrations/execute/m/echo", {"v": 1}),
    "trigger": ("POST", "/triggers/m-trig/execute", {"v": 2}),
    "list_runs": ("GET", "/runs", None),
    "get_run": ("GET", "/runs/{admin_run}", None),
    "run_tree": ("GET", "/runs/{admin_run}/tree", None),
    "cancel_run": ("POST", "/runs/{admin_run}/cancel", None),
    "list_tokens": ("GET", "/tokens", None),
    "create_token": ("POST", "/tokens", {"role": "viewer", "description": "matrix"}),
    "delete_token": ("DELETE", "/tokens/{victim}", None),
    "graph": ("GET", "/graph", None),
    "metrics": ("GET", "/metrics", None),
    "list_connectors": ("GET", "/connectors", None),
    "get_connector": ("GET", "/connectors/m-billing", None),
    "connector_versions": ("GET", "/connectors/m-billing/versions", None),
    "connector_version": ("GET", "/connectors/m-billing/versions/1", None),
    "put_connector": ("PUT", "/connectors/put-{role}", "put_connector"),
    "list_connections": ("GET", "/connections", None),
    "get_connection": ("GET", "/connections/m-conn", None),
    "put_connection": ("PUT", "/connections/put-{role}", "put_connection"),
    "delete_connection": ("DELETE", "/connections/del-{role}", None),
}
# Routes that need the connector world (conn_world), set up only when one of them runs.
CONN_ROUTES = {r for r in ROUTES if "connect" in r}
CONN_SECRET = "sk_live_role_matrix_0f1e2d3c4b5a69788796a5b4c3d2e1f0"

READ = {"healthz", "list_integrations", "get_integration", "versions", "version", "list_runs",
        "get_run", "run_tree", "graph", "metrics", "list_connectors", "get_connector",
        "connector_versions", "connector_version", "list_connections", "get_connection"}
ALLOWED = {
    "admin": set(ROUTES),
    "editor": READ | {"put_integration", "delete_integration", "cancel_run", "put_connector",
                      "put_connection", "delete_connection"},
    "viewer": set(READ),
    "invoker": {"healthz", "execute", "trigger"},
}
# An invoker asking about a run it did not start is told it does not exist.
INVOKER_NOT_FOUND = {"get_run", "run_tree", "cancel_run"}


@pytest.fixture(scope="module")
def world(module_server):
    srv = module_server
    srv.publish(echo("m/echo", triggers=[{"type": "api", "id": "m-trig"}]),
                echo("n/other", triggers=[{"type": "api", "id": "other-trig"}]))
    for role in ROLES:
        srv.publish(echo(f"m/del-{role}"))
    tokens = {"admin": srv.admin}
    for role in ("editor", "viewer"):
        tokens[role] = srv.token(role)[0]
    tokens["invoker"] = srv.token("invoker", scopes=["m/*", "m-trig"])[0]
    victims = {role: srv.token("viewer", description=f"victim of {role}")[1] for role in ROLES}
    admin_run = srv.execute("m/echo", {"v": 0}).json()["id"]
    invoker_run = srv.execute("m/echo", {"v": 0}, token=tokens["invoker"]).json()["id"]
    return {"srv": srv, "tokens": tokens, "victims": victims, "admin_run": admin_run,
            "invoker_run": invoker_run}


@pytest.fixture(scope="module")
def conn_world(world):
    """The billing connector as m-billing, the connection m-conn, and one connection per role
    for that role to try to delete."""
    srv = world["srv"]
    srv.publish_connector(billing_connector("m-billing"))
    body = billing_connection(CONN_SECRET, connector="m-billing")
    srv.put_connection("m-conn", body)
    for role in ROLES:
        srv.put_connection(f"del-{role}", body)
    return world


def send(world, role, route):
    method, path, body = ROUTES[route]
    path = path.format(role=role, admin_run=world["admin_run"], victim=world["victims"][role])
    if body == "put":
        body = echo(f"m/put-{role}")
    elif body == "put_connector":
        body = billing_connector(f"put-{role}")
    elif body == "put_connection":
        body = billing_connection(CONN_SECRET, connector="m-billing")
    srv = world["srv"]
    tok = world["tokens"][role]
    if body is None:
        return srv.request(method, path, token=tok)
    return srv.request(method, path, token=tok, json=body)


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("role", ROLES)
def test_role_route(request, world, role, route):
    srv = world["srv"]
    if route in CONN_ROUTES:
        request.getfixturevalue("conn_world")
    r = send(world, role, route)
    assert CONN_SECRET.encode() not in r.body, f"{role} {route} answered a secret: {r!r}"
    if route in ALLOWED[role]:
        assert r.status not in (401, 403), f"{role} {route}: {r!r}"
        assert r.status < 500, f"{role} {route}: {r!r}"
        if route == "execute" or route == "trigger":
            assert r.status in (200, 202), f"{role} {route}: {r!r}"
        return
    if role == "invoker" and route in INVOKER_NOT_FOUND:
        error_of(r, 404)
    elif role == "invoker" and route == "list_runs":
        # Either refused, or only the invoker's own runs.
        if r.status == 200:
            ids = {x["id"] for x in r.json()["runs"]}
            assert world["admin_run"] not in ids, "invoker lists a run it did not start"
            assert world["invoker_run"] in ids
        else:
            error_of(r, 403, "forbidden")
        return
    else:
        error_of(r, 403, "forbidden")
    # Nothing happened.
    if route == "put_integration":
        error_of(srv.get(f"/integrations/m/put-{role}"), 404)
    elif route == "delete_integration":
        assert srv.execute(f"m/del-{role}", {"v": 1}).status == 200
    elif route == "delete_token":
        ids = {t["id"] for t in srv.get("/tokens").json()["tokens"]}
        assert world["victims"][role] in ids
    elif route == "cancel_run":
        assert srv.run(world["admin_run"])["status"] == "succeeded"
    elif route == "put_connector":
        error_of(srv.get(f"/connectors/put-{role}"), 404)
    elif route == "put_connection":
        error_of(srv.get(f"/connections/put-{role}"), 404, "connection_not_found")
    elif route == "delete_connection":
        assert srv.get(f"/connections/del-{role}").status == 200


def test_viewer_reads_connections_without_values(request, world):
    request.getfixturevalue("conn_world")
    srv = world["srv"]
    viewer = world["tokens"]["viewer"]
    r = srv.get("/connections/m-conn", token=viewer)
    assert r.status == 200, r
    assert [s["name"] for s in r.json()["secrets"]] == ["api_key"]
    assert CONN_SECRET not in r.text
    assert CONN_SECRET not in srv.stderr()


def test_invoker_scope(world):
    srv = world["srv"]
    inv = world["tokens"]["invoker"]
    error_of(srv.execute("n/other", {"v": 1}, token=inv), 403, "forbidden")
    error_of(srv.post("/triggers/other-trig/execute", json={}, token=inv), 403, "forbidden")
    assert srv.runs(integration="n/other") == []
    # Its own run: readable, with its tree; cancelling a finished run is no error of access.
    own = world["invoker_run"]
    r = srv.get(f"/runs/{own}", token=inv)
    assert r.status == 200 and r.json()["id"] == own
    assert srv.get(f"/runs/{own}/tree", token=inv).status == 200
    assert srv.post(f"/runs/{own}/cancel", token=inv).status in (200, 409)


def test_scope_glob_crosses_slash(module_server):
    srv = module_server
    srv.publish(echo("deep/a/b/c"), echo("deepx"))
    tok = srv.token("invoker", scopes=["deep/*"])[0]
    r = srv.execute("deep/a/b/c", {"v": 4}, token=tok)
    assert r.status == 200 and r.json()["output"]["echoed"] == 4, r
    error_of(srv.execute("deepx", {"v": 4}, token=tok), 403, "forbidden")


def test_invoker_unknown_integration_in_scope(module_server):
    tok = module_server.token("invoker", scopes=["*"])[0]
    r = module_server.execute("no/such", {}, token=tok)
    error_of(r, 404)


def test_run_records_who_started_it(world):
    srv = world["srv"]
    rec = srv.run(world["invoker_run"])
    assert rec["trigger"] == "api"
    tid = rec["trigger_info"]["token"]
    tokens = srv.get("/tokens").json()["tokens"]
    inv = [t for t in tokens if t["id"] == tid]
    assert len(inv) == 1 and inv[0]["role"] == "invoker"
    assert world["tokens"]["invoker"] not in str(rec)
