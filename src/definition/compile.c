/* compile.c - from a document to a definition_t: the top-level fields, what every task
 * shares, and the entry points (load, compile, free, lookup).
 *
 * One walk validates and builds together (see internal.h). Task ids are collected first so
 * that `next` and `cases` can name tasks that come later; a definition is returned only
 * when the walk found nothing wrong, and is immutable from then on.
 */
#include "definition/internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [TASK_CALL_INTEGRATION] = "call_integration",
    [TASK_HTTP] = "http",
    [TASK_CONNECTOR] = "connector",
    [TASK_SCRIPT] = "script",
    [TASK_SET] = "set",
    [TASK_SWITCH] = "switch",
    [TASK_AWAIT] = "await",
    [TASK_FAIL] = "fail",
};

_Static_assert(sizeof type_names / sizeof type_names[0] == TASK_FAIL + 1,
               "task type names and task_type_t out of step");

/* The document name of task type T ("call_integration"); "unknown" outside the enum. Any
 * thread. */
const char *task_type_name(task_type_t t)
{
    if ((int)t < 0 || (int)t > TASK_FAIL)
        return "unknown";
    return type_names[t];
}

/* Members of a task of each type, beyond those all tasks share. */
static const char *const call_fields[] = {
    "id",       "type",       "next",        "cases",           "continue_on_error",
    "retry",    "timeout_ms", "integration", "trigger",         "version",
    "strategy", "delay_ms",   "input",       "payload",         "extended_payload",
    "output",   "for_each",   "parallelism", "idempotency_key", "detached",
    NULL};
static const char *const set_fields[] = {
    "id", "type", "next", "cases", "continue_on_error", "retry", "timeout_ms", "values", NULL};
static const char *const switch_fields[] = {
    "id",    "type",       "next",  "cases",   "continue_on_error",
    "retry", "timeout_ms", "value", "default", NULL};
static const char *const await_fields[] = {
    "id",    "type",       "next", "cases", "continue_on_error",
    "retry", "timeout_ms", "runs", "mode",  "tolerate_failures",
    NULL};
static const char *const script_fields[] = {
    "id", "type", "next", "cases", "continue_on_error", "retry", "timeout_ms", "lang", "source",
    NULL};
static const char *const http_fields[] = {"id",
                                          "type",
                                          "next",
                                          "cases",
                                          "continue_on_error",
                                          "retry",
                                          "timeout_ms",
                                          "url",
                                          "method",
                                          "query",
                                          "headers",
                                          "body",
                                          "auth",
                                          "connection",
                                          "max_response_bytes",
                                          "follow_redirects",
                                          "response_var",
                                          NULL};
static const char *const connector_fields[] = {
    "id",         "type",       "next",      "cases",   "continue_on_error",
    "retry",      "timeout_ms", "connector", "version", "operation",
    "connection", "input",      "output",    NULL};
static const char *const fail_fields[] = {
    "id",   "type",    "next",   "cases", "continue_on_error", "retry", "timeout_ms",
    "code", "message", "detail", NULL};

/* ---- freeing --------------------------------------------------------------------------- */

