/* tmp_engine.h - an engine's surroundings for the unit tests that drive one: a temporary
 * directory with a store opened in it (see tmp_store.h). Each test starts the engine itself,
 * with the configuration it needs; the fixture stops and frees it. Header-only, included
 * after <cmocka.h>: failures fail the test.
 */
#ifndef BRAID_TESTS_TMP_ENGINE_H
#define BRAID_TESTS_TMP_ENGINE_H

#include "engine/engine.h"
#include "tmp_store.h"

typedef struct engine_fx {
    char dir[64];
    store_t *st;
    engine_t *eng; /* NULL until the test starts one */
} engine_fx_t;

/* A directory from TEMPLATE (ends in XXXXXX) with a store open in it. Returned owned: free
 * with engine_fx_free. */
static inline engine_fx_t *engine_fx_new(const char *template)
{
    engine_fx_t *f = XNEW(engine_fx_t);
    assert_int_equal(tmp_dir_make(f->dir, template), 0);
    assert_int_equal(tmp_store_open(f->dir, NULL, &f->st), 0);
    return f;
}

/* The outcome of a publish: RC, its diagnostics D (deinited here) and ERR. A failure prints
 * every diagnostic and fails the test. */
static inline void expect_published(int rc, diags_t *d, const err_t *err)
{
    if (rc < 0) {
        for (int i = 0; i < d->n; i++)
            fprintf(stderr, "%s: %s\n", d->items[i].pointer, d->items[i].message);
        fail_msg("publish failed: %s", err->msg);
    }
    diags_deinit(d);
}

/* Stop F's engine, close its store, remove its directory and free it. */
static inline void engine_fx_free(engine_fx_t *f)
{
    engine_free(f->eng);
    store_close(f->st);
    assert_int_equal(tmp_dir_remove(f->dir), 0);
    free(f);
}

#endif
