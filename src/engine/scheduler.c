/* scheduler.c - starting queued and delayed runs: one scheduler thread claims due runs from
 * the store (with a lease) into a small ready list, and worker threads execute them. The
 * scheduler also renews this process's leases, recovers runs whose process died, and passes on
 * cancellations requested from elsewhere.
 *
 * A claim is a durable store operation: it waits for a commit. So that workers need not wait
 * for one, the scheduler claims ahead: it keeps up to AHEAD runs ready beyond the idle workers
 * and tops the list up, in one claim, when it falls to half of that. AHEAD grows (to at most
 * PREFETCH) while workers find the list empty and drops to 0 when the list stalls, so a
 * process whose workers are busy with long runs claims no more than they take. A claimed run
 * is running in the store (owned, leased) from its claim on, exactly as a run a worker has
 * started: a crash recovers it by its integration's on_interrupt, a stop puts it back in the
 * queue.
 * Two things must not wait behind the ready list, and do not:
 *  - max_concurrency: the scheduler holds (ready or executing) at most max_concurrency runs of
 *    a limited integration and gives any surplus of a claim back to the queue at once; a
 *    ready run counts as running for the limit from its claim on (it is running in the
 *    store), so an execution arriving meanwhile is refused as it would be a moment later;
 *  - an await of a ready run: when every worker is busy and the list has not moved for
 *    STALL_MS (workers waiting for runs behind them), its runs go back to the queue, where an
 *    await claims them itself.
 *
 * A ready run holds a reference to its call tree's state (root_acquire) until it has run, so
 * the worker finds the state in memory: a root run that never ran has no descendants, and the
 * runs of one tree drained one after another count the tree in the store once, not once each.
 *
 * A worker hands a run whose only waits are outbound requests (engine_waits) to the outbound
 * loop while fewer than cfg.loop_runs are there, and takes the next: such runs wait on their
 * upstreams together on the loop's one thread instead of queueing behind the workers. They
 * count as active until they end, and scheduler_stop waits for them as for the workers.
 *
 * A root accepted here from outside (an async execute), due now, of an integration without a
 * max_concurrency, skips the queue while the ready list has room and the last claim found the
 * queue drained (scheduler_accept): its one write puts it in the store running and owned,
 * exactly as a claim would leave it, and it goes straight into the ready list. That spares the
 * claim's walk of the queue, its update of the row and the scheduler's part in between. Idle
 * workers are woken once per commit of such runs (wake_workers), so a run usually starts once
 * its record is durable; a worker woken for one commit may take a run accepted since, and
 * starts it at once when it only computes: its writes queue behind its record, and a crash
 * loses them together. A run that may reach the network waits for its commit first.
 *
 * In memory there is only the ready list, a timer for the next due run and a wake-up signal;
 * the queue itself lives in the store. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/strmap.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define IDLE_POLL_MS 1000 /* longest sleep: runs queued by other processes are seen this fast */
#define PREFETCH 64       /* runs claimed ahead of the idle workers (at most) */
/* A ready list untouched this long while every worker is busy goes back to the queue. */
#define STALL_MS 100

/* A limited integration: how many of its runs this scheduler holds (ready or executing). */
typedef struct held {
    int held;
    int limit;   /* its max_concurrency, > 0 */
    char name[]; /* its key in scheduler.held */
} held_t;

typedef struct ready {
    run_rec_t *rec;
    held_t *h;          /* its integration's entry when that is limited, else NULL */
    root_state_t *root; /* a reference to its call tree's state, held until it has run */
    uint64_t ticket;    /* accepted here (scheduler_accept): its record's put; 0 when claimed */
} ready_t;