static void free_strings(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_cases(case_target_t *cases, int n)
{
    for (int i = 0; i < n; i++)
        free(cases[i].outcome);
    free(cases);
}

/* Release everything task T owns (T itself is the caller's storage). */
void def_task_deinit(task_t *t)
{
    free(t->id);
    free_cases(t->cases, t->n_cases);
    def_retry_deinit(&t->retry);
    switch (t->type) {
    case TASK_CALL_INTEGRATION: {
        call_task_t *ct = &t->u.call;
        template_free(ct->integration);
        free(ct->literal_target);
        free(ct->trigger);
        template_free(ct->delay_ms);
        template_free(ct->payload);
        json_decref(ct->input_keys);
        def_output_maps_free(ct->outputs, ct->n_outputs);
        template_free(ct->for_each);
        template_free(ct->idempotency_key);
        break;
    }
    case TASK_HTTP: {
        http_task_t *ht = &t->u.http;
        template_free(ht->url);
        free(ht->method);
        template_free(ht->query);
        template_free(ht->headers);
        template_free(ht->body);
        def_auth_deinit(&ht->auth);
        free(ht->connection);
        free(ht->response_var);
        break;
    }
    case TASK_CONNECTOR: {
        connector_task_t *kt = &t->u.connector;
        free(kt->connector);
        free(kt->operation);
        free(kt->connection);
        template_free(kt->input);
        def_output_maps_free(kt->outputs, kt->n_outputs);
        break;
    }
    case TASK_SET:
        for (int i = 0; i < t->u.set.n; i++) {
            free(t->u.set.keys[i]);
            template_free(t->u.set.values[i]);
        }
        free(t->u.set.keys);
        free(t->u.set.values);
        break;
    case TASK_SWITCH:
        template_free(t->u.sw.value);
        free_cases(t->u.sw.cases, t->u.sw.n_cases);
        break;
    case TASK_AWAIT:
        template_free(t->u.await.runs);
        break;
    case TASK_SCRIPT:
        free(t->u.script.source);
        break;
    case TASK_FAIL:
        template_free(t->u.fail.code);
        template_free(t->u.fail.message);
        template_free(t->u.fail.detail);
        break;
    default:
        break;
    }
}

/* Free DEF and everything it owns. NULL-safe. Only once no thread uses DEF any more. */
void definition_free(definition_t *def)
{
    if (!def)
        return;
    free(def->name);
    free_strings(def->triggers, def->n_triggers);
    def_decls_free(def->inputs, def->n_inputs);
    template_free(def->outputs_tmpl);
    free_strings(def->output_vars, def->n_output_vars);
    free_strings(def->callers, def->n_callers);
    for (int i = 0; i < def->n_tasks; i++)
        def_task_deinit(&def->tasks[i]);
    free(def->tasks);
    json_decref(def->doc);
    free(def->canonical);
    free(def);
}

/* ---- top-level fields ------------------------------------------------------------------ */

static void compile_name(vctx_t *c, const json_t *doc, const char *name_hint, definition_t *def)
{
    const char *name = def_get_string(c, doc, "name", true);
    if (!name)
        return;
    c->own_name = name; /* even when invalid: a self-call then is no second problem */
    const char *why = def_integration_name_problem(name);
    if (why) {
        def_problem(c, "name", "invalid name '%s': %s", name, why);
        return;
    }
    if (def_hint_ok(c, "name", name, name_hint, INT_MAX))
        def->name = xstrdup(name);
}

static void compile_triggers(vctx_t *c, const json_t *doc, definition_t *def)
{
    static const char *const fields[] = {"type", "id", NULL};
    const json_t *arr = def_get_array(c, doc, "triggers", false);
    if (!arr)
        return;
    size_t mark = def_ptr_push(c, "triggers");
    def->triggers = xcalloc(json_array_size(arr) + 1, sizeof *def->triggers);
    json_t *seen = json_object();
    size_t i;
    json_t *tr;
    json_array_foreach(arr, i, tr)
    {
        size_t mi = def_ptr_push_index(c, i);
        if (!json_is_object(tr)) {
            def_problem(c, NULL, "must be an object {\"type\": \"api\", \"id\": ...}");
            def_ptr_pop(c, mi);
            continue;
        }
        def_check_fields(c, tr, fields);
        const char *type = def_get_string(c, tr, "type", true);
        if (type && strcmp(type, "api") != 0)
            def_problem(c, "type", "unknown trigger type '%s'; expected \"api\"", type);
        const char *id = def_get_string(c, tr, "id", true);
        if (id && !def_is_trigger_id(id)) {
            def_problem(c, "id", "invalid trigger id '%s': must match ^[a-z0-9][a-z0-9_.-]*$", id);
        } else if (id) {
            if (def_seen(seen, id))
                def_problem(c, "id", "duplicate trigger id '%s'", id);
            else
                def->triggers[def->n_triggers++] = xstrdup(id);
        }
        def_ptr_pop(c, mi);
    }
    json_decref(seen);
    def_ptr_pop(c, mark);
}

/* An output var name (not cut in the message, unlike def_name_ok's). */
static bool output_var_ok(vctx_t *c, const char *s)
{
    if (def_is_identifier(s))
        return true;
    def_problem(c, NULL, "invalid var name '%s': must match ^[A-Za-z_][A-Za-z0-9_]*$", s);
    return false;
}

static void compile_outputs(vctx_t *c, const json_t *doc, definition_t *def)
{
    json_t *v = json_object_get(doc, "outputs");
    if (!v)
        return;
    def->has_outputs = true;
    if (json_is_object(v)) {
        def->outputs_tmpl = def_compile_template(c, "outputs", v);
        return;
    }
    if (!json_is_array(v)) {
        def_problem(c, "outputs", "must be an array of var names or an object of templates");
        return;
    }
    def->output_vars = def_unique_strings(c, "outputs", v, "must be a string", output_var_ok,
                                          "output", &def->n_output_vars);
}

static void compile_callers(vctx_t *c, const json_t *doc, definition_t *def)
{
    const json_t *arr = def_get_array(c, doc, "callers", false);
    if (!arr)
        return;
    size_t mark = def_ptr_push(c, "callers");
    def->callers = xcalloc(json_array_size(arr) + 1, sizeof *def->callers);
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
    {
        if (json_is_string(item) && json_string_length(item) > 0) {
            def->callers[def->n_callers++] = xstrdup(json_string_value(item));
        } else {
            size_t mi = def_ptr_push_index(c, i);
            def_problem(c, NULL, "must be a non-empty string (a glob of integration names)");
            def_ptr_pop(c, mi);
        }
    }
    def_ptr_pop(c, mark);
}

/* ---- tasks ----------------------------------------------------------------------------- */

/* First pass over the tasks: every valid id, by index, so targets can point forward. A
 * repeated id is reported at its second occurrence; targets resolve to the first. */
static void collect_ids(vctx_t *c, const json_t *tasks)
{
    size_t n = json_array_size(tasks);
    c->ids = xcalloc(n + 1, sizeof *c->ids);
    c->id_index = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tasks, i);
        json_t *idv = json_object_get(t, "id"); /* NULL when T is no object */
        const char *id = json_string_value(idv);
        if (!id)
            continue;
        size_t mi = def_ptr_push_index(c, i);
        if (!def_is_identifier(id)) {
            def_problem(c, "id", "invalid task id '%s': must match ^[A-Za-z_][A-Za-z0-9_]*$", id);
        } else if (strcmp(id, "end") == 0) {
            def_problem(c, "id",
                        "the task id 'end' is reserved: it is the target that ends the "
                        "run");
        } else {
            if (json_object_get(c->id_index, id)) {
                def_problem(c, "id", "duplicate task id '%s'", id);
            } else {
                c->ids[i] = id;
                json_object_set_new(c->id_index, id, json_integer((json_int_t)i));
            }
        }
        def_ptr_pop(c, mi);
    }
}

