/* test_definition.c - unit tests of src/definition/: validation (every rule, with its JSON
 * Pointer and message), compilation (every field resolved), line and column of problems,
 * parse limits, binding inputs, caller mappings, globs.
 *
 * Documents are written with single quotes for readability; doc() turns them into JSON.
 * Sample documents live in tests/cases/definitions/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "defs_helpers.h"

#include "core/buf.h"
#include "core/xalloc.h"
#include "definition/connector.h"
#include "definition/definition.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------------------- */

static const char *source_dir(void)
{
    const char *d = getenv("BRAID_SOURCE_DIR");
    return d && *d ? d : ".";
}

/* Contents of FILE under the source tree (returned owned), length in *LEN. */
static char *read_source(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", source_dir(), rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = xmalloc((size_t)n + 1);
    size_t got = fread(text, 1, (size_t)n, f);
    fclose(f);
    text[got] = '\0';
    *len = got;
    return text;
}

/* Load single-quoted document S; returns the code. */
static int load_q(const char *s, const definition_limits_t *lim, const definition_resolver_t *res,
                  definition_t **out, diags_t *d)
{
    char *text = doc(s);
    int rc = definition_load(text, strlen(text), NULL, lim, res, out, d);
    free(text);
    return rc;
}

/* The diagnostic at exactly POINTER, or fail. */
static const diag_t *find_diag(const diags_t *d, const char *pointer)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->items[i].pointer, pointer) == 0)
            return &d->items[i];
    dump_diags(d);
    fail_msg("no problem reported at '%s'", pointer);
    return NULL;
}

/* Document S is refused with exactly one problem, at POINTER, whose message contains MSG. */
static void expect_problem_r(const char *s, const definition_resolver_t *res, const char *pointer,
                             const char *msg)
{
    definition_t *def = NULL;
    diags_t d = {0};
    expect_refused(s, load_q(s, NULL, res, &def, &d), &d, pointer, msg);
    assert_null(def);
}

static void expect_problem(const char *s, const char *pointer, const char *msg)
{
    expect_problem_r(s, NULL, pointer, msg);
}

/* Document S loads; returns it (owned). */
static definition_t *expect_ok_r(const char *s, const definition_resolver_t *res)
{
    definition_t *def = NULL;
    diags_t d = {0};
    expect_loaded(s, load_q(s, NULL, res, &def, &d), &d);
    assert_non_null(def);
    return def;
}

static definition_t *expect_ok(const char *s)
{
    return expect_ok_r(s, NULL);
}

static void expect_ok_free(const char *s)
{
    definition_free(expect_ok(s));
}

/* A one-task document around task body TASK (single-quoted JSON members, no braces). */
static char *one_task(const char *task)
{
    return xasprintf("{'name': 'x', 'tasks': [{'id': 't', %s}]}", task);
}

static void expect_task_problem(const char *task, const char *pointer, const char *msg)
{
    char *s = one_task(task);
    expect_problem(s, pointer, msg);
    free(s);
}

static void expect_task_ok(const char *task)
{
    char *s = one_task(task);
    definition_free(expect_ok(s));
    free(s);
}

static bool exists_known(void *ctx, const char *name)
{
    (void)ctx;
    static const char *const published[] = {"known/one", "other", "orders/validate", "mail/send"};
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++)
        if (strcmp(name, published[i]) == 0)
            return true;
    return false;
}

static const definition_resolver_t resolver = {.integration_exists = exists_known};

/* ---- compiling valid documents --------------------------------------------------------- */

