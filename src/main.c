/* main.c - the braid program: keeps secrets out of core files, installs the crash report and
 * jansson's allocator, then hands the command line to cli/. */
#include "cli/cli.h"
#include "core/crash.h"
#include "core/jsonalloc.h"
#include "vault/secret.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    /* Before anything can hold a secret: a core file or another process reading this one's
     * memory would see master keys and connection secrets in clear. */
    if (secret_no_core_dumps() != 0)
        fprintf(stderr, "braid: warning: cannot turn core dumps off\n");
    crash_install(BRAID_VERSION);
    jsonalloc_install(); /* before any thread starts: every JSON value comes from it */
    return cli_main(argc, argv);
}
