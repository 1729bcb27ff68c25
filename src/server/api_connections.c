/* api_connections.c - connectors and connections (SPEC §5):
 * GET /connectors, GET|PUT /connectors/SLUG, GET /connectors/SLUG/versions[/N],
 * GET /connections, GET|PUT|DELETE /connections/ID.
 *
 * Invariant: the body of PUT /connections/ID holds secret values, and none of them leaves this
 * file. A body that does not parse is answered with where it broke, never with what was there;
 * the engine's answer and errors are scrubbed of the values once more on the way out (the
 * engine promises never to put them there; this is the second lock); and the copies this file
 * can reach -- the request's body buffer, the parsed strings -- are wiped before the handler
 * returns. The request loop (server.c) wipes body buffers as they grow and when they are freed.
 */
#include "server/server_internal.h"

#include "core/jsonx.h"
#include "vault/scrub.h"
#include "vault/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- connectors --------------------------------------------------------------------------- */

/* GET /connectors -> {"connectors": [{"slug", "latest_version", "updated_at"}...]}. */
void api_connectors_list(request_t *req)
{
    json_t *list = NULL;
    err_t err = {0};
    int rc = engine_connector_list(req->srv->eng, &list, &err);
    http_reply_listing(req, rc, "connectors", list, &err);
}

/* An api_doc_get_cb: connector SLUG's version VERSION as the engine holds it. */
static int get_connector(server_t *srv, const char *slug, int version, api_doc_t *out, err_t *err)
{
    return engine_connector_get(srv->eng, slug, version, &out->json, &out->version, err);
}

/* An api_versions_cb. The engine has no call for this list; like GET /integrations/NAME/versions
 * it comes from the store, which answers not_found for an unknown slug. */
static int connector_versions(server_t *srv, const char *slug, json_t **out, err_t *err)
{
    return store_connector_versions(srv->st, slug, out, err);
}

/* GET /connectors/SLUG -> the latest version's document, with its version in Braid-Version
 * (as GET /integrations/NAME does). */
void api_connectors_get(request_t *req)
{
    api_versioned_get(req, get_connector);
}

/* GET /connectors/SLUG/versions/N -> that version's document. */
void api_connectors_version_get(request_t *req)
{
    api_versioned_version_get(req, get_connector, "connector ");
}

/* GET /connectors/SLUG/versions -> {"slug", "versions": [{"version", "created_at"}...]}. */
void api_connectors_versions(request_t *req)
{
    api_versioned_versions(req, connector_versions, "slug");
}

/* PUT /connectors/SLUG: publish the body. 201 new version, 200 unchanged, 400 when the body is
 * not JSON at all, 422 when it is JSON but not a valid connector (every problem in
 * detail.errors). A connector document holds templates such as {{secret.api_key}}, never a
 * secret value, so it needs none of the care PUT /connections takes. */
void api_connectors_put(request_t *req)
{
    json_t *parsed = http_body_json_or_reply(req);
    if (!parsed)
        return;
    json_decref(parsed); /* the engine parses the text again, with line numbers for its diags */
    api_versioned_put(req, engine_connector_publish, "the connector document is not valid");
}

/* ---- connections -------------------------------------------------------------------------- */

/* The body of REQ as JSON (owned), parsed without ever quoting it: jansson's own messages say
 * "invalid token near '<text>'", and that text could be a secret. Duplicate keys are refused
 * (jansson would otherwise drop the first value unwiped). The raw body is wiped either way.
 * Replies 400 input_invalid and returns NULL when it does not parse. */
