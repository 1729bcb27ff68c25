/* cmd_graph.c - `braid graph`: who calls whom among the latest published versions, as text or
 * Graphviz DOT. */
#include "cli/cli_internal.h"

#include <stdio.h>
#include <string.h>

static const char *s_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static void print_dot(const json_t *graph, void *ctx)
{
    (void)ctx;
    printf("digraph braid {\n  rankdir=LR;\n  node [shape=box];\n");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(graph, "nodes"), i, v)
        printf("  \"%s\";\n", s_or(v, "name", "?"));
    json_array_foreach(json_object_get(graph, "edges"), i, v)
    {
        const char *to = s_or(v, "to", "(dynamic)");
        const char *trigger = json_string_value(json_object_get(v, "trigger"));
        printf("  \"%s\" -> \"%s\" [label=\"%s (%s%s%s)\"%s];\n", s_or(v, "from", "?"), to,
               s_or(v, "task", "?"), s_or(v, "strategy", "?"), trigger ? ", trigger " : "",
               trigger ? trigger : "",
               strcmp(s_or(v, "strategy", ""), "async") == 0 ? ", style=dashed" : "");
    }
    printf("}\n");
}

static void print_text(const json_t *graph, void *ctx)
{
    (void)ctx;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(graph, "edges"), i, v)
    {
        const char *trigger = json_string_value(json_object_get(v, "trigger"));
        printf("%s --%s (%s%s%s%s)--> %s\n", s_or(v, "from", "?"), s_or(v, "task", "?"),
               s_or(v, "strategy", "?"), json_is_true(json_object_get(v, "for_each")) ? ", for_each" : "",
               trigger ? ", trigger " : "", trigger ? trigger : "", s_or(v, "to", "(dynamic)"));
    }
    json_array_foreach(json_object_get(graph, "nodes"), i, v)
    {
        bool called = false, calls = false;
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(graph, "edges"), k, e)
        {
            called |= strcmp(s_or(e, "to", ""), s_or(v, "name", "")) == 0;
            calls |= strcmp(s_or(e, "from", ""), s_or(v, "name", "")) == 0;
        }
        if (!called && !calls)
            printf("%s (calls nothing, called by nothing)\n", s_or(v, "name", "?"));
    }
}

static const cli_command_t graph_cmd = {
    "graph", "[--dot]",
    "The static call graph of the latest published versions: one edge per call_integration\n"
    "task (a trigger call has an edge to each integration behind the trigger).",
    NULL, 0, 0};

int cmd_graph(int argc, char **argv)
{
    bool dot = false;
    const cli_opt_t opts[] = {
        {"--dot", OPT_FLAG, &dot, NULL, "print Graphviz DOT", 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    cli_global_t g = {0};
    json_t *args = NULL;
    store_t *st;
    engine_t *eng;
    int rc = cli_begin(&graph_cmd, opts, argc, argv, &g, &args, &st, &eng);
    if (rc != CLI_CONTINUE)
        return rc;
    json_decref(args);
    json_t *graph = NULL;
    err_t err = {0};
    rc = engine_graph(eng, &graph, &err);
    int status = cli_answer(&g, rc, &err, graph, dot ? print_dot : print_text, NULL);
    cli_close(st, eng);
    return status;
}
