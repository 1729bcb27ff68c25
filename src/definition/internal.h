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
    json_t *pins; /* [[task index, version]...]: connector tasks whose missing `version`
                     publishing filled in (owned; NULL while there is none) */
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

/* validate.c: names and the value in hand. */
#define DEF_RULE_IDENTIFIER "must match ^[A-Za-z_][A-Za-z0-9_]*$"
#define DEF_RULE_VAR_NAME "must be at most 32 names ^[A-Za-z_][A-Za-z0-9_]*$ joined by dots"
#define DEF_RULE_SLUG "must match ^[a-z0-9][a-z0-9_-]*$, at most 128 characters"
bool def_name_ok(vctx_t *c, const char *key, bool at_key, const char *s,
                 bool (*valid)(const char *), const char *what, const char *rule);
bool def_hint_ok(vctx_t *c, const char *key, const char *value, const char *hint, int hint_cut);
bool def_check_object(vctx_t *c, const json_t *obj, const char *const *fields);
char **def_unique_strings(vctx_t *c, const char *key, const json_t *arr, const char *not_string,
                          bool (*valid)(vctx_t *c, const char *s), const char *dup_noun, int *n);

/* validate.c: reading members of OBJ, reporting wrong types; each returns whether the member
 * is present and valid. Absent members report only when REQUIRED. */
void def_check_fields(vctx_t *c, const json_t *obj, const char *const *allowed);
bool def_need_field(vctx_t *c, const json_t *obj, const char *key);
const char *def_get_string(vctx_t *c, const json_t *obj, const char *key, bool required);
bool def_get_bool(vctx_t *c, const json_t *obj, const char *key, bool *out);
bool def_get_int(vctx_t *c, const json_t *obj, const char *key, int64_t min, int64_t max,
                 int64_t *out);
const json_t *def_get_object(vctx_t *c, const json_t *obj, const char *key, bool required);
const json_t *def_get_members(vctx_t *c, const json_t *obj, const char *key, const char *empty);
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
template_t *def_compile_template_roots(vctx_t *c, const char *key, const json_t *src,
                                       unsigned allowed);
template_t *def_compile_template(vctx_t *c, const char *key, const json_t *src);
bool def_resolve_target(vctx_t *c, const char *key, const json_t *v, int *out);

/* validate.c: retry policies. */
void def_retry_defaults(retry_policy_t *p);
void def_retry_copy(retry_policy_t *dst, const retry_policy_t *src);
void def_retry_deinit(retry_policy_t *p);
bool def_parse_retry(vctx_t *c, const char *key, const json_t *v, retry_policy_t *out);

/* inputs.c: declarations (integration inputs, operation inputs, connector config). */
void def_compile_decls(vctx_t *c, const char *key, const json_t *v, const char *noun,
                       input_decl_t **out, int *n);
void def_decls_free(input_decl_t *decls, int n);
void def_compile_inputs(vctx_t *c, const json_t *v, definition_t *def);
json_t *def_bind_decls(const input_decl_t *decls, int n, bool declared, bool strict,
                       const json_t *payload, const char *noun, err_t *err);
json_t *def_mapping_check(const input_decl_t *decls, int n, const json_t *mapped);

/* tasks.c: pieces several task types and connector documents share. */
bool def_string_template(vctx_t *c, const json_t *obj, const char *key, bool required,
                         bool non_empty, unsigned allowed, template_t **tmpl);
bool def_input_names(vctx_t *c, const char *key, const json_t *v, json_t **names);
typedef enum { OUTPUT_OF_CHILD, OUTPUT_OF_RESPONSE } output_of_t;
void def_compile_output_maps(vctx_t *c, const char *key, const json_t *out, output_of_t what,
                             output_map_t **maps, int *n);
void def_output_maps_free(output_map_t *maps, int n);

/* tasks.c: the members specific to each type of task. */
void def_compile_call(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_set(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_switch(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_await(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_fail(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_script(vctx_t *c, const json_t *obj, task_t *t);

/* requests.c: http and connector tasks, and the request pieces connector documents share. */
void def_compile_http(vctx_t *c, const json_t *obj, task_t *t);
void def_compile_connector(vctx_t *c, const json_t *obj, task_t *t);
bool def_compile_method(vctx_t *c, const json_t *obj, const char *key, char **out);
bool def_compile_auth(vctx_t *c, const json_t *obj, const char *key, unsigned allowed,
                      request_auth_t *out);
void def_auth_deinit(request_auth_t *a);
const char *def_auth_member(auth_type_t type, bool second);
template_t *def_compile_fields_map(vctx_t *c, const json_t *obj, const char *key, unsigned allowed,
                                   bool header_names);
void def_check_url_scheme(vctx_t *c, const char *key, const template_t *url);
bool def_is_connector_slug(const char *s);

/* compile.c */
void def_task_deinit(task_t *t);
/* Parse TEXT (LEN bytes) with LIMITS, run COMPILE on the document, and locate COMPILE's
 * problems in TEXT: the flow definition_load and connector_load share. */
typedef int (*def_compile_fn)(const json_t *doc, void *arg, diags_t *diags);
int def_load_text(const char *text, size_t len, const definition_limits_t *limits, diags_t *diags,
                  def_compile_fn compile, void *arg);
char *def_canonical(const json_t *doc);

#endif
