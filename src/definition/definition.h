/* definition.h - integration documents (SPEC §1-3, §6): parse, validate, compile.
 *
 * A document is parsed with bounded size and depth, validated as a whole (every problem
 * reported at once, each with its JSON Pointer, and line and column where the text is known),
 * then compiled into a definition_t: templates compiled, task ids and case targets resolved
 * to indices, input schemas ready to check. A definition_t is immutable once built and is
 * shared read-only between threads.
 */
#ifndef BRAID_DEFINITION_H
#define BRAID_DEFINITION_H

#include "core/err.h"
#include "core/template.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define TASK_END (-1) /* a "next" or case target meaning: the run ends */

typedef enum {
    TASK_CALL_INTEGRATION,
    TASK_HTTP,
    TASK_CONNECTOR,
    TASK_SCRIPT,
    TASK_SET,
    TASK_SWITCH,
    TASK_AWAIT,
    TASK_FAIL,
} task_type_t;

const char *task_type_name(task_type_t t);

typedef enum { VT_ANY, VT_STRING, VT_NUMBER, VT_INTEGER, VT_BOOLEAN, VT_OBJECT, VT_ARRAY } value_type_t;

typedef struct input_decl {
    char *name;
    value_type_t type;
    bool required;
    json_t *default_value; /* owned; NULL when there is no default */
} input_decl_t;

typedef struct retry_policy {
    int max_attempts; /* >= 1; 1 means no retry */
    int64_t initial_ms;
    double multiplier;
    int64_t max_ms;
    bool jitter;
    char **on; /* error codes or classes ("5xx", "429"); n_on entries */
    int n_on;
} retry_policy_t;

typedef struct case_target {
    char *outcome; /* "success", "failure", an error code, a status, a switch value */
    int target;    /* task index or TASK_END */
} case_target_t;

typedef enum { STRATEGY_DEFAULT, STRATEGY_SYNC, STRATEGY_ASYNC } strategy_t;
typedef enum { PAYLOAD_NONE, PAYLOAD_INPUT, PAYLOAD_WHOLE, PAYLOAD_EXTENDED } payload_kind_t;

typedef struct output_map {
    char *var;  /* parent var name (may be dotted) */
    char *path; /* path in the child's output, jsonx_get_path syntax */
} output_map_t;

typedef struct call_task {
    template_t *integration; /* target name; NULL when `trigger` is used */
    char *literal_target;    /* the name when `integration` has no expression, else NULL */
    char *trigger;           /* API trigger id, or NULL */
    int version;             /* 0 = latest at the moment of the call */
    strategy_t strategy;
    template_t *delay_ms; /* NULL = no delay; renders to an integer 0..30 days */
    payload_kind_t payload_kind;
    template_t *payload;    /* the `input` object, the `payload`, or the `extended_payload` */
    json_t *input_keys;     /* for PAYLOAD_INPUT: array of the mapped input names (owned) */
    output_map_t *outputs;  /* n_outputs entries */
    int n_outputs;
    template_t *for_each; /* NULL = single call */
    int parallelism;      /* 1..256, default 8 */
    template_t *idempotency_key; /* NULL = none */
    bool detached;
} call_task_t;

typedef struct set_task {
    char **keys; /* var names, dots make nested objects */
    template_t **values;
    int n;
} set_task_t;

typedef struct switch_task {
    template_t *value;
    case_target_t *cases; /* rendered value (as text) -> target */
    int n_cases;
    int default_target; /* task index, TASK_END, or -2 when there is no default (go to next) */
} switch_task_t;

typedef enum { AWAIT_ALL, AWAIT_ANY, AWAIT_AT_LEAST } await_mode_t;

typedef struct await_task {
    template_t *runs; /* array of run ids or objects with run_id */
    int64_t timeout_ms;
    await_mode_t mode;
    int at_least;
    int tolerate_failures;
} await_task_t;

typedef struct script_task {
    char *source; /* Lua 5.4 text, syntax-checked at publish (binary chunks refused) */
    size_t len;
} script_task_t;

