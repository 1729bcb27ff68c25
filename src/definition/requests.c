/* requests.c - outbound calls in a document (SPEC §4, §5): the members of `http` and
 * `connector` tasks, and the request pieces connector documents share with them (method,
 * query and header maps, auth, URL schemes, connection ids, connector slugs).
 *
 * Request fields may read conn.* and secret.*, which only a connection supplies: an http task
 * without `connection` that reads them is refused here rather than failing every run. A
 * connector task is pinned at publish to one connector version, which the compiled task and
 * the stored document both carry (see vctx_t.pins).
 */
#include "definition/connector.h"
#include "definition/internal.h"

#include "core/xalloc.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_RESPONSE_LIMIT (1024LL * 1024 * 1024) /* most a task may ask for: 1 GiB */
#define DEFAULT_RESPONSE_VAR "httpResult"

static const char *const methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                      "DELETE", "HEAD", "OPTIONS", NULL};

/* ---- names ----------------------------------------------------------------------------- */

static bool is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* ^[A-Za-z0-9][A-Za-z0-9_.-]*$, at most 128 bytes: a connection id. See definition.h. */
bool definition_connection_id_valid(const char *s)
{
    if (!is_alnum(*s) || strlen(s) > MAX_NAME_LEN)
        return false;
    for (s++; *s; s++)
        if (!is_alnum(*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

/* ^[a-z0-9][a-z0-9_-]*$, at most 128 bytes: a connector slug. */
bool def_is_connector_slug(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  (n > 0 && (ch == '_' || ch == '-'));
        if (!ok)
            return false;
    }
    return n > 0 && n <= MAX_NAME_LEN;
}

/* An RFC 9110 token (a header field name): one or more tchar. */
static bool is_header_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && (s[i] == '\0' || !strchr("!#$%&'*+-.^_`|~", s[i])))
            return false;
    return true;
}

/* The literal connection id member KEY of OBJ into *OUT (owned), reporting what is wrong. */
static void connection_member(vctx_t *c, const json_t *obj, const char *key, bool required,
                              char **out)
{
    const char *id = def_get_string(c, obj, key, required);
    if (!id)
        return;
    if (!definition_connection_id_valid(id)) {
        def_problem(c, key,
                    "invalid connection id '%.200s': must be a literal id matching "
                    "^[A-Za-z0-9][A-Za-z0-9_.-]*$, at most 128 characters",
                    id);
        return;
    }
    *out = xstrdup(id);
}

/* ---- request pieces -------------------------------------------------------------------- */

/* The method member KEY of OBJ into *OUT (owned): any case in the document, upper case
 * stored; "GET" when absent. Returns false after reporting an invalid one (*OUT is then
 * "GET", so the value is always usable). */
bool def_compile_method(vctx_t *c, const json_t *obj, const char *key, char **out)
{
    *out = xstrdup("GET");
    const char *m = def_get_string(c, obj, key, false);
    if (!m)
        return !json_object_get(obj, key);
    char up[16];
    size_t n = strlen(m);
    if (n < sizeof up) {
        for (size_t i = 0; i <= n; i++)
            up[i] = (char)toupper((unsigned char)m[i]);
        for (const char *const *k = methods; *k; k++) {
            if (strcmp(up, *k) == 0) {
                free(*out);
                *out = xstrdup(*k);
                return true;
            }
        }
    }
    def_problem(c, key,
                "unknown method '%.40s'; expected one of GET, POST, PUT, PATCH, DELETE, HEAD, "
                "OPTIONS",
                m);
    return false;
}

/* The `query` or `headers` member KEY of OBJ: an object whose values are templates, compiled
 * with the roots in ALLOWED. Values are strings, numbers or booleans: a header or a query
 * parameter is one piece of text. With HEADER_NAMES, every member name must be a header
 * field name, and two names may not differ only in case (HTTP does not tell them apart).
 * Returns the template (owned), or NULL when absent or after reporting. */
