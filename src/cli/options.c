/* options.c - the option parser every command shares, and the helpers commands have in
 * common: opening the store and engine, printing errors and JSON, reading files. */
#include "cli/cli_internal.h"

#include "core/buf.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt_t *find_opt(const cli_opt_t *opts, const char *name)
{
    for (const cli_opt_t *o = opts; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

static void print_opts(const cli_opt_t *opts)
{
    for (const cli_opt_t *o = opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        printf("  %-26s %s\n", left, o->help);
    }
}

void cli_help(const cli_command_t *cmd, const cli_opt_t *opts)
{
    printf("usage: braid %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
    if (opts && opts->name) {
        printf("\noptions:\n");
        print_opts(opts);
    }
    printf("\ncommon options:\n"
           "  --data DIR                 data directory (default $BRAID_DATA or ./braid-data)\n"
           "  --store URL                store to use (default: SQLite in the data directory)\n"
           "  --json                     print one JSON document instead of text\n"
           "  --help                     show this help\n");
    if (cmd->details)
        printf("\n%s\n", cmd->details);
}

static int usage_error(const cli_command_t *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "braid %s: %s '%s'\nsee 'braid %s --help'\n", cmd->name, what, arg,
            cmd->name);
    return CLI_USAGE;
}

static int set_value(const cli_command_t *cmd, const cli_opt_t *o, const char *value)
{
    switch (o->kind) {
    case OPT_STRING: *(const char **)o->target = value; return 0;
    case OPT_LIST: {
        json_t **list = o->target;
        if (!*list)
            *list = json_array();
        json_array_append_new(*list, json_string(value));
        return 0;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            fprintf(stderr, "braid %s: %s takes a whole number from %lld to %lld, not '%s'\n",
                    cmd->name, o->name, o->min, o->max, value);
            return CLI_USAGE;
        }
        *(long long *)o->target = v;
        return 0;
    }
    case OPT_FLAG: *(bool *)o->target = true; return 0;
    }
    return 0;
}

/* Parse the command line of one command. See cli_internal.h. */
int cli_parse(const cli_command_t *cmd, const cli_opt_t *opts, int argc, char **argv,
              cli_global_t *g, json_t **args)
{
    const cli_opt_t globals[] = {
        {"--data", OPT_STRING, &g->data, "DIR", "", 0, 0},
        {"--store", OPT_STRING, &g->store, "URL", "", 0, 0},
        {"--json", OPT_FLAG, &g->json, NULL, "", 0, 0},
        {"--help", OPT_FLAG, &g->help, NULL, "", 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    *args = json_array();
    bool only_args = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            json_array_append_new(*args, json_string(a));
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = true;
            continue;
        }
        char name[64];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof name) {
            json_decref(*args);
            return usage_error(cmd, "unknown option", a);
        }
        memcpy(name, a, nlen);
        name[nlen] = '\0';
        const cli_opt_t *o = find_opt(opts, name);
        if (!o)
            o = find_opt(globals, name);
        if (!o) {
            json_decref(*args);
            return usage_error(cmd, "unknown option", name);
        }
        const char *value = NULL;
        if (o->kind != OPT_FLAG) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                json_decref(*args);
                return usage_error(cmd, "a value is needed after", name);
            }
        } else if (eq) {
            json_decref(*args);
            return usage_error(cmd, "no value is taken by", name);
        }
        int rc = set_value(cmd, o, value);
        if (rc) {
            json_decref(*args);
            return rc;
        }
    }
    if (g->help) {
        cli_help(cmd, opts);
        json_decref(*args);
        *args = NULL;
        return -1;
    }
    int n = (int)json_array_size(*args);
    if (n < cmd->min_args || (cmd->max_args >= 0 && n > cmd->max_args)) {
        json_decref(*args);
        fprintf(stderr, "usage: braid %s %s\nsee 'braid %s --help'\n", cmd->name, cmd->usage,
                cmd->name);
        return CLI_USAGE;
    }
    if (!g->data)
        g->data = getenv("BRAID_DATA");
    if (!g->data || !*g->data)
        g->data = "./braid-data";
    return 0;
}

