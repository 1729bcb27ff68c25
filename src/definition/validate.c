/* validate.c - the checking vocabulary of a document walk: where we are (a JSON Pointer),
 * reporting a problem there, reading typed members, names, templates, task targets, retry
 * policies.
 *
 * Every reader reports what is wrong and returns whether the member is usable, so callers
 * never stop at the first problem: they keep the defaults and walk on.
 */
#include "definition/internal.h"

#include "core/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the pointer in hand ---------------------------------------------------------------- */

/* Append TOKEN to B with RFC 6901 escaping: '~' becomes "~0" and '/' becomes "~1". */
static void ptr_escape(buf_t *b, const char *token)
{
    for (const char *p = token; *p; p++) {
        if (*p == '~')
            buf_puts(b, "~0");
        else if (*p == '/')
            buf_puts(b, "~1");
        else
            buf_putc(b, *p);
    }
}

/* Descend into member KEY (borrowed). Returns the mark to give def_ptr_pop. */
size_t def_ptr_push(vctx_t *c, const char *key)
{
    size_t mark = c->ptr.len;
    buf_putc(&c->ptr, '/');
    ptr_escape(&c->ptr, key);
    return mark;
}

/* Descend into array element I. Returns the mark to give def_ptr_pop. */
size_t def_ptr_push_index(vctx_t *c, size_t i)
{
    size_t mark = c->ptr.len;
    buf_printf(&c->ptr, "/%zu", i);
    return mark;
}

/* Climb back to MARK, as returned by the matching push. */
void def_ptr_pop(vctx_t *c, size_t mark)
{
    c->ptr.len = mark;
    if (c->ptr.data)
        c->ptr.data[mark] = '\0';
}

/* The pointer in hand (borrowed, valid until the next push or pop). */
static const char *ptr_now(const vctx_t *c)
{
    return c->ptr.data ? c->ptr.data : "";
}

/* ---- reporting ------------------------------------------------------------------------- */

int def_problem_count(const vctx_t *c)
{
    return c->diags->n - c->first_diag;
}

static void vreport(vctx_t *c, const char *key, bool at_key, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void vreport(vctx_t *c, const char *key, bool at_key, const char *fmt, va_list ap)
{
    int n = def_problem_count(c);
    if (n > DIAG_MAX)
        return;
    if (n == DIAG_MAX) {
        diags_add(c->diags, "", "too many problems: only the first %d are reported", DIAG_MAX);
        return;
    }
    size_t mark = key ? def_ptr_push(c, key) : c->ptr.len;
    diag_t *g = diags_vadd(c->diags, ptr_now(c), fmt, ap);
    g->at_key = at_key;
    def_ptr_pop(c, mark);
}

/* Report a problem with member KEY of the value in hand (KEY NULL: the value itself). */
void def_problem(vctx_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, key, false, fmt, ap);
    va_end(ap);
}

/* Report a problem with member KEY whose place in the text is the key itself (an unknown
 * field: its value is not the mistake). */
void def_problem_key(vctx_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, key, true, fmt, ap);
    va_end(ap);
}

/* Whether S is a valid WHAT by VALID; reports otherwise "invalid WHAT 'S': RULE" (S cut at
 * 200 bytes) at member KEY of the value in hand (NULL: the value itself), placed at the key
 * itself when AT_KEY (S is a member's name: the name is the mistake). */
bool def_name_ok(vctx_t *c, const char *key, bool at_key, const char *s,
                 bool (*valid)(const char *), const char *what, const char *rule)
{
    if (valid(s))
        return true;
    if (at_key)
        def_problem_key(c, key, "invalid %s '%.200s': %s", what, s, rule);
    else
        def_problem(c, key, "invalid %s '%.200s': %s", what, s, rule);
    return false;
}

/* Whether VALUE, member KEY of the document, equals HINT (NULL: anything does), the KEY the
 * document is published under; reports otherwise, HINT cut at HINT_CUT bytes. */
bool def_hint_ok(vctx_t *c, const char *key, const char *value, const char *hint, int hint_cut)
{
    if (!hint || strcmp(value, hint) == 0)
        return true;
    def_problem(c, key, "%s '%s' does not match '%.*s', the %s this document is published under",
                key, value, hint_cut, hint, key);
    return false;
}

