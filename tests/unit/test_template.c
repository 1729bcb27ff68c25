/* test_template.c - unit tests of the template module (src/core/template*.c).
 *
 * Besides the cases below, test_template_cases runs every case of tests/cases/templates.txt
 * (the format is described at the top of that file), found under $BRAID_SOURCE_DIR, which
 * CTest sets, or under the current directory.
 */
#include "core/err.h"
#include "core/template.h"

#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v)
        fail_msg("bad JSON in test: %s: %s", text, je.text);
    return v;
}

/* Point SC's roots at the members of OBJ (borrowed). */
static void scope_from(const json_t *obj, tmpl_scope_t *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->vars = json_object_get(obj, "vars");
    sc->input = json_object_get(obj, "input");
    sc->tasks = json_object_get(obj, "tasks");
    sc->run = json_object_get(obj, "run");
    sc->item = json_object_get(obj, "item");
    sc->index = json_object_get(obj, "index");
    sc->conn = json_object_get(obj, "conn");
    sc->secret = json_object_get(obj, "secret");
    json_t *max = json_object_get(obj, "max_output");
    if (json_is_integer(max))
        sc->max_output = (size_t)json_integer_value(max);
}

/* Compile TMPL (JSON text) with the default roots and render it in SCOPE (JSON text). */
static json_t *render(const char *tmpl, const char *scope, err_t *err)
{
    json_t *src = parse(tmpl), *sobj = parse(scope);
    template_t *t = NULL;
    int rc = template_compile(src, TMPL_ROOTS_DEFAULT, &t, err);
    assert_int_equal(rc, 0);
    tmpl_scope_t sc;
    scope_from(sobj, &sc);
    json_t *out = template_render(t, &sc, err);
    template_free(t);
    json_decref(src);
    json_decref(sobj);
    return out;
}

static void assert_json_equal(const json_t *got, const char *want)
{
    json_t *w = parse(want);
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!json_equal((json_t *)got, w))
        fail_msg("got %s, want %s", g ? g : "NULL", want);
    free(g);
    json_decref(w);
}

/* ---- the table of cases ---- */

static unsigned roots_named(const json_t *names)
{
    static const char *const all[] = {"vars", "input", "tasks", "run",
                                      "item", "index", "conn",  "secret"};
    unsigned mask = 0;
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        for (unsigned k = 0; k < 8; k++)
            if (json_is_string(name) && strcmp(json_string_value(name), all[k]) == 0)
                mask |= 1u << k;
    }
    return mask;
}