static void test_definition_full_document_compiles(void **state)
{
    (void)state;
    size_t len;
    char *text = read_source("tests/cases/definitions/full.json", &len);
    definition_t *def = NULL;
    diags_t d = {0};
    int rc = definition_load(text, len, "orders/intake", NULL, &resolver, &def, &d);
    if (rc != 0)
        dump_diags(&d);
    assert_int_equal(rc, 0);
    diags_deinit(&d);

    assert_string_equal(def->name, "orders/intake");
    assert_int_equal(def->version, 0);
    assert_int_equal(def->n_triggers, 2);
    assert_string_equal(def->triggers[0], "order-created");
    assert_string_equal(def->triggers[1], "orders.v2");
    assert_true(def->run_async);
    assert_true(def->has_inputs);
    assert_int_equal(def->n_inputs, 4);
    assert_string_equal(def->inputs[0].name, "order");
    assert_int_equal(def->inputs[0].type, VT_OBJECT);
    assert_true(def->inputs[0].required);
    assert_null(def->inputs[0].default_value);
    assert_string_equal(def->inputs[1].name, "priority");
    assert_int_equal(def->inputs[1].type, VT_INTEGER);
    assert_false(def->inputs[1].required);
    assert_int_equal(json_integer_value(def->inputs[1].default_value), 0);
    assert_int_equal(def->inputs[2].type, VT_STRING);
    assert_int_equal(def->inputs[3].type, VT_ANY);
    assert_true(def->has_outputs);
    assert_null(def->outputs_tmpl);
    assert_int_equal(def->n_output_vars, 2);
    assert_string_equal(def->output_vars[1], "total");
    assert_int_equal(def->timeout_ms, 30000);
    assert_int_equal(def->max_concurrency, 5);
    assert_int_equal(def->n_callers, 2);
    assert_string_equal(def->callers[0], "orders/*");
    assert_int_equal(def->on_interrupt, ON_INTERRUPT_FAIL);
    assert_int_equal(def->n_tasks, 9);
    for (int i = 0; i < def->n_tasks; i++)
        assert_int_equal(def->tasks[i].index, i);

    /* validate: literal target, pinned version, sync, input mapping, outputs, cases */
    const task_t *t = definition_task(def, "validate");
    assert_ptr_equal(t, &def->tasks[0]);
    assert_int_equal(t->type, TASK_CALL_INTEGRATION);
    assert_string_equal(task_type_name(t->type), "call_integration");
    assert_int_equal(t->next, 1);
    assert_int_equal(t->n_cases, 2);
    assert_string_equal(t->cases[0].outcome, "failure");
    assert_int_equal(t->cases[0].target, 8);
    assert_string_equal(t->cases[1].outcome, "not_found");
    assert_int_equal(t->cases[1].target, TASK_END);
    assert_true(t->continue_on_error);
    assert_int_equal(t->timeout_ms, 5000);
    /* the integration's retry policy, inherited */
    assert_false(t->retry_explicit);
    assert_int_equal(t->retry.max_attempts, 3);
    assert_int_equal(t->retry.initial_ms, 50);
    assert_true(t->retry.multiplier == 1.5);
    assert_int_equal(t->retry.max_ms, 1000);
    assert_false(t->retry.jitter);
    assert_int_equal(t->retry.n_on, 2);
    assert_string_equal(t->retry.on[1], "5xx");
    const call_task_t *ct = &t->u.call;
    assert_non_null(ct->integration);
    assert_string_equal(ct->literal_target, "orders/validate");
    assert_null(ct->trigger);
    assert_int_equal(ct->version, 2);
    assert_int_equal(ct->strategy, STRATEGY_SYNC);
    assert_null(ct->delay_ms);
    assert_int_equal(ct->payload_kind, PAYLOAD_INPUT);
    assert_non_null(ct->payload);
    assert_int_equal(json_array_size(ct->input_keys), 2);
    assert_string_equal(json_string_value(json_array_get(ct->input_keys, 0)), "order");
    assert_string_equal(json_string_value(json_array_get(ct->input_keys, 1)), "strict");
    assert_int_equal(ct->n_outputs, 2);
    assert_string_equal(ct->outputs[0].var, "valid");
    assert_string_equal(ct->outputs[0].path, "");
    assert_string_equal(ct->outputs[1].var, "customer.id");
    assert_string_equal(ct->outputs[1].path, "body.customer[0].id");
    assert_null(ct->for_each);
    assert_int_equal(ct->parallelism, 8);
    assert_null(ct->idempotency_key);
    assert_false(ct->detached);

    /* price: dynamic target, for_each, whole payload, its own retry policy */
    t = &def->tasks[1];
    ct = &t->u.call;
    assert_string_equal(t->id, "price");
    assert_non_null(ct->integration);
    assert_false(template_is_constant(ct->integration));
    assert_null(ct->literal_target);
    assert_int_equal(ct->strategy, STRATEGY_DEFAULT);
    assert_int_equal(ct->payload_kind, PAYLOAD_WHOLE);
    assert_null(ct->input_keys);
    assert_non_null(ct->for_each);
    assert_int_equal(ct->parallelism, 16);
    assert_true(t->retry_explicit);
    assert_int_equal(t->retry.max_attempts, 4);
    assert_int_equal(t->retry.initial_ms, 200);
    assert_true(t->retry.multiplier == 2.0);
    assert_int_equal(t->retry.max_ms, 30000);
    assert_true(t->retry.jitter);
    assert_int_equal(t->retry.n_on, 4);
    assert_string_equal(t->retry.on[0], "timeout");
    assert_string_equal(t->retry.on[3], "429");
    assert_int_equal(t->timeout_ms, 0);

    /* fanout: trigger, async, extended payload, idempotency key */
    ct = &def->tasks[2].u.call;
    assert_null(ct->integration);
    assert_null(ct->literal_target);
    assert_string_equal(ct->trigger, "order-priced");
    assert_int_equal(ct->strategy, STRATEGY_ASYNC);
    assert_int_equal(ct->payload_kind, PAYLOAD_EXTENDED);
    assert_non_null(ct->idempotency_key);

    /* notify: delay, detached, next by id */
    t = &def->tasks[3];
    ct = &t->u.call;
    assert_non_null(ct->delay_ms);
    assert_int_equal(json_integer_value(template_source(ct->delay_ms)), 60000);
    assert_true(ct->detached);
    assert_int_equal(t->next, 5);

    /* later: self-call (legal although the resolver does not know it), templated delay */
    ct = &def->tasks[4].u.call;
    assert_string_equal(ct->literal_target, "orders/intake");
    assert_non_null(ct->delay_ms);
    assert_true(json_is_array(template_source(ct->for_each)));
    assert_int_equal(ct->payload_kind, PAYLOAD_NONE);
    assert_null(ct->payload);

    /* set */
    t = definition_task(def, "total");
    assert_int_equal(t->type, TASK_SET);
    assert_int_equal(t->u.set.n, 2);
    assert_string_equal(t->u.set.keys[0], "total");
    assert_string_equal(t->u.set.keys[1], "customer.name");
    assert_non_null(t->u.set.values[1]);
    assert_int_equal(t->next, 6);

    /* switch: cases are values */
    t = definition_task(def, "route");
    assert_int_equal(t->type, TASK_SWITCH);
    assert_int_equal(t->n_cases, 0);
    assert_non_null(t->u.sw.value);
    assert_int_equal(t->u.sw.n_cases, 3);
    assert_string_equal(t->u.sw.cases[0].outcome, "gold");
    assert_int_equal(t->u.sw.cases[0].target, 7);
    assert_int_equal(t->u.sw.cases[1].target, TASK_END);
    assert_string_equal(t->u.sw.cases[2].outcome, "");
    assert_int_equal(t->u.sw.cases[2].target, 8);
    assert_int_equal(t->u.sw.default_target, 8);

    /* await */
    t = definition_task(def, "wait");
    assert_int_equal(t->type, TASK_AWAIT);
    assert_int_equal(t->u.await.timeout_ms, 1000);
    assert_int_equal(t->timeout_ms, 0);
    assert_int_equal(t->u.await.mode, AWAIT_AT_LEAST);
    assert_int_equal(t->u.await.at_least, 2);
    assert_int_equal(t->u.await.tolerate_failures, 1);
    assert_int_equal(t->next, TASK_END);

    /* fail, the last task */
    t = definition_task(def, "reject");
    assert_int_equal(t->type, TASK_FAIL);
    assert_non_null(t->u.fail.code);
    assert_non_null(t->u.fail.message);
    assert_non_null(t->u.fail.detail);
    assert_int_equal(t->next, TASK_END);

    assert_null(definition_task(def, "nope"));
    assert_null(definition_task(def, NULL));

    /* the canonical text: compact, keys sorted, the document itself */
    json_t *parsed = json_loads(text, 0, NULL);
    char *want = json_dumps(parsed, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(def->canonical, want);
    assert_true(json_equal(def->doc, parsed));
    assert_non_null(strstr(def->canonical, "{\"callers\":[\"orders/*\""));
    free(want);
    json_decref(parsed);
    definition_free(def);
    free(text);
}

static void test_definition_defaults(void **state)
{
    (void)state;
    size_t len;
    char *text = read_source("tests/cases/definitions/minimal.json", &len);
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(definition_load(text, len, NULL, NULL, NULL, &def, &d), 0);
    assert_int_equal(d.n, 0);
    assert_null(def->triggers);
    assert_int_equal(def->n_triggers, 0);
    assert_false(def->run_async);
    assert_false(def->has_inputs);
    assert_false(def->has_outputs);
    assert_int_equal(def->timeout_ms, 300000);
    assert_int_equal(def->max_concurrency, 0);
    assert_int_equal(def->n_callers, 0);
    assert_int_equal(def->on_interrupt, ON_INTERRUPT_RETRY);
    const task_t *t = &def->tasks[0];
    assert_int_equal(t->next, 1);
    assert_false(t->continue_on_error);
    assert_false(t->retry_explicit);
    assert_int_equal(t->retry.max_attempts, 1);
    assert_int_equal(t->retry.initial_ms, 100);
    assert_true(t->retry.multiplier == 2.0);
    assert_int_equal(t->retry.max_ms, 30000);
    assert_true(t->retry.jitter);
    assert_int_equal(t->retry.n_on, 4);
    assert_string_equal(t->retry.on[0], "timeout");
    assert_string_equal(t->retry.on[1], "network");
    assert_string_equal(t->retry.on[2], "5xx");
    assert_string_equal(t->retry.on[3], "429");
    assert_int_equal(t->timeout_ms, 0);
    t = &def->tasks[1];
    assert_int_equal(t->u.sw.default_target, -2);
    assert_int_equal(t->u.sw.n_cases, 0);
    assert_int_equal(t->next, 2);
    t = &def->tasks[2];
    assert_int_equal(t->u.await.mode, AWAIT_ALL);
    assert_int_equal(t->u.await.timeout_ms, 60000);
    assert_int_equal(t->u.await.tolerate_failures, 0);
    assert_int_equal(t->next, 3);
    t = &def->tasks[3];
    assert_int_equal(t->next, TASK_END);
    assert_int_equal(t->u.call.strategy, STRATEGY_DEFAULT);
    assert_int_equal(t->u.call.parallelism, 8);
    assert_int_equal(t->u.call.version, 0);
    assert_string_equal(t->u.call.literal_target, "other");
    definition_free(def);
    diags_deinit(&d);
    free(text);
}

static void test_definition_outputs_object_and_extras(void **state)
{
    (void)state;
    definition_t *def = expect_ok("{'name': 'a.b-c_d/e9', 'description': 'x', 'run_async': false,"
                                  " 'outputs': {'id': '{{vars.id}}', 'fixed': 1},"
                                  " 'callers': [], 'on_interrupt': 'retry',"
                                  " 'inputs': {'a': {'type': 'any', 'default': null},"
                                  "            'b': {'type': 'number', 'default': 2},"
                                  "            'c': {'type': 'integer', 'default': 2.0}},"
                                  " 'tasks': [{'id': 'x', 'type': 'await', 'runs': '{{vars.r}}',"
                                  "            'mode': 'any'},"
                                  "           {'id': 'y', 'type': 'switch', 'value': 3,"
                                  "            'default': 'end', 'next': 'x'}]}");
    assert_true(def->has_outputs);
    assert_non_null(def->outputs_tmpl);
    assert_int_equal(def->n_output_vars, 0);
    assert_int_equal(def->n_callers, 0);
    assert_true(definition_caller_allowed(def, "anyone"));
    assert_true(json_is_null(def->inputs[0].default_value));
    assert_int_equal(def->tasks[0].u.await.mode, AWAIT_ANY);
    assert_int_equal(def->tasks[1].u.sw.default_target, TASK_END);
    assert_int_equal(def->tasks[1].next, 0);
    definition_free(def);

    /* An empty list of outputs is an empty output object. */
    def = expect_ok("{'name': 'x', 'outputs': [], 'tasks': [{'id': 't', 'type': 'fail', "
                    "'code': 'c'}]}");
    assert_true(def->has_outputs);
    assert_int_equal(def->n_output_vars, 0);
    definition_free(def);

    /* A long first delay without max_ms raises the cap rather than failing. */
    def = expect_ok("{'name': 'x', 'retry': {'initial_ms': 60000}, 'tasks': [{'id': 't', "
                    "'type': 'fail', 'code': 'c'}]}");
    assert_int_equal(def->tasks[0].retry.max_ms, 60000);
    definition_free(def);
}

/* ---- top-level rules ------------------------------------------------------------------- */

#define TASKS "'tasks': [{'id': 't', 'type': 'fail', 'code': 'c'}]"

static void test_definition_rejects_bad_names(void **state)
{
    (void)state;
    expect_problem("{" TASKS "}", "/name", "required field 'name' is missing");
    expect_problem("{'name': 3, " TASKS "}", "/name", "must be a string");
    expect_problem(
        "{'name': 'Orders', " TASKS "}", "/name",
        "invalid name 'Orders': must match ^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$");
    expect_problem("{'name': '', " TASKS "}", "/name", "invalid name ''");
    expect_problem("{'name': 'a//b', " TASKS "}", "/name", "must match");
    expect_problem("{'name': 'a/', " TASKS "}", "/name", "must match");
    expect_problem("{'name': '/a', " TASKS "}", "/name", "must match");
    expect_problem("{'name': '_a', " TASKS "}", "/name", "must match");
    expect_problem("{'name': 'a/execute', " TASKS "}", "/name", "reserved");
    expect_problem("{'name': 'versions/a', " TASKS "}", "/name", "reserved");
    definition_free(expect_ok("{'name': 'a/executed/versionsx', " TASKS "}"));

    expect_name_limit("{'name': '", "', " TASKS "}", "/name", "must be at most 128 characters",
                      expect_ok_free, expect_problem);
}

static void test_definition_name_hint(void **state)
{
    (void)state;
    char *text = doc("{'name': 'a/b', " TASKS "}");
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(definition_load(text, strlen(text), "a/c", NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_null(def);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "/name");
    assert_non_null(strstr(d.items[0].message, "'a/b' does not match 'a/c'"));
    diags_deinit(&d);
    assert_int_equal(definition_load(text, strlen(text), "a/b", NULL, NULL, &def, &d), 0);
    definition_free(def);
    diags_deinit(&d);
    free(text);
}

static void test_definition_rejects_unknown_and_mistyped_fields(void **state)
{
    (void)state;
    expect_problem("{'name': 'x', 'taks': [], " TASKS "}", "/taks", "unknown field 'taks'");
    expect_problem("{'name': 'x', 'a/b~c': 1, " TASKS "}", "/a~1b~0c", "unknown field 'a/b~c'");
    expect_problem("{'name': 'x', 'description': 1, " TASKS "}", "/description",
                   "must be a string");
    expect_problem("{'name': 'x', 'run_async': 'yes', " TASKS "}", "/run_async",
                   "must be a boolean");
    expect_problem("{'name': 'x', 'timeout_ms': 0, " TASKS "}", "/timeout_ms",
                   "must be between 1 and 2592000000");
    expect_problem("{'name': 'x', 'timeout_ms': 2592000001, " TASKS "}", "/timeout_ms",
                   "must be between 1 and 2592000000");
    expect_problem("{'name': 'x', 'timeout_ms': 1.5, " TASKS "}", "/timeout_ms",
                   "must be an integer");
    expect_problem("{'name': 'x', 'timeout_ms': '5', " TASKS "}", "/timeout_ms",
                   "must be an integer");
    expect_problem("{'name': 'x', 'max_concurrency': 0, " TASKS "}", "/max_concurrency",
                   "must be between 1 and");
    expect_problem("{'name': 'x', 'callers': 'a', " TASKS "}", "/callers", "must be an array");
    expect_problem("{'name': 'x', 'callers': ['a', ''], " TASKS "}", "/callers/1",
                   "must be a non-empty string");
    expect_problem("{'name': 'x', 'callers': ['a', 2], " TASKS "}", "/callers/1",
                   "must be a non-empty string");
    expect_problem("{'name': 'x', 'on_interrupt': 'maybe', " TASKS "}", "/on_interrupt",
                   "must be \"retry\" or \"fail\"");
    expect_problem("{'name': 'x', 'on_interrupt': true, " TASKS "}", "/on_interrupt",
                   "must be a string");
}

static void test_definition_rejects_bad_triggers(void **state)
{
    (void)state;
    expect_problem("{'name': 'x', 'triggers': {}, " TASKS "}", "/triggers", "must be an array");
    expect_problem("{'name': 'x', 'triggers': ['a'], " TASKS "}", "/triggers/0",
                   "must be an object");
    expect_problem("{'name': 'x', 'triggers': [{'type': 'cron', 'id': 'a'}], " TASKS "}",
                   "/triggers/0/type", "unknown trigger type 'cron'");
    expect_problem("{'name': 'x', 'triggers': [{'id': 'a'}], " TASKS "}", "/triggers/0/type",
                   "required field 'type' is missing");
    expect_problem("{'name': 'x', 'triggers': [{'type': 'api'}], " TASKS "}", "/triggers/0/id",
                   "required field 'id' is missing");
    expect_problem("{'name': 'x', 'triggers': [{'type': 'api', 'id': 'A'}], " TASKS "}",
                   "/triggers/0/id", "invalid trigger id 'A': must match ^[a-z0-9][a-z0-9_.-]*$");
    expect_problem("{'name': 'x', 'triggers': [{'type': 'api', 'id': 'a/b'}], " TASKS "}",
                   "/triggers/0/id", "invalid trigger id");
    expect_problem("{'name': 'x', 'triggers': [{'type': 'api', 'id': 'a', 'x': 1}], " TASKS "}",
                   "/triggers/0/x", "unknown field 'x'");
    expect_problem("{'name': 'x', 'triggers': [{'type': 'api', 'id': 'a'}, {'type': 'api', "
                   "'id': 'b'}, {'type': 'api', 'id': 'a'}], " TASKS "}",
                   "/triggers/2/id", "duplicate trigger id 'a'");
}

static void test_definition_rejects_bad_inputs(void **state)
{
    (void)state;
    expect_problem("{'name': 'x', 'inputs': [], " TASKS "}", "/inputs", "must be an object");
    expect_problem("{'name': 'x', 'inputs': {'1a': {}}, " TASKS "}", "/inputs/1a",
                   "invalid input name '1a'");
    expect_problem("{'name': 'x', 'inputs': {'a': 'string'}, " TASKS "}", "/inputs/a",
                   "must be an object");
    expect_problem("{'name': 'x', 'inputs': {'a': {'type': 'text'}}, " TASKS "}", "/inputs/a/type",
                   "unknown type 'text'; expected one of string, number, integer, boolean, "
                   "object, array, any");
    expect_problem("{'name': 'x', 'inputs': {'a': {'type': 1}}, " TASKS "}", "/inputs/a/type",
                   "must be a string");
    expect_problem("{'name': 'x', 'inputs': {'a': {'required': 'yes'}}, " TASKS "}",
                   "/inputs/a/required", "must be a boolean");
    expect_problem("{'name': 'x', 'inputs': {'a': {'requried': true}}, " TASKS "}",
                   "/inputs/a/requried", "unknown field 'requried'");
    expect_problem("{'name': 'x', 'inputs': {'a': {'type': 'integer', 'default': 'zero'}}, " TASKS
                   "}",
                   "/inputs/a/default", "must be integer, got string");
    expect_problem("{'name': 'x', 'inputs': {'a': {'type': 'integer', 'default': 1.5}}, " TASKS "}",
                   "/inputs/a/default", "must be integer, got number");
    expect_problem("{'name': 'x', 'inputs': {'a': {'type': 'string', 'default': null}}, " TASKS "}",
                   "/inputs/a/default", "must be string, got null");
    expect_problem("{'name': 'x', 'inputs': {'a': {'type': 'object', 'default': []}}, " TASKS "}",
                   "/inputs/a/default", "must be object, got array");
    expect_problem("{'name': 'x', 'inputs': {'a': {'required': true, 'default': 1}}, " TASKS "}",
                   "/inputs/a/required", "a required input cannot have a default");
    expect_problem("{'name': 'x', 'inputs': {'a': {'description': 5}}, " TASKS "}",
                   "/inputs/a/description", "must be a string");
}

static void test_definition_rejects_bad_outputs(void **state)
{
    (void)state;
    expect_problem("{'name': 'x', 'outputs': 'a', " TASKS "}", "/outputs",
                   "must be an array of var names or an object");
    expect_problem("{'name': 'x', 'outputs': ['a', 1], " TASKS "}", "/outputs/1",
                   "must be a string");
    expect_problem("{'name': 'x', 'outputs': ['a', 'b.c'], " TASKS "}", "/outputs/1",
                   "invalid var name 'b.c'");
    expect_problem("{'name': 'x', 'outputs': ['a', 'b', 'a'], " TASKS "}", "/outputs/2",
                   "duplicate output 'a'");
    expect_problem("{'name': 'x', 'outputs': {'a': {'b': ['{{vars.x']}}, " TASKS "}",
                   "/outputs/a/b/0", "");
    expect_problem("{'name': 'x', 'outputs': {'a': '{{secret.k}}'}, " TASKS "}", "/outputs/a",
                   "{{secret.*}} may appear only in request fields of http and connector tasks");
}

static void test_definition_rejects_bad_retry(void **state)
{
    (void)state;
    expect_problem("{'name': 'x', 'retry': 3, " TASKS "}", "/retry", "must be an object");
    expect_problem("{'name': 'x', 'retry': {'attempts': 3}, " TASKS "}", "/retry/attempts",
                   "unknown field 'attempts'");
    expect_problem("{'name': 'x', 'retry': {'max_attempts': 0}, " TASKS "}", "/retry/max_attempts",
                   "must be between 1 and 100");
    expect_problem("{'name': 'x', 'retry': {'max_attempts': 101}, " TASKS "}",
                   "/retry/max_attempts", "must be between 1 and 100");
    expect_problem("{'name': 'x', 'retry': {'initial_ms': -1}, " TASKS "}", "/retry/initial_ms",
                   "must be between 0 and");
    expect_problem("{'name': 'x', 'retry': {'multiplier': 0.5}, " TASKS "}", "/retry/multiplier",
                   "must be at least 1");
    expect_problem("{'name': 'x', 'retry': {'multiplier': '2'}, " TASKS "}", "/retry/multiplier",
                   "must be a number");
    expect_problem("{'name': 'x', 'retry': {'initial_ms': 500, 'max_ms': 100}, " TASKS "}",
                   "/retry/max_ms", "must be at least initial_ms (500)");
    expect_problem("{'name': 'x', 'retry': {'jitter': 1}, " TASKS "}", "/retry/jitter",
                   "must be a boolean");
    expect_problem("{'name': 'x', 'retry': {'on': 'timeout'}, " TASKS "}", "/retry/on",
                   "must be an array");
    expect_problem("{'name': 'x', 'retry': {'on': ['timeout', 5]}, " TASKS "}", "/retry/on/1",
                   "must be a non-empty string");
    expect_task_problem("'type': 'fail', 'code': 'c', 'retry': {'max_ms': -5}",
                        "/tasks/0/retry/max_ms", "must be between 0 and");

    /* multiplier takes integers too; `on` may be emptied */
    definition_t *def = expect_ok("{'name': 'x', 'retry': {'multiplier': 3, 'on': []}, " TASKS "}");
    assert_true(def->tasks[0].retry.multiplier == 3.0);
    assert_int_equal(def->tasks[0].retry.n_on, 0);
    definition_free(def);
}

static void test_definition_rejects_bad_task_lists(void **state)
{
    (void)state;
    expect_problem("{'name': 'x'}", "/tasks", "required field 'tasks' is missing");
    expect_problem("{'name': 'x', 'tasks': {}}", "/tasks", "must be an array");
    expect_problem("{'name': 'x', 'tasks': []}", "/tasks", "must list at least one task");
    expect_problem("{'name': 'x', 'tasks': [3]}", "/tasks/0", "must be an object");

    definition_limits_t lim = {.max_tasks = 2};
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(load_q("{'name': 'x', 'tasks': [{'id': 'a', 'type': 'fail', 'code': 'c'},"
                            "{'id': 'b', 'type': 'fail', 'code': 'c'},"
                            "{'id': 'c', 'type': 'fail', 'code': 'c'}]}",
                            &lim, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "/tasks");
    assert_string_equal(d.items[0].message, "has 3 tasks, more than the limit of 2");
    diags_deinit(&d);
}

/* ---- rules every task shares ----------------------------------------------------------- */

static void test_definition_rejects_bad_task_ids(void **state)
{
    (void)state;
    expect_problem("{'name': 'x', 'tasks': [{'type': 'fail', 'code': 'c'}]}", "/tasks/0/id",
                   "required field 'id' is missing");
    expect_problem("{'name': 'x', 'tasks': [{'id': 4, 'type': 'fail', 'code': 'c'}]}",
                   "/tasks/0/id", "must be a string");
    expect_problem("{'name': 'x', 'tasks': [{'id': '1a', 'type': 'fail', 'code': 'c'}]}",
                   "/tasks/0/id", "invalid task id '1a': must match ^[A-Za-z_][A-Za-z0-9_]*$");
    expect_problem("{'name': 'x', 'tasks': [{'id': 'a-b', 'type': 'fail', 'code': 'c'}]}",
                   "/tasks/0/id", "invalid task id");
    expect_problem("{'name': 'x', 'tasks': [{'id': 'end', 'type': 'fail', 'code': 'c'}]}",
                   "/tasks/0/id", "the task id 'end' is reserved");
    expect_problem("{'name': 'x', 'tasks': [{'id': '', 'type': 'fail', 'code': 'c'}]}",
                   "/tasks/0/id", "invalid task id ''");
    expect_problem("{'name': 'x', 'tasks': [{'id': 'a', 'type': 'fail', 'code': 'c'},"
                   "{'id': 'b', 'type': 'fail', 'code': 'c'},"
                   "{'id': 'a', 'type': 'fail', 'code': 'c'}]}",
                   "/tasks/2/id", "duplicate task id 'a'");
}

static void test_definition_rejects_bad_task_types(void **state)
{
    (void)state;
    expect_problem("{'name': 'x', 'tasks': [{'id': 't'}]}", "/tasks/0/type",
                   "required field 'type' is missing");
    expect_task_problem("'type': 7", "/tasks/0/type", "must be a string");
    expect_task_problem("'type': 'script', 'source': 'return 1'", "/tasks/0/lang",
                        "required field 'lang' is missing");
    expect_task_problem("'type': 'script', 'lang': 'python', 'source': 'return 1'", "/tasks/0/lang",
                        "unknown script language 'python'; expected \"lua\"");
    expect_task_problem("'type': 'script', 'lang': 'lua'", "/tasks/0/source",
                        "required field 'source' is missing");
    expect_task_problem("'type': 'script', 'lang': 'lua', 'source': 'local x = 1\\nlocal = 2'",
                        "/tasks/0/source",
                        "Lua syntax error at script line 2: <name> expected near '='");
    expect_task_problem("'type': 'sleep'", "/tasks/0/type",
                        "unknown task type 'sleep'; expected one of call_integration, http, "
                        "connector, script, set, switch, await, fail");
}

static void test_definition_rejects_bad_shared_task_fields(void **state)
{
    (void)state;
    expect_task_problem("'type': 'fail', 'code': 'c', 'next': 'nowhere'", "/tasks/0/next",
                        "no task has the id 'nowhere'");
    expect_task_problem("'type': 'fail', 'code': 'c', 'next': 3", "/tasks/0/next",
                        "must be a task id or \"end\"");
    expect_task_problem("'type': 'fail', 'code': 'c', 'cases': []", "/tasks/0/cases",
                        "must be an object");
    expect_task_problem("'type': 'fail', 'code': 'c', 'cases': {'success': 't', 'a/b': 'zz'}",
                        "/tasks/0/cases/a~1b", "no task has the id 'zz'");
    expect_task_problem("'type': 'fail', 'code': 'c', 'continue_on_error': 1",
                        "/tasks/0/continue_on_error", "must be a boolean");
    expect_task_problem("'type': 'fail', 'code': 'c', 'timeout_ms': 0", "/tasks/0/timeout_ms",
                        "must be between 1 and");
    expect_task_problem("'type': 'fail', 'code': 'c', 'values': {}", "/tasks/0/values",
                        "unknown field 'values'");
    expect_task_problem("'type': 'set', 'values': {'a': 1}, 'code': 'c'", "/tasks/0/code",
                        "unknown field 'code'");
    expect_task_problem("'type': 'switch', 'value': 1, 'runs': []", "/tasks/0/runs",
                        "unknown field 'runs'");
    expect_task_problem("'type': 'await', 'runs': [], 'value': 1", "/tasks/0/value",
                        "unknown field 'value'");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'description': 'd'",
                        "/tasks/0/description", "unknown field 'description'");
    /* "end" and the task itself are valid targets */
    expect_task_ok("'type': 'fail', 'code': 'c', 'next': 'end', 'cases': {'x': 't'}");
}

/* ---- call_integration ------------------------------------------------------------------ */

static void test_definition_rejects_bad_call_targets(void **state)
{
    (void)state;
    expect_task_problem("'type': 'call_integration'", "/tasks/0/integration",
                        "required field 'integration' is missing");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'trigger': 'b'",
                        "/tasks/0/trigger", "'integration' and 'trigger' cannot both be set");
    expect_task_problem("'type': 'call_integration', 'integration': 5", "/tasks/0/integration",
                        "must be a string");
    expect_task_problem("'type': 'call_integration', 'integration': ''", "/tasks/0/integration",
                        "must not be empty");
    expect_task_problem("'type': 'call_integration', 'integration': 'Bad'", "/tasks/0/integration",
                        "invalid integration name 'Bad'");
    expect_task_problem("'type': 'call_integration', 'trigger': 'B'", "/tasks/0/trigger",
                        "invalid trigger id 'B'");
    expect_task_problem("'type': 'call_integration', 'trigger': 1", "/tasks/0/trigger",
                        "must be a string");
    expect_task_problem("'type': 'call_integration', 'trigger': 'b', 'version': 2",
                        "/tasks/0/version", "version cannot be used with trigger");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'version': 0",
                        "/tasks/0/version", "must be between 1 and");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'version': '1'",
                        "/tasks/0/version", "must be an integer");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'later'",
                        "/tasks/0/strategy", "must be \"sync\" or \"async\"");

    /* publish-time existence of literal targets */
    char *s = one_task("'type': 'call_integration', 'integration': 'missing/one'");
    expect_problem_r(s, &resolver, "/tasks/0/integration",
                     "integration 'missing/one' is not published");
    definition_free(expect_ok(s)); /* no resolver: nothing to ask */
    free(s);
    s = one_task("'type': 'call_integration', 'integration': 'known/one'");
    definition_free(expect_ok_r(s, &resolver));
    free(s);
    s = one_task("'type': 'call_integration', 'integration': 'x'"); /* itself */
    definition_free(expect_ok_r(s, &resolver));
    free(s);
    s = one_task("'type': 'call_integration', 'integration': '{{vars.target}}'");
    definition_t *def = expect_ok_r(s, &resolver);
    assert_null(def->tasks[0].u.call.literal_target);
    definition_free(def);
    free(s);
}

