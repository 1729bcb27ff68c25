/* task_http.c - the http and connector tasks (SPEC §4, §5): render the request, send it
 * through the outbound client, and turn the answer into the task's outcome and vars.
 *
 * Both task types end in one function, send_request, so they share limits, the address
 * guard, headers (traceparent, Idempotency-Key), outcomes and scrubbing. Secrets enter only
 * here: the connection is opened for the one attempt, its values join the run's scrub set
 * before anything is sent, and every rendered request string is wiped afterwards. Whatever
 * comes back -- status, headers, body, error messages -- is scrubbed before the run sees it,
 * so an upstream that echoes a credential cannot carry it into vars, history or logs.
 */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "definition/connector.h"
#include "net/http_client.h"
#include "net/http_loop.h"
#include "vault/scrub.h"
#include "vault/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_REQUEST_HEADERS 128

/* ---- the client ----------------------------------------------------------------------------- */

int outbound_init(engine_t *eng, err_t *err)
{
    guard_t *g = guard_new();
    size_t i;
    json_t *cidr;
    json_array_foreach(eng->cfg.allow_net, i, cidr)
    {
        int rc = json_is_string(cidr) ? guard_allow_cidr(g, json_string_value(cidr), err)
                                      : err_set(err, BR_EUSAGE, "--allow-net takes CIDR text");
        if (rc < 0) {
            guard_free(g);
            return rc;
        }
    }
    http_client_config_t cfg = {
        .connect_timeout_ms = eng->cfg.http_connect_timeout_ms,
        .low_speed_bytes = eng->cfg.http_low_speed_bytes,
        .low_speed_ms = eng->cfg.http_low_speed_ms,
        .max_idle_connections = eng->cfg.http_max_idle_connections,
    };
    eng->http = http_client_new(&cfg, g);
    /* Runs recurse on a fiber's stack as on a worker's: the same 8 MiB. */
    eng->loop = http_loop_new((size_t)8 << 20, eng->cfg.http_max_idle_connections);
    return 0;
}

void outbound_deinit(engine_t *eng)
{
    http_loop_free(eng->loop);
    eng->loop = NULL;
    http_client_free(eng->http);
    eng->http = NULL;
}

/* See engine.h. */
http_loop_t *engine_loop(engine_t *eng)
{
    return eng->loop;
}

/* ---- wiping --------------------------------------------------------------------------------- */

static void wipe_free(char *s)
{
    if (s)
        vault_wipe(s, strlen(s));
    free(s);
}

/* ---- trace context ------------------------------------------------------------------------- */

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The trace id a W3C traceparent header V carries, when V is well formed (version 00, a
 * non-zero trace id). */
static bool trace_from_header(const json_t *headers, char out[33])
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        if (strcasecmp(k, "traceparent") != 0 || !json_is_string(v))
            continue;
        const char *s = json_string_value(v);
        if (strlen(s) < 55 || memcmp(s, "00-", 3) != 0 || s[35] != '-' || !is_hex(s + 3, 32) ||
            !is_hex(s + 36, 16) || strspn(s + 3, "0") >= 32)
            return false;
        memcpy(out, s + 3, 32);
        out[32] = '\0';
        return true;
    }
    return false;
}

/* The trace id of ROOT: an incoming traceparent it was started with, else its own id. */
static void trace_of_root(const run_rec_t *root, char out[33])
{
    if (root->input && trace_from_header(json_object_get(root->input, "headers"), out))
        return;
    size_t j = 0;
    for (const char *p = root->id; *p && j < 32; p++)
        if (*p != '-')
            out[j++] = *p;
    out[j] = '\0';
}