/* The outcome map `cases` of a task (not a switch: its `cases` map values). */
static void compile_cases(vctx_t *c, const json_t *obj, case_target_t **out, int *n_out)
{
    const json_t *cases = def_get_object(c, obj, "cases", false);
    if (!cases)
        return;
    size_t mark = def_ptr_push(c, "cases");
    *out = xcalloc(json_object_size(cases) + 1, sizeof **out);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)cases, key, v)
    {
        int target;
        if (def_resolve_target(c, key, v, &target)) {
            (*out)[*n_out].outcome = xstrdup(key);
            (*out)[*n_out].target = target;
            (*n_out)++;
        }
    }
    def_ptr_pop(c, mark);
}

static bool parse_type(vctx_t *c, const json_t *obj, task_type_t *out)
{
    const char *type = def_get_string(c, obj, "type", true);
    if (!type)
        return false;
    for (int i = 0; i <= TASK_FAIL; i++) {
        if (strcmp(type, type_names[i]) == 0) {
            *out = (task_type_t)i;
            return true;
        }
    }
    def_problem(c, "type",
                "unknown task type '%s'; expected one of call_integration, http, connector, "
                "script, set, switch, await, fail",
                type);
    return false;
}

static void compile_task(vctx_t *c, const json_t *obj, int index, int n_tasks, task_t *t)
{
    t->index = index;
    t->next = index + 1 < n_tasks ? index + 1 : TASK_END;
    def_retry_copy(&t->retry, &c->base_retry);
    if (!json_is_object(obj)) {
        def_problem(c, NULL, "must be an object");
        return;
    }
    if (def_need_field(c, obj, "id") && !json_is_string(json_object_get(obj, "id")))
        def_problem(c, "id", "must be a string");
    if (c->ids[index])
        t->id = xstrdup(c->ids[index]);

    /* Until the type is known, the task's members cannot be checked. */
    task_type_t type;
    if (!parse_type(c, obj, &type)) {
        t->type = TASK_SET; /* owns nothing yet (n == 0); the definition is dropped anyway */
        return;
    }
    t->type = type;

    static const char *const *const fields_by_type[] = {
        [TASK_CALL_INTEGRATION] = call_fields,
        [TASK_HTTP] = http_fields,
        [TASK_CONNECTOR] = connector_fields,
        [TASK_SET] = set_fields,
        [TASK_SWITCH] = switch_fields,
        [TASK_AWAIT] = await_fields,
        [TASK_FAIL] = fail_fields,
        [TASK_SCRIPT] = script_fields,
    };
    def_check_fields(c, obj, fields_by_type[type]);

    json_t *next = json_object_get(obj, "next");
    if (next)
        def_resolve_target(c, "next", next, &t->next);
    if (type != TASK_SWITCH)
        compile_cases(c, obj, &t->cases, &t->n_cases);
    def_get_bool(c, obj, "continue_on_error", &t->continue_on_error);
    json_t *retry = json_object_get(obj, "retry");
    if (retry) {
        def_retry_deinit(&t->retry);
        def_parse_retry(c, "retry", retry, &t->retry);
        t->retry_explicit = true;
    }
    if (type == TASK_HTTP || type == TASK_CONNECTOR) {
        /* Outbound requests always have a deadline, and a short one: a worker waits on it. */
        t->timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
        def_get_int(c, obj, "timeout_ms", 1, HTTP_MAX_TIMEOUT_MS, &t->timeout_ms);
    } else if (type != TASK_AWAIT) { /* an await's timeout_ms is its wait limit */
        def_get_int(c, obj, "timeout_ms", 1, MAX_DURATION_MS, &t->timeout_ms);
    }

    switch (type) {
    case TASK_CALL_INTEGRATION:
        def_compile_call(c, obj, t);
        break;
    case TASK_HTTP:
        def_compile_http(c, obj, t);
        break;
    case TASK_CONNECTOR:
        def_compile_connector(c, obj, t);
        break;
    case TASK_SET:
        def_compile_set(c, obj, t);
        break;
    case TASK_SWITCH:
        def_compile_switch(c, obj, t);
        break;
    case TASK_AWAIT:
        def_compile_await(c, obj, t);
        break;
    case TASK_FAIL:
        def_compile_fail(c, obj, t);
        break;
    case TASK_SCRIPT:
        def_compile_script(c, obj, t);
        break;
    default:
        break;
    }
}

