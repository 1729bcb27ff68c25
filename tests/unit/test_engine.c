/* test_engine.c - the engine through its interface, on a real SQLite store in a temp dir:
 * the interpreter, call_integration in its forms, limits, the queue, await and cancellation. */
#include "core/clock.h"
#include "engine/engine.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmp_engine.h"

typedef engine_fx_t fixture_t;

static int setup_with(void **state, int max_depth, int64_t max_desc)
{
    fixture_t *f = engine_fx_new("/tmp/braid-test-engine-XXXXXX");
    err_t err = {0};
    engine_config_t cfg;
    engine_config_defaults(&cfg);
    cfg.max_call_depth = max_depth;
    cfg.max_descendants = max_desc;
    cfg.workers = 2;
    assert_int_equal(engine_new(&cfg, f->st, &f->eng, &err), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 32, 100000);
}

static int setup_small(void **state)
{
    return setup_with(state, 8, 50);
}

static int teardown(void **state)
{
    engine_fx_free(*state);
    return 0;
}

static void publish(fixture_t *f, const char *doc)
{
    json_t *result = NULL;
    diags_t diags = {0};
    err_t err = {0};
    expect_published(engine_publish(f->eng, doc, strlen(doc), NULL, &result, &diags, &err), &diags,
                     &err);
    json_decref(result);
}

/* Run NAME with PAYLOAD (JSON text) and return the run record (owned). */
static json_t *run(fixture_t *f, const char *name, const char *payload, exec_mode_t mode)
{
    json_t *p = json_loads(payload, JSON_DECODE_ANY, NULL);
    assert_non_null(p);
    exec_request_t req = {.integration = name, .mode = mode, .payload = p, .trigger = "cli"};
    json_t *out = NULL;
    err_t err = {0};
    int rc = engine_execute(f->eng, &req, &out, &err);
    json_decref(p);
    if (rc < 0) {
        out = json_pack("{s:s, s:s}", "start_error", err_name(rc), "message", err.msg);
        err_clear(&err);
    }
    return out;
}

static const char *status_of(json_t *r)
{
    return json_string_value(json_object_get(r, "status"));
}

static const char *error_code(json_t *r)
{
    json_t *e = json_object_get(r, "error");
    return json_string_value(json_object_get(e, "code"));
}

static void test_engine_sync_call_returns_child_output(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"child\",\"inputs\":{\"x\":{\"type\":\"integer\",\"required\":true}},"
               "\"outputs\":[\"y\"],\"tasks\":[{\"id\":\"s\",\"type\":\"set\","
               "\"values\":{\"y\":\"{{vars.x * 2}}\"}}]}");
    publish(f, "{\"name\":\"parent\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"child\",\"input\":{\"x\":\"{{vars.n}}\"},"
               "\"output\":{\"doubled\":\"y\"}}]}");
    json_t *r = run(f, "parent", "{\"n\": 21}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "succeeded");
    json_t *out = json_object_get(r, "output");
    assert_int_equal(json_integer_value(json_object_get(out, "doubled")), 42);
    json_decref(r);
}

static void test_engine_failure_routed_by_cases(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"bad\",\"tasks\":[{\"id\":\"f\",\"type\":\"fail\",\"code\":\"nope\","
               "\"message\":\"no {{vars.w}}\"}]}");
    publish(f, "{\"name\":\"router\",\"outputs\":[\"seen\",\"msg\"],\"tasks\":["
               "{\"id\":\"c\",\"type\":\"call_integration\",\"integration\":\"bad\","
               "\"input\":{\"w\":\"way\"},\"cases\":{\"nope\":\"handle\"}},"
               "{\"id\":\"never\",\"type\":\"fail\",\"code\":\"wrong\"},"
               "{\"id\":\"handle\",\"type\":\"set\",\"values\":{\"seen\":\"{{tasks.c.error.code}}\","
               "\"msg\":\"{{tasks.c.error.message}}\"}}]}");
    json_t *r = run(f, "router", "{}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "succeeded");
    json_t *out = json_object_get(r, "output");
    assert_string_equal(json_string_value(json_object_get(out, "seen")), "nope");
    assert_string_equal(json_string_value(json_object_get(out, "msg")), "no way");
    json_decref(r);
}

