/* api_tokens.c - API tokens (admin only): POST /tokens, GET /tokens, DELETE /tokens/ID.
 * A new token's full text is in the answer to its creation and nowhere else. */
#include "server/server_internal.h"

#include "core/clock.h"
#include "vault/token.h"
#include "vault/vault.h"

#include <stdlib.h>
#include <string.h>

/* POST /tokens {role, scopes?, description?} -> 201 the record plus "token". */
void api_tokens_create(request_t *req)
{
    json_t *body = http_body_json_or_reply(req);
    if (!body)
        return;
    const json_t *role = json_object_get(body, "role");
    const json_t *scopes = json_object_get(body, "scopes");
    const json_t *desc = json_object_get(body, "description");
    if (!json_is_object(body) || !json_is_string(role) || (scopes && !json_is_array(scopes)) ||
        (desc && !json_is_string(desc) && !json_is_null(desc))) {
        http_reply_error(req, 400, "input_invalid", NULL,
                         "expected {\"role\": string, \"scopes\"?: [string], "
                         "\"description\"?: string}");
        json_decref(body);
        return;
    }
    char *token = NULL;
    token_rec_t *t = NULL;
    json_t *rec = NULL;
    err_t err = {0};
    if (token_create(req->srv->st, json_string_value(role), scopes, json_string_value(desc),
                     &token, &t, &err) < 0) {
        if (err.code == BR_EUSAGE)
            err.code = BR_EINPUT_INVALID;
        http_reply_err(req, &err);
    } else {
        rec = token_rec_to_json(t);
        json_object_set_new(rec, "token", json_string(token));
        http_reply_json(req, 201, rec, NULL, NULL);
        vault_wipe(token, strlen(token));
    }
    free(token);
    token_rec_free(t);
    json_decref(rec);
    json_decref(body);
    err_clear(&err);
}

/* GET /tokens -> {"tokens": [...]} (never a hash or secret). */
void api_tokens_list(request_t *req)
{
    json_t *list = NULL;
    err_t err = {0};
    int rc = store_token_list(req->srv->st, &list, &err);
    http_reply_listing(req, rc, "tokens", list, &err);
}

/* DELETE /tokens/ID -> {"id", "revoked": true}. Takes effect within a second (auth cache). */
void api_tokens_delete(request_t *req)
{
    err_t err = {0};
    int rc = store_token_revoke(req->srv->st, req->params[0], clock_now_ms(), &err);
    http_reply_result(
        req, rc, rc < 0 ? NULL : json_pack("{s:s, s:b}", "id", req->params[0], "revoked", 1), &err);
}
