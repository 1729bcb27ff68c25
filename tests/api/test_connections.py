"""Connectors and connections over HTTP (SPEC §5, §9): publishing and reading connectors,
creating, replacing, reading and deleting connections, and the rule that a secret's value,
once sent, never comes back -- not in an answer, an error, the server's log, or the data
directory in clear."""
import os
import secrets as pysecrets
import time

import pytest

from apilib import assert_time, billing_connection, billing_connector, error_of


def new_secret(tag):
    """A value no other text in the run can contain by chance."""
    return f"sk_live_{tag}_{pysecrets.token_hex(16)}"


class Watch:
    """Every answer a test got, to check at the end that no secret value was in any of them."""

    def __init__(self, srv):
        self.srv = srv
        self.answers = []

    def __call__(self, method, path, **kw):
        r = self.srv.request(method, path, **kw)
        self.answers.append((method, path, r))
        return r

    def assert_nowhere(self, *values):
        for value in values:
            for method, path, r in self.answers:
                assert value.encode() not in r.body, f"{method} {path} answered a secret: {r!r}"
                for k, v in r.headers.items():
                    assert value not in v, f"{method} {path}: secret in header {k}"
            assert value not in self.srv.stderr(), "a secret value is in the server's stderr"
            assert value not in self.srv.stdout(), "a secret value is in the server's stdout"


def files_holding(root, needle):
    """Files under ROOT whose bytes contain NEEDLE."""
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    if needle.encode() in f.read():
                        hits.append(path)
            except OSError:
                pass
    return hits


# ---- connectors ----

def test_connector_publish_201_200_and_read_back(server):
    doc = billing_connector()
    r = server.put("/connectors/billing", json=doc)
    assert r.status == 201, r
    assert r.json() == {"slug": "billing", "version": 1, "created": True}

    r = server.put("/connectors/billing", json=doc)
    assert r.status == 200, r
    assert r.json() == {"slug": "billing", "version": 1, "created": False}

    r = server.get("/connectors")
    assert r.status == 200, r
    listed = r.json()["connectors"]
    assert [c["slug"] for c in listed] == ["billing"]
    assert listed[0]["latest_version"] == 1
    assert_time(listed[0]["updated_at"])

    r = server.get("/connectors/billing")
    assert r.status == 200, r
    assert r.headers.get("braid-version") == "1"
    assert "json" in r.headers.get("content-type", "")
    got = r.json()
    assert got["slug"] == "billing"
    assert got["secrets"] == ["api_key"]
    assert got["operations"]["create_invoice"]["path"] == "/invoices"

    # A second version; the first stays readable as it was.
    doc2 = billing_connector()
    doc2["operations"]["get_invoice"] = {"method": "GET", "path": "/invoices/{{input.id}}",
                                         "inputs": {"id": {"type": "string", "required": True}}}
    r = server.put("/connectors/billing", json=doc2)
    assert r.status == 201, r
    assert r.json()["version"] == 2
    r = server.get("/connectors/billing")
    assert r.headers.get("braid-version") == "2"
    assert "get_invoice" in r.json()["operations"]
    assert server.get("/connectors").json()["connectors"][0]["latest_version"] == 2

    r = server.get("/connectors/billing/versions")
    assert r.status == 200, r
    vs = r.json()
    assert vs["slug"] == "billing"
    assert [v["version"] for v in vs["versions"]] == [1, 2]
    for v in vs["versions"]:
        assert_time(v["created_at"])

    r = server.get("/connectors/billing/versions/1")
    assert r.status == 200, r
    assert r.headers.get("braid-version") == "1"
    assert "get_invoice" not in r.json()["operations"]

    for bad in ("3", "0", "-1", "x", "1x", "99999999999"):
        error_of(server.get(f"/connectors/billing/versions/{bad}"), 404, "version_not_found")
    error_of(server.get("/connectors/nope"), 404, "not_found")
    error_of(server.get("/connectors/nope/versions"), 404, "not_found")
    error_of(server.get("/connectors/nope/versions/1"), 404)


