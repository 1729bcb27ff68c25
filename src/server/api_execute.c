/* api_execute.c - POST /integrations/execute/NAME and POST /triggers/ID/execute.
 *
 * An execution that only computes (engine_waits: an async enqueue, or a sync run of
 * set/switch/fail tasks and sync calls to such integrations) runs on the libmicrohttpd thread
 * itself, and the store's writer resumes its connection once the record is committed. Any
 * other never runs on a libmicrohttpd thread: the handler builds the request, suspends
 * the connection and hands the engine call to the executor: to the outbound loop when the run
 * waits only on outbound requests (its fiber's answer, too, goes out from the store's writer
 * once committed), else to a pool thread. Whoever answers first — the run
 * finishing, or the wait_ms timer once the run exists — answers, under the job's lock, and
 * resumes the connection; the other side then only lets go of the job. The job is freed when
 * both the executor and the timer have let go of it.
 */
#include "server/server_internal.h"

#include "core/clock.h"
#include "core/fiber.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WAIT_MS_DEFAULT 30000
#define WAIT_MS_MAX 300000

typedef struct exec_job {
    pthread_mutex_t mu;
    int refs;           /* the executor's, and the timer's while armed */
    server_t *srv;
    request_t *req;     /* until answered; then NULL */
    bool answered;
    bool timed_out;     /* wait_ms passed before the run had an id: answer when it has one */
    bool is_trigger;
    char run_id[UUID_STR_LEN];
    json_t *started;    /* ids of the sync runs started so far (array) */
    uint64_t started_ticket; /* store ticket of the last started run's record */
    executor_timer_t timer;
    struct MHD_Response *response; /* a fiber's answer, while its record is being committed */
    int status;
    char *integration, *trigger_id, *idempotency_key;
    int version;
    exec_mode_t mode;
    json_t *payload, *context, *trigger_info;
} exec_job_t;

static void job_unref(exec_job_t *j)
{
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    pthread_mutex_destroy(&j->mu);
    json_decref(j->started);
    json_decref(j->payload);
    json_decref(j->context);
    json_decref(j->trigger_info);
    free(j->integration);
    free(j->trigger_id);
    free(j->idempotency_key);
    free(j);
}

/* The 202 for a run still going at wait_ms. Lock held. */
static struct MHD_Response *still_running(exec_job_t *j)
{
    json_t *doc;
    struct MHD_Response *r;
    if (j->is_trigger) {
        json_t *runs = json_array();
        size_t i;
        json_t *id;
        json_array_foreach(j->started, i, id)
        {
            json_array_append_new(runs, json_pack("{s:O, s:s}", "run_id", id, "status", "running"));
        }
        doc = json_pack("{s:o}", "runs", runs);
        r = http_json_response(doc, NULL, NULL);
    } else {
        char loc[64];
        snprintf(loc, sizeof loc, "/runs/%s", j->run_id);
        doc = json_pack("{s:s, s:s}", "run_id", j->run_id, "status", "running");
        r = http_json_response(doc, MHD_HTTP_HEADER_LOCATION, loc);
    }
    json_decref(doc);
    return r;
}

/* Answer the job's request with RESP (taken) and STATUS if nobody has yet. Lock held; returns
 * the request to resume (outside the lock) or NULL. */
static request_t *answer_locked(exec_job_t *j, int status, struct MHD_Response *resp)
{
    if (j->answered) {
        MHD_destroy_response(resp);
        return NULL;
    }
    j->answered = true;
    request_t *req = j->req;
    j->req = NULL;
    req->response = resp;
    req->status = status;
    if (!req->run_id[0] && j->run_id[0])
        snprintf(req->run_id, sizeof req->run_id, "%s", j->run_id);
    return req;
}

static void resume(request_t *req)
{
    if (req)
        http_resume_with(req, req->status, req->response);
}

static void answer_when_committed(void *arg, int rc, const err_t *err);

/* REQ answers 202 with the ids of runs whose records are at most TICKET: it goes out once they
 * are committed (SPEC §8). No thread waits for that: not the loop's, nor the timer's. */
static void resume_when_committed(server_t *srv, request_t *req, uint64_t ticket)
{
    if (req)
        store_on_commit(srv->st, ticket, answer_when_committed, req);
}

/* on_started: the engine made a sync root run, whose record is TICKET. Executor thread or
 * outbound loop. */