static json_t *secret_body_or_reply(request_t *req)
{
    jsonx_limits_t lim = {req->srv->cfg.max_body, JSONX_DEFAULT_DEPTH, true};
    err_t err = {0};
    json_t *v = jsonx_parse(req->body.data ? req->body.data : "", req->body.len, &lim, &err);
    if (req->body.data)
        vault_wipe(req->body.data, req->body.len);
    if (!v) {
        json_t *line = json_object_get(err.detail, "line");
        json_t *col = json_object_get(err.detail, "column");
        json_t *detail = json_object();
        const char *keys[] = {"line", "column", "position", "max_depth", "max_bytes"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_t *x = json_object_get(err.detail, keys[i]);
            if (json_is_integer(x))
                json_object_set(detail, keys[i], x);
        }
        if (req->body.len == 0)
            http_reply_error(req, 400, "input_invalid", detail,
                             "the body is empty; expected {\"connector\", \"config\", "
                             "\"secrets\"}");
        else if (json_is_integer(line) && json_is_integer(col))
            /* jansson's own text names the problem but may quote the body; only the kind of
             * problem that never does (a duplicate key) is told apart. */
            http_reply_error(
                req, 400, "input_invalid", detail,
                "the body is not valid JSON: %s at line %lld, column %lld",
                strstr(err.msg, "duplicate object key") ? "a duplicate key" : "a syntax error",
                (long long)json_integer_value(line), (long long)json_integer_value(col));
        else
            http_reply_error(req, 400, "input_invalid", detail, "the body is not valid JSON");
    }
    err_clear(&err);
    return v;
}

/* Add every string under BODY's "secrets" to SC. */
static void collect_secret_values(scrub_t *sc, const json_t *body)
{
    const char *name;
    json_t *value;
    json_t *secrets = json_object_get(body, "secrets");
    json_object_foreach(secrets, name, value)
    {
        if (json_is_string(value))
            scrub_add(sc, (const unsigned char *)json_string_value(value),
                      json_string_length(value));
    }
}

/* ERR with each secret value in SC replaced by "[secret]" in its message and detail. */
static void scrub_err(const scrub_t *sc, err_t *err)
{
    size_t n = 0;
    char *msg = scrub_text(sc, err->msg, strlen(err->msg), &n);
    if (msg) {
        snprintf(err->msg, sizeof err->msg, "%s", msg);
        free(msg);
    }
    if (err->detail) {
        json_t *d = scrub_json(sc, err->detail);
        json_decref(err->detail);
        err->detail = d;
    }
}

/* PUT /connections/ID {"connector", "config", "secrets": {NAME: "value" | null}} -> 201 the
 * new connection, 200 the replaced one (as GET shows it: secret names and times only). 400
 * input_invalid (body, config, secret names), 404 not_found (unknown connector). */
void api_connections_put(request_t *req)
{
    json_t *body = secret_body_or_reply(req);
    if (!body)
        return;
    scrub_t *sc = scrub_new();
    json_t *out = NULL, *clean = NULL;
    err_t err = {0};
    bool created = false;
    collect_secret_values(sc, body);
    /* The engine checks the body's shape (an object; "id", when present, equal to ID). */
    if (engine_connection_put(req->srv->eng, req->params[0], body, &created, &out, &err) < 0) {
        scrub_err(sc, &err);
        http_reply_err(req, &err);
    } else {
        clean = scrub_json(sc, out);
        http_reply_json(req, created ? 201 : 200, clean, NULL, NULL);
    }
    /* Wipes the parsed copies of the secret values that nobody else holds: the engine may
     * keep parts of what it was given, and those are left alone. */
    vault_wipe_json_decref(body);
    json_decref(clean);
    json_decref(out);
    err_clear(&err);
    scrub_free(sc);
}

/* GET /connections -> {"connections": [...]}, each as GET /connections/ID shows it. */
void api_connections_list(request_t *req)
{
    json_t *list = NULL;
    err_t err = {0};
    int rc = engine_connection_list(req->srv->eng, &list, &err);
    http_reply_listing(req, rc, "connections", list, &err);
}

/* GET /connections/ID -> {"id", "connector", "config", "secrets": [{"name", "updated_at"}],
 * "created_at", "updated_at"}: names and times, never a value. 404 connection_not_found. */
void api_connections_get(request_t *req)
{
    json_t *out = NULL;
    err_t err = {0};
    int rc = engine_connection_get(req->srv->eng, req->params[0], &out, &err);
    http_reply_result(req, rc, out, &err);
}

/* DELETE /connections/ID -> 204. 404 connection_not_found. */
void api_connections_delete(request_t *req)
{
    err_t err = {0};
    if (engine_connection_delete(req->srv->eng, req->params[0], &err) < 0) {
        http_reply_err(req, &err);
        err_clear(&err);
        return;
    }
    http_reply_empty(req, 204);
}
