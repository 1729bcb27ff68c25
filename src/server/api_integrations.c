/* api_integrations.c - reading, publishing and archiving integrations:
 * GET /integrations, GET|PUT|DELETE /integrations/NAME, GET /integrations/NAME/versions[/N]. */
#include "server/server_internal.h"

#include "core/xalloc.h"
#include "definition/definition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET /integrations -> {"integrations": [...]}. */
void api_integrations_list(request_t *req)
{
    json_t *list = NULL;
    err_t err = {0};
    if (store_integration_list(req->srv->st, false, &list, &err) < 0) {
        http_reply_err(req, &err);
        err_clear(&err);
        return;
    }
    json_t *doc = json_pack("{s:o}", "integrations", list);
    http_reply_json(req, 200, doc, NULL, NULL);
    json_decref(doc);
}

/* Answer version VERSION (0 = latest) of the integration named in the path: the document
 * itself, with its version in Braid-Version. */
static void reply_version(request_t *req, int version)
{
    integration_version_t *v = NULL;
    err_t err = {0};
    if (store_integration_get(req->srv->st, req->params[0], version, &v, &err) < 0) {
        http_reply_err(req, &err);
        err_clear(&err);
        return;
    }
    char num[24];
    snprintf(num, sizeof num, "%d", v->version);
    http_reply_text(req, 200, "application/json", v->doc, strlen(v->doc));
    http_add_header(req, "Braid-Version", num);
    integration_version_free(v);
}

/* GET /integrations/NAME -> the latest version's document. */
void api_integrations_get(request_t *req)
{
    reply_version(req, 0);
}

/* GET /integrations/NAME/versions/N -> that version's document. */
void api_integrations_version_get(request_t *req)
{
    char *end;
    long n = strtol(req->params[1], &end, 10);
    if (*end || end == req->params[1] || n < 1 || n > (1L << 30)) {
        http_reply_error(req, 404, "version_not_found", NULL, "no version '%s' of %s",
                         req->params[1], req->params[0]);
        return;
    }
    reply_version(req, (int)n);
}

/* GET /integrations/NAME/versions -> {"versions": [{"version", "created_at"}...]}. */
void api_integrations_versions(request_t *req)
{
    json_t *list = NULL;
    err_t err = {0};
    integration_version_t *v = NULL;
    /* An unknown name is a 404, not an empty list. */
    if (store_integration_get(req->srv->st, req->params[0], 0, &v, &err) < 0 ||
        store_integration_versions(req->srv->st, req->params[0], &list, &err) < 0) {
        http_reply_err(req, &err);
        err_clear(&err);
        integration_version_free(v);
        return;
    }
    integration_version_free(v);
    json_t *doc = json_pack("{s:s, s:o}", "name", req->params[0], "versions", list);
    http_reply_json(req, 200, doc, NULL, NULL);
    json_decref(doc);
}

/* PUT /integrations/NAME: publish the body. 201 new version, 200 unchanged, 422 invalid. */
void api_integrations_put(request_t *req)
{
    json_t *result = NULL;
    diags_t diags = {0};
    err_t err = {0};
    int rc = engine_publish(req->srv->eng, req->body.data ? req->body.data : "", req->body.len,
                            req->params[0], &result, &diags, &err);
    if (rc == BR_EINVALID_DEFINITION) {
        json_t *detail = json_pack("{s:o}", "errors", diags_to_json(&diags));
        http_reply_error(req, 422, "invalid_definition", detail, "%s",
                         err.msg[0] ? err.msg : "the definition is not valid");
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

/* DELETE /integrations/NAME: archive it -> {"name", "archived": true}. */
void api_integrations_delete(request_t *req)
{
    err_t err = {0};
    if (engine_archive(req->srv->eng, req->params[0], &err) < 0) {
        http_reply_err(req, &err);
        err_clear(&err);
        return;
    }
    json_t *doc = json_pack("{s:s, s:b}", "name", req->params[0], "archived", 1);
    http_reply_json(req, 200, doc, NULL, NULL);
    json_decref(doc);
}