static void on_started(void *ctx, const char *run_id, uint64_t ticket)
{
    exec_job_t *j = ctx;
    request_t *req = NULL;
    pthread_mutex_lock(&j->mu);
    if (!j->run_id[0])
        snprintf(j->run_id, sizeof j->run_id, "%s", run_id);
    json_array_append_new(j->started, json_string(run_id));
    j->started_ticket = ticket;
    if (j->timed_out && !j->answered)
        req = answer_locked(j, 202, still_running(j));
    pthread_mutex_unlock(&j->mu);
    resume_when_committed(j->srv, req, ticket);
}

/* wait_ms passed. Timer thread. */
static void on_deadline(void *arg)
{
    exec_job_t *j = arg;
    request_t *req = NULL;
    pthread_mutex_lock(&j->mu);
    if (!j->answered) {
        if (j->run_id[0])
            req = answer_locked(j, 202, still_running(j));
        else
            j->timed_out = true;
    }
    uint64_t ticket = j->started_ticket;
    pthread_mutex_unlock(&j->mu);
    resume_when_committed(j->srv, req, ticket);
    job_unref(j);
}

/* The answer for a finished engine_execute: OUT borrowed, or, when OUT is NULL, TEXT's
 * (its JSON taken). RUN_ID gets the (first) run's id when it is still empty. */
static struct MHD_Response *result_response(json_t *out, exec_text_t *text,
                                            char run_id[UUID_STR_LEN], int *status)
{
    if (!out) {
        if (!run_id[0])
            memcpy(run_id, text->run_id, UUID_STR_LEN);
        struct MHD_Response *r = http_json_text_response(&text->json);
        *status = 200;
        if (text->async) {
            char loc[64];
            snprintf(loc, sizeof loc, "/runs/%s", text->run_id);
            MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
            *status = 202;
        }
        return r;
    }
    json_t *runs = json_object_get(out, "runs");
    if (runs) {
        bool all_done = true;
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r)
        {
            if (!json_object_get(r, "id"))
                all_done = false;
        }
        *status = all_done ? 200 : 202;
        return http_json_response(out, NULL, NULL);
    }
    const char *async_id = json_string_value(json_object_get(out, "run_id"));
    if (async_id) {
        char loc[64];
        snprintf(loc, sizeof loc, "/runs/%s", async_id);
        if (!run_id[0])
            snprintf(run_id, UUID_STR_LEN, "%s", async_id);
        *status = 202;
        return http_json_response(out, MHD_HTTP_HEADER_LOCATION, loc);
    }
    const char *id = json_string_value(json_object_get(out, "id"));
    if (id && !run_id[0])
        snprintf(run_id, UUID_STR_LEN, "%s", id);
    *status = 200;
    return http_json_response(out, NULL, NULL);
}

/* Answer J's request with RESP and STATUS (unless the timer did already) and let go of J. */
static void finish_job(exec_job_t *j, int status, struct MHD_Response *resp)
{
    pthread_mutex_lock(&j->mu);
    request_t *req = answer_locked(j, status, resp);
    pthread_mutex_unlock(&j->mu);
    if (executor_timer_cancel(j->srv->exec, &j->timer))
        job_unref(j); /* the timer's reference: it will not fire now */
    resume(req);
    job_unref(j);
}

/* The commit of a run's record ended with RC/ERR: the answer *RESP (*STATUS) stands, or, when
 * the record was lost, an error takes its place (the run must not be reported as done). */
static void settle(struct MHD_Response **resp, int *status, int rc, const err_t *err)
{
    if (rc < 0) {
        MHD_destroy_response(*resp);
        *resp = http_error_response(err, status);
    }
}

/* The record of a job run on a fiber is durable: its answer may go out. The store's thread. */
static void job_committed(void *arg, int rc, const err_t *err)
{
    exec_job_t *j = arg;
    settle(&j->response, &j->status, rc, err);
    finish_job(j, j->status, j->response);
}

/* The engine call. An executor thread, or a fiber of the outbound loop. */
static void run_job(void *arg)
{
    exec_job_t *j = arg;
    /* A fiber must not wait for the commit (its loop thread would stop): the store's thread
     * answers once the record is durable. A pool thread may wait. */
    uint64_t ticket = 0;
    bool on_fiber = fiber_current() != NULL;
    exec_request_t x = {.integration = j->integration,
                        .trigger_id = j->trigger_id,
                        .version = j->version,
                        .mode = j->mode,
                        .payload = j->payload,
                        .context = j->context,
                        .trigger = j->is_trigger ? "trigger" : "api",
                        .trigger_info = j->trigger_info,
                        .idempotency_key = j->idempotency_key,
                        .on_started = on_started,
                        .started_ctx = j,
                        .ticket = on_fiber ? &ticket : NULL};
    exec_text_t text = {BUF_INIT, false, ""};
    x.text = j->is_trigger ? NULL : &text;
    json_t *out = NULL;
    err_t err = {0};
    int rc = engine_execute(j->srv->eng, &x, &out, &err);
    int status;
    struct MHD_Response *resp = rc < 0 ? http_error_response(&err, &status)
                                       : result_response(out, &text, j->run_id, &status);
    json_decref(out);
    buf_deinit(&text.json);
    err_clear(&err);
    if (rc == 0 && ticket != 0) {
        j->response = resp;
        j->status = status;
        store_on_commit(j->srv->st, ticket, job_committed, j);
        return;
    }
    finish_job(j, status, resp);
}

