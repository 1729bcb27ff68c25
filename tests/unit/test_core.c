/* test_core.c - the standalone helpers of src/core: bounded JSON parsing, dotted paths, UUIDv7
 * ids, the string map, RFC 3339 times, the error table and jansson's allocator. */
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonalloc.h"
#include "core/jsonx.h"
#include "core/metrics.h"
#include "core/strmap.h"
#include "core/uuid.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static json_t *parse(const char *text, size_t max_bytes, int max_depth, err_t *err)
{
    jsonx_limits_t lim = {max_bytes, max_depth, false};
    return jsonx_parse(text, strlen(text), &lim, err);
}

static void test_core_parse_reports_line_and_column(void **state)
{
    (void)state;
    err_t err = {0};
    assert_null(parse("{\n  \"a\": 1,\n  \"b\": ]\n}", 0, 0, &err));
    assert_int_equal(err.code, BR_EINPUT_INVALID);
    assert_int_equal(json_integer_value(json_object_get(err.detail, "line")), 3);
    assert_non_null(strstr(err.msg, "line 3"));
    err_clear(&err);
}

static void test_core_parse_limits_size_and_depth(void **state)
{
    (void)state;
    err_t err = {0};
    assert_null(parse("[1, 2, 3, 4, 5]", 8, 0, &err));
    assert_non_null(strstr(err.msg, "more than the limit of 8"));
    err_clear(&err);
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[200] = '\0';
    assert_null(parse(deep, 0, 64, &err));
    assert_non_null(strstr(err.msg, "deeper than the limit of 64"));
    assert_int_equal(json_integer_value(json_object_get(err.detail, "column")), 65);
    err_clear(&err);
    json_t *ok = parse(deep, 0, 100, &err);
    assert_non_null(ok);
    json_decref(ok);
}

static void test_core_parse_refuses_raw_nul(void **state)
{
    (void)state;
    err_t err = {0};
    jsonx_limits_t lim = {0, 0, false};
    assert_null(jsonx_parse("123\0", 4, &lim, &err));
    assert_non_null(strstr(err.msg, "NUL byte"));
    err_clear(&err);
}

static void test_core_parse_keeps_escaped_nul(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *v = parse("{\"k\\u0000ey\": \"va\\u0000lue\"}", 0, 0, &err);
    assert_non_null(v);
    const char *key = json_object_iter_key(json_object_iter(v));
    assert_string_equal(key, "k\xef\xbf\xbd" "ey"); /* U+FFFD: jansson keys cannot hold NUL */
    json_t *val = json_object_iter_value(json_object_iter(v));
    assert_int_equal(json_string_length(val), 6);
    assert_memory_equal(json_string_value(val), "va\0lue", 6);
    json_decref(v);
}

static void test_core_parse_scalars_and_duplicates(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *v = parse("\"just a string\"", 0, 0, &err);
    assert_string_equal(json_string_value(v), "just a string");
    json_decref(v);
    jsonx_limits_t strict = {0, 0, true};
    assert_null(jsonx_parse("{\"a\":1,\"a\":2}", 13, &strict, &err));
    err_clear(&err);
}

static void test_core_paths(void **state)
{
    (void)state;
    json_t *doc = json_loads("{\"a\":{\"b\":[10,{\"c.d\":5}]},\"x\":1}", 0, NULL);
    assert_int_equal(json_integer_value(jsonx_get_path(doc, "a.b[0]")), 10);
    assert_int_equal(json_integer_value(jsonx_get_path(doc, "a.b.0")), 10);
    assert_int_equal(json_integer_value(jsonx_get_path(doc, "a.b[1][\"c.d\"]")), 5);
    assert_int_equal(json_integer_value(jsonx_get_path(doc, "a.b[-1][\"c.d\"]")), 5);
    assert_null(jsonx_get_path(doc, "a.nope.deeper"));
    assert_ptr_equal(jsonx_get_path(doc, ""), doc);
    jsonx_set_dotted(doc, "customer.name", json_string("Ada"));
    jsonx_set_dotted(doc, "x.y", json_integer(2)); /* replaces the integer x by an object */
    assert_string_equal(json_string_value(jsonx_get_path(doc, "customer.name")), "Ada");
    assert_int_equal(json_integer_value(jsonx_get_path(doc, "x.y")), 2);
    json_decref(doc);
}

