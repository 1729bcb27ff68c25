/* records.c - run, step, integration-version, token and connection records: life cycle,
 * status names, and the JSON shapes the API shows (SPEC §8, §9). Backend-neutral: no storage
 * code here.
 *
 * Invariant: a record owns its strings; its JSON values are references it holds (never
 * modified in place, so copies may share them).
 */
#include "store/store_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    [RUN_SCHEDULED] = "scheduled", [RUN_QUEUED] = "queued", [RUN_RUNNING] = "running",
    [RUN_SUCCEEDED] = "succeeded", [RUN_FAILED] = "failed", [RUN_CANCELLED] = "cancelled",
};

_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == RUN_CANCELLED + 1,
               "status names and run_status_t out of step");

/* The stable name of status S ("queued"), or "unknown" for a value outside the enum. */
const char *run_status_name(run_status_t s)
{
    if ((int)s < 0 || (int)s > RUN_CANCELLED)
        return "unknown";
    return status_names[s];
}

/* Parse a status NAME into *OUT: 0, or -1 when NAME is not a status. */
int run_status_parse(const char *name, run_status_t *out)
{
    if (!name)
        return -1;
    for (int i = 0; i <= RUN_CANCELLED; i++) {
        if (strcmp(status_names[i], name) == 0) {
            *out = (run_status_t)i;
            return 0;
        }
    }
    return -1;
}

/* A zeroed run record with the root defaults (parent_step -1, attempt 1). Returned owned
 * (free with run_rec_free). */
run_rec_t *run_rec_new(void)
{
    run_rec_t *r = XNEW(run_rec_t);
    r->parent_step = -1;
    r->attempt = 1;
    return r;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static json_t *ref_or_null(json_t *v)
{
    return v ? json_incref(v) : NULL;
}

/* A copy of R: strings duplicated, JSON values referenced (shared, so neither side may modify
 * them). Returned owned. Any thread. */
run_rec_t *run_rec_copy(const run_rec_t *r)
{
    run_rec_t *c = xmalloc(sizeof *c);
    *c = *r;
    c->integration = dup_or_null(r->integration);
    c->trigger = dup_or_null(r->trigger);
    c->task = dup_or_null(r->task);
    c->idempotency_key = dup_or_null(r->idempotency_key);
    c->trigger_info = ref_or_null(r->trigger_info);
    c->input = ref_or_null(r->input);
    c->output = ref_or_null(r->output);
    c->error = ref_or_null(r->error);
    c->steps = (buf_t)BUF_INIT;
    if (r->steps.len)
        buf_append(&c->steps, r->steps.data, r->steps.len);
    return c;
}

/* Free R and release its JSON references. NULL-safe. */
void run_rec_free(run_rec_t *r)
{
    if (!r)
        return;
    free(r->integration);
    free(r->trigger);
    free(r->task);
    free(r->idempotency_key);
    json_decref(r->trigger_info);
    json_decref(r->input);
    json_decref(r->output);
    json_decref(r->error);
    buf_deinit(&r->steps);
    free(r);
}

/* Free N records and the array holding them. NULL-safe. */
void run_recs_free(run_rec_t **runs, int n)
{
    if (!runs)
        return;
    for (int i = 0; i < n; i++)
        run_rec_free(runs[i]);
    free(runs);
}

/* A copy of S (strings duplicated, JSON referenced). Returned owned. Any thread. */
step_rec_t *step_rec_copy(const step_rec_t *s)
{
    step_rec_t *c = xmalloc(sizeof *c);
    *c = *s;
    c->task_id = dup_or_null(s->task_id);
    c->type = dup_or_null(s->type);
    c->status = dup_or_null(s->status);
    c->result = ref_or_null(s->result);
    c->error = ref_or_null(s->error);
    return c;
}

/* Free S and release its JSON references. NULL-safe. */
void step_rec_free(step_rec_t *s)
{
    if (!s)
        return;
    free(s->task_id);
    free(s->type);
    free(s->status);
    json_decref(s->result);
    json_decref(s->error);
    free(s);
}

/* ---- steps held in their run's row ---------------------------------------------------------- */

/* Numbers of a held step go through a small buffer and reach the record's text in one
 * append: a short child holds one or two steps, and this runs once per step. */
typedef struct nums {
    char text[192];
    size_t len;
} nums_t;

/* KEY (a string literal: its length is known), then V. */
#define NUMS_PUT(n, key, v) nums_put(n, key, sizeof key - 1, v)

static void nums_put(nums_t *n, const char *key, size_t key_len, long long v)
{
    memcpy(n->text + n->len, key, key_len);
    n->len += key_len;
    n->len += jsonx_format_int(v, n->text + n->len); /* at most 20 digits and a sign */
}

static void put_str_member(buf_t *b, const char *key, size_t key_len, const char *v)
{
    buf_append(b, key, key_len);
    if (v)
        jsonx_put_string(b, v, strlen(v));
    else
        buf_append(b, "null", 4);
}
#define PUT_STR_MEMBER(b, key, v) put_str_member(b, key, sizeof key - 1, v)

/* R->steps is a JSON array of objects named like the steps table's columns (result and error
 * left out when absent), appended to in place: its closing bracket goes and comes back. */
void store_run_hold_step(run_rec_t *r, const step_rec_t *s)
{
    buf_t *b = &r->steps;
    if (b->len)
        b->len--;
    else
        buf_reserve(b, 240); /* most runs hold one or two small steps: one allocation */
    nums_t n = {.len = 0};
    n.text[n.len++] = b->len ? ',' : '[';
    NUMS_PUT(&n, "{\"attempt\":", s->attempt);
    NUMS_PUT(&n, ",\"seq\":", s->seq);
    buf_append(b, n.text, n.len);
    PUT_STR_MEMBER(b, ",\"task_id\":", s->task_id);
    PUT_STR_MEMBER(b, ",\"type\":", s->type);
    PUT_STR_MEMBER(b, ",\"status\":", s->status);
    n.len = 0;
    NUMS_PUT(&n, ",\"task_attempt\":", s->task_attempt);
    NUMS_PUT(&n, ",\"started_at\":", s->started_at);
    NUMS_PUT(&n, ",\"duration_ms\":", s->duration_ms);
    buf_append(b, n.text, n.len);
    if (s->result) {
        buf_append(b, ",\"result\":", 10);
        jsonx_dump_buf(b, s->result);
    }
    if (s->error) {
        buf_append(b, ",\"error\":", 9);
        jsonx_dump_buf(b, s->error);
    }
    buf_append(b, "}]", 2);
}

static char *member_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? xstrdup(v) : NULL;
}

