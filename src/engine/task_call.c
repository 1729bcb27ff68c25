/* task_call.c - the call_integration task: one target, every integration behind an API trigger,
 * once or once per item (for_each), sync or async.
 *
 * Sync calls run the child right here (engine_call executes it on this thread). A for_each with
 * parallelism above 1 becomes a fan-out: this thread takes items one by one while idle helper
 * threads may take others; the calling thread never sleeps while an item is left unstarted, so
 * nested fan-outs cannot deadlock however many wait at once. On a fiber of the outbound loop
 * the helpers are fibers of that loop instead. */
#include "engine/engine_internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"
#include "net/http_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything one element of the task needs; shared read-only by the threads of a fan-out. */
/* What one element of a call leaves behind. */
typedef struct element_slots {
    json_t *result;
    json_t *error; /* NULL when it succeeded */
    char run_id[UUID_STR_LEN];
    uint64_t ticket; /* an async commit still to wait for */
} element_slots_t;

typedef struct call_job {
    run_ctx_t *ctx;
    const task_t *t;
    int seq;
    int64_t deadline;
    json_t *items;    /* for_each array, or NULL for a single call */
    element_slots_t *slots; /* one per element */
    json_t *child_output; /* single sync call: the child's output (for `output` mapping) */
} call_job_t;

static json_t *render_field(run_ctx_t *ctx, const template_t *tmpl, json_t *item, json_t *index,
                            err_t *err)
{
    tmpl_scope_t scope;
    run_scope(ctx, item, index, &scope);
    return template_render(tmpl, &scope, err);
}

/* Build the payload and context overrides of one call. */
static int build_payload(call_job_t *job, json_t *item, json_t *index, json_t **payload,
                         json_t **context, err_t *err)
{
    const call_task_t *c = &job->t->u.call;
    *payload = NULL;
    *context = NULL;
    if (c->payload_kind == PAYLOAD_NONE) {
        *payload = json_object();
        return 0;
    }
    json_t *v = render_field(job->ctx, c->payload, item, index, err);
    if (!v)
        return err->code;
    if (c->payload_kind != PAYLOAD_EXTENDED) {
        *payload = v;
        return 0;
    }
    json_t *p = json_object_get(v, "payload");
    *payload = p ? json_incref(p) : json_object();
    json_object_del(v, "payload");
    *context = v;
    return 0;
}

/* One call of the task to TARGET. Fills *RESULT (owned) shaped as SPEC §3 says for a single
 * call, *ERROR (owned) when it failed, and RUN_ID. */
