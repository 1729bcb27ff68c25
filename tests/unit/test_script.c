/* test_script.c - the Lua sandbox: conversions, sandbox holes, budgets, callint's plumbing. */
#include "core/clock.h"
#include "core/jsonx.h"
#include "script/script.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static json_t *jp(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    assert_non_null(v);
    return v;
}

/* Run SRC with small budgets; returns the code, fills OUT. */
static int run_with(const char *src, const json_t *vars, const json_t *input,
                    const script_host_t *host, script_out_t *out, err_t *err)
{
    script_env_t env = {.max_memory = 16 << 20, .max_instructions = 20000000, .host = host};
    return script_run(&env, src, strlen(src), vars, input, out, err);
}

static void expect_result(const char *src, const char *want_json)
{
    script_out_t out;
    err_t err = {0};
    int rc = run_with(src, NULL, NULL, NULL, &out, &err);
    if (rc != 0)
        fail_msg("script failed: %s", err.msg);
    char *got = jsonx_dump(out.result);
    assert_string_equal(got, want_json);
    free(got);
    script_out_deinit(&out);
    err_clear(&err);
}

static void expect_error(const char *src, int code, const char *msg_part)
{
    script_out_t out;
    err_t err = {0};
    int rc = run_with(src, NULL, NULL, NULL, &out, &err);
    assert_int_equal(rc, code);
    if (msg_part && !strstr(err.msg, msg_part))
        fail_msg("message '%s' lacks '%s'", err.msg, msg_part);
    script_out_deinit(&out);
    err_clear(&err);
}

static void test_script_round_trip(void **state)
{
    (void)state;
    const char *doc = "{\"a\":null,\"b\":[],\"c\":{},\"d\":1,\"e\":1.0,\"f\":[1,[2,{\"g\":[]}]],"
                      "\"h\":\"x\\u0000y\",\"i\":true,\"j\":[null,null],\"k\":-9223372036854775808}";
    json_t *vars = jp(doc);
    script_out_t out;
    err_t err = {0};
    assert_int_equal(run_with("return vars", vars, NULL, NULL, &out, &err), 0);
    assert_true(json_equal(out.result, vars));
    /* integers stay integers, reals stay reals */
    assert_true(json_is_integer(json_object_get(out.result, "d")));
    assert_true(json_is_real(json_object_get(out.result, "e")));
    assert_true(json_is_array(json_object_get(out.result, "b")));
    assert_true(json_is_object(json_object_get(out.result, "c")));
    assert_int_equal(json_string_length(json_object_get(out.result, "h")), 3);
    assert_true(json_equal(out.vars, vars));
    script_out_deinit(&out);
    json_decref(vars);
}

static void test_script_conversions(void **state)
{
    (void)state;
    expect_result("return nil", "null");
    expect_result("return json.null", "null");
    expect_result("return {}", "{}");
    expect_result("return json.array()", "[]");
    expect_result("return json.array({})", "[]");
    expect_result("return {1, 2, 3}", "[1,2,3]");
    expect_result("return {[1]=1, [3]=3}", "{\"1\":1,\"3\":3}");
    expect_result("return 3 // 1", "3");
    expect_result("return 3 / 1", "3.0");
    expect_result("return json.decode('[]')", "[]");
    expect_result("return json.decode('{}')", "{}");
    expect_result("return json.encode(json.decode('[[],null,2.5,{},{\"a\":1}]'))",
                  "\"[[],null,2.5,{},{\\\"a\\\":1}]\"");
    expect_result("return json.decode('[1, 2.0]')[2] == 2.0 and math.type(json.decode('[1, 2.0]')[2])",
                  "\"float\"");
    expect_result("return #('a\\0b')", "3");
    expect_error("return '\\xff'", BR_ESCRIPT_ERROR, "not valid UTF-8 at result");
    expect_error("vars.x = {y = '\\xff'}", BR_ESCRIPT_ERROR, "vars.x.y");
    expect_error("local t = {} t.t = t return t", BR_ESCRIPT_ERROR, "cycle");
    expect_error("return print", BR_ESCRIPT_ERROR, "function");
    expect_error("return 0/0", BR_ESCRIPT_ERROR, "NaN");
    expect_error("vars = 5", BR_ESCRIPT_ERROR, "vars must stay a table");
}

