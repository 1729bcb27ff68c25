/* http_loop.h - the outbound loop: one thread that runs many jobs, each on a fiber of its own,
 * and waits for all their outbound HTTP transfers at once on one libcurl multi handle.
 *
 * A run whose only waits are outbound requests runs here. While its request is in flight the
 * thread runs other runs, so runs waiting on upstreams cost a small stack each, not a thread
 * each, and a request costs no context switch of its own: a blocked thread costs two of the
 * kernel's per request, tens of microseconds on a virtual machine. Transfers that finish
 * together are handled in one pass.
 *
 * A job must not block its thread for long: anything it waits for besides transfers and
 * sleeps (fiber_sleep_ms) stops every other job of the loop meanwhile.
 */
#ifndef BRAID_NET_HTTP_LOOP_H
#define BRAID_NET_HTTP_LOOP_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct http_loop http_loop_t;

/* A loop whose jobs run on stacks of STACK_BYTES and whose idle keep-alive connections number
 * at most MAX_IDLE_CONNECTIONS. Its thread and libcurl start with the first job. */
http_loop_t *http_loop_new(size_t stack_bytes, int max_idle_connections);
/* Run FN(ARG) on a fiber of the loop. 0, or < 0 with ERR when libcurl or the thread cannot
 * start (the job did not start: run it elsewhere). Any thread. */
int http_loop_submit(http_loop_t *l, void (*fn)(void *arg), void *arg, err_t *err);
/* Stop the thread and free. Every job must have finished. NULL-safe. */
void http_loop_free(http_loop_t *l);

/* Run FN(ARG) as another job of the calling job's loop, beside it (a fiber of its own): the
 * loop starts it once the caller next waits. 0, or -1 when no stack could be had. On a job
 * only. */
int http_loop_spawn(void (*fn)(void *arg), void *arg);
/* The calling job, for http_loop_wake. On a job only. */
void *http_loop_self(void);
/* Sleep until another job of the same loop passes this one to http_loop_wake. On a job only. */
void http_loop_park(void);
/* Let parked JOB (http_loop_self) go on once the caller waits. From a job of JOB's loop. */
void http_loop_wake(void *job);

/* Let the loop's other jobs run, when the calling job has run for a time slice without
 * waiting: a job that may compute for long (a long run of tasks) calls this now and then, so
 * that it cannot hold up the others' transfers. At once when not a job of a loop. */
void http_loop_share(void);

/* Whether the caller is a job of a loop (so it may wait through http_loop_transfer). */
bool http_loop_here(void);
/* Perform EASY (a configured libcurl easy handle, CURL *) as a transfer of the calling job's
 * loop: the job sleeps and the loop runs others until it ends. Its CURLcode. On a job only. */
int http_loop_transfer(void *easy);

#endif