static void test_core_uuid_v7_sorts_by_time(void **state)
{
    (void)state;
    char prev[UUID_STR_LEN] = "";
    int64_t prev_ms = 0;
    for (int i = 0; i < 10000; i++) {
        char id[UUID_STR_LEN];
        int64_t before = clock_now_ms();
        int64_t ms = uuid_v7(id);
        assert_true(uuid_valid(id));
        assert_int_equal(id[14], '7');                   /* version */
        assert_non_null(strchr("89ab", id[19]));         /* variant */
        assert_true(strcmp(prev, id) < 0);
        /* The returned time is the one in the id (its first 48 bits), never going back. */
        char stamp[13];
        snprintf(stamp, sizeof stamp, "%08llx%04llx", (unsigned long long)(ms >> 16),
                 (unsigned long long)(ms & 0xffff));
        assert_memory_equal(stamp, id, 8);
        assert_memory_equal(stamp + 8, id + 9, 4);
        assert_true(ms >= prev_ms && ms >= before);
        prev_ms = ms;
        memcpy(prev, id, UUID_STR_LEN);
    }
    assert_false(uuid_valid("not-a-uuid"));
    assert_false(uuid_valid("01a20479-7ae1-7000-8000-b6c405e0ba7g"));
}

static void test_core_strmap_grows_and_deletes(void **state)
{
    (void)state;
    strmap_t *m = strmap_new();
    char key[32];
    for (long i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        assert_null(strmap_put(m, key, (void *)(i + 1)));
    }
    assert_int_equal(strmap_count(m), 5000);
    for (long i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "k%ld", i);
        assert_ptr_equal(strmap_del(m, key), (void *)(i + 1));
    }
    for (long i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        assert_ptr_equal(strmap_get(m, key), i % 2 ? (void *)(i + 1) : NULL);
    }
    assert_int_equal(strmap_count(m), 2500);
    strmap_free(m);
}

static void test_core_rfc3339_round_trip(void **state)
{
    (void)state;
    char text[32];
    clock_format_rfc3339(1795000000123LL, text, sizeof text);
    assert_string_equal(text, "2026-11-18T11:06:40.123Z");
    int64_t ms = 0;
    assert_int_equal(clock_parse_rfc3339(text, &ms), 0);
    assert_int_equal(ms, 1795000000123LL);
    assert_int_equal(clock_parse_rfc3339("2026-11-18T12:06:40.123+01:00", &ms), 0);
    assert_int_equal(ms, 1795000000123LL);
    assert_int_equal(clock_parse_rfc3339("yesterday", &ms), -1);
}

/* The per-thread cache of the current second must never show a stale date: times in other
 * seconds, before 1970 and out of order, each against gmtime_r. */
static void test_core_rfc3339_cache_follows_the_second(void **state)
{
    (void)state;
    const int64_t ms[] = {1795000000123LL, 1795000000999LL, 1795000001000LL, 1795000000000LL,
                          0, -1, -1000, -1001, 951782400000LL /* 2000-02-29 */};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char got[32], want[48];
        clock_format_rfc3339(ms[i], got, sizeof got);
        int64_t secs = ms[i] / 1000, milli = ms[i] % 1000;
        if (milli < 0) {
            secs--;
            milli += 1000;
        }
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)milli);
        assert_string_equal(got, want);
    }
    char tiny[8];
    clock_format_rfc3339(1795000000123LL, tiny, sizeof tiny); /* cut, never overrun */
    assert_string_equal(tiny, "2026-11");
}

/* The printf-free path for reals with up to three decimals writes exactly what the printf
 * path writes: the shortest %.15g..%.17g text that reads back, shaped as jansson shapes it. */