static json_t *member_value(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v ? json_incref(v) : NULL;
}

/* See store_internal.h. */
void step_vec_push(step_rec_t ***v, int *n, int *cap, step_rec_t *s)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = xrealloc(*v, (size_t)*cap * sizeof **v);
    }
    (*v)[(*n)++] = s;
}

/* See store_internal.h. */
int store_held_steps_parse(const char *run_id, const char *text, size_t len, int attempt,
                           step_rec_t ***v, int *n, int *cap, err_t *err)
{
    json_error_t je;
    json_t *a = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!json_is_array(a)) {
        json_decref(a);
        return err_set(err, BR_ESTORE, "the steps kept in run %s's record are damaged: %s", run_id,
                       a ? "not an array" : je.text);
    }
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o)
    {
        if (json_integer_value(json_object_get(o, "attempt")) != attempt)
            continue;
        step_rec_t *s = XNEW(step_rec_t);
        snprintf(s->run_id, sizeof s->run_id, "%s", run_id);
        s->attempt = attempt;
        s->seq = (int)json_integer_value(json_object_get(o, "seq"));
        s->task_id = member_str(o, "task_id");
        s->type = member_str(o, "type");
        s->status = member_str(o, "status");
        s->task_attempt = (int)json_integer_value(json_object_get(o, "task_attempt"));
        s->started_at = json_integer_value(json_object_get(o, "started_at"));
        s->duration_ms = json_integer_value(json_object_get(o, "duration_ms"));
        s->result = member_value(o, "result");
        s->error = member_value(o, "error");
        step_vec_push(v, n, cap, s);
    }
    json_decref(a);
    return 0;
}

/* Free V. NULL-safe. */
void integration_version_free(integration_version_t *v)
{
    if (!v)
        return;
    free(v->name);
    free(v->doc);
    free(v);
}

/* {"code", "message", "retryable"}: the ERROR objects the store writes on its own. */
json_t *store_error_json(const char *code, const char *message, bool retryable)
{
    return json_pack("{s:s, s:s, s:b}", "code", code, "message", message, "retryable", retryable);
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *value_or_null(json_t *v)
{
    return v ? json_incref(v) : json_null();
}

/* The run as the API shows it (SPEC §8): times in RFC 3339 UTC with milliseconds (null when
 * unset), parent_id and task null for a root, trigger_info only when known, duration_ms once
 * started and finished. Returned owned; its nested values are shared with R (do not modify
 * them). Any thread. */
json_t *run_rec_to_json(const run_rec_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "integration", string_or_null(r->integration));
    json_object_set_new(o, "version", json_integer(r->version));
    json_object_set_new(o, "status", json_string(run_status_name(r->status)));
    json_object_set_new(o, "trigger", string_or_null(r->trigger));
    if (r->trigger_info)
        json_object_set(o, "trigger_info", r->trigger_info);
    json_object_set_new(o, "parent_id", r->parent_id[0] ? json_string(r->parent_id) : json_null());
    json_object_set_new(o, "root_id", json_string(r->root_id[0] ? r->root_id : r->id));
    json_object_set_new(o, "depth", json_integer(r->depth));
    json_object_set_new(o, "task", string_or_null(r->task));
    json_object_set_new(o, "input", run_input_context(r->integration, r->input));
    json_object_set_new(o, "output", value_or_null(r->output));
    json_object_set_new(o, "error", value_or_null(r->error));
    json_object_set_new(o, "created_at", jsonx_time(r->created_at));
    json_object_set_new(o, "scheduled_at", jsonx_time(r->scheduled_at));
    json_object_set_new(o, "started_at", jsonx_time(r->started_at));
    json_object_set_new(o, "finished_at", jsonx_time(r->finished_at));
    json_object_set_new(o, "attempt", json_integer(r->attempt));
    if (r->started_at > 0 && r->finished_at > 0)
        json_object_set_new(o, "duration_ms", json_integer(r->finished_at - r->started_at));
    return o;
}

