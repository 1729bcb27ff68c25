/* executor.c - where the server runs executions that may wait: a pool of threads that grows on
 * demand up to a limit (so a sync run never occupies a libmicrohttpd thread), the outbound
 * loop for those that wait only on outbound requests (many runs on one thread, each on a
 * fiber), and one timer thread that fires deadlines (a sync execute's wait_ms). The limit
 * counts the jobs of both. Timers are an intrusive list sorted by due
 * time; since most share one wait_ms, inserting from the tail is O(1) in practice.
 */
#include "server/server_internal.h"

#include "core/clock.h"
#include "core/xalloc.h"
#include "net/http_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct job {
    struct job *next;
    void (*fn)(void *arg);
    void *arg;
} job_t;

struct executor {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* a job was queued, or stop */
    pthread_cond_t idle;  /* a job finished */
    /* The timers have a lock of their own: every sync execute arms one on an HTTP thread and
     * cancels it on an executor thread, and sharing the job queue's lock made those threads
     * wait on each other (seen in perf as lock waits under executor_timer_add/cancel). */
    pthread_mutex_t tmu;
    pthread_cond_t tick;  /* under tmu: the timer list changed, or stop */
    bool timer_stop;      /* under tmu */
    job_t *head, *tail;
    int max_threads;
    int threads, idle_threads;
    int inflight; /* queued + running, on the pool and the loop */
    int queued;   /* jobs waiting for a pool thread */
    bool stop;
    pthread_t *tids;
    pthread_t timer_tid;
    executor_timer_t *timers, *timers_tail;
    int64_t timer_wake_at; /* monotonic ms the timer thread wakes by itself at the latest */
    http_loop_t *loop; /* the engine's, borrowed */
};

/* A job of the outbound loop: the executor counts it in flight until it returns. */
typedef struct fiber_job {
    executor_t *ex;
    void (*fn)(void *arg);
    void *arg;
} fiber_job_t;

/* With no timer armed the timer thread still wakes this often, so arming one that is due
 * later needs no signal: a wake-up of that thread per sync execute was a context switch per
 * request. */
#define TIMER_IDLE_MS 1000

static void *worker_main(void *arg)
{
    executor_t *ex = arg;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        while (!ex->head && !ex->stop) {
            ex->idle_threads++;
            pthread_cond_wait(&ex->work, &ex->mu);
            ex->idle_threads--;
        }
        if (!ex->head && ex->stop)
            break;
        job_t *j = ex->head;
        ex->head = j->next;
        ex->queued--;
        if (!ex->head)
            ex->tail = NULL;
        pthread_mutex_unlock(&ex->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&ex->mu);
        ex->inflight--;
        pthread_cond_broadcast(&ex->idle);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

static void timespec_at(int64_t mono_ms, struct timespec *ts)
{
    /* The condition variable waits on CLOCK_MONOTONIC (set in executor_new). */
    ts->tv_sec = mono_ms / 1000;
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void unlink_timer(executor_t *ex, executor_timer_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ex->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        ex->timers_tail = t->prev;
    t->prev = t->next = NULL;
    t->armed = false;
}

static void *timer_main(void *arg)
{
    executor_t *ex = arg;
    pthread_mutex_lock(&ex->tmu);
    while (!ex->timer_stop) {
        executor_timer_t *t = ex->timers;
        int64_t now = clock_mono_ms();
        if (!t || t->due_ms > now) {
            ex->timer_wake_at = t && t->due_ms < now + TIMER_IDLE_MS ? t->due_ms
                                                                     : now + TIMER_IDLE_MS;
            struct timespec ts;
            timespec_at(ex->timer_wake_at, &ts);
            pthread_cond_timedwait(&ex->tick, &ex->tmu, &ts);
            continue;
        }
        unlink_timer(ex, t);
        pthread_mutex_unlock(&ex->tmu);
        t->fn(t->arg);
        pthread_mutex_lock(&ex->tmu);
    }
    pthread_mutex_unlock(&ex->tmu);
    return NULL;
}

/* Create the pool; no worker thread starts until the first job. Main thread. */
executor_t *executor_new(int max_threads, http_loop_t *loop)
{
    executor_t *ex = XNEW(executor_t);
    pthread_mutex_init(&ex->mu, NULL);
    pthread_mutex_init(&ex->tmu, NULL);
    pthread_cond_init(&ex->work, NULL);
    pthread_cond_init(&ex->idle, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ex->tick, &ca);
    pthread_condattr_destroy(&ca);
    ex->max_threads = max_threads > 0 ? max_threads : 1;
    ex->tids = xcalloc((size_t)ex->max_threads, sizeof(pthread_t));
    pthread_create(&ex->timer_tid, NULL, timer_main, ex);
    ex->loop = loop;
    return ex;
}

/* Count one more job in flight, unless stopping or at the limit. Under MU. */
static bool reserve_locked(executor_t *ex)
{
    if (ex->stop || ex->inflight >= ex->max_threads)
        return false;
    ex->inflight++;
    return true;
}

static bool reserve(executor_t *ex)
{
    pthread_mutex_lock(&ex->mu);
    bool ok = reserve_locked(ex);
    pthread_mutex_unlock(&ex->mu);
    return ok;
}

static void release(executor_t *ex)
{
    pthread_mutex_lock(&ex->mu);
    ex->inflight--;
    pthread_cond_broadcast(&ex->idle);
    pthread_mutex_unlock(&ex->mu);
}

static void run_fiber_job(void *arg)
{
    fiber_job_t *fj = arg;
    fj->fn(fj->arg);
    release(fj->ex);
    free(fj);
}

/* Run FN(ARG) on the outbound loop. Any thread. */
int executor_submit_fiber(executor_t *ex, void (*fn)(void *arg), void *arg)
{
    if (!reserve(ex))
        return -1;
    fiber_job_t *fj = XNEW(fiber_job_t);
    *fj = (fiber_job_t){ex, fn, arg};
    err_t err = {0};
    if (http_loop_submit(ex->loop, run_fiber_job, fj, &err) == 0)
        return 0;
    /* No loop (libcurl cannot load, no thread): a pool thread runs it, and its outbound
     * requests fail there with the reason. */
    err_clear(&err);
    free(fj);
    release(ex);
    return executor_submit(ex, fn, arg);
}

/* Queue FN(ARG); start a thread when none is idle and the limit allows. Any thread. */
int executor_submit(executor_t *ex, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&ex->mu);
    if (!reserve_locked(ex)) {
        pthread_mutex_unlock(&ex->mu);
        return -1;
    }
    job_t *j = XNEW(job_t);
    j->fn = fn;
    j->arg = arg;
    if (ex->tail)
        ex->tail->next = j;
    else
        ex->head = j;
    ex->tail = j;
    ex->queued++;
    /* A thread for every queued job: jobs in flight (the loop's included) never exceed
     * max_threads, so the pool never needs more. */
    if (ex->idle_threads < ex->queued && ex->threads < ex->max_threads) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, SERVER_STACK_BYTES);
        if (pthread_create(&ex->tids[ex->threads], &attr, worker_main, ex) == 0)
            ex->threads++;
        pthread_attr_destroy(&attr);
    }
    pthread_cond_signal(&ex->work);
    pthread_mutex_unlock(&ex->mu);
    return 0;
}