/* See engine_internal.h. */
const char *run_trace_id(run_ctx_t *ctx)
{
    if (ctx->trace_id[0])
        return ctx->trace_id;
    if (ctx->parent) {
        memcpy(ctx->trace_id, run_trace_id(ctx->parent), 33);
    } else if (!ctx->rec->parent_id[0]) {
        trace_of_root(ctx->rec, ctx->trace_id);
    } else {
        run_rec_t *root = NULL;
        if (store_run_get(ctx->eng->store, ctx->rec->root_id, &root, NULL) == 0) {
            trace_of_root(root, ctx->trace_id);
        } else {
            run_rec_t stand_in = {0};
            memcpy(stand_in.id, ctx->rec->root_id, UUID_STR_LEN);
            trace_of_root(&stand_in, ctx->trace_id);
        }
        run_rec_free(root);
    }
    return ctx->trace_id;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* What a task asks to send, rendered. Every member owned; strings may hold secrets. */
typedef struct request {
    const char *method;
    char *url;           /* with the query */
    json_t *headers;     /* object name -> string */
    char *body;          /* NULL = none */
    size_t body_len;
    bool body_is_json;
    char *username, *password;
    int64_t timeout_ms;
    size_t max_response_bytes;
    bool follow_redirects;
} request_t;

static void request_deinit(request_t *r)
{
    wipe_free(r->url);
    vault_wipe_json_decref(r->headers);
    if (r->body)
        vault_wipe(r->body, r->body_len);
    free(r->body);
    wipe_free(r->username);
    wipe_free(r->password);
}

/* Render template T (may be NULL) in SCOPE into *OUT; false with ERR on failure. */
static bool render(const template_t *t, const tmpl_scope_t *scope, json_t **out, err_t *err)
{
    *out = NULL;
    if (!t)
        return true;
    *out = template_render(t, scope, err);
    return *out != NULL;
}

/* A scalar as header or query text: strings as they are, null as "", the rest as JSON. */
static char *scalar_text(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_null(v))
        return xstrdup("");
    char *s = jsonx_dump(v);
    return s ? s : xstrdup("");
}

static void set_header(request_t *r, const char *name, const char *value)
{
    json_object_set_new(r->headers, name, json_string(value));
}

