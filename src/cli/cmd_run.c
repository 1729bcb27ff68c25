/* cmd_run.c - `braid run` (run an integration in this process, optionally draining every async
 * run that comes due) and `braid cancel`. */
#include "cli/cli_internal.h"

#include "core/jsonx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct run_opts {
    const char *input;
    const char *mode;
    long long version;
    bool drain;
    long long workers;
} run_opts_t;

/* Parse --input: inline JSON, @FILE, or - for standard input. Returns the value (owned) or
 * NULL after printing where and why it does not parse. */
static json_t *read_input(const char *spec, const engine_config_t *cfg)
{
    if (!spec)
        return json_object();
    char *owned = NULL;
    const char *text = spec;
    size_t len = strlen(spec);
    const char *what = "--input";
    if (spec[0] == '@' || strcmp(spec, "-") == 0) {
        what = spec[0] == '@' ? spec + 1 : "standard input";
        owned = cli_read_file(spec[0] == '@' ? spec + 1 : "-", &len);
        if (!owned)
            return NULL;
        text = owned;
    }
    jsonx_limits_t limits = {cfg->max_input_bytes, cfg->max_input_depth, false};
    err_t err = {0};
    json_t *v = jsonx_parse(text, len, &limits, &err);
    if (!v)
        fprintf(stderr, "error: input_invalid: %s is not valid JSON: %s\n", what, err.msg);
    err_clear(&err);
    free(owned);
    return v;
}

static void progress_line(void *ctx, const json_t *counts)
{
    (void)ctx;
    fprintf(stderr, "\r\033[Kdrain: %lld scheduled, %lld queued, %lld running, %lld finished",
            (long long)json_integer_value(json_object_get(counts, "scheduled")),
            (long long)json_integer_value(json_object_get(counts, "queued")),
            (long long)json_integer_value(json_object_get(counts, "running")),
            (long long)json_integer_value(json_object_get(counts, "finished")));
    fflush(stderr);
}

static int drain(engine_t *eng)
{
    bool tty = isatty(STDERR_FILENO);
    err_t err = {0};
    int rc = engine_drain(eng, tty ? progress_line : NULL, NULL, &err);
    if (tty)
        fprintf(stderr, "\r\033[K");
    if (rc < 0) {
        cli_print_error(&err);
        err_clear(&err);
    }
    return rc;
}

static const cli_command_t run_cmd = {
    "run", "NAME [options]",
    "Run integration NAME in this process against the store and print its output.\n"
    "A sync run executes here; an async one is queued (and run here with --drain).",
    "--drain keeps running every async run that comes due — the run's async descendants and\n"
    "anything else queued — until nothing is scheduled, queued or running; on a terminal it\n"
    "shows a progress line. Exit code 1 when the run failed.",
    1, 1};