/* Authentication of an outbound request (SPEC §4 `auth`); templates may read conn/secret. */
typedef enum { AUTH_NONE, AUTH_BASIC, AUTH_BEARER, AUTH_HEADER } auth_type_t;

typedef struct request_auth {
    auth_type_t type;
    template_t *a; /* basic: username; bearer: token; header: the header's name */
    template_t *b; /* basic: password; header: its value; NULL for bearer */
} request_auth_t;

#define HTTP_DEFAULT_TIMEOUT_MS 10000
#define HTTP_MAX_TIMEOUT_MS 60000
#define HTTP_DEFAULT_MAX_RESPONSE (10 * 1024 * 1024)
#define HTTP_MAX_REDIRECTS 5

/* An http task (SPEC §4). Request fields (url, query, headers, body, auth) are compiled with
 * TMPL_ROOTS_REQUEST: they may read conn.* and secret.*, which only a `connection` supplies. */
typedef struct http_task {
    template_t *url;
    char *method;               /* upper case: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS */
    template_t *query;          /* object of templates, or NULL */
    template_t *headers;        /* object of templates, or NULL */
    template_t *body;           /* any JSON (a string is sent as it is), or NULL = no body */
    request_auth_t auth;
    char *connection;           /* connection id (literal), or NULL */
    int64_t max_response_bytes; /* default HTTP_DEFAULT_MAX_RESPONSE */
    bool follow_redirects;      /* default true; at most HTTP_MAX_REDIRECTS hops */
    char *response_var;         /* default "httpResult" */
} http_task_t;

/* A connector task (SPEC §5), pinned at publish to (connector, version, operation,
 * connection). Its `input` templates see the integration's roots (no secrets); the
 * operation's own templates see input.*, conn.* and secret.*. */
typedef struct connector_task {
    char *connector;  /* slug */
    int version;      /* >= 1: filled with the latest version at publish when absent */
    char *operation;
    char *connection; /* connection id */
    template_t *input;    /* object of templates (the operation's inputs), or NULL = {} */
    output_map_t *outputs; /* the task's `output`: var -> path in {status, headers, body};
                              merged over the operation's default mappings at run time */
    int n_outputs;
} connector_task_t;

typedef struct fail_task {
    template_t *code;
    template_t *message; /* NULL = no message */
    template_t *detail;  /* NULL = no detail */
} fail_task_t;

typedef struct task {
    char *id;
    task_type_t type;
    int index;
    int next; /* task index or TASK_END */
    case_target_t *cases;
    int n_cases;
    bool continue_on_error;
    retry_policy_t retry; /* the task's own, else the integration's, else the default */
    bool retry_explicit;  /* the task set `retry` itself */
    int64_t timeout_ms;   /* deadline of one attempt; 0 = none */
    union {
        call_task_t call;
        set_task_t set;
        switch_task_t sw;
        await_task_t await;
        fail_task_t fail;
        script_task_t script;
        http_task_t http;
        connector_task_t connector;
    } u;
} task_t;

typedef enum { ON_INTERRUPT_RETRY, ON_INTERRUPT_FAIL } on_interrupt_t;

typedef struct definition {
    char *name;
    int version; /* 0 until stored; set by the registry when loaded */
    char **triggers;
    int n_triggers;
    bool run_async;
    input_decl_t *inputs; /* n_inputs entries; has_inputs false when `inputs` is absent */
    int n_inputs;
    bool has_inputs;
    template_t *outputs_tmpl; /* object form of `outputs`, else NULL */
    char **output_vars;       /* list form of `outputs`; n_output_vars entries */
    int n_output_vars;
    bool has_outputs;
    int64_t timeout_ms;  /* whole run, default 300000 */
    int max_concurrency; /* 0 = unlimited */
    char **callers;      /* globs; n_callers == 0 means anyone */
    int n_callers;
    on_interrupt_t on_interrupt;
    task_t *tasks;
    int n_tasks;
    json_t *doc; /* the validated document (owned) */
    char *canonical; /* compact JSON text with sorted keys: what the store keeps and compares */
    unsigned roots_used; /* TMPL_* roots any of its templates reads: the engine builds only
                            those (a run whose templates never read `tasks` needs no tasks
                            object) */
} definition_t;