struct scheduler {
    engine_t *eng;
    pthread_t thread;
    pthread_t *workers;
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the scheduler: the ready list ran low, a worker freed, stop */
    pthread_cond_t work; /* the workers: a claimed run is ready */
    ready_t *ready;      /* claimed runs not yet taken by a worker: [first, first + n_ready) */
    int first, n_ready, cap_ready;
    strmap_t *held;     /* integration name -> held_t, limited integrations only */
    int idle;           /* workers waiting for work */
    int active;         /* runs being executed, by workers or on the outbound loop */
    int on_loop;        /* of those, on the loop: at most cfg.loop_runs */
    int64_t last_take;  /* monotonic ms: a worker last took a run, or the list filled */
    int ahead;          /* runs to keep ready beyond the idle workers, 0..PREFETCH */
    /* The last claim found fewer due runs than it asked for and nothing was queued since
     * (scheduler_wake): a run accepted here passes no older one by skipping the queue. */
    bool queue_clear;
    bool wake_at_commit; /* runs accepted here wait for wake_workers */
    bool sched_waiting; /* the scheduler sleeps on WAKE */
    bool sleeps_blind;  /* ... without a timer for the next due run (it could not claim) */
    bool stop_claiming;
    bool stopping;
    bool woken;
};

/* How many runs ready now leave the scheduler asleep: below this it claims more. Under MU. */
static int low_mark(const scheduler_t *s)
{
    return s->ahead / 2;
}

/* Whether a worker taking or ending a run should wake the scheduler to claim more: not while
 * the queue is known drained and the scheduler sleeps with a timer for the next due run (runs
 * accepted here keep coming straight to the list; waking it would only make it claim none).
 * Under MU. */
static bool claim_may_find(const scheduler_t *s)
{
    return !s->woken && (!s->queue_clear || s->sleeps_blind);
}

static void wake_scheduler(scheduler_t *s)
{
    s->woken = true;
    if (s->sched_waiting)
        pthread_cond_signal(&s->wake);
}

/* One run of H's integration (NULL: not limited) is no longer held. Under MU. */
static void unhold(scheduler_t *s, held_t *h)
{
    if (h && --h->held == 0) {
        strmap_del(s->held, h->name);
        free(h);
    }
}

/* Give REC (taken) back to the queue: queued again, not started. The put keeps the queue's
 * own columns, and the claim that takes it next overwrites them. Under MU or not. */
static void release_run(engine_t *eng, run_rec_t *rec)
{
    rec->status = RUN_QUEUED;
    rec->started_at = 0;
    store_run_put(eng->store, rec);
    run_rec_free(rec);
}

/* Give every ready run back to the queue. Under MU. */
static void release_ready(scheduler_t *s)
{
    for (int i = 0; i < s->n_ready; i++) {
        ready_t *r = &s->ready[s->first + i];
        if (r->h)
            concurrency_leave(s->eng, r->h->name);
        unhold(s, r->h);
        release_run(s->eng, r->rec);
        root_release(s->eng, r->root);
    }
    if (s->n_ready > 0)
        s->queue_clear = false; /* they are in the queue again */
    s->first = s->n_ready = 0;
}

/* Claimed run R has been executed: count it out. Under MU. */
static void ran(scheduler_t *s, const ready_t *r)
{
    s->active--;
    unhold(s, r->h);
    if (s->stop_claiming)
        pthread_cond_broadcast(&s->wake); /* scheduler_stop counts the active runs */
    else if (s->n_ready == 0 && claim_may_find(s))
        wake_scheduler(s);
}

/* Execute claimed run R, then let go of its tree. Not under MU. */
static void execute(scheduler_t *s, const ready_t *r)
{
    engine_run_claimed(s->eng, r->rec, r->h != NULL);
    root_release(s->eng, r->root);
}

typedef struct loop_run {
    scheduler_t *s;
    ready_t r;
} loop_run_t;

/* A claimed run on a fiber of the outbound loop. */
static void run_on_loop(void *arg)
{
    loop_run_t *lr = arg;
    scheduler_t *s = lr->s;
    execute(s, &lr->r);
    pthread_mutex_lock(&s->mu);
    s->on_loop--;
    ran(s, &lr->r);
    pthread_mutex_unlock(&s->mu);
    free(lr);
}

/* Hand R (whose waits are WAITS) to the outbound loop when its only waits are outbound
 * requests and the loop has room: there it waits without holding a worker, so runs calling
 * slow upstreams do not queue behind --workers. False when the worker must run it itself.
 * Not under MU. */
