/* tasks.c - the members specific to each task type (SPEC §3, §6): call_integration, set,
 * switch, await, fail, script; and the pieces other task types share with them (string
 * templates, input names, output mappings). http and connector tasks are in requests.c.
 *
 * Each function runs with the pointer at the task, after the shared members (id, type, next,
 * cases, retry, timeout_ms) and the unknown-field check are done; it reports every problem
 * and fills what is valid.
 */
#include "definition/internal.h"

#include "core/xalloc.h"
#include "script/script.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A template member KEY of OBJ that must be a string, compiled with the roots in ALLOWED
 * (TMPL_* mask). *TMPL is set only when it compiles; returns whether it did. */
bool def_string_template(vctx_t *c, const json_t *obj, const char *key, bool required,
                         bool non_empty, unsigned allowed, template_t **tmpl)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            def_problem(c, key, "required field '%s' is missing", key);
        return false;
    }
    if (!json_is_string(v)) {
        def_problem(c, key, "must be a string");
        return false;
    }
    if (non_empty && json_string_length(v) == 0) {
        def_problem(c, key, "must not be empty");
        return false;
    }
    *tmpl = def_compile_template_roots(c, key, v, allowed);
    return *tmpl != NULL;
}

static bool string_template(vctx_t *c, const json_t *obj, const char *key, bool required,
                            bool non_empty, template_t **tmpl)
{
    return def_string_template(c, obj, key, required, non_empty, TMPL_ROOTS_DEFAULT, tmpl);
}

/* A member that must compute an array: a literal array (whose strings may be templates) or a
 * template string with an expression. A constant string can never be an array. */
static void array_template(vctx_t *c, const json_t *v, const char *key, template_t **tmpl)
{
    if (!json_is_array(v) && !json_is_string(v)) {
        def_problem(c, key, "must be an array or a {{template}} giving one");
        return;
    }
    template_t *t = def_compile_template(c, key, v);
    if (t && json_is_string(v) && template_is_constant(t)) {
        def_problem(c, key, "must be an array or a {{template}} giving one");
        template_free(t);
        return;
    }
    *tmpl = t;
}

/* ---- call_integration ------------------------------------------------------------------ */

static void call_target(vctx_t *c, const json_t *obj, call_task_t *ct)
{
    json_t *integ = json_object_get(obj, "integration");
    json_t *trig = json_object_get(obj, "trigger");
    if (!integ && !trig) {
        def_problem(c, "integration",
                    "required field 'integration' is missing (or 'trigger', to call every "
                    "integration behind an API trigger)");
        return;
    }
    if (integ && trig) {
        def_problem(c, "trigger", "'integration' and 'trigger' cannot both be set");
        return;
    }
    if (trig) {
        const char *id = def_get_string(c, obj, "trigger", false);
        if (id && !def_is_trigger_id(id))
            def_problem(c, "trigger", "invalid trigger id '%s': must match ^[a-z0-9][a-z0-9_.-]*$",
                        id);
        else if (id)
            ct->trigger = xstrdup(id);
        return;
    }
    if (!string_template(c, obj, "integration", false, true, &ct->integration))
        return;
    if (!template_is_constant(ct->integration))
        return; /* dynamic dispatch: checked when the call is made */
    const char *name = json_string_value(integ);
    const char *why = def_integration_name_problem(name);
    if (why) {
        def_problem(c, "integration", "invalid integration name '%s': %s", name, why);
        return;
    }
    ct->literal_target = xstrdup(name);
    bool self = c->own_name && strcmp(name, c->own_name) == 0;
    if (!self && c->resolver && c->resolver->integration_exists &&
        !c->resolver->integration_exists(c->resolver->ctx, name))
        def_problem(c, "integration", "integration '%s' is not published", name);
}

static void call_payload(vctx_t *c, const json_t *obj, call_task_t *ct)
{
    static const char *const ext_fields[] = {"payload", "params",   "path", "headers",
                                             "method",  "fullpath", NULL};
    static const char *const kinds[] = {"input", "payload", "extended_payload"};
    const char *first = NULL;
    for (int k = 0; k < 3; k++) {
        if (!json_object_get(obj, kinds[k]))
            continue;
        if (first) {
            def_problem(c, kinds[k],
                        "'%s' cannot be used with '%s': give only one of input, "
                        "payload and extended_payload",
                        kinds[k], first);
            return;
        }
        first = kinds[k];
    }
    if (!first)
        return;
    json_t *v = json_object_get(obj, first);

    if (strcmp(first, "input") == 0) {
        if (!def_input_names(c, "input", v, &ct->input_keys))
            return;
        ct->payload_kind = PAYLOAD_INPUT;
    } else if (strcmp(first, "payload") == 0) {
        ct->payload_kind = PAYLOAD_WHOLE;
    } else {
        if (!json_is_object(v)) {
            def_problem(c, "extended_payload",
                        "must be an object with any of payload, params, "
                        "path, headers, method, fullpath");
            return;
        }
        size_t mark = def_ptr_push(c, "extended_payload");
        def_check_fields(c, v, ext_fields);
        def_ptr_pop(c, mark);
        ct->payload_kind = PAYLOAD_EXTENDED;
    }
    ct->payload = def_compile_template(c, first, v);
}