static int case_failed(const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int case_failed(const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", path, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* Run the case whose three lines are L (template, scope, expectation) starting at LINE.
 * Returns 0 when it passes, 1 (after saying why on stderr) when it fails. */
static int run_case(const char *path, int line, char *const l[3])
{
    json_error_t je;
    json_t *src = json_loads(l[0], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    json_t *sobj = json_loads(l[1], 0, &je);
    if (!src || !json_is_object(sobj)) {
        json_decref(src);
        json_decref(sobj);
        return case_failed(path, line, "malformed case: template or scope is not JSON");
    }
    json_t *roots = json_object_get(sobj, "roots");
    unsigned mask = roots ? roots_named(roots) : TMPL_ROOTS_DEFAULT;
    tmpl_scope_t sc;
    scope_from(sobj, &sc);

    const char *want = l[2];
    bool want_compile_error = strncmp(want, "compile-error: ", 15) == 0;
    bool want_error = strncmp(want, "error: ", 7) == 0;
    err_t err = {0};
    template_t *t = NULL;
    json_t *got = NULL, *again = NULL, *expected = NULL;
    int failed = 0;

    int rc = template_compile(src, mask, &t, &err);
    if (want_compile_error) {
        if (rc != BR_EINVALID_DEFINITION)
            failed = case_failed(path, line, "compiled, want compile error '%s'", want + 15);
        else if (!strstr(err.msg, want + 15))
            failed = case_failed(path, line, "compile error '%s', want '%s'", err.msg, want + 15);
        else if (!json_is_string(json_object_get(err.detail, "pointer")) ||
                 !json_is_integer(json_object_get(err.detail, "position")))
            failed = case_failed(path, line, "compile error without pointer and position");
        goto out;
    }
    if (rc != 0) {
        failed = case_failed(path, line, "compile error: %s", err.msg);
        goto out;
    }
    got = template_render(t, &sc, &err);
    if (want_error) {
        if (got) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
            failed = case_failed(path, line, "rendered %s, want error '%s'", g, want + 7);
            free(g);
        } else if (err.code != BR_EEXPRESSION_ERROR || !strstr(err.msg, want + 7)) {
            failed = case_failed(path, line, "error %d '%s', want expression_error '%s'", err.code,
                                 err.msg, want + 7);
        }
        goto out;
    }
    expected = json_loads(want, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!expected) {
        failed = case_failed(path, line, "malformed case: expectation is not JSON");
        goto out;
    }
    if (!got) {
        failed = case_failed(path, line, "render failed: %s", err.msg);
        goto out;
    }
    if (!json_equal(got, expected)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        failed = case_failed(path, line, "rendered %s, want %s", g, want);
        free(g);
        goto out;
    }
    /* Rendering leaves the template as it was. */
    again = template_render(t, &sc, &err);
    if (!again || !json_equal(again, expected))
        failed = case_failed(path, line, "a second render differs");
out:
    json_decref(again);
    json_decref(expected);
    json_decref(got);
    template_free(t);
    err_clear(&err);
    json_decref(src);
    json_decref(sobj);
    return failed;
}

static void test_template_cases(void **state)
{
    (void)state;
    const char *dir = getenv("BRAID_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/cases/templates.txt", dir && *dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (set BRAID_SOURCE_DIR to the source tree)", path);

    char *lines[3] = {NULL, NULL, NULL};
    int nlines = 0, first = 0, lineno = 0, cases = 0, failures = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool done = false;
    while (!done) {
        len = getline(&line, &cap, f);
        done = len < 0;
        if (!done) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (line[0] == '#')
                continue;
            if (len > 0) {
                if (nlines == 3) {
                    failures += case_failed(path, lineno, "a case has more than three lines");
                } else {
                    if (nlines == 0)
                        first = lineno;
                    lines[nlines++] = strdup(line);
                }
                continue;
            }
        }
        if (nlines == 0)
            continue;
        if (nlines == 3) {
            cases++;
            failures += run_case(path, first, lines);
        } else {
            failures += case_failed(path, first, "a case needs three lines, this has %d", nlines);
        }
        for (int i = 0; i < nlines; i++)
            free(lines[i]);
        nlines = 0;
    }
    free(line);
    fclose(f);
    fprintf(stderr, "%d template cases, %d failed\n", cases, failures);
    assert_int_equal(failures, 0);
    assert_in_range(cases, 150, 100000);
}

/* ---- behaviour ---- */

static void test_template_whole_expression_keeps_type(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *out =
        render("{\"n\": \"{{vars.n}}\", \"s\": \"{{ vars.n }}!\", \"b\": \"{{vars.n > 1}}\"}",
               "{\"vars\": {\"n\": 3}}", &err);
    assert_non_null(out);
    assert_json_equal(out, "{\"n\": 3, \"s\": \"3!\", \"b\": true}");
    json_decref(out);
}

static void test_template_render_result_is_never_shared(void **state)
{
    (void)state;
    json_t *src = parse("[\"{{vars.o}}\", \"{{vars.o.list}}\", {\"k\": [1, 2]}]");
    json_t *vars = parse("{\"o\": {\"list\": [1, 2], \"s\": \"x\"}}");
    tmpl_scope_t sc = {.vars = vars};
    template_t *t = NULL;
    assert_int_equal(template_compile(src, TMPL_ROOTS_DEFAULT, &t, NULL), 0);

    json_t *out = template_render(t, &sc, NULL);
    assert_non_null(out);
    assert_ptr_not_equal(json_array_get(out, 0), json_object_get(vars, "o"));
    /* Change every part of the result; neither the scope nor the template may notice. */
    json_object_set_new(json_array_get(out, 0), "added", json_true());
    json_array_append_new(json_array_get(out, 1), json_integer(3));
    json_array_clear(json_object_get(json_array_get(out, 2), "k"));
    json_decref(out);

    assert_json_equal(vars, "{\"o\": {\"list\": [1, 2], \"s\": \"x\"}}");
    out = template_render(t, &sc, NULL);
    assert_json_equal(out, "[{\"list\": [1, 2], \"s\": \"x\"}, [1, 2], {\"k\": [1, 2]}]");
    json_decref(out);
    template_free(t);
    json_decref(src);
    json_decref(vars);
}

static void test_template_source_is_a_private_copy(void **state)
{
    (void)state;
    json_t *src = parse("{\"a\": \"{{vars.x}}\", \"b\": [1]}");
    template_t *t = NULL;
    assert_int_equal(template_compile(src, TMPL_ROOTS_DEFAULT, &t, NULL), 0);
    json_object_set_new(src, "a", json_string("changed"));
    json_decref(src);

    assert_json_equal(template_source(t), "{\"a\": \"{{vars.x}}\", \"b\": [1]}");
    json_t *vars = parse("{\"x\": 7}");
    tmpl_scope_t sc = {.vars = vars};
    json_t *out = template_render(t, &sc, NULL);
    assert_json_equal(out, "{\"a\": 7, \"b\": [1]}");
    json_decref(out);
    json_decref(vars);
    template_free(t);
}

static bool constant(const char *tmpl)
{
    json_t *src = parse(tmpl);
    template_t *t = NULL;
    assert_int_equal(template_compile(src, TMPL_ROOTS_DEFAULT, &t, NULL), 0);
    bool c = template_is_constant(t);
    template_free(t);
    json_decref(src);
    return c;
}

static void test_template_is_constant(void **state)
{
    (void)state;
    assert_true(constant("{\"a\": [1, \"x\", null, {\"b\": \"{ not {an} expression }\"}]}"));
    assert_true(constant("\"plain\""));
    assert_true(constant("17"));
    assert_false(constant("\"{{vars.a}}\""));
    assert_false(constant("[1, {\"b\": \"x {{1}}\"}]"));
    /* Folded to a constant, but rendering does not copy the source. */
    assert_false(constant("\"{{1 + 1}}\""));
    /* No expression, but \{{ renders as {{, so the source is not what rendering yields. */
    assert_false(constant("\"\\\\{{x}}\""));
}

static void test_template_constant_renders_a_fresh_copy(void **state)
{
    (void)state;
    json_t *src = parse("{\"a\": [1, {\"b\": \"\\\\{{x}}\"}]}");
    template_t *t = NULL;
    assert_int_equal(template_compile(src, TMPL_ROOTS_DEFAULT, &t, NULL), 0);
    json_t *out = template_render(t, NULL, NULL);
    assert_json_equal(out, "{\"a\": [1, {\"b\": \"{{x}}\"}]}");
    json_array_clear(json_object_get(out, "a"));
    json_decref(out);
    out = template_render(t, NULL, NULL);
    assert_json_equal(out, "{\"a\": [1, {\"b\": \"{{x}}\"}]}");
    json_decref(out);
    template_free(t);
    json_decref(src);
}

static void test_template_roots_used(void **state)
{
    (void)state;
    json_t *src = parse("{\"a\": \"{{vars.x + input.y}}\", \"b\": [\"{{item[index]}}\"], "
                        "\"c\": \"{{secret.k | default:1}}\"}");
    template_t *t = NULL;
    assert_int_equal(template_compile(src, TMPL_ROOTS_REQUEST, &t, NULL), 0);
    assert_int_equal(template_roots_used(t),
                     TMPL_VARS | TMPL_INPUT | TMPL_ITEM | TMPL_INDEX | TMPL_SECRET);
    template_free(t);
    json_decref(src);
}

/* Collects template_root_refs calls as "pointer=key" lines ("pointer=*" for no key). */
static void collect_ref(void *ctx, const char *pointer, const char *key, size_t len)
{
    json_t *out = ctx;
    char line[256];
    if (key)
        snprintf(line, sizeof line, "%s=%.*s", pointer, (int)len, key);
    else
        snprintf(line, sizeof line, "%s=*", pointer);
    json_array_append_new(out, json_string(line));
}

static void expect_refs(const char *tmpl, unsigned root, const char *want)
{
    json_t *src = parse(tmpl);
    template_t *t = NULL;
    assert_int_equal(template_compile(src, TMPL_ROOTS_REQUEST, &t, NULL), 0);
    json_t *got = json_array();
    template_root_refs(t, root, collect_ref, got);
    json_t *w = parse(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_COMPACT);
        fail_msg("%s: refs %s, wanted %s", tmpl, g, want);
    }
    json_decref(w);
    json_decref(got);
    template_free(t);
    json_decref(src);
}

static void test_template_root_refs(void **state)
{
    (void)state;
    /* every string that reads the root, with its pointer, in source order */
    expect_refs("{\"a\": \"{{secret.k}}\", \"b\": [1, \"x {{secret.j}} {{vars.v}}\"], "
                "\"c/d\": {\"e~\": \"{{secret['q.r'] | base64}}\"}}",
                TMPL_SECRET, "[\"/a=k\", \"/b/1=j\", \"/c~1d/e~0=q.r\"]");
    /* the root whole, an index, a computed member: no key */
    expect_refs("\"{{secret}} {{secret[0]}} {{secret[vars.k]}}\"", TMPL_SECRET,
                "[\"=*\", \"=*\", \"=*\"]");
    /* paths inside operators, filters, conditions and computed segments */
    expect_refs("\"{{vars[conn.a] + (conn.b | default:1) == (vars.x ? conn.c : !conn.d)}}\"",
                TMPL_CONN, "[\"=a\", \"=b\", \"=c\", \"=d\"]");
    /* other roots, constants and escapes report nothing */
    expect_refs("{\"a\": \"{{vars.secret}}\", \"b\": \"\\\\{{secret.x}}\", \"c\": 1}", TMPL_SECRET,
                "[]");
    expect_refs("\"{{input.id}}\"", TMPL_INPUT, "[\"=id\"]");
    /* a mask of more than one root asks for nothing */
    expect_refs("\"{{secret.k}}\"", TMPL_SECRET | TMPL_CONN, "[]");
}

static void test_template_compile_error_names_expression_and_place(void **state)
{
    (void)state;
    json_t *src = parse("{\"a/b\": [0, {\"c~\": \"x {{vars.a +}} y\"}]}");
    template_t *t = NULL;
    err_t err = {0};
    assert_int_equal(template_compile(src, TMPL_ROOTS_DEFAULT, &t, &err), BR_EINVALID_DEFINITION);
    assert_null(t);
    assert_int_equal(err.code, BR_EINVALID_DEFINITION);
    assert_string_equal(err.msg, "\"{{vars.a +}}\": expected an operand at offset 12");
    assert_string_equal(json_string_value(json_object_get(err.detail, "pointer")), "/a~1b/1/c~0");
    assert_int_equal(json_integer_value(json_object_get(err.detail, "position")), 12);
    err_clear(&err);
    json_decref(src);
}

static void test_template_compile_error_at_top_level(void **state)
{
    (void)state;
    template_t *t = NULL;
    err_t err = {0};
    assert_int_equal(template_compile_string("ok {{ secret.token }}", TMPL_ROOTS_DEFAULT, &t, &err),
                     BR_EINVALID_DEFINITION);
    assert_string_equal(err.msg,
                        "\"{{ secret.token }}\": root 'secret' is not allowed here at offset 6");
    assert_string_equal(json_string_value(json_object_get(err.detail, "pointer")), "");
    assert_int_equal(json_integer_value(json_object_get(err.detail, "position")), 6);

    assert_int_equal(template_compile_string("a {{vars.x", TMPL_ROOTS_DEFAULT, &t, &err),
                     BR_EINVALID_DEFINITION);
    assert_string_equal(err.msg, "\"{{vars.x\": unterminated '{{' (no closing '}}') at offset 2");
    err_clear(&err);
}

static void test_template_render_error_names_expression(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *out = render("\"total: {{vars.a + 1}}\"", "{\"vars\": {\"a\": \"x\"}}", &err);
    assert_null(out);
    assert_int_equal(err.code, BR_EEXPRESSION_ERROR);
    assert_string_equal(err.msg, "{{vars.a + 1}}: cannot add string and integer");
    err_clear(&err);

    out = render("{\"k\": [\"{{vars.n / vars.z}}\"]}", "{\"vars\": {\"n\": 1, \"z\": 0}}", &err);
    assert_null(out);
    assert_string_equal(err.msg, "{{vars.n / vars.z}}: division by zero");
    err_clear(&err);

    /* A NULL err is allowed. */
    assert_null(render("\"{{vars.n % 0}}\"", "{\"vars\": {\"n\": 1}}", NULL));
}

static void test_template_compile_string(void **state)
{
    (void)state;
    template_t *t = NULL;
    err_t err = {0};
    assert_int_equal(template_compile_string("{{index * 2}}", TMPL_ROOTS_DEFAULT, &t, &err), 0);
    assert_true(json_is_string(template_source(t)));
    json_t *index = json_integer(21);
    tmpl_scope_t sc = {.index = index};
    json_t *out = template_render(t, &sc, &err);
    assert_int_equal(json_integer_value(out), 42);
    json_decref(out);
    json_decref(index);
    template_free(t);

    assert_int_equal(template_compile_string("\xff{{1}}", TMPL_ROOTS_DEFAULT, &t, &err),
                     BR_EINVALID_DEFINITION);
    assert_null(t);
    err_clear(&err);
}

static void test_template_null_scope_reads_null(void **state)
{
    (void)state;
    template_t *t = NULL;
    assert_int_equal(
        template_compile_string("[{{vars.a}}|{{item | default:'-'}}|{{index == null}}]",
                                TMPL_ROOTS_DEFAULT, &t, NULL),
        0);
    json_t *out = template_render(t, NULL, NULL);
    assert_string_equal(json_string_value(out), "[|-|true]");
    json_decref(out);
    template_free(t);
    template_free(NULL);
}

static void test_template_values_equal(void **state)
{
    (void)state;
    json_t *a = parse("{\"x\": [1, 2.0, \"s\", null, {\"y\": true}], \"z\": 3}");
    json_t *b = parse("{\"z\": 3.0, \"x\": [1.0, 2, \"s\", null, {\"y\": true}]}");
    json_t *c = parse("{\"z\": 3, \"x\": [1, 2, \"s\", null, {\"y\": false}]}");
    assert_true(template_values_equal(a, b));
    assert_false(template_values_equal(a, c));
    json_t *big = json_integer(9007199254740993LL), *near = json_real(9007199254740992.0);
    assert_false(template_values_equal(big, near));
    assert_true(template_values_equal(NULL, json_null()));
    json_t *s1 = json_stringn("a\0b", 3), *s2 = json_stringn("a\0c", 3);
    assert_false(template_values_equal(s1, s2));
    json_decref(s1);
    json_decref(s2);
    json_decref(big);
    json_decref(near);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_template_truthy(void **state)
{
    (void)state;
    const char *falsy[] = {"false", "null", "0", "0.0", "\"\"", "-0.0"};
    const char *truthy[] = {"true", "1", "-1", "0.5", "\"0\"", "\"false\"", "[]", "{}"};
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++) {
        json_t *v = parse(falsy[i]);
        assert_false(template_truthy(v));
        json_decref(v);
    }
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++) {
        json_t *v = parse(truthy[i]);
        assert_true(template_truthy(v));
        json_decref(v);
    }
    assert_false(template_truthy(NULL));
}