static bool hand_to_loop(scheduler_t *s, const ready_t *r, exec_waits_t waits)
{
    engine_t *eng = s->eng;
    if (eng->cfg.loop_runs <= 0 || waits != EXEC_WAITS_NETWORK)
        return false;
    pthread_mutex_lock(&s->mu);
    bool room = s->on_loop < eng->cfg.loop_runs;
    if (room)
        s->on_loop++;
    pthread_mutex_unlock(&s->mu);
    if (!room)
        return false;
    loop_run_t *lr = XNEW(loop_run_t);
    *lr = (loop_run_t){s, *r};
    err_t err = {0};
    if (http_loop_submit(eng->loop, run_on_loop, lr, &err) == 0)
        return true;
    err_clear(&err); /* no loop here (libcurl cannot load): the worker runs it, and says why */
    free(lr);
    pthread_mutex_lock(&s->mu);
    s->on_loop--;
    pthread_mutex_unlock(&s->mu);
    return false;
}

static void *worker_main(void *arg)
{
    scheduler_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->n_ready > 0) {
            ready_t r = s->ready[s->first++];
            if (--s->n_ready == 0)
                s->first = 0;
            s->idle--;
            s->active++;
            s->last_take = clock_mono_ms();
            if (s->n_ready < low_mark(s) && claim_may_find(s))
                wake_scheduler(s);
            pthread_mutex_unlock(&s->mu);
            exec_waits_t waits =
                engine_waits(s->eng, r.rec->integration, r.rec->version, EXEC_SYNC);
            /* A run accepted here that may reach the network starts only once its record is
             * committed; when that failed, its caller was told so and it never runs. */
            bool recorded = !r.ticket || waits == EXEC_WAITS_NOTHING ||
                            store_wait(s->eng->store, r.ticket, NULL) == 0;
            if (recorded && hand_to_loop(s, &r, waits)) {
                pthread_mutex_lock(&s->mu);
                s->idle++;
                continue;
            }
            if (recorded) {
                execute(s, &r);
            } else {
                run_rec_free(r.rec);
                root_release(s->eng, r.root);
            }
            pthread_mutex_lock(&s->mu);
            s->idle++;
            ran(s, &r);
            continue;
        }
        if (s->stopping)
            break;
        pthread_cond_wait(&s->work, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

#define PURGE_EVERY_MS (3600LL * 1000)

static void purge_old_history(engine_t *eng, int64_t now)
{
    int64_t deleted = 0;
    int64_t before = now - (int64_t)eng->cfg.retain_days * 24 * 3600 * 1000;
    if (store_purge(eng->store, before, &deleted, NULL) == 0 && deleted > 0)
        log_event(LOG_INFO, "purged run history past retention",
                  json_pack("{s:I, s:i}", "runs", (json_int_t)deleted, "retain_days",
                            eng->cfg.retain_days));
}

static void housekeeping(scheduler_t *s, int64_t *next_lease, int64_t *next_recover,
                         int64_t *next_purge)
{
    engine_t *eng = s->eng;
    int64_t now = clock_now_ms();
    if (now >= *next_purge) {
        purge_old_history(eng, now);
        *next_purge = now + PURGE_EVERY_MS;
    }
    if (now >= *next_lease) {
        store_lease_renew(eng->store, eng->owner, now + eng->cfg.lease_ms, NULL);
        *next_lease = now + eng->cfg.lease_ms / 6;
    }
    if (now >= *next_recover) {
        int requeued = 0, failed = 0;
        if (store_recover(eng->store, now, false, eng->owner, &requeued, &failed, NULL) == 0 &&
            requeued + failed > 0)
            log_event(LOG_INFO, "recovered runs of a stopped process",
                      json_pack("{s:i, s:i}", "requeued", requeued, "failed", failed));
        *next_recover = now + eng->cfg.lease_ms / 2;
    }
}

static void add_if_held_full(void *ctx, const char *name, void *value)
{
    const held_t *h = value;
    if (h->held >= h->limit)
        json_array_append_new(ctx, json_string(name));
}

/* REC's max_concurrency, 0 when it has none (or its definition cannot be had: the worker
 * fails such a run). */
static int run_limit(engine_t *eng, const run_rec_t *rec)
{
    const definition_t *def;
    bool archived;
    if (registry_get(eng->reg, rec->integration, rec->version, &def, &archived, NULL) < 0)
        return 0;
    return def->max_concurrency > 0 ? def->max_concurrency : 0;
}

/* Make room for N more runs at the end of the ready list. Under MU. */
static void ready_reserve(scheduler_t *s, int n)
{
    if (s->first + s->n_ready + n <= s->cap_ready)
        return;
    if (s->first > 0) {
        memmove(s->ready, s->ready + s->first, (size_t)s->n_ready * sizeof *s->ready);
        s->first = 0;
    }
    if (s->n_ready + n > s->cap_ready) {
        s->cap_ready = s->n_ready + n > 2 * s->cap_ready ? s->n_ready + n : 2 * s->cap_ready;
        s->ready = xrealloc(s->ready, (size_t)s->cap_ready * sizeof *s->ready);
    }
}

/* Append the N claimed runs RUNS (taken; LIMITS their max_concurrency, ROOTS their trees'
 * states, taken) to the ready list, oldest first; a run of an integration whose limit is
 * already held goes back to the queue. Returns how many were kept. Under MU. */
static int take_claimed(scheduler_t *s, run_rec_t **runs, const int *limits, root_state_t **roots,
                        int n)
{
    ready_reserve(s, n);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        held_t *h = NULL;
        if (limits[i] > 0) {
            h = strmap_get(s->held, runs[i]->integration);
            if (!h) {
                size_t len = strlen(runs[i]->integration) + 1;
                h = xmalloc(sizeof *h + len);
                h->held = 0;
                memcpy(h->name, runs[i]->integration, len);
                strmap_put(s->held, h->name, h);
            }
            h->limit = limits[i];
            if (h->held >= h->limit) {
                release_run(s->eng, runs[i]);
                root_release(s->eng, roots[i]);
                continue;
            }
            h->held++;
            concurrency_enter(s->eng, h->name, 0); /* the engine's count: see the top */
        }
        s->ready[s->first + s->n_ready++] = (ready_t){runs[i], h, roots[i], 0};
        kept++;
    }
    return kept;
}