static void compile_tasks(vctx_t *c, const json_t *doc, int max_tasks, definition_t *def)
{
    const json_t *tasks = def_get_array(c, doc, "tasks", true);
    if (!tasks)
        return;
    size_t n = json_array_size(tasks);
    if (n == 0) {
        def_problem(c, "tasks", "must list at least one task");
        return;
    }
    if (n > (size_t)max_tasks) {
        def_problem(c, "tasks", "has %zu tasks, more than the limit of %d", n, max_tasks);
        return;
    }
    size_t mark = def_ptr_push(c, "tasks");
    collect_ids(c, tasks);
    def->tasks = xcalloc(n, sizeof *def->tasks);
    def->n_tasks = (int)n;
    for (size_t i = 0; i < n; i++) {
        size_t mi = def_ptr_push_index(c, i);
        compile_task(c, json_array_get(tasks, i), (int)i, (int)n, &def->tasks[i]);
        def_ptr_pop(c, mi);
    }
    def_ptr_pop(c, mark);
}

/* ---- entry points ---------------------------------------------------------------------- */

static void compile_document(vctx_t *c, const json_t *doc, const char *name_hint, int max_tasks,
                             definition_t *def)
{
    static const char *const fields[] = {"name",    "description",  "triggers",   "run_async",
                                         "inputs",  "outputs",      "timeout_ms", "max_concurrency",
                                         "callers", "on_interrupt", "retry",      "tasks",
                                         NULL};
    def_check_fields(c, doc, fields);
    compile_name(c, doc, name_hint, def);
    def_get_string(c, doc, "description", false);
    compile_triggers(c, doc, def);
    def_get_bool(c, doc, "run_async", &def->run_async);
    json_t *inputs = json_object_get(doc, "inputs");
    if (inputs)
        def_compile_inputs(c, inputs, def);
    compile_outputs(c, doc, def);
    def->timeout_ms = DEFAULT_RUN_TIMEOUT_MS;
    def_get_int(c, doc, "timeout_ms", 1, MAX_DURATION_MS, &def->timeout_ms);
    int64_t n;
    if (def_get_int(c, doc, "max_concurrency", 1, INT_MAX, &n))
        def->max_concurrency = (int)n;
    compile_callers(c, doc, def);
    const char *oi = def_get_string(c, doc, "on_interrupt", false);
    if (oi && strcmp(oi, "fail") == 0)
        def->on_interrupt = ON_INTERRUPT_FAIL;
    else if (oi && strcmp(oi, "retry") != 0)
        def_problem(c, "on_interrupt", "must be \"retry\" or \"fail\"");
    json_t *retry = json_object_get(doc, "retry");
    if (retry) {
        def_retry_deinit(&c->base_retry);
        def_parse_retry(c, "retry", retry, &c->base_retry);
    }
    compile_tasks(c, doc, max_tasks, def);
}