static void test_core_format_real_matches_printf(void **state)
{
    (void)state;
    const double fixed[] = {0.0,   -0.0,     0.001,  0.0005,   1.0,     -1.5,    0.1,
                            0.05,  123.456,  1e11,   999999999999.999, 1e12, 1e-7,
                            2.5e-4, 1234.5678, 100000.0, 3.14159, -0.25, 7e300};
    char got[40], want[40];
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        jsonx_format_real(fixed[i], got);
        jsonx_format_real_printf(fixed[i], want);
        assert_string_equal(got, want);
    }
    unsigned long long x = 88172645463325252ULL; /* xorshift: the same values every run */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long long k = (long long)(x % 2000000000000000ULL) - 1000000000000000LL;
        double d = i % 2 ? (double)k / 1000.0 : (double)(k % 100000000) / 1000.0;
        if (i % 3 == 0)
            d = (double)(x >> 11) * 0x1.0p-53 * 1e6; /* most have more than three decimals */
        jsonx_format_real(d, got);
        jsonx_format_real_printf(d, want);
        if (strcmp(got, want) != 0)
            fail_msg("%.17g: got %s, printf path %s", d, got, want);
    }
}

static void test_core_error_table(void **state)
{
    (void)state;
    assert_string_equal(err_name(BR_ETIMEOUT), "timeout");
    assert_int_equal(err_code_by_name("call_depth_exceeded"), BR_ECALL_DEPTH_EXCEEDED);
    assert_int_equal(err_code_by_name("out_of_stock"), 0);
    assert_true(err_retryable(BR_ETIMEOUT));
    assert_true(err_retryable(BR_EINTERRUPTED));
    assert_true(err_retryable(BR_ECONCURRENCY_LIMIT));
    assert_false(err_retryable(BR_EINPUT_INVALID));
}

/* Label values are escaped as the Prometheus text format wants; counts add up per series. */
static void test_core_metrics_labels(void **state)
{
    (void)state;
    metrics_reset();
    metrics_run_started("plain/name");
    metrics_run_started("plain/name");
    metrics_run_started("q\"uo\\te\nline");
    metrics_run_finished("plain/name", "succeeded", 3);
    buf_t b = BUF_INIT;
    metrics_render(&b);
    assert_non_null(strstr(b.data, "braid_runs_started_total{integration=\"plain/name\"} 2\n"));
    assert_non_null(
        strstr(b.data, "braid_runs_started_total{integration=\"q\\\"uo\\\\te\\nline\"} 1\n"));
    assert_non_null(strstr(
        b.data,
        "braid_runs_finished_total{integration=\"plain/name\",status=\"succeeded\"} 1\n"));
    assert_non_null(strstr(b.data, "braid_run_duration_seconds_bucket{le=\"0.005\"} 1\n"));
    buf_deinit(&b);
    metrics_reset();
}

/* Requests count per route and status, the in-flight gauge comes back to 0, and a reset starts
 * every series over (the series each thread remembers are gone with it). */
static void test_core_metrics_http(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        metrics_reset();
        for (int i = 0; i < 3; i++) {
            metrics_http_begin();
            metrics_http_end("/runs/{id}", i < 2 ? 200 : 404, 0.002);
        }
        metrics_run_started("a/b");
        buf_t b = BUF_INIT;
        metrics_render(&b);
        assert_non_null(strstr(
            b.data, "braid_http_requests_total{route=\"/runs/{id}\",status=\"200\"} 2\n"));
        assert_non_null(strstr(
            b.data, "braid_http_requests_total{route=\"/runs/{id}\",status=\"404\"} 1\n"));
        assert_non_null(strstr(b.data, "braid_http_requests_in_flight 0\n"));
        assert_non_null(strstr(b.data, "braid_http_request_duration_seconds_count 3\n"));
        assert_non_null(strstr(b.data, "braid_runs_started_total{integration=\"a/b\"} 1\n"));
        buf_deinit(&b);
    }
    metrics_reset();
}

/* Every size up to JSONALLOC_SMALL and beyond: aligned, disjoint, and a freed block is reused
 * before the reserved range grows. */
