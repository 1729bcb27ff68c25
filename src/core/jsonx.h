/* jsonx.h - JSON helpers over jansson: bounded parsing with precise errors, compact dumps,
 * dotted paths ("body.items[0].id") for reading and writing values. */
#ifndef BRAID_CORE_JSONX_H
#define BRAID_CORE_JSONX_H

#include "core/buf.h"
#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Compact JSON text of V (returned owned, free with free()), as jsonx_dump_buf writes it. V
 * may be any value; NULL gives "null". */
char *jsonx_dump(const json_t *v);

/* V's JSON text as jansson's json_dumps writes it with FLAGS (indents, sorted keys...), but
 * returned owned from malloc (free with free()): json_dumps's own text comes from jansson's
 * allocator (jsonalloc.h), so braid never calls it. */
char *jsonx_dumps(const json_t *v, size_t flags);

/* Append V's compact JSON text to B: the text jansson writes with JSON_COMPACT |
 * JSON_ENCODE_ANY (keys in the object's order, the same escapes), except that reals take the
 * shortest digits that read back as the same double (jsonx_format_real). NULL writes null.
 * Much cheaper than jansson's dump: no callbacks, no loop bookkeeping, no printf. V must not
 * contain itself. Any thread. */
void jsonx_dump_buf(buf_t *b, const json_t *v);

/* The same, but it stops as soon as B would hold more than MAX bytes and returns -1 (what was
 * written so far stays in B); 0 when everything fits. */
int jsonx_dump_buf_max(buf_t *b, const json_t *v, size_t max);

/* Append the N bytes at P to B as a JSON string, quoted and escaped as jansson does. */
void jsonx_put_string(buf_t *b, const char *p, size_t n);

/* The shortest text that reads back as D, shaped as jansson shapes reals: an exponent without
 * '+' or leading zeros, and ".0" when there is neither a point nor an exponent. Returns the
 * length written to OUT (NUL-terminated). */
size_t jsonx_format_real(double d, char out[40]);
/* The same through printf alone, without the shortcut for values with up to three decimals
 * (the tests hold the shortcut to it). */
size_t jsonx_format_real_printf(double d, char out[40]);

/* I in decimal, as printf's %lld writes it. Returns the length written to OUT (NUL-terminated). */
size_t jsonx_format_int(long long i, char out[24]);

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

/* A lower bound of the length of V's compact JSON text, counted only until it passes LIMIT
 * (then LIMIT + 1 is returned): cheap enough to call on every value, since small values are
 * walked quickly and large ones stop early. */
size_t jsonx_size_at_least(const json_t *v, size_t limit);

/* V itself when its compact JSON text is at most MAX_BYTES (a new reference), else
 * {"truncated": true, "bytes": N, "preview": "first bytes of the text..."} with the preview cut
 * at a character boundary so that the whole stays within MAX_BYTES. Returned owned. */
json_t *jsonx_cut(const json_t *v, size_t max_bytes);

/* A JSON string of S, with every byte that is not part of valid UTF-8 replaced by U+FFFD, so
 * that text quoting user input (an error message) can always be sent. Returned owned. */
json_t *jsonx_string_lossy(const char *s);

/* A deep copy of J (returned owned; NULL for NULL, or when jansson runs out of memory). Like
 * json_deep_copy at less than half its cost: jansson's copy checks for cycles with a hash
 * table per container (even for a lone scalar), and braid's values never hold cycles. */
json_t *jsonx_copy(const json_t *j);

/* MS (epoch milliseconds) as an RFC 3339 string, or null when not set (<= 0); owned. */
json_t *jsonx_time(int64_t ms);

/* Whether V is a JSON integer or a real with an integral value in int64 range; sets OUT. */
bool jsonx_as_int(const json_t *v, long long *out);

#endif
