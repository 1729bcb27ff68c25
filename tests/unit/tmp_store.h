/* tmp_store.h - temporary data directories, and a store opened in one, for the unit tests
 * that need them. Header-only (each tests/unit/test_*.c is its own executable): the functions
 * are static inline, so a test that uses some of them compiles without unused warnings.
 * A directory is made from a mkdtemp template under /tmp and removed with all it holds.
 */
#ifndef BRAID_TESTS_TMP_STORE_H
#define BRAID_TESTS_TMP_STORE_H

#include "core/xalloc.h"
#include "store/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The schema version (user_version) this build's store writes: migrations end here. */
#define STORE_SCHEMA_NOW 7

/* A store in a directory of its own. */
typedef struct store_fx {
    char dir[64];
    store_t *st;
} store_fx_t;

static inline int tmp_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Make a fresh directory from TEMPLATE (ends in XXXXXX) into DIR (64 bytes). 0 or -1. */
static inline int tmp_dir_make(char dir[64], const char *template)
{
    snprintf(dir, 64, "%s", template);
    return mkdtemp(dir) ? 0 : -1;
}

/* Remove DIR and everything below it. 0, or -1 when something could not be removed. */
static inline int tmp_dir_remove(const char *dir)
{
    return nftw(dir, tmp_rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* Open the store in DIR with OPTS (may be NULL) into *ST; says why on stderr when it fails.
 * Returns store_open's code. */
static inline int tmp_store_open(const char *dir, const store_options_t *opts, store_t **st)
{
    err_t err = {0};
    int rc = store_open(dir, opts, st, &err);
    if (rc != 0)
        fprintf(stderr, "store_open: %s\n", err.msg);
    err_clear(&err);
    return rc;
}

/* A cmocka setup's body: a new store_fx_t in *STATE, its directory from TEMPLATE and its
 * store opened with OPTS (may be NULL). 0, or -1 with nothing left behind. */
static inline int store_fx_setup(void **state, const char *template, const store_options_t *opts)
{
    store_fx_t *f = XNEW(store_fx_t);
    if (tmp_dir_make(f->dir, template) != 0) {
        free(f);
        return -1;
    }
    if (tmp_store_open(f->dir, opts, &f->st) != 0) {
        tmp_dir_remove(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* The matching teardown: closes the store, removes the directory, frees the fixture. */
static inline int store_fx_teardown(void **state)
{
    store_fx_t *f = *state;
    store_close(f->st);
    tmp_dir_remove(f->dir);
    free(f);
    return 0;
}

#endif