static void test_engine_uncaught_failure_fails_run(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"bad\",\"tasks\":[{\"id\":\"f\",\"type\":\"fail\",\"code\":\"nope\"}]}");
    publish(f, "{\"name\":\"p\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"bad\"},{\"id\":\"after\",\"type\":\"set\",\"values\":{\"a\":1}}]}");
    json_t *r = run(f, "p", "{}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "failed");
    assert_string_equal(error_code(r), "nope");
    json_decref(r);
    publish(f, "{\"name\":\"q\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"bad\",\"continue_on_error\":true},"
               "{\"id\":\"after\",\"type\":\"set\",\"values\":{\"ok\":\"{{tasks.c.success}}\"}}]}");
    r = run(f, "q", "{}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "succeeded");
    assert_true(json_is_false(json_object_get(json_object_get(r, "output"), "ok")));
    json_decref(r);
}

static void test_engine_retry_counts_attempts(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"flaky\",\"tasks\":[{\"id\":\"f\",\"type\":\"fail\",\"code\":\"boom\"}]}");
    publish(f, "{\"name\":\"r\",\"outputs\":{\"n\":\"{{tasks.c.attempts}}\"},\"tasks\":["
               "{\"id\":\"c\",\"type\":\"call_integration\",\"integration\":\"flaky\","
               "\"continue_on_error\":true,\"retry\":{\"max_attempts\":3,\"initial_ms\":1,"
               "\"on\":[\"boom\"]}}]}");
    json_t *r = run(f, "r", "{}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "output"), "n")), 3);
    json_decref(r);
}

static void test_engine_recursion_ends_with_depth_exceeded(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"loop\",\"tasks\":[{\"id\":\"again\",\"type\":\"call_integration\","
               "\"integration\":\"loop\"}]}");
    int64_t t0 = clock_mono_ms();
    json_t *r = run(f, "loop", "{}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "failed");
    assert_string_equal(error_code(r), "call_depth_exceeded");
    assert_true(clock_mono_ms() - t0 < 5000);
    json_decref(r);
}

static void test_engine_fanout_ends_with_descendant_limit(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"leaf\",\"tasks\":[{\"id\":\"s\",\"type\":\"set\",\"values\":{\"a\":1}}]}");
    publish(f, "{\"name\":\"wide\",\"tasks\":[{\"id\":\"each\",\"type\":\"call_integration\","
               "\"integration\":\"leaf\",\"for_each\":\"{{vars.items}}\",\"parallelism\":4}]}");
    char payload[2048] = "{\"items\":[";
    for (int i = 0; i < 80; i++)
        strcat(payload, i ? ",1" : "1");
    strcat(payload, "]}");
    json_t *r = run(f, "wide", payload, EXEC_DEFAULT);
    assert_string_equal(status_of(r), "failed");
    assert_string_equal(error_code(r), "descendant_limit");
    json_decref(r);
}

static void test_engine_step_limit(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"spin\",\"tasks\":[{\"id\":\"a\",\"type\":\"set\",\"values\":"
               "{\"i\":\"{{(vars.i | default:0) + 1}}\"},\"next\":\"a\"}]}");
    json_t *r = run(f, "spin", "{}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "failed");
    assert_string_equal(error_code(r), "step_limit");
    json_decref(r);
}

static void test_engine_for_each_keeps_element_order(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"sq\",\"outputs\":{\"v\":\"{{vars.x * vars.x}}\"},\"tasks\":"
               "[{\"id\":\"s\",\"type\":\"set\",\"values\":{\"done\":true}}]}");
    publish(f, "{\"name\":\"many\",\"outputs\":{\"r\":\"{{tasks.each.result}}\"},\"tasks\":["
               "{\"id\":\"each\",\"type\":\"call_integration\",\"integration\":\"sq\","
               "\"for_each\":\"{{vars.items}}\",\"parallelism\":3,"
               "\"input\":{\"x\":\"{{item}}\"}}]}");
    json_t *r = run(f, "many", "{\"items\":[1,2,3,4,5,6,7]}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "succeeded");
    json_t *list = json_object_get(json_object_get(r, "output"), "r");
    assert_int_equal(json_array_size(list), 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(list, i), "v")),
                         (i + 1) * (i + 1));
    json_decref(r);
}

