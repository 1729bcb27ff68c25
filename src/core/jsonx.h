/* jsonx.h - JSON helpers over jansson: bounded parsing with precise errors, compact dumps,
 * dotted paths ("body.items[0].id") for reading and writing values. */
#ifndef BRAID_CORE_JSONX_H
#define BRAID_CORE_JSONX_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct jsonx_limits {
    size_t max_bytes; /* refuse longer documents; 0 = no limit */
    int max_depth;    /* refuse deeper nesting; 0 = the default 64 */
    bool reject_duplicate_keys;
} jsonx_limits_t;

#define JSONX_DEFAULT_DEPTH 64

/* Parse TEXT (LEN bytes, need not be NUL-terminated) into a new value (returned owned).
 * Any JSON value is accepted at the top level. On failure returns NULL and fills ERR with
 * BR_EINPUT_INVALID, a message naming line and column, and detail {line, column, position}. */
json_t *jsonx_parse(const char *text, size_t len, const jsonx_limits_t *limits, err_t *err);

/* Compact JSON text of V (returned owned, free with free()). V may be any value. */
char *jsonx_dump(const json_t *v);

/* Name of V's JSON type: "null", "boolean", "integer", "number", "string", "array", "object". */
const char *jsonx_type_name(const json_t *v);

/* Nesting depth of V (a scalar is 0). */
int jsonx_depth(const json_t *v);

/* Read the value at PATH inside ROOT: segments separated by '.', array indexes as "[3]" or
 * ".3", keys with dots as ["a.b"]. Returns a borrowed value or NULL when absent. An empty
 * PATH returns ROOT. */
json_t *jsonx_get_path(json_t *root, const char *path);

/* Set KEY inside object OBJ, where dots in KEY make nested objects ("customer.name"). VALUE
 * is taken. Intermediate non-objects are replaced. */
void jsonx_set_dotted(json_t *obj, const char *key, json_t *value);

/* Whether V is a JSON integer or a real with an integral value in int64 range; sets OUT. */
bool jsonx_as_int(const json_t *v, long long *out);

#endif
