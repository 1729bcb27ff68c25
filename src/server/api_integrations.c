/* api_integrations.c - reading, publishing and archiving integrations:
 * GET /integrations, GET|PUT|DELETE /integrations/NAME, GET /integrations/NAME/versions[/N].
 * What integrations share with connectors is api_versioned.c's; this file passes it the calls. */
#include "server/server_internal.h"

/* GET /integrations -> {"integrations": [...]}. */
void api_integrations_list(request_t *req)
{
    json_t *list = NULL;
    err_t err = {0};
    int rc = store_integration_list(req->srv->st, false, &list, &err);
    http_reply_listing(req, rc, "integrations", list, &err);
}

/* An api_doc_get_cb: the stored text of integration NAME's version VERSION. */
static int get_integration(server_t *srv, const char *name, int version, api_doc_t *out, err_t *err)
{
    integration_version_t *v = NULL;
    int rc = store_integration_get(srv->st, name, version, &v, err);
    if (rc < 0)
        return rc;
    out->text = v->doc; /* taken from V, which is freed without it */
    v->doc = NULL;
    out->version = v->version;
    integration_version_free(v);
    return 0;
}

/* An api_versions_cb. An unknown name is a 404, not an empty list. */
static int integration_versions(server_t *srv, const char *name, json_t **out, err_t *err)
{
    integration_version_t *v = NULL;
    int rc = store_integration_get(srv->st, name, 0, &v, err);
    integration_version_free(v);
    return rc < 0 ? rc : store_integration_versions(srv->st, name, out, err);
}

/* GET /integrations/NAME -> the latest version's document. */
void api_integrations_get(request_t *req)
{
    api_versioned_get(req, get_integration);
}

/* GET /integrations/NAME/versions/N -> that version's document. */
void api_integrations_version_get(request_t *req)
{
    api_versioned_version_get(req, get_integration, "");
}

/* GET /integrations/NAME/versions -> {"name", "versions": [{"version", "created_at"}...]}. */
void api_integrations_versions(request_t *req)
{
    api_versioned_versions(req, integration_versions, "name");
}

/* PUT /integrations/NAME: publish the body. 201 new version, 200 unchanged, 422 invalid. */
void api_integrations_put(request_t *req)
{
    api_versioned_put(req, engine_publish, "the definition is not valid");
}

/* DELETE /integrations/NAME: archive it -> {"name", "archived": true}. */
void api_integrations_delete(request_t *req)
{
    err_t err = {0};
    int rc = engine_archive(req->srv->eng, req->params[0], &err);
    http_reply_result(
        req, rc, rc < 0 ? NULL : json_pack("{s:s, s:b}", "name", req->params[0], "archived", 1),
        &err);
}
