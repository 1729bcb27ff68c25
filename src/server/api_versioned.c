/* api_versioned.c - the handler logic that integrations and connectors share (SPEC §5): both
 * are documents kept as immutable, numbered versions under a name, read and published alike.
 * GET NAME and GET NAME/versions/N answer the document with its version in Braid-Version; GET
 * NAME/versions lists them; PUT NAME publishes, answering 201, 200 or 422 with detail.errors.
 * The handlers in api_integrations.c and api_connections.c pass their kind's calls.
 */
#include "server/server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answer version VERSION (0 = latest) of the document named in the path, as GET reads it. */
static void reply_doc(request_t *req, api_doc_get_cb get, int version)
{
    api_doc_t d = {0};
    err_t err = {0};
    char num[24];
    if (get(req->srv, req->params[0], version, &d, &err) < 0) {
        http_reply_err(req, &err);
        err_clear(&err);
    } else if (d.text) {
        snprintf(num, sizeof num, "%d", d.version);
        http_reply_text(req, 200, "application/json", d.text, strlen(d.text));
        http_add_header(req, "Braid-Version", num);
    } else {
        snprintf(num, sizeof num, "%d", d.version);
        http_reply_json(req, 200, d.json, "Braid-Version", num);
    }
    free(d.text);
    json_decref(d.json);
}

/* GET NAME -> the latest version's document, read with GET. Request thread. */
void api_versioned_get(request_t *req, api_doc_get_cb get)
{
    reply_doc(req, get, 0);
}

/* GET NAME/versions/N -> that version's document, read with GET. An N that is not a version
 * number at all is a 404 version_not_found naming WHAT ("" or "connector ") before the name.
 * Request thread. */
void api_versioned_version_get(request_t *req, api_doc_get_cb get, const char *what)
{
    char *end;
    long n = strtol(req->params[1], &end, 10);
    if (*end || end == req->params[1] || n < 1 || n > (1L << 30)) {
        http_reply_error(req, 404, "version_not_found", NULL, "no version '%s' of %s%s",
                         req->params[1], what, req->params[0]);
        return;
    }
    reply_doc(req, get, (int)n);
}

/* GET NAME/versions -> {KEY: NAME, "versions": [{"version", "created_at"}...]}, listed by
 * VERSIONS. Request thread. */
void api_versioned_versions(request_t *req, api_versions_cb versions, const char *key)
{
    json_t *list = NULL;
    err_t err = {0};
    int rc = versions(req->srv, req->params[0], &list, &err);
    http_reply_result(
        req, rc, rc < 0 ? list : json_pack("{s:s, s:o}", key, req->params[0], "versions", list),
        &err);
}

/* PUT NAME: publish the body with PUBLISH. 201 new version, 200 unchanged, 422
 * invalid_definition with every problem in detail.errors (INVALID_MSG when the engine gives no
 * message). Request thread. */
void api_versioned_put(request_t *req, api_publish_cb publish, const char *invalid_msg)
{
    json_t *result = NULL;
    diags_t diags = {0};
    err_t err = {0};
    int rc = publish(req->srv->eng, req->body.data ? req->body.data : "", req->body.len,
                     req->params[0], &result, &diags, &err);
    if (rc == BR_EINVALID_DEFINITION) {
        json_t *detail = json_pack("{s:o}", "errors", diags_to_json(&diags));
        http_reply_error(req, 422, "invalid_definition", detail, "%s",
                         err.msg[0] ? err.msg : invalid_msg);
    } else if (rc < 0) {
        http_reply_err(req, &err);
    } else {
        http_reply_json(req, json_is_true(json_object_get(result, "created")) ? 201 : 200, result,
                        NULL, NULL);
    }
    json_decref(result);
    diags_deinit(&diags);
    err_clear(&err);
}
