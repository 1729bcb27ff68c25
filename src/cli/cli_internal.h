/* cli_internal.h - what the command files share: a table-driven option parser, the global
 * options every command takes, opening the store and engine, printing errors. */
#ifndef BRAID_CLI_INTERNAL_H
#define BRAID_CLI_INTERNAL_H

#include "cli/cli.h"
#include "core/err.h"
#include "engine/engine.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum { OPT_FLAG, OPT_STRING, OPT_INT, OPT_LIST } opt_kind_t;

typedef struct cli_opt {
    const char *name;    /* "--input" */
    opt_kind_t kind;
    void *target;        /* bool *, const char **, long long *, json_t ** (array) */
    const char *metavar; /* "JSON" */
    const char *help;
    long long min, max;  /* OPT_INT range */
} cli_opt_t;

typedef struct cli_global {
    const char *data;  /* --data, BRAID_DATA, ./braid-data */
    const char *store; /* --store URL, default the data dir */
    bool json;
    bool help;
} cli_global_t;

typedef struct cli_command {
    const char *name;
    const char *usage;   /* "NAME [options]" */
    const char *summary; /* one line */
    const char *details; /* printed under the options, may be NULL */
    int min_args, max_args; /* positional arguments; max -1 = any */
} cli_command_t;

/* Parse ARGV (after the command name) against OPTS plus the global options. Positional
 * arguments go to *ARGS (array, owned). Prints a usage error and returns CLI_USAGE on bad input;
 * returns -1 when --help was given (help printed), 0 otherwise. */
int cli_parse(const cli_command_t *cmd, const cli_opt_t *opts, int argc, char **argv,
              cli_global_t *g, json_t **args);

/* Print the help of CMD with OPTS to stdout. */
void cli_help(const cli_command_t *cmd, const cli_opt_t *opts);

/* The common start of a command that needs the engine: parse ARGV against OPTS, then open the
 * store and an engine with default settings. Returns CLI_CONTINUE with *ARGS, *ST and *ENG
 * (the caller frees them: json_decref, cli_close), or the exit status to return at once. */
#define CLI_CONTINUE (-1)
int cli_begin(const cli_command_t *cmd, const cli_opt_t *opts, int argc, char **argv,
              cli_global_t *g, json_t **args, store_t **st, engine_t **eng);

/* Open the store named by G, and an engine over it with CFG (NULL = defaults). Prints the
 * error and returns CLI_FAILED when it cannot (CLI_USAGE when the engine refused a setting). */
int cli_open(const cli_global_t *g, const engine_config_t *cfg, store_t **st, engine_t **eng);
void cli_close(store_t *st, engine_t *eng);

/* The common end of a command that asked for OUT (taken) with result RC: on failure print
 * ERR and return CLI_FAILED; else print OUT as JSON with --json, or through TEXT (with CTX),
 * and return CLI_OK. */
int cli_answer(const cli_global_t *g, int rc, err_t *err, json_t *out,
               void (*text)(const json_t *out, void *ctx), void *ctx);

/* Print "error: CODE: message" (and detail lines for input errors) to stderr. */
void cli_print_error(const err_t *err);
/* Print an ERROR object the same way. */
void cli_print_error_json(const json_t *error);
/* Print V as indented JSON to stdout. */
void cli_print_json(const json_t *v);
/* Read FILE (or standard input for "-") whole; NULL with a message on stderr when it cannot. */
char *cli_read_file(const char *path, size_t *len);
/* "12ms", "1.4s", "2m03s" */
void cli_format_duration(int64_t ms, char *out, size_t n);

/* The engine's settings as flags, shared by `braid run` and `braid serve`: fill with
 * cli_engine_flags_init, put the rows cli_engine_flags_opts writes (CLI_ENGINE_FLAGS of them)
 * into the command's option table, and after parsing copy them with cli_engine_flags_apply. */
typedef struct cli_engine_flags {
    long long max_call_depth, max_descendants, max_steps, retain_days;
    long long script_max_memory, script_max_instructions;
    json_t *allow_net; /* --allow-net CIDR, repeatable (array, owned by the parse) */
    long long http_connect_timeout_ms, http_low_speed_bytes, http_low_speed_ms;
    long long http_idle_connections;
    long long loop_runs;
    bool log_runs;
} cli_engine_flags_t;
#define CLI_ENGINE_FLAGS 13
void cli_engine_flags_init(cli_engine_flags_t *f, const engine_config_t *cfg);
void cli_engine_flags_opts(cli_engine_flags_t *f, cli_opt_t rows[CLI_ENGINE_FLAGS]);
void cli_engine_flags_apply(const cli_engine_flags_t *f, engine_config_t *cfg);

/* The commands. */
int cmd_publish(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_connection(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
