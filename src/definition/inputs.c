/* inputs.c - declared inputs (SPEC §1, §5): their declarations in a document (an
 * integration's inputs, an operation's inputs, a connector's config), binding a payload to
 * them, checking a caller's mapping against them; and the globs of `callers`.
 *
 * Binding never shares a value with the payload or the definition: every bound value is a
 * deep copy, so the vars a run modifies belong to that run alone.
 */
#include "definition/internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
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

static const input_decl_t *find_decl(const input_decl_t *decls, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(decls[i].name, name) == 0)
            return &decls[i];
    return NULL;
}

static void compile_decl(vctx_t *c, const char *name, const json_t *spec, const char *noun,
                         input_decl_t *d)
{
    static const char *const fields[] = {"type", "required", "default", "description", NULL};
    d->name = xstrdup(name);
    d->type = VT_ANY;
    if (!def_check_object(c, spec, fields))
        return;
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
        d->default_value = jsonx_copy(dflt);
    if (d->required)
        def_problem(c, "required", "a required %s cannot have a default", noun);
}

/* Declarations V, member KEY of the value in hand: name -> {"type", "required", "default",
 * "description"}. An integration's `inputs`, an operation's `inputs` and a connector's
 * `config` all read this way; NOUN ("input", "config field") names one in messages. Fills
 * *OUT (owned; free with def_decls_free) and *N with every declaration whose name is valid. */
void def_compile_decls(vctx_t *c, const char *key, const json_t *v, const char *noun,
                       input_decl_t **out, int *n)
{
    if (!json_is_object(v)) {
        def_problem(c, key,
                    "must be an object: %s name -> {\"type\", \"required\", "
                    "\"default\", \"description\"}",
                    noun);
        return;
    }
    size_t mark = def_ptr_push(c, key);
    *out = xcalloc(json_object_size(v) + 1, sizeof **out);
    const char *name;
    json_t *spec;
    json_object_foreach((json_t *)v, name, spec)
    {
        if (!def_is_identifier(name)) {
            def_problem_key(c, name, "invalid %s name '%s': must match ^[A-Za-z_][A-Za-z0-9_]*$",
                            noun, name);
            continue;
        }
        size_t mi = def_ptr_push(c, name);
        compile_decl(c, name, spec, noun, &(*out)[(*n)++]);
        def_ptr_pop(c, mi);
    }
    def_ptr_pop(c, mark);
}

/* Free the N declarations DECLS (taken); NULL-safe. */
void def_decls_free(input_decl_t *decls, int n)
{
    for (int i = 0; i < n; i++) {
        free(decls[i].name);
        json_decref(decls[i].default_value);
    }
    free(decls);
}

/* The `inputs` member V of the document: name -> declaration. */
void def_compile_inputs(vctx_t *c, const json_t *v, definition_t *def)
{
    def->has_inputs = true;
    def_compile_decls(c, "inputs", v, "input", &def->inputs, &def->n_inputs);
}

