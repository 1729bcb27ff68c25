/* test_connector.c - unit tests of connector documents (src/definition/connector.c): the SPEC
 * §5 example compiles with every field in place, each rule refuses with its JSON Pointer (and
 * line, from text), binding a connection's config and an operation's input.
 *
 * Documents are written with single quotes for readability; doc() turns them into JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "defs_helpers.h"

#include "core/xalloc.h"
#include "definition/connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------------------- */

static int load_q(const char *s, const char *hint, connector_t **out, diags_t *d)
{
    char *text = doc(s);
    int rc = connector_load(text, strlen(text), hint, NULL, out, d);
    free(text);
    return rc;
}

/* Single-quoted document S loads; returns it (owned). */
static connector_t *expect_ok(const char *s)
{
    connector_t *c = NULL;
    diags_t d = {0};
    expect_loaded(s, load_q(s, NULL, &c, &d), &d);
    assert_non_null(c);
    return c;
}

static void expect_ok_free(const char *s)
{
    connector_free(expect_ok(s));
}

/* Document S is refused with exactly one problem, at POINTER, whose message contains MSG. */
static void expect_problem(const char *s, const char *pointer, const char *msg)
{
    connector_t *c = NULL;
    diags_t d = {0};
    expect_refused(s, load_q(s, NULL, &c, &d), &d, pointer, msg);
    assert_null(c);
}

/* The SPEC §5 example. */
static const char *const billing =
    "{\n"
    "  'slug': 'billing',\n"
    "  'base_url': '{{conn.base_url}}',\n"
    "  'config': {'base_url': {'type': 'string', 'required': true}},\n"
    "  'secrets': ['api_key'],\n"
    "  'auth': {'type': 'bearer', 'token': '{{secret.api_key}}'},\n"
    "  'operations': {\n"
    "    'create_invoice': {\n"
    "      'method': 'POST', 'path': '/invoices',\n"
    "      'inputs': {'lines': {'type': 'array', 'required': true}},\n"
    "      'body': {'lines': '{{input.lines}}'},\n"
    "      'outputs': {'invoice_id': 'body.id', 'total': 'body.total'}\n"
    "    }\n"
    "  }\n"
    "}\n";

/* ---- valid documents ------------------------------------------------------------------- */

static void test_connector_spec_example_compiles(void **state)
{
    (void)state;
    connector_t *c = expect_ok(billing);
    assert_string_equal(c->slug, "billing");
    assert_int_equal(c->version, 0);
    assert_string_equal(json_string_value(template_source(c->base_url)), "{{conn.base_url}}");
    assert_int_equal(c->n_config, 1);
    assert_string_equal(c->config[0].name, "base_url");
    assert_int_equal(c->config[0].type, VT_STRING);
    assert_true(c->config[0].required);
    assert_int_equal(c->n_secrets, 1);
    assert_string_equal(c->secrets[0], "api_key");
    assert_true(connector_has_secret(c, "api_key"));
    assert_false(connector_has_secret(c, "base_url"));
    assert_false(connector_has_secret(c, NULL));
    assert_int_equal(c->auth.type, AUTH_BEARER);
    assert_non_null(c->auth.a);
    assert_null(c->auth.b);
    assert_int_equal(c->n_ops, 1);
    const connector_op_t *op = connector_operation(c, "create_invoice");
    assert_ptr_equal(op, &c->ops[0]);
    assert_null(connector_operation(c, "delete"));
    assert_null(connector_operation(c, NULL));
    assert_string_equal(op->name, "create_invoice");
    assert_string_equal(op->method, "POST");
    assert_string_equal(json_string_value(template_source(op->path)), "/invoices");
    assert_null(op->query);
    assert_null(op->headers);
    assert_non_null(op->body);
    assert_true(op->has_inputs);
    assert_int_equal(op->n_inputs, 1);
    assert_string_equal(op->inputs[0].name, "lines");
    assert_int_equal(op->inputs[0].type, VT_ARRAY);
    assert_true(op->inputs[0].required);
    assert_int_equal(op->n_outputs, 2);
    assert_string_equal(op->outputs[0].var, "invoice_id");
    assert_string_equal(op->outputs[0].path, "body.id");
    assert_string_equal(op->outputs[1].var, "total");
    assert_string_equal(op->outputs[1].path, "body.total");
    assert_true(connector_doc_is_connector(c->doc));
    assert_non_null(strstr(c->canonical, "{\"auth\":{\"token\":\"{{secret.api_key}}\","
                                         "\"type\":\"bearer\"},\"base_url\":"));

    /* the compiled templates render with the operation's scope */
    json_t *conn = json_pack("{s:s}", "base_url", "https://billing.example");
    json_t *secret = json_pack("{s:s}", "api_key", "k");
    json_t *input = json_pack("{s:[i]}", "lines", 1);
    tmpl_scope_t sc = {.conn = conn, .secret = secret, .input = input};
    json_t *v = template_render(c->base_url, &sc, NULL);
    assert_string_equal(json_string_value(v), "https://billing.example");
    json_decref(v);
    v = template_render(op->body, &sc, NULL);
    assert_int_equal(json_array_size(json_object_get(v, "lines")), 1);
    json_decref(v);
    v = template_render(c->auth.a, &sc, NULL);
    assert_string_equal(json_string_value(v), "k");
    json_decref(v);
    json_decref(conn);
    json_decref(secret);
    json_decref(input);
    connector_free(c);
}