def test_connector_invalid_422_with_pointers(server):
    doc = billing_connector()
    doc["operations"]["create_invoice"]["path"] = "/invoices/{{input.lines"  # unclosed template
    r = server.put("/connectors/billing", json=doc)
    err = error_of(r, 422, "invalid_definition")
    errors = err["detail"]["errors"]
    assert errors, err
    pointers = [e["pointer"] for e in errors]
    assert all(isinstance(e["message"], str) and e["message"] for e in errors), errors
    assert any(p.startswith("/operations/create_invoice") for p in pointers), pointers
    error_of(server.get("/connectors/billing"), 404)

    # The slug must be the one in the path.
    err = error_of(server.put("/connectors/other", json=billing_connector()), 422,
                   "invalid_definition")
    assert err["detail"]["errors"]
    error_of(server.get("/connectors/other"), 404)
    error_of(server.get("/connectors/billing"), 404)


def test_connector_unparsable_400(server):
    r = server.put("/connectors/billing", body='{"slug": "billing", ',
                   headers={"Content-Type": "application/json"})
    err = error_of(r, 400, "input_invalid")
    assert "line" in err.get("detail", {}), err
    error_of(server.put("/connectors/billing", body=""), 400, "input_invalid")
    error_of(server.get("/connectors/billing"), 404)


# ---- connections ----

@pytest.fixture
def billing(server):
    server.publish_connector(billing_connector())
    return server


def test_connection_put_get_list_delete(billing):
    srv = billing
    watch = Watch(srv)
    s1, s2 = new_secret("one"), new_secret("two")

    r = watch("PUT", "/connections/billing-prod", json=billing_connection(s1))
    assert r.status == 201, r
    conn = r.json()
    assert conn["id"] == "billing-prod"
    assert conn["connector"] == "billing"
    assert conn["config"] == {"base_url": "https://billing.example.com/v1"}
    assert [s["name"] for s in conn["secrets"]] == ["api_key"]
    assert_time(conn["secrets"][0]["updated_at"])
    assert_time(conn["created_at"])
    assert_time(conn["updated_at"])

    r = watch("GET", "/connections/billing-prod")
    assert r.status == 200, r
    got = r.json()
    assert got["id"] == "billing-prod" and got["connector"] == "billing"
    assert got["secrets"] == conn["secrets"]
    assert set(got["secrets"][0]) == {"name", "updated_at"}, "a secret shows name and time only"

    # Replacing: 200; a new value for the secret moves its time, never shows it.
    r = watch("PUT", "/connections/billing-prod",
              json=billing_connection(s2, base_url="https://billing.example.com/v2"))
    assert r.status == 200, r
    again = r.json()
    assert again["config"] == {"base_url": "https://billing.example.com/v2"}
    assert again["created_at"] == conn["created_at"]
    assert [s["name"] for s in again["secrets"]] == ["api_key"]
    assert again["secrets"][0]["updated_at"] >= conn["secrets"][0]["updated_at"]

    # The same body may carry the id, when it is the one in the path.
    r = watch("PUT", "/connections/billing-prod",
              json=billing_connection(s2, id="billing-prod"))
    assert r.status == 200, r

    r = watch("PUT", "/connections/billing-test", json=billing_connection(s1))
    assert r.status == 201, r
    r = watch("GET", "/connections")
    assert r.status == 200, r
    listed = r.json()["connections"]
    assert [c["id"] for c in listed] == ["billing-prod", "billing-test"]
    for c in listed:
        assert [s["name"] for s in c["secrets"]] == ["api_key"]

    r = watch("DELETE", "/connections/billing-prod")
    assert r.status == 204, r
    assert r.body == b""
    error_of(watch("GET", "/connections/billing-prod"), 404, "connection_not_found")
    error_of(watch("DELETE", "/connections/billing-prod"), 404, "connection_not_found")
    assert [c["id"] for c in watch("GET", "/connections").json()["connections"]] == [
        "billing-test"]

    watch.assert_nowhere(s1, s2)
    assert files_holding(srv.data, s1) == [], "a secret value is stored in clear"
    assert files_holding(srv.data, s2) == [], "a secret value is stored in clear"


