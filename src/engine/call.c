/* call.c - the one call path: every way into an integration (the command line, HTTP, a
 * call_integration task, callint) starts a run here.
 *
 * Checks come first and start nothing when they fail: the target exists and is not archived,
 * the caller is allowed, the call depth and the tree's descendant count stay within limits,
 * the payload fits the declared inputs, an idempotency key is new. Then a sync run executes on
 * this very thread (a sync call is a function call) and an async one is committed to the queue
 * before the call returns. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/fiber.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DELAY_MS (30LL * 24 * 3600 * 1000)
#define STACK_RESERVE (256 * 1024) /* bytes of stack a sync call must leave free */

/* The lowest usable address of this thread's stack, found once per thread. */
static _Thread_local char *thread_stack_low;

/* Whether the running stack has room for one more sync call level. A sync call recurses on
 * the caller's stack, and max_call_depth bounds the chain, but stacks differ in size (the main
 * thread, workers, a server's threads, a fiber of the outbound loop): this makes overflow
 * impossible on any of them. */
static bool stack_has_room(void)
{
    char here;
    char *low = fiber_stack_low();
    if (!low && !thread_stack_low) {
        pthread_attr_t attr;
        void *addr = NULL;
        size_t size = 0;
        if (pthread_getattr_np(pthread_self(), &attr) != 0)
            return true;
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
        thread_stack_low = addr;
    }
    if (!low)
        low = thread_stack_low;
    if (!low)
        return true;
    return &here - low > STACK_RESERVE;
}

/* The run's stored input context: the payload and whatever CONTEXT (an extended payload, an
 * HTTP request) sets; run_input_context() fills in the defaults when the run is shown or its
 * templates read `input`. PAYLOAD is referenced, not copied: nothing modifies a payload once
 * a call has been made with it. CONTEXT's members are copied: a reference would let the
 * caller's thread (the HTTP request's, dropping its context) free a value last while the run's
 * thread reads it, with nothing ThreadSanitizer can see ordering the two (jansson's decrement
 * that frees is a release without an acquire; tests/tsan.supp). */
static json_t *input_context(const json_t *payload, const json_t *context)
{
    json_t *in = json_object();
    json_object_set_nocheck(in, "payload", (json_t *)payload);
    if (json_is_object(context)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)context, k, v)
        {
            if (strcmp(k, "payload") != 0)
                json_object_set_new(in, k, jsonx_copy(v));
        }
    }
    return in;
}

/* Wait until run ID is finished or DEADLINE passes; fill RES from what is known then. The run
 * may be executing here (wait on it) or elsewhere (poll the store). */
static void await_run(engine_t *eng, const char *id, int64_t deadline, call_result_t *res)
{
    int64_t slice = 5;
    for (;;) {
        if (live_snapshot(eng, id, deadline, &res->status, &res->output, &res->error))
            return;
        run_rec_t *rec = NULL;
        if (store_run_get(eng->store, id, &rec, NULL) == 0) {
            res->status = rec->status;
            res->version = rec->version;
            res->scheduled_at = rec->scheduled_at;
            if (run_status_finished(rec->status)) {
                res->output = json_incref(rec->output);
                res->error = json_incref(rec->error);
                run_rec_free(rec);
                return;
            }
            run_rec_free(rec);
        } else {
            res->status = RUN_QUEUED; /* claimed but its record is not committed yet */
        }
        if (clock_mono_ms() >= deadline)
            return;
        clock_sleep_ms(slice);
        if (slice < 100)
            slice *= 2;
    }
}

/* A repeated idempotency key: answer with the first run (sync: once it has finished). */
static int answer_existing(engine_t *eng, const char *id, bool async, int64_t deadline,
                           call_result_t *res)
{
    memcpy(res->run_id, id, UUID_STR_LEN);
    res->async = async;
    await_run(eng, id, async ? 0 : deadline, res);
    return 0;
}

