/* crash.c - see crash.h. The handler runs on an alternate stack, so a stack overflow can still
 * be reported, then re-raises the signal with the default action to keep the exit status and
 * core dump behaviour of the original fault. */
#include "core/crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *crash_version = "?";
static _Thread_local const char *current_run;

void crash_set_run(const char *id)
{
    current_run = id;
}

const char *crash_current_run(void)
{
    return current_run;
}

static void say(const char *s)
{
    ssize_t w = write(STDERR_FILENO, s, strlen(s));
    (void)w;
}

static void on_fatal(int sig)
{
    say("\nbraid ");
    say(crash_version);
    say(": fatal signal ");
    say(sig == SIGSEGV   ? "SIGSEGV"
        : sig == SIGBUS  ? "SIGBUS"
        : sig == SIGILL  ? "SIGILL"
        : sig == SIGFPE  ? "SIGFPE"
                         : "SIGABRT");
    if (current_run) {
        say(" while executing run ");
        say(current_run);
    }
    say("\nbacktrace:\n");
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    signal(sig, SIG_DFL);
    raise(sig);
}

void crash_install(const char *version)
{
    crash_version = version;
#ifdef __SANITIZE_ADDRESS__
    return; /* AddressSanitizer's own report says more than ours would */
#endif
    static char alt_stack[64 * 1024];
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    /* backtrace() loads libgcc on first use, which is not safe inside a handler: do it now. */
    void *warm[1];
    backtrace(warm, 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}