int cli_begin(const cli_command_t *cmd, const cli_opt_t *opts, int argc, char **argv,
              cli_global_t *g, json_t **args, store_t **st, engine_t **eng)
{
    int rc = cli_parse(cmd, opts, argc, argv, g, args);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (cli_open(g, NULL, st, eng)) {
        json_decref(*args);
        *args = NULL;
        return CLI_FAILED;
    }
    return CLI_CONTINUE;
}

int cli_open(const cli_global_t *g, const engine_config_t *cfg, store_t **st, engine_t **eng)
{
    err_t err = {0};
    *st = NULL;
    if (eng)
        *eng = NULL;
    /* Every command's engine keeps its master key file in the data directory, whichever
     * store it uses. */
    engine_config_t ecfg;
    if (cfg)
        ecfg = *cfg;
    else
        engine_config_defaults(&ecfg);
    if (!ecfg.data_dir)
        ecfg.data_dir = g->data;
    if (store_open(g->store ? g->store : g->data, NULL, st, &err) < 0 ||
        (eng && engine_new(&ecfg, *st, eng, &err) < 0)) {
        fprintf(stderr, "error: %s: %s\n", err_name(err.code), err.msg);
        /* A setting the engine refuses (an --allow-net that is no CIDR) is the user's
         * mistake on the command line, not a failure of the store. */
        int status = err.code == BR_EUSAGE ? CLI_USAGE : CLI_FAILED;
        err_clear(&err);
        store_close(*st);
        *st = NULL;
        return status;
    }
    return 0;
}

void cli_close(store_t *st, engine_t *eng)
{
    engine_free(eng);
    store_close(st);
}

static void print_detail_lines(const json_t *detail)
{
    json_t *errors = json_object_get(detail, "errors");
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *field = json_string_value(json_object_get(e, "field"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        fprintf(stderr, "  %s: %s\n", field ? field : "?", msg ? msg : "");
    }
}

int cli_answer(const cli_global_t *g, int rc, err_t *err, json_t *out,
               void (*text)(const json_t *out, void *ctx), void *ctx)
{
    int status = CLI_OK;
    if (rc < 0) {
        cli_print_error(err);
        err_clear(err);
        status = CLI_FAILED;
    } else if (g->json) {
        cli_print_json(out);
    } else {
        text(out, ctx);
    }
    json_decref(out);
    return status;
}

void cli_print_error(const err_t *err)
{
    fprintf(stderr, "error: %s: %s\n", err_name(err->code), err->msg);
    print_detail_lines(err->detail);
}

void cli_print_error_json(const json_t *error)
{
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *msg = json_string_value(json_object_get(error, "message"));
    fprintf(stderr, "error: %s: %s\n", code ? code : "internal", msg ? msg : "");
    print_detail_lines(json_object_get(error, "detail"));
}

void cli_print_json(const json_t *v)
{
    char *text = jsonx_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (text) {
        puts(text);
        free(text);
    }
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf_t b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    bool failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "error: cannot read %s\n", path);
        buf_deinit(&b);
        return NULL;
    }
    *len = b.len;
    return buf_steal(&b);
}

