/* cli.c - `braid COMMAND`: the table of commands and the top-level help. */
#include "cli/cli_internal.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"publish", cmd_publish, "validate and publish integrations and connectors"},
    {"validate", cmd_validate, "report every problem of definitions, publishing nothing"},
    {"run", cmd_run, "run an integration in this process against the store"},
    {"cancel", cmd_cancel, "cancel a run and its unfinished descendants"},
    {"runs", cmd_runs, "list run history"},
    {"show", cmd_show, "show one run, or its whole call tree"},
    {"graph", cmd_graph, "the static call graph of the published integrations"},
    {"connection", cmd_connection, "set, list, show and delete connections (credentials)"},
    {"keys", cmd_keys, "rotate the master key that seals connection secrets"},
    {"token", cmd_token, "create, list and revoke API tokens"},
    {"serve", cmd_serve, "serve the HTTP API and run the workers"},
};

static void top_help(FILE *out)
{
    fprintf(out, "usage: braid COMMAND [options]\n\n"
                 "braid is an integration engine: integrations are versioned JSON documents that\n"
                 "call each other, sync or async, with every run kept in history.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'braid COMMAND --help' describes each command and its options.\n"
                 "Exit codes: 0 success, 1 the run or operation failed, 2 usage error.\n");
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        top_help(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            char *help_argv[] = {argv[2], (char *)"--help"};
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (strcmp(commands[i].name, argv[2]) == 0)
                    return commands[i].fn(1, help_argv + 1);
        }
        top_help(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "braid: unknown command '%s'\nsee 'braid --help'\n", name);
    return CLI_USAGE;
}