/* One problem found in a document. */
typedef struct diag {
    char *pointer; /* JSON Pointer of the field ("" = the document) */
    char *message;
    int line, column; /* 0 when unknown */
    bool at_key;      /* locate the member's key rather than its value (unknown fields) */
} diag_t;

typedef struct diags {
    diag_t *items;
    int n, cap;
} diags_t;

void diags_add(diags_t *d, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fill line and column of every diagnostic from the document's text. */
void diags_locate(diags_t *d, const char *text, size_t len);
/* [{"pointer", "message", "line"?, "column"?}] (returned owned). */
json_t *diags_to_json(const diags_t *d);
void diags_deinit(diags_t *d);

/* What validation may ask of the outside world (storage lives elsewhere). */
typedef struct definition_resolver {
    void *ctx;
    /* Whether an integration named NAME is published (and not archived). */
    bool (*integration_exists)(void *ctx, const char *name);
    /* The compiled connector SLUG at VERSION (0 = latest), borrowed for as long as the
     * resolver lives; NULL when there is none. NULL member = connector tasks are not checked
     * against their connector (and a missing `version` is an error). */
    const struct connector *(*connector_get)(void *ctx, const char *slug, int version);
    /* The connector slug of connection ID (returned owned), or NULL when there is no such
     * connection. NULL member = connections are not checked at publish. */
    char *(*connection_connector)(void *ctx, const char *id);
} definition_resolver_t;

typedef struct definition_limits {
    size_t max_bytes; /* document size, default 1 MiB */
    int max_depth;    /* JSON nesting, default 64 */
    int max_tasks;    /* default 1000 */
} definition_limits_t;

/* Parse, validate and compile TEXT. NAME_HINT (may be NULL) must equal the document's name
 * when given (the name in a URL, say). RESOLVER (may be NULL) answers publish-time checks.
 * Returns 0 and *OUT (owned, free with definition_free), or BR_EINVALID_DEFINITION with every
 * problem in DIAGS (which the caller deinits either way). */
int definition_load(const char *text, size_t len, const char *name_hint,
                    const definition_limits_t *limits, const definition_resolver_t *resolver,
                    definition_t **out, diags_t *diags);

/* Same, for an already-parsed document DOC (borrowed). Diagnostics carry no line numbers. */
int definition_compile(const json_t *doc, const definition_resolver_t *resolver,
                       const definition_limits_t *limits, definition_t **out, diags_t *diags);

void definition_free(definition_t *def);

/* The task with id ID, or NULL. */
const task_t *definition_task(const definition_t *def, const char *id);

/* Check PAYLOAD against DEF's declared inputs and build the run's initial vars (returned
 * owned): declared inputs bound (defaults applied), or every key of an object payload when
 * there are no declarations. Returns NULL with ERR = BR_EINPUT_INVALID and detail
 * {"errors": [{"field", "message"}...]} when a required input is missing or has a wrong type. */
json_t *definition_bind_inputs(const definition_t *def, const json_t *payload, err_t *err);

/* Problems a caller's `input` mapping (array of names MAPPED) has against DEF's declared
 * inputs: names not declared, required inputs not mapped. Returns an array of messages
 * (owned), empty when it fits. */
json_t *definition_mapping_problems(const definition_t *def, const json_t *mapped);

/* Whether ID is a valid connection id: ^[A-Za-z0-9][A-Za-z0-9_.-]*$, at most 128 bytes. */
bool definition_connection_id_valid(const char *id);

/* Whether NAME matches the shell-style glob PATTERN (`*`, `?`; `*` crosses '/'). */
bool definition_glob_match(const char *pattern, const char *name);

/* Whether caller integration CALLER may call DEF (its `callers` list). */
bool definition_caller_allowed(const definition_t *def, const char *caller);

#endif