/* ---- typed members --------------------------------------------------------------------- */

/* Report every member of OBJ whose name is not in ALLOWED (NULL-terminated): a typo must not
 * pass silently as an ignored field. */
void def_check_fields(vctx_t *c, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known)
            def_problem_key(c, key, "unknown field '%s'", key);
    }
}

/* Whether OBJ (the value in hand) is an object; reports otherwise "must be an object" with
 * the FIELDS (NULL-terminated) it may have, and then every member it has that FIELDS does not
 * name. */
bool def_check_object(vctx_t *c, const json_t *obj, const char *const *fields)
{
    if (!json_is_object(obj)) {
        buf_t msg = {0};
        buf_puts(&msg, "must be an object {");
        for (const char *const *f = fields; *f; f++)
            buf_printf(&msg, "%s\"%s\"", f == fields ? "" : ", ", *f);
        buf_puts(&msg, "}");
        def_problem(c, NULL, "%s", msg.data);
        buf_deinit(&msg);
        return false;
    }
    def_check_fields(c, obj, fields);
    return true;
}

/* The array ARR, member KEY of the value in hand, of unique strings. With the pointer at each
 * item, reports one that is no string (NOT_STRING) or that repeats an earlier one ("duplicate
 * DUP_NOUN 'X'"), and passes the others to VALID, which reports a bad one and returns false.
 * Returns the accepted strings (owned: a NULL-terminated array, each string owned) and their
 * number in *N. */
char **def_unique_strings(vctx_t *c, const char *key, const json_t *arr, const char *not_string,
                          bool (*valid)(vctx_t *c, const char *s), const char *dup_noun, int *n)
{
    size_t mark = def_ptr_push(c, key);
    char **out = xcalloc(json_array_size(arr) + 1, sizeof *out);
    json_t *seen = json_object();
    size_t i;
    json_t *item;
    *n = 0;
    json_array_foreach(arr, i, item)
    {
        size_t mi = def_ptr_push_index(c, i);
        const char *s = json_string_value(item);
        bool ok = s && valid(c, s); /* VALID reports a bad one */
        if (!s)
            def_problem(c, NULL, "%s", not_string);
        else if (ok && def_seen(seen, s))
            def_problem(c, NULL, "duplicate %s '%s'", dup_noun, s);
        else if (ok)
            out[(*n)++] = xstrdup(s);
        def_ptr_pop(c, mi);
    }
    json_decref(seen);
    def_ptr_pop(c, mark);
    return out;
}

/* Whether OBJ has KEY; reports it missing otherwise. */
bool def_need_field(vctx_t *c, const json_t *obj, const char *key)
{
    if (json_object_get(obj, key))
        return true;
    def_problem(c, key, "required field '%s' is missing", key);
    return false;
}

/* The string member KEY of OBJ (borrowed), or NULL when absent or not a string. */
const char *def_get_string(vctx_t *c, const json_t *obj, const char *key, bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            def_problem(c, key, "required field '%s' is missing", key);
        return NULL;
    }
    if (!json_is_string(v)) {
        def_problem(c, key, "must be a string");
        return NULL;
    }
    return json_string_value(v);
}

/* Boolean member KEY into *OUT (untouched unless it is present and a boolean). */
bool def_get_bool(vctx_t *c, const json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return false;
    if (!json_is_boolean(v)) {
        def_problem(c, key, "must be a boolean");
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* Integer member KEY in MIN..MAX into *OUT (untouched unless present and valid). Only JSON
 * integers count: 1.0 in a definition is a mistake worth pointing out. */
bool def_get_int(vctx_t *c, const json_t *obj, const char *key, int64_t min, int64_t max,
                 int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return false;
    if (!json_is_integer(v)) {
        def_problem(c, key, "must be an integer");
        return false;
    }
    int64_t n = json_integer_value(v);
    if (n < min || n > max) {
        if (max == INT64_MAX)
            def_problem(c, key, "must be at least %" PRId64, min);
        else
            def_problem(c, key, "must be between %" PRId64 " and %" PRId64, min, max);
        return false;
    }
    *out = n;
    return true;
}

/* Object member KEY (borrowed), or NULL when absent or not an object. */
const json_t *def_get_object(vctx_t *c, const json_t *obj, const char *key, bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            def_problem(c, key, "required field '%s' is missing", key);
        return NULL;
    }
    if (!json_is_object(v)) {
        def_problem(c, key, "must be an object");
        return NULL;
    }
    return v;
}

/* Required object member KEY with at least one member (borrowed), or NULL with a problem:
 * absent, not an object, or empty (EMPTY: what to say then). */
const json_t *def_get_members(vctx_t *c, const json_t *obj, const char *key, const char *empty)
{
    const json_t *v = def_get_object(c, obj, key, true);
    if (v && json_object_size(v) == 0) {
        def_problem(c, key, "%s", empty);
        return NULL;
    }
    return v;
}

/* Array member KEY (borrowed), or NULL when absent or not an array. */
const json_t *def_get_array(vctx_t *c, const json_t *obj, const char *key, bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            def_problem(c, key, "required field '%s' is missing", key);
        return NULL;
    }
    if (!json_is_array(v)) {
        def_problem(c, key, "must be an array");
        return NULL;
    }
    return v;
}