/* Append {"field", "message"} to *ERRORS, made on the first problem (most calls have none). */
static void input_error(json_t **errors, const char *field, const char *message)
{
    if (!*errors)
        *errors = json_array();
    json_array_append_new(*errors, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* Bind PAYLOAD (borrowed, may be NULL) to the N declarations DECLS: what
 * definition_bind_inputs, connector_bind_input and connector_bind_config share.
 *
 * DECLARED false (no declarations at all): a deep copy of an object payload, else {}.
 * Otherwise only declared names are bound, each a deep copy (defaults too); a null value
 * counts as absent. STRICT (a connection's config) also refuses a payload that is neither an
 * object nor null and every undeclared member, since a misspelt optional setting would
 * otherwise vanish without a word; without it a payload that is not an object binds as {} so
 * that only the required names fail, and undeclared members are ignored (an integration
 * still sees them in input.payload). NOUN ("input", "config field") names one in the
 * message. Returns the bound object (owned), or NULL with ERR = BR_EINPUT_INVALID and detail
 * {"errors": [{"field", "message"}]} listing every problem. Any thread. */
json_t *def_bind_decls(const input_decl_t *decls, int n, bool declared, bool strict,
                       const json_t *payload, const char *noun, err_t *err)
{
    if (!declared)
        return json_is_object(payload) ? jsonx_copy(payload) : json_object();

    json_t *vars = json_object();
    json_t *errors = NULL;
    if (strict && payload && !json_is_object(payload) && !json_is_null(payload)) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an object, got %s", jsonx_type_name(payload));
        input_error(&errors, "", msg);
    }
    for (int i = 0; i < n; i++) {
        const input_decl_t *d = &decls[i];
        json_t *v = json_is_object(payload) ? json_object_get(payload, d->name) : NULL;
        if (!v || json_is_null(v)) {
            if (d->default_value)
                json_object_set_new_nocheck(vars, d->name, jsonx_copy(d->default_value));
            else if (d->required)
                input_error(&errors, d->name, "is required");
            continue;
        }
        if (!type_matches(d->type, v)) {
            char msg[96];
            snprintf(msg, sizeof msg, "must be %s, got %s", vt_names[d->type], jsonx_type_name(v));
            input_error(&errors, d->name, msg);
            continue;
        }
        json_object_set_new_nocheck(vars, d->name, jsonx_copy(v)); /* names are identifiers */
    }
    if (strict && json_is_object(payload)) {
        const char *key;
        json_t *ignored;
        json_object_foreach((json_t *)payload, key, ignored)
        {
            if (!find_decl(decls, n, key))
                input_error(&errors, key, "is not declared");
        }
    }
    size_t nerr = json_array_size(errors);
    if (nerr == 0) {
        json_decref(errors);
        return vars;
    }
    json_decref(vars);
    err_set_detail(err, BR_EINPUT_INVALID, json_pack("{s:o}", "errors", errors),
                   nerr == 1 ? "%zu %s is invalid" : "%zu %ss are invalid", nerr, noun);
    return NULL;
}

/* Check PAYLOAD (borrowed, may be NULL) against DEF's declared inputs and build a run's
 * initial vars (see definition.h and def_bind_decls). Returns the vars (owned), or NULL with
 * ERR = BR_EINPUT_INVALID and detail {"errors": [{"field", "message"}]} listing every bad
 * input. Any thread. */
json_t *definition_bind_inputs(const definition_t *def, const json_t *payload, err_t *err)
{
    return def_bind_decls(def->inputs, def->n_inputs, def->has_inputs, false, payload, "input",
                          err);
}

/* Problems of mapping MAPPED (borrowed; an array of input names) onto the N declarations
 * DECLS: [{"name", "declared": false}] for each name not declared, then
 * [{"name", "declared": true}] for each required input (without a default) not mapped.
 * Returns the array (owned), empty when the mapping fits. Any thread. */
json_t *def_mapping_check(const input_decl_t *decls, int n, const json_t *mapped)
{
    json_t *out = json_array();
    /* Sets of names on both sides keep this linear in the sizes of both lists. */
    json_t *declared = json_object(), *given = json_object();
    for (int k = 0; k < n; k++)
        json_object_set_new(declared, decls[k].name, json_true());
    size_t i;
    json_t *name;
    json_array_foreach(mapped, i, name)
    {
        const char *s = json_string_value(name);
        if (!s || def_seen(given, s))
            continue;
        if (!json_object_get(declared, s))
            json_array_append_new(out, json_pack("{s:s, s:b}", "name", s, "declared", 0));
    }
    for (int k = 0; k < n; k++) {
        const input_decl_t *d = &decls[k];
        if (d->required && !d->default_value && !json_object_get(given, d->name))
            json_array_append_new(out, json_pack("{s:s, s:b}", "name", d->name, "declared", 1));
    }
    json_decref(declared);
    json_decref(given);
    return out;
}

/* Problems of a caller's `input` mapping: MAPPED (borrowed; an array of input names)
 * against DEF's declarations. Returns an array of messages (owned), empty when it fits or
 * when DEF declares no inputs. Any thread. */
json_t *definition_mapping_problems(const definition_t *def, const json_t *mapped)
{
    json_t *out = json_array();
    if (!def->has_inputs)
        return out;
    json_t *problems = def_mapping_check(def->inputs, def->n_inputs, mapped);
    size_t i;
    json_t *p;
    json_array_foreach(problems, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (json_is_true(json_object_get(p, "declared")))
            json_array_append_new(out, json_sprintf("required input '%s' is not mapped", name));
        else
            json_array_append_new(out, json_sprintf("input '%s' is not declared by %s", name,
                                                    def->name ? def->name : "the target"));
    }
    json_decref(problems);
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