static void test_definition_rejects_bad_call_options(void **state)
{
    (void)state;
    const char *msg = "delay_ms is only for async calls: set \"strategy\": \"async\"";
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'delay_ms': 10",
                        "/tasks/0/delay_ms", msg);
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'sync', "
                        "'delay_ms': 10",
                        "/tasks/0/delay_ms", msg);
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'async', "
                        "'delay_ms': -1",
                        "/tasks/0/delay_ms", "must be between 0 and 2592000000");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'async', "
                        "'delay_ms': 2592000001",
                        "/tasks/0/delay_ms", "must be between 0 and");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'async', "
                        "'delay_ms': 1.5",
                        "/tasks/0/delay_ms", "must be an integer");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'async', "
                        "'delay_ms': 'soon'",
                        "/tasks/0/delay_ms",
                        "must be an integer from 0 to 2592000000 or a {{template}}");
    expect_task_ok("'type': 'call_integration', 'integration': 'a', 'strategy': 'async', "
                   "'delay_ms': 2592000000");

    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'input': {}, "
                        "'payload': 1",
                        "/tasks/0/payload", "'payload' cannot be used with 'input'");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'payload': 1, "
                        "'extended_payload': {}",
                        "/tasks/0/extended_payload",
                        "'extended_payload' cannot be used with 'payload'");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'input': []",
                        "/tasks/0/input", "must be an object");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'input': {'a-b': 1}",
                        "/tasks/0/input/a-b", "invalid input name 'a-b'");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'extended_payload': {'payload': {}, 'body': 1}",
                        "/tasks/0/extended_payload/body", "unknown field 'body'");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'extended_payload': 1",
                        "/tasks/0/extended_payload", "must be an object");

    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'async', "
                        "'output': {'v': 'x'}",
                        "/tasks/0/output", "output is only for sync calls");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'for_each': '{{vars.l}}', 'output': {'v': 'x'}",
                        "/tasks/0/output", "output cannot be used with for_each");
    expect_task_problem("'type': 'call_integration', 'trigger': 'a', 'output': {'v': 'x'}",
                        "/tasks/0/output", "output cannot be used with trigger");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'output': []",
                        "/tasks/0/output", "must be an object");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'output': {'v': 1}",
                        "/tasks/0/output/v", "must be a string");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'output': {'v': 'a[x'}",
                        "/tasks/0/output/v", "invalid path 'a[x'");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'output': {'v.': 'a'}",
                        "/tasks/0/output/v.", "invalid var name 'v.'");
    expect_task_ok("'type': 'call_integration', 'integration': 'a', "
                   "'output': {'v': 'a[\\'k.x\\'].b[-1]', 'w': 'items.0'}");

    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'for_each': 3",
                        "/tasks/0/for_each", "must be an array or a {{template}} giving one");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'for_each': 'abc'",
                        "/tasks/0/for_each", "must be an array or a {{template}} giving one");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'parallelism': 2",
                        "/tasks/0/parallelism", "parallelism is only for for_each calls");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'for_each': [], "
                        "'parallelism': 257",
                        "/tasks/0/parallelism", "must be between 1 and 256");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'for_each': [], "
                        "'parallelism': 0",
                        "/tasks/0/parallelism", "must be between 1 and 256");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'idempotency_key': 1",
                        "/tasks/0/idempotency_key", "must be a string");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'detached': true",
                        "/tasks/0/detached",
                        "detached is only for async calls: set \"strategy\": \"async\"");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', 'strategy': 'async', "
                        "'detached': 'yes'",
                        "/tasks/0/detached", "must be a boolean");
}