/* ---- names ----------------------------------------------------------------------------- */

static bool is_alpha_(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Lower-case name characters: [a-z0-9] first, then [a-z0-9_.-]; returns the length of the
 * longest such run at S. */
static size_t name_run(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || is_digit(*s)))
        return 0;
    size_t n = 1;
    while ((s[n] >= 'a' && s[n] <= 'z') || is_digit(s[n]) || s[n] == '_' || s[n] == '.' ||
           s[n] == '-')
        n++;
    return n;
}

/* ^[A-Za-z_][A-Za-z0-9_]*$ : task ids, input names, var names. */
bool def_is_identifier(const char *s)
{
    if (!is_alpha_(*s))
        return false;
    for (s++; *s; s++)
        if (!is_alpha_(*s) && !is_digit(*s))
            return false;
    return true;
}

/* Identifiers joined by dots ("customer.name"): var names that make nested objects, at most
 * DEF_MAX_VAR_SEGMENTS of them (a var path is not a way to build arbitrarily deep values). */
bool def_is_var_name(const char *s)
{
    for (int segments = 1; segments <= DEF_MAX_VAR_SEGMENTS; segments++) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (n == 0 || !is_alpha_(s[0]))
            return false;
        for (size_t i = 1; i < n; i++)
            if (!is_alpha_(s[i]) && !is_digit(s[i]))
                return false;
        if (!dot)
            return true;
        s = dot + 1;
    }
    return false;
}

/* ^[a-z0-9][a-z0-9_.-]*$ */
bool def_is_trigger_id(const char *s)
{
    size_t n = name_run(s);
    return n > 0 && s[n] == '\0';
}

/* What is wrong with integration name S, or NULL when it is valid:
 * ^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$, at most 128 characters, and no segment is
 * `execute` or `versions` (they would shadow routes of the HTTP API). */
const char *def_integration_name_problem(const char *s)
{
    if (strlen(s) > MAX_NAME_LEN)
        return "must be at most 128 characters";
    const char *p = s;
    for (;;) {
        size_t n = name_run(p);
        if (n == 0 || (p[n] != '\0' && p[n] != '/'))
            return "must match ^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$";
        if ((n == 7 && strncmp(p, "execute", 7) == 0) || (n == 8 && strncmp(p, "versions", 8) == 0))
            return "uses a reserved segment ('execute' and 'versions' are reserved)";
        if (p[n] == '\0')
            return NULL;
        p += n + 1;
    }
}

/* Whether PATH reads as jsonx_get_path syntax: names separated by '.', indexes "[3]" (or
 * "[-1]"), quoted keys ["a.b"]. "" (the whole value) is valid. */
bool def_path_is_valid(const char *path)
{
    const char *p = path;
    while (*p) {
        if (*p == '[') {
            p++;
            if (*p == '"') {
                for (p++; *p && *p != '"'; p++)
                    if (*p == '\\' && p[1])
                        p++;
                if (*p != '"' || p[1] != ']')
                    return false;
                p += 2;
            } else {
                if (*p == '-')
                    p++;
                if (!is_digit(*p))
                    return false;
                while (is_digit(*p))
                    p++;
                if (*p != ']')
                    return false;
                p++;
            }
        } else if (*p == '.') {
            if (p[1] == '.' || p[1] == '\0' || p == path)
                return false;
            p++;
        } else if (*p == ']' || *p == '"') {
            return false;
        } else {
            p++;
        }
    }
    return true;
}