/* Whether PATH addresses a response {status, headers, body}: "" (all of it) or a path whose
 * first name is one of those three. */
static bool is_response_path(const char *path)
{
    static const char *const heads[] = {"status", "headers", "body"};
    if (!*path)
        return true;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(heads[i]);
        if (strncmp(path, heads[i], n) == 0 &&
            (path[n] == '\0' || path[n] == '.' || path[n] == '['))
            return true;
    }
    return false;
}

/* Output mappings OUT, member KEY of the value in hand: var name -> path. WHAT says what the
 * paths address: OUTPUT_OF_CHILD (a child's output, any path) or OUTPUT_OF_RESPONSE (a
 * response {status, headers, body}: the path must start with one of those). Fills *MAPS
 * (owned; free with def_output_maps_free) and *N with every valid mapping. */
void def_compile_output_maps(vctx_t *c, const char *key, const json_t *out, output_of_t what,
                             output_map_t **maps, int *n)
{
    size_t mark = def_ptr_push(c, key);
    *maps = xcalloc(json_object_size(out) + 1, sizeof **maps);
    const char *var;
    json_t *path;
    json_object_foreach((json_t *)out, var, path)
    {
        const char *p = json_string_value(path);
        if (!def_name_ok(c, var, true, var, def_is_var_name, "var name", DEF_RULE_VAR_NAME))
            continue;
        if (!p) {
            def_problem(c, var,
                        what == OUTPUT_OF_CHILD
                            ? "must be a string: a path in the child's output (\"body.id\", "
                              "\"\" for all of it)"
                            : "must be a string: a path in the response (\"body.id\", "
                              "\"status\", \"headers.etag\", \"\" for all of it)");
        } else if (!def_path_is_valid(p)) {
            def_problem(c, var, "invalid path '%s'", p);
        } else if (what == OUTPUT_OF_RESPONSE && !is_response_path(p)) {
            def_problem(c, var,
                        "invalid path '%s': a response is {status, headers, body}, so the "
                        "path starts with one of those",
                        p);
        } else {
            output_map_t *m = &(*maps)[(*n)++];
            m->var = xstrdup(var);
            m->path = xstrdup(p);
        }
    }
    def_ptr_pop(c, mark);
}

/* Free the N mappings MAPS (taken); NULL-safe. */
void def_output_maps_free(output_map_t *maps, int n)
{
    for (int i = 0; i < n; i++) {
        free(maps[i].var);
        free(maps[i].path);
    }
    free(maps);
}

/* The names of an `input` object V, member KEY of the value in hand (input name ->
 * template): reports a V that is no object (returns false) and every name that is not an
 * identifier. *NAMES gets the array of names (owned), invalid ones included, so that a
 * mapping check sees what the document says. */
bool def_input_names(vctx_t *c, const char *key, const json_t *v, json_t **names)
{
    if (!json_is_object(v)) {
        def_problem(c, key, "must be an object: input name -> template");
        return false;
    }
    *names = json_array();
    size_t mark = def_ptr_push(c, key);
    const char *name;
    json_t *item;
    json_object_foreach((json_t *)v, name, item)
    {
        if (!def_is_identifier(name))
            def_problem_key(c, name, "invalid input name '%s': must match ^[A-Za-z_][A-Za-z0-9_]*$",
                            name);
        json_array_append_new(*names, json_string(name));
    }
    def_ptr_pop(c, mark);
    return true;
}

static void call_outputs(vctx_t *c, const json_t *obj, call_task_t *ct)
{
    const json_t *out = def_get_object(c, obj, "output", false);
    if (!out)
        return;
    if (ct->strategy == STRATEGY_ASYNC)
        def_problem(c, "output",
                    "output is only for sync calls: an async call returns its run "
                    "id, not the child's output");
    if (json_object_get(obj, "for_each"))
        def_problem(c, "output",
                    "output cannot be used with for_each: the result is an array, "
                    "read it from tasks.ID.result");
    if (json_object_get(obj, "trigger"))
        def_problem(c, "output",
                    "output cannot be used with trigger: the result is an array, "
                    "read it from tasks.ID.result");
    def_compile_output_maps(c, "output", out, OUTPUT_OF_CHILD, &ct->outputs, &ct->n_outputs);
}