static void test_script_runtime_error_has_line(void **state)
{
    (void)state;
    expect_error("local x = 1\nlocal y = nil\nreturn y.z", BR_ESCRIPT_ERROR, "script:3:");
    script_out_t out;
    err_t err = {0};
    assert_int_equal(run_with("error({code = 'out_of_stock', message = 'none left'})", NULL, NULL,
                              NULL, &out, &err),
                     BR_ESCRIPT_ERROR);
    assert_non_null(out.error);
    assert_string_equal(json_string_value(json_object_get(out.error, "code")), "out_of_stock");
    script_out_deinit(&out);
    err_clear(&err);
}

static void test_script_check(void **state)
{
    (void)state;
    int line;
    char msg[256];
    assert_int_equal(script_check("return 1", 8, &line, msg, sizeof msg), 0);
    const char *bad = "local a = 1\n\nlocal = 2";
    assert_int_equal(script_check(bad, strlen(bad), &line, msg, sizeof msg), -1);
    assert_int_equal(line, 3);
    assert_non_null(strstr(msg, "script:3:"));
    const char bin[] = "\x1bLua\x54\x00";
    assert_int_equal(script_check(bin, sizeof bin - 1, &line, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "binary"));
}

static void test_script_sandbox_holes(void **state)
{
    (void)state;
    expect_result("return {io == nil, os == nil, debug == nil, package == nil, require == nil,"
                  " dofile == nil, loadfile == nil, collectgarbage == nil, string.dump == nil}",
                  "[true,true,true,true,true,true,true,true,true]");
    expect_error("io.open('/etc/passwd')", BR_ESCRIPT_ERROR, "io");
    expect_error("os.execute('true')", BR_ESCRIPT_ERROR, "os");
    expect_error("require('os')", BR_ESCRIPT_ERROR, "require");
    expect_error("dofile('/etc/passwd')", BR_ESCRIPT_ERROR, "dofile");
    expect_error("string.dump(function() end)", BR_ESCRIPT_ERROR, "dump");
    /* a binary chunk cannot be loaded whatever mode is asked */
    expect_result("local f, e = load('\\27Lua\\84\\0', 'x', 'b') return {f == nil, e}",
                  "[true,\"attempt to load a binary chunk (mode is 't')\"]");
    expect_result("return load('return 1 + 1')()", "2");
    /* reaching the string library through a string's metatable gives nothing new */
    expect_result("return getmetatable('').__index.dump == nil", "true");
    /* the secrets root does not exist; the registry is not reachable */
    expect_result("return {secret == nil, conn == nil, debug == nil}", "[true,true,true]");
    expect_result("return coroutine.wrap(function() coroutine.yield(7) end)()", "7");
}

static void test_script_budgets(void **state)
{
    (void)state;
    int64_t t0 = clock_mono_ms();
    expect_error("while true do end", BR_ESCRIPT_LIMIT, "instruction budget");
    expect_error("while true do pcall(function() while true do end end) end", BR_ESCRIPT_LIMIT,
                 "instruction budget");
    expect_error("local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end", BR_ESCRIPT_LIMIT,
                 "memory budget");
    expect_error("for i = 1, 1e9 do pcall(string.rep, 'x', 1e9) end", BR_ESCRIPT_LIMIT,
                 "memory budget");
    expect_error("local co = coroutine.wrap(function() while true do end end)\n"
                 "while true do pcall(co) end",
                 BR_ESCRIPT_LIMIT, NULL);
    expect_error("setmetatable({}, {__gc = function() while true do end end})\nreturn 1",
                 BR_ESCRIPT_ERROR, "__gc");
    expect_result("local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end "
                  "return 1", "1");
    assert_true(clock_mono_ms() - t0 < 20000);
}

static void test_script_vars_input_log(void **state)
{
    (void)state;
    json_t *vars = jp("{\"n\":1}");
    json_t *input = jp("{\"payload\":{\"a\":[1,2]},\"method\":\"POST\"}");
    script_out_t out;
    err_t err = {0};
    const char *src = "vars.n = vars.n + 1 vars.m = input.method\n"
                      "log('hello', 1, nil, json.null, {})\n"
                      "local ok, e = pcall(function() input.method = 'GET' end)\n"
                      "local ok2 = pcall(function() input.payload.a[1] = 5 end)\n"
                      "local keys = {} for k in pairs(input) do keys[#keys + 1] = k end\n"
                      "table.sort(keys)\n"
                      "return {ok, ok2, #input.payload.a, input.payload.a[2], keys, json.encode(input.payload)}";
    assert_int_equal(run_with(src, vars, input, NULL, &out, &err), 0);
    char *got = jsonx_dump(out.result);
    assert_string_equal(got, "[false,false,2,2,[\"method\",\"payload\"],\"{\\\"a\\\":[1,2]}\"]");
    free(got);
    assert_int_equal(json_integer_value(json_object_get(out.vars, "n")), 2);
    assert_string_equal(json_string_value(json_object_get(out.vars, "m")), "POST");
    assert_int_equal(json_array_size(out.logs), 1);
    assert_non_null(strstr(json_string_value(json_array_get(out.logs, 0)), "hello\t1\tnil\tnull\t"));
    script_out_deinit(&out);

    assert_int_equal(run_with("for i = 1, 5000 do log(i) end", NULL, NULL, NULL, &out, &err), 0);
    assert_int_equal(json_array_size(out.logs), SCRIPT_MAX_LOG_LINES + 1);
    script_out_deinit(&out);
    json_decref(vars);
    json_decref(input);
}

