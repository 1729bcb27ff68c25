/* http.c - request plumbing over libmicrohttpd: replies (JSON, text, every error answer),
 * query parameters, the JSON body, headers, suspending and resuming a connection.
 * Handlers never call libmicrohttpd themselves; they set req->response through these helpers
 * and the request loop (server.c) queues it.
 */
#include "server/server_internal.h"

#include "core/jsonx.h"
#include "core/metrics.h"
#include "core/xalloc.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Status of an engine or store error code. Pure; any thread. */
int http_status_for(int code)
{
    switch (code) {
    case BR_EINPUT_INVALID:
    case BR_EUSAGE: return 400;
    case BR_EFORBIDDEN: return 403;
    case BR_ENOT_FOUND:
    case BR_EVERSION_NOT_FOUND:
    case BR_ECONNECTION_NOT_FOUND:
    case BR_EARCHIVED: return 404;
    case BR_ECONFLICT: return 409;
    case BR_EINVALID_DEFINITION: return 422;
    case BR_ELIMIT: return 413;
    case BR_ECONCURRENCY_LIMIT:
    case BR_EDESCENDANT_LIMIT:
    case BR_ECALL_DEPTH_EXCEEDED: return 429;
    default: return 500;
    }
}

static void free_cb(void *p)
{
    free(p);
}

static struct MHD_Response *response_from_buf(buf_t *b, const char *content_type)
{
    size_t len = b->len;
    char *data = buf_steal(b);
    if (!data)
        data = xstrdup("");
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, data, free_cb);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return r;
}

/* See server_internal.h. */
struct MHD_Response *http_json_text_response(buf_t *text)
{
    buf_putc(text, '\n');
    return response_from_buf(text, "application/json");
}

/* A JSON response (V borrowed) with one optional extra header. Any thread. */
struct MHD_Response *http_json_response(const json_t *v, const char *header, const char *value)
{
    buf_t b = BUF_INIT;
    jsonx_dump_buf(&b, v);
    buf_putc(&b, '\n');
    struct MHD_Response *r = response_from_buf(&b, "application/json");
    if (header && value)
        MHD_add_response_header(r, header, value);
    return r;
}

static void set_response(request_t *req, int status, struct MHD_Response *r)
{
    if (req->response) /* the first answer wins; a second one is a bug, but harmless */
        MHD_destroy_response(req->response);
    req->response = r;
    req->status = status;
}

void http_reply_json(request_t *req, int status, const json_t *v, const char *header,
                     const char *value)
{
    set_response(req, status, http_json_response(v, header, value));
}

void http_reply_text(request_t *req, int status, const char *content_type, const char *text,
                     size_t len)
{
    buf_t b = BUF_INIT;
    buf_append(&b, text, len);
    set_response(req, status, response_from_buf(&b, content_type));
}

void http_reply_empty(request_t *req, int status)
{
    set_response(req, status,
                 MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
}

void http_add_header(request_t *req, const char *name, const char *value)
{
    if (req->response)
        MHD_add_response_header(req->response, name, value);
}

/* The one function that writes error answers, and counts them by code. DETAIL taken. */
/* {"error": {"code", "message", "detail"?}} (returned owned), counted by code: the one shape
 * every error answer has. DETAIL is taken; texts may quote input, so they are made valid UTF-8. */
static json_t *error_doc(const char *code, const char *msg, json_t *detail)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", jsonx_string_lossy(code));
    json_object_set_new(e, "message", jsonx_string_lossy(msg));
    if (detail)
        json_object_set_new(e, "detail", detail);
    metrics_http_error(code);
    return json_pack("{s:o}", "error", e);
}

/* The public code of ERR: an archived integration is simply not found. */
static const char *public_code(const err_t *err)
{
    return err->code == BR_EARCHIVED ? "not_found" : err_name(err->code);
}

void http_reply_error(request_t *req, int status, const char *code, json_t *detail,
                      const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *doc = error_doc(code, msg, detail);
    http_reply_json(req, status, doc, NULL, NULL);
    json_decref(doc);
}

void http_reply_err(request_t *req, const err_t *err)
{
    const char *code = public_code(err);
    http_reply_error(req, http_status_for(err->code), code,
                     err->detail ? json_incref(err->detail) : NULL, "%s",
                     err->msg[0] ? err->msg : code);
}