/* ---- the record as JSON text ------------------------------------------------------------------ */

/* ,"KEY": (KEY a string literal) */
#define PUT_KEY(b, key) buf_append(b, "," key ":", sizeof key + 1)

static void put_str_or_null(buf_t *b, const char *s)
{
    if (s)
        jsonx_put_string(b, s, strlen(s));
    else
        buf_append(b, "null", 4);
}

static void put_value_or_null(buf_t *b, const json_t *v)
{
    if (v)
        jsonx_dump_buf(b, v);
    else
        buf_append(b, "null", 4);
}

static void put_int(buf_t *b, long long v)
{
    char n[24];
    buf_append(b, n, jsonx_format_int(v, n));
}

static void put_time(buf_t *b, int64_t ms)
{
    if (ms <= 0) {
        buf_append(b, "null", 4);
        return;
    }
    char t[40];
    clock_format_rfc3339(ms, t, sizeof t);
    jsonx_put_string(b, t, strlen(t));
}

/* What dumping run_input_context(INTEGRATION, STORED) writes: STORED's members in their order,
 * then the defaults it lacks, in run_input_context's order. */
static void put_input_context(buf_t *b, const char *integration, const json_t *stored)
{
    const json_t *in = json_is_object(stored) ? stored : NULL;
    size_t n = 0;
    buf_append(b, "{", 1);
    for (void *it = in ? json_object_iter((json_t *)in) : NULL; it;
         it = json_object_iter_next((json_t *)in, it)) {
        if (n++)
            buf_append(b, ",", 1);
        jsonx_put_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
        buf_append(b, ":", 1);
        jsonx_dump_buf(b, json_object_iter_value(it));
    }
    const json_t *path = in ? json_object_get(in, "path") : NULL;
    static const char *const defaults[][2] = {
        {"payload", "{}"}, {"params", "{}"}, {"path", NULL},
        {"headers", "{}"}, {"method", "\"POST\""}, {"fullpath", NULL},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        const char *key = defaults[i][0];
        if (in && json_object_get(in, key))
            continue;
        if (n++)
            buf_append(b, ",", 1);
        buf_append(b, "\"", 1);
        buf_puts(b, key);
        buf_append(b, "\":", 2);
        if (defaults[i][1]) {
            buf_puts(b, defaults[i][1]);
        } else if (path) { /* fullpath: the stored path */
            jsonx_dump_buf(b, path);
        } else { /* the default path, and fullpath after it */
            char *p = xasprintf("/integrations/execute/%s", integration ? integration : "");
            jsonx_put_string(b, p, strlen(p));
            free(p);
        }
    }
    buf_append(b, "}", 1);
}

/* See store.h. Members in run_rec_to_json's order: a test holds the two to the same bytes. */
void run_rec_dump(buf_t *b, const run_rec_t *r)
{
    buf_append(b, "{\"id\":", 6);
    jsonx_put_string(b, r->id, strlen(r->id));
    PUT_KEY(b, "\"integration\"");
    put_str_or_null(b, r->integration);
    PUT_KEY(b, "\"version\"");
    put_int(b, r->version);
    PUT_KEY(b, "\"status\"");
    put_str_or_null(b, run_status_name(r->status));
    PUT_KEY(b, "\"trigger\"");
    put_str_or_null(b, r->trigger);
    if (r->trigger_info) {
        PUT_KEY(b, "\"trigger_info\"");
        jsonx_dump_buf(b, r->trigger_info);
    }
    PUT_KEY(b, "\"parent_id\"");
    put_str_or_null(b, r->parent_id[0] ? r->parent_id : NULL);
    PUT_KEY(b, "\"root_id\"");
    put_str_or_null(b, r->root_id[0] ? r->root_id : r->id);
    PUT_KEY(b, "\"depth\"");
    put_int(b, r->depth);
    PUT_KEY(b, "\"task\"");
    put_str_or_null(b, r->task);
    PUT_KEY(b, "\"input\"");
    put_input_context(b, r->integration, r->input);
    PUT_KEY(b, "\"output\"");
    put_value_or_null(b, r->output);
    PUT_KEY(b, "\"error\"");
    put_value_or_null(b, r->error);
    const struct {
        const char *member;
        int64_t ms;
    } times[] = {{",\"created_at\":", r->created_at},
                 {",\"scheduled_at\":", r->scheduled_at},
                 {",\"started_at\":", r->started_at},
                 {",\"finished_at\":", r->finished_at}};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        buf_puts(b, times[i].member);
        put_time(b, times[i].ms);
    }
    PUT_KEY(b, "\"attempt\"");
    put_int(b, r->attempt);
    if (r->started_at > 0 && r->finished_at > 0) {
        PUT_KEY(b, "\"duration_ms\"");
        put_int(b, r->finished_at - r->started_at);
    }
    buf_append(b, "}", 1);
}

