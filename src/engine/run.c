/* run.c - one run from start to end: the interpreter loop, retries, routing by outcome, the
 * step and run records it leaves in history.
 *
 * The loop runs tasks one after another on the calling thread. Each finished task leaves its
 * outcome at tasks.ID; `cases` (or a switch) pick the next task, else `next`. A failure that
 * nothing catches ends the run with that error. Between tasks the loop checks cancellation,
 * the run's deadline and max_steps. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/crash.h"
#include "core/fiber.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "net/http_loop.h"
#include "vault/scrub.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ROUTE_FAIL (-10)
#define STEP_RESULT_MAX (64 * 1024) /* bytes of a step's result kept in history */

bool run_cancelled(const run_ctx_t *ctx)
{
    for (const run_ctx_t *c = ctx; c; c = c->parent)
        if (atomic_load_explicit(&c->live->cancel, memory_order_relaxed))
            return true;
    return false;
}

void run_scope(const run_ctx_t *ctx, json_t *item, json_t *index, tmpl_scope_t *scope)
{
    memset(scope, 0, sizeof *scope);
    scope->vars = ctx->vars;
    scope->input = ctx->input;
    scope->tasks = ctx->tasks;
    scope->run = ctx->run;
    scope->item = item;
    scope->index = index;
}

void engine_map_outputs(json_t *vars, const output_map_t *maps, int n, json_t *from)
{
    for (int i = 0; i < n; i++) {
        json_t *v = maps[i].path[0] ? jsonx_get_path(from, maps[i].path) : from;
        jsonx_set_dotted(vars, maps[i].var, v ? jsonx_copy(v) : json_null());
    }
}

void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline, int64_t slice_ms)
{
    int64_t now = clock_mono_ms();
    int64_t until = now + slice_ms;
    if (deadline < until)
        until = deadline;
    if (until <= now)
        return;
    /* pthread_cond_timedwait takes CLOCK_REALTIME by default; a relative slice keeps the
     * arithmetic simple and a clock jump costs at most one slice. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (until - now) * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- retry ---------------------------------------------------------------------------------- */

static bool is_default_on(const retry_policy_t *p)
{
    static const char *def[] = {"timeout", "network", "5xx", "429"};
    if (p->n_on != 4)
        return false;
    for (int i = 0; i < 4; i++)
        if (strcmp(p->on[i], def[i]) != 0)
            return false;
    return true;
}

/* Whether ERROR is one the policy retries: its code or its status (exact or class) is listed;
 * under the default list, also any error that says it is retryable. */
static bool retry_matches(const retry_policy_t *p, const json_t *error)
{
    const char *code = json_string_value(json_object_get(error, "code"));
    json_int_t status = json_integer_value(json_object_get(error, "status"));
    char exact[24] = "", klass[24] = "";
    if (status > 0) {
        snprintf(exact, sizeof exact, "%lld", (long long)status);
        snprintf(klass, sizeof klass, "%dxx", (int)(status / 100));
    }
    for (int i = 0; i < p->n_on; i++) {
        if ((code && strcmp(p->on[i], code) == 0) || (status > 0 && strcmp(p->on[i], exact) == 0) ||
            (status > 0 && strcmp(p->on[i], klass) == 0))
            return true;
    }
    return is_default_on(p) && json_is_true(json_object_get(error, "retryable"));
}

static int64_t backoff_ms(const retry_policy_t *p, int attempt)
{
    double d = (double)p->initial_ms * pow(p->multiplier, attempt - 1);
    if (d > (double)p->max_ms)
        d = (double)p->max_ms;
    int64_t ms = (int64_t)d;
    if (p->jitter && ms > 1) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = 0;
        ms = ms / 2 + (int64_t)(r % (uint32_t)(ms / 2 + 1)); /* "equal jitter": half fixed */
    }
    return ms;
}

/* Sleep MS unless the run is cancelled or its deadline comes first. False when cut short. */
static bool pause_for(run_ctx_t *ctx, int64_t ms)
{
    int64_t until = clock_mono_ms() + ms;
    if (until >= ctx->deadline)
        return false;
    while (clock_mono_ms() < until) {
        if (run_cancelled(ctx))
            return false;
        int64_t left = until - clock_mono_ms();
        fiber_sleep_ms(left < 50 ? left : 50); /* a fiber gives its thread to others */
    }
    return true;
}