static unsigned roots_of_tmpl(const template_t *t)
{
    return t ? template_roots_used(t) : 0;
}

/* Every root any template of DEF reads. */
static unsigned roots_of(const definition_t *def)
{
    unsigned r = roots_of_tmpl(def->outputs_tmpl);
    for (int i = 0; i < def->n_tasks; i++) {
        const task_t *t = &def->tasks[i];
        switch (t->type) {
        case TASK_CALL_INTEGRATION: {
            const call_task_t *c = &t->u.call;
            r |= roots_of_tmpl(c->integration) | roots_of_tmpl(c->delay_ms) |
                 roots_of_tmpl(c->payload) | roots_of_tmpl(c->for_each) |
                 roots_of_tmpl(c->idempotency_key);
            break;
        }
        case TASK_SET:
            for (int k = 0; k < t->u.set.n; k++)
                r |= roots_of_tmpl(t->u.set.values[k]);
            break;
        case TASK_HTTP: {
            const http_task_t *h = &t->u.http;
            r |= roots_of_tmpl(h->url) | roots_of_tmpl(h->query) | roots_of_tmpl(h->headers) |
                 roots_of_tmpl(h->body) | roots_of_tmpl(h->auth.a) | roots_of_tmpl(h->auth.b);
            break;
        }
        case TASK_CONNECTOR: r |= roots_of_tmpl(t->u.connector.input); break;
        case TASK_SWITCH: r |= roots_of_tmpl(t->u.sw.value); break;
        case TASK_AWAIT: r |= roots_of_tmpl(t->u.await.runs); break;
        case TASK_SCRIPT: r |= TMPL_VARS | TMPL_INPUT; break; /* the script sees vars and input */
        case TASK_FAIL:
            r |= roots_of_tmpl(t->u.fail.code) | roots_of_tmpl(t->u.fail.message) |
                 roots_of_tmpl(t->u.fail.detail);
            break;
        default: break;
        }
    }
    return r;
}

