/* http_loop.c - see http_loop.h.
 *
 * One pass of the loop: start the jobs submitted since the last pass, let libcurl move every
 * transfer along, resume the jobs that were ready when the pass began (a transfer ended, a
 * sleep is over, a job woke or spawned another, or shared the thread), and wait in
 * curl_multi_poll only when nothing is left to do. A submit from another thread wakes that
 * wait with curl_multi_wakeup. A job, its fiber and its place in a list make a strand; the
 * lists (new, ready, sleeping) are the loop thread's own, except new, which takes the lock.
 * A parked strand (http_loop_park) and one whose transfer is in flight are in no list.
 */
#include "net/http_loop.h"

#include "core/clock.h"
#include "core/fiber.h"
#include "core/xalloc.h"
#include "net/libcurl.h"

#include <pthread.h>
#include <stdlib.h>

/* The longest the loop waits without being woken: a bound, not a poll interval. */
#define IDLE_WAIT_MS 1000
/* How long a job may run without waiting before http_loop_share lets the others run. */
#define SLICE_MS 2

typedef struct strand {
    struct strand *next; /* in exactly one list: new, ready or sleeping (or none, in flight) */
    http_loop_t *loop;
    fiber_t *fiber;
    void (*fn)(void *arg);
    void *arg;
    int result;    /* CURLcode of its last transfer */
    int64_t due;   /* monotonic ms, while sleeping */
    int64_t resumed_at; /* monotonic ms it last got the thread */
} strand_t;

struct http_loop {
    size_t stack_bytes;
    int max_idle_connections;
    pthread_mutex_t mu;
    strand_t *fresh, *fresh_tail; /* under mu: submitted, not started */
    bool started, stop;           /* under mu */
    pthread_t tid;
    CURLM *multi;
    /* The loop thread's own. */
    strand_t *ready, *ready_tail;
    strand_t *sleeping; /* by due time */
    int live;           /* strands started and not finished */
};

/* The strand whose fiber runs on this thread right now. */
static _Thread_local strand_t *running;

static void push_ready(http_loop_t *l, strand_t *s)
{
    s->next = NULL;
    if (l->ready_tail)
        l->ready_tail->next = s;
    else
        l->ready = s;
    l->ready_tail = s;
}

static void strand_main(void *arg)
{
    strand_t *s = arg;
    s->fn(s->arg);
}

/* Run S until it waits or ends; free it when it ended. */
static void step(http_loop_t *l, strand_t *s)
{
    running = s;
    s->resumed_at = clock_mono_ms();
    bool done = fiber_resume(s->fiber);
    running = NULL;
    if (done) {
        fiber_free(s->fiber);
        free(s);
        l->live--;
    }
}

/* fiber_sleep_ms on a strand: park it among the sleepers until its time. */
static void strand_sleep(void *host, fiber_t *f, int64_t ms)
{
    http_loop_t *l = host;
    strand_t *s = running;
    (void)f;
    s->due = clock_mono_ms() + ms;
    strand_t **at = &l->sleeping;
    while (*at && (*at)->due <= s->due)
        at = &(*at)->next;
    s->next = *at;
    *at = s;
    fiber_yield();
}

/* Give S a fiber of L. False when no stack could be had. */
static bool give_fiber(http_loop_t *l, strand_t *s)
{
    s->fiber = fiber_new(strand_main, s, l->stack_bytes);
    if (!s->fiber)
        return false;
    fiber_set_host(s->fiber, l, strand_sleep);
    l->live++;
    return true;
}

static void start(http_loop_t *l, strand_t *s)
{
    if (!give_fiber(l, s)) {
        /* No address space for a stack: run the job on the loop's own stack, where its
         * transfers block this thread (http_loop_here is false there), rather than lose it. */
        s->fn(s->arg);
        free(s);
        return;
    }
    step(l, s);
}

/* Move the strands whose transfer ended to the ready list. Whether there were any. */
static bool collect_transfers(http_loop_t *l)
{
    bool any = false;
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        strand_t *s = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
        s->result = m->data.result; /* M is gone once the handle is removed */
        curl_multi_remove_handle(l->multi, easy);
        push_ready(l, s);
        any = true;
    }
    return any;
}

/* Move the sleepers whose time came to the ready list. Whether there were any. */
static bool collect_sleepers(http_loop_t *l)
{
    bool any = false;
    int64_t now = clock_mono_ms();
    while (l->sleeping && l->sleeping->due <= now) {
        strand_t *s = l->sleeping;
        l->sleeping = s->next;
        push_ready(l, s);
        any = true;
    }
    return any;
}

