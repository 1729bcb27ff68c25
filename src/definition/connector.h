/* connector.h - connector documents (SPEC §5): a saved, versioned description of an API --
 * its base URL, the configuration and secrets a connection supplies, its authentication, and
 * named operations with declared inputs and default output mappings.
 *
 * Loaded like an integration: parsed with bounded size and depth, validated as a whole (every
 * problem with its JSON Pointer and line), compiled (templates compiled once). A connector_t
 * is immutable once built and shared read-only between threads.
 *
 * Templates: base_url, auth and every operation's path, query, headers and body see
 * input.* (the operation's bound inputs), conn.* (the connection's config) and secret.*
 * (the connection's secrets) -- nothing else.
 */
#ifndef BRAID_DEFINITION_CONNECTOR_H
#define BRAID_DEFINITION_CONNECTOR_H

#include "definition/definition.h"

/* Roots a connector's templates may read. */
#define TMPL_ROOTS_CONNECTOR (TMPL_INPUT | TMPL_CONN | TMPL_SECRET)

typedef struct connector_op {
    char *name;
    char *method;         /* upper case, default "GET" */
    template_t *path;     /* appended to base_url; "" when absent */
    template_t *query;    /* object of templates, or NULL */
    template_t *headers;  /* object of templates, or NULL */
    template_t *body;     /* any JSON, or NULL = no body */
    input_decl_t *inputs; /* n_inputs entries (same rules as an integration's inputs) */
    int n_inputs;
    bool has_inputs;
    output_map_t *outputs; /* var -> path in {status, headers, body}; n_outputs entries */
    int n_outputs;
} connector_op_t;

typedef struct connector {
    char *slug;  /* ^[a-z0-9][a-z0-9_-]*$, at most 128 bytes */
    int version; /* 0 until stored; set by whoever loads it from the store */
    template_t *base_url;
    input_decl_t *config; /* the connection config's schema; n_config entries */
    int n_config;
    char **secrets; /* names of the secrets a connection holds (identifiers) */
    int n_secrets;
    request_auth_t auth; /* AUTH_NONE when absent */
    connector_op_t *ops;
    int n_ops;
    json_t *doc;     /* the validated document (owned) */
    char *canonical; /* compact JSON with sorted keys: what the store keeps and compares */
} connector_t;

/* Whether DOC looks like a connector document rather than an integration (it has "slug"). */
bool connector_doc_is_connector(const json_t *doc);

/* Parse, validate and compile TEXT. SLUG_HINT (may be NULL) must equal the document's slug.
 * 0 and *OUT (owned; free with connector_free), or BR_EINVALID_DEFINITION with every problem
 * in DIAGS (which the caller deinits either way). */
int connector_load(const char *text, size_t len, const char *slug_hint,
                   const definition_limits_t *limits, connector_t **out, diags_t *diags);
/* Same for an already-parsed DOC (borrowed); diagnostics carry no line numbers. */
int connector_compile(const json_t *doc, const definition_limits_t *limits, connector_t **out,
                      diags_t *diags);
void connector_free(connector_t *c);

/* Operation NAME, or NULL. */
const connector_op_t *connector_operation(const connector_t *c, const char *name);

/* Check a connection's CONFIG (borrowed; NULL = {}) against C's config schema: returns the
 * bound config (defaults applied; owned), or NULL with ERR = BR_EINPUT_INVALID and detail
 * {"errors": [{"field", "message"}...]}. */
json_t *connector_bind_config(const connector_t *c, const json_t *config, err_t *err);

/* Bind INPUT (borrowed; NULL = {}) to operation OP's declared inputs, as
 * definition_bind_inputs does for an integration. */
json_t *connector_bind_input(const connector_op_t *op, const json_t *input, err_t *err);

/* Whether NAME is one of C's declared secrets. */
bool connector_has_secret(const connector_t *c, const char *name);

#endif
