/* cli.c - dispatch of `braid COMMAND`. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: braid COMMAND [options]\n");
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    fprintf(stderr, "braid: unknown command '%s'\n", argv[1]);
    return CLI_USAGE;
}