static void test_connector_every_field_and_defaults(void **state)
{
    (void)state;
    connector_t *c = expect_ok(
        "{'slug': 'a-b_9', 'description': 'd', 'base_url': 'https://x.example/{{conn.tenant}}',"
        " 'config': {'tenant': {'type': 'string', 'default': 't1', 'description': 'who'},"
        "            'region': {'type': 'any'}},"
        " 'secrets': [],"
        " 'auth': {'type': 'header', 'name': 'X-Api-Key', 'value': 'fixed'},"
        " 'operations': {"
        "   'list': {'description': 'all', 'method': 'get',"
        "            'query': {'region': '{{conn.region}}', 'limit': 10, 'x': true},"
        "            'headers': {'Accept': 'application/json'}},"
        "   'get': {'path': '/items/{{input.id | urlencode}}',"
        "           'inputs': {'id': {'type': 'string', 'required': true}},"
        "           'outputs': {'item': 'body', 'etag': 'headers.etag', 'st': 'status', "
        "                       'all': ''}},"
        "   'raw': {'method': 'put', 'body': 'text {{input.anything}}'}}}");
    assert_int_equal(c->n_config, 2);
    assert_string_equal(json_string_value(c->config[0].default_value), "t1");
    assert_int_equal(c->n_secrets, 0);
    assert_int_equal(c->auth.type, AUTH_HEADER);
    assert_int_equal(c->n_ops, 3);
    const connector_op_t *list = connector_operation(c, "list");
    assert_string_equal(list->method, "GET");
    assert_non_null(list->path); /* "" when absent */
    assert_string_equal(json_string_value(template_source(list->path)), "");
    assert_non_null(list->query);
    assert_non_null(list->headers);
    assert_null(list->body);
    assert_false(list->has_inputs);
    assert_int_equal(list->n_outputs, 0);
    const connector_op_t *get = connector_operation(c, "get");
    assert_int_equal(get->n_outputs, 4);
    assert_string_equal(connector_operation(c, "raw")->method, "PUT");
    connector_free(c);

    /* no auth, no config, no secrets */
    c = expect_ok("{'slug': 's', 'base_url': 'http://h', 'operations': {'o': {}}}");
    assert_int_equal(c->auth.type, AUTH_NONE);
    assert_int_equal(c->n_config, 0);
    assert_null(c->secrets);
    assert_string_equal(c->ops[0].method, "GET");
    connector_free(c);
}

