/* inputs.c - declared inputs (SPEC §1): their declarations in a document, binding a call's
 * payload to a run's initial vars, checking a caller's mapping against them; and the globs
 * of `callers`.
 *
 * Binding never shares a value with the payload or the definition: every bound value is a
 * deep copy, so the vars a run modifies belong to that run alone.
 */
#include "definition/internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <string.h>

static const char *const vt_names[] = {
    [VT_ANY] = "any",         [VT_STRING] = "string",   [VT_NUMBER] = "number",
    [VT_INTEGER] = "integer", [VT_BOOLEAN] = "boolean", [VT_OBJECT] = "object",
    [VT_ARRAY] = "array",
};

_Static_assert(sizeof vt_names / sizeof vt_names[0] == VT_ARRAY + 1,
               "value type names and value_type_t out of step");

/* Whether V has type T: `integer` takes reals with an integral value too, `number` takes
 * integers and reals, `any` takes everything (null included). */
static bool type_matches(value_type_t t, const json_t *v)
{
    long long ignored;
    switch (t) {
    case VT_ANY:
        return true;
    case VT_STRING:
        return json_is_string(v);
    case VT_NUMBER:
        return json_is_number(v);
    case VT_INTEGER:
        return jsonx_as_int(v, &ignored);
    case VT_BOOLEAN:
        return json_is_boolean(v);
    case VT_OBJECT:
        return json_is_object(v);
    case VT_ARRAY:
        return json_is_array(v);
    }
    return false;
}

static void compile_decl(vctx_t *c, const char *name, const json_t *spec, input_decl_t *d)
{
    static const char *const fields[] = {"type", "required", "default", "description", NULL};
    d->name = xstrdup(name);
    d->type = VT_ANY;
    if (!json_is_object(spec)) {
        def_problem(c, NULL,
                    "must be an object {\"type\", \"required\", \"default\", "
                    "\"description\"}");
        return;
    }
    def_check_fields(c, spec, fields);
    const char *type = def_get_string(c, spec, "type", false);
    bool type_ok = true;
    if (type) {
        int found = -1;
        for (int i = 0; i <= VT_ARRAY && found < 0; i++)
            if (strcmp(type, vt_names[i]) == 0)
                found = i;
        if (found < 0) {
            def_problem(c, "type",
                        "unknown type '%s'; expected one of string, number, integer, "
                        "boolean, object, array, any",
                        type);
            type_ok = false;
        } else {
            d->type = (value_type_t)found;
        }
    } else if (json_object_get(spec, "type")) {
        type_ok = false;
    }
    def_get_bool(c, spec, "required", &d->required);
    def_get_string(c, spec, "description", false);
    json_t *dflt = json_object_get(spec, "default");
    if (!dflt)
        return;
    if (type_ok && !type_matches(d->type, dflt))
        def_problem(c, "default", "must be %s, got %s", vt_names[d->type], jsonx_type_name(dflt));
    else
        d->default_value = json_deep_copy(dflt);
    if (d->required)
        def_problem(c, "required", "a required input cannot have a default");
}

/* The `inputs` member V of the document: name -> declaration. */
void def_compile_inputs(vctx_t *c, const json_t *v, definition_t *def)
{
    def->has_inputs = true;
    if (!json_is_object(v)) {
        def_problem(c, "inputs",
                    "must be an object: input name -> {\"type\", \"required\", "
                    "\"default\", \"description\"}");
        return;
    }
    size_t mark = def_ptr_push(c, "inputs");
    def->inputs = xcalloc(json_object_size(v) + 1, sizeof *def->inputs);
    const char *name;
    json_t *spec;
    json_object_foreach((json_t *)v, name, spec)
    {
        if (!def_is_identifier(name)) {
            def_problem_key(c, name,
                            "invalid input name '%s': must match "
                            "^[A-Za-z_][A-Za-z0-9_]*$",
                            name);
            continue;
        }
        size_t mi = def_ptr_push(c, name);
        compile_decl(c, name, spec, &def->inputs[def->n_inputs++]);
        def_ptr_pop(c, mi);
    }
    def_ptr_pop(c, mark);
}