/* Whether KEY is already in SET (a JSON object used as a hash set); adds it if not. Keeps
 * duplicate checks linear however long a list a document has. */
bool def_seen(json_t *set, const char *key)
{
    if (json_object_get(set, key))
        return true;
    json_object_set_new(set, key, json_true());
    return false;
}

/* ---- templates and targets ------------------------------------------------------------- */

static bool same_member(const err_t *a, const err_t *b, const char *key)
{
    json_t *x = json_object_get(a->detail, key), *y = json_object_get(b->detail, key);
    return (!x && !y) || json_equal(x, y);
}

/* Whether two compile errors of one template point at the same place. */
static bool same_error_place(const err_t *a, const err_t *b)
{
    return same_member(a, b, "pointer") && same_member(a, b, "position");
}

/* Report template error E at member KEY plus E's pointer relative to the template source. */
static void template_problem(vctx_t *c, const char *key, const err_t *e, const char *msg)
{
    size_t mark = key ? def_ptr_push(c, key) : c->ptr.len;
    const char *rel = json_string_value(json_object_get(e->detail, "pointer"));
    if (rel)
        buf_puts(&c->ptr, rel);
    def_problem(c, NULL, "%s", msg ? msg : e->msg);
    def_ptr_pop(c, mark);
}

/* Compile SRC (borrowed), the value of member KEY of the value in hand (KEY NULL: the value
 * itself), as a template whose expressions may read the roots in ALLOWED (a TMPL_* mask).
 * Returns it owned, or NULL after reporting.
 *
 * `conn` and `secret` belong to request fields of http and connector tasks only. When ALLOWED
 * lacks them, a failed compile is retried with them allowed, to tell a misplaced
 * {{secret.x}} from a plain syntax error: if that succeeds, or fails somewhere else, the first
 * failure was the root. */
template_t *def_compile_template_roots(vctx_t *c, const char *key, const json_t *src,
                                       unsigned allowed)
{
    template_t *t = NULL;
    err_t e1 = {0}, e2 = {0};
    if (template_compile(src, allowed, &t, &e1) == 0)
        return t;
    if ((allowed & (TMPL_CONN | TMPL_SECRET)) == (TMPL_CONN | TMPL_SECRET)) {
        template_problem(c, key, &e1, NULL);
        err_clear(&e1);
        return NULL;
    }

    if (template_compile(src, allowed | TMPL_CONN | TMPL_SECRET, &t, &e2) == 0) {
        const char *which = template_roots_used(t) & ~allowed & TMPL_SECRET ? "secret" : "conn";
        char msg[128];
        snprintf(msg, sizeof msg,
                 "{{%s.*}} may appear only in request fields of http and connector tasks", which);
        template_problem(c, key, &e1, msg);
        template_free(t);
    } else if (same_error_place(&e1, &e2)) {
        template_problem(c, key, &e1, NULL);
    } else {
        template_problem(c, key, &e1,
                         "{{secret.*}} may appear only in request fields of http and connector "
                         "tasks");
        template_problem(c, key, &e2, NULL);
    }
    err_clear(&e1);
    err_clear(&e2);
    return NULL;
}

/* Compile SRC as def_compile_template_roots does, with the default roots (no conn, no
 * secret): every template of an integration outside the request fields. */
template_t *def_compile_template(vctx_t *c, const char *key, const json_t *src)
{
    return def_compile_template_roots(c, key, src, TMPL_ROOTS_DEFAULT);
}

/* Resolve V, the value of member KEY, as a task target: a task id or "end". Sets *OUT to the
 * task's index or TASK_END; reports and returns false otherwise. */
bool def_resolve_target(vctx_t *c, const char *key, const json_t *v, int *out)
{
    if (!json_is_string(v)) {
        def_problem(c, key, "must be a task id or \"end\"");
        return false;
    }
    const char *s = json_string_value(v);
    if (strcmp(s, "end") == 0) {
        *out = TASK_END;
        return true;
    }
    json_t *idx = json_object_get(c->id_index, s);
    if (idx) {
        *out = (int)json_integer_value(idx);
        return true;
    }
    def_problem(c, key, "no task has the id '%s'", s);
    return false;
}