static void test_core_jsonalloc_sizes_and_reuse(void **state)
{
    (void)state;
    enum { N = 300 };
    unsigned char *p[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = jsonalloc_malloc(i);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        memset(p[i], (int)(i & 0xff), i);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < i; j++)
            assert_int_equal(p[i][j], i & 0xff); /* nobody else wrote over it */
    for (size_t i = 0; i < N; i++)
        jsonalloc_free(p[i]);

    size_t used = jsonalloc_reserved_used();
    for (int round = 0; round < 1000; round++) {
        void *q = jsonalloc_malloc(40);
        jsonalloc_free(q);
    }
    assert_int_equal(jsonalloc_reserved_used(), used);
    jsonalloc_free(NULL);
    jsonalloc_free(malloc(24)); /* a block of malloc goes back to free */
}

enum { HANDED = 20000 };

typedef struct handover {
    unsigned char *blocks[HANDED];
} handover_t;

static void *free_handed(void *arg)
{
    handover_t *h = arg;
    for (size_t i = 0; i < HANDED; i++) {
        size_t n = 1 + i % JSONALLOC_SMALL;
        for (size_t j = 0; j < n; j++)
            if (h->blocks[i][j] != (unsigned char)i)
                return (void *)1;
        jsonalloc_free(h->blocks[i]);
    }
    return NULL; /* ending gives this thread's blocks to the shared lists */
}

/* Blocks made on one thread and freed on another come back to the first through the shared
 * lists, so the reserved range does not grow when they are made again. */
static void test_core_jsonalloc_across_threads(void **state)
{
    (void)state;
    handover_t *h = malloc(sizeof *h);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < HANDED; i++) {
            size_t n = 1 + i % JSONALLOC_SMALL;
            h->blocks[i] = jsonalloc_malloc(n);
            memset(h->blocks[i], (int)(i & 0xff), n);
        }
        size_t used = jsonalloc_reserved_used();
        pthread_t t;
        void *bad = NULL;
        assert_int_equal(pthread_create(&t, NULL, free_handed, h), 0);
        assert_int_equal(pthread_join(t, &bad), 0);
        assert_null(bad);
        if (round > 0) /* the first round carved the pages the others reuse */
            assert_int_equal(jsonalloc_reserved_used(), used);
    }
    free(h);
}

/* jansson on this allocator: values made, dumped and freed; jsonx_dumps's text comes from
 * malloc (free() takes it), not from jansson's allocator as json_dumps's would. */
static void test_core_jsonalloc_under_jansson(void **state)
{
    (void)state;
    json_set_alloc_funcs(jsonalloc_malloc, jsonalloc_free);
    json_t *v = json_pack("{s:i, s:[s, f, n], s:{s:s}}", "b", 1, "a", "x", 2.5, "c", "k", "v");
    for (int i = 0; i < 200; i++)
        json_object_set_new(v, "many", json_integer(i));
    char *sorted = jsonx_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(sorted, "{\"a\":[\"x\",2.5,null],\"b\":1,\"c\":{\"k\":\"v\"},\"many\":199}");
    free(sorted);
    char *compact = jsonx_dump(v);
    assert_string_equal(compact, "{\"b\":1,\"a\":[\"x\",2.5,null],\"c\":{\"k\":\"v\"},\"many\":199}");
    free(compact);
    json_decref(v);
    json_set_alloc_funcs(malloc, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_parse_reports_line_and_column),
        cmocka_unit_test(test_core_parse_limits_size_and_depth),
        cmocka_unit_test(test_core_parse_refuses_raw_nul),
        cmocka_unit_test(test_core_parse_keeps_escaped_nul),
        cmocka_unit_test(test_core_parse_scalars_and_duplicates),
        cmocka_unit_test(test_core_paths),
        cmocka_unit_test(test_core_uuid_v7_sorts_by_time),
        cmocka_unit_test(test_core_strmap_grows_and_deletes),
        cmocka_unit_test(test_core_rfc3339_round_trip),
        cmocka_unit_test(test_core_rfc3339_cache_follows_the_second),
        cmocka_unit_test(test_core_format_real_matches_printf),
        cmocka_unit_test(test_core_error_table),
        cmocka_unit_test(test_core_metrics_labels),
        cmocka_unit_test(test_core_metrics_http),
        cmocka_unit_test(test_core_jsonalloc_sizes_and_reuse),
        cmocka_unit_test(test_core_jsonalloc_across_threads),
        cmocka_unit_test(test_core_jsonalloc_under_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