static void call_one(call_job_t *job, const char *target, json_t *item, json_t *index,
                     json_t **result, json_t **error, char run_id[UUID_STR_LEN], uint64_t *ticket,
                     bool *was_async, json_t **output)
{
    run_ctx_t *ctx = job->ctx;
    const call_task_t *c = &job->t->u.call;
    err_t err = {0};
    json_t *payload = NULL, *context = NULL, *key = NULL, *delay = NULL;
    call_result_t res = {0};
    *result = NULL;
    *error = NULL;
    *was_async = false;

    if (build_payload(job, item, index, &payload, &context, &err) < 0)
        goto failed;
    call_spec_t spec = {
        .target = target,
        .version = c->version,
        .mode = c->strategy == STRATEGY_SYNC    ? EXEC_SYNC
                : c->strategy == STRATEGY_ASYNC ? EXEC_ASYNC
                                                : EXEC_DEFAULT,
        .payload = payload,
        .context = context,
        .trigger = "call",
        .detached = c->detached,
        .caller = ctx,
        .caller_task = job->t->id,
        .caller_step = job->seq,
        .deadline = job->deadline,
    };
    if (c->delay_ms) {
        long long ms;
        if (!(delay = render_field(ctx, c->delay_ms, item, index, &err)))
            goto failed;
        if (!jsonx_as_int(delay, &ms) || ms < 0) {
            err_set(&err, BR_EEXPRESSION_ERROR, "delay_ms must be a non-negative integer, got %s",
                    jsonx_type_name(delay));
            goto failed;
        }
        spec.delay_ms = ms;
    }
    char scope[300];
    if (c->idempotency_key) {
        if (!(key = render_field(ctx, c->idempotency_key, item, index, &err)))
            goto failed;
        if (!json_is_string(key) || json_string_length(key) == 0) {
            err_set(&err, BR_EEXPRESSION_ERROR, "idempotency_key must render to a non-empty string");
            goto failed;
        }
        snprintf(scope, sizeof scope, "integration:%s", target);
        spec.idem_scope = scope;
        spec.idem_key = json_string_value(key);
    }
    if (engine_call(ctx->eng, &spec, &res, true, &err) < 0)
        goto failed;

    memcpy(run_id, res.run_id, UUID_STR_LEN);
    if (res.async) {
        *result = call_result_async_json(&res);
        *ticket = res.ticket;
        *was_async = true;
    } else {
        *result = res.output ? json_incref(res.output) : json_null();
        if (output)
            *output = json_incref(res.output);
        if (res.status != RUN_SUCCEEDED) {
            *error = res.error ? jsonx_copy(res.error)
                               : error_new("internal", "the child failed without an error", NULL);
            if (!json_object_get(*error, "run_id"))
                json_object_set_new(*error, "run_id", json_string(res.run_id));
        }
    }
    goto out;

failed:
    *error = error_new(err_name(err.code), err.msg, err.detail);
    err.detail = NULL;
    *result = json_null();
out:
    call_result_deinit(&res);
    json_decref(payload);
    json_decref(context);
    json_decref(key);
    json_decref(delay);
    err_clear(&err);
}

/* The call(s) of element I (or the single call when there are no items): to the rendered target,
 * or to every integration behind the trigger. */
static void run_element(call_job_t *job, int i)
{
    const call_task_t *c = &job->t->u.call;
    element_slots_t *slot = &job->slots[i];
    json_t *item = job->items ? json_array_get(job->items, (size_t)i) : NULL;
    json_t *index = job->items ? json_integer(i) : NULL;
    err_t err = {0};
    bool was_async;
    uint64_t ticket = 0;

    if (!c->trigger) {
        json_t *target = render_field(job->ctx, c->integration, item, index, &err);
        if (target && !json_is_string(target)) {
            err_set(&err, BR_EEXPRESSION_ERROR, "integration must render to a name, got %s",
                    jsonx_type_name(target));
            json_decref(target);
            target = NULL;
        }
        if (!target) {
            slot->error = error_new(err_name(err.code), err.msg, err.detail);
            err.detail = NULL;
            slot->result = json_null();
        } else {
            call_one(job, json_string_value(target), item, index, &slot->result, &slot->error,
                     slot->run_id, &ticket, &was_async,
                     job->items ? NULL : &job->child_output);
            json_decref(target);
        }
        slot->ticket = ticket;
        json_decref(index);
        err_clear(&err);
        return;
    }

    json_t *names = NULL;
    json_t *list = json_array();
    if (registry_trigger_targets(job->ctx->eng->reg, c->trigger, &names, &err) < 0) {
        slot->error = error_new(err_name(err.code), err.msg, NULL);
        names = json_array();
    }
    size_t k;
    json_t *name;
    json_array_foreach(names, k, name)
    {
        json_t *result, *error;
        char rid[UUID_STR_LEN] = "";
        const char *target = json_string_value(name);
        call_one(job, target, item, index, &result, &error, rid, &ticket, &was_async, NULL);
        if (ticket > slot->ticket)
            slot->ticket = ticket;
        json_t *entry;
        if (was_async) {
            entry = json_pack("{s:s, s:s}", "integration", target, "run_id", rid);
        } else {
            int version = 0;
            const definition_t *d;
            bool archived;
            if (registry_get(job->ctx->eng->reg, target, c->version, &d, &archived, NULL) == 0)
                version = d->version;
            entry = json_pack("{s:s, s:i, s:s?, s:s, s:O, s:O?}", "integration", target, "version",
                              version, "run_id", rid[0] ? rid : NULL, "status",
                              error ? "failed" : "succeeded", "output", result, "error", error);
            if (!json_object_get(entry, "error"))
                json_object_set_new(entry, "error", json_null());
            if (!json_object_get(entry, "run_id"))
                json_object_set_new(entry, "run_id", json_null());
        }
        json_array_append_new(list, entry);
        if (error && !slot->error)
            slot->error = json_incref(error);
        json_decref(result);
        json_decref(error);
    }
    json_decref(names);
    slot->result = list;
    json_decref(index);
    err_clear(&err);
}

