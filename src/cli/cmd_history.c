/* cmd_history.c - `braid runs` (run history as a table) and `braid show` (one run with its
 * steps, or its whole call tree drawn with statuses and durations). */
#include "cli/cli_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "-";
}

static int64_t duration_of(const json_t *run)
{
    json_t *d = json_object_get(run, "duration_ms");
    return json_is_integer(d) ? json_integer_value(d) : -1;
}

/* ---- runs ----------------------------------------------------------------------------------- */

static const cli_command_t runs_cmd = {"runs", "[options]",
                                       "List run history, newest first.", NULL, 0, 0};

int cmd_runs(int argc, char **argv)
{
    const char *integration = NULL, *status = NULL, *root = NULL, *parent = NULL;
    long long limit = 50;
    const cli_opt_t opts[] = {
        {"--integration", OPT_STRING, &integration, "NAME", "only runs of this integration", 0, 0},
        {"--status", OPT_STRING, &status, "STATUS",
         "scheduled, queued, running, succeeded, failed or cancelled", 0, 0},
        {"--root", OPT_STRING, &root, "RUN_ID", "only runs of this call tree", 0, 0},
        {"--parent", OPT_STRING, &parent, "RUN_ID", "only children of this run", 0, 0},
        {"--limit", OPT_INT, &limit, "N", "at most N runs (default 50)", 1, 1000},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&runs_cmd, opts, argc, argv, &g, &args);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    json_decref(args);
    run_filter_t f = {.integration = integration, .status = -1, .root_id = root,
                      .parent_id = parent, .limit = (int)limit};
    if (status) {
        run_status_t s;
        if (run_status_parse(status, &s) < 0) {
            fprintf(stderr, "braid runs: unknown status '%s'\n", status);
            return CLI_USAGE;
        }
        f.status = (int)s;
    }
    store_t *st;
    if (cli_open(&g, NULL, &st, NULL))
        return CLI_FAILED;
    run_rec_t **runs = NULL;
    int n = 0;
    char *cursor = NULL;
    err_t err = {0};
    if (store_runs_list(st, &f, &runs, &n, &cursor, &err) < 0) {
        cli_print_error(&err);
        err_clear(&err);
        store_close(st);
        return CLI_FAILED;
    }
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, run_rec_to_json(runs[i]));
    if (g.json) {
        cli_print_json(list);
    } else {
        printf("%-36s  %-28s %4s  %-9s  %-7s  %-24s  %s\n", "ID", "INTEGRATION", "VER", "STATUS",
               "TRIGGER", "CREATED", "DURATION");
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r)
        {
            char dur[32];
            cli_format_duration(duration_of(r), dur, sizeof dur);
            printf("%-36s  %-28s %4lld  %-9s  %-7s  %-24s  %s\n", str(r, "id"),
                   str(r, "integration"), (long long)json_integer_value(json_object_get(r, "version")),
                   str(r, "status"), str(r, "trigger"), str(r, "created_at"), dur);
        }
        if (cursor)
            printf("(more: narrow the filter or raise --limit)\n");
    }
    json_decref(list);
    run_recs_free(runs, n);
    free(cursor);
    store_close(st);
    return CLI_OK;
}

/* ---- show ----------------------------------------------------------------------------------- */