def test_connection_secrets_kept_unless_named(billing):
    srv = billing
    watch = Watch(srv)
    s1 = new_secret("kept")
    first = srv.put_connection("keep", billing_connection(s1))
    r = watch("PUT", "/connections/keep",
              json={"connector": "billing", "config": {"base_url": "https://x.example.com"}})
    assert r.status == 200, r
    assert r.json()["secrets"] == first["secrets"], "a secret not named keeps its value"
    r = watch("PUT", "/connections/keep",
              json={"connector": "billing", "config": {"base_url": "https://x.example.com"},
                    "secrets": {"api_key": None}})
    assert r.status == 200, r
    assert r.json()["secrets"] == [], "null removes a secret"
    watch.assert_nowhere(s1)


def test_connection_unknown_connector_404(billing):
    srv = billing
    watch = Watch(srv)
    s = new_secret("unknown")
    r = watch("PUT", "/connections/c1", json=billing_connection(s, connector="nope"))
    error_of(r, 404, "not_found")
    error_of(watch("GET", "/connections/c1"), 404, "connection_not_found")
    error_of(watch("GET", "/connections/never"), 404, "connection_not_found")
    error_of(watch("DELETE", "/connections/never"), 404, "connection_not_found")
    watch.assert_nowhere(s)


def test_connection_undeclared_secret_400_names_it_not_its_value(billing):
    srv = billing
    watch = Watch(srv)
    good, bad = new_secret("declared"), new_secret("undeclared")
    body = billing_connection(good)
    body["secrets"]["webhook_token"] = bad
    r = watch("PUT", "/connections/c2", json=body)
    err = error_of(r, 400, "input_invalid")
    assert "webhook_token" in r.text, f"the error should name the secret: {r!r}"
    error_of(watch("GET", "/connections/c2"), 404, "connection_not_found")
    # A secret value of the wrong type: named, not quoted.
    body = billing_connection(good)
    body["secrets"]["api_key"] = {"nested": bad}
    err = error_of(watch("PUT", "/connections/c2", json=body), 400, "input_invalid")
    assert err["message"]
    watch.assert_nowhere(good, bad)


def test_connection_bad_bodies_400_without_quoting(billing):
    srv = billing
    watch = Watch(srv)
    s = new_secret("broken")
    h = {"Content-Type": "application/json"}
    # Not JSON: jansson would say "invalid token near '<the secret>'"; the answer must not.
    text = '{"connector": "billing", "secrets": {"api_key": ' + s + '}}'
    err = error_of(watch("PUT", "/connections/c3", body=text, headers=h), 400, "input_invalid")
    assert "line" in err["detail"] and "column" in err["detail"], err
    text = '{"connector": "billing", "secrets": {"api_key": "' + s + '"'
    error_of(watch("PUT", "/connections/c3", body=text, headers=h), 400, "input_invalid")
    # Duplicate keys are refused (the first value would otherwise be dropped silently).
    text = ('{"connector": "billing", "config": {"base_url": "https://a.example.com"}, '
            '"secrets": {"api_key": "' + s + '", "api_key": "' + s + 'x"}}')
    error_of(watch("PUT", "/connections/c3", body=text, headers=h), 400, "input_invalid")
    error_of(watch("PUT", "/connections/c3", body=""), 400, "input_invalid")
    error_of(watch("PUT", "/connections/c3", json=[s]), 400, "input_invalid")
    error_of(watch("PUT", "/connections/c3", json=s), 400, "input_invalid")
    error_of(watch("PUT", "/connections/c3", json=billing_connection(s, id="other")), 400,
             "input_invalid")
    error_of(watch("GET", "/connections/c3"), 404, "connection_not_found")
    watch.assert_nowhere(s)


def test_connection_secret_in_other_fields_never_echoed(billing):
    """A value sent as a secret is scrubbed from whatever the answer would quote."""
    srv = billing
    watch = Watch(srv)
    s = new_secret("misplaced")
    # The secret value also used as an unknown config key's value and as the connector name.
    body = billing_connection(s)
    body["connector"] = s
    r = watch("PUT", "/connections/c4", json=body)
    assert r.status in (400, 404), r
    watch.assert_nowhere(s)


def test_connection_routes_answer_in_the_log_without_secrets(billing):
    srv = billing
    s = new_secret("log")
    srv.put_connection("logged", billing_connection(s))
    # The request's log line is written once the answer has gone out: wait for it.
    deadline = time.monotonic() + 10
    while "/connections/logged" not in srv.stderr():
        assert time.monotonic() < deadline, "the request log line is missing"
        time.sleep(0.02)
    assert s not in srv.stderr()