/* Claim up to WANT due runs into the ready list. Called and returns under MU, which it drops
 * while the store works. Returns how many runs the store gave (kept or given back). */
static int claim(scheduler_t *s, int want)
{
    engine_t *eng = s->eng;
    json_t *exclude = json_array();
    strmap_each(s->held, add_if_held_full, exclude);
    pthread_mutex_unlock(&s->mu);
    json_t *full = concurrency_full(eng);
    json_array_extend(exclude, full);
    json_decref(full);
    int64_t now = clock_now_ms();
    run_rec_t **runs = NULL;
    int n = 0;
    err_t err = {0};
    if (store_queue_claim(eng->store, eng->owner, now, now + eng->cfg.lease_ms, want, exclude,
                          &runs, &n, &err) < 0) {
        log_msg(LOG_ERROR, "claiming queued runs failed: %s", err.msg);
        err_clear(&err);
    }
    json_decref(exclude);
    int *limits = n ? xmalloc((size_t)n * sizeof *limits) : NULL;
    root_state_t **roots = n ? xmalloc((size_t)n * sizeof *roots) : NULL;
    for (int i = 0; i < n; i++) {
        const run_rec_t *r = runs[i];
        limits[i] = run_limit(eng, r);
        /* A root on its first attempt has not run yet (a run given back to the queue keeps
         * its attempt, one recovered gets the next): its tree is itself alone. */
        roots[i] = root_acquire(eng, r->root_id, r->attempt <= 1 && strcmp(r->root_id, r->id) == 0);
    }
    pthread_mutex_lock(&s->mu);
    bool was_empty = s->n_ready == 0;
    if (s->stop_claiming) { /* scheduler_stop gave the ready list back already */
        for (int i = 0; i < n; i++) {
            release_run(eng, runs[i]);
            root_release(eng, roots[i]);
        }
    } else if (take_claimed(s, runs, limits, roots, n) > 0) {
        if (was_empty)
            s->last_take = clock_mono_ms();
        pthread_cond_broadcast(&s->work);
    }
    free(limits);
    free(roots);
    free(runs);
    return n;
}

