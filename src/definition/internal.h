/* internal.h - what the files of src/definition/ share and nobody else sees.
 *
 * Validation and compilation happen in one walk over the document: a vctx_t carries the JSON
 * Pointer of the value in hand (a buffer that grows and shrinks as the walk descends) and the
 * problems found so far, while the walk fills a definition_t. Every check reports and carries
 * on, so one walk finds every problem; a definition with any problem is freed, never returned.
 */
#ifndef BRAID_DEFINITION_INTERNAL_H
#define BRAID_DEFINITION_INTERNAL_H

#include "core/buf.h"
#include "definition/definition.h"

#include <stdarg.h>

/* Most problems one document reports; past it one last diagnostic says so. Bounds the work of
 * reporting (and of locating each problem in the text) for a hostile document. */
#define DIAG_MAX 200

#define MAX_DURATION_MS 2592000000LL /* 30 days */
#define DEFAULT_RUN_TIMEOUT_MS 300000
#define DEFAULT_AWAIT_TIMEOUT_MS 60000
#define DEFAULT_PARALLELISM 8
#define MAX_PARALLELISM 256
#define DEFAULT_MAX_BYTES (1024 * 1024)
#define DEFAULT_MAX_TASKS 1000
#define MAX_NAME_LEN 128

typedef struct vctx {
    diags_t *diags;
    int first_diag; /* index of the first diagnostic this walk added */
    buf_t ptr;      /* JSON Pointer of the value being checked ("" = the document) */
    const definition_resolver_t *resolver;
    const char *own_name; /* the document's `name` string, even invalid (self-calls are legal) */
    const char **ids;     /* task ids by index (borrowed from the document); NULL = invalid */
    json_t *id_index;     /* task id -> index of its first valid occurrence (owned) */
    retry_policy_t base_retry; /* the integration's `retry`, else the defaults */
} vctx_t;

/* diags.c */
diag_t *diags_vadd(diags_t *d, const char *pointer, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Functions shared between these files carry the def_ prefix: they are global symbols of the
 * library, and must not collide with another module's helpers. */

/* validate.c: the JSON Pointer in hand. */
size_t def_ptr_push(vctx_t *c, const char *key);
size_t def_ptr_push_index(vctx_t *c, size_t i);
void def_ptr_pop(vctx_t *c, size_t mark);

/* validate.c: reporting. KEY (may be NULL: the value in hand) names a member of it. */
void def_problem(vctx_t *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void def_problem_key(vctx_t *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int def_problem_count(const vctx_t *c);

/* validate.c: reading members of OBJ, reporting wrong types; each returns whether the member
 * is present and valid. Absent members report only when REQUIRED. */
void def_check_fields(vctx_t *c, const json_t *obj, const char *const *allowed);
bool def_need_field(vctx_t *c, const json_t *obj, const char *key);
const char *def_get_string(vctx_t *c, const json_t *obj, const char *key, bool required);
bool def_get_bool(vctx_t *c, const json_t *obj, const char *key, bool *out);
bool def_get_int(vctx_t *c, const json_t *obj, const char *key, int64_t min, int64_t max,
                 int64_t *out);
const json_t *def_get_object(vctx_t *c, const json_t *obj, const char *key, bool required);
const json_t *def_get_array(vctx_t *c, const json_t *obj, const char *key, bool required);

/* validate.c: names. */
bool def_is_identifier(const char *s);
#define DEF_MAX_VAR_SEGMENTS 32 /* dotted segments in a var name */
bool def_is_var_name(const char *s);
bool def_is_trigger_id(const char *s);
const char *def_integration_name_problem(const char *s);
bool def_path_is_valid(const char *path);
bool def_seen(json_t *set, const char *key);

/* validate.c: templates and targets. */
template_t *def_compile_template(vctx_t *c, const char *key, const json_t *src);
bool def_resolve_target(vctx_t *c, const char *key, const json_t *v, int *out);

/* validate.c: retry policies. */
void def_retry_defaults(retry_policy_t *p);
void def_retry_copy(retry_policy_t *dst, const retry_policy_t *src);
void def_retry_deinit(retry_policy_t *p);
bool def_parse_retry(vctx_t *c, const char *key, const json_t *v, retry_policy_t *out);

/* inputs.c */
void def_compile_inputs(vctx_t *c, const json_t *v, definition_t *def);

/* tasks.c: the members specific to each type of task. */
void def_compile_call(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_set(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_switch(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_await(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_fail(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_script(vctx_t *c, const json_t *obj, task_t *t);

/* compile.c */
void def_task_deinit(task_t *t);

#endif