/* ---- callint through a fake host ------------------------------------------------------------ */

typedef struct fake {
    char target[64];
    json_t *payload, *context;
    script_mode_t mode;
} fake_t;

static int fake_callint(void *ctx, const char *target, const json_t *payload,
                        const json_t *context, script_mode_t mode, json_t **out, json_t **error)
{
    fake_t *f = ctx;
    snprintf(f->target, sizeof f->target, "%s", target);
    json_decref(f->payload);
    json_decref(f->context);
    f->payload = json_deep_copy(payload);
    f->context = context ? json_deep_copy(context) : NULL;
    f->mode = mode;
    if (strcmp(target, "bad") == 0) {
        *error = json_pack("{s:s, s:s, s:s}", "code", "boom", "message", "it broke", "run_id", "r1");
        return -1;
    }
    if (mode == SCRIPT_MODE_ASYNC)
        *out = json_pack("{s:s}", "run_id", "r2");
    else
        *out = json_pack("{s:O}", "echo", payload);
    return 0;
}

static void test_script_callint(void **state)
{
    (void)state;
    fake_t f = {0};
    script_host_t host = {.ctx = &f, .callint = fake_callint};
    script_out_t out;
    err_t err = {0};
    assert_int_equal(run_with("x = callint('test_integration', 'input_str') return x", NULL, NULL,
                              &host, &out, &err),
                     0);
    assert_string_equal(f.target, "test_integration");
    assert_string_equal(json_string_value(f.payload), "input_str");
    assert_int_equal(f.mode, SCRIPT_MODE_DEFAULT);
    assert_string_equal(json_string_value(json_object_get(out.result, "echo")), "input_str");
    script_out_deinit(&out);

    assert_int_equal(run_with("local ok, e = pcall(callint, 'bad', {})\n"
                              "return {ok, e.code, e.message, e.run_id}",
                              NULL, NULL, &host, &out, &err),
                     0);
    char *got = jsonx_dump(out.result);
    assert_string_equal(got, "[false,\"boom\",\"it broke\",\"r1\"]");
    free(got);
    script_out_deinit(&out);

    assert_int_equal(run_with("callint('bad', {})", NULL, NULL, &host, &out, &err),
                     BR_ESCRIPT_ERROR);
    assert_string_equal(json_string_value(json_object_get(out.error, "code")), "boom");
    script_out_deinit(&out);
    err_clear(&err);

    assert_int_equal(run_with("return callint('t', {payload = {a = 1}, method = 'PUT'}, true, 'async')",
                              NULL, NULL, &host, &out, &err),
                     0);
    assert_int_equal(f.mode, SCRIPT_MODE_ASYNC);
    assert_int_equal(json_integer_value(json_object_get(f.payload, "a")), 1);
    assert_string_equal(json_string_value(json_object_get(f.context, "method")), "PUT");
    assert_null(json_object_get(f.context, "payload"));
    assert_string_equal(json_string_value(json_object_get(out.result, "run_id")), "r2");
    script_out_deinit(&out);

    expect_error("callint('t', {}, false, 'later')", BR_ESCRIPT_ERROR, NULL);
    json_decref(f.payload);
    json_decref(f.context);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script_round_trip),
        cmocka_unit_test(test_script_conversions),
        cmocka_unit_test(test_script_runtime_error_has_line),
        cmocka_unit_test(test_script_check),
        cmocka_unit_test(test_script_sandbox_holes),
        cmocka_unit_test(test_script_budgets),
        cmocka_unit_test(test_script_vars_input_log),
        cmocka_unit_test(test_script_callint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
