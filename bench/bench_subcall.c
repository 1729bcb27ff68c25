/* bench_subcall.c - the cost of a sync sub-call: a parent calls a child N times (for_each,
 * parallelism 1) in one process, with run history on, and reports microseconds per call.
 *
 *   bench_subcall [N] [DATA_DIR] [call|callint]     defaults: 100000, a fresh temp directory, call
 *
 * call: the parent is one call_integration task with for_each over N items. callint: the
 * parent is one Lua script task calling callint() N times in a loop — the same engine call
 * reached from a script, so the difference between the two is the cost of the Lua round trip.
 *
 * Prints one JSON line: {"calls", "seconds", "us_per_call", "commits", "runs_per_commit"}. */
#include "core/clock.h"
#include "core/jsonalloc.h"
#include "core/err.h"
#include "engine/engine.h"
#include "bench_util.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *CHILD = "{\"name\": \"bench/child\","
                           " \"inputs\": {\"x\": {\"type\": \"integer\", \"required\": true}},"
                           " \"outputs\": [\"y\"],"
                           " \"tasks\": [{\"id\": \"inc\", \"type\": \"set\","
                           "             \"values\": {\"y\": \"{{vars.x + 1}}\"}}]}";

static const char *PARENT = "{\"name\": \"bench/parent\","
                            " \"inputs\": {\"items\": {\"type\": \"array\", \"required\": true}},"
                            " \"outputs\": {\"calls\": \"{{tasks.each.result | length}}\"},"
                            " \"tasks\": [{\"id\": \"each\", \"type\": \"call_integration\","
                            "   \"integration\": \"bench/child\", \"strategy\": \"sync\","
                            "   \"for_each\": \"{{vars.items}}\", \"parallelism\": 1,"
                            "   \"input\": {\"x\": \"{{item}}\"}}]}";

static const char *PARENT_CALLINT =
    "{\"name\": \"bench/parent-callint\","
    " \"inputs\": {\"count\": {\"type\": \"integer\", \"required\": true}},"
    " \"outputs\": {\"calls\": \"{{tasks.loop.result}}\"},"
    " \"tasks\": [{\"id\": \"loop\", \"type\": \"script\", \"lang\": \"lua\","
    "   \"source\": \"local n = 0\\nfor i = 1, vars.count do\\n"
    "  local out = callint('bench/child', {x = i})\\n  n = n + 1\\nend\\nreturn n\"}]}";


int main(int argc, char **argv)
{
    jsonalloc_install(); /* as braid does */
    long n = argc > 1 ? atol(argv[1]) : 100000;
    char tmpl[] = "/tmp/braid-bench-XXXXXX";
    const char *dir = argc > 2 ? argv[2] : mkdtemp(tmpl);
    store_t *st = NULL;
    engine_t *eng = NULL;
    err_t err = {0};
    if (store_open(dir, NULL, &st, &err) < 0 || engine_new(NULL, st, &eng, &err) < 0) {
        fprintf(stderr, "bench_subcall: %s\n", err.msg);
        return 1;
    }
    bool callint = argc > 3 && strcmp(argv[3], "callint") == 0;
    bench_publish(eng, CHILD);
    bench_publish(eng, callint ? PARENT_CALLINT : PARENT);

    json_t *payload;
    if (callint) {
        payload = json_pack("{s:I}", "count", (json_int_t)n);
    } else {
        json_t *items = json_array();
        for (long i = 0; i < n; i++)
            json_array_append_new(items, json_integer(i));
        payload = json_pack("{s:o}", "items", items);
    }
    exec_request_t req = {.integration = callint ? "bench/parent-callint" : "bench/parent",
                          .mode = EXEC_SYNC,
                          .payload = payload,
                          .trigger = "cli"};
    uint64_t commits0 = store_commit_count(st);
    int64_t t0 = clock_now_us();
    json_t *run = NULL;
    int rc = engine_execute(eng, &req, &run, &err);
    int64_t t1 = clock_now_us();
    if (rc < 0 || strcmp(json_string_value(json_object_get(run, "status")), "succeeded") != 0) {
        fprintf(stderr, "bench_subcall: run failed: %s\n", rc < 0 ? err.msg : "see history");
        return 1;
    }
    uint64_t commits = store_commit_count(st) - commits0;
    double secs = (double)(t1 - t0) / 1e6;
    printf("{\"mode\": \"%s\", \"calls\": %ld, \"seconds\": %.3f, \"us_per_call\": %.2f, \"commits\": %llu, "
           "\"runs_per_commit\": %.1f}\n",
           callint ? "callint" : "call", n, secs, secs * 1e6 / (double)n, (unsigned long long)commits,
           commits ? (double)(n + 1) / (double)commits : 0.0);
    json_decref(run);
    json_decref(payload);
    engine_free(eng);
    store_close(st);
    if (argc <= 2) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_subcall: could not remove %s\n", dir);
    }
    return 0;
}
