/* task_await.c - the await task: wait for listed runs until the mode is met (all, any,
 * at_least N), tolerating some failures, within a time limit.
 *
 * Waiting never starves the pool: a listed run that is still queued and due is claimed and run
 * right here, on the waiting thread, instead of waiting for a worker that may never be free. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct awaited {
    char id[UUID_STR_LEN];
    run_status_t status;
    json_t *output;
    json_t *error;
    bool known; /* the run exists */
} awaited_t;

/* The listed runs' ids, from strings or objects with run_id. */
static int collect_ids(json_t *runs, awaited_t **out, int *n, char *msg, size_t msg_len)
{
    if (json_is_string(runs) || json_is_object(runs)) {
        json_t *a = json_array();
        json_array_append(a, runs);
        int rc = collect_ids(a, out, n, msg, msg_len);
        json_decref(a);
        return rc;
    }
    if (!json_is_array(runs)) {
        snprintf(msg, msg_len, "runs must give an array of run ids, got %s", jsonx_type_name(runs));
        return -1;
    }
    *n = (int)json_array_size(runs);
    *out = xcalloc((size_t)*n, sizeof(awaited_t));
    size_t i;
    json_t *v;
    json_array_foreach(runs, i, v)
    {
        json_t *id = json_is_object(v) ? json_object_get(v, "run_id") : v;
        if (!json_is_string(id) || !uuid_valid(json_string_value(id))) {
            snprintf(msg, msg_len, "runs[%zu] is not a run id nor an object with run_id", i);
            free(*out);
            *out = NULL;
            return -1;
        }
        memcpy((*out)[i].id, json_string_value(id), UUID_STR_LEN);
        (*out)[i].status = RUN_QUEUED;
    }
    return 0;
}

static void refresh(run_ctx_t *ctx, awaited_t *a)
{
    engine_t *eng = ctx->eng;
    if (live_snapshot(eng, a->id, 0, &a->status, &a->output, &a->error)) {
        a->known = true;
        return;
    }
    run_rec_t *rec = NULL;
    if (store_run_get(eng->store, a->id, &rec, NULL) < 0)
        return; /* not committed yet, or unknown: judged at the deadline */
    a->known = true;
    a->status = rec->status;
    bool due = rec->status == RUN_QUEUED ||
               (rec->status == RUN_SCHEDULED && rec->scheduled_at <= clock_now_ms());
    if (run_status_finished(rec->status)) {
        a->output = json_incref(rec->output);
        a->error = json_incref(rec->error);
    }
    run_rec_free(rec);
    if (!due)
        return;
    run_rec_t *claimed = NULL;
    if (scheduler_claim_one(eng, a->id, &claimed) == 0) {
        engine_run_claimed(eng, claimed, false);
        store_flush(eng->store, NULL);
    }
}

void task_await_exec(run_ctx_t *ctx, const task_t *t, int64_t attempt_deadline, outcome_t *out)
{
    const await_task_t *aw = &t->u.await;
    tmpl_scope_t scope;
    run_scope(ctx, NULL, NULL, &scope);
    err_t err = {0};
    json_t *runs = template_render(aw->runs, &scope, &err);
    if (!runs) {
        outcome_fail_err(out, &err);
        return;
    }
    awaited_t *list = NULL;
    int n = 0;
    char msg[200];
    if (collect_ids(runs, &list, &n, msg, sizeof msg) < 0) {
        json_decref(runs);
        outcome_fail(out, "expression_error", msg, NULL);
        return;
    }
    json_decref(runs);

    int64_t deadline = clock_mono_ms() + aw->timeout_ms;
    if (attempt_deadline < deadline)
        deadline = attempt_deadline;
    int need = aw->mode == AWAIT_ALL ? n : aw->mode == AWAIT_ANY ? 1 : aw->at_least;
    int64_t slice = 2;
    bool met = false, impossible = false, timed_out = false, cancelled = false;
    int succeeded = 0, failed = 0, finished = 0;

    for (;;) {
        succeeded = failed = finished = 0;
        for (int i = 0; i < n; i++) {
            if (!run_status_finished(list[i].status))
                refresh(ctx, &list[i]);
            if (run_status_finished(list[i].status)) {
                finished++;
                if (list[i].status == RUN_SUCCEEDED)
                    succeeded++;
                else
                    failed++;
            }
        }
        if (aw->mode == AWAIT_ALL) {
            met = finished == n && failed <= aw->tolerate_failures;
            impossible = failed > aw->tolerate_failures;
        } else {
            met = succeeded >= need;
            impossible = !met && (succeeded + (n - finished) < need ||
                                  (aw->tolerate_failures && failed > aw->tolerate_failures));
        }
        if (impossible && !run_cancelled(ctx)) {
            /* Awaited runs cancelled along with this one? Then this is a cancellation. */
            for (int i = 0; i < n; i++)
                if (list[i].status == RUN_CANCELLED) {
                    engine_poll_cancellations(ctx->eng);
                    break;
                }
        }
        if (met || impossible)
            break;
        if ((cancelled = run_cancelled(ctx)))
            break;
        if ((timed_out = clock_mono_ms() >= deadline))
            break;
        int64_t left = deadline - clock_mono_ms();
        clock_sleep_ms(left < slice ? left : slice);
        if (slice < 50)
            slice *= 2;
    }

    out->result = json_array();
    for (int i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s, s:s, s:O?, s:O?}", "run_id", list[i].id, "status",
                              list[i].known ? run_status_name(list[i].status) : "unknown", "output",
                              list[i].output, "error", list[i].error);
        if (!list[i].output)
            json_object_set_new(e, "output", json_null());
        if (!list[i].error)
            json_object_set_new(e, "error", json_null());
        json_array_append_new(out->result, e);
        json_decref(list[i].output);
        json_decref(list[i].error);
    }
    free(list);

    if (met) {
        out->success = true;
        return;
    }
    if (run_cancelled(ctx))
        cancelled = true;
    json_t *detail = json_pack("{s:i, s:i, s:i, s:i}", "succeeded", succeeded, "failed", failed,
                               "finished", finished, "total", n);
    if (cancelled)
        outcome_fail(out, "cancelled", "the run was cancelled while awaiting", detail);
    else if (timed_out)
        outcome_fail(out, "timeout", "the awaited runs did not finish in time", detail);
    else
        outcome_fail(out, "await_failed", "too many of the awaited runs failed", detail);
}