/* ---- set, switch, await, fail ---------------------------------------------------------- */

static void test_definition_rejects_bad_set_switch(void **state)
{
    (void)state;
    expect_task_problem("'type': 'set'", "/tasks/0/values", "required field 'values' is missing");
    expect_task_problem("'type': 'set', 'values': {}", "/tasks/0/values",
                        "must set at least one var");
    expect_task_problem("'type': 'set', 'values': []", "/tasks/0/values", "must be an object");
    expect_task_problem("'type': 'set', 'values': {'a..b': 1}", "/tasks/0/values/a..b",
                        "invalid var name 'a..b'");
    expect_task_problem("'type': 'set', 'values': {'a.1b': 1}", "/tasks/0/values/a.1b",
                        "invalid var name");
    expect_task_ok("'type': 'set', 'values': {'_a.B_2.c': null}");

    expect_task_problem("'type': 'switch'", "/tasks/0/value", "required field 'value' is missing");
    expect_task_problem("'type': 'switch', 'value': 1, 'cases': {'a': 'zz'}", "/tasks/0/cases/a",
                        "no task has the id 'zz'");
    expect_task_problem("'type': 'switch', 'value': 1, 'cases': 'a'", "/tasks/0/cases",
                        "must be an object");
    expect_task_problem("'type': 'switch', 'value': 1, 'default': 'zz'", "/tasks/0/default",
                        "no task has the id 'zz'");
}

static void test_definition_rejects_bad_await_fail(void **state)
{
    (void)state;
    expect_task_problem("'type': 'await'", "/tasks/0/runs", "required field 'runs' is missing");
    expect_task_problem("'type': 'await', 'runs': 5", "/tasks/0/runs",
                        "must be an array or a {{template}} giving one");
    expect_task_problem("'type': 'await', 'runs': [], 'timeout_ms': 0", "/tasks/0/timeout_ms",
                        "must be between 1 and");
    expect_task_problem("'type': 'await', 'runs': [], 'mode': 'some'", "/tasks/0/mode",
                        "must be \"all\", \"any\" or {\"at_least\": N}");
    expect_task_problem("'type': 'await', 'runs': [], 'mode': {'at_least': 0}",
                        "/tasks/0/mode/at_least", "must be between 1 and");
    expect_task_problem("'type': 'await', 'runs': [], 'mode': {}", "/tasks/0/mode/at_least",
                        "required field 'at_least' is missing");
    expect_task_problem("'type': 'await', 'runs': [], 'mode': {'at_least': 1, 'x': 1}",
                        "/tasks/0/mode/x", "unknown field 'x'");
    expect_task_problem("'type': 'await', 'runs': [], 'tolerate_failures': -1",
                        "/tasks/0/tolerate_failures", "must be between 0 and");

    expect_problem("{'name': 'x', 'tasks': [{'id': 't', 'type': 'fail'}]}", "/tasks/0/code",
                   "required field 'code' is missing");
    expect_task_problem("'type': 'fail', 'code': ''", "/tasks/0/code", "must not be empty");
    expect_task_problem("'type': 'fail', 'code': 5", "/tasks/0/code", "must be a string");
    expect_task_problem("'type': 'fail', 'code': 'c', 'message': {}", "/tasks/0/message",
                        "must be a string");
    expect_task_ok("'type': 'fail', 'code': '{{vars.code}}', 'message': '', "
                   "'detail': [1, {'a': '{{vars.x}}'}]");
}

