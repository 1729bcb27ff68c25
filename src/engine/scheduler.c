/* scheduler.c - starting queued and delayed runs: one scheduler thread claims due runs from
 * the store (with a lease) only when a worker is free to take one, and worker threads execute
 * them. The scheduler also renews this process's leases, recovers runs whose process died, and
 * passes on cancellations requested from elsewhere.
 *
 * In memory there is only the handful of claimed runs on their way to a worker, a timer for
 * the next due run and a wake-up signal; the queue itself lives in the store. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define IDLE_POLL_MS 1000 /* longest sleep: runs queued by other processes are seen this fast */

struct scheduler {
    engine_t *eng;
    pthread_t thread;
    pthread_t *workers;
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* the scheduler: new work, a worker freed, stop */
    pthread_cond_t work;    /* the workers: a claimed run is waiting */
    run_rec_t **handoff;    /* claimed runs not yet taken by a worker */
    int n_handoff, cap_handoff;
    int idle;               /* workers waiting for work */
    int active;             /* runs being executed by workers */
    bool stop_claiming;
    bool stopping;
    bool woken;
};

static void *worker_main(void *arg)
{
    scheduler_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->n_handoff > 0) {
            run_rec_t *rec = s->handoff[--s->n_handoff];
            s->idle--;
            s->active++;
            pthread_mutex_unlock(&s->mu);
            engine_run_claimed(s->eng, rec);
            pthread_mutex_lock(&s->mu);
            s->active--;
            s->idle++;
            s->woken = true;
            pthread_cond_signal(&s->wake);
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

static void *scheduler_main(void *arg)
{
    scheduler_t *s = arg;
    engine_t *eng = s->eng;
    int64_t next_lease = 0, next_recover = 0, next_purge = 0;

    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->mu);
        housekeeping(s, &next_lease, &next_recover, &next_purge);
        pthread_mutex_lock(&s->mu);
        int free_workers = s->idle - s->n_handoff;
        int claimed = 0;
        if (free_workers > 0 && !s->stop_claiming) {
            pthread_mutex_unlock(&s->mu);
            int64_t now = clock_now_ms();
            json_t *full = concurrency_full(eng);
            run_rec_t **runs = NULL;
            int n = 0;
            err_t err = {0};
            if (store_queue_claim(eng->store, eng->owner, now, now + eng->cfg.lease_ms,
                                  free_workers, full, &runs, &n, &err) < 0) {
                log_msg(LOG_ERROR, "claiming queued runs failed: %s", err.msg);
                err_clear(&err);
            }
            json_decref(full);
            pthread_mutex_lock(&s->mu);
            for (int i = 0; i < n; i++) {
                if (s->n_handoff == s->cap_handoff) {
                    s->cap_handoff = s->cap_handoff ? s->cap_handoff * 2 : 16;
                    s->handoff = xrealloc(s->handoff, (size_t)s->cap_handoff * sizeof(run_rec_t *));
                }
                s->handoff[s->n_handoff++] = runs[i];
            }
            free(runs);
            claimed = n;
            if (n)
                pthread_cond_broadcast(&s->work);
            if (n == free_workers)
                continue; /* there may be more due right now */
        }
        if (s->woken) {
            s->woken = false;
            if (claimed || s->idle - s->n_handoff > 0)
                continue;
        }
        /* Sleep until the next due run, a wake-up, or the idle poll. */
        int64_t until = clock_mono_ms() + IDLE_POLL_MS;
        int64_t due = 0;
        pthread_mutex_unlock(&s->mu);
        store_queue_next_due(eng->store, &due, NULL);
        pthread_mutex_lock(&s->mu);
        if (due > 0) {
            int64_t in = due - clock_now_ms();
            if (in < 5)
                in = 5; /* due now but not claimable (no free worker or at max_concurrency) */
            if (clock_mono_ms() + in < until)
                until = clock_mono_ms() + in;
        }
        if (!s->woken && !s->stopping)
            cond_wait_until(&s->wake, &s->mu, until, IDLE_POLL_MS);
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
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

int scheduler_active(engine_t *eng)
{
    scheduler_t *s = eng->sched;
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    int n = s->active + s->n_handoff;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int scheduler_claim_one(engine_t *eng, const char *id, run_rec_t **out)
{
    int64_t now = clock_now_ms();
    return store_queue_claim_id(eng->store, id, eng->owner, now, now + eng->cfg.lease_ms, out,
                                NULL);
}

/* Stop claiming, give running runs GRACE_MS, then stop the threads. Runs still in the handoff
 * go back to the store's queue by way of recovery on the next start: they are claimed by us,
 * so they are released here instead. */
void scheduler_stop(engine_t *eng, int64_t grace_ms)
{
    scheduler_t *s = eng->sched;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop_claiming = true;
    for (int i = 0; i < s->n_handoff; i++) {
        run_rec_t *rec = s->handoff[i];
        rec->status = RUN_QUEUED;
        rec->started_at = 0;
        store_run_put(eng->store, rec);
        run_rec_free(rec);
    }
    s->n_handoff = 0;
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
    free(s->workers);
    free(s->handoff);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->work);
    eng->sched = NULL;
    free(s);
}