static void exec_attempt(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                         outcome_t *o)
{
    switch (t->type) {
    case TASK_CALL_INTEGRATION: task_call_exec(ctx, t, seq, attempt_deadline, o); break;
    case TASK_SET: task_set_exec(ctx, t, o); break;
    case TASK_SWITCH: task_switch_exec(ctx, t, o); break;
    case TASK_AWAIT: task_await_exec(ctx, t, attempt_deadline, o); break;
    case TASK_FAIL: task_fail_exec(ctx, t, o); break;
    case TASK_SCRIPT: task_script_exec(ctx, t, seq, attempt_deadline, o); break;
    case TASK_HTTP: task_http_exec(ctx, t, seq, attempt_deadline, o); break;
    case TASK_CONNECTOR: task_connector_exec(ctx, t, seq, attempt_deadline, o); break;
    }
}

/* Run task T with its retry policy; fills O and *ATTEMPTS. */
static void exec_task(run_ctx_t *ctx, const task_t *t, int seq, outcome_t *o, int *attempts)
{
    const retry_policy_t *p = &t->retry;
    for (*attempts = 1;; (*attempts)++) {
        int64_t attempt_deadline = ctx->deadline;
        if (t->timeout_ms > 0 && clock_mono_ms() + t->timeout_ms < attempt_deadline)
            attempt_deadline = clock_mono_ms() + t->timeout_ms;
        outcome_init(o);
        exec_attempt(ctx, t, seq, attempt_deadline, o);
        if (o->success || o->no_retry || *attempts >= p->max_attempts ||
            !retry_matches(p, o->error) || run_cancelled(ctx))
            return;
        run_announce(ctx); /* the run waits now: history shows it (see must_announce) */
        if (!pause_for(ctx, backoff_ms(p, *attempts)))
            return;
        outcome_deinit(o);
    }
}

/* ---- routing -------------------------------------------------------------------------------- */

static int case_target(const task_t *t, const char *outcome)
{
    for (int i = 0; i < t->n_cases; i++)
        if (strcmp(t->cases[i].outcome, outcome) == 0)
            return t->cases[i].target;
    return ROUTE_FAIL;
}

/* The next task after T given outcome O: cases (most specific first), then next; ROUTE_FAIL
 * when a failure is not caught. */
static int route(const task_t *t, const outcome_t *o)
{
    if (t->type == TASK_SWITCH && o->success && o->jump != JUMP_NONE)
        return o->jump;
    if (t->n_cases > 0) {
        int target;
        if (!o->success) {
            const char *code = json_string_value(json_object_get(o->error, "code"));
            if (code && (target = case_target(t, code)) != ROUTE_FAIL)
                return target;
        }
        if (o->status >= 0) {
            char s[16];
            snprintf(s, sizeof s, "%d", o->status);
            if ((target = case_target(t, s)) != ROUTE_FAIL)
                return target;
            snprintf(s, sizeof s, "%dxx", o->status / 100);
            if ((target = case_target(t, s)) != ROUTE_FAIL)
                return target;
        }
        if ((target = case_target(t, o->success ? "success" : "failure")) != ROUTE_FAIL)
            return target;
    }
    if (!o->success && !t->continue_on_error)
        return ROUTE_FAIL;
    return t->next;
}

/* ---- records -------------------------------------------------------------------------------- */

/* tasks.ID: built member by member (json_pack parses its format and re-checks every string
 * as UTF-8 on each call, which shows up in the sub-call profile). */