static void test_template_default_output_limit_is_one_mib(void **state)
{
    (void)state;
    size_t half = 600 * 1024;
    char *s = malloc(half + 1);
    memset(s, 'a', half);
    s[half] = '\0';
    json_t *vars = json_pack("{s:s}", "s", s);
    free(s);
    /* base64 makes 4 bytes of 3: 800 KiB become more than 1 MiB. */
    s = malloc(800 * 1024 + 1);
    memset(s, 'b', 800 * 1024);
    s[800 * 1024] = '\0';
    json_object_set_new(vars, "t", json_string(s));
    free(s);
    tmpl_scope_t sc = {.vars = vars};
    err_t err = {0};
    template_t *t = NULL;

    assert_int_equal(template_compile_string("{{vars.s + vars.s}}", TMPL_ROOTS_DEFAULT, &t, &err),
                     0);
    assert_null(template_render(t, &sc, &err));
    assert_string_equal(err.msg,
                        "{{vars.s + vars.s}}: the rendered text is longer than 1048576 bytes");
    template_free(t);

    assert_int_equal(template_compile_string("{{vars.s}}{{vars.s}}", TMPL_ROOTS_DEFAULT, &t, &err),
                     0);
    assert_null(template_render(t, &sc, &err));
    template_free(t);

    assert_int_equal(template_compile_string("x{{vars.s}}", TMPL_ROOTS_DEFAULT, &t, &err), 0);
    json_t *out = template_render(t, &sc, &err);
    assert_int_equal(json_string_length(out), half + 1);
    json_decref(out);
    template_free(t);

    assert_int_equal(template_compile_string("{{vars.t | base64}}", TMPL_ROOTS_DEFAULT, &t, &err),
                     0);
    assert_null(template_render(t, &sc, &err));
    template_free(t);
    err_clear(&err);
    json_decref(vars);
}