int cmd_run(int argc, char **argv)
{
    engine_config_t cfg;
    engine_config_defaults(&cfg);
    run_opts_t o = {.workers = cfg.workers};
    cli_engine_flags_t ef;
    cli_engine_flags_init(&ef, &cfg);
    cli_opt_t opts[6 + CLI_ENGINE_FLAGS] = {
        {"--input", OPT_STRING, &o.input, "JSON|@FILE|-", "the payload (default {})", 0, 0},
        {"--mode", OPT_STRING, &o.mode, "sync|async", "override the integration's run_async", 0, 0},
        {"--version", OPT_INT, &o.version, "N", "run version N (default the latest)", 1, 1 << 30},
        {"--drain", OPT_FLAG, &o.drain, NULL, "also run every async run that comes due", 0, 0},
        {"--workers", OPT_INT, &o.workers, "N", "threads running async runs (default 4)", 1, 256},
    };
    cli_engine_flags_opts(&ef, opts + 5); /* the table ends with a zeroed row */
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&run_cmd, opts, argc, argv, &g, &args);
    if (rc) {
        json_decref(ef.allow_net);
        return rc < 0 ? CLI_OK : rc;
    }
    exec_mode_t mode = EXEC_DEFAULT;
    if (o.mode && strcmp(o.mode, "sync") == 0)
        mode = EXEC_SYNC;
    else if (o.mode && strcmp(o.mode, "async") == 0)
        mode = EXEC_ASYNC;
    else if (o.mode) {
        fprintf(stderr, "braid run: --mode is sync or async, not '%s'\n", o.mode);
        json_decref(ef.allow_net);
        json_decref(args);
        return CLI_USAGE;
    }
    cfg.workers = (int)o.workers;
    cli_engine_flags_apply(&ef, &cfg);
    json_t *payload = read_input(o.input, &cfg);
    if (!payload) {
        json_decref(ef.allow_net);
        json_decref(args);
        return CLI_USAGE;
    }

    store_t *st;
    engine_t *eng;
    int open_rc = cli_open(&g, &cfg, &st, &eng);
    if (open_rc) {
        json_decref(ef.allow_net);
        json_decref(payload);
        json_decref(args);
        return open_rc;
    }
    const char *user = getenv("USER");
    json_t *who = json_pack("{s:s}", "user", user ? user : "unknown");
    exec_request_t req = {.integration = json_string_value(json_array_get(args, 0)),
                          .version = (int)o.version,
                          .mode = mode,
                          .payload = payload,
                          .trigger = "cli",
                          .trigger_info = who};
    json_t *out = NULL;
    err_t err = {0};
    int status = CLI_OK;
    if (engine_execute(eng, &req, &out, &err) < 0) {
        cli_print_error(&err);
        err_clear(&err);
        status = CLI_FAILED;
        goto out;
    }
    const char *run_status = json_string_value(json_object_get(out, "status"));
    const char *run_id = json_string_value(json_object_get(out, "id"));
    bool async = run_id == NULL;
    if (o.drain && drain(eng) < 0)
        status = CLI_FAILED;
    if (async && o.drain) {
        /* After draining, the async root has finished: show it like a sync one. */
        json_t *rec = NULL;
        if (engine_run_get(eng, json_string_value(json_object_get(out, "run_id")), &rec, &err) == 0) {
            json_object_del(rec, "steps");
            json_decref(out);
            out = rec;
            async = false;
            run_status = json_string_value(json_object_get(out, "status"));
        }
        err_clear(&err);
    }
    if (g.json) {
        cli_print_json(out);
    } else if (async) {
        const char *id = json_string_value(json_object_get(out, "run_id"));
        if (strcmp(run_status, "scheduled") == 0)
            printf("scheduled %s at %s\n", id,
                   json_string_value(json_object_get(out, "scheduled_at")));
        else
            printf("%s %s\n", run_status, id);
    } else if (run_status && strcmp(run_status, "succeeded") == 0) {
        cli_print_json(json_object_get(out, "output"));
    }
    if (!async && (!run_status || strcmp(run_status, "succeeded") != 0)) {
        if (!g.json)
            cli_print_error_json(json_object_get(out, "error"));
        status = CLI_FAILED;
    }
out:
    json_decref(out);
    json_decref(who);
    json_decref(payload);
    json_decref(args);
    cli_close(st, eng);
    json_decref(ef.allow_net);
    return status;
}

static void print_id_status(const json_t *run, void *ctx)
{
    (void)ctx;
    printf("%s %s\n", json_string_value(json_object_get(run, "id")),
           json_string_value(json_object_get(run, "status")));
}

static const cli_command_t cancel_cmd = {
    "cancel", "RUN_ID",
    "Cancel a run and every unfinished, non-detached run below it. A scheduled or queued run\n"
    "is cancelled at once; a running one stops at its next step.",
    NULL, 1, 1};

int cmd_cancel(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    store_t *st;
    engine_t *eng;
    int rc = cli_begin(&cancel_cmd, NULL, argc, argv, &g, &args, &st, &eng);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *out = NULL;
    err_t err = {0};
    rc = engine_cancel(eng, json_string_value(json_array_get(args, 0)), &out, &err);
    int status = cli_answer(&g, rc, &err, out, print_id_status, NULL);
    json_decref(args);
    cli_close(st, eng);
    return status;
}