static json_t *outcome_json(const task_t *t, const outcome_t *o, int attempts, int64_t duration)
{
    json_t *v = json_object();
    json_object_set_new_nocheck(v, "success", json_boolean(o->success));
    json_object_set_nocheck(v, "result", o->result ? o->result : json_null());
    json_object_set_nocheck(v, "error", o->error ? o->error : json_null());
    json_object_set_new_nocheck(v, "attempts", json_integer(attempts));
    json_object_set_new_nocheck(v, "duration_ms", json_integer(duration));
    if (o->status >= 0)
        json_object_set_new_nocheck(v, "status", json_integer(o->status));
    if (t->type == TASK_CALL_INTEGRATION && o->run_id[0])
        json_object_set_new_nocheck(v, "run_id", json_stringn_nocheck(o->run_id, 36));
    if (o->logs)
        json_object_set_nocheck(v, "logs", o->logs);
    return v;
}

static void put_step(run_ctx_t *ctx, const task_t *t, int seq, const outcome_t *o, int attempts,
                     int64_t started_at, int64_t duration)
{
    step_rec_t s = {0};
    memcpy(s.run_id, ctx->rec->id, UUID_STR_LEN);
    s.attempt = ctx->rec->attempt;
    s.seq = seq;
    s.task_id = t->id;
    s.type = (char *)task_type_name(t->type);
    s.status = (char *)(o->success ? "succeeded" : "failed");
    s.task_attempt = attempts;
    s.started_at = started_at;
    s.duration_ms = duration;
    /* History keeps at most STEP_RESULT_MAX of a result and says when it cut (SPEC §8); the
     * run itself saw the whole value. */
    json_t *kept;
    if (o->logs) {
        /* A script's step keeps its log lines next to its result: {"result", "logs"}. */
        json_t *both = json_object();
        json_object_set_nocheck(both, "result", o->result ? o->result : json_null());
        json_object_set_nocheck(both, "logs", o->logs);
        kept = jsonx_cut(both, STEP_RESULT_MAX);
        json_decref(both);
    } else {
        kept = jsonx_cut(o->result, STEP_RESULT_MAX);
    }
    s.result = kept;
    s.error = o->error;
    json_t *clean_error = NULL;
    if (ctx->scrub) {
        /* Results of http and connector tasks were scrubbed where they arose; this catches
         * whatever else a secret could have reached (a later task echoing vars, say). */
        s.result = scrub_json(ctx->scrub, kept);
        json_decref(kept);
        kept = s.result;
        s.error = clean_error = o->error ? scrub_json(ctx->scrub, o->error) : NULL;
    }
    if (ctx->announced)
        store_step_put(ctx->eng->store, &s);
    else /* nobody can see the run yet: its step goes with its record (see announce) */
        store_run_hold_step(ctx->rec, &s);
    json_decref(kept);
    json_decref(clean_error);
}

/* Errors made in this run name the task and the run; a child's error keeps its own. */
static void stamp_error(run_ctx_t *ctx, const task_t *t, json_t *error)
{
    if (!error || json_object_get(error, "run_id"))
        return;
    json_object_set_new(error, "task", json_string(t->id));
    json_object_set_new(error, "run_id", json_string(ctx->rec->id));
}

static json_t *run_error(run_ctx_t *ctx, const char *code, const char *message, const char *task)
{
    json_t *e = error_new(code, message, NULL);
    if (task)
        json_object_set_new(e, "task", json_string(task));
    json_object_set_new(e, "run_id", json_string(ctx->rec->id));
    return e;
}

/* The run's output once it succeeded: `outputs` as a list of vars or an object of templates,
 * else the final vars. NULL with *ERROR set when a template fails. */