static int check_limits(engine_t *eng, const call_spec_t *spec, const definition_t *def,
                        bool archived, err_t *err)
{
    const engine_config_t *cfg = &eng->cfg;
    if (archived)
        return err_set(err, BR_ENOT_FOUND, "integration '%s' is archived", def->name);
    if (spec->caller && !definition_caller_allowed(def, spec->caller->def->name))
        return err_set(err, BR_EFORBIDDEN, "integration '%s' may not be called by '%s'",
                       def->name, spec->caller->def->name);
    int depth = spec->caller ? spec->caller->rec->depth + 1 : 0;
    if (spec->caller && !stack_has_room())
        return err_set_detail(err, BR_ECALL_DEPTH_EXCEEDED,
                              json_pack("{s:i}", "max_call_depth", cfg->max_call_depth),
                              "calling '%s' at call depth %d would overflow this thread's stack",
                              def->name, depth);
    if (depth > cfg->max_call_depth)
        return err_set_detail(err, BR_ECALL_DEPTH_EXCEEDED,
                              json_pack("{s:i}", "max_call_depth", cfg->max_call_depth),
                              "calling '%s' would reach call depth %d, past the limit of %d",
                              def->name, depth, cfg->max_call_depth);
    if (spec->delay_ms < 0 || spec->delay_ms > MAX_DELAY_MS)
        return err_set(err, BR_EINPUT_INVALID, "delay_ms must be between 0 and 30 days");
    return 0;
}

/* How deep engine_waits follows sync calls before it gives up and says EXEC_WAITS_OTHER. */
#define WAITS_DEPTH 8

static exec_waits_t def_waits(engine_t *eng, const definition_t *def, int depth);

static exec_waits_t max_waits(exec_waits_t a, exec_waits_t b)
{
    return a > b ? a : b;
}

/* What the sync call task C may wait for: a call to a literal target that runs synchronously,
 * once or once per item (a fan-out on the outbound loop has fibers for helpers), waits for
 * what the target waits for; any other call may wait for anything. A target that does not
 * resolve fails fast. A for_each counts as waiting on the network at least: it may run long,
 * and must not hold an HTTP thread. */
static exec_waits_t call_waits(engine_t *eng, const call_task_t *c, int depth)
{
    if (!c->literal_target || c->trigger || c->delay_ms || c->idempotency_key ||
        c->strategy == STRATEGY_ASYNC)
        return EXEC_WAITS_OTHER;
    exec_waits_t least = c->for_each ? EXEC_WAITS_NETWORK : EXEC_WAITS_NOTHING;
    const definition_t *child;
    bool archived;
    if (registry_get(eng->reg, c->literal_target, c->version, &child, &archived, NULL) < 0)
        return least;
    if (c->strategy == STRATEGY_DEFAULT && child->run_async)
        return EXEC_WAITS_OTHER;
    return max_waits(least, def_waits(eng, child, depth + 1));
}

static exec_waits_t def_waits(engine_t *eng, const definition_t *def, int depth)
{
    if (depth > WAITS_DEPTH)
        return EXEC_WAITS_OTHER;
    exec_waits_t w = EXEC_WAITS_NOTHING;
    for (int i = 0; i < def->n_tasks && w != EXEC_WAITS_OTHER; i++) {
        const task_t *t = &def->tasks[i];
        if (t->retry.max_attempts > 1) /* a retry sleeps between attempts (fiber_sleep_ms) */
            w = max_waits(w, EXEC_WAITS_NETWORK);
        switch (t->type) {
        case TASK_SET:
        case TASK_SWITCH:
        case TASK_FAIL:
            break;
        case TASK_HTTP:
        case TASK_CONNECTOR:
            w = max_waits(w, EXEC_WAITS_NETWORK);
            break;
        case TASK_CALL_INTEGRATION:
            w = max_waits(w, call_waits(eng, &t->u.call, depth));
            break;
        default: /* script, await: they wait for other runs, or may run long */
            w = EXEC_WAITS_OTHER;
        }
    }
    return w;
}

/* See engine.h. */
exec_waits_t engine_waits(engine_t *eng, const char *name, int version, exec_mode_t mode)
{
    if (mode == EXEC_ASYNC)
        return EXEC_WAITS_NOTHING;
    const definition_t *def;
    bool archived;
    if (registry_get(eng->reg, name, version, &def, &archived, NULL) < 0)
        return EXEC_WAITS_NOTHING; /* the call fails at once */
    if (mode == EXEC_DEFAULT && def->run_async)
        return EXEC_WAITS_NOTHING;
    int known = registry_waits(eng->reg, name, def);
    if (known >= 0)
        return (exec_waits_t)known;
    exec_waits_t w = def_waits(eng, def, 0);
    registry_remember_waits(eng->reg, name, def, w);
    return w;
}

