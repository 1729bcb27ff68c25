/* lifecycle.c - starting and stopping the workers, draining the queue, and cancelling runs. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <string.h>

#define CANCEL_WAIT_MS 3000 /* longest engine_cancel waits for a running run to stop */

int engine_start(engine_t *eng, err_t *err)
{
    if (eng->sched)
        return 0;
    return scheduler_start(eng, err);
}

void engine_stop(engine_t *eng, int64_t grace_ms)
{
    scheduler_stop(eng, grace_ms);
    store_flush(eng->store, NULL);
}

/* Run the workers until nothing is scheduled, queued or running. See engine.h. */
int engine_drain(engine_t *eng, engine_progress_cb progress, void *ctx, err_t *err)
{
    int rc = engine_start(eng, err);
    if (rc < 0)
        return rc;
    int64_t finished_base = -1;
    for (;;) {
        store_flush(eng->store, NULL);
        json_t *counts = NULL;
        if ((rc = store_queue_counts(eng->store, &counts, err)) < 0)
            return rc;
        json_int_t scheduled = json_integer_value(json_object_get(counts, "scheduled"));
        json_int_t queued = json_integer_value(json_object_get(counts, "queued"));
        json_int_t running = json_integer_value(json_object_get(counts, "running"));
        json_int_t finished = json_integer_value(json_object_get(counts, "finished"));
        if (finished_base < 0)
            finished_base = finished;
        json_object_set_new(counts, "finished", json_integer(finished - finished_base));
        if (progress)
            progress(ctx, counts);
        json_decref(counts);
        if (scheduled == 0 && queued == 0 && running == 0 && scheduler_active(eng) == 0)
            break;
        clock_sleep_ms(100);
        scheduler_wake(eng);
    }
    return store_flush(eng->store, err);
}

/* Cancel RUN_ID and its unfinished, non-detached descendants. See engine.h. */
int engine_cancel(engine_t *eng, const char *run_id, json_t **out, err_t *err)
{
    run_status_t status;
    int rc = store_flush(eng->store, err);
    if (rc == 0)
        rc = store_run_cancel(eng->store, run_id, clock_now_ms(), &status, err);
    if (rc < 0)
        return rc;
    json_t *running = NULL;
    if ((rc = store_cancel_descendants(eng->store, run_id, clock_now_ms(), &running, err)) < 0)
        return rc;
    json_array_append_new(running, json_string(run_id));
    live_cancel_ids(eng, running);
    json_decref(running);
    /* The run stops at its next check: here at once, in another process when its watcher
     * polls (every 250 ms). Wait a little so the answer shows the outcome, not "running". */
    for (int waited = 0; waited < CANCEL_WAIT_MS; waited += 20) {
        store_flush(eng->store, NULL);
        run_rec_t *rec = NULL;
        bool done = store_run_get(eng->store, run_id, &rec, NULL) == 0 &&
                    run_status_finished(rec->status);
        run_rec_free(rec);
        if (done)
            break;
        clock_sleep_ms(20);
    }
    return engine_run_get(eng, run_id, out, err);
}