static json_t *run_output(run_ctx_t *ctx, json_t **error)
{
    const definition_t *def = ctx->def;
    if (!def->has_outputs)
        return json_incref(ctx->vars);
    if (def->outputs_tmpl) {
        tmpl_scope_t scope;
        run_scope(ctx, NULL, NULL, &scope);
        err_t e = {0};
        json_t *out = template_render(def->outputs_tmpl, &scope, &e);
        if (!out) {
            *error = run_error(ctx, err_name(e.code), e.msg, NULL);
            err_clear(&e);
        }
        return out;
    }
    json_t *out = json_object();
    for (int i = 0; i < def->n_output_vars; i++) {
        json_t *v = json_object_get(ctx->vars, def->output_vars[i]);
        json_object_set(out, def->output_vars[i], v ? v : json_null());
    }
    return out;
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* When a run's record is written. A run nobody has been told of yet (a sync root started
 * here, a sync child) is written only before its first task that can take time (an http or
 * connector task, a script, an await, a call that does more than run its children one by one
 * on this thread) or before it waits to retry a task. Until then nobody can see the run, so its steps are held in its record
 * (store_run_hold_step) and the final records of its sync children wait with it (deferred):
 * a short root and its short children cost one row each, written at the root's end, in one
 * batch and parents first. A child that must be written first writes its callers first
 * (run_announce), so history never holds a run without its parent.
 *
 * Roots whose caller hands out their id before they end (wait_ms) and claimed async runs
 * are written before they start. A run that was never written and dies with its process
 * simply never existed: its caller got no answer (SPEC §8 commits before answering).
 *
 * A run is written anyway once it holds STEPS_HOLD_MAX steps or STEPS_HOLD_BYTES of them
 * (must_announce), or DEFERRED_MAX records of runs below it (defer_to_parent), so what waits
 * in memory stays of a sane size. */
#define STEPS_HOLD_MAX 64
#define STEPS_HOLD_BYTES (256 * 1024)
#define DEFERRED_MAX 64

/* Queue REC (CTX's own record), then the records deferred on CTX, in order. Returns the last
 * ticket. */
static uint64_t put_with_deferred(run_ctx_t *ctx, const run_rec_t *rec)
{
    uint64_t ticket = store_run_put(ctx->eng->store, rec);
    for (int i = 0; i < ctx->n_deferred; i++) {
        ticket = store_run_put(ctx->eng->store, ctx->deferred[i]);
        run_rec_free(ctx->deferred[i]);
    }
    ctx->n_deferred = 0;
    return ticket;
}

/* See engine_internal.h. Callers up the chain share this thread: a call that would run
 * children on other threads (a parallel for_each) has its caller written before it starts. */
void run_announce(run_ctx_t *ctx)
{
    if (ctx->announced)
        return;
    if (ctx->parent)
        run_announce(ctx->parent);
    ctx->announced = true;
    put_with_deferred(ctx, ctx->rec);
}

/* CTX ended while its caller PARENT is not written: PARENT takes CTX's record (REC) and the
 * records deferred on CTX, to write them after its own. */
static void defer_to_parent(run_ctx_t *parent, run_ctx_t *ctx, run_rec_t *rec)
{
    int need = parent->n_deferred + 1 + ctx->n_deferred;
    if (need > parent->cap_deferred) {
        parent->cap_deferred = need > 2 * parent->cap_deferred ? need : 2 * parent->cap_deferred;
        parent->deferred =
            xrealloc(parent->deferred, (size_t)parent->cap_deferred * sizeof *parent->deferred);
    }
    parent->deferred[parent->n_deferred++] = rec;
    for (int i = 0; i < ctx->n_deferred; i++)
        parent->deferred[parent->n_deferred++] = ctx->deferred[i];
    ctx->n_deferred = 0;
    if (parent->n_deferred >= DEFERRED_MAX)
        run_announce(parent);
}

/* Whether call task C only runs its children one after another on this thread, writing
 * nothing of its own first: no delay, no idempotency key, not async, not a parallel for_each.
 * A target that turns out to run async writes its caller itself (engine_call). */
static bool call_runs_inline(const call_task_t *c)
{
    return !c->delay_ms && !c->idempotency_key && c->strategy != STRATEGY_ASYNC &&
           !(c->for_each && c->parallelism > 1);
}

/* Whether the run must be written before task T starts. */
static bool must_announce(const run_ctx_t *ctx, const task_t *t)
{
    if (ctx->step_seq >= STEPS_HOLD_MAX || ctx->rec->steps.len >= STEPS_HOLD_BYTES)
        return true;
    switch (t->type) {
    case TASK_SET:
    case TASK_SWITCH:
    case TASK_FAIL: return false;
    case TASK_CALL_INTEGRATION: return !call_runs_inline(&t->u.call);
    default: return true; /* it can take time */
    }
}