void executor_timer_add(executor_t *ex, executor_timer_t *t)
{
    pthread_mutex_lock(&ex->tmu);
    executor_timer_t *after = ex->timers_tail;
    while (after && after->due_ms > t->due_ms)
        after = after->prev;
    t->prev = after;
    t->next = after ? after->next : ex->timers;
    if (t->next)
        t->next->prev = t;
    else
        ex->timers_tail = t;
    if (after)
        after->next = t;
    else
        ex->timers = t;
    t->armed = true;
    if (t->due_ms < ex->timer_wake_at)
        pthread_cond_signal(&ex->tick);
    pthread_mutex_unlock(&ex->tmu);
}

bool executor_timer_cancel(executor_t *ex, executor_timer_t *t)
{
    pthread_mutex_lock(&ex->tmu);
    bool was = t->armed;
    if (was)
        unlink_timer(ex, t);
    pthread_mutex_unlock(&ex->tmu);
    return was;
}

void executor_timers_fire_all(executor_t *ex)
{
    pthread_mutex_lock(&ex->tmu);
    for (executor_timer_t *t = ex->timers; t; t = t->next)
        t->due_ms = 0;
    pthread_cond_signal(&ex->tick);
    pthread_mutex_unlock(&ex->tmu);
}

int executor_wait_idle(executor_t *ex, int64_t deadline_ms)
{
    pthread_mutex_lock(&ex->mu);
    while (ex->inflight > 0 && clock_mono_ms() < deadline_ms) {
        struct timespec ts;
        /* 'idle' waits on the realtime clock: poll in short steps instead of converting. */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ex->idle, &ex->mu, &ts);
    }
    int left = ex->inflight;
    pthread_mutex_unlock(&ex->mu);
    return left;
}

/* Stop and join every thread, then free. Jobs must have finished. Main thread. NULL-safe. */
void executor_free(executor_t *ex)
{
    if (!ex)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->stop = true;
    pthread_cond_broadcast(&ex->work);
    pthread_mutex_unlock(&ex->mu);
    pthread_mutex_lock(&ex->tmu);
    ex->timer_stop = true;
    pthread_cond_broadcast(&ex->tick);
    pthread_mutex_unlock(&ex->tmu);
    for (int i = 0; i < ex->threads; i++)
        pthread_join(ex->tids[i], NULL);
    pthread_join(ex->timer_tid, NULL);
    free(ex->tids);
    pthread_cond_destroy(&ex->work);
    pthread_cond_destroy(&ex->idle);
    pthread_cond_destroy(&ex->tick);
    pthread_mutex_destroy(&ex->tmu);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
}