/* A string of N copies of A, then MID, then N copies of B. */
static char *repeat(const char *a, int n, const char *mid, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
    char *s = malloc((la + lb) * (size_t)n + lm + 1), *w = s;
    for (int i = 0; i < n; i++, w += la)
        memcpy(w, a, la);
    memcpy(w, mid, lm);
    w += lm;
    for (int i = 0; i < n; i++, w += lb)
        memcpy(w, b, lb);
    *w = '\0';
    return s;
}

/* Compile "{{" N*A MID N*B "}}" and return the code. */
static int compile_nested(const char *a, int n, const char *mid, const char *b, err_t *err)
{
    char *inner = repeat(a, n, mid, b);
    char *text = malloc(strlen(inner) + 5);
    sprintf(text, "{{%s}}", inner);
    template_t *t = NULL;
    int rc = template_compile_string(text, TMPL_ROOTS_DEFAULT, &t, err);
    template_free(t);
    free(text);
    free(inner);
    return rc;
}

static void test_template_nesting_is_bounded(void **state)
{
    (void)state;
    err_t err = {0};
    assert_int_equal(compile_nested("(", 64, "1", ")", &err), 0);
    assert_int_equal(compile_nested("(", 65, "1", ")", &err), BR_EINVALID_DEFINITION);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    assert_int_equal(compile_nested("!", 64, "true", "", &err), 0);
    assert_int_equal(compile_nested("vars[", 64, "0", "]", &err), 0);

    /* Hostile: far past the limit, and never closed. */
    assert_int_equal(compile_nested("(", 100000, "", "", &err), BR_EINVALID_DEFINITION);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    assert_int_equal(compile_nested("vars[", 100000, "1", "]", &err), BR_EINVALID_DEFINITION);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    assert_int_equal(compile_nested("-", 100000, "1", "", &err), BR_EINVALID_DEFINITION);
    assert_int_equal(compile_nested("1 ? 1 : ", 100000, "1", "", &err), BR_EINVALID_DEFINITION);
    assert_int_equal(compile_nested("1 ? ", 100000, "1", " : 1", &err), BR_EINVALID_DEFINITION);

    /* A long flat chain is deep as a tree, so its height is bounded too. */
    assert_int_equal(compile_nested("vars.a + ", 200, "1", "", &err), 0);
    assert_int_equal(compile_nested("vars.a + ", 100000, "1", "", &err), BR_EINVALID_DEFINITION);
    assert_non_null(strstr(err.msg, "too complex"));
    assert_int_equal(compile_nested("", 100000, "vars.a", " | json", &err), BR_EINVALID_DEFINITION);
    err_clear(&err);
}