static void interpret(run_ctx_t *ctx, run_result_t *res)
{
    const definition_t *def = ctx->def;
    const engine_config_t *cfg = &ctx->eng->cfg;
    const char *last_task = NULL;
    int pc = 0;

    while (pc != TASK_END) {
        if (run_cancelled(ctx)) {
            res->status = RUN_CANCELLED;
            res->error = run_error(ctx, "cancelled", "the run was cancelled", last_task);
            return;
        }
        if (clock_mono_ms() >= ctx->deadline) {
            res->status = RUN_FAILED;
            res->error = run_error(ctx, "timeout", "the run passed its deadline", last_task);
            return;
        }
        http_loop_share(); /* on the outbound loop, a long run of tasks lets the others run */
        if (++ctx->steps > cfg->max_steps) {
            char msg[128];
            snprintf(msg, sizeof msg, "the run passed max_steps (%d task executions)",
                     cfg->max_steps);
            res->status = RUN_FAILED;
            res->error = run_error(ctx, "step_limit", msg, def->tasks[pc].id);
            return;
        }
        const task_t *t = &def->tasks[pc];
        last_task = t->id;
        if (!ctx->announced && must_announce(ctx, t))
            run_announce(ctx);
        int seq = ctx->step_seq++;
        int64_t started_at = clock_now_ms(), t0 = clock_mono_ms();
        outcome_t o;
        int attempts;
        exec_task(ctx, t, seq, &o, &attempts);
        int64_t duration = clock_mono_ms() - t0;
        stamp_error(ctx, t, o.error);

        if (ctx->tasks) /* task ids were checked when the definition was compiled */
            json_object_set_new_nocheck(ctx->tasks, t->id,
                                        outcome_json(t, &o, attempts, duration));
        put_step(ctx, t, seq, &o, attempts, started_at, duration);

        int next = route(t, &o);
        if (next == ROUTE_FAIL) {
            /* A child cancelled with us may be seen before our own flag arrives from the
             * process that asked: look once more before calling this a plain failure. */
            const char *code = json_string_value(json_object_get(o.error, "code"));
            if (code && strcmp(code, "cancelled") == 0 && !run_cancelled(ctx))
                engine_poll_cancellations(ctx->eng);
            if (run_cancelled(ctx)) {
                res->status = RUN_CANCELLED;
                res->error = run_error(ctx, "cancelled", "the run was cancelled", t->id);
            } else {
                res->status = RUN_FAILED;
                res->error = jsonx_copy(o.error);
            }
            outcome_deinit(&o);
            return;
        }
        outcome_deinit(&o);
        pc = next;
    }
    json_t *error = NULL;
    json_t *output = run_output(ctx, &error);
    if (!output) {
        res->status = RUN_FAILED;
        res->error = error;
        return;
    }
    res->status = RUN_SUCCEEDED;
    res->output = output;
}

/* The `run` template root. Names and ids were validated when the run was made. */
static json_t *run_object(const run_rec_t *rec)
{
    json_t *r = json_object();
    json_object_set_new_nocheck(r, "id", json_stringn_nocheck(rec->id, 36));
    json_object_set_new_nocheck(r, "integration", json_string_nocheck(rec->integration));
    json_object_set_new_nocheck(r, "version", json_integer(rec->version));
    json_object_set_new_nocheck(r, "root_id", json_stringn_nocheck(rec->root_id, 36));
    json_object_set_new_nocheck(r, "parent_id", rec->parent_id[0]
                                                    ? json_stringn_nocheck(rec->parent_id, 36)
                                                    : json_null());
    json_object_set_new_nocheck(r, "depth", json_integer(rec->depth));
    json_object_set_new_nocheck(r, "attempt", json_integer(rec->attempt));
    return r;
}

/* One structured line per finished run: ids, status, duration and the error's code — never
 * input, output or messages, which may carry what the run was given. */