template_t *def_compile_fields_map(vctx_t *c, const json_t *obj, const char *key, unsigned allowed,
                                   bool header_names)
{
    const json_t *v = def_get_object(c, obj, key, false);
    if (!v)
        return NULL;
    int before = def_problem_count(c);
    size_t mark = def_ptr_push(c, key);
    json_t *seen = json_object();
    const char *name;
    size_t nlen;
    json_t *item;
    json_object_keylen_foreach((json_t *)v, name, nlen, item)
    {
        if (header_names && !is_header_name(name, nlen)) {
            def_problem_key(c, name, "invalid header name '%.200s'", name);
        } else if (header_names) {
            char *lower = xstrndup(name, nlen); /* a valid name holds no NUL */
            for (char *p = lower; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (def_seen(seen, lower))
                def_problem_key(c, name,
                                "duplicate header '%.200s' (header names are not case-sensitive)",
                                name);
            free(lower);
        }
        if (!json_is_string(item) && !json_is_number(item) && !json_is_boolean(item))
            def_problem(c, name, "must be a string (a template), a number or a boolean");
    }
    json_decref(seen);
    def_ptr_pop(c, mark);
    /* Compiled even after a problem, so that template errors are reported in the same pass. */
    template_t *t = def_compile_template_roots(c, key, v, allowed);
    if (def_problem_count(c) != before) {
        template_free(t);
        return NULL;
    }
    return t;
}

static bool starts_with_ci(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && strncasecmp(s, prefix, p) == 0;
}

/* Check the scheme of URL, the compiled member KEY of the value in hand: http and https only.
 * A constant URL must be absolute; a templated one is checked when its literal beginning
 * already names a scheme ("ftp://{{vars.host}}"), and otherwise when it is rendered. */
void def_check_url_scheme(vctx_t *c, const char *key, const template_t *url)
{
    const char *s = json_string_value(template_source(url));
    if (!s)
        return;
    size_t n = strlen(s);
    bool constant = template_is_constant(url);
    const char *open = strstr(s, "{{");
    size_t lit = constant || !open ? n : (size_t)(open - s);
    const char *sep = NULL;
    for (size_t i = 0; i + 3 <= lit; i++) {
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
            sep = s + i;
            break;
        }
    }
    if (!sep) {
        if (constant)
            def_problem(c, key, "must be an absolute http:// or https:// URL");
        return;
    }
    if (!starts_with_ci(s, lit, "http://") && !starts_with_ci(s, lit, "https://")) {
        def_problem(c, key, "unsupported URL scheme '%.*s': only http and https are allowed",
                    (int)(sep - s > 40 ? 40 : sep - s), s);
        return;
    }
    if (constant && (size_t)(sep - s) + 3 == n)
        def_problem(c, key, "must name a host after '%.*s'", (int)(sep - s) + 3, s);
}

/* The `auth` member KEY of OBJ into *OUT (its templates compiled with the roots in ALLOWED):
 * {"type": "basic", "username", "password"}, {"type": "bearer", "token"} or
 * {"type": "header", "name", "value"}, nothing else. Absent: AUTH_NONE. Returns false after
 * reporting; *OUT then holds whatever compiled (release with def_auth_deinit either way). */
bool def_compile_auth(vctx_t *c, const json_t *obj, const char *key, unsigned allowed,
                      request_auth_t *out)
{
    static const char *const basic[] = {"type", "username", "password", NULL};
    static const char *const bearer[] = {"type", "token", NULL};
    static const char *const header[] = {"type", "name", "value", NULL};
    memset(out, 0, sizeof *out);
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_object(v)) {
        def_problem(c, key,
                    "must be an object: {\"type\": \"basic\", \"username\", \"password\"}, "
                    "{\"type\": \"bearer\", \"token\"} or {\"type\": \"header\", \"name\", "
                    "\"value\"}");
        return false;
    }
    int before = def_problem_count(c);
    size_t mark = def_ptr_push(c, key);
    const char *type = def_get_string(c, v, "type", true);
    if (type && strcmp(type, "basic") == 0) {
        out->type = AUTH_BASIC;
        def_check_fields(c, v, basic);
        def_string_template(c, v, "username", true, false, allowed, &out->a);
        def_string_template(c, v, "password", true, false, allowed, &out->b);
    } else if (type && strcmp(type, "bearer") == 0) {
        out->type = AUTH_BEARER;
        def_check_fields(c, v, bearer);
        def_string_template(c, v, "token", true, true, allowed, &out->a);
    } else if (type && strcmp(type, "header") == 0) {
        out->type = AUTH_HEADER;
        def_check_fields(c, v, header);
        if (def_string_template(c, v, "name", true, true, allowed, &out->a) &&
            template_is_constant(out->a)) {
            const json_t *name = template_source(out->a);
            if (!is_header_name(json_string_value(name), json_string_length(name)))
                def_problem(c, "name", "invalid header name '%.200s'", json_string_value(name));
        }
        def_string_template(c, v, "value", true, false, allowed, &out->b);
    } else if (type) {
        def_problem(c, "type", "unknown auth type '%.40s'; expected basic, bearer or header", type);
    }
    def_ptr_pop(c, mark);
    return def_problem_count(c) == before;
}

/* Release what A owns; it is AUTH_NONE afterwards. */
void def_auth_deinit(request_auth_t *a)
{
    template_free(a->a);
    template_free(a->b);
    memset(a, 0, sizeof *a);
}

/* Connections must exist at publish and, for a connector task, belong to CONNECTOR (NULL for
 * an http task, which may use any connection) -- when the resolver can tell (SPEC §1). */