static void input_error(json_t *errors, const char *field, const char *message)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* Check PAYLOAD (borrowed, may be NULL) against DEF's declared inputs and build a run's
 * initial vars (see definition.h). With declarations, only declared inputs are bound, each a
 * deep copy (defaults too); a payload that is not an object binds as {} so that only the
 * required inputs fail. Without declarations, a deep copy of an object payload, else {}.
 * Returns the vars (owned), or NULL with ERR = BR_EINPUT_INVALID and detail
 * {"errors": [{"field", "message"}]} listing every bad input. Any thread. */
json_t *definition_bind_inputs(const definition_t *def, const json_t *payload, err_t *err)
{
    if (!def->has_inputs)
        return json_is_object(payload) ? json_deep_copy(payload) : json_object();

    json_t *vars = json_object();
    json_t *errors = json_array();
    for (int i = 0; i < def->n_inputs; i++) {
        const input_decl_t *d = &def->inputs[i];
        json_t *v = json_is_object(payload) ? json_object_get(payload, d->name) : NULL;
        if (!v || json_is_null(v)) {
            if (d->default_value)
                json_object_set_new(vars, d->name, json_deep_copy(d->default_value));
            else if (d->required)
                input_error(errors, d->name, "is required");
            continue;
        }
        if (!type_matches(d->type, v)) {
            char msg[96];
            snprintf(msg, sizeof msg, "must be %s, got %s", vt_names[d->type], jsonx_type_name(v));
            input_error(errors, d->name, msg);
            continue;
        }
        json_object_set_new(vars, d->name, json_deep_copy(v));
    }
    size_t n = json_array_size(errors);
    if (n == 0) {
        json_decref(errors);
        return vars;
    }
    json_decref(vars);
    err_set_detail(err, BR_EINPUT_INVALID, json_pack("{s:o}", "errors", errors),
                   n == 1 ? "%zu input is invalid" : "%zu inputs are invalid", n);
    return NULL;
}

/* Problems of a caller's `input` mapping: MAPPED (borrowed; an array of input names)
 * against DEF's declarations. Returns an array of messages (owned), empty when it fits or
 * when DEF declares no inputs. Any thread. */
json_t *definition_mapping_problems(const definition_t *def, const json_t *mapped)
{
    json_t *out = json_array();
    if (!def->has_inputs)
        return out;
    /* Sets of names on both sides keep this linear in the sizes of both lists. */
    json_t *declared = json_object(), *given = json_object();
    for (int k = 0; k < def->n_inputs; k++)
        json_object_set_new(declared, def->inputs[k].name, json_true());
    size_t i;
    json_t *name;
    json_array_foreach(mapped, i, name)
    {
        const char *s = json_string_value(name);
        if (!s || def_seen(given, s))
            continue;
        if (!json_object_get(declared, s))
            json_array_append_new(out, json_sprintf("input '%s' is not declared by %s", s,
                                                    def->name ? def->name : "the target"));
    }
    for (int k = 0; k < def->n_inputs; k++) {
        const input_decl_t *d = &def->inputs[k];
        if (d->required && !d->default_value && !json_object_get(given, d->name))
            json_array_append_new(out, json_sprintf("required input '%s' is not mapped", d->name));
    }
    json_decref(declared);
    json_decref(given);
    return out;
}

/* Whether NAME matches PATTERN: '*' matches any run of characters, '/' included; '?' one
 * character; everything else itself. Iterative, backtracking only to the last '*', so the
 * cost stays O(len(pattern) * len(name)) on any input. Any thread. */
bool definition_glob_match(const char *pattern, const char *name)
{
    const char *p = pattern, *n = name;
    const char *star = NULL, *resume = NULL;
    while (*n) {
        if (*p == '*') {
            star = p++;
            resume = n;
        } else if (*p == '?' || *p == *n) {
            p++;
            n++;
        } else if (star) {
            p = star + 1;
            n = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* Whether the integration named CALLER (borrowed) may call DEF: always when DEF lists no
 * callers, else when one of its globs matches. A NULL CALLER (not a call from an
 * integration: HTTP or the command line, governed by tokens) is allowed. Any thread. */
bool definition_caller_allowed(const definition_t *def, const char *caller)
{
    if (def->n_callers == 0 || !caller)
        return true;
    for (int i = 0; i < def->n_callers; i++)
        if (definition_glob_match(def->callers[i], caller))
            return true;
    return false;
}
