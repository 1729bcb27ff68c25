/* template.h - braid's template language (SPEC §7), compiled once and rendered many times.
 *
 * A template is any JSON value whose strings may contain {{ expression | filter }} parts.
 * Compiling parses every expression into a tree (paths into segments, filters resolved), so
 * rendering never parses text. A compiled template is immutable and may be rendered from many
 * threads at once.
 */
#ifndef BRAID_CORE_TEMPLATE_H
#define BRAID_CORE_TEMPLATE_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The roots an expression may start with. */
enum {
    TMPL_VARS = 1u << 0,
    TMPL_INPUT = 1u << 1,
    TMPL_TASKS = 1u << 2,
    TMPL_RUN = 1u << 3,
    TMPL_ITEM = 1u << 4,
    TMPL_INDEX = 1u << 5,
    TMPL_CONN = 1u << 6,   /* request fields of http / connector tasks only */
    TMPL_SECRET = 1u << 7, /* request fields of http / connector tasks only */
};
#define TMPL_ROOTS_DEFAULT (TMPL_VARS | TMPL_INPUT | TMPL_TASKS | TMPL_RUN | TMPL_ITEM | TMPL_INDEX)
#define TMPL_ROOTS_REQUEST (TMPL_ROOTS_DEFAULT | TMPL_CONN | TMPL_SECRET)

/* What an expression can see while rendering. Every member is borrowed; NULL reads as null. */
typedef struct tmpl_scope {
    json_t *vars, *input, *tasks, *run, *item, *index, *conn, *secret;
    size_t max_output; /* bytes a rendered string may reach; 0 = the default, 1 MiB */
} tmpl_scope_t;

typedef struct template template_t;

/* Compile SRC (borrowed; any JSON value). Every string inside it, at any depth, is template
 * text; object keys are literal. ALLOWED is a mask of TMPL_* roots: a path starting with any
 * other root is a compile error.
 * Returns 0 and *OUT (owned, free with template_free), or BR_EINVALID_DEFINITION with ERR
 * holding a message naming the expression and detail {"pointer": "/a/0" (relative to SRC,
 * "" for SRC itself), "position": byte offset inside that string}. */
int template_compile(const json_t *src, unsigned allowed, template_t **out, err_t *err);

/* Compile one string of template text; same rules as template_compile on a JSON string. */
int template_compile_string(const char *text, unsigned allowed, template_t **out, err_t *err);

/* Render T in SCOPE. Returns a new value the caller owns and may modify (containers are never
 * shared with the scope or the template), or NULL with ERR = BR_EEXPRESSION_ERROR and a
 * message saying which expression failed and why (type mismatch, division by zero, output too
 * large). A string that is exactly one {{...}} yields the value with its JSON type; other
 * strings interpolate (strings as they are, null as nothing, the rest as compact JSON). */
json_t *template_render(const template_t *t, const tmpl_scope_t *scope, err_t *err);

/* Whether T contains no expression at all (rendering it yields a copy of its source). */
bool template_is_constant(const template_t *t);

/* The source value T was compiled from (borrowed, valid as long as T). */
const json_t *template_source(const template_t *t);

/* Mask of TMPL_* roots that T's expressions read. */
unsigned template_roots_used(const template_t *t);

/* One path found by template_root_refs: POINTER is the JSON Pointer, relative to the source,
 * of the string holding it ("" for the source itself; borrowed for the call); KEY the first
 * segment after the root when that is a literal name (LEN bytes, may hold NULs; borrowed),
 * else NULL: the root read whole, an index, or a computed [expr]. */
typedef void (*template_ref_cb)(void *ctx, const char *pointer, const char *key, size_t len);

/* Call FN (with CTX) for every path of T that starts at ROOT (one TMPL_* bit), in source
 * order, so that a caller can check which members of a root a template reads. */
void template_root_refs(const template_t *t, unsigned root, template_ref_cb fn, void *ctx);

void template_free(template_t *t);

/* Whether two JSON values are equal as template `==` sees them: deep, with 1 == 1.0. */
bool template_values_equal(const json_t *a, const json_t *b);

/* Truthiness used by !, &&, || and ?: : false, null, 0, "" are false; all else true. */
bool template_truthy(const json_t *v);

#endif