/* ---- templates ------------------------------------------------------------------------- */

static void test_definition_template_problems(void **state)
{
    (void)state;
    /* a compile error is reported at the string, inside the field */
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'input': {'sku': '{{item.sku', 'n': 1}",
                        "/tasks/0/input/sku", "");
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'payload': {'a': [1, {'b': '{{vars.x'}]}",
                        "/tasks/0/payload/a/1/b", "");
    expect_task_problem("'type': 'set', 'values': {'a.b': 'x {{vars.y'}", "/tasks/0/values/a.b",
                        "");
    expect_task_problem("'type': 'fail', 'code': '{{vars.c'", "/tasks/0/code", "");
    expect_task_problem("'type': 'switch', 'value': '{{vars.c'", "/tasks/0/value", "");
    expect_task_problem("'type': 'await', 'runs': ['{{vars.c']", "/tasks/0/runs/0", "");
    expect_task_problem("'type': 'call_integration', 'integration': '{{vars.c'",
                        "/tasks/0/integration", "");
    /* roots of request fields are refused everywhere here */
    const char *msg = "{{secret.*}} may appear only in request fields of http and connector tasks";
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'input': {'key': '{{secret.api_key}}'}",
                        "/tasks/0/input/key", msg);
    expect_task_problem("'type': 'set', 'values': {'k': 'Bearer {{secret.token}}'}",
                        "/tasks/0/values/k", msg);
    expect_task_problem("'type': 'fail', 'code': 'c', 'detail': {'a': ['{{secret.x}}']}",
                        "/tasks/0/detail/a/0", msg);
    expect_task_problem("'type': 'call_integration', 'integration': 'a', "
                        "'idempotency_key': '{{conn.id}}'",
                        "/tasks/0/idempotency_key",
                        "may appear only in request fields of http and connector tasks");
    /* every default root is fine */
    expect_task_ok("'type': 'set', 'values': {'a': '{{vars.a}}', 'b': '{{input.payload}}', "
                   "'c': '{{tasks.t.result}}', 'd': '{{run.id}}', 'e': '{{item}}', "
                   "'f': '{{index}}'}");
}

/* ---- http ------------------------------------------------------------------------------ */

static void test_definition_http_every_field(void **state)
{
    (void)state;
    definition_t *def = expect_ok(
        "{'name': 'x', 'tasks': [{'id': 'h', 'type': 'http', "
        "'url': 'https://api.example.com/v1/{{vars.id}}', 'method': 'patch', "
        "'query': {'q': '{{vars.q}}', 'n': 5, 'all': true}, "
        "'headers': {'X-Key': '{{secret.key}}', 'Accept': 'application/json'}, "
        "'body': {'a': ['{{vars.a}}', 1], 'b': null}, "
        "'auth': {'type': 'basic', 'username': '{{conn.user}}', 'password': '{{secret.pw}}'}, "
        "'connection': 'billing-prod.EU_1', 'timeout_ms': 60000, "
        "'max_response_bytes': 1073741824, 'follow_redirects': false, "
        "'response_var': 'order.reply', 'retry': {'max_attempts': 3}, "
        "'cases': {'404': 'end', '5xx': 'h'}, 'continue_on_error': true}]}");
    const task_t *t = &def->tasks[0];
    assert_int_equal(t->type, TASK_HTTP);
    const http_task_t *h = &t->u.http;
    assert_string_equal(json_string_value(template_source(h->url)),
                        "https://api.example.com/v1/{{vars.id}}");
    assert_string_equal(h->method, "PATCH");
    assert_non_null(h->query);
    assert_non_null(h->headers);
    assert_non_null(h->body);
    assert_int_equal(h->auth.type, AUTH_BASIC);
    assert_non_null(h->auth.a);
    assert_non_null(h->auth.b);
    assert_string_equal(h->connection, "billing-prod.EU_1");
    assert_int_equal(t->timeout_ms, 60000);
    assert_int_equal(h->max_response_bytes, 1073741824);
    assert_false(h->follow_redirects);
    assert_string_equal(h->response_var, "order.reply");
    assert_true(t->retry_explicit);
    assert_int_equal(t->retry.max_attempts, 3);
    assert_int_equal(t->n_cases, 2);
    assert_true(t->continue_on_error);
    assert_true(def->roots_used & TMPL_VARS);
    assert_true(def->roots_used & TMPL_SECRET);

    /* request fields render with conn and secret */
    json_t *conn = json_pack("{s:s}", "user", "u1");
    json_t *secret = json_pack("{s:s, s:s}", "key", "k1", "pw", "p1");
    tmpl_scope_t sc = {.conn = conn, .secret = secret};
    json_t *hdrs = template_render(h->headers, &sc, NULL);
    assert_string_equal(json_string_value(json_object_get(hdrs, "X-Key")), "k1");
    json_t *user = template_render(h->auth.a, &sc, NULL);
    assert_string_equal(json_string_value(user), "u1");
    json_decref(hdrs);
    json_decref(user);
    json_decref(conn);
    json_decref(secret);
    definition_free(def);

    /* the other kinds of auth, and every method in any case */
    def = expect_ok("{'name': 'x', 'tasks': ["
                    "{'id': 'a', 'type': 'http', 'url': 'http://x', 'method': 'Delete', "
                    " 'auth': {'type': 'bearer', 'token': 'tok'}},"
                    "{'id': 'b', 'type': 'http', 'url': 'http://x', 'method': 'options', "
                    " 'auth': {'type': 'header', 'name': 'X-Api-Key', 'value': 'v'}},"
                    "{'id': 'c', 'type': 'http', 'url': 'http://x', 'method': 'head'},"
                    "{'id': 'd', 'type': 'http', 'url': 'http://x', 'method': 'put', "
                    " 'body': 'raw text {{vars.x}}'},"
                    "{'id': 'e', 'type': 'http', 'url': 'http://x', 'method': 'POST'},"
                    "{'id': 'f', 'type': 'http', 'url': '{{vars.url}}', 'method': 'get'}]}");
    assert_string_equal(def->tasks[0].u.http.method, "DELETE");
    assert_int_equal(def->tasks[0].u.http.auth.type, AUTH_BEARER);
    assert_non_null(def->tasks[0].u.http.auth.a);
    assert_null(def->tasks[0].u.http.auth.b);
    assert_string_equal(def->tasks[1].u.http.method, "OPTIONS");
    assert_int_equal(def->tasks[1].u.http.auth.type, AUTH_HEADER);
    assert_non_null(def->tasks[1].u.http.auth.b);
    assert_string_equal(def->tasks[2].u.http.method, "HEAD");
    assert_string_equal(def->tasks[3].u.http.method, "PUT");
    assert_true(json_is_string(template_source(def->tasks[3].u.http.body)));
    assert_string_equal(def->tasks[4].u.http.method, "POST");
    assert_string_equal(def->tasks[5].u.http.method, "GET");
    definition_free(def);
}

static void test_definition_http_defaults(void **state)
{
    (void)state;
    definition_t *def = expect_ok("{'name': 'x', 'tasks': [{'id': 'h', 'type': 'http', "
                                  "'url': 'http://example.com', 'body': null}]}");
    const task_t *t = &def->tasks[0];
    const http_task_t *h = &t->u.http;
    assert_string_equal(h->method, "GET");
    assert_int_equal(t->timeout_ms, HTTP_DEFAULT_TIMEOUT_MS);
    assert_int_equal(h->max_response_bytes, HTTP_DEFAULT_MAX_RESPONSE);
    assert_true(h->follow_redirects);
    assert_string_equal(h->response_var, "httpResult");
    assert_int_equal(h->auth.type, AUTH_NONE);
    assert_null(h->auth.a);
    assert_null(h->connection);
    assert_null(h->query);
    assert_null(h->headers);
    assert_null(h->body); /* null is no body */
    assert_false(t->retry_explicit);
    assert_int_equal(t->next, TASK_END);
    definition_free(def);
}

/* Run every case of the task case file REL under the source tree (the format is at the top
 * of each file) with resolver RES (may be NULL); returns how many cases ran. */
static int run_task_case_file(const char *rel, const definition_resolver_t *res)
{
    size_t len;
    char *text = read_source(rel, &len);
    const char *lines[3];
    int n = 0, cases = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        lines[n++] = line;
        if (n < 3)
            continue;
        n = 0;
        json_t *msg = json_loads(lines[2], JSON_DECODE_ANY, NULL);
        if (!json_is_string(msg))
            fail_msg("%s: the message of case %d is not a JSON string: %s", rel, cases + 1,
                     lines[2]);
        char *s = one_task(lines[0]);
        expect_problem_r(s, res, lines[1], json_string_value(msg));
        free(s);
        json_decref(msg);
        cases++;
    }
    if (n != 0)
        fail_msg("%s: the last case has %d lines, not 3", rel, n);
    free(text);
    return cases;
}

#define H "'type': 'http', "
#define U "'type': 'http', 'url': 'http://x', "

static void test_definition_http_refusals(void **state)
{
    (void)state;
    assert_int_equal(run_task_case_file("tests/cases/definitions/http_refusals.txt", NULL), 54);

    /* conn and secret are request roots only: a case target or a set still refuses them */
    expect_problem("{'name': 'x', 'tasks': [{'id': 'h', 'type': 'http', 'url': 'http://x', "
                   "'connection': 'c'}, {'id': 's', 'type': 'set', "
                   "'values': {'k': '{{secret.k}}'}}]}",
                   "/tasks/1/values/k",
                   "{{secret.*}} may appear only in request fields of http and connector tasks");
    /* with a connection, they are fine; roots other than the request's are still checked */
    expect_task_ok(U "'connection': 'c', 'headers': {'Authorization': 'Bearer {{secret.t}}'}, "
                     "'query': {'u': '{{conn.user}}'}");
    expect_task_problem(U "'connection': 'c', 'body': '{{nope.x}}'", "/tasks/0/body",
                        "unknown name 'nope'");
    /* a templated URL without a literal scheme is checked when it is rendered */
    expect_task_ok(H "'url': '{{vars.base}}/x'");
    expect_task_ok(H "'url': 'HTTPS://EXAMPLE.COM'");
    /* several problems at once */
    char *s = one_task(U "'method': 'X', 'timeout_ms': 0, 'follow_redirects': 1");
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(load_q(s, NULL, NULL, &def, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 3);
    diags_deinit(&d);
    free(s);
}

#undef H
#undef U

/* ---- connector tasks ------------------------------------------------------------------- */

/* A registry that knows connector "billing" at versions 1 and 2, and two connections. */
static const char *const billing_docs[] = {
    "{'slug': 'billing', 'base_url': 'https://billing.example', 'secrets': ['api_key'], "
    " 'auth': {'type': 'bearer', 'token': '{{secret.api_key}}'}, "
    " 'operations': {'create_invoice': {'method': 'POST', 'path': '/invoices', "
    "   'inputs': {'lines': {'type': 'array', 'required': true}}, "
    "   'body': {'lines': '{{input.lines}}'}}}}",
    "{'slug': 'billing', 'base_url': 'https://billing.example', 'secrets': ['api_key'], "
    " 'auth': {'type': 'bearer', 'token': '{{secret.api_key}}'}, "
    " 'operations': {"
    "  'create_invoice': {'method': 'POST', 'path': '/invoices', "
    "   'inputs': {'lines': {'type': 'array', 'required': true}, "
    "              'note': {'type': 'string'}, 'currency': {'type': 'string', 'default': 'EUR'}}, "
    "   'body': {'lines': '{{input.lines}}', 'note': '{{input.note}}'}, "
    "   'outputs': {'invoice_id': 'body.id'}},"
    "  'ping': {'path': '/ping'}}}",
};
static connector_t *billing[2];

static int load_connectors(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        char *text = doc(billing_docs[i]);
        diags_t d = {0};
        if (connector_load(text, strlen(text), "billing", NULL, &billing[i], &d) != 0)
            dump_diags(&d);
        diags_deinit(&d);
        free(text);
        if (!billing[i])
            return -1;
        billing[i]->version = i + 1;
    }
    return 0;
}