static void test_template_keys_may_hold_nul(void **state)
{
    (void)state;
    json_t *vars = json_object();
    json_object_setn_new(vars, "a\0b", 3, json_integer(5));
    json_object_set_new(vars, "a", json_integer(1));
    tmpl_scope_t sc = {.vars = vars};
    template_t *t = NULL;
    assert_int_equal(template_compile_string("{{vars[\"a\\u0000b\"]}} {{vars | length}}",
                                             TMPL_ROOTS_DEFAULT, &t, NULL),
                     0);
    json_t *out = template_render(t, &sc, NULL);
    assert_string_equal(json_string_value(out), "5 2");
    json_decref(out);
    template_free(t);
    json_decref(vars);
}

static void test_template_messages_cut_long_expressions_at_characters(void **state)
{
    (void)state;
    /* 'é' is two bytes: an odd cut would split one, and jansson rejects such a message. */
    char *body = repeat("é", 300, "", "");
    char *src = malloc(strlen(body) + 32);
    sprintf(src, "{{'%s' +}}", body);
    err_t err = {0};
    template_t *t = NULL;
    assert_int_equal(template_compile_string(src, TMPL_ROOTS_DEFAULT, &t, &err),
                     BR_EINVALID_DEFINITION);
    assert_non_null(strstr(err.msg, "...\": expected an operand"));
    json_t *msg = json_string(err.msg);
    assert_non_null(msg);
    json_decref(msg);

    sprintf(src, "{{'%s' + 1}}", body);
    assert_int_equal(template_compile_string(src, TMPL_ROOTS_DEFAULT, &t, &err), 0);
    assert_null(template_render(t, NULL, &err));
    assert_non_null(strstr(err.msg, "...: cannot add string and integer"));
    msg = json_string(err.msg);
    assert_non_null(msg);
    json_decref(msg);
    template_free(t);
    err_clear(&err);
    free(src);
    free(body);
}