/* Add the rendered headers object H to R->headers as strings (later names win). */
static int add_headers(request_t *r, const json_t *h, err_t *err)
{
    if (!h)
        return 0;
    if (!json_is_object(h))
        return err_set(err, BR_EEXPRESSION_ERROR, "headers must render to an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)h, k, v)
    {
        if (json_is_object(v) || json_is_array(v))
            return err_set(err, BR_EEXPRESSION_ERROR,
                           "header '%.64s' must render to text, not %s", k, jsonx_type_name(v));
        char *text = scalar_text(v);
        set_header(r, k, text);
        wipe_free(text);
    }
    return 0;
}

static bool has_header(const request_t *r, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(r->headers, k, v) if (strcasecmp(k, name) == 0) return true;
    return false;
}

/* Render the auth block A into R (basic: credentials; bearer/header: a header). */
static int add_auth(request_t *r, const request_auth_t *a, const tmpl_scope_t *scope, err_t *err)
{
    if (a->type == AUTH_NONE)
        return 0;
    json_t *x = NULL, *y = NULL;
    int rc = 0;
    if (!render(a->a, scope, &x, err) || !render(a->b, scope, &y, err)) {
        rc = err->code;
        goto out;
    }
    char *xs = scalar_text(x), *ys = y ? scalar_text(y) : NULL;
    switch (a->type) {
    case AUTH_BASIC:
        r->username = xs, r->password = ys;
        xs = ys = NULL;
        break;
    case AUTH_BEARER: {
        size_t n = strlen(xs) + 8;
        char *h = xmalloc(n);
        snprintf(h, n, "Bearer %s", xs);
        set_header(r, "Authorization", h);
        wipe_free(h);
        break;
    }
    case AUTH_HEADER:
        set_header(r, xs, ys ? ys : "");
        break;
    case AUTH_NONE:
        break;
    }
    wipe_free(xs);
    wipe_free(ys);
out:
    vault_wipe_json_decref(x);
    vault_wipe_json_decref(y);
    return rc;
}

/* Render BODY into R: a string as it is, anything else as JSON. */
static void set_body(request_t *r, json_t *body)
{
    if (!body)
        return;
    if (json_is_string(body)) {
        r->body_len = json_string_length(body);
        r->body = xmalloc(r->body_len + 1);
        memcpy(r->body, json_string_value(body), r->body_len + 1);
        return;
    }
    r->body = jsonx_dump(body);
    r->body_len = r->body ? strlen(r->body) : 0;
    r->body_is_json = true;
}

/* The response body as the run sees it: parsed when it is JSON, else text. */
static json_t *body_value(const http_response_t *resp)
{
    if (!resp->body || resp->body_len == 0)
        return json_null(); /* 204, HEAD, an empty answer */
    const char *ct = resp->content_type;
    bool json_type = ct && (strncasecmp(ct, "application/json", 16) == 0 || strstr(ct, "+json"));
    if (json_type || (!ct && resp->body_len > 0)) {
        jsonx_limits_t lim = {.max_bytes = 0, .max_depth = JSONX_DEFAULT_DEPTH};
        json_t *v = jsonx_parse(resp->body, resp->body_len, &lim, NULL);
        if (v)
            return v;
    }
    json_t *s = json_stringn(resp->body, resp->body_len);
    return s ? s : jsonx_string_lossy(resp->body);
}

/* Replace every form of CTX's secrets in O's result and error (nothing when it used none). */
static void scrub_outcome(run_ctx_t *ctx, outcome_t *o)
{
    if (!ctx->scrub)
        return;
    json_t **parts[] = {&o->result, &o->error};
    for (int i = 0; i < 2; i++) {
        if (!*parts[i])
            continue;
        json_t *clean = scrub_json(ctx->scrub, *parts[i]);
        json_decref(*parts[i]);
        *parts[i] = clean;
    }
}

/* A task that failed before or instead of a response: the error, scrubbed. */
static void fail_task(run_ctx_t *ctx, outcome_t *o, err_t *err)
{
    outcome_fail_err(o, err);
    scrub_outcome(ctx, o);
}

typedef struct stop_ctx {
    run_ctx_t *ctx;
    int64_t deadline;
} stop_ctx_t;

static int should_stop(void *p)
{
    stop_ctx_t *s = p;
    if (run_cancelled(s->ctx))
        return BR_ECANCELLED;
    if (clock_mono_ms() >= s->deadline)
        return BR_ETIMEOUT;
    return 0;
}

/* Send R for task T (step SEQ) of CTX and fill OUT: the outcome's status and result
 * {"status", "headers", "body"}, or its error. *BODY receives the response body value for
 * vars (owned; null when no response came). Everything that came back is scrubbed. */
static void send_request(run_ctx_t *ctx, const task_t *t, int seq, int64_t deadline,
                         request_t *r, outcome_t *out, json_t **body)
{
    *body = json_null();
    /* Headers braid adds unless the task set them itself. */
    char value[128];
    if (!has_header(r, "traceparent")) {
        /* "00-" trace id "-" span id "-01", built by hand: every request sends one. */
        static const char digits[] = "0123456789abcdef";
        unsigned char span[8];
        vault_random(span, sizeof span);
        memcpy(value, "00-", 3);
        memcpy(value + 3, run_trace_id(ctx), 32);
        value[35] = '-';
        for (int i = 0; i < 8; i++) {
            value[36 + 2 * i] = digits[span[i] >> 4];
            value[37 + 2 * i] = digits[span[i] & 15];
        }
        memcpy(value + 52, "-01", 4);
        set_header(r, "traceparent", value);
    }
    if (!has_header(r, "Idempotency-Key")) {
        /* One key per step: every attempt of the task, and a re-run of the same step after an
         * interruption, carry the same one. */
        snprintf(value, sizeof value, "%s-%d", ctx->rec->id, seq);
        set_header(r, "Idempotency-Key", value);
    }
    if (r->body && !has_header(r, "Content-Type"))
        set_header(r, "Content-Type",
                   r->body_is_json ? "application/json" : "text/plain; charset=utf-8");

    http_header_t hdrs[MAX_REQUEST_HEADERS];
    int n_hdrs = 0;
    const char *k;
    json_t *v;
    json_object_foreach(r->headers, k, v)
    {
        if (n_hdrs == MAX_REQUEST_HEADERS) {
            outcome_fail(out, "input_invalid", "a request may carry at most 128 headers", NULL);
            out->status = 0;
            return;
        }
        hdrs[n_hdrs++] = (http_header_t){k, json_string_value(v)};
    }
    int64_t timeout = r->timeout_ms;
    int64_t left = deadline - clock_mono_ms();
    if (left < timeout)
        timeout = left > 1 ? left : 1;
    stop_ctx_t sc = {ctx, deadline};
    http_request_t req = {
        .method = r->method,
        .url = r->url,
        .headers = hdrs,
        .n_headers = n_hdrs,
        .username = r->username,
        .password = r->password,
        .body = r->body,
        .body_len = r->body_len,
        .timeout_ms = timeout,
        .max_response_bytes = r->max_response_bytes,
        .follow_redirects = r->follow_redirects,
        .should_stop = should_stop,
        .stop_ctx = &sc,
    };
    http_response_t resp;
    err_t err = {0};
    int rc = http_perform(ctx->eng->http, &req, &resp, &err);
    out->status = rc == 0 ? (int)resp.status : 0;
    if (rc < 0) {
        outcome_fail_err(out, &err);
        /* A redirect loop is a network error, but trying again only walks the loop again. */
        if (rc == BR_ENETWORK && resp.redirects >= HTTP_MAX_REDIRECTS) {
            json_object_set_new(out->error, "retryable", json_false());
            out->no_retry = true;
        }
    } else {
        *body = body_value(&resp);
        json_t *result = json_object();
        json_object_set_new(result, "status", json_integer(resp.status));
        json_object_set(result, "headers", resp.headers);
        json_object_set(result, "body", *body);
        out->result = result;
        out->success = resp.status >= 200 && resp.status < 300;
        if (!out->success) {
            char msg[96];
            snprintf(msg, sizeof msg, "the upstream answered %ld", resp.status);
            outcome_fail(out, "http_status", msg, NULL);
            json_object_set_new(out->error, "status", json_integer(resp.status));
            json_object_set_new(out->error, "retryable",
                                json_boolean(resp.status >= 500 || resp.status == 429));
        }
    }
    http_response_deinit(&resp);
    err_clear(&err);
    scrub_outcome(ctx, out);
    if (ctx->scrub && out->result) { /* the body vars get is the scrubbed one */
        json_decref(*body);
        *body = json_incref(json_object_get(out->result, "body"));
    }
    /* POST and PATCH are not idempotent: retried only when the task asked for retries. */
    if (!t->retry_explicit && (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PATCH") == 0))
        out->no_retry = true;
}

/* Open connection ID into OC and put its values into CTX's scrub set. */
static int open_connection(run_ctx_t *ctx, const char *id, opened_connection_t *oc, err_t *err)
{
    int rc = connection_open(ctx->eng, id, oc, err);
    if (rc < 0)
        return rc;
    const char *k;
    json_t *v;
    json_object_foreach(oc->secret, k, v)
    {
        if (!ctx->scrub)
            ctx->scrub = scrub_new();
        scrub_add(ctx->scrub, (const unsigned char *)json_string_value(v), json_string_length(v));
    }
    return 0;
}

/* Basic credentials are also sent as base64 of "user:password": scrub that whole form too. */
static void scrub_basic(run_ctx_t *ctx, const request_t *r)
{
    if (!r->username || !ctx->scrub)
        return;
    size_t n = strlen(r->username) + strlen(r->password ? r->password : "") + 2;
    char *pair = xmalloc(n);
    snprintf(pair, n, "%s:%s", r->username, r->password ? r->password : "");
    scrub_add(ctx->scrub, (const unsigned char *)pair, strlen(pair));
    wipe_free(pair);
}

static void set_status_vars(run_ctx_t *ctx, const char *status_var, const char *ok_var,
                            const outcome_t *o)
{
    json_object_set_new(ctx->vars, status_var, json_integer(o->status));
    json_object_set_new(ctx->vars, ok_var, json_boolean(o->status >= 200 && o->status < 300));
}

/* ---- http ----------------------------------------------------------------------------------- */

void task_http_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                    outcome_t *out)
{
    const http_task_t *h = &t->u.http;
    opened_connection_t oc = {0};
    request_t r = {.method = h->method,
                   .headers = json_object(),
                   .timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS,
                   .max_response_bytes = (size_t)h->max_response_bytes,
                   .follow_redirects = h->follow_redirects};
    json_t *url = NULL, *query = NULL, *headers = NULL, *body = NULL, *resp_body = NULL;
    err_t err = {0};
    out->status = 0;

    if (h->connection && open_connection(ctx, h->connection, &oc, &err) < 0)
        goto fail;
    tmpl_scope_t scope;
    run_scope(ctx, NULL, NULL, &scope);
    scope.conn = oc.conn;
    scope.secret = oc.secret;
    if (!render(h->url, &scope, &url, &err) || !render(h->query, &scope, &query, &err) ||
        !render(h->headers, &scope, &headers, &err) || !render(h->body, &scope, &body, &err))
        goto fail;
    if (!json_is_string(url)) {
        err_set(&err, BR_EEXPRESSION_ERROR, "url must render to text, not %s",
                jsonx_type_name(url));
        goto fail;
    }
    if (query && !json_is_object(query)) {
        err_set(&err, BR_EEXPRESSION_ERROR, "query must render to an object");
        goto fail;
    }
    if (!(r.url = http_url_with_query(json_string_value(url), query, &err)) ||
        add_headers(&r, headers, &err) < 0 || add_auth(&r, &h->auth, &scope, &err) < 0)
        goto fail;
    set_body(&r, body);
    scrub_basic(ctx, &r);
    send_request(ctx, t, seq, attempt_deadline, &r, out, &resp_body);
    jsonx_set_dotted(ctx->vars, h->response_var, resp_body);
    set_status_vars(ctx, "httpStatus", "httpOk", out);
    goto done;
fail:
    fail_task(ctx, out, &err);
    jsonx_set_dotted(ctx->vars, h->response_var, json_null());
    set_status_vars(ctx, "httpStatus", "httpOk", out);
done:
    err_clear(&err);
    vault_wipe_json_decref(url);
    vault_wipe_json_decref(query);
    vault_wipe_json_decref(headers);
    vault_wipe_json_decref(body);
    request_deinit(&r);
    connection_close(&oc);
}

/* ---- connector ------------------------------------------------------------------------------ */

/* base_url + path, without doubling or losing the slash between them. */
static char *join_url(const json_t *base, const json_t *path)
{
    const char *b = json_string_value(base), *p = path ? json_string_value(path) : "";
    size_t bl = strlen(b);
    while (bl > 0 && b[bl - 1] == '/' && *p == '/')
        bl--;
    bool slash = bl > 0 && b[bl - 1] != '/' && *p && *p != '/' && *p != '?';
    size_t n = bl + strlen(p) + 2;
    char *u = xmalloc(n);
    snprintf(u, n, "%.*s%s%s", (int)bl, b, slash ? "/" : "", p);
    return u;
}

void task_connector_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                         outcome_t *out)
{
    const connector_task_t *ct = &t->u.connector;
    const connector_t *con = NULL;
    const connector_op_t *op = NULL;
    opened_connection_t oc = {0};
    request_t r = {.headers = json_object(),
                   .timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS,
                   .max_response_bytes = HTTP_DEFAULT_MAX_RESPONSE,
                   .follow_redirects = true};
    json_t *input = NULL, *bound = NULL, *base = NULL, *path = NULL, *query = NULL,
           *headers = NULL, *body = NULL, *resp_body = NULL;
    char *url = NULL;
    err_t err = {0};
    out->status = 0;

    if (connectors_get(ctx->eng, ct->connector, ct->version, &con, &err) < 0)
        goto fail;
    if (!(op = connector_operation(con, ct->operation))) {
        err_set(&err, BR_ENOT_FOUND, "connector '%s' v%d has no operation '%s'", ct->connector,
                ct->version, ct->operation);
        goto fail;
    }
    tmpl_scope_t scope;
    run_scope(ctx, NULL, NULL, &scope);
    if (!render(ct->input, &scope, &input, &err))
        goto fail;
    if (!(bound = connector_bind_input(op, input, &err)))
        goto fail;
    if (open_connection(ctx, ct->connection, &oc, &err) < 0)
        goto fail;
    if (strcmp(oc.connector, ct->connector) != 0) {
        err_set(&err, BR_ECONNECTION_NOT_FOUND, "connection '%s' belongs to connector '%s', not '%s'",
                ct->connection, oc.connector, ct->connector);
        goto fail;
    }
    tmpl_scope_t op_scope = {.input = bound, .conn = oc.conn, .secret = oc.secret};
    if (!render(con->base_url, &op_scope, &base, &err) || !render(op->path, &op_scope, &path, &err) ||
        !render(op->query, &op_scope, &query, &err) ||
        !render(op->headers, &op_scope, &headers, &err) ||
        !render(op->body, &op_scope, &body, &err))
        goto fail;
    if (!json_is_string(base) || (path && !json_is_string(path))) {
        err_set(&err, BR_EEXPRESSION_ERROR, "base_url and path must render to text");
        goto fail;
    }
    if (query && !json_is_object(query)) {
        err_set(&err, BR_EEXPRESSION_ERROR, "query must render to an object");
        goto fail;
    }
    url = join_url(base, path);
    r.method = op->method;
    if (!(r.url = http_url_with_query(url, query, &err)) || add_headers(&r, headers, &err) < 0 ||
        add_auth(&r, &con->auth, &op_scope, &err) < 0)
        goto fail;
    set_body(&r, body);
    scrub_basic(ctx, &r);
    send_request(ctx, t, seq, attempt_deadline, &r, out, &resp_body);
    set_status_vars(ctx, "integrationStatus", "integrationOk", out);
    if (out->result) {
        engine_map_outputs(ctx->vars, op->outputs, op->n_outputs, out->result);
        engine_map_outputs(ctx->vars, ct->outputs, ct->n_outputs, out->result);
    }
    json_decref(resp_body);
    goto done;
fail:
    fail_task(ctx, out, &err);
    set_status_vars(ctx, "integrationStatus", "integrationOk", out);
done:
    err_clear(&err);
    wipe_free(url);
    json_decref(input);
    vault_wipe_json_decref(bound);
    vault_wipe_json_decref(base);
    vault_wipe_json_decref(path);
    vault_wipe_json_decref(query);
    vault_wipe_json_decref(headers);
    vault_wipe_json_decref(body);
    request_deinit(&r);
    connection_close(&oc);
}
