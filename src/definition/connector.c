/* connector.c - connector documents (SPEC §5): validate and compile one, look up its
 * operations, bind a connection's config and an operation's input.
 *
 * The walk is the one integrations use (vctx_t, every problem reported with its pointer).
 * Every template of a connector reads only input.*, conn.* and secret.*, and each conn.X and
 * secret.X it names must be declared in `config` and `secrets`: a typo is a publish error,
 * not an empty header at run time. A connector_t is immutable once built.
 */
#include "definition/connector.h"
#include "definition/internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

static const char *const doc_fields[] = {"slug",    "description", "base_url",   "config",
                                         "secrets", "auth",        "operations", NULL};
static const char *const op_fields[] = {"method", "path",    "query",       "headers", "body",
                                        "inputs", "outputs", "description", NULL};

/* ---- freeing --------------------------------------------------------------------------- */

static void op_deinit(connector_op_t *op)
{
    free(op->name);
    free(op->method);
    template_free(op->path);
    template_free(op->query);
    template_free(op->headers);
    template_free(op->body);
    def_decls_free(op->inputs, op->n_inputs);
    def_output_maps_free(op->outputs, op->n_outputs);
}

/* Free C and everything it owns. NULL-safe. Only once no thread uses C any more. */
void connector_free(connector_t *c)
{
    if (!c)
        return;
    free(c->slug);
    template_free(c->base_url);
    def_decls_free(c->config, c->n_config);
    for (int i = 0; i < c->n_secrets; i++)
        free(c->secrets[i]);
    free(c->secrets);
    def_auth_deinit(&c->auth);
    for (int i = 0; i < c->n_ops; i++)
        op_deinit(&c->ops[i]);
    free(c->ops);
    json_decref(c->doc);
    free(c->canonical);
    free(c);
}

/* ---- names a template reads ------------------------------------------------------------ */

/* What the checks of conn.X, secret.X and input.X compare with. */
typedef struct refs_ctx {
    vctx_t *c;
    const connector_t *con;
    const connector_op_t *op; /* the operation whose template is checked; NULL outside one */
    bool config_ok;           /* `config` was an object: conn.X can be checked */
    bool secrets_ok;          /* `secrets` was an array: secret.X can be checked */
    unsigned root;            /* TMPL_* being checked */
    json_t *seen;             /* "pointer\nroot\nkey" already reported (owned) */
} refs_ctx_t;

static bool decl_named(const input_decl_t *d, int n, const char *key, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(d[i].name) == len && memcmp(d[i].name, key, len) == 0)
            return true;
    return false;
}

static bool secret_named(const connector_t *con, const char *key, size_t len)
{
    for (int i = 0; i < con->n_secrets; i++)
        if (strlen(con->secrets[i]) == len && memcmp(con->secrets[i], key, len) == 0)
            return true;
    return false;
}

static void check_ref(void *arg, const char *pointer, const char *key, size_t len)
{
    refs_ctx_t *r = arg;
    const char *what = NULL, *where = NULL; /* "secret" is not declared in "'secrets'" */
    bool whole_secret = false;
    if (r->root == TMPL_SECRET) {
        whole_secret = !key;
        if (key && r->secrets_ok && !secret_named(r->con, key, len)) {
            what = "secret";
            where = "'secrets'";
        }
    } else if (r->root == TMPL_CONN) {
        if (key && r->config_ok && !decl_named(r->con->config, r->con->n_config, key, len)) {
            what = "config field";
            where = "'config'";
        }
    } else if (key && r->op && r->op->has_inputs &&
               !decl_named(r->op->inputs, r->op->n_inputs, key, len)) {
        what = "input";
        where = "the operation's 'inputs'";
    }
    if (!what && !whole_secret)
        return;
    char *id = xasprintf("%s\n%u\n%.*s", pointer, r->root, (int)len, key ? key : "");
    bool repeat = def_seen(r->seen, id);
    free(id);
    if (repeat)
        return;
    vctx_t *c = r->c;
    size_t mark = c->ptr.len;
    buf_puts(&c->ptr, pointer);
    if (whole_secret)
        def_problem(c, NULL, "{{secret}} must name one declared secret, as {{secret.NAME}}");
    else
        def_problem(c, NULL, "%s '%.*s' is not declared in %s", what, (int)(len > 200 ? 200 : len),
                    key, where);
    def_ptr_pop(c, mark);
}

/* Check every conn.X, secret.X (and, in an operation, input.X) that T, the compiled member
 * KEY (and SUB, when not NULL) of the value in hand, reads. */
static void check_template(refs_ctx_t *r, const template_t *t, const char *key, const char *sub)
{
    if (!t)
        return;
    vctx_t *c = r->c;
    size_t mark = def_ptr_push(c, key);
    if (sub)
        def_ptr_push(c, sub);
    static const unsigned roots[] = {TMPL_SECRET, TMPL_CONN, TMPL_INPUT};
    r->seen = json_object();
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        r->root = roots[i];
        template_root_refs(t, roots[i], check_ref, r);
    }
    json_decref(r->seen);
    r->seen = NULL;
    def_ptr_pop(c, mark);
}