typedef struct shared {
    const template_t *t;
    const tmpl_scope_t *sc;
    int failures;
} shared_t;

static void *render_many(void *arg)
{
    shared_t *sh = arg;
    for (int i = 0; i < 2000; i++) {
        json_t *out = template_render(sh->t, sh->sc, NULL);
        json_t *want = json_pack("{s:i, s:s, s:[i, s]}", "x", 2, "y", "id-2!", "z", 1, "k");
        if (!out || !json_equal(out, want))
            sh->failures++;
        json_decref(out);
        json_decref(want);
    }
    return NULL;
}

static void test_template_renders_concurrently(void **state)
{
    (void)state;
    json_t *src = parse("{\"x\": \"{{item}}\", \"y\": \"id-{{item}}{{'!'}}\", \"z\": [1, \"k\"]}");
    template_t *t = NULL;
    assert_int_equal(template_compile(src, TMPL_ROOTS_DEFAULT, &t, NULL), 0);
    json_t *item = json_integer(2);
    tmpl_scope_t sc = {.item = item};
    shared_t sh[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        sh[i] = (shared_t){t, &sc, 0};
        assert_int_equal(pthread_create(&th[i], NULL, render_many, &sh[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(sh[i].failures, 0);
    }
    json_decref(item);
    template_free(t);
    json_decref(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_cases),
        cmocka_unit_test(test_template_whole_expression_keeps_type),
        cmocka_unit_test(test_template_render_result_is_never_shared),
        cmocka_unit_test(test_template_source_is_a_private_copy),
        cmocka_unit_test(test_template_is_constant),
        cmocka_unit_test(test_template_constant_renders_a_fresh_copy),
        cmocka_unit_test(test_template_roots_used),
        cmocka_unit_test(test_template_root_refs),
        cmocka_unit_test(test_template_compile_error_names_expression_and_place),
        cmocka_unit_test(test_template_compile_error_at_top_level),
        cmocka_unit_test(test_template_render_error_names_expression),
        cmocka_unit_test(test_template_compile_string),
        cmocka_unit_test(test_template_null_scope_reads_null),
        cmocka_unit_test(test_template_values_equal),
        cmocka_unit_test(test_template_truthy),
        cmocka_unit_test(test_template_default_output_limit_is_one_mib),
        cmocka_unit_test(test_template_nesting_is_bounded),
        cmocka_unit_test(test_template_keys_may_hold_nul),
        cmocka_unit_test(test_template_messages_cut_long_expressions_at_characters),
        cmocka_unit_test(test_template_renders_concurrently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