static int free_connectors(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        connector_free(billing[i]);
    return 0;
}

static const connector_t *fake_connector_get(void *ctx, const char *slug, int version)
{
    (void)ctx;
    if (strcmp(slug, "billing") != 0 || version < 0 || version > 2)
        return NULL;
    return billing[version == 0 ? 1 : version - 1];
}

static char *fake_connection_connector(void *ctx, const char *id)
{
    (void)ctx;
    if (strcmp(id, "billing-prod") == 0)
        return xstrdup("billing");
    if (strcmp(id, "mail-prod") == 0)
        return xstrdup("mail");
    if (strcmp(id, "shipping-prod") == 0)
        return xstrdup("shipping");
    return NULL;
}

static const definition_resolver_t registry = {
    .integration_exists = exists_known,
    .connector_get = fake_connector_get,
    .connection_connector = fake_connection_connector,
};

#define K "'type': 'connector', 'connector': 'billing', 'connection': 'billing-prod', "

static void test_definition_connector_every_field(void **state)
{
    (void)state;
    /* without a registry the version must be given, and nothing is looked up */
    char *s = one_task(K "'version': 1, 'operation': 'anything', "
                         "'input': {'lines': '{{vars.lines}}', 'extra': 1}, "
                         "'output': {'id': 'body.id', 'st': 'status', 'all': '', "
                         "'etag': 'headers.etag', 'first': 'body.items[0].id'}, "
                         "'timeout_ms': 20000, 'retry': {'max_attempts': 2}, "
                         "'cases': {'409': 'end'}, 'next': 'end'");
    definition_t *def = expect_ok(s);
    free(s);
    const task_t *t = &def->tasks[0];
    assert_int_equal(t->type, TASK_CONNECTOR);
    const connector_task_t *k = &t->u.connector;
    assert_string_equal(k->connector, "billing");
    assert_int_equal(k->version, 1);
    assert_string_equal(k->operation, "anything");
    assert_string_equal(k->connection, "billing-prod");
    assert_non_null(k->input);
    assert_int_equal(k->n_outputs, 5);
    assert_string_equal(k->outputs[0].var, "id");
    assert_string_equal(k->outputs[0].path, "body.id");
    assert_string_equal(k->outputs[2].path, "");
    assert_int_equal(t->timeout_ms, 20000);
    assert_int_equal(t->retry.max_attempts, 2);
    assert_true(def->roots_used & TMPL_VARS);
    definition_free(def);

    /* defaults */
    s = one_task(K "'version': 3, 'operation': 'op'");
    def = expect_ok(s);
    free(s);
    k = &def->tasks[0].u.connector;
    assert_null(k->input);
    assert_int_equal(k->n_outputs, 0);
    assert_int_equal(def->tasks[0].timeout_ms, HTTP_DEFAULT_TIMEOUT_MS);
    definition_free(def);
}

static void test_definition_connector_refusals(void **state)
{
    (void)state;
    assert_int_equal(run_task_case_file("tests/cases/definitions/connector_refusals.txt", NULL),
                     23);
}

static void test_definition_connector_pinning(void **state)
{
    (void)state;
    /* a missing version is filled with the latest, in the task and in the stored document,
     * without touching the caller's document */
    json_t *j = json_loads("{\"name\": \"x\", \"tasks\": [{\"id\": \"f\", \"type\": \"fail\", "
                           "\"code\": \"c\"}, {\"id\": \"b\", \"type\": \"connector\", "
                           "\"connector\": \"billing\", \"operation\": \"create_invoice\", "
                           "\"connection\": \"billing-prod\", "
                           "\"input\": {\"lines\": \"{{vars.lines}}\"}}]}",
                           0, NULL);
    assert_non_null(j);
    definition_t *def = NULL;
    diags_t d = {0};
    int rc = definition_compile(j, &registry, NULL, &def, &d);
    if (rc)
        dump_diags(&d);
    assert_int_equal(rc, 0);
    assert_int_equal(def->tasks[1].u.connector.version, 2);
    assert_null(json_object_get(json_array_get(json_object_get(j, "tasks"), 1), "version"));
    assert_ptr_not_equal(def->doc, j);
    json_t *pinned = json_array_get(json_object_get(def->doc, "tasks"), 1);
    assert_int_equal(json_integer_value(json_object_get(pinned, "version")), 2);
    assert_non_null(strstr(def->canonical, "\"connector\":\"billing\""));
    assert_non_null(strstr(def->canonical, "\"type\":\"connector\",\"version\":2}"));
    /* republishing the pinned text is the same document */
    definition_t *again = NULL;
    assert_int_equal(
        definition_load(def->canonical, strlen(def->canonical), NULL, NULL, &registry, &again, &d),
        0);
    assert_string_equal(again->canonical, def->canonical);
    assert_int_equal(again->tasks[1].u.connector.version, 2);
    definition_free(again);
    definition_free(def);
    json_decref(j);
    diags_deinit(&d);

    /* an explicit version stays; a document without connector tasks is shared, not copied */
    char *s = one_task(K "'version': 1, 'operation': 'create_invoice', "
                         "'input': {'lines': []}");
    def = expect_ok_r(s, &registry);
    free(s);
    assert_int_equal(def->tasks[0].u.connector.version, 1);
    assert_null(strstr(def->canonical, "\"version\":2"));
    definition_free(def);

    /* connections must exist at publish (SPEC §1), for connector and http tasks alike */
    s = one_task("'type': 'connector', 'connector': 'billing', 'connection': 'later', "
                 "'operation': 'ping'");
    expect_problem_r(s, &registry, "/tasks/0/connection",
                     "connection 'later' does not exist: create it first (braid connection set, "
                     "or PUT /connections/later)");
    free(s);
    s = one_task("'type': 'http', 'url': 'https://example.com/', 'connection': 'later'");
    expect_problem_r(s, &registry, "/tasks/0/connection",
                     "connection 'later' does not exist: create it first (braid connection set, "
                     "or PUT /connections/later)");
    free(s);

    /* optional and defaulted inputs need no mapping */
    s = one_task(K "'operation': 'create_invoice', 'input': {'lines': [], 'note': 'n'}");
    definition_free(expect_ok_r(s, &registry));
    free(s);

    assert_int_equal(run_task_case_file("tests/cases/definitions/connector_pinning.txt", &registry),
                     10);

    /* an operation without declared inputs takes any input */
    s = one_task(K "'operation': 'ping', 'input': {'anything': 1}");
    definition_free(expect_ok_r(s, &registry));
    free(s);
}

#undef K

/* ---- many problems, and where they are ------------------------------------------------- */

static void test_definition_reports_every_problem(void **state)
{
    (void)state;
    size_t len;
    char *text = read_source("tests/cases/definitions/many_problems.json", &len);
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(definition_load(text, len, NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_null(def);
    static const char *const want[][2] = {
        {"/tiemout_ms", "unknown field 'tiemout_ms'"},
        {"/name", "invalid name 'Bad Name'"},
        {"/inputs/n/default", "must be integer, got string"},
        {"/tasks/1/id", "duplicate task id 'a'"},
        {"/tasks/1/values", "must set at least one var"},
        {"/tasks/2/delay_ms", "delay_ms is only for async calls"},
        {"/tasks/3/next", "no task has the id 'nowhere'"},
        {"/tasks/3/code", "required field 'code' is missing"},
    };
    size_t n = sizeof want / sizeof want[0];
    if (d.n != (int)n)
        dump_diags(&d);
    assert_int_equal(d.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(d.items[i].pointer, want[i][0]);
        assert_non_null(strstr(d.items[i].message, want[i][1]));
        assert_true(d.items[i].line > 0);
    }
    /* and as JSON */
    json_t *j = diags_to_json(&d);
    assert_int_equal(json_array_size(j), n);
    json_t *first = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(first, "pointer")), "/tiemout_ms");
    assert_string_equal(json_string_value(json_object_get(first, "message")),
                        "unknown field 'tiemout_ms'");
    assert_int_equal(json_integer_value(json_object_get(first, "line")), 3);
    assert_int_equal(json_integer_value(json_object_get(first, "column")), 3);
    json_decref(j);
    diags_deinit(&d);
    free(text);
}