/* The run's record is durable: the answer left on REQ may go out now. The thread that
 * committed it, right after the commit (or the handler itself, when the commit came first). */
static void answer_when_committed(void *arg, int rc, const err_t *err)
{
    request_t *req = arg;
    settle(&req->response, &req->status, rc, err);
    http_resume_with(req, req->status, req->response);
}

/* Run X here, on the libmicrohttpd thread, for an execution that only computes (or only
 * enqueues): no hand-off to an executor thread and back. The answer is left on REQ and goes
 * out once the run's record is committed (SPEC §8: committed before answered). When nobody
 * else is committing and few writes wait (low load), this thread commits it itself and the
 * answer goes at once; else the connection is suspended until the store's writer commits it
 * and resumes the connection itself. Meanwhile this thread serves its other connections, and
 * one commit answers every execution it holds. */
static void execute_here(request_t *req, exec_request_t *x)
{
    uint64_t ticket = 0;
    x->ticket = &ticket;
    exec_text_t text = {BUF_INIT, false, ""};
    if (!x->trigger_id)
        x->text = &text;
    json_t *out = NULL;
    err_t err = {0};
    int rc = engine_execute(req->srv->eng, x, &out, &err);
    if (rc < 0) {
        http_reply_err(req, &err);
    } else {
        req->response = result_response(out, &text, req->run_id, &req->status);
        json_decref(out);
    }
    x->text = NULL;
    buf_deinit(&text.json);
    err_clear(&err);
    if (rc < 0 || ticket == 0)
        return; /* the request loop answers at once */
    /* At low load this thread commits the record itself and answers at once: no hand-off to
     * the store's thread and back. Else the store's thread resumes the connection. */
    int crc = 0;
    err_t cerr = {0};
    if (store_try_commit(req->srv->st, ticket, &crc, &cerr)) {
        settle(&req->response, &req->status, crc, &cerr);
        err_clear(&cerr);
        return;
    }
    http_suspend(req);
    store_on_commit(req->srv->st, ticket, answer_when_committed, req);
}

/* The payload: {} for an empty body; JSON when it parses (it must, when the request says it
 * is JSON); else the body as a string. Replies 400 and returns NULL when it cannot be had. */
static json_t *payload_or_reply(request_t *req)
{
    const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    bool says_json = ct && (strncasecmp(ct, "application/json", 16) == 0 || strstr(ct, "+json"));
    if (says_json)
        return http_body_json_or_reply(req); /* an empty body is not JSON either */
    if (req->body.len == 0)
        return json_object();
    jsonx_limits_t lim = {req->srv->cfg.max_body, JSONX_DEFAULT_DEPTH, false};
    err_t err = {0};
    json_t *v = jsonx_parse(req->body.data, req->body.len, &lim, &err);
    if (v)
        return v;
    /* Text that is JSON but nested past the limit is refused, not passed on as a string:
     * a depth bomb must not slip through by leaving out its content type. */
    if (json_object_get(err.detail, "max_depth")) {
        http_reply_error(req, 400, "input_invalid", json_incref(err.detail), "%s", err.msg);
        err_clear(&err);
        return NULL;
    }
    err_clear(&err);
    v = json_stringn(req->body.data, req->body.len);
    if (!v)
        http_reply_error(req, 400, "input_invalid", NULL,
                         "the body is neither JSON nor UTF-8 text");
    return v;
}

/* The run's input context from the request: {params, path, headers, method, fullpath}, built
 * member by member (json_pack parses its format on every call). NULL when the path or the
 * method is not UTF-8, as json_pack answered: the run then sees the defaults. */