/* ---- the document ---------------------------------------------------------------------- */

static void compile_slug(vctx_t *c, const json_t *doc, const char *slug_hint, connector_t *con)
{
    const char *slug = def_get_string(c, doc, "slug", true);
    if (!slug)
        return;
    if (def_name_ok(c, "slug", false, slug, def_is_connector_slug, "slug", DEF_RULE_SLUG) &&
        def_hint_ok(c, "slug", slug, slug_hint, 200))
        con->slug = xstrdup(slug);
}

static bool secret_name_ok(vctx_t *c, const char *s)
{
    return def_name_ok(c, NULL, false, s, def_is_identifier, "secret name", DEF_RULE_IDENTIFIER);
}

/* `secrets`: a list of unique identifiers. Returns whether it can be checked against. */
static bool compile_secrets(vctx_t *c, const json_t *doc, connector_t *con)
{
    json_t *v = json_object_get(doc, "secrets");
    if (!v)
        return true;
    const json_t *arr = def_get_array(c, doc, "secrets", false);
    if (!arr)
        return false;
    con->secrets = def_unique_strings(c, "secrets", arr, "must be a string: a secret name",
                                      secret_name_ok, "secret", &con->n_secrets);
    return true;
}

/* Operation SPEC, member NAME of `operations` (the pointer is at it), into OP. */
static void compile_operation(refs_ctx_t *r, const char *name, const json_t *spec,
                              connector_op_t *op)
{
    vctx_t *c = r->c;
    op->name = xstrdup(name);
    op->method = xstrdup("GET");
    if (!def_check_object(c, spec, op_fields))
        return;
    free(op->method);
    def_compile_method(c, spec, "method", &op->method);
    if (json_object_get(spec, "path"))
        def_string_template(c, spec, "path", false, false, TMPL_ROOTS_CONNECTOR, &op->path);
    else
        template_compile_string("", TMPL_ROOTS_CONNECTOR, &op->path, NULL);
    op->query = def_compile_fields_map(c, spec, "query", TMPL_ROOTS_CONNECTOR, false);
    op->headers = def_compile_fields_map(c, spec, "headers", TMPL_ROOTS_CONNECTOR, true);
    json_t *body = json_object_get(spec, "body");
    if (body && !json_is_null(body))
        op->body = def_compile_template_roots(c, "body", body, TMPL_ROOTS_CONNECTOR);
    json_t *inputs = json_object_get(spec, "inputs");
    if (inputs) {
        op->has_inputs = true;
        def_compile_decls(c, "inputs", inputs, "input", &op->inputs, &op->n_inputs);
    }
    const json_t *outputs = def_get_object(c, spec, "outputs", false);
    if (outputs)
        def_compile_output_maps(c, "outputs", outputs, OUTPUT_OF_RESPONSE, &op->outputs,
                                &op->n_outputs);
    def_get_string(c, spec, "description", false);

    /* An input declaration that failed is not in op->inputs: checking input.X against an
     * incomplete list would report names the document does declare. */
    bool inputs_ok = !inputs || json_object_size(inputs) == (size_t)op->n_inputs;
    r->op = inputs_ok ? op : NULL;
    check_template(r, op->path, "path", NULL);
    check_template(r, op->query, "query", NULL);
    check_template(r, op->headers, "headers", NULL);
    check_template(r, op->body, "body", NULL);
    r->op = NULL;
}

static void compile_operations(refs_ctx_t *r, const json_t *doc, connector_t *con)
{
    vctx_t *c = r->c;
    const json_t *ops =
        def_get_members(c, doc, "operations", "must declare at least one operation");
    if (!ops)
        return;
    size_t mark = def_ptr_push(c, "operations");
    con->ops = xcalloc(json_object_size(ops), sizeof *con->ops);
    const char *name;
    json_t *spec;
    json_object_foreach((json_t *)ops, name, spec)
    {
        if (!def_name_ok(c, name, true, name, def_is_identifier, "operation name",
                         DEF_RULE_IDENTIFIER))
            continue;
        size_t mi = def_ptr_push(c, name);
        compile_operation(r, name, spec, &con->ops[con->n_ops++]);
        def_ptr_pop(c, mi);
    }
    def_ptr_pop(c, mark);
}

static void compile_document(vctx_t *c, const json_t *doc, const char *slug_hint, connector_t *con)
{
    def_check_fields(c, doc, doc_fields);
    compile_slug(c, doc, slug_hint, con);
    def_get_string(c, doc, "description", false);

    refs_ctx_t r = {.c = c, .con = con, .config_ok = true};
    json_t *config = json_object_get(doc, "config");
    if (config) {
        def_compile_decls(c, "config", config, "config field", &con->config, &con->n_config);
        r.config_ok = json_is_object(config) && json_object_size(config) == (size_t)con->n_config;
    }
    r.secrets_ok = compile_secrets(c, doc, con);

    if (def_string_template(c, doc, "base_url", true, true, TMPL_ROOTS_CONNECTOR, &con->base_url))
        def_check_url_scheme(c, "base_url", con->base_url);
    check_template(&r, con->base_url, "base_url", NULL);
    def_compile_auth(c, doc, "auth", TMPL_ROOTS_CONNECTOR, &con->auth);
    check_template(&r, con->auth.a, "auth", def_auth_member(con->auth.type, false));
    check_template(&r, con->auth.b, "auth", def_auth_member(con->auth.type, true));
    compile_operations(&r, doc, con);
}