static void check_connection(vctx_t *c, const char *id, const char *connector)
{
    const definition_resolver_t *r = c->resolver;
    if (!r || !r->connection_connector || !id)
        return;
    char *owner = r->connection_connector(r->ctx, id);
    if (!owner)
        def_problem(c, "connection",
                    "connection '%s' does not exist: create it first (braid connection set, or "
                    "PUT /connections/%s)",
                    id, id);
    else if (connector && strcmp(owner, connector) != 0)
        def_problem(c, "connection", "connection '%s' belongs to connector '%.200s', not '%s'",
                    id, owner, connector);
    free(owner);
}

/* ---- http ------------------------------------------------------------------------------ */

typedef struct conn_probe {
    vctx_t *c;
    const char *root; /* "secret" or "conn" */
    bool reported;
} conn_probe_t;

static void report_needs_connection(void *ctx, const char *pointer, const char *key, size_t len)
{
    (void)key;
    (void)len;
    conn_probe_t *p = ctx;
    if (p->reported)
        return;
    p->reported = true;
    size_t mark = p->c->ptr.len;
    buf_puts(&p->c->ptr, pointer);
    def_problem(p->c, NULL,
                "{{%s.*}} needs the task's 'connection': only a connection supplies conn.* "
                "and secret.*",
                p->root);
    def_ptr_pop(p->c, mark);
}

/* Report, once, a read of conn.* or secret.* by T, the compiled member KEY (and SUB, when not
 * NULL) of the value in hand, in a task that names no connection. */
static void refuse_without_connection(vctx_t *c, const template_t *t, const char *key,
                                      const char *sub)
{
    if (!t || !(template_roots_used(t) & (TMPL_CONN | TMPL_SECRET)))
        return;
    size_t mark = def_ptr_push(c, key);
    if (sub)
        def_ptr_push(c, sub);
    conn_probe_t p = {c, "secret", false};
    template_root_refs(t, TMPL_SECRET, report_needs_connection, &p);
    p.root = "conn";
    template_root_refs(t, TMPL_CONN, report_needs_connection, &p);
    def_ptr_pop(c, mark);
}

/* The member of an auth object that holds template A (SECOND false) or B of type TYPE:
 * where a problem with that template is reported. */
const char *def_auth_member(auth_type_t type, bool second)
{
    switch (type) {
    case AUTH_BASIC:
        return second ? "password" : "username";
    case AUTH_BEARER:
        return "token";
    case AUTH_HEADER:
        return second ? "value" : "name";
    default:
        return "type";
    }
}

/* `http` (SPEC §4). Request fields (url, query, headers, body, auth) compile with
 * TMPL_ROOTS_REQUEST; timeout_ms is read with the shared members. */
void def_compile_http(vctx_t *c, const json_t *obj, task_t *t)
{
    http_task_t *ht = &t->u.http;
    ht->max_response_bytes = HTTP_DEFAULT_MAX_RESPONSE;
    ht->follow_redirects = true;

    if (def_string_template(c, obj, "url", true, true, TMPL_ROOTS_REQUEST, &ht->url))
        def_check_url_scheme(c, "url", ht->url);
    def_compile_method(c, obj, "method", &ht->method);
    ht->query = def_compile_fields_map(c, obj, "query", TMPL_ROOTS_REQUEST, false);
    ht->headers = def_compile_fields_map(c, obj, "headers", TMPL_ROOTS_REQUEST, true);
    json_t *body = json_object_get(obj, "body");
    if (body && !json_is_null(body)) /* null: no body, as when absent */
        ht->body = def_compile_template_roots(c, "body", body, TMPL_ROOTS_REQUEST);
    def_compile_auth(c, obj, "auth", TMPL_ROOTS_REQUEST, &ht->auth);
    connection_member(c, obj, "connection", false, &ht->connection);
    check_connection(c, ht->connection, NULL);

    def_get_int(c, obj, "max_response_bytes", 1, HTTP_MAX_RESPONSE_LIMIT, &ht->max_response_bytes);
    def_get_bool(c, obj, "follow_redirects", &ht->follow_redirects);
    const char *rv = def_get_string(c, obj, "response_var", false);
    bool rv_ok = rv && def_name_ok(c, "response_var", false, rv, def_is_var_name, "var name",
                                   DEF_RULE_VAR_NAME);
    ht->response_var = xstrdup(rv_ok ? rv : DEFAULT_RESPONSE_VAR);

    if (!json_object_get(obj, "connection")) {
        refuse_without_connection(c, ht->url, "url", NULL);
        refuse_without_connection(c, ht->query, "query", NULL);
        refuse_without_connection(c, ht->headers, "headers", NULL);
        refuse_without_connection(c, ht->body, "body", NULL);
        refuse_without_connection(c, ht->auth.a, "auth", def_auth_member(ht->auth.type, false));
        refuse_without_connection(c, ht->auth.b, "auth", def_auth_member(ht->auth.type, true));
    }
}