void http_reply_result(request_t *req, int rc, json_t *doc, err_t *err)
{
    if (rc < 0)
        http_reply_err(req, err);
    else
        http_reply_json(req, 200, doc, NULL, NULL);
    json_decref(doc);
    err_clear(err);
}

void http_reply_listing(request_t *req, int rc, const char *key, json_t *list, err_t *err)
{
    http_reply_result(req, rc, rc < 0 ? list : json_pack("{s:o}", key, list), err);
}

/* The error answer for ERR as a response, for threads without a request; counts it. */
struct MHD_Response *http_error_response(const err_t *err, int *status)
{
    *status = http_status_for(err->code);
    const char *code = public_code(err);
    json_t *doc = error_doc(code, err->msg[0] ? err->msg : code,
                            err->detail ? json_incref(err->detail) : NULL);
    struct MHD_Response *r = http_json_response(doc, NULL, NULL);
    json_decref(doc);
    return r;
}

/* Percent-decode S (libmicrohttpd has already turned '+' into ' '); owned. Bad escapes are
 * kept as they are. */
static char *decode(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = router_hexval(s[i + 1])) >= 0 &&
            (lo = router_hexval(s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

typedef struct find_ctx {
    const char *key;
    char *value;
} find_ctx_t;

static enum MHD_Result find_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    find_ctx_t *f = cls;
    char *k = decode(key);
    bool hit = strcmp(k, f->key) == 0;
    free(k);
    if (hit && !f->value)
        f->value = decode(value ? value : "");
    return MHD_YES;
}

char *http_query(request_t *req, const char *key)
{
    find_ctx_t f = {key, NULL};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, find_arg, &f);
    return f.value;
}

int http_query_long_or_reply(request_t *req, const char *key, long long min, long long max,
                             long long def, long long *out)
{
    char *v = http_query(req, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    bool ok = end != v && *end == '\0' && n >= min && n <= max;
    if (!ok)
        http_reply_error(req, 400, "input_invalid", NULL,
                         "query parameter '%s' must be a whole number from %lld to %lld", key,
                         min, max);
    free(v);
    *out = n;
    return ok ? 0 : -1;
}

json_t *http_body_json_or_reply(request_t *req)
{
    jsonx_limits_t lim = {req->srv->cfg.max_body, JSONX_DEFAULT_DEPTH, false};
    err_t err = {0};
    json_t *v = jsonx_parse(req->body.data ? req->body.data : "", req->body.len, &lim, &err);
    if (!v)
        http_reply_err(req, &err);
    err_clear(&err);
    return v;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    json_t *obj = cls;
    char *k = xstrdup(key);
    for (char *p = k; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (strcmp(k, "authorization") != 0 && strcmp(k, "cookie") != 0)
        json_object_set_new(obj, k, json_string(value ? value : ""));
    free(k);
    return MHD_YES;
}

json_t *http_headers(request_t *req)
{
    json_t *obj = json_object();
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, add_header, obj);
    return obj;
}

typedef struct params_ctx {
    json_t *obj;
    buf_t *text;
} params_ctx_t;

static enum MHD_Result add_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    params_ctx_t *p = cls;
    char *k = decode(key);
    char *v = decode(value ? value : "");
    if (!json_object_get(p->obj, k))
        json_object_set_new(p->obj, k, json_string(v));
    if (p->text) {
        buf_putc(p->text, p->text->len ? '&' : '?');
        buf_puts(p->text, key);
        if (value) {
            buf_putc(p->text, '=');
            buf_puts(p->text, value);
        }
    }
    free(k);
    free(v);
    return MHD_YES;
}

json_t *http_params(request_t *req, buf_t *query_text)
{
    params_ctx_t p = {json_object(), query_text};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_param, &p);
    return p.obj;
}

const char *http_header(request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* Suspend REQ's connection: the request loop will not call back until http_resume_with. Call
 * from the handler (a libmicrohttpd thread). */
void http_suspend(request_t *req)
{
    req->suspended = true;
    MHD_suspend_connection(req->conn);
}

/* Give the suspended REQ its answer and resume it; RESP taken. Any thread, once per request. */
void http_resume_with(request_t *req, int status, struct MHD_Response *resp)
{
    req->response = resp;
    req->status = status;
    MHD_resume_connection(req->conn);
}