static void *scheduler_main(void *arg)
{
    scheduler_t *s = arg;
    engine_t *eng = s->eng;
    int64_t next_lease = 0, next_recover = 0, next_purge = 0;
    bool queue_empty = false; /* the last claim found fewer due runs than it asked for */

    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->mu);
        housekeeping(s, &next_lease, &next_recover, &next_purge);
        pthread_mutex_lock(&s->mu);
        if (s->n_ready > 0 && s->idle == 0 && clock_mono_ms() - s->last_take >= STALL_MS) {
            release_ready(s);
            s->ahead = 0;
        }
        int want = s->idle + s->ahead - s->n_ready;
        bool may_claim = !s->stop_claiming && want > 0 && s->n_ready <= low_mark(s);
        if (may_claim && (!queue_empty || s->woken)) {
            s->woken = false; /* this claim answers every wake-up so far */
            if (s->idle > 0 && s->n_ready == 0 && !queue_empty && s->ahead < PREFETCH) {
                /* Workers wait while the queue has more: claim further ahead. */
                s->ahead = s->ahead ? 2 * s->ahead : s->n_workers;
                if (s->ahead > PREFETCH)
                    s->ahead = PREFETCH;
                want = s->idle + s->ahead;
            }
            int n = claim(s, want);
            /* Runs queued while the store worked may be behind the claim: the wake-up they
             * left makes the next claim take them, and runs accepted meanwhile were
             * concurrent with them. */
            queue_empty = s->queue_clear = n < want;
            continue;
        }
        if (s->woken) {
            s->woken = false;
            continue;
        }
        /* Sleep until a wake-up, the next due run (when a run could be claimed), a possible
         * stall of the ready list, or the idle poll. */
        int64_t until = clock_mono_ms() + IDLE_POLL_MS;
        if (may_claim) {
            int64_t due = 0;
            pthread_mutex_unlock(&s->mu);
            store_queue_next_due(eng->store, &due, NULL);
            pthread_mutex_lock(&s->mu);
            if (due > 0) {
                int64_t in = due - clock_now_ms();
                if (in < 5)
                    in = 5; /* due now but not claimable (at max_concurrency) */
                if (clock_mono_ms() + in < until)
                    until = clock_mono_ms() + in;
            }
        }
        if (s->n_ready > 0 && s->idle == 0 && s->last_take + STALL_MS < until)
            until = s->last_take + STALL_MS;
        if (!s->woken && !s->stopping) {
            s->sched_waiting = true;
            s->sleeps_blind = !may_claim; /* no timer for the next due run: see claim_may_find */
            cond_wait_until(&s->wake, &s->mu, until, IDLE_POLL_MS);
            s->sched_waiting = s->sleeps_blind = false;
        }
        if (!s->woken)
            queue_empty = s->queue_clear = false; /* timed out: look at the store again */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Recover what a dead process left, then start the scheduler and workers. */
int scheduler_start(engine_t *eng, err_t *err)
{
    bool alone = false;
    int rc = store_engine_lock(eng->store, &alone, err);
    if (rc < 0)
        return rc;
    int requeued = 0, failed = 0;
    rc = store_recover(eng->store, clock_now_ms(), alone, eng->owner, &requeued, &failed, err);
    if (rc < 0)
        return rc;
    if (requeued + failed > 0)
        log_event(LOG_INFO, "recovered interrupted runs",
                  json_pack("{s:i, s:i}", "requeued", requeued, "failed", failed));

    engine_watch_cancellations(eng);
    scheduler_t *s = XNEW(scheduler_t);
    s->eng = eng;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->work, NULL);
    s->n_workers = eng->cfg.workers;
    s->workers = xcalloc((size_t)s->n_workers, sizeof(pthread_t));
    s->idle = s->n_workers;
    s->held = strmap_new();
    eng->sched = s;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8 << 20); /* deep sync call chains recurse on this stack */
    for (int i = 0; i < s->n_workers; i++)
        pthread_create(&s->workers[i], &attr, worker_main, s);
    pthread_create(&s->thread, &attr, scheduler_main, s);
    pthread_attr_destroy(&attr);
    return 0;
}

