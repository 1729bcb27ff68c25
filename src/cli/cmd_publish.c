/* cmd_publish.c - `braid publish` and `braid validate`: definitions in, every problem out.
 * A file is an integration, or a connector when its document has a "slug" (SPEC §5). */
#include "cli/cli_internal.h"

#include "core/jsonx.h"
#include "definition/connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FILE:LINE:COLUMN: POINTER: message, one line per problem. A syntax error has no pointer,
 * and its message already starts with "line L, column C: ", which the prefix says anyway. */
static void print_diags(const char *file, const diags_t *d)
{
    for (int i = 0; i < d->n; i++) {
        const diag_t *p = &d->items[i];
        const char *msg = p->message;
        if (p->line > 0 && strncmp(msg, "line ", 5) == 0) {
            const char *rest = strstr(msg, ": ");
            if (rest)
                msg = rest + 2;
        }
        fprintf(stderr, "%s:", file);
        if (p->line > 0)
            fprintf(stderr, "%d:%d:", p->line, p->column);
        if (p->pointer[0])
            fprintf(stderr, " %s:", p->pointer);
        fprintf(stderr, " %s\n", msg);
    }
}

/* Whether TEXT is a connector document. A text that does not parse is left to the integration
 * path, which reports the syntax error with its line and column. */
static bool is_connector(engine_t *eng, const char *text, size_t len)
{
    jsonx_limits_t limits = {.max_bytes = engine_config(eng)->def_limits.max_bytes,
                             .max_depth = engine_config(eng)->def_limits.max_depth};
    json_t *doc = jsonx_parse(text, len, &limits, NULL);
    bool yes = doc && connector_doc_is_connector(doc);
    json_decref(doc);
    return yes;
}

/* Record a failed publish of FILE: diagnostics (or ERR) on stderr unless JSON, and the entry
 * in RESULTS. Returns -1. */
static int publish_failed(const char *file, bool json, diags_t *diags, err_t *err, json_t *results)
{
    if (!json) {
        if (diags->n)
            print_diags(file, diags);
        else
            fprintf(stderr, "%s: error: %s: %s\n", file, err_name(err->code), err->msg);
    }
    json_t *errors = diags->n ? diags_to_json(diags)
                              : json_pack("[{s:s, s:s}]", "pointer", "", "message", err->msg);
    json_array_append_new(results,
                          json_pack("{s:s, s:b, s:o}", "file", file, "ok", 0, "errors", errors));
    diags_deinit(diags);
    err_clear(err);
    return -1;
}

static int publish_connector(engine_t *eng, const char *file, const char *text, size_t len,
                             bool json, json_t *results)
{
    diags_t diags = {0};
    err_t err = {0};
    json_t *res = NULL;
    if (engine_connector_publish(eng, text, len, NULL, &res, &diags, &err) < 0)
        return publish_failed(file, json, &diags, &err, results);
    if (!json)
        printf("%s connector %s v%lld\n",
               json_is_true(json_object_get(res, "created")) ? "published" : "unchanged",
               json_string_value(json_object_get(res, "slug")),
               (long long)json_integer_value(json_object_get(res, "version")));
    json_object_set_new(res, "file", json_string(file));
    json_object_set_new(res, "ok", json_true());
    json_array_append_new(results, res);
    diags_deinit(&diags);
    return 0;
}

typedef int (*per_file_fn)(engine_t *eng, const char *file, const char *text, size_t len,
                           bool json, json_t *results);

static int for_each_file(const cli_global_t *g, json_t *args, per_file_fn fn)
{
    store_t *st;
    engine_t *eng;
    if (cli_open(g, NULL, &st, &eng))
        return CLI_FAILED;
    json_t *results = json_array();
    int status = CLI_OK;
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a)
    {
        const char *file = json_string_value(a);
        size_t len;
        char *text = cli_read_file(file, &len);
        if (!text) {
            json_array_append_new(results, json_pack("{s:s, s:b, s:[{s:s, s:s}]}", "file", file,
                                                     "ok", 0, "errors", "pointer", "",
                                                     "message", "cannot read the file"));
            status = CLI_FAILED;
            continue;
        }
        if (fn(eng, file, text, len, g->json, results) != 0)
            status = CLI_FAILED;
        free(text);
    }
    if (g->json)
        cli_print_json(results);
    json_decref(results);
    cli_close(st, eng);
    return status;
}

static int publish_one(engine_t *eng, const char *file, const char *text, size_t len, bool json,
                       json_t *results)
{
    if (is_connector(eng, text, len))
        return publish_connector(eng, file, text, len, json, results);
    diags_t diags = {0};
    err_t err = {0};
    json_t *res = NULL;
    if (engine_publish(eng, text, len, NULL, &res, &diags, &err) < 0)
        return publish_failed(file, json, &diags, &err, results);
    if (!json) {
        printf("%s %s version %lld\n",
               json_is_true(json_object_get(res, "created")) ? "published" : "unchanged",
               json_string_value(json_object_get(res, "name")),
               (long long)json_integer_value(json_object_get(res, "version")));
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(res, "warnings"), i, w)
        {
            printf("warning: %s v%lld, task %s: %s\n",
                   json_string_value(json_object_get(w, "integration")),
                   (long long)json_integer_value(json_object_get(w, "version")),
                   json_string_value(json_object_get(w, "task")),
                   json_string_value(json_object_get(w, "message")));
        }
    }
    json_object_set_new(res, "file", json_string(file));
    json_object_set_new(res, "ok", json_true());
    json_array_append_new(results, res);
    diags_deinit(&diags);
    return 0;
}

static int validate_one(engine_t *eng, const char *file, const char *text, size_t len, bool json,
                        json_t *results)
{
    diags_t diags = {0};
    int rc;
    if (is_connector(eng, text, len)) {
        connector_t *c = NULL;
        rc = connector_load(text, len, NULL, &engine_config(eng)->def_limits, &c, &diags);
        connector_free(c);
    } else {
        rc = engine_validate(eng, text, len, &diags);
    }
    if (!json) {
        if (rc < 0)
            print_diags(file, &diags);
        else
            printf("%s: valid\n", file);
    }
    json_array_append_new(results, json_pack("{s:s, s:b, s:o}", "file", file, "valid", rc == 0,
                                             "errors", diags_to_json(&diags)));
    diags_deinit(&diags);
    return rc < 0 ? -1 : 0;
}

static const cli_command_t publish_cmd = {
    "publish", "FILE...",
    "Validate each definition file and publish it as the next version of its integration,\n"
    "or of its connector when the document has a \"slug\". A document identical to the\n"
    "latest version publishes nothing. FILE may be '-' for standard input.",
    "Problems are printed as FILE:LINE:COLUMN: POINTER: message, all of them at once.", 1, -1};

static const cli_command_t validate_cmd = {
    "validate", "FILE...",
    "Validate each definition file (integration or connector) as a publish would, storing\n"
    "nothing: every problem with its JSON Pointer, and line and column.",
    NULL, 1, -1};

int cmd_publish(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&publish_cmd, NULL, argc, argv, &g, &args);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    rc = for_each_file(&g, args, publish_one);
    json_decref(args);
    return rc;
}

int cmd_validate(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&validate_cmd, NULL, argc, argv, &g, &args);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    rc = for_each_file(&g, args, validate_one);
    json_decref(args);
    return rc;
}