/* The step as the API shows it: task, type, status, attempt (the task's attempts),
 * started_at, duration_ms, result, error, and child_run_ids when CHILD_RUN_IDS (borrowed, may
 * be NULL) is a non-empty array. Returned owned; nested values are shared with S. */
json_t *step_rec_to_json(const step_rec_t *s, json_t *child_run_ids)
{
    json_t *o = json_object();
    json_object_set_new(o, "task", string_or_null(s->task_id));
    json_object_set_new(o, "type", string_or_null(s->type));
    json_object_set_new(o, "status", string_or_null(s->status));
    json_object_set_new(o, "attempt", json_integer(s->task_attempt));
    json_object_set_new(o, "started_at", jsonx_time(s->started_at));
    json_object_set_new(o, "duration_ms", json_integer(s->duration_ms));
    json_object_set_new(o, "result", value_or_null(s->result));
    json_object_set_new(o, "error", value_or_null(s->error));
    if (child_run_ids && json_array_size(child_run_ids) > 0)
        json_object_set(o, "child_run_ids", child_run_ids);
    return o;
}

/* The whole input context from its stored, non-default members. See store.h. */
json_t *run_input_context(const char *integration, const json_t *stored)
{
    json_t *in = json_object();
    if (json_is_object(stored))
        json_object_update(in, (json_t *)stored);
    if (!json_object_get(in, "payload"))
        json_object_set_new(in, "payload", json_object());
    if (!json_object_get(in, "params"))
        json_object_set_new(in, "params", json_object());
    json_t *path = json_object_get(in, "path");
    if (!path) {
        char *p = xasprintf("/integrations/execute/%s", integration ? integration : "");
        path = json_string(p);
        free(p);
        json_object_set_new(in, "path", path);
    }
    if (!json_object_get(in, "headers"))
        json_object_set_new(in, "headers", json_object());
    if (!json_object_get(in, "method"))
        json_object_set_new(in, "method", json_string("POST"));
    if (!json_object_get(in, "fullpath"))
        json_object_set(in, "fullpath", path);
    return in;
}

/* Free T. NULL-safe. The hash is not the secret, but zeroing it costs nothing and keeps it out
 * of freed memory. */
void token_rec_free(token_rec_t *t)
{
    if (!t)
        return;
    free(t->role);
    json_decref(t->scopes);
    free(t->description);
    memset(t->hash, 0, sizeof t->hash);
    free(t);
}

/* The token as the API lists it: {id, role, scopes, description, created_at, revoked_at},
 * times in RFC 3339 (revoked_at null while active), never the hash. Returned owned; scopes is
 * a copy. Any thread. */
json_t *token_rec_to_json(const token_rec_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "role", string_or_null(t->role));
    json_object_set_new(o, "scopes", t->scopes ? jsonx_copy(t->scopes) : json_array());
    json_object_set_new(o, "description", string_or_null(t->description));
    json_object_set_new(o, "created_at", jsonx_time(t->created_at));
    json_object_set_new(o, "revoked_at", jsonx_time(t->revoked_at));
    return o;
}

/* A zeroed connection record (all fields NULL or 0). Returned owned (connection_rec_free). */
connection_rec_t *connection_rec_new(void)
{
    return XNEW(connection_rec_t);
}

/* Free C and release its JSON references. Its secrets are sealed text, not values, so
 * nothing needs wiping. NULL-safe. */
void connection_rec_free(connection_rec_t *c)
{
    if (!c)
        return;
    free(c->id);
    free(c->connector);
    json_decref(c->config);
    json_decref(c->secrets);
    free(c);
}

/* Free N records and the array holding them. NULL-safe. */
void connection_recs_free(connection_rec_t **recs, int n)
{
    if (!recs)
        return;
    for (int i = 0; i < n; i++)
        connection_rec_free(recs[i]);
    free(recs);
}