/* Validate and build from DOC (borrowed); the shared body of load and compile. */
static int compile_with_hint(const json_t *doc, const char *slug_hint, connector_t **out,
                             diags_t *diags)
{
    *out = NULL;
    if (!json_is_object(doc)) {
        diags_add(diags, "", "the document must be a JSON object, not %s",
                  doc ? jsonx_type_name(doc) : "nothing");
        return BR_EINVALID_DEFINITION;
    }
    vctx_t c = {.diags = diags, .first_diag = diags->n};
    connector_t *con = XNEW(connector_t);
    compile_document(&c, doc, slug_hint, con);
    bool ok = def_problem_count(&c) == 0;
    buf_deinit(&c.ptr);
    if (!ok) {
        connector_free(con);
        return BR_EINVALID_DEFINITION;
    }
    /* Jansson counts references atomically, so sharing the caller's document is safe. */
    con->doc = json_incref((json_t *)doc);
    con->canonical = def_canonical(doc);
    *out = con;
    return 0;
}

/* ---- entry points ---------------------------------------------------------------------- */

/* Whether DOC (borrowed) is a connector document: an object with a "slug" (an integration has
 * a "name" instead). Any thread. */
bool connector_doc_is_connector(const json_t *doc)
{
    return json_is_object(doc) && json_object_get(doc, "slug") != NULL;
}

/* Validate and compile DOC (borrowed; the connector takes a reference to it, so the caller
 * must not modify it afterwards). LIMITS is accepted for symmetry with definition_compile:
 * an already-parsed document has passed its size and depth limits. Returns 0 and *OUT
 * (owned, free with connector_free), or BR_EINVALID_DEFINITION with every problem appended
 * to DIAGS (caller's, may be NULL; no line numbers). Any thread. */
int connector_compile(const json_t *doc, const definition_limits_t *limits, connector_t **out,
                      diags_t *diags)
{
    (void)limits;
    diags_t none = {0};
    int rc = compile_with_hint(doc, NULL, out, diags ? diags : &none);
    diags_deinit(&none);
    return rc;
}

typedef struct load_args {
    const char *slug_hint;
    connector_t **out;
} load_args_t;

static int load_compile(const json_t *doc, void *arg, diags_t *diags)
{
    load_args_t *a = arg;
    return compile_with_hint(doc, a->slug_hint, a->out, diags);
}

/* Parse TEXT (LEN bytes, borrowed) with LIMITS (may be NULL: 1 MiB, depth 64; duplicate keys
 * refused), then validate and compile it as connector_compile does; SLUG_HINT (may be NULL)
 * must equal the document's slug. Problems carry line and column, as definition_load's do.
 * Returns 0 and *OUT (owned, free with connector_free) or BR_EINVALID_DEFINITION with the
 * problems appended to DIAGS (the caller deinits it either way; may be NULL). Any thread. */
int connector_load(const char *text, size_t len, const char *slug_hint,
                   const definition_limits_t *limits, connector_t **out, diags_t *diags)
{
    *out = NULL;
    load_args_t a = {slug_hint, out};
    return def_load_text(text, len, limits, diags, load_compile, &a);
}

/* Operation NAME of C (borrowed from C), or NULL. Any thread. */
const connector_op_t *connector_operation(const connector_t *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (int i = 0; i < c->n_ops; i++)
        if (strcmp(c->ops[i].name, name) == 0)
            return &c->ops[i];
    return NULL;
}

/* Check a connection's CONFIG (borrowed; NULL = {}) against C's config schema and return the
 * bound config (owned; defaults applied, each value a copy). Stricter than binding inputs: a
 * CONFIG that is not an object, or that has a member `config` does not declare, is refused,
 * since a misspelt setting would otherwise be dropped without a word. NULL with ERR =
 * BR_EINPUT_INVALID and detail {"errors": [{"field", "message"}...]} otherwise. Any thread. */
json_t *connector_bind_config(const connector_t *c, const json_t *config, err_t *err)
{
    return def_bind_decls(c->config, c->n_config, true, true, config, "config field", err);
}

/* Bind INPUT (borrowed; NULL = {}) to OP's declared inputs, exactly as definition_bind_inputs
 * binds an integration's payload: returns the bound inputs (owned) or NULL with ERR =
 * BR_EINPUT_INVALID and its detail. Any thread. */
json_t *connector_bind_input(const connector_op_t *op, const json_t *input, err_t *err)
{
    return def_bind_decls(op->inputs, op->n_inputs, op->has_inputs, false, input, "input", err);
}

/* Whether NAME is one of C's declared secrets. Any thread. */
bool connector_has_secret(const connector_t *c, const char *name)
{
    if (!c || !name)
        return false;
    for (int i = 0; i < c->n_secrets; i++)
        if (strcmp(c->secrets[i], name) == 0)
            return true;
    return false;
}