/* ---- connector ------------------------------------------------------------------------- */

/* The operation's declared inputs against the task's `input` names (NAMES, borrowed). */
static void check_input_mapping(vctx_t *c, const connector_task_t *kt, const connector_op_t *op,
                                const json_t *names)
{
    if (!op->has_inputs)
        return; /* no declarations: every input key is passed through */
    json_t *problems = def_mapping_check(op->inputs, op->n_inputs, names);
    size_t i;
    json_t *p;
    json_array_foreach(problems, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (json_is_true(json_object_get(p, "declared"))) {
            def_problem(c, "input", "required input '%s' of operation '%s' is not mapped", name,
                        kt->operation);
        } else {
            size_t mark = def_ptr_push(c, "input");
            def_problem_key(c, name,
                            "input '%.200s' is not declared by operation '%s' of connector "
                            "'%s' version %d",
                            name, kt->operation, kt->connector, kt->version);
            def_ptr_pop(c, mark);
        }
    }
    json_decref(problems);
}

/* Pin the task to its connector version and check the operation and its inputs, when the
 * resolver can look connectors up. VERSION_GIVEN: the document has a `version` member
 * (valid or not); NAMES (borrowed): the task's input names, NULL when `input` is invalid. */
static void pin_connector(vctx_t *c, task_t *t, bool version_given, const json_t *names)
{
    connector_task_t *kt = &t->u.connector;
    const definition_resolver_t *r = c->resolver;
    if (!r || !r->connector_get) {
        if (!version_given)
            def_problem(c, "version", "version is required when connectors cannot be looked up");
        return;
    }
    if (!kt->connector || (version_given && kt->version == 0))
        return; /* already reported */
    const connector_t *con = r->connector_get(r->ctx, kt->connector, kt->version);
    if (!con) {
        if (kt->version > 0 && r->connector_get(r->ctx, kt->connector, 0))
            def_problem(c, "version", "connector '%s' has no version %d", kt->connector,
                        kt->version);
        else
            def_problem(c, "connector", "connector '%s' is not published", kt->connector);
        return;
    }
    if (kt->version == 0) {
        if (con->version < 1) {
            def_problem(c, "connector", "the latest version of connector '%s' is unknown",
                        kt->connector);
            return;
        }
        kt->version = con->version;
        if (!c->pins)
            c->pins = json_array();
        json_array_append_new(c->pins, json_pack("[i, i]", t->index, kt->version));
    }
    if (!kt->operation)
        return;
    const connector_op_t *op = connector_operation(con, kt->operation);
    if (!op) {
        def_problem(c, "operation", "connector '%s' version %d has no operation '%s'",
                    kt->connector, kt->version, kt->operation);
        return;
    }
    if (names)
        check_input_mapping(c, kt, op, names);
}

/* `connector` (SPEC §5): pinned at publish to (connector, version, operation, connection).
 * Its `input` templates see the integration's roots, never conn.* or secret.*: those are read
 * only inside the connector's own templates. timeout_ms is read with the shared members. */
void def_compile_connector(vctx_t *c, const json_t *obj, task_t *t)
{
    connector_task_t *kt = &t->u.connector;
    const char *slug = def_get_string(c, obj, "connector", true);
    if (slug && def_name_ok(c, "connector", false, slug, def_is_connector_slug, "connector slug",
                            DEF_RULE_SLUG))
        kt->connector = xstrdup(slug);

    bool version_given = json_object_get(obj, "version") != NULL;
    int64_t n;
    if (def_get_int(c, obj, "version", 1, INT_MAX, &n))
        kt->version = (int)n;

    const char *op = def_get_string(c, obj, "operation", true);
    if (op && def_name_ok(c, "operation", false, op, def_is_identifier, "operation name",
                          DEF_RULE_IDENTIFIER))
        kt->operation = xstrdup(op);

    connection_member(c, obj, "connection", true, &kt->connection);

    json_t *names = NULL;
    json_t *input = json_object_get(obj, "input");
    if (!input)
        names = json_array();
    else if (def_input_names(c, "input", input, &names))
        kt->input = def_compile_template(c, "input", input);

    const json_t *out = def_get_object(c, obj, "output", false);
    if (out)
        def_compile_output_maps(c, "output", out, OUTPUT_OF_RESPONSE, &kt->outputs, &kt->n_outputs);

    check_connection(c, kt->connection, kt->connector);
    pin_connector(c, t, version_given, names);
    json_decref(names);
}
