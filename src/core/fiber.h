/* fiber.h - coroutines with stacks of their own, so that a run waiting on the network gives its
 * thread back instead of sleeping on it.
 *
 * A host thread (the outbound loop, net/http_loop.c) resumes a fiber; the fiber runs on its own
 * stack until it yields or returns, and control comes back to the host. A fiber runs on one
 * host thread only, never two at once. Code that may run on a fiber and would block asks
 * fiber_current() first and, on a fiber, waits through its host instead (fiber_sleep_ms, the
 * loop's transfers).
 */
#ifndef BRAID_CORE_FIBER_H
#define BRAID_CORE_FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fiber fiber_t;

/* How a host puts its fiber to sleep for MS: park it, resume it after MS. */
typedef void (*fiber_sleep_fn)(void *host, fiber_t *f, int64_t ms);

/* A fiber that will call FN(ARG) on a stack of STACK_BYTES (rounded up to pages, plus a guard
 * page below it). Stacks are pooled: a finished fiber's stack serves the next one. NULL when
 * no memory could be mapped. */
fiber_t *fiber_new(void (*fn)(void *arg), void *arg, size_t stack_bytes);
/* Let F's sleeps go through SLEEP(HOST, F, ms). */
void fiber_set_host(fiber_t *f, void *host, fiber_sleep_fn sleep);
/* Run F from the calling thread (its host) until F yields or returns. True when F returned:
 * it is finished and only fiber_free is left. */
bool fiber_resume(fiber_t *f);
/* Give control back to the host; returns when the host resumes this fiber. On a fiber only. */
void fiber_yield(void);
/* Free a finished (or never started) fiber; its stack goes back to the pool. NULL-safe. */
void fiber_free(fiber_t *f);

/* The fiber running on this thread, or NULL on a thread's own stack. */
fiber_t *fiber_current(void);
/* The lowest usable address of the running fiber's stack (NULL when not on a fiber). */
char *fiber_stack_low(void);
/* Sleep MS: on a fiber through its host (the thread serves other fibers meanwhile), else on
 * the thread. */
void fiber_sleep_ms(int64_t ms);

#endif