static int wait_ms(const http_loop_t *l)
{
    if (!l->sleeping)
        return IDLE_WAIT_MS;
    int64_t left = l->sleeping->due - clock_mono_ms();
    return left <= 0 ? 0 : left < IDLE_WAIT_MS ? (int)left : IDLE_WAIT_MS;
}

static void *loop_main(void *arg)
{
    http_loop_t *l = arg;
    pthread_setname_np(pthread_self(), "braid-outbound"); /* for top, perf and gdb */
    for (;;) {
        pthread_mutex_lock(&l->mu);
        strand_t *fresh = l->fresh;
        l->fresh = l->fresh_tail = NULL;
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        bool busy = fresh != NULL;
        while (fresh) {
            strand_t *s = fresh;
            fresh = s->next;
            start(l, s);
        }
        int in_flight;
        curl_multi_perform(l->multi, &in_flight);
        busy |= collect_transfers(l);
        busy |= collect_sleepers(l);
        /* Only those ready now: one made ready meanwhile (a share, a wake, a spawn) waits for
         * the next pass, after libcurl has moved the transfers along. */
        strand_t *ready = l->ready;
        l->ready = l->ready_tail = NULL;
        busy |= ready != NULL;
        while (ready) {
            strand_t *s = ready;
            ready = s->next;
            step(l, s);
        }
        if (stop && l->live == 0)
            break;
        if (busy) /* the jobs just run may have begun transfers: start them before waiting */
            continue;
        curl_multi_poll(l->multi, NULL, 0, wait_ms(l), NULL);
    }
    return NULL;
}

http_loop_t *http_loop_new(size_t stack_bytes, int max_idle_connections)
{
    http_loop_t *l = XNEW(http_loop_t);
    l->stack_bytes = stack_bytes;
    l->max_idle_connections = max_idle_connections > 0 ? max_idle_connections : 64;
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

/* libcurl, the multi handle and the thread, on the first job. Lock held. */
static int start_locked(http_loop_t *l, err_t *err)
{
    int rc = libcurl_start(err);
    if (rc < 0)
        return rc;
    l->multi = curl_multi_init();
    if (!l->multi)
        return err_set(err, BR_EINTERNAL, "libcurl cannot create a multi handle");
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)l->max_idle_connections);
    if (pthread_create(&l->tid, NULL, loop_main, l) != 0) {
        curl_multi_cleanup(l->multi);
        l->multi = NULL;
        return err_set(err, BR_EINTERNAL, "cannot start the outbound loop's thread");
    }
    l->started = true;
    return 0;
}

int http_loop_submit(http_loop_t *l, void (*fn)(void *arg), void *arg, err_t *err)
{
    strand_t *s = XNEW(strand_t);
    s->loop = l;
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_lock(&l->mu);
    int rc = l->started ? 0 : start_locked(l, err);
    if (rc == 0) {
        if (l->fresh_tail)
            l->fresh_tail->next = s;
        else
            l->fresh = s;
        l->fresh_tail = s;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc < 0) {
        free(s);
        return rc;
    }
    curl_multi_wakeup(l->multi);
    return 0;
}

void http_loop_free(http_loop_t *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    bool started = l->started;
    pthread_mutex_unlock(&l->mu);
    if (started) {
        curl_multi_wakeup(l->multi);
        pthread_join(l->tid, NULL);
        curl_multi_cleanup(l->multi);
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int http_loop_spawn(void (*fn)(void *arg), void *arg)
{
    http_loop_t *l = running->loop;
    strand_t *s = XNEW(strand_t);
    s->loop = l;
    s->fn = fn;
    s->arg = arg;
    if (!give_fiber(l, s)) {
        free(s);
        return -1;
    }
    push_ready(l, s); /* the loop steps it after the caller yields: fibers never nest */
    return 0;
}

void *http_loop_self(void)
{
    return running;
}

void http_loop_park(void)
{
    fiber_yield(); /* in no list: only http_loop_wake brings it back */
}

void http_loop_wake(void *job)
{
    strand_t *s = job;
    push_ready(s->loop, s);
}

void http_loop_share(void)
{
    strand_t *s = running;
    if (!s || clock_mono_ms() - s->resumed_at < SLICE_MS)
        return;
    push_ready(s->loop, s); /* behind the jobs already ready */
    fiber_yield();
}

bool http_loop_here(void)
{
    return running != NULL; /* set only while a strand's fiber runs */
}

int http_loop_transfer(void *easy)
{
    strand_t *s = running;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, s);
    CURLMcode mc = curl_multi_add_handle(s->loop->multi, easy);
    if (mc != CURLM_OK)
        return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
    fiber_yield(); /* the loop resumes this strand when the transfer has ended */
    return s->result;
}
