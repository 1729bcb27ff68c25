/* main.c - the braid program: installs the crash report, then hands the command line to cli/. */
#include "cli/cli.h"
#include "core/crash.h"

int main(int argc, char **argv)
{
    crash_install(BRAID_VERSION);
    return cli_main(argc, argv);
}