static void test_engine_async_child_is_durable_and_drains(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"later\",\"tasks\":[{\"id\":\"s\",\"type\":\"set\",\"values\":{\"a\":1}}]}");
    publish(f, "{\"name\":\"kick\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"later\",\"strategy\":\"async\",\"delay_ms\":300}]}");
    json_t *r = run(f, "kick", "{}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "succeeded");
    json_decref(r);

    run_filter_t filter = {.integration = "later", .status = -1, .limit = 10};
    run_rec_t **runs = NULL;
    int n = 0;
    char *cursor = NULL;
    err_t err = {0};
    assert_int_equal(store_runs_list(f->st, &filter, &runs, &n, &cursor, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0]->status, RUN_SCHEDULED);
    char id[UUID_STR_LEN];
    memcpy(id, runs[0]->id, UUID_STR_LEN);
    run_recs_free(runs, n);
    free(cursor);

    int64_t t0 = clock_mono_ms();
    assert_int_equal(engine_drain(f->eng, NULL, NULL, &err), 0);
    assert_true(clock_mono_ms() - t0 >= 200);
    run_rec_t *rec = NULL;
    assert_int_equal(store_run_get(f->st, id, &rec, &err), 0);
    assert_int_equal(rec->status, RUN_SUCCEEDED);
    assert_int_equal(rec->depth, 1);
    run_rec_free(rec);
}

static void test_engine_await_runs_queued_children_itself(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"w\",\"outputs\":{\"x\":\"{{vars.x}}\"},\"tasks\":"
               "[{\"id\":\"s\",\"type\":\"set\",\"values\":{\"done\":true}}]}");
    publish(f, "{\"name\":\"waiter\",\"outputs\":{\"r\":\"{{tasks.wait.result}}\"},\"tasks\":["
               "{\"id\":\"fan\",\"type\":\"call_integration\",\"integration\":\"w\","
               "\"strategy\":\"async\",\"for_each\":\"{{vars.items}}\",\"input\":{\"x\":\"{{item}}\"}},"
               "{\"id\":\"wait\",\"type\":\"await\",\"runs\":\"{{tasks.fan.result}}\","
               "\"timeout_ms\":5000}]}");
    /* No workers started: the await must run the queued children on its own thread. */
    json_t *r = run(f, "waiter", "{\"items\":[1,2,3]}", EXEC_DEFAULT);
    assert_string_equal(status_of(r), "succeeded");
    json_t *list = json_object_get(json_object_get(r, "output"), "r");
    assert_int_equal(json_array_size(list), 3);
    for (int i = 0; i < 3; i++) {
        json_t *e = json_array_get(list, i);
        assert_string_equal(json_string_value(json_object_get(e, "status")), "succeeded");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "output"), "x")),
                         i + 1);
    }
    json_decref(r);
}

static void test_engine_input_invalid_starts_nothing(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"strict\",\"inputs\":{\"x\":{\"type\":\"integer\",\"required\":true}},"
               "\"tasks\":[{\"id\":\"s\",\"type\":\"set\",\"values\":{\"a\":1}}]}");
    json_t *r = run(f, "strict", "{\"x\": \"no\"}", EXEC_DEFAULT);
    assert_string_equal(json_string_value(json_object_get(r, "start_error")), "input_invalid");
    json_decref(r);
    run_filter_t filter = {.integration = "strict", .status = -1, .limit = 10};
    run_rec_t **runs = NULL;
    int n = -1;
    char *cursor = NULL;
    assert_int_equal(store_runs_list(f->st, &filter, &runs, &n, &cursor, NULL), 0);
    assert_int_equal(n, 0);
    run_recs_free(runs, n);
    free(cursor);
}

/* What executions may wait for, which picks the thread they run on: nothing (only computing),
 * the network (http tasks, retries' pauses) or anything, judged through every sync call; the
 * answer follows a new version of a callee. */
