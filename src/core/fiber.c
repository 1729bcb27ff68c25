/* fiber.c - see fiber.h. Built on makecontext/swapcontext: a switch costs a signal-mask
 * system call, far below the two context switches of the kernel that a blocked thread costs
 * (tens of microseconds on a virtual machine).
 *
 * The sanitizers are told about every switch: AddressSanitizer must know which stack is live
 * (or it reports the other one's frames as overflows), ThreadSanitizer keeps a history per
 * fiber. The crash report's "run this thread executes" travels with the fiber that set it.
 */
#include "core/fiber.h"

#include "core/clock.h"
#include "core/crash.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define FIBER_TSAN 1
#endif

/* Finished fibers' stacks kept for the next ones: mapping and first-touching a stack costs
 * system calls and page faults that a busy loop would pay per run. */
#define STACK_POOL_MAX 64

struct fiber {
    ucontext_t ctx, host_ctx;
    void (*fn)(void *arg);
    void *arg;
    char *map;          /* the mapping: a guard page, then the stack */
    size_t map_bytes;
    char *stack_low;    /* first usable byte above the guard page */
    size_t stack_bytes;
    bool done;
    const char *crash_run; /* the crash report's run while this fiber is switched out */
    void *host;
    fiber_sleep_fn sleep;
#ifdef FIBER_ASAN
    void *fake_stack;      /* this fiber's, while it is switched out */
    void *host_fake_stack; /* the host's, while this fiber runs */
    const void *host_stack_low;
    size_t host_stack_bytes;
#endif
#ifdef FIBER_TSAN
    void *tsan_fiber, *tsan_host;
#endif
};

static _Thread_local fiber_t *current;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pooled {
    char *map;
    size_t bytes;
} pool[STACK_POOL_MAX];
static int n_pool;

static size_t page_bytes(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static char *stack_take(size_t bytes)
{
    pthread_mutex_lock(&pool_mu);
    for (int i = n_pool - 1; i >= 0; i--) {
        if (pool[i].bytes == bytes) {
            char *m = pool[i].map;
            pool[i] = pool[--n_pool];
            pthread_mutex_unlock(&pool_mu);
            return m;
        }
    }
    pthread_mutex_unlock(&pool_mu);
    /* Address space only: pages are committed as the stack grows into them. */
    char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (mprotect(m, page_bytes(), PROT_NONE) != 0) { /* an overflow faults, never corrupts */
        munmap(m, bytes);
        return NULL;
    }
    return m;
}

static void stack_give(char *map, size_t bytes)
{
    pthread_mutex_lock(&pool_mu);
    if (n_pool < STACK_POOL_MAX) {
        pool[n_pool++] = (struct pooled){map, bytes};
        map = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    if (map)
        munmap(map, bytes);
}

/* The switch into F from its host, and back: the two halves every resume and yield pair. */
static void switch_to_fiber(fiber_t *f)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(&f->host_fake_stack, f->stack_low, f->stack_bytes);
#endif
#ifdef FIBER_TSAN
    f->tsan_host = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
    swapcontext(&f->host_ctx, &f->ctx);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->host_fake_stack, NULL, NULL);
#endif
}

static void switch_to_host(fiber_t *f)
{
#ifdef FIBER_ASAN
    /* A finished fiber never comes back: no fake stack to keep. */
    __sanitizer_start_switch_fiber(f->done ? NULL : &f->fake_stack, f->host_stack_low,
                                   f->host_stack_bytes);
#endif
#ifdef FIBER_TSAN
    __tsan_switch_to_fiber(f->tsan_host, 0);
#endif
    swapcontext(&f->ctx, &f->host_ctx);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &f->host_stack_low, &f->host_stack_bytes);
#endif
}

static void entry(void)
{
    fiber_t *f = current;
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->host_stack_low, &f->host_stack_bytes);
#endif
    f->fn(f->arg);
    f->done = true;
    switch_to_host(f); /* never returns */
    abort();
}

fiber_t *fiber_new(void (*fn)(void *arg), void *arg, size_t stack_bytes)
{
    size_t page = page_bytes();
    size_t bytes = (stack_bytes + page - 1) / page * page + page;
    char *map = stack_take(bytes);
    if (!map)
        return NULL;
    fiber_t *f = XNEW(fiber_t);
    f->fn = fn;
    f->arg = arg;
    f->map = map;
    f->map_bytes = bytes;
    f->stack_low = map + page;
    f->stack_bytes = bytes - page;
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack_low;
    f->ctx.uc_stack.ss_size = f->stack_bytes;
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, entry, 0);
#ifdef FIBER_TSAN
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
    return f;
}

void fiber_set_host(fiber_t *f, void *host, fiber_sleep_fn sleep)
{
    f->host = host;
    f->sleep = sleep;
}

bool fiber_resume(fiber_t *f)
{
    if (f->done)
        return true;
    const char *host_run = crash_current_run();
    crash_set_run(f->crash_run);
    current = f;
    switch_to_fiber(f);
    current = NULL;
    f->crash_run = crash_current_run();
    crash_set_run(host_run);
    return f->done;
}

void fiber_yield(void)
{
    fiber_t *f = current;
    if (f)
        switch_to_host(f);
}

void fiber_free(fiber_t *f)
{
    if (!f)
        return;
#ifdef FIBER_TSAN
    __tsan_destroy_fiber(f->tsan_fiber);
#endif
    stack_give(f->map, f->map_bytes);
    free(f);
}

fiber_t *fiber_current(void)
{
    return current;
}

char *fiber_stack_low(void)
{
    return current ? current->stack_low : NULL;
}

void fiber_sleep_ms(int64_t ms)
{
    fiber_t *f = current;
    if (ms <= 0)
        return;
    if (f && f->sleep) {
        f->sleep(f->host, f, ms);
        return;
    }
    clock_sleep_ms(ms);
}