/* ---- fan-out over helper threads ------------------------------------------------------------ */

typedef struct fanout {
    call_job_t *job;
    int n;        /* items */
    int next;     /* first item not yet taken */
    int running;  /* items being executed */
    int done;     /* items finished */
    int limit;    /* parallelism */
    int users;    /* threads inside the fan-out (the owner counts) */
    struct fanout *link; /* in the helpers' list while items are left */
} fanout_t;

static pthread_mutex_t fan_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fan_cv = PTHREAD_COND_INITIALIZER;     /* items finished */
static pthread_cond_t helper_cv = PTHREAD_COND_INITIALIZER;  /* work for helpers */
static fanout_t *fan_list;
static int helpers_started;

static void unlink_fanout(fanout_t *f)
{
    for (fanout_t **p = &fan_list; *p; p = &(*p)->link) {
        if (*p == f) {
            *p = f->link;
            return;
        }
    }
}

/* Take an item of F and run it; called with fan_mu held, returns with it held. */
static void take_item(fanout_t *f)
{
    int i = f->next++;
    f->running++;
    if (f->next >= f->n)
        unlink_fanout(f);
    pthread_mutex_unlock(&fan_mu);
    run_element(f->job, i);
    pthread_mutex_lock(&fan_mu);
    f->running--;
    f->done++;
    pthread_cond_broadcast(&fan_cv);
}

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&fan_mu);
    for (;;) {
        fanout_t *f = fan_list;
        while (f && f->running >= f->limit)
            f = f->link;
        if (!f) {
            pthread_cond_wait(&helper_cv, &fan_mu);
            continue;
        }
        f->users++;
        take_item(f);
        f->users--;
        pthread_cond_broadcast(&fan_cv);
    }
    return NULL;
}

/* Helper threads live for the process: they hold no resources while idle. */
static void ensure_helpers(int n)
{
    pthread_mutex_lock(&fan_mu);
    while (helpers_started < n) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 8 << 20);
        if (pthread_create(&th, &attr, helper_main, NULL) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        helpers_started++;
    }
    pthread_mutex_unlock(&fan_mu);
}

static void fan_out(call_job_t *job, int n, int parallelism)
{
    int helpers = parallelism - 1;
    if (helpers > job->ctx->eng->cfg.workers)
        helpers = job->ctx->eng->cfg.workers;
    ensure_helpers(helpers);
    fanout_t f = {.job = job, .n = n, .limit = parallelism, .users = 1};
    pthread_mutex_lock(&fan_mu);
    f.link = fan_list;
    fan_list = &f;
    pthread_cond_broadcast(&helper_cv);
    while (f.done < f.n || f.users > 1) {
        if (f.next < f.n && f.running < f.limit)
            take_item(&f);
        else
            pthread_cond_wait(&fan_cv, &fan_mu);
    }
    pthread_mutex_unlock(&fan_mu);
}

/* ---- fan-out over fibers of the outbound loop ----------------------------------------------- */

/* On a fiber of the outbound loop, the fan-out's other hands are fibers of the same loop: no
 * helper thread is woken or waited for (the loop's thread must never sleep on a condition
 * variable), and the thread runs whichever item is not waiting on the network. Every fiber
 * takes items until none is left, as the threads do; all run on one thread, so the shared
 * counters need no lock. */
typedef struct fiber_fan {
    call_job_t *job;
    int n, next;  /* items; first item not yet taken */
    int helpers;  /* helper fibers not finished */
    void *owner;  /* the calling job while it waits for them, else NULL */
} fiber_fan_t;