/* The document to keep: DOC itself (a new reference; Jansson counts references atomically,
 * so sharing the caller's document is safe) or, when publishing pinned connector versions
 * (PINS, borrowed, may be NULL), a deep copy with those versions written in, so that the
 * stored text says which version every connector task runs. The caller's DOC is never
 * modified. Returned owned. */
static json_t *pinned_document(const json_t *doc, const json_t *pins)
{
    if (json_array_size(pins) == 0)
        return json_incref((json_t *)doc);
    json_t *copy = jsonx_copy(doc);
    json_t *tasks = json_object_get(copy, "tasks");
    size_t i;
    json_t *pin;
    json_array_foreach(pins, i, pin)
    {
        json_t *task = json_array_get(tasks, (size_t)json_integer_value(json_array_get(pin, 0)));
        json_object_set(task, "version", json_array_get(pin, 1));
    }
    return copy;
}

/* Validate and build from DOC (borrowed); the shared body of load and compile. */
static int compile_with_hint(const json_t *doc, const char *name_hint,
                             const definition_resolver_t *resolver,
                             const definition_limits_t *limits, definition_t **out, diags_t *diags)
{
    *out = NULL;
    if (!json_is_object(doc)) {
        diags_add(diags, "", "the document must be a JSON object, not %s",
                  doc ? jsonx_type_name(doc) : "nothing");
        return BR_EINVALID_DEFINITION;
    }
    int max_tasks = limits && limits->max_tasks > 0 ? limits->max_tasks : DEFAULT_MAX_TASKS;
    vctx_t c = {.diags = diags, .first_diag = diags->n, .resolver = resolver};
    def_retry_defaults(&c.base_retry);
    definition_t *def = XNEW(definition_t);

    compile_document(&c, doc, name_hint, max_tasks, def);

    bool ok = def_problem_count(&c) == 0;
    free(c.ids);
    json_decref(c.id_index);
    buf_deinit(&c.ptr);
    def_retry_deinit(&c.base_retry);
    if (!ok) {
        json_decref(c.pins);
        definition_free(def);
        return BR_EINVALID_DEFINITION;
    }
    def->roots_used = roots_of(def);
    def->doc = pinned_document(doc, c.pins);
    json_decref(c.pins);
    def->canonical = def_canonical(def->doc);
    *out = def;
    return 0;
}

/* Compact JSON text of DOC (borrowed) with sorted keys: what the store keeps and compares to
 * find an identical republish. Returned owned (free with free). */
char *def_canonical(const json_t *doc)
{
    char *s = jsonx_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    return s ? s : xstrdup("{}"); /* only when out of memory; keeps the field non-NULL */
}

/* Validate and compile DOC (borrowed; the definition takes a reference to it, so the caller
 * must not modify it afterwards -- or a copy, when publishing filled in connector versions).
 * RESOLVER (borrowed, may be NULL) answers whether literal call targets are published and
 * looks connectors and connections up; LIMITS (may be NULL) bounds the number of tasks.
 * Returns 0 and
 * *OUT (owned, free with definition_free), or BR_EINVALID_DEFINITION with every problem
 * appended to DIAGS (caller's; no line numbers). Any thread. */