/* Start one run. See engine_internal.h. */
int engine_call(engine_t *eng, const call_spec_t *spec, call_result_t *res, bool defer_durable,
                err_t *err)
{
    memset(res, 0, sizeof *res);
    const definition_t *def;
    bool archived = false;
    int rc = registry_get(eng->reg, spec->target, spec->version, &def, &archived, err);
    if (rc < 0)
        return rc;
    if ((rc = check_limits(eng, spec, def, archived, err)) < 0)
        return rc;
    bool async = spec->mode == EXEC_ASYNC || (spec->mode == EXEC_DEFAULT && def->run_async);
    if (spec->delay_ms > 0 && !async)
        return err_set(err, BR_EINPUT_INVALID, "a delay is only possible for an async call");

    json_t *empty = NULL;
    const json_t *payload = spec->payload;
    if (!payload)
        payload = empty = json_object();
    json_t *vars = definition_bind_inputs(def, payload, err);
    if (!vars) {
        json_decref(empty);
        return err ? err->code : BR_EINPUT_INVALID;
    }

    run_rec_t *rec = run_rec_new();
    /* The id's own millisecond is the run's creation time, so history ordered by id is
     * ordered by created_at too, whichever thread read the clock first. */
    int64_t now = uuid_v7(rec->id);
    if (spec->idem_key) {
        char existing[UUID_STR_LEN] = "";
        rc = store_idempotency_claim(eng->store, spec->idem_scope, spec->idem_key, rec->id,
                                     existing, err);
        if (rc < 0 || existing[0]) {
            json_decref(vars);
            json_decref(empty);
            run_rec_free(rec);
            return rc < 0 ? rc : answer_existing(eng, existing, async, spec->deadline, res);
        }
        rec->idempotency_key = xstrdup(spec->idem_key);
    }

    root_state_t *root = spec->caller ? spec->caller->root : NULL;
    if (root) {
        long long n = atomic_fetch_add(&root->descendants, 1) + 1;
        if (n > eng->cfg.max_descendants) {
            atomic_fetch_sub(&root->descendants, 1);
            json_decref(vars);
            json_decref(empty);
            run_rec_free(rec);
            return err_set_detail(err, BR_EDESCENDANT_LIMIT,
                                  json_pack("{s:I}", "max_descendants",
                                            (json_int_t)eng->cfg.max_descendants),
                                  "the call tree has started %lld runs, past the limit of %lld",
                                  n, (long long)eng->cfg.max_descendants);
        }
    }

    rec->integration = xstrdup(def->name);
    rec->version = def->version;
    rec->trigger = xstrdup(spec->trigger);
    rec->trigger_info = spec->trigger_info ? jsonx_copy(spec->trigger_info) : NULL;
    if (spec->caller) {
        const run_rec_t *p = spec->caller->rec;
        memcpy(rec->parent_id, p->id, UUID_STR_LEN);
        memcpy(rec->root_id, p->root_id, UUID_STR_LEN);
        rec->depth = p->depth + 1;
        rec->task = xstrdup(spec->caller_task);
        rec->parent_step = spec->caller_step;
    } else {
        memcpy(rec->root_id, rec->id, UUID_STR_LEN);
        rec->parent_step = -1;
    }
    rec->sync_child = !async && spec->caller;
    rec->detached = spec->detached;
    rec->retry_on_interrupt = def->on_interrupt == ON_INTERRUPT_RETRY;
    rec->input = input_context(payload, spec->context);
    json_decref(empty);
    rec->created_at = now;
    rec->scheduled_at = now + (async ? spec->delay_ms : 0);
    rec->attempt = 1;
    memcpy(res->run_id, rec->id, UUID_STR_LEN);
    res->version = def->version;
    res->scheduled_at = rec->scheduled_at;

    if (async) {
        res->async = true;
        json_decref(vars); /* bound again when the run starts */
        if (spec->caller) /* history shows a queued child's parent */
            run_announce(spec->caller);
        rec->status = spec->delay_ms > 0 ? RUN_SCHEDULED : RUN_QUEUED;
        /* A root from outside that this process can start now skips the queue: it is put
         * running, as a claim would leave it (scheduler.c). REC is the scheduler's then. */
        bool taken = spec->fixed_values && !spec->caller && rec->status == RUN_QUEUED &&
                     def->max_concurrency == 0 && scheduler_accept(eng, rec, &res->ticket);
        if (taken) {
            res->status = RUN_RUNNING;
        } else {
            res->status = rec->status;
            res->ticket = spec->fixed_values ? store_run_put_kept(eng->store, rec)
                                             : store_run_put(eng->store, rec);
            run_rec_free(rec);
        }
        if (!defer_durable && (rc = store_wait(eng->store, res->ticket, err)) < 0)
            return rc;
        if (eng->sched && !taken)
            scheduler_wake(eng);
        return 0;
    }

    /* Only integrations with a max_concurrency are counted: the count feeds that limit alone. */
    bool counted = def->max_concurrency > 0;
    if (counted && !concurrency_enter(eng, def->name, def->max_concurrency)) {
        if (root)
            atomic_fetch_sub(&root->descendants, 1);
        json_decref(vars);
        run_rec_free(rec);
        return err_set(err, BR_ECONCURRENCY_LIMIT,
                       "integration '%s' is already running %d times (max_concurrency)",
                       def->name, def->max_concurrency);
    }
    int64_t deadline = clock_mono_ms() + def->timeout_ms;
    if (spec->deadline < deadline)
        deadline = spec->deadline;
    rec->started_at = now;
    bool own_root = !root;
    if (own_root)
        root = root_acquire(eng, rec->id, true);

    if (spec->on_started) {
        /* The caller may answer with this id before the run ends: the record is queued now,
         * and a caller that does hand the id out waits for its ticket's commit first (SPEC §8:
         * committed before answered). Most sync runs end before that, and one commit serves. */
        rec->status = RUN_RUNNING;
        spec->on_started(spec->started_ctx, rec->id, store_run_put(eng->store, rec));
    }
    run_result_t rr;
    run_execute(eng, def, rec, vars, spec->caller, deadline, root, &rr, &spec->record);
    if (counted)
        concurrency_leave(eng, def->name);
    if (own_root)
        root_release(eng, root);
    res->status = rr.status;
    res->output = rr.output;
    res->error = rr.error;
    res->ticket = rr.ticket;
    if (spec->durable && (rc = store_wait(eng->store, rr.ticket, err)) < 0)
        return rc;
    return 0;
}

