/* defs_helpers.h - what the unit tests of src/definition/ (test_definition.c, test_connector.c)
 * share: single-quoted documents, printing diagnostics, and checking the errors of a refused
 * binding. Header-only, included after <cmocka.h> (each tests/unit/test_*.c is its own
 * executable); the functions are static inline, so a test that uses some of them compiles
 * without unused warnings.
 */
#ifndef BRAID_TESTS_DEFS_HELPERS_H
#define BRAID_TESTS_DEFS_HELPERS_H

#include "core/err.h"
#include "core/xalloc.h"
#include "definition/definition.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* S with every ' turned into " (returned owned). */
static inline char *doc(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

/* The single-quoted JSON value S, parsed (returned owned); fails the test if it is not JSON. */
static inline json_t *jq(const char *s)
{
    char *t = doc(s);
    json_t *j = json_loads(t, JSON_DECODE_ANY, NULL);
    free(t);
    assert_non_null(j);
    return j;
}

static inline void dump_diags(const diags_t *d)
{
    for (int i = 0; i < d->n; i++)
        fprintf(stderr, "  [%d] %s: %s (%d:%d)\n", i, d->items[i].pointer, d->items[i].message,
                d->items[i].line, d->items[i].column);
}

/* The outcome of loading document S (as the test wrote it): RC, and the diagnostics D
 * (deinited here). It loaded without a problem, or the test fails. */
static inline void expect_loaded(const char *s, int rc, diags_t *d)
{
    if (rc != 0) {
        fprintf(stderr, "document: %s\n", s);
        dump_diags(d);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(d->n, 0);
    diags_deinit(d);
}

/* As expect_loaded, but S must be refused with exactly one problem, at POINTER, whose message
 * contains MSG. */
static inline void expect_refused(const char *s, int rc, diags_t *d, const char *pointer,
                                  const char *msg)
{
    if (rc != BR_EINVALID_DEFINITION || d->n != 1 || strcmp(d->items[0].pointer, pointer) != 0 ||
        !strstr(d->items[0].message, msg)) {
        fprintf(stderr, "document: %s\nwanted %s: %s\ngot rc %d:\n", s, pointer, msg, rc);
        dump_diags(d);
        diags_deinit(d);
        fail();
    }
    diags_deinit(d);
}

/* A name at its length limit (128 bytes) passes, one byte longer is refused: the document
 * BEFORE + name + AFTER goes to LOADS with 128 'a's, and to REFUSED (with POINTER and MSG) with
 * 129. */
static inline void expect_name_limit(const char *before, const char *after, const char *pointer,
                                     const char *msg, void (*loads)(const char *s),
                                     void (*refused)(const char *s, const char *pointer,
                                                     const char *msg))
{
    char name[130];
    memset(name, 'a', 129);
    name[129] = '\0';
    char *s = xasprintf("%s%s%s", before, name, after);
    refused(s, pointer, msg);
    free(s);
    name[128] = '\0';
    s = xasprintf("%s%s%s", before, name, after);
    loads(s);
    free(s);
}

/* A binding refused: BOUND (what the binding returned) must be NULL, and ERR an input_invalid
 * error whose message is MSG (NULL: not checked) and whose detail's "errors" is the
 * single-quoted JSON ERRORS, member order included. Clears ERR. */
static inline void expect_input_errors(json_t *bound, err_t *err, const char *msg,
                                       const char *errors)
{
    assert_null(bound);
    assert_int_equal(err->code, BR_EINPUT_INVALID);
    if (msg)
        assert_string_equal(err->msg, msg);
    json_t *w = jq(errors);
    char *got = json_dumps(json_object_get(err->detail, "errors"), JSON_COMPACT);
    char *exp = json_dumps(w, JSON_COMPACT);
    assert_string_equal(got, exp);
    free(got);
    free(exp);
    json_decref(w);
    err_clear(err);
}

#endif