static void print_run_text(const json_t *run)
{
    char dur[32];
    cli_format_duration(duration_of(run), dur, sizeof dur);
    printf("run          %s\n", str(run, "id"));
    printf("integration  %s v%lld\n", str(run, "integration"),
           (long long)json_integer_value(json_object_get(run, "version")));
    printf("status       %s\n", str(run, "status"));
    printf("trigger      %s\n", str(run, "trigger"));
    printf("parent       %s", str(run, "parent_id"));
    if (json_is_string(json_object_get(run, "task")))
        printf("  (task %s)", str(run, "task"));
    printf("\nroot         %s\n", str(run, "root_id"));
    printf("depth        %lld   attempt %lld\n",
           (long long)json_integer_value(json_object_get(run, "depth")),
           (long long)json_integer_value(json_object_get(run, "attempt")));
    printf("created      %s\n", str(run, "created_at"));
    printf("scheduled    %s\n", str(run, "scheduled_at"));
    printf("started      %s\n", str(run, "started_at"));
    printf("finished     %s  (%s)\n", str(run, "finished_at"), dur);
    json_t *error = json_object_get(run, "error");
    if (json_is_object(error))
        printf("error        %s: %s\n", str(error, "code"), str(error, "message"));
    json_t *output = json_object_get(run, "output");
    if (output && !json_is_null(output)) {
        char *text = jsonx_dump(output);
        printf("output       %.200s%s\n", text, strlen(text) > 200 ? "..." : "");
        free(text);
    }
    json_t *steps = json_object_get(run, "steps");
    if (json_array_size(steps) == 0)
        return;
    printf("\n  %-20s %-17s %-9s %8s %10s  %s\n", "TASK", "TYPE", "STATUS", "ATTEMPTS", "DURATION",
           "CHILD RUNS");
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        cli_format_duration(json_integer_value(json_object_get(s, "duration_ms")), dur, sizeof dur);
        json_t *kids = json_object_get(s, "child_run_ids");
        printf("  %-20s %-17s %-9s %8lld %10s  ", str(s, "task"), str(s, "type"), str(s, "status"),
               (long long)json_integer_value(json_object_get(s, "attempt")), dur);
        size_t k, nk = json_array_size(kids);
        json_t *kid;
        json_array_foreach(kids, k, kid)
        {
            if (k == 3) {
                printf("... (%zu in all)", nk);
                break;
            }
            printf("%s%s", k ? " " : "", json_string_value(kid));
        }
        printf("\n");
        json_t *err = json_object_get(s, "error");
        if (json_is_object(err))
            printf("  %-20s error %s: %s\n", "", str(err, "code"), str(err, "message"));
    }
}

static void print_tree_node(const json_t *node, buf_t *prefix, bool last, bool root)
{
    char dur[32];
    cli_format_duration(duration_of(node), dur, sizeof dur);
    if (!root)
        printf("%s%s", prefix->data ? prefix->data : "", last ? "└── " : "├── ");
    if (json_is_string(json_object_get(node, "task")))
        printf("%s → ", str(node, "task"));
    printf("%s v%lld  %s  %s  %s", str(node, "integration"),
           (long long)json_integer_value(json_object_get(node, "version")), str(node, "status"),
           dur, str(node, "id"));
    json_t *error = json_object_get(node, "error");
    if (json_is_object(error))
        printf("  (%s)", str(error, "code"));
    printf("\n");
    size_t saved = prefix->len;
    if (!root)
        buf_puts(prefix, last ? "    " : "│   ");
    json_t *kids = json_object_get(node, "children");
    size_t n = json_array_size(kids), i;
    json_t *kid;
    json_array_foreach(kids, i, kid) print_tree_node(kid, prefix, i + 1 == n, false);
    if (json_is_true(json_object_get(node, "children_truncated")))
        printf("%s└── ... (tree cut here)\n", prefix->data ? prefix->data : "");
    prefix->len = saved;
    if (prefix->data)
        prefix->data[saved] = '\0';
}

static void print_tree(const json_t *tree, void *ctx)
{
    (void)ctx;
    buf_t prefix = BUF_INIT;
    print_tree_node(tree, &prefix, true, true);
    buf_deinit(&prefix);
}

static void print_run(const json_t *run, void *ctx)
{
    (void)ctx;
    print_run_text(run);
}

static const cli_command_t show_cmd = {
    "show", "RUN_ID [--tree]",
    "Show one run with its steps, or with --tree the run and all its descendants.", NULL, 1, 1};

int cmd_show(int argc, char **argv)
{
    bool tree = false;
    const cli_opt_t opts[] = {
        {"--tree", OPT_FLAG, &tree, NULL, "the whole call tree with statuses and durations", 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    cli_global_t g = {0};
    json_t *args = NULL;
    store_t *st;
    engine_t *eng;
    int rc = cli_begin(&show_cmd, opts, argc, argv, &g, &args, &st, &eng);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *id = json_string_value(json_array_get(args, 0));
    json_t *out = NULL;
    err_t err = {0};
    rc = tree ? engine_run_tree(eng, id, &out, &err) : engine_run_get(eng, id, &out, &err);
    int status = cli_answer(&g, rc, &err, out, tree ? print_tree : print_run, NULL);
    json_decref(args);
    cli_close(st, eng);
    return status;
}