/* See engine_internal.h. */
void engine_run_claimed(engine_t *eng, run_rec_t *rec, bool held)
{
    const definition_t *def;
    bool archived;
    err_t err = {0};
    json_t *vars = NULL;
    if (registry_get(eng->reg, rec->integration, rec->version, &def, &archived, &err) == 0)
        vars = definition_bind_inputs(def, json_object_get(rec->input, "payload"), &err);
    if (!vars) {
        rec->status = RUN_FAILED;
        rec->error = error_new(err_name(err.code), err.msg, err.detail);
        err.detail = NULL;
        json_object_set_new(rec->error, "run_id", json_string(rec->id));
        rec->finished_at = clock_now_ms();
        store_run_put(eng->store, rec);
        if (held)
            concurrency_leave(eng, rec->integration);
        run_rec_free(rec);
        err_clear(&err);
        return;
    }
    bool counted = held || def->max_concurrency > 0;
    if (counted && !held) /* the claim already left out integrations at their limit */
        concurrency_enter(eng, def->name, 0);
    int64_t deadline = clock_mono_ms() + def->timeout_ms;
    if (rec->deadline_at) {
        int64_t left = rec->deadline_at - clock_now_ms();
        if (clock_mono_ms() + left < deadline)
            deadline = clock_mono_ms() + left;
    }
    root_state_t *root = root_acquire(eng, rec->root_id, false);
    run_result_t rr;
    char name[256];
    snprintf(name, sizeof name, "%s", def->name);
    run_execute(eng, def, rec, vars, NULL, deadline, root, &rr, NULL);
    if (counted)
        concurrency_leave(eng, name);
    root_release(eng, root);
    json_decref(rr.output);
    json_decref(rr.error);
}