void scheduler_wake(engine_t *eng)
{
    scheduler_t *s = eng->sched;
    pthread_mutex_lock(&s->mu);
    s->woken = true;
    s->queue_clear = false;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

/* After the commit of a run accepted here: wake idle workers for the ready runs. One wake-up
 * per commit for every run it accepted, not one per run: at thousands of runs a second a
 * worker woken for each would spend more on the switch than on the run. On the store's
 * writer thread. */
static void wake_workers(void *arg, int rc, const err_t *err)
{
    (void)rc; /* a run whose record failed is dropped by its worker */
    (void)err;
    scheduler_t *s = arg;
    pthread_mutex_lock(&s->mu);
    s->wake_at_commit = false;
    for (int i = 0; i < s->n_ready && i < s->idle; i++)
        pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
}

/* Whether a run accepted now may skip the queue: see the top. Under MU. */
static bool may_accept(const scheduler_t *s)
{
    return s->queue_clear && !s->stop_claiming && s->n_ready < s->idle + PREFETCH;
}

/* See engine_internal.h. */
bool scheduler_accept(engine_t *eng, run_rec_t *rec, uint64_t *ticket)
{
    scheduler_t *s = eng->sched;
    if (!s)
        return false;
    pthread_mutex_lock(&s->mu);
    bool room = may_accept(s);
    pthread_mutex_unlock(&s->mu);
    if (!room)
        return false;
    int64_t now = clock_now_ms();
    rec->status = RUN_RUNNING;
    rec->started_at = now;
    rec->owner = eng->owner;
    rec->lease_until = now + eng->cfg.lease_ms;
    root_state_t *root = root_acquire(eng, rec->id, true);
    *ticket = store_run_put(eng->store, rec);
    pthread_mutex_lock(&s->mu);
    if (s->stop_claiming) { /* stopping meanwhile: the next start runs it */
        pthread_mutex_unlock(&s->mu);
        release_run(eng, rec);
        root_release(eng, root);
        return true;
    }
    ready_reserve(s, 1);
    if (s->n_ready == 0)
        s->last_take = clock_mono_ms();
    s->ready[s->first + s->n_ready++] = (ready_t){rec, NULL, root, *ticket};
    bool first = !s->wake_at_commit;
    s->wake_at_commit = true;
    pthread_mutex_unlock(&s->mu);
    if (first)
        store_on_commit(eng->store, *ticket, wake_workers, s);
    return true;
}

int scheduler_active(engine_t *eng)
{
    scheduler_t *s = eng->sched;
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    int n = s->active + s->n_ready;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int scheduler_claim_one(engine_t *eng, const char *id, run_rec_t **out)
{
    int64_t now = clock_now_ms();
    return store_queue_claim_id(eng->store, id, eng->owner, now, now + eng->cfg.lease_ms, out,
                                NULL);
}

static void free_held(void *ctx, const char *name, void *value)
{
    (void)ctx;
    (void)name;
    free(value);
}

/* Stop claiming, give running runs GRACE_MS, then stop the threads. Ready runs are claimed
 * by us but not started, so they go back to the store's queue here rather than by way of
 * recovery on the next start. */
void scheduler_stop(engine_t *eng, int64_t grace_ms)
{
    scheduler_t *s = eng->sched;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop_claiming = true;
    release_ready(s);
    int64_t until = clock_mono_ms() + grace_ms;
    while (s->active > 0 && clock_mono_ms() < until)
        cond_wait_until(&s->wake, &s->mu, until, 50);
    s->stopping = true;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    /* As the joins wait for the workers' runs, this waits for the loop's: they count
     * themselves out under S's lock. */
    pthread_mutex_lock(&s->mu);
    while (s->on_loop > 0)
        cond_wait_until(&s->wake, &s->mu, NO_DEADLINE, 50);
    pthread_mutex_unlock(&s->mu);
    /* A wake_workers still waiting for its commit must have run before S goes. */
    store_flush(eng->store, NULL);
    free(s->workers);
    free(s->ready);
    strmap_each(s->held, free_held, NULL); /* empty unless a run outlived the grace period */
    strmap_free(s->held);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->work);
    eng->sched = NULL;
    free(s);
}