/* ---- refusals -------------------------------------------------------------------------- */

typedef struct refusal {
    const char *doc;
    const char *pointer;
    const char *msg;
} refusal_t;

#define OPS "'operations': {'o': {}}"
#define BASE "'slug': 's', 'base_url': 'https://h', "
#define OP(x) "{" BASE "'operations': {'o': {" x "}}}"

static void test_connector_refusals(void **state)
{
    (void)state;
    static const refusal_t cases[] = {
        {"[]", "", "the document must be a JSON object"},
        /* the document */
        {"{" BASE "'colour': 1, " OPS "}", "/colour", "unknown field 'colour'"},
        {"{" BASE "'name': 'x', " OPS "}", "/name", "unknown field 'name'"},
        {"{'base_url': 'https://h', " OPS "}", "/slug", "required field 'slug' is missing"},
        {"{'slug': 'Billing', 'base_url': 'https://h', " OPS "}", "/slug",
         "invalid slug 'Billing': must match ^[a-z0-9][a-z0-9_-]*$"},
        {"{'slug': '-x', 'base_url': 'https://h', " OPS "}", "/slug", "invalid slug '-x'"},
        {"{'slug': 'a.b', 'base_url': 'https://h', " OPS "}", "/slug", "invalid slug 'a.b'"},
        {"{'slug': 'a/b', 'base_url': 'https://h', " OPS "}", "/slug", "invalid slug 'a/b'"},
        {"{'slug': 3, 'base_url': 'https://h', " OPS "}", "/slug", "must be a string"},
        {"{" BASE "'description': 1, " OPS "}", "/description", "must be a string"},
        /* base_url */
        {"{'slug': 's', " OPS "}", "/base_url", "required field 'base_url' is missing"},
        {"{'slug': 's', 'base_url': '', " OPS "}", "/base_url", "must not be empty"},
        {"{'slug': 's', 'base_url': ['x'], " OPS "}", "/base_url", "must be a string"},
        {"{'slug': 's', 'base_url': 'ftp://h', " OPS "}", "/base_url",
         "unsupported URL scheme 'ftp'"},
        {"{'slug': 's', 'base_url': 'h.example', " OPS "}", "/base_url",
         "must be an absolute http:// or https:// URL"},
        {"{'slug': 's', 'base_url': '{{conn.u', " OPS "}", "/base_url", ""},
        {"{'slug': 's', 'base_url': '{{vars.u}}', " OPS "}", "/base_url",
         "root 'vars' is not allowed here"},
        {"{'slug': 's', 'base_url': 'https://{{tasks.a.result}}', " OPS "}", "/base_url",
         "root 'tasks' is not allowed here"},
        /* config */
        {"{" BASE "'config': [], " OPS "}", "/config",
         "must be an object: config field name -> {\"type\""},
        {"{" BASE "'config': {'a b': {}}, " OPS "}", "/config/a b",
         "invalid config field name 'a b'"},
        {"{" BASE "'config': {'a': 1}, " OPS "}", "/config/a", "must be an object {\"type\""},
        {"{" BASE "'config': {'a': {'type': 'text'}}, " OPS "}", "/config/a/type",
         "unknown type 'text'"},
        {"{" BASE "'config': {'a': {'type': 'string', 'default': 1}}, " OPS "}",
         "/config/a/default", "must be string, got integer"},
        {"{" BASE "'config': {'a': {'required': true, 'default': 1}}, " OPS "}",
         "/config/a/required", "a required config field cannot have a default"},
        {"{" BASE "'config': {'a': {'secret': true}}, " OPS "}", "/config/a/secret",
         "unknown field 'secret'"},
        /* secrets */
        {"{" BASE "'secrets': 'k', " OPS "}", "/secrets", "must be an array"},
        {"{" BASE "'secrets': [1], " OPS "}", "/secrets/0", "must be a string: a secret name"},
        {"{" BASE "'secrets': ['a-b'], " OPS "}", "/secrets/0", "invalid secret name 'a-b'"},
        {"{" BASE "'secrets': ['k', 'j', 'k'], " OPS "}", "/secrets/2", "duplicate secret 'k'"},
        /* auth */
        {"{" BASE "'auth': [], " OPS "}", "/auth", "must be an object"},
        {"{" BASE "'auth': {'type': 'oauth2'}, " OPS "}", "/auth/type",
         "unknown auth type 'oauth2'"},
        {"{" BASE "'auth': {'type': 'bearer', 'token': 't', 'scheme': 'x'}, " OPS "}",
         "/auth/scheme", "unknown field 'scheme'"},
        {"{" BASE "'auth': {'type': 'basic', 'password': 'p'}, " OPS "}", "/auth/username",
         "required field 'username' is missing"},
        {"{" BASE "'auth': {'type': 'header', 'name': '', 'value': 'v'}, " OPS "}", "/auth/name",
         "must not be empty"},
        /* operations */
        {"{'slug': 's', 'base_url': 'https://h'}", "/operations",
         "required field 'operations' is missing"},
        {"{" BASE "'operations': {}}", "/operations", "must declare at least one operation"},
        {"{" BASE "'operations': []}", "/operations", "must be an object"},
        {"{" BASE "'operations': {'a-b': {}}}", "/operations/a-b", "invalid operation name 'a-b'"},
        {"{" BASE "'operations': {'o': 'GET /x'}}", "/operations/o", "must be an object"},
        {OP("'url': '/x'"), "/operations/o/url", "unknown field 'url'"},
        {OP("'method': 'BREW'"), "/operations/o/method", "unknown method 'BREW'"},
        {OP("'path': 1"), "/operations/o/path", "must be a string"},
        {OP("'path': '/x/{{input.id'"), "/operations/o/path", ""},
        {OP("'query': {'a': [1]}"), "/operations/o/query/a", "must be a string (a template)"},
        {OP("'headers': {'A:B': 'x'}"), "/operations/o/headers/A:B", "invalid header name"},
        {OP("'body': {'a': '{{run.id}}'}"), "/operations/o/body/a", "root 'run' is not allowed"},
        {OP("'inputs': []"), "/operations/o/inputs", "must be an object: input name ->"},
        {OP("'inputs': {'x': {'type': 'float'}}"), "/operations/o/inputs/x/type",
         "unknown type 'float'"},
        {OP("'outputs': []"), "/operations/o/outputs", "must be an object"},
        {OP("'outputs': {'id': 'id'}"), "/operations/o/outputs/id",
         "invalid path 'id': a response is {status, headers, body}"},
        {OP("'outputs': {'id': 5}"), "/operations/o/outputs/id", "must be a string"},
        {OP("'outputs': {'1x': 'body'}"), "/operations/o/outputs/1x", "invalid var name '1x'"},
        {OP("'outputs': {'x': 'body['}"), "/operations/o/outputs/x", "invalid path 'body['"},
        {OP("'description': {}"), "/operations/o/description", "must be a string"},
        /* names templates read must be declared */
        {"{" BASE
         "'secrets': ['api_key'], 'auth': {'type': 'bearer', 'token': '{{secret.apikey}}'},"
         " " OPS "}",
         "/auth/token", "secret 'apikey' is not declared in 'secrets'"},
        {"{" BASE "'auth': {'type': 'basic', 'username': 'u', 'password': '{{secret.pw}}'}, " OPS
         "}",
         "/auth/password", "secret 'pw' is not declared in 'secrets'"},
        {"{'slug': 's', 'base_url': '{{conn.url}}', 'config': {'base': {}}, " OPS "}", "/base_url",
         "config field 'url' is not declared in 'config'"},
        {"{'slug': 's', 'base_url': '{{conn.url}}', " OPS "}", "/base_url",
         "config field 'url' is not declared in 'config'"},
        {"{" BASE "'secrets': ['k'], 'operations': {'o': {'headers': {'X-K': '{{secret.k}}', "
         "'X-J': 'a {{secret.j}} {{secret.j}}'}}}}",
         "/operations/o/headers/X-J", "secret 'j' is not declared in 'secrets'"},
        {"{" BASE "'secrets': ['k'], 'operations': {'o': {'body': {'all': '{{secret}}'}}}}",
         "/operations/o/body/all", "{{secret}} must name one declared secret, as {{secret.NAME}}"},
        {"{" BASE "'secrets': ['k'], 'config': {'c': {}}, "
         "'operations': {'o': {'body': '{{secret[conn.c]}}'}}}",
         "/operations/o/body", "{{secret}} must name one declared secret"},
        {"{" BASE "'operations': {'o': {'query': {'q': '{{conn.q | default:1}}'}}}}",
         "/operations/o/query/q", "config field 'q' is not declared in 'config'"},
        {"{" BASE "'operations': {'o': {'inputs': {'id': {}}, 'path': '/x/{{input.ID}}'}}}",
         "/operations/o/path", "input 'ID' is not declared in the operation's 'inputs'"},
        {"{" BASE "'operations': {'o': {'inputs': {'id': {}}, "
         "'body': [{'a': '{{input.id + input.n}}'}]}}}",
         "/operations/o/body/0/a", "input 'n' is not declared in the operation's 'inputs'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_problem(cases[i].doc, cases[i].pointer, cases[i].msg);

    /* a slug at the limit passes, one past it does not */
    expect_name_limit("{'slug': '", "', 'base_url': 'https://h', " OPS "}", "/slug",
                      "at most 128 characters", expect_ok_free, expect_problem);

    /* what templates may read when it is declared, or cannot be checked */
    connector_free(
        expect_ok("{" BASE "'config': {'c': {}}, 'secrets': ['k'], "
                  "'operations': {'o': {'body': {'a': '{{conn}}', 'b': '{{conn[input.x]}}', "
                  "'c': '{{input}}', 'd': '{{input.anything}}', 'e': '{{secret.k}}'}}}}"));
}

static void test_connector_reports_every_problem_with_lines(void **state)
{
    (void)state;
    const char *text = "{\n"
                       "  \"slug\": \"Bad\",\n"
                       "  \"base_url\": \"ftp://x\",\n"
                       "  \"secrets\": [\"k\", \"k\"],\n"
                       "  \"operations\": {\"o\": {\"method\": \"NOPE\",\n"
                       "                       \"body\": \"{{secret.z}}\"}}\n"
                       "}\n";
    connector_t *c = NULL;
    diags_t d = {0};
    assert_int_equal(connector_load(text, strlen(text), NULL, NULL, &c, &d),
                     BR_EINVALID_DEFINITION);
    assert_null(c);
    static const struct {
        const char *pointer;
        int line, column;
    } want[] = {
        {"/slug", 2, 11},
        {"/secrets/1", 4, 20},
        {"/base_url", 3, 15},
        {"/operations/o/method", 5, 34},
        {"/operations/o/body", 6, 32},
    };
    if (d.n != (int)(sizeof want / sizeof want[0]))
        dump_diags(&d);
    assert_int_equal(d.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(d.items[i].pointer, want[i].pointer);
        assert_int_equal(d.items[i].line, want[i].line);
        assert_int_equal(d.items[i].column, want[i].column);
    }
    diags_deinit(&d);

    /* a syntax error has its line and column */
    const char *bad = "{\"slug\": \"s\",\n \"base_url\": }";
    assert_int_equal(connector_load(bad, strlen(bad), NULL, NULL, &c, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "");
    assert_int_equal(d.items[0].line, 2);
    diags_deinit(&d);

    /* duplicate keys are refused, as in integrations */
    const char *dup = "{\"slug\": \"s\", \"slug\": \"t\"}";
    assert_int_equal(connector_load(dup, strlen(dup), NULL, NULL, &c, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    diags_deinit(&d);

    /* the size limit applies */
    char *ok = doc(billing);
    definition_limits_t lim = {.max_bytes = 64};
    assert_int_equal(connector_load(ok, strlen(ok), NULL, &lim, &c, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    diags_deinit(&d);
    /* a NULL DIAGS still gives the verdict */
    assert_int_equal(connector_load(ok, strlen(ok), NULL, &lim, &c, NULL), BR_EINVALID_DEFINITION);
    free(ok);
}

static void test_connector_slug_hint_and_compile(void **state)
{
    (void)state;
    connector_t *c = NULL;
    diags_t d = {0};
    assert_int_equal(load_q(billing, "billing", &c, &d), 0);
    connector_free(c);
    assert_int_equal(load_q(billing, "shipping", &c, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "/slug");
    assert_non_null(strstr(d.items[0].message, "does not match 'shipping'"));
    diags_deinit(&d);

    /* connector_compile: a parsed document, shared not copied, no line numbers */
    char *text = doc(billing);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(connector_compile(j, NULL, &c, &d), 0);
    assert_ptr_equal(c->doc, j);
    char *canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(c->canonical, canon);
    free(canon);
    connector_free(c);
    json_object_set_new(j, "extra", json_true());
    assert_int_equal(connector_compile(j, NULL, &c, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.items[0].line, 0);
    diags_deinit(&d);
    assert_int_equal(connector_compile(j, NULL, &c, NULL), BR_EINVALID_DEFINITION);
    json_decref(j);
    connector_free(NULL);

    assert_false(connector_doc_is_connector(NULL));
    j = json_pack("{s:s}", "name", "x");
    assert_false(connector_doc_is_connector(j));
    json_object_set_new(j, "slug", json_string("x"));
    assert_true(connector_doc_is_connector(j));
    json_decref(j);
}

/* ---- binding --------------------------------------------------------------------------- */

static void test_connector_bind_config(void **state)
{
    (void)state;
    connector_t *c = expect_ok("{'slug': 's', 'base_url': '{{conn.url}}', "
                               "'config': {'url': {'type': 'string', 'required': true}, "
                               "           'retries': {'type': 'integer', 'default': 3}, "
                               "           'tags': {'type': 'array'}}, "
                               "'operations': {'o': {}}}");
    err_t err = {0};
    json_t *cfg = json_pack("{s:s, s:[s]}", "url", "https://x", "tags", "a");
    json_t *bound = connector_bind_config(c, cfg, &err);
    assert_non_null(bound);
    assert_string_equal(json_string_value(json_object_get(bound, "url")), "https://x");
    assert_int_equal(json_integer_value(json_object_get(bound, "retries")), 3);
    assert_ptr_not_equal(json_object_get(bound, "tags"), json_object_get(cfg, "tags")); /* copy */
    assert_int_equal(json_object_size(bound), 3);
    json_decref(bound);
    json_decref(cfg);

    /* every problem at once: missing, mistyped, undeclared */
    cfg = json_pack("{s:i, s:s, s:b}", "retries", 1, "tags", "a", "colour", 1);
    expect_input_errors(connector_bind_config(c, cfg, &err), &err, NULL,
                        "[{\"field\": \"url\", \"message\": \"is required\"},"
                        " {\"field\": \"tags\", \"message\": \"must be array, got string\"},"
                        " {\"field\": \"colour\", \"message\": \"is not declared\"}]");
    json_decref(cfg);
    /* a null value counts as absent */
    cfg = json_pack("{s:n}", "url");
    expect_input_errors(connector_bind_config(c, cfg, &err), &err, NULL,
                        "[{\"field\": \"url\", \"message\": \"is required\"}]");
    json_decref(cfg);
    /* NULL is {}; a config that is no object is refused */
    expect_input_errors(connector_bind_config(c, NULL, &err), &err, NULL,
                        "[{\"field\": \"url\", \"message\": \"is required\"}]");
    cfg = json_pack("[s]", "x");
    expect_input_errors(connector_bind_config(c, cfg, &err), &err, NULL,
                        "[{\"field\": \"\", \"message\": \"must be an object, got array\"},"
                        " {\"field\": \"url\", \"message\": \"is required\"}]");
    json_decref(cfg);
    /* the message counts the problems */
    cfg = json_pack("{s:s}", "colour", "red");
    assert_null(connector_bind_config(c, cfg, &err));
    assert_string_equal(err.msg, "2 config fields are invalid");
    err_clear(&err);
    json_decref(cfg);
    connector_free(c);

    /* a connector without config takes only {} */
    c = expect_ok("{'slug': 's', 'base_url': 'https://h', 'operations': {'o': {}}}");
    bound = connector_bind_config(c, NULL, &err);
    assert_int_equal(json_object_size(bound), 0);
    json_decref(bound);
    cfg = json_pack("{s:s}", "url", "x");
    expect_input_errors(connector_bind_config(c, cfg, &err), &err, NULL,
                        "[{\"field\": \"url\", \"message\": \"is not declared\"}]");
    json_decref(cfg);
    connector_free(c);
}

static void test_connector_bind_input(void **state)
{
    (void)state;
    connector_t *c =
        expect_ok("{'slug': 's', 'base_url': 'https://h', 'operations': {"
                  " 'typed': {'inputs': {'id': {'type': 'integer', 'required': true},"
                  "                      'note': {'type': 'string', 'default': 'none'}}},"
                  " 'open': {}}}");
    const connector_op_t *typed = connector_operation(c, "typed");
    const connector_op_t *open = connector_operation(c, "open");
    err_t err = {0};

    json_t *in = json_pack("{s:i, s:s}", "id", 7, "extra", "dropped");
    json_t *bound = connector_bind_input(typed, in, &err);
    assert_non_null(bound);
    assert_int_equal(json_integer_value(json_object_get(bound, "id")), 7);
    assert_string_equal(json_string_value(json_object_get(bound, "note")), "none");
    assert_null(json_object_get(bound, "extra")); /* undeclared inputs are not bound */
    json_decref(bound);

    /* without declarations every key passes through, as a copy */
    bound = connector_bind_input(open, in, &err);
    assert_true(json_equal(bound, in));
    assert_ptr_not_equal(bound, in);
    json_decref(bound);
    json_decref(in);
    bound = connector_bind_input(open, NULL, &err);
    assert_int_equal(json_object_size(bound), 0);
    json_decref(bound);

    in = json_pack("{s:s}", "id", "seven");
    expect_input_errors(connector_bind_input(typed, in, &err), &err, NULL,
                        "[{\"field\": \"id\", \"message\": \"must be integer, got string\"}]");
    json_decref(in);
    expect_input_errors(connector_bind_input(typed, NULL, &err), &err, NULL,
                        "[{\"field\": \"id\", \"message\": \"is required\"}]");
    /* an input that is no object binds as {}, as an integration's payload does */
    in = json_string("x");
    expect_input_errors(connector_bind_input(typed, in, &err), &err, NULL,
                        "[{\"field\": \"id\", \"message\": \"is required\"}]");
    json_decref(in);
    connector_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connector_spec_example_compiles),
        cmocka_unit_test(test_connector_every_field_and_defaults),
        cmocka_unit_test(test_connector_refusals),
        cmocka_unit_test(test_connector_reports_every_problem_with_lines),
        cmocka_unit_test(test_connector_slug_hint_and_compile),
        cmocka_unit_test(test_connector_bind_config),
        cmocka_unit_test(test_connector_bind_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
