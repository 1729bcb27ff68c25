/* crash.h - a report on fatal signals: version, signal, the run the thread was executing and a
 * backtrace, written to stderr with async-signal-safe calls only. Never prints run data. */
#ifndef BRAID_CORE_CRASH_H
#define BRAID_CORE_CRASH_H

/* Install handlers for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT. VERSION is borrowed and
 * must stay valid (a string literal). */
void crash_install(const char *version);
/* Name the run this thread is executing (ID borrowed; NULL when none): shown in a report. */
void crash_set_run(const char *id);
/* The run this thread is executing, as last set (for callers that restore it). */
const char *crash_current_run(void);

#endif