static void log_finished(const run_rec_t *rec)
{
    json_t *f = json_object();
    json_object_set_new_nocheck(f, "run_id", json_stringn_nocheck(rec->id, 36));
    json_object_set_new_nocheck(f, "integration", json_string_nocheck(rec->integration));
    json_object_set_new_nocheck(f, "version", json_integer(rec->version));
    json_object_set_new_nocheck(f, "status", json_string_nocheck(run_status_name(rec->status)));
    json_object_set_new_nocheck(f, "duration_ms",
                                json_integer(rec->finished_at - rec->started_at));
    json_object_set_new_nocheck(f, "root_id", json_stringn_nocheck(rec->root_id, 36));
    if (rec->parent_id[0])
        json_object_set_new_nocheck(f, "parent_id", json_stringn_nocheck(rec->parent_id, 36));
    json_object_set_new_nocheck(f, "trigger", json_string_nocheck(rec->trigger));
    json_t *code = json_object_get(rec->error, "code");
    if (json_is_string(code))
        json_object_set_new_nocheck(f, "error_code", json_copy(code));
    log_event(LOG_INFO, "run finished", f);
}

/* Execute one run to its end on this thread. See engine_internal.h. */
void run_execute(engine_t *eng, const definition_t *def, run_rec_t *rec, json_t *vars,
                 run_ctx_t *parent, int64_t deadline, root_state_t *root, run_result_t *out,
                 const record_out_t *record)
{
    /* Only the template roots the definition reads are built: most small integrations read
     * vars alone, and each of these objects costs a handful of allocations per run. */
    run_ctx_t ctx = {
        .eng = eng,
        .def = def,
        .rec = rec,
        .vars = vars,
        .tasks = def->roots_used & TMPL_TASKS ? json_object() : NULL,
        .run = def->roots_used & TMPL_RUN ? run_object(rec) : NULL,
        .input = def->roots_used & TMPL_INPUT ? run_input_context(rec->integration, rec->input)
                                              : NULL,
        .deadline = deadline,
        .root = root,
        .parent = parent,
    };
    /* A sync child needs no entry in the live table: it is reachable only through its caller,
     * which cancels it through the parent chain, and nobody can await it before it ends. */
    live_run_t local;
    if (parent) {
        live_init(&local, rec->id);
        ctx.live = &local;
    } else {
        ctx.live = live_register(eng, rec->id);
    }
    /* A claimed run's record says running already (its claim wrote it), as does that of a
     * root whose caller wrote it before handing out its id. Any other run is written when it
     * first must be (run_announce). */
    ctx.announced = rec->status == RUN_RUNNING;
    rec->status = RUN_RUNNING;
    if (!rec->started_at)
        rec->started_at = clock_now_ms();
    metrics_run_started(rec->integration);

    run_result_t res = {RUN_FAILED, NULL, NULL, 0};
    const char *outer_run = crash_current_run();
    crash_set_run(rec->id);
    interpret(&ctx, &res);
    crash_set_run(outer_run);

    if (ctx.scrub) {
        json_t *clean = res.output ? scrub_json(ctx.scrub, res.output) : NULL;
        json_decref(res.output);
        res.output = clean;
        clean = res.error ? scrub_json(ctx.scrub, res.error) : NULL;
        json_decref(res.error);
        res.error = clean;
        scrub_free(ctx.scrub);
    }
    rec->status = res.status;
    json_decref(rec->output);
    json_decref(rec->error);
    rec->output = json_incref(res.output);
    rec->error = json_incref(res.error);
    rec->finished_at = clock_now_ms();
    bool defer = parent && !parent->announced;
    if (!defer)
        res.ticket = put_with_deferred(&ctx, rec);
    metrics_run_finished(rec->integration, run_status_name(rec->status),
                         rec->finished_at - rec->started_at);
    if (eng->cfg.log_runs)
        log_finished(rec);
    if (parent)
        live_deinit(&local);
    else
        live_finish(eng, ctx.live, res.status, res.output, res.error);

    json_decref(ctx.tasks);
    json_decref(ctx.run);
    json_decref(ctx.input);
    json_decref(ctx.vars);
    if (record && record->text)
        run_rec_dump(record->text, rec);
    else if (record && record->json)
        *record->json = run_rec_to_json(rec);
    if (defer)
        defer_to_parent(parent, &ctx, rec);
    else
        run_rec_free(rec);
    free(ctx.deferred);
    *out = res;
}
