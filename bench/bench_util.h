/* bench_util.h - what the in-process benchmark programs share (header-only: CMake builds each
 * C file of bench/ into its own program). */
#ifndef BRAID_BENCH_UTIL_H
#define BRAID_BENCH_UTIL_H

#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Publish the integration DOC or stop the program: a benchmark with a broken setup has no
 * figure worth printing. */
static inline void bench_publish(engine_t *eng, const char *doc)
{
    json_t *result = NULL;
    diags_t diags = {0};
    err_t err = {0};
    if (engine_publish(eng, doc, strlen(doc), NULL, &result, &diags, &err) < 0) {
        fprintf(stderr, "publish failed: %s %s\n", err.msg, diags.n ? diags.items[0].message : "");
        exit(1);
    }
    json_decref(result);
    diags_deinit(&diags);
}

#endif