static void fiber_helper(void *arg)
{
    fiber_fan_t *f = arg;
    while (f->next < f->n)
        run_element(f->job, f->next++);
    if (--f->helpers == 0 && f->owner)
        http_loop_wake(f->owner);
}

static void fan_out_fibers(call_job_t *job, int n, int parallelism)
{
    fiber_fan_t f = {.job = job, .n = n};
    int want = parallelism - 1 < n - 1 ? parallelism - 1 : n - 1;
    for (int i = 0; i < want; i++)
        if (http_loop_spawn(fiber_helper, &f) == 0)
            f.helpers++;
    while (f.next < f.n)
        run_element(job, f.next++);
    while (f.helpers > 0) {
        f.owner = http_loop_self();
        http_loop_park();
    }
}

/* ---- the task ------------------------------------------------------------------------------ */

/* Execute one attempt of call_integration task T. See engine_internal.h. */
void task_call_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                    outcome_t *out)
{
    const call_task_t *c = &t->u.call;
    call_job_t job = {.ctx = ctx, .t = t, .seq = seq, .deadline = attempt_deadline};
    int n = 1;
    if (c->for_each) {
        err_t err = {0};
        json_t *items = render_field(ctx, c->for_each, NULL, NULL, &err);
        if (!items) {
            outcome_fail_err(out, &err);
            return;
        }
        if (!json_is_array(items)) {
            char msg[160];
            snprintf(msg, sizeof msg, "for_each must give an array, got %s",
                     jsonx_type_name(items));
            json_decref(items);
            outcome_fail(out, "expression_error", msg, NULL);
            return;
        }
        job.items = items;
        n = (int)json_array_size(items);
    }
    /* The four per-element arrays share one block; a single call (the common case) keeps it
     * on the stack. */
    element_slots_t one, *slots = n == 1 ? &one : xmalloc((size_t)n * sizeof *slots);
    memset(slots, 0, (size_t)n * sizeof *slots);
    job.slots = slots;

    if (c->for_each && c->parallelism > 1 && n > 1) {
        /* Children on other threads read what their callers found once and kept: the trace
         * id is found here, before they start (the run was written already: must_announce). */
        run_trace_id(ctx);
        if (http_loop_here())
            fan_out_fibers(&job, n, c->parallelism);
        else
            fan_out(&job, n, c->parallelism);
    } else {
        for (int i = 0; i < n; i++)
            run_element(&job, i);
    }

    /* Async children were queued without waiting; one wait covers them all. */
    uint64_t last = 0;
    for (int i = 0; i < n; i++)
        if (job.slots[i].ticket > last)
            last = job.slots[i].ticket;
    err_t err = {0};
    if (last && store_wait(ctx->eng->store, last, &err) < 0) {
        outcome_fail_err(out, &err);
        goto out;
    }

    out->success = true;
    for (int i = 0; i < n; i++) {
        if (job.slots[i].error) {
            out->success = false;
            out->error = jsonx_copy(job.slots[i].error);
            if (c->for_each) {
                json_t *detail = json_object_get(out->error, "detail");
                if (!json_is_object(detail)) {
                    detail = json_object();
                    json_object_set_new(out->error, "detail", detail);
                }
                json_object_set_new(detail, "index", json_integer(i));
            }
            break;
        }
    }
    if (c->for_each) {
        out->result = json_array();
        for (int i = 0; i < n; i++) {
            json_array_append_new(out->result, job.slots[i].result);
            job.slots[i].result = NULL;
        }
    } else {
        out->result = job.slots[0].result;
        job.slots[0].result = NULL;
        if (!c->trigger)
            memcpy(out->run_id, job.slots[0].run_id, UUID_STR_LEN);
        if (out->success && job.child_output && c->n_outputs)
            engine_map_outputs(ctx->vars, c->outputs, c->n_outputs, job.child_output);
    }
out:
    for (int i = 0; i < n; i++) {
        json_decref(job.slots[i].result);
        json_decref(job.slots[i].error);
    }
    if (slots != &one)
        free(slots);
    json_decref(job.items);
    json_decref(job.child_output);
}