static void test_engine_waits(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"leaf\",\"tasks\":[{\"id\":\"s\",\"type\":\"set\","
               "\"values\":{\"y\":1}},{\"id\":\"w\",\"type\":\"switch\",\"value\":\"a\","
               "\"cases\":{\"a\":\"f\"},\"default\":\"end\"},{\"id\":\"f\",\"type\":\"fail\","
               "\"code\":\"x\"}]}");
    publish(f, "{\"name\":\"mid\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"leaf\",\"strategy\":\"sync\"}]}");
    publish(f, "{\"name\":\"top\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"mid\"}]}");
    publish(f, "{\"name\":\"scripted\",\"tasks\":[{\"id\":\"l\",\"type\":\"script\","
               "\"lang\":\"lua\",\"source\":\"return 1\"}]}");
    publish(f, "{\"name\":\"fans\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"leaf\",\"for_each\":\"{{vars.items}}\"}]}");
    publish(f, "{\"name\":\"sends\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"leaf\",\"strategy\":\"async\"}]}");
    publish(f, "{\"name\":\"retries\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"leaf\",\"retry\":{\"max_attempts\":3}}]}");
    publish(f, "{\"name\":\"queued\",\"run_async\":true,\"tasks\":[{\"id\":\"l\","
               "\"type\":\"script\",\"lang\":\"lua\",\"source\":\"return 1\"}]}");
    publish(f, "{\"name\":\"self\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"self\"}]}");
    publish(f, "{\"name\":\"fetch\",\"tasks\":[{\"id\":\"h\",\"type\":\"http\","
               "\"url\":\"http://example.test/\"},{\"id\":\"s\",\"type\":\"set\","
               "\"values\":{\"y\":1}}]}");
    publish(f, "{\"name\":\"fetches\",\"tasks\":[{\"id\":\"c\",\"type\":\"call_integration\","
               "\"integration\":\"fetch\"},{\"id\":\"d\",\"type\":\"call_integration\","
               "\"integration\":\"leaf\"}]}");
    publish(f, "{\"name\":\"fetch_each\",\"tasks\":[{\"id\":\"c\","
               "\"type\":\"call_integration\",\"integration\":\"fetch\","
               "\"for_each\":\"{{vars.items}}\",\"parallelism\":1}]}");
    publish(f, "{\"name\":\"leaf_each\",\"tasks\":[{\"id\":\"c\","
               "\"type\":\"call_integration\",\"integration\":\"leaf\","
               "\"for_each\":\"{{vars.items}}\",\"parallelism\":1}]}");
    publish(f, "{\"name\":\"fetch_then_script\",\"tasks\":[{\"id\":\"c\","
               "\"type\":\"call_integration\",\"integration\":\"fetch\"},{\"id\":\"l\","
               "\"type\":\"script\",\"lang\":\"lua\",\"source\":\"return 1\"}]}");
    struct {
        const char *name;
        exec_mode_t mode;
        exec_waits_t waits;
    } cases[] = {
        {"leaf", EXEC_DEFAULT, EXEC_WAITS_NOTHING},
        {"mid", EXEC_SYNC, EXEC_WAITS_NOTHING},
        {"top", EXEC_DEFAULT, EXEC_WAITS_NOTHING},
        {"scripted", EXEC_DEFAULT, EXEC_WAITS_OTHER},
        {"scripted", EXEC_ASYNC, EXEC_WAITS_NOTHING},
        {"fans", EXEC_DEFAULT, EXEC_WAITS_NETWORK}, /* a for_each never on an HTTP thread */
        {"sends", EXEC_DEFAULT, EXEC_WAITS_OTHER},
        {"retries", EXEC_DEFAULT, EXEC_WAITS_NETWORK},
        {"queued", EXEC_DEFAULT, EXEC_WAITS_NOTHING},
        {"queued", EXEC_SYNC, EXEC_WAITS_OTHER},
        {"self", EXEC_DEFAULT, EXEC_WAITS_OTHER},
        {"nobody", EXEC_DEFAULT, EXEC_WAITS_NOTHING},
        {"fetch", EXEC_DEFAULT, EXEC_WAITS_NETWORK},
        {"fetches", EXEC_DEFAULT, EXEC_WAITS_NETWORK},
        {"fetch_then_script", EXEC_DEFAULT, EXEC_WAITS_OTHER},
        {"fetch_each", EXEC_DEFAULT, EXEC_WAITS_NETWORK},
        {"leaf_each", EXEC_DEFAULT, EXEC_WAITS_NETWORK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* twice: the second answer comes from the registry's memory */
        for (int k = 0; k < 2; k++)
            if (engine_waits(f->eng, cases[i].name, 0, cases[i].mode) != cases[i].waits)
                fail_msg("%s (mode %d): expected %d", cases[i].name, cases[i].mode,
                         cases[i].waits);
    }
    /* A new version of the leaf that runs a script: callers through it wait for anything now,
     * the pinned old version still waits for nothing. */
    publish(f, "{\"name\":\"leaf\",\"tasks\":[{\"id\":\"l\",\"type\":\"script\","
               "\"lang\":\"lua\",\"source\":\"return 1\"}]}");
    assert_int_equal(engine_waits(f->eng, "leaf", 0, EXEC_DEFAULT), EXEC_WAITS_OTHER);
    assert_int_equal(engine_waits(f->eng, "top", 0, EXEC_DEFAULT), EXEC_WAITS_OTHER);
    assert_int_equal(engine_waits(f->eng, "fetches", 0, EXEC_DEFAULT), EXEC_WAITS_OTHER);
    assert_int_equal(engine_waits(f->eng, "leaf", 1, EXEC_DEFAULT), EXEC_WAITS_NOTHING);
}