int definition_compile(const json_t *doc, const definition_resolver_t *resolver,
                       const definition_limits_t *limits, definition_t **out, diags_t *diags)
{
    diags_t none = {0};
    int rc = compile_with_hint(doc, NULL, resolver, limits, out, diags ? diags : &none);
    diags_deinit(&none);
    return rc;
}

/* Parse TEXT (LEN bytes, borrowed) with LIMITS (may be NULL: 1 MiB, depth 64; duplicate keys
 * are always refused) and run COMPILE (with ARG) on the document. A syntax error is one
 * diagnostic at "" with its line and column; every problem COMPILE reports is located in
 * TEXT too. Returns what COMPILE returns, or BR_EINVALID_DEFINITION for a syntax error, with
 * the problems appended to DIAGS (NULL when only the verdict matters). Any thread. */
int def_load_text(const char *text, size_t len, const definition_limits_t *limits,
                  diags_t *diags, def_compile_fn compile, void *arg)
{
    diags_t none = {0};
    if (!diags)
        diags = &none; /* the caller wants only the verdict */
    jsonx_limits_t jl = {
        .max_bytes = limits && limits->max_bytes > 0 ? limits->max_bytes : DEFAULT_MAX_BYTES,
        .max_depth = limits && limits->max_depth > 0 ? limits->max_depth : JSONX_DEFAULT_DEPTH,
        .reject_duplicate_keys = true,
    };
    err_t err = {0};
    json_t *doc = jsonx_parse(text ? text : "", text ? len : 0, &jl, &err);
    if (!doc) {
        diags_add(diags, "", "%s", err.msg);
        diag_t *g = &diags->items[diags->n - 1];
        json_int_t line = json_integer_value(json_object_get(err.detail, "line"));
        json_int_t col = json_integer_value(json_object_get(err.detail, "column"));
        if (line > 0 && line <= INT_MAX && col > 0 && col <= INT_MAX) {
            g->line = (int)line;
            g->column = (int)col;
        }
        err_clear(&err);
        diags_deinit(&none);
        return BR_EINVALID_DEFINITION;
    }
    int first = diags->n;
    int rc = compile(doc, arg, diags);
    if (rc != 0) {
        diags_t mine = {diags->items + first, diags->n - first, diags->n - first};
        diags_locate(&mine, text, len);
    }
    json_decref(doc);
    diags_deinit(&none);
    return rc;
}

typedef struct load_args {
    const char *name_hint;
    const definition_resolver_t *resolver;
    const definition_limits_t *limits;
    definition_t **out;
} load_args_t;

static int load_compile(const json_t *doc, void *arg, diags_t *diags)
{
    load_args_t *a = arg;
    return compile_with_hint(doc, a->name_hint, a->resolver, a->limits, a->out, diags);
}

/* Parse TEXT (LEN bytes, borrowed) with LIMITS (may be NULL: 1 MiB, depth 64, 1000 tasks;
 * duplicate keys are always refused), then validate and compile it as definition_compile
 * does. NAME_HINT (may be NULL) must equal the document's name. A syntax error is one
 * diagnostic at "" with its line and column; every other problem is located in TEXT too.
 * Returns 0 and *OUT (owned, free with definition_free) or BR_EINVALID_DEFINITION with the
 * problems appended to DIAGS (the caller deinits it either way; NULL when only the verdict
 * matters). Any thread. */
int definition_load(const char *text, size_t len, const char *name_hint,
                    const definition_limits_t *limits, const definition_resolver_t *resolver,
                    definition_t **out, diags_t *diags)
{
    *out = NULL;
    load_args_t a = {name_hint, resolver, limits, out};
    return def_load_text(text, len, limits, diags, load_compile, &a);
}

/* The task of DEF whose id is ID (borrowed from DEF), or NULL. Any thread. */
const task_t *definition_task(const definition_t *def, const char *id)
{
    if (!def || !id)
        return NULL;
    for (int i = 0; i < def->n_tasks; i++)
        if (def->tasks[i].id && strcmp(def->tasks[i].id, id) == 0)
            return &def->tasks[i];
    return NULL;
}