/* ---- retry policies -------------------------------------------------------------------- */

static const char *const default_retry_on[] = {"timeout", "network", "5xx", "429"};

/* The default policy into P (its `on` list owned by P; release with def_retry_deinit). */
void def_retry_defaults(retry_policy_t *p)
{
    p->max_attempts = 1;
    p->initial_ms = 100;
    p->multiplier = 2.0;
    p->max_ms = 30000;
    p->jitter = true;
    p->n_on = (int)(sizeof default_retry_on / sizeof default_retry_on[0]);
    p->on = xcalloc((size_t)p->n_on, sizeof *p->on);
    for (int i = 0; i < p->n_on; i++)
        p->on[i] = xstrdup(default_retry_on[i]);
}

/* Deep copy of SRC into DST (uninitialised storage). */
void def_retry_copy(retry_policy_t *dst, const retry_policy_t *src)
{
    *dst = *src;
    dst->on = src->n_on ? xcalloc((size_t)src->n_on, sizeof *dst->on) : NULL;
    for (int i = 0; i < src->n_on; i++)
        dst->on[i] = xstrdup(src->on[i]);
}

void def_retry_deinit(retry_policy_t *p)
{
    for (int i = 0; i < p->n_on; i++)
        free(p->on[i]);
    free(p->on);
    p->on = NULL;
    p->n_on = 0;
}

/* Read the retry policy V, member KEY of the value in hand, into OUT (uninitialised storage;
 * filled with the defaults for every member V leaves out, so always needs def_retry_deinit).
 * Returns whether V was valid. */
bool def_parse_retry(vctx_t *c, const char *key, const json_t *v, retry_policy_t *out)
{
    static const char *const fields[] = {"max_attempts", "initial_ms", "multiplier", "max_ms",
                                         "jitter",       "on",         NULL};
    def_retry_defaults(out);
    int before = def_problem_count(c);
    if (!json_is_object(v)) {
        def_problem(c, key, "must be an object");
        return false;
    }
    size_t mark = def_ptr_push(c, key);
    def_check_fields(c, v, fields);

    int64_t n;
    if (def_get_int(c, v, "max_attempts", 1, 100, &n))
        out->max_attempts = (int)n;
    def_get_int(c, v, "initial_ms", 0, MAX_DURATION_MS, &out->initial_ms);
    json_t *m = json_object_get(v, "multiplier");
    if (m) {
        if (!json_is_number(m))
            def_problem(c, "multiplier", "must be a number");
        else if (json_number_value(m) < 1.0)
            def_problem(c, "multiplier", "must be at least 1");
        else
            out->multiplier = json_number_value(m);
    }
    if (json_object_get(v, "max_ms")) {
        if (def_get_int(c, v, "max_ms", 0, MAX_DURATION_MS, &n)) {
            if (n < out->initial_ms)
                def_problem(c, "max_ms", "must be at least initial_ms (%" PRId64 ")",
                            out->initial_ms);
            else
                out->max_ms = n;
        }
    } else if (out->max_ms < out->initial_ms) {
        out->max_ms = out->initial_ms; /* a long first delay alone raises the default cap */
    }
    def_get_bool(c, v, "jitter", &out->jitter);

    const json_t *on = def_get_array(c, v, "on", false);
    if (on) {
        size_t i;
        json_t *item;
        json_array_foreach(on, i, item)
        {
            if (!json_is_string(item) || json_string_length(item) == 0) {
                size_t mi = def_ptr_push(c, "on");
                size_t mj = def_ptr_push_index(c, i);
                def_problem(c, NULL, "must be a non-empty string");
                def_ptr_pop(c, mj);
                def_ptr_pop(c, mi);
            }
        }
        def_retry_deinit(out);
        out->n_on = (int)json_array_size(on);
        out->on = out->n_on ? xcalloc((size_t)out->n_on, sizeof *out->on) : NULL;
        json_array_foreach(on, i, item)
        {
            out->on[i] = xstrdup(json_is_string(item) ? json_string_value(item) : "");
        }
    }
    def_ptr_pop(c, mark);
    return def_problem_count(c) == before;
}