static void on_commit(void *arg, int rc, const err_t *err)
{
    (void)err;
    int *seen = arg;
    *seen = rc == 0 ? 1 : -1;
}

/* With a ticket asked for, engine_execute answers from memory without waiting for the commit;
 * once the ticket's callback says committed, the store has the same record. */
static void test_engine_execute_defers_the_commit_to_the_caller(void **state)
{
    fixture_t *f = *state;
    publish(f, "{\"name\":\"inc\",\"inputs\":{\"n\":{\"type\":\"integer\"}},"
               "\"outputs\":[\"y\"],\"tasks\":[{\"id\":\"s\",\"type\":\"set\","
               "\"values\":{\"y\":\"{{vars.n + 1}}\"}}]}");
    json_t *p = json_pack("{s:i}", "n", 41);
    uint64_t ticket = 99;
    exec_request_t req = {.integration = "inc", .payload = p, .trigger = "cli", .ticket = &ticket};
    json_t *out = NULL;
    err_t err = {0};
    assert_int_equal(engine_execute(f->eng, &req, &out, &err), 0);
    assert_true(ticket > 0 && ticket != 99);
    assert_string_equal(status_of(out), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "output"), "y")), 42);
    int seen = 0;
    store_on_commit(f->st, ticket, on_commit, &seen);
    assert_int_equal(store_flush(f->st, NULL), 0); /* returns after the callbacks it settled */
    assert_int_equal(seen, 1);
    run_rec_t *rec = NULL;
    const char *id = json_string_value(json_object_get(out, "id"));
    assert_int_equal(store_run_get(f->st, id, &rec, NULL), 0);
    json_t *stored = run_rec_to_json(rec);
    assert_true(json_equal(stored, out));
    json_decref(stored);
    run_rec_free(rec);
    /* An already settled ticket calls back at once, on this thread. */
    seen = 0;
    store_on_commit(f->st, ticket, on_commit, &seen);
    assert_int_equal(seen, 1);
    json_decref(out);
    /* An async execute hands back its enqueue's ticket too. */
    req.mode = EXEC_ASYNC;
    ticket = 0;
    assert_int_equal(engine_execute(f->eng, &req, &out, &err), 0);
    assert_true(ticket > 0);
    assert_string_equal(json_string_value(json_object_get(out, "status")), "queued");
    json_decref(out);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_engine_sync_call_returns_child_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_failure_routed_by_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_uncaught_failure_fails_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_retry_counts_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_recursion_ends_with_depth_exceeded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_engine_fanout_ends_with_descendant_limit, setup_small,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_engine_step_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_for_each_keeps_element_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_async_child_is_durable_and_drains, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_engine_await_runs_queued_children_itself, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_engine_input_invalid_starts_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_execute_defers_the_commit_to_the_caller, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