/* `call_integration` (SPEC §3). */
void def_compile_call(vctx_t *c, const json_t *obj, task_t *t)
{
    call_task_t *ct = &t->u.call;
    ct->parallelism = DEFAULT_PARALLELISM;
    call_target(c, obj, ct);

    int64_t n;
    if (json_object_get(obj, "version")) {
        if (json_object_get(obj, "trigger"))
            def_problem(c, "version", "version cannot be used with trigger");
        else if (def_get_int(c, obj, "version", 1, INT_MAX, &n))
            ct->version = (int)n;
    }

    const char *strategy = def_get_string(c, obj, "strategy", false);
    if (strategy && strcmp(strategy, "sync") == 0)
        ct->strategy = STRATEGY_SYNC;
    else if (strategy && strcmp(strategy, "async") == 0)
        ct->strategy = STRATEGY_ASYNC;
    else if (strategy)
        def_problem(c, "strategy", "must be \"sync\" or \"async\"");
    bool async = ct->strategy == STRATEGY_ASYNC;

    json_t *delay = json_object_get(obj, "delay_ms");
    if (delay) {
        if (!async) {
            def_problem(c, "delay_ms",
                        "delay_ms is only for async calls: set \"strategy\": \"async\"");
        } else if (json_is_integer(delay)) {
            if (def_get_int(c, obj, "delay_ms", 0, MAX_DURATION_MS, &n))
                ct->delay_ms = def_compile_template(c, "delay_ms", delay);
        } else if (json_is_string(delay)) {
            template_t *tm = def_compile_template(c, "delay_ms", delay);
            if (tm && template_is_constant(tm)) {
                def_problem(c, "delay_ms", "must be an integer from 0 to %lld or a {{template}}",
                            MAX_DURATION_MS);
                template_free(tm);
                tm = NULL;
            }
            ct->delay_ms = tm;
        } else {
            def_problem(c, "delay_ms", "must be an integer from 0 to %lld or a {{template}}",
                        MAX_DURATION_MS);
        }
    }

    call_payload(c, obj, ct);
    call_outputs(c, obj, ct);

    json_t *fe = json_object_get(obj, "for_each");
    if (fe)
        array_template(c, fe, "for_each", &ct->for_each);
    if (json_object_get(obj, "parallelism")) {
        if (!fe)
            def_problem(c, "parallelism", "parallelism is only for for_each calls");
        else if (def_get_int(c, obj, "parallelism", 1, MAX_PARALLELISM, &n))
            ct->parallelism = (int)n;
    }
    string_template(c, obj, "idempotency_key", false, true, &ct->idempotency_key);
    if (json_object_get(obj, "detached")) {
        if (def_get_bool(c, obj, "detached", &ct->detached) && !async) {
            def_problem(c, "detached",
                        "detached is only for async calls: set \"strategy\": \"async\"");
            ct->detached = false;
        }
    }
}

/* ---- set, switch, await, fail ---------------------------------------------------------- */

/* `set`: var name -> template. */
void def_compile_set(vctx_t *c, const json_t *obj, task_t *t)
{
    const json_t *values = def_get_members(c, obj, "values", "must set at least one var");
    if (!values)
        return;
    set_task_t *st = &t->u.set;
    size_t n = json_object_size(values);
    st->keys = xcalloc(n, sizeof *st->keys);
    st->values = xcalloc(n, sizeof *st->values);
    size_t mark = def_ptr_push(c, "values");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)values, key, v)
    {
        if (!def_name_ok(c, key, true, key, def_is_var_name, "var name", DEF_RULE_VAR_NAME))
            continue;
        template_t *tm = def_compile_template(c, key, v);
        if (!tm)
            continue;
        st->keys[st->n] = xstrdup(key);
        st->values[st->n] = tm;
        st->n++;
    }
    def_ptr_pop(c, mark);
}

