/* api_runs.c - run history: GET /runs (filters, cursor), GET /runs/ID, GET /runs/ID/tree,
 * POST /runs/ID/cancel. An invoker sees only the runs its token started; any other run is
 * answered 404, exactly as an unknown id, so run ids cannot be probed. */
#include "server/server_internal.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_no_run(request_t *req)
{
    http_reply_error(req, 404, "not_found", NULL, "no run '%s'", req->params[0]);
}

/* Whether the run in the path may be shown to this token; replies 404 when not. */
static bool visible_or_reply(request_t *req, const json_t *rec)
{
    if (auth_may_see_run(&req->token, rec))
        return true;
    reply_no_run(req);
    return false;
}

/* GET /runs -> {"runs": [...], "next_cursor": "..."|null}. */
void api_runs_list(request_t *req)
{
    run_filter_t f = {.status = -1};
    long long limit;
    char *integration = http_query(req, "integration");
    char *status = http_query(req, "status");
    char *root_id = http_query(req, "root_id");
    char *parent_id = http_query(req, "parent_id");
    char *since = http_query(req, "since");
    char *cursor = http_query(req, "cursor");
    run_rec_t **runs = NULL;
    int n = 0;
    char *next = NULL;
    if (http_query_long_or_reply(req, "limit", 1, 1000, 50, &limit) < 0)
        goto out;
    f.limit = (int)limit;
    f.integration = integration;
    f.root_id = root_id;
    f.parent_id = parent_id;
    f.cursor = cursor;
    if (status) {
        run_status_t s;
        if (run_status_parse(status, &s) < 0) {
            http_reply_error(req, 400, "input_invalid", NULL, "unknown status '%s'", status);
            goto out;
        }
        f.status = (int)s;
    }
    if (since && clock_parse_rfc3339(since, &f.since) < 0) {
        http_reply_error(req, 400, "input_invalid", NULL,
                         "since must be an RFC 3339 time, not '%s'", since);
        goto out;
    }
    if (cursor && !uuid_valid(cursor)) {
        http_reply_error(req, 400, "input_invalid", NULL, "bad cursor");
        goto out;
    }
    err_t err = {0};
    if (store_runs_list(req->srv->st, &f, &runs, &n, &next, &err) < 0) {
        http_reply_err(req, &err);
        err_clear(&err);
        goto out;
    }
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        json_t *r = run_rec_to_json(runs[i]);
        /* Invokers see their own runs only; a page may then hold fewer than 'limit'. */
        if (auth_may_see_run(&req->token, r))
            json_array_append_new(list, r);
        else
            json_decref(r);
    }
    json_t *doc = json_pack("{s:o, s:o}", "runs", list, "next_cursor",
                            next ? json_string(next) : json_null());
    http_reply_json(req, 200, doc, NULL, NULL);
    json_decref(doc);
out:
    run_recs_free(runs, n);
    free(next);
    free(integration);
    free(status);
    free(root_id);
    free(parent_id);
    free(since);
    free(cursor);
}

/* GET /runs/ID -> the run with its steps. */
void api_runs_get(request_t *req)
{
    const char *id = req->params[0];
    if (!uuid_valid(id)) {
        reply_no_run(req);
        return;
    }
    snprintf(req->run_id, sizeof req->run_id, "%s", id);
    json_t *run = NULL;
    err_t err = {0};
    if (engine_run_get(req->srv->eng, id, &run, &err) < 0)
        http_reply_err(req, &err);
    else if (visible_or_reply(req, run))
        http_reply_json(req, 200, run, NULL, NULL);
    json_decref(run);
    err_clear(&err);
}

/* GET /runs/ID/tree -> the run and its descendants, nested. */
void api_runs_tree(request_t *req)
{
    const char *id = req->params[0];
    if (!uuid_valid(id)) {
        reply_no_run(req);
        return;
    }
    snprintf(req->run_id, sizeof req->run_id, "%s", id);
    json_t *tree = NULL;
    err_t err = {0};
    if (engine_run_tree(req->srv->eng, id, &tree, &err) < 0)
        http_reply_err(req, &err);
    else if (visible_or_reply(req, tree))
        http_reply_json(req, 200, tree, NULL, NULL);
    json_decref(tree);
    err_clear(&err);
}

/* POST /runs/ID/cancel -> the run's record afterwards. */
void api_runs_cancel(request_t *req)
{
    const char *id = req->params[0];
    if (!uuid_valid(id)) {
        reply_no_run(req);
        return;
    }
    snprintf(req->run_id, sizeof req->run_id, "%s", id);
    err_t err = {0};
    json_t *out = NULL;
    if (req->token.role == ROLE_INVOKER) {
        run_rec_t *rec = NULL;
        if (store_run_get(req->srv->st, id, &rec, &err) < 0) {
            http_reply_err(req, &err);
            err_clear(&err);
            return;
        }
        json_t *j = run_rec_to_json(rec);
        run_rec_free(rec);
        bool ok = visible_or_reply(req, j);
        json_decref(j);
        if (!ok)
            return;
    }
    int rc = engine_cancel(req->srv->eng, id, &out, &err);
    http_reply_result(req, rc, out, &err);
}