static void test_definition_caps_the_number_of_problems(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    buf_puts(&b,
             "{\"name\": \"x\", \"tasks\": [{\"id\": \"t\", \"type\": \"fail\", \"code\": \"c\"}]");
    for (int i = 0; i < 500; i++)
        buf_printf(&b, ", \"f%d\": 1", i);
    buf_puts(&b, "}");
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(definition_load(b.data, b.len, NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 201);
    assert_string_equal(d.items[199].pointer, "/f199");
    assert_string_equal(d.items[200].pointer, "");
    assert_string_equal(d.items[200].message, "too many problems: only the first 200 are reported");
    diags_deinit(&d);
    buf_deinit(&b);
}

static void test_definition_locates_syntax_errors(void **state)
{
    (void)state;
    const char *text = "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"id\": \"a\",}\n  ]\n}\n";
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(definition_load(text, strlen(text), NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_null(def);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "");
    assert_int_equal(d.items[0].line, 4);
    assert_int_equal(d.items[0].column, 16);
    assert_non_null(strstr(d.items[0].message, "line 4"));
    diags_deinit(&d);

    /* duplicate keys are refused, with their place */
    text = "{\"name\": \"x\",\n \"name\": \"y\", \"tasks\": []}";
    assert_int_equal(definition_load(text, strlen(text), NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "");
    assert_int_equal(d.items[0].line, 2);
    assert_non_null(strstr(d.items[0].message, "duplicate"));
    diags_deinit(&d);

    /* not an object */
    text = "\n [1, 2]";
    assert_int_equal(definition_load(text, strlen(text), NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "");
    assert_string_equal(d.items[0].message, "the document must be a JSON object, not array");
    assert_int_equal(d.items[0].line, 2);
    assert_int_equal(d.items[0].column, 2);
    diags_deinit(&d);

    /* empty text */
    assert_int_equal(definition_load("", 0, NULL, NULL, NULL, &def, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "");
    diags_deinit(&d);
    assert_int_equal(definition_load(NULL, 0, NULL, NULL, NULL, &def, &d), BR_EINVALID_DEFINITION);
    diags_deinit(&d);
}

static void test_definition_locates_semantic_errors(void **state)
{
    (void)state;
    size_t len;
    char *text = read_source("tests/cases/definitions/located.json", &len);
    definition_t *def = NULL;
    diags_t d = {0};
    assert_int_equal(definition_load(text, len, NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 3);
    /* an unknown field: its key */
    const diag_t *g = find_diag(&d, "/colour");
    assert_int_equal(g->line, 3);
    assert_int_equal(g->column, 3);
    /* a bad value: the value */
    g = find_diag(&d, "/tasks/0/next");
    assert_int_equal(g->line, 7);
    assert_int_equal(g->column, 14);
    /* a missing field: the object that lacks it */
    g = find_diag(&d, "/tasks/1/id");
    assert_int_equal(g->line, 8);
    assert_int_equal(g->column, 5);
    diags_deinit(&d);
    free(text);

    /* escapes in keys and pointers, multi-byte characters before the value */
    const char *t2 = "{\"name\": \"x\", \"d\\u00e9j\\u00e0/vu~\": 1,\n"
                     "\"tasks\": [{\"id\": \"t\", \"type\": \"fail\", \"code\": \"c\",\n"
                     " \"cases\": {\"\xc3\xa9t\xc3\xa9\": \"no\"}}]}";
    assert_int_equal(definition_load(t2, strlen(t2), NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 2);
    g = find_diag(&d, "/d\xc3\xa9j\xc3\xa0~1vu~0");
    assert_int_equal(g->line, 1);
    assert_int_equal(g->column, 15);
    g = find_diag(&d, "/tasks/0/cases/\xc3\xa9t\xc3\xa9");
    assert_int_equal(g->line, 3);
    assert_int_equal(g->column, 19);
    diags_deinit(&d);

    /* definition_compile knows no text: no line numbers */
    json_t *j = json_loads("{\"name\": \"x\", \"zz\": 1, \"tasks\": [{\"id\": \"t\", \"type\": "
                           "\"fail\", \"code\": \"c\"}]}",
                           0, NULL);
    assert_int_equal(definition_compile(j, NULL, NULL, &def, &d), BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "/zz");
    assert_int_equal(d.items[0].line, 0);
    json_t *dj = diags_to_json(&d);
    assert_null(json_object_get(json_array_get(dj, 0), "line"));
    assert_null(json_object_get(json_array_get(dj, 0), "column"));
    json_decref(dj);
    diags_deinit(&d);
    json_object_del(j, "zz");
    assert_int_equal(definition_compile(j, NULL, NULL, &def, &d), 0);
    assert_ptr_equal(def->doc, j); /* a reference, not a copy */
    definition_free(def);
    json_decref(j);
    diags_deinit(&d);
}

/* ---- limits and hostile input ---------------------------------------------------------- */

static void test_definition_enforces_limits(void **state)
{
    (void)state;
    definition_t *def = NULL;
    diags_t d = {0};
    /* size: the default 1 MiB, and a smaller one */
    size_t big = 1024 * 1024 + 1;
    char *text = xmalloc(big + 1);
    memset(text, ' ', big);
    memcpy(text, "{\"name\": \"x\"}", 13);
    text[big] = '\0';
    assert_int_equal(definition_load(text, big, NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "");
    assert_non_null(strstr(d.items[0].message, "limit"));
    diags_deinit(&d);
    free(text);

    char *small = doc("{'name': 'x', " TASKS "}");
    definition_limits_t lim = {.max_bytes = 20};
    assert_int_equal(definition_load(small, strlen(small), NULL, &lim, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    diags_deinit(&d);
    lim.max_bytes = strlen(small);
    assert_int_equal(definition_load(small, strlen(small), NULL, &lim, NULL, &def, &d), 0);
    definition_free(def);
    diags_deinit(&d);
    free(small);

    /* depth: 64 by default */
    buf_t b = BUF_INIT;
    buf_puts(&b, "{\"name\": \"x\", "
                 "\"tasks\": [{\"id\": \"t\", \"type\": \"fail\", "
                 "\"code\": \"c\", \"detail\": ");
    for (int i = 0; i < 61; i++)
        buf_putc(&b, '[');
    for (int i = 0; i < 61; i++)
        buf_putc(&b, ']');
    buf_puts(&b, "}]}");
    assert_int_equal(definition_load(b.data, b.len, NULL, NULL, NULL, &def, &d), 0); /* 64 */
    definition_free(def);
    diags_deinit(&d);
    buf_reset(&b);
    buf_puts(&b, "{\"name\": \"x\", \"tasks\": [{\"id\": \"t\", \"type\": \"fail\", "
                 "\"code\": \"c\", \"detail\": ");
    for (int i = 0; i < 62; i++)
        buf_putc(&b, '[');
    for (int i = 0; i < 62; i++)
        buf_putc(&b, ']');
    buf_puts(&b, "}]}");
    assert_int_equal(definition_load(b.data, b.len, NULL, NULL, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.items[0].pointer, "");
    assert_non_null(strstr(d.items[0].message, "nesting"));
    assert_int_equal(d.items[0].line, 1);
    diags_deinit(&d);
    lim = (definition_limits_t){.max_depth = 3};
    assert_int_equal(load_q("{'name': 'x', " TASKS "}", &lim, NULL, &def, &d), 0);
    definition_free(def);
    diags_deinit(&d);
    lim.max_depth = 2;
    assert_int_equal(load_q("{'name': 'x', " TASKS "}", &lim, NULL, &def, &d),
                     BR_EINVALID_DEFINITION);
    diags_deinit(&d);
    buf_deinit(&b);
}

static void test_definition_refuses_json_test_suite_n_files(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/../shared/testdata/JSONTestSuite/test_parsing", source_dir());
    DIR *dh = opendir(dir);
    if (!dh)
        fail_msg("cannot open %s", dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (strncmp(e->d_name, "n_", 2) != 0)
            continue;
        char rel[4096];
        snprintf(rel, sizeof rel, "../shared/testdata/JSONTestSuite/test_parsing/%s", e->d_name);
        size_t len;
        char *text = read_source(rel, &len);
        definition_t *def = NULL;
        diags_t d = {0};
        int rc = definition_load(text, len, NULL, NULL, NULL, &def, &d);
        if (rc != BR_EINVALID_DEFINITION || def || d.n < 1)
            fail_msg("%s was not refused", e->d_name);
        json_t *j = diags_to_json(&d);
        assert_non_null(j);
        json_decref(j);
        diags_deinit(&d);
        free(text);
        count++;
    }
    closedir(dh);
    assert_true(count > 150);
}

/* ---- binding inputs -------------------------------------------------------------------- */

static void expect_bound(const definition_t *def, const char *payload, const char *want)
{
    json_t *p = jq(payload), *w = jq(want);
    err_t err = {0};
    json_t *vars = definition_bind_inputs(def, p, &err);
    if (!vars)
        fail_msg("bind failed: %s", err.msg);
    char *got = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS);
    char *exp = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got, exp);
    free(got);
    free(exp);
    json_decref(vars);
    json_decref(p);
    json_decref(w);
}

static void expect_bind_error(const definition_t *def, const char *payload, const char *msg,
                              const char *errors)
{
    json_t *p = jq(payload);
    err_t err = {0};
    expect_input_errors(definition_bind_inputs(def, p, &err), &err, msg, errors);
    json_decref(p);
}

static void test_definition_binds_declared_inputs(void **state)
{
    (void)state;
    definition_t *def = expect_ok("{'name': 'x', 'inputs': {"
                                  "'order': {'type': 'object', 'required': true},"
                                  "'priority': {'type': 'integer', 'default': 0},"
                                  "'ratio': {'type': 'number'},"
                                  "'tags': {'type': 'array', 'default': ['a']},"
                                  "'flag': {'type': 'boolean'},"
                                  "'name': {'type': 'string'},"
                                  "'any': {}}, " TASKS "}");
    expect_bound(def, "{'order': {'id': 1}}", "{'order': {'id': 1}, 'priority': 0, 'tags': ['a']}");
    expect_bound(def,
                 "{'order': {}, 'priority': 3.0, 'ratio': 2, 'flag': false, 'name': 'n', "
                 "'any': null, 'extra': 1}",
                 "{'order': {}, 'priority': 3.0, 'ratio': 2, 'flag': false, 'name': 'n', "
                 "'tags': ['a']}");
    expect_bound(def, "{'order': {}, 'priority': null, 'any': [1]}",
                 "{'order': {}, 'priority': 0, 'tags': ['a'], 'any': [1]}");
    expect_bind_error(def, "{'priority': 'high'}", "2 inputs are invalid",
                      "[{'field': 'order', 'message': 'is required'},"
                      " {'field': 'priority', 'message': 'must be integer, got string'}]");
    expect_bind_error(def,
                      "{'order': [], 'priority': 1.5, 'ratio': 'x', 'flag': 0, 'name': 1,"
                      " 'tags': {}}",
                      "6 inputs are invalid",
                      "[{'field': 'order', 'message': 'must be object, got array'},"
                      " {'field': 'priority', 'message': 'must be integer, got number'},"
                      " {'field': 'ratio', 'message': 'must be number, got string'},"
                      " {'field': 'tags', 'message': 'must be array, got object'},"
                      " {'field': 'flag', 'message': 'must be boolean, got integer'},"
                      " {'field': 'name', 'message': 'must be string, got integer'}]");
    expect_bind_error(def, "[1]", "1 input is invalid",
                      "[{'field': 'order', 'message': 'is required'}]");
    expect_bind_error(def, "{'order': null}", "1 input is invalid",
                      "[{'field': 'order', 'message': 'is required'}]");

    /* bound values are copies: changing them leaves the payload and the default alone */
    json_t *p = jq("{'order': {'id': 1}}");
    json_t *vars = definition_bind_inputs(def, p, NULL);
    json_object_set_new(json_object_get(vars, "order"), "id", json_integer(2));
    json_array_append_new(json_object_get(vars, "tags"), json_integer(9));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "order"), "id")), 1);
    assert_int_equal(json_array_size(def->inputs[3].default_value), 1);
    json_decref(vars);
    json_decref(p);
    /* a NULL ERR is allowed */
    p = jq("{}");
    assert_null(definition_bind_inputs(def, p, NULL));
    json_decref(p);
    definition_free(def);

    /* optional inputs only: a non-object payload binds as {} */
    def = expect_ok("{'name': 'x', 'inputs': {'a': {'type': 'string'}}, " TASKS "}");
    expect_bound(def, "'text'", "{}");
    expect_bound(def, "{'a': 'v', 'b': 2}", "{'a': 'v'}");
    definition_free(def);

    /* declared but empty: nothing is bound */
    def = expect_ok("{'name': 'x', 'inputs': {}, " TASKS "}");
    expect_bound(def, "{'a': 1}", "{}");
    definition_free(def);
}

static void test_definition_binds_undeclared_payload(void **state)
{
    (void)state;
    definition_t *def = expect_ok("{'name': 'x', " TASKS "}");
    expect_bound(def, "{'a': 1, 'b': {'c': [2]}}", "{'a': 1, 'b': {'c': [2]}}");
    expect_bound(def, "[1, 2]", "{}");
    expect_bound(def, "'s'", "{}");
    expect_bound(def, "null", "{}");
    json_t *vars = definition_bind_inputs(def, NULL, NULL);
    assert_true(json_is_object(vars));
    assert_int_equal(json_object_size(vars), 0);
    json_decref(vars);
    json_t *p = jq("{'a': {'b': 1}}");
    vars = definition_bind_inputs(def, p, NULL);
    assert_ptr_not_equal(json_object_get(vars, "a"), json_object_get(p, "a"));
    json_decref(vars);
    json_decref(p);
    definition_free(def);
}

static void test_definition_mapping_problems(void **state)
{
    (void)state;
    definition_t *def = expect_ok("{'name': 'pricing/line', 'inputs': {"
                                  "'sku': {'type': 'string', 'required': true},"
                                  "'qty': {'type': 'integer', 'required': true},"
                                  "'currency': {'type': 'string', 'default': 'EUR'},"
                                  "'note': {}}, " TASKS "}");
    json_t *mapped = jq("['sku', 'qty', 'currency']");
    json_t *p = definition_mapping_problems(def, mapped);
    assert_int_equal(json_array_size(p), 0);
    json_decref(p);
    json_decref(mapped);

    mapped = jq("['sku', 'quantity', 'note']");
    p = definition_mapping_problems(def, mapped);
    assert_int_equal(json_array_size(p), 2);
    assert_string_equal(json_string_value(json_array_get(p, 0)),
                        "input 'quantity' is not declared by pricing/line");
    assert_string_equal(json_string_value(json_array_get(p, 1)),
                        "required input 'qty' is not mapped");
    json_decref(p);
    json_decref(mapped);
    definition_free(def);

    /* no declarations: any mapping fits */
    def = expect_ok("{'name': 'x', " TASKS "}");
    mapped = jq("['a', 'b']");
    p = definition_mapping_problems(def, mapped);
    assert_true(json_is_array(p));
    assert_int_equal(json_array_size(p), 0);
    json_decref(p);
    json_decref(mapped);
    definition_free(def);
}

/* ---- globs ----------------------------------------------------------------------------- */

static void test_definition_glob_match(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *name;
        bool match;
    } cases[] = {
        {"orders/*", "orders/intake", true},
        {"orders/*", "orders/a/b", true}, /* '*' crosses '/' */
        {"orders/*", "orders/", true},
        {"orders/*", "orders", false},
        {"*", "", true},
        {"*", "anything/at/all", true},
        {"", "", true},
        {"", "a", false},
        {"a", "", false},
        {"a?c", "abc", true},
        {"a?c", "ac", false},
        {"a?c", "a/c", true},
        {"*intake", "orders/intake", true},
        {"*in*ke", "orders/intake", true},
        {"*in*ke", "orders/intakes", false},
        {"a*b*c", "a-b-b-c", true},
        {"a*b*c", "a-b-b-d", false},
        {"**", "x", true},
        {"exact/name", "exact/name", true},
        {"exact/name", "exact/names", false},
        {"a.b", "axb", false}, /* '.' is literal */
        {"[ab]", "a", false},  /* no classes */
        {"[ab]", "[ab]", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (definition_glob_match(cases[i].pattern, cases[i].name) != cases[i].match)
            fail_msg("glob '%s' against '%s' should be %d", cases[i].pattern, cases[i].name,
                     cases[i].match);
    }
    /* a pathological pattern stays fast */
    char name[4001];
    memset(name, 'a', 4000);
    name[4000] = '\0';
    assert_false(definition_glob_match("*a*a*a*a*a*a*a*a*b", name));

    definition_t *def =
        expect_ok("{'name': 'x', 'callers': ['orders/*', 'admin/?ool'], " TASKS "}");
    assert_true(definition_caller_allowed(def, "orders/intake"));
    assert_true(definition_caller_allowed(def, "admin/tool"));
    assert_false(definition_caller_allowed(def, "admin/tools"));
    assert_false(definition_caller_allowed(def, "billing/run"));
    assert_true(definition_caller_allowed(def, NULL));
    definition_free(def);
}

static void test_definition_diags_api(void **state)
{
    (void)state;
    diags_t d = {0};
    diags_add(&d, "/a/0", "bad %s %d", "thing", 3);
    diags_add(&d, "", "whole");
    diags_add(&d, "/x", "cut \xc3"); /* a message cut inside a UTF-8 sequence */
    const char *text = "{\"a\": [\n  5]}";
    diags_locate(&d, text, strlen(text));
    assert_string_equal(d.items[0].message, "bad thing 3");
    assert_int_equal(d.items[0].line, 2);
    assert_int_equal(d.items[0].column, 3);
    assert_int_equal(d.items[1].line, 1);
    assert_int_equal(d.items[1].column, 1);
    /* a pointer the text does not have: the deepest value that exists */
    assert_int_equal(d.items[2].line, 1);
    assert_int_equal(d.items[2].column, 1);
    json_t *j = diags_to_json(&d);
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 2), "message")),
                        "cut ?");
    json_decref(j);
    diags_deinit(&d);
    assert_int_equal(d.n, 0);

    /* escaped quotes and backslashes inside strings before the target */
    text = "{\"a\": \"x\\\"y\\\\\", \"b\": 1}";
    diags_add(&d, "/b", "here");
    diags_locate(&d, text, strlen(text));
    assert_int_equal(d.items[0].line, 1);
    assert_int_equal(d.items[0].column, 22);
    diags_deinit(&d);

    /* text that does not hold the pointers, or is cut short: no crash, some place */
    static const char *const cut[] = {
        "{\"a\": [1, {\"b\": \"x", "{\"a\": [", "[[[", "\"", "{\"a\" 1}", "{\"\\u00", "", "   "};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        diags_add(&d, "/a/1/b", "x");
        diags_add(&d, "/a/5", "x");
        diags_add(&d, "/a/1/b/c/~", "x");
        diags_add(&d, "/a/-", "x");
        diags_locate(&d, cut[i], strlen(cut[i]));
        for (int k = 0; k < d.n; k++)
            assert_true(d.items[k].line >= 1);
        diags_deinit(&d);
    }
    diags_deinit(&d);
    diags_deinit(NULL);
    /* a NULL DIAGS still gives the verdict */
    definition_t *def = NULL;
    assert_int_equal(definition_load("{}", 2, NULL, NULL, NULL, &def, NULL),
                     BR_EINVALID_DEFINITION);
    assert_int_equal(definition_load("{", 1, NULL, NULL, NULL, &def, NULL), BR_EINVALID_DEFINITION);
    json_t *empty = json_object();
    assert_int_equal(definition_compile(empty, NULL, NULL, &def, NULL), BR_EINVALID_DEFINITION);
    json_decref(empty);
    definition_free(NULL);
    assert_string_equal(task_type_name(TASK_AWAIT), "await");
    assert_string_equal(task_type_name(TASK_HTTP), "http");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_definition_full_document_compiles),
        cmocka_unit_test(test_definition_defaults),
        cmocka_unit_test(test_definition_outputs_object_and_extras),
        cmocka_unit_test(test_definition_rejects_bad_names),
        cmocka_unit_test(test_definition_name_hint),
        cmocka_unit_test(test_definition_rejects_unknown_and_mistyped_fields),
        cmocka_unit_test(test_definition_rejects_bad_triggers),
        cmocka_unit_test(test_definition_rejects_bad_inputs),
        cmocka_unit_test(test_definition_rejects_bad_outputs),
        cmocka_unit_test(test_definition_rejects_bad_retry),
        cmocka_unit_test(test_definition_rejects_bad_task_lists),
        cmocka_unit_test(test_definition_rejects_bad_task_ids),
        cmocka_unit_test(test_definition_rejects_bad_task_types),
        cmocka_unit_test(test_definition_rejects_bad_shared_task_fields),
        cmocka_unit_test(test_definition_rejects_bad_call_targets),
        cmocka_unit_test(test_definition_rejects_bad_call_options),
        cmocka_unit_test(test_definition_rejects_bad_set_switch),
        cmocka_unit_test(test_definition_rejects_bad_await_fail),
        cmocka_unit_test(test_definition_template_problems),
        cmocka_unit_test(test_definition_http_every_field),
        cmocka_unit_test(test_definition_http_defaults),
        cmocka_unit_test(test_definition_http_refusals),
        cmocka_unit_test(test_definition_connector_every_field),
        cmocka_unit_test(test_definition_connector_refusals),
        cmocka_unit_test(test_definition_connector_pinning),
        cmocka_unit_test(test_definition_reports_every_problem),
        cmocka_unit_test(test_definition_caps_the_number_of_problems),
        cmocka_unit_test(test_definition_locates_syntax_errors),
        cmocka_unit_test(test_definition_locates_semantic_errors),
        cmocka_unit_test(test_definition_enforces_limits),
        cmocka_unit_test(test_definition_refuses_json_test_suite_n_files),
        cmocka_unit_test(test_definition_binds_declared_inputs),
        cmocka_unit_test(test_definition_binds_undeclared_payload),
        cmocka_unit_test(test_definition_mapping_problems),
        cmocka_unit_test(test_definition_glob_match),
        cmocka_unit_test(test_definition_diags_api),
    };
    return cmocka_run_group_tests(tests, load_connectors, free_connectors);
}