static json_t *request_context(request_t *req)
{
    buf_t query = BUF_INIT;
    json_t *params = http_params(req, &query);
    json_t *path = json_string(req->path), *method = json_string(req->method);
    json_t *fullpath = NULL;
    if (path && query.len) {
        buf_t full = BUF_INIT;
        buf_puts(&full, req->path);
        buf_append(&full, query.data, query.len);
        fullpath = json_stringn(full.data, full.len);
        buf_deinit(&full);
    } else if (path) {
        fullpath = json_incref(path);
    }
    buf_deinit(&query);
    if (!path || !method || !fullpath) {
        json_decref(params);
        json_decref(path);
        json_decref(method);
        json_decref(fullpath);
        return NULL;
    }
    json_t *c = json_object();
    json_object_set_new_nocheck(c, "params", params);
    json_object_set_new_nocheck(c, "path", path);
    json_object_set_new_nocheck(c, "headers", http_headers(req));
    json_object_set_new_nocheck(c, "method", method);
    json_object_set_new_nocheck(c, "fullpath", fullpath);
    return c;
}

/* Parse the common parts of an execute request and start the job; the handler's last word. */
static void execute(request_t *req, const char *integration, const char *trigger_id)
{
    char *mode_s = http_query(req, "mode");
    exec_mode_t mode = EXEC_DEFAULT;
    if (mode_s && strcmp(mode_s, "sync") == 0)
        mode = EXEC_SYNC;
    else if (mode_s && strcmp(mode_s, "async") == 0)
        mode = EXEC_ASYNC;
    else if (mode_s) {
        http_reply_error(req, 400, "input_invalid", NULL, "mode must be sync or async");
        free(mode_s);
        return;
    }
    free(mode_s);
    long long version = 0, wait_ms = 0;
    if (http_query_long_or_reply(req, "version", 1, 1 << 30, 0, &version) < 0 ||
        http_query_long_or_reply(req, "wait_ms", 0, WAIT_MS_MAX, WAIT_MS_DEFAULT, &wait_ms) < 0)
        return;
    json_t *payload = payload_or_reply(req);
    if (!payload)
        return;
    json_t *context = request_context(req);
    json_t *trigger_info = json_object();
    json_object_set_new_nocheck(trigger_info, "token", json_string(req->token.id));
    const char *key = http_header(req, "Idempotency-Key");
    if (key && !*key)
        key = NULL;

    /* An idempotency key may make the call wait for an earlier run, and wait_ms=0 asks for the
     * run id at once: those and triggers go to a pool thread, as do runs that may wait for
     * anything but outbound requests. */
    exec_waits_t waits = EXEC_WAITS_OTHER;
    if (integration && !key && wait_ms > 0)
        waits = engine_waits(req->srv->eng, integration, (int)version, mode);
    if (waits == EXEC_WAITS_NOTHING) {
        exec_request_t x = {.integration = integration,
                            .version = (int)version,
                            .mode = mode,
                            .payload = payload,
                            .context = context,
                            .trigger = "api",
                            .trigger_info = trigger_info};
        execute_here(req, &x);
        json_decref(payload);
        json_decref(context);
        json_decref(trigger_info);
        return;
    }

    exec_job_t *j = XNEW(exec_job_t);
    pthread_mutex_init(&j->mu, NULL);
    j->srv = req->srv;
    j->req = req;
    j->is_trigger = trigger_id != NULL;
    j->started = json_array();
    j->integration = integration ? xstrdup(integration) : NULL;
    j->trigger_id = trigger_id ? xstrdup(trigger_id) : NULL;
    j->idempotency_key = key ? xstrdup(key) : NULL;
    j->version = (int)version;
    j->mode = mode;
    j->payload = payload;
    j->context = context;
    j->trigger_info = trigger_info;
    j->refs = 1;

    /* Suspend first: the job may finish and resume the connection before submit returns. */
    http_suspend(req);
    if (mode != EXEC_ASYNC) {
        j->refs++;
        j->timer.due_ms = clock_mono_ms() + wait_ms;
        j->timer.fn = on_deadline;
        j->timer.arg = j;
        executor_timer_add(req->srv->exec, &j->timer);
    }
    int submitted = waits == EXEC_WAITS_NETWORK ? executor_submit_fiber(req->srv->exec, run_job, j)
                                                : executor_submit(req->srv->exec, run_job, j);
    if (submitted < 0) {
        pthread_mutex_lock(&j->mu);
        j->answered = true;
        j->req = NULL;
        pthread_mutex_unlock(&j->mu);
        if (executor_timer_cancel(req->srv->exec, &j->timer))
            job_unref(j);
        job_unref(j);
        http_reply_error(req, 429, "too_many_requests", NULL,
                         "too many executions in flight; try again later");
        http_resume_with(req, req->status, req->response);
    }
}

/* POST /integrations/execute/NAME. libmicrohttpd thread; the answer comes from here, the
 * store's writer or the executor. */
void api_execute_post(request_t *req)
{
    execute(req, req->params[0], NULL);
}

/* POST /triggers/ID/execute. */
void api_triggers_execute(request_t *req)
{
    execute(req, NULL, req->params[0]);
}
