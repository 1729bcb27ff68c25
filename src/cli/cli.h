/* cli.h - the command line (SPEC §10): one file per command group, dispatched here. */
#ifndef BRAID_CLI_H
#define BRAID_CLI_H

/* Exit codes: 0 success, 1 the run or operation failed, 2 usage error. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

int cli_main(int argc, char **argv);

#endif