void cli_format_duration(int64_t ms, char *out, size_t n)
{
    if (ms < 0)
        snprintf(out, n, "-");
    else if (ms < 1000)
        snprintf(out, n, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(out, n, "%.1fs", (double)ms / 1000.0);
    else
        snprintf(out, n, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
}

/* The engine's settings as flags. See cli_internal.h. */
void cli_engine_flags_init(cli_engine_flags_t *f, const engine_config_t *cfg)
{
    f->max_call_depth = cfg->max_call_depth;
    f->max_descendants = cfg->max_descendants;
    f->max_steps = cfg->max_steps;
    f->retain_days = cfg->retain_days;
    f->script_max_memory = (long long)cfg->script_max_memory;
    f->script_max_instructions = cfg->script_max_instructions;
    f->allow_net = NULL;
    f->http_connect_timeout_ms = cfg->http_connect_timeout_ms;
    f->http_low_speed_bytes = cfg->http_low_speed_bytes;
    f->http_low_speed_ms = cfg->http_low_speed_ms;
    f->http_idle_connections = cfg->http_max_idle_connections;
    f->loop_runs = cfg->loop_runs;
    f->log_runs = cfg->log_runs;
}

void cli_engine_flags_opts(cli_engine_flags_t *f, cli_opt_t rows[CLI_ENGINE_FLAGS])
{
    const cli_opt_t table[CLI_ENGINE_FLAGS] = {
        {"--max-call-depth", OPT_INT, &f->max_call_depth, "N", "deepest call chain (default 32)",
         1, ENGINE_MAX_CALL_DEPTH},
        {"--max-descendants", OPT_INT, &f->max_descendants, "N",
         "runs one call tree may start (default 100000)", 1, 1000000000},
        {"--max-steps", OPT_INT, &f->max_steps, "N", "task executions per run (default 10000)", 1,
         1000000000},
        {"--retain-days", OPT_INT, &f->retain_days, "N", "days of history kept (default 30)", 1,
         36500},
        {"--script-max-memory", OPT_INT, &f->script_max_memory, "BYTES",
         "Lua memory per script task (default 64 MiB)", 1 << 20, 1LL << 34},
        {"--script-max-instructions", OPT_INT, &f->script_max_instructions, "N",
         "Lua instructions per script task (default 100000000)", 1000, 1LL << 40},
        {"--allow-net", OPT_LIST, &f->allow_net, "CIDR",
         "let http and connector tasks reach this range, which the address guard refuses "
         "otherwise (repeatable)", 0, 0},
        {"--http-connect-timeout-ms", OPT_INT, &f->http_connect_timeout_ms, "N",
         "longest wait for an outbound connection (default 10000; never past the task's "
         "timeout)", 1, 60000},
        {"--http-low-speed-bytes", OPT_INT, &f->http_low_speed_bytes, "N",
         "an outbound response slower than N bytes/s ... (default 1)", 1, 1LL << 30},
        {"--http-low-speed-ms", OPT_INT, &f->http_low_speed_ms, "N",
         "... for N ms fails with timeout (default 10000)", 1000, 60000},
        {"--http-idle-connections", OPT_INT, &f->http_idle_connections, "N",
         "outbound keep-alive connections kept open for reuse (default 64)", 1, 4096},
        {"--loop-runs", OPT_INT, &f->loop_runs, "N",
         "async runs that wait only on outbound requests, run at once on the outbound loop "
         "beside the workers (default 256; 0: on the workers only)", 0, 100000},
        {"--log-runs", OPT_FLAG, &f->log_runs, NULL,
         "log one line per finished run: ids, status, duration, error code; never its values",
         0, 0},
    };
    memcpy(rows, table, sizeof table);
}

void cli_engine_flags_apply(const cli_engine_flags_t *f, engine_config_t *cfg)
{
    cfg->max_call_depth = (int)f->max_call_depth;
    cfg->max_descendants = f->max_descendants;
    cfg->max_steps = (int)f->max_steps;
    cfg->retain_days = (int)f->retain_days;
    cfg->script_max_memory = (size_t)f->script_max_memory;
    cfg->script_max_instructions = f->script_max_instructions;
    cfg->allow_net = f->allow_net;
    cfg->http_connect_timeout_ms = f->http_connect_timeout_ms;
    cfg->http_low_speed_bytes = f->http_low_speed_bytes;
    cfg->http_low_speed_ms = f->http_low_speed_ms;
    cfg->http_max_idle_connections = (int)f->http_idle_connections;
    cfg->loop_runs = (int)f->loop_runs;
    cfg->log_runs = f->log_runs;
}