/* `switch`: its `cases` map rendered values (as text) to targets, not outcomes. */
void def_compile_switch(vctx_t *c, const json_t *obj, task_t *t)
{
    switch_task_t *sw = &t->u.sw;
    sw->default_target = -2;
    json_t *value = json_object_get(obj, "value");
    if (!value)
        def_problem(c, "value", "required field 'value' is missing");
    else
        sw->value = def_compile_template(c, "value", value);

    const json_t *cases = def_get_object(c, obj, "cases", false);
    if (cases) {
        size_t mark = def_ptr_push(c, "cases");
        sw->cases = xcalloc(json_object_size(cases) + 1, sizeof *sw->cases);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)cases, key, v)
        {
            int target;
            if (def_resolve_target(c, key, v, &target)) {
                sw->cases[sw->n_cases].outcome = xstrdup(key);
                sw->cases[sw->n_cases].target = target;
                sw->n_cases++;
            }
        }
        def_ptr_pop(c, mark);
    }
    json_t *dflt = json_object_get(obj, "default");
    if (dflt)
        def_resolve_target(c, "default", dflt, &sw->default_target);
}

static void await_mode(vctx_t *c, const json_t *mode, await_task_t *aw)
{
    static const char *const fields[] = {"at_least", NULL};
    if (json_is_string(mode) && strcmp(json_string_value(mode), "all") == 0) {
        aw->mode = AWAIT_ALL;
    } else if (json_is_string(mode) && strcmp(json_string_value(mode), "any") == 0) {
        aw->mode = AWAIT_ANY;
    } else if (json_is_object(mode)) {
        size_t mark = def_ptr_push(c, "mode");
        def_check_fields(c, mode, fields);
        int64_t n;
        if (def_need_field(c, mode, "at_least") &&
            def_get_int(c, mode, "at_least", 1, INT_MAX, &n)) {
            aw->mode = AWAIT_AT_LEAST;
            aw->at_least = (int)n;
        }
        def_ptr_pop(c, mark);
    } else {
        def_problem(c, "mode", "must be \"all\", \"any\" or {\"at_least\": N}");
    }
}

/* `await`: its `timeout_ms` is the wait limit, kept in the await and not as the attempt's
 * deadline, so that reaching it yields the await's own result rather than a timeout. */
void def_compile_await(vctx_t *c, const json_t *obj, task_t *t)
{
    await_task_t *aw = &t->u.await;
    aw->timeout_ms = DEFAULT_AWAIT_TIMEOUT_MS;
    aw->mode = AWAIT_ALL;
    t->timeout_ms = 0;

    json_t *runs = json_object_get(obj, "runs");
    if (!runs)
        def_problem(c, "runs", "required field 'runs' is missing");
    else
        array_template(c, runs, "runs", &aw->runs);
    def_get_int(c, obj, "timeout_ms", 1, MAX_DURATION_MS, &aw->timeout_ms);
    json_t *mode = json_object_get(obj, "mode");
    if (mode)
        await_mode(c, mode, aw);
    int64_t n;
    if (def_get_int(c, obj, "tolerate_failures", 0, INT_MAX, &n))
        aw->tolerate_failures = (int)n;
}

/* `fail`: the run fails with an error of that code. */
void def_compile_fail(vctx_t *c, const json_t *obj, task_t *t)
{
    fail_task_t *ft = &t->u.fail;
    string_template(c, obj, "code", true, true, &ft->code);
    string_template(c, obj, "message", false, false, &ft->message);
    json_t *detail = json_object_get(obj, "detail");
    if (detail)
        ft->detail = def_compile_template(c, "detail", detail);
}

/* `script`: Lua 5.4 text, compiled once here so that a syntax error is a publish error naming
 * the script's line; the engine compiles it again per run in a fresh state. */
void def_compile_script(vctx_t *c, const json_t *obj, task_t *t)
{
    const char *lang = def_get_string(c, obj, "lang", true);
    if (lang && strcmp(lang, "lua") != 0)
        def_problem(c, "lang", "unknown script language '%s'; expected \"lua\"", lang);
    json_t *src = json_object_get(obj, "source");
    if (!src) {
        def_problem(c, "source", "required field 'source' is missing");
        return;
    }
    if (!json_is_string(src)) {
        def_problem(c, "source", "must be a string of Lua 5.4 source");
        return;
    }
    int line;
    char msg[300];
    if (script_check(json_string_value(src), json_string_length(src), &line, msg, sizeof msg) < 0) {
        const char *why = strchr(msg + (strncmp(msg, "script:", 7) == 0 ? 7 : 0), ':');
        if (line > 0 && why)
            def_problem(c, "source", "Lua syntax error at script line %d:%s", line, why + 1);
        else if (line > 0)
            def_problem(c, "source", "Lua syntax error at script line %d: %s", line, msg);
        else
            def_problem(c, "source", "Lua syntax error: %s", msg);
        return;
    }
    t->u.script.len = json_string_length(src);
    t->u.script.source = xmalloc(t->u.script.len + 1);
    memcpy(t->u.script.source, json_string_value(src), t->u.script.len + 1);
}
