/* task_script.c - the script task (SPEC §6): runs the task's Lua in the sandbox of
 * src/script/, with `callint` wired to engine_call exactly as call_integration calls: the same
 * checks (archived, callers, depth, descendants, concurrency, inputs), the same history
 * (children of this run, trigger "callint", the calling task and step), the same deadline. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "script/script.h"

#include <stdio.h>
#include <string.h>

typedef struct script_call {
    run_ctx_t *ctx;
    const task_t *t;
    int seq;
    int64_t deadline;
} script_call_t;

static int host_callint(void *p, const char *target, const json_t *payload, const json_t *context,
                        script_mode_t mode, json_t **out, json_t **error)
{
    script_call_t *sc = p;
    call_spec_t spec = {
        .target = target,
        .mode = mode == SCRIPT_MODE_SYNC    ? EXEC_SYNC
                : mode == SCRIPT_MODE_ASYNC ? EXEC_ASYNC
                                            : EXEC_DEFAULT,
        .payload = payload,
        .context = context,
        .trigger = "callint",
        .caller = sc->ctx,
        .caller_task = sc->t->id,
        .caller_step = sc->seq,
        .deadline = sc->deadline,
    };
    call_result_t res = {0};
    err_t err = {0};
    /* Not deferred: an async child is committed before callint returns its run id. */
    if (engine_call(sc->ctx->eng, &spec, &res, false, &err) < 0) {
        *error = error_new(err_name(err.code), err.msg, err.detail);
        err.detail = NULL;
        err_clear(&err);
        call_result_deinit(&res);
        return -1;
    }
    int rc = 0;
    if (res.async) {
        *out = call_result_async_json(&res);
    } else if (res.status != RUN_SUCCEEDED) {
        *error = res.error ? jsonx_copy(res.error)
                           : error_new("internal", "the child failed without an error", NULL);
        if (!json_object_get(*error, "run_id"))
            json_object_set_new(*error, "run_id", json_string(res.run_id));
        rc = -1;
    } else {
        *out = res.output ? json_incref(res.output) : json_null();
    }
    call_result_deinit(&res);
    return rc;
}

static int host_should_stop(void *p)
{
    script_call_t *sc = p;
    if (run_cancelled(sc->ctx))
        return BR_ECANCELLED;
    if (clock_mono_ms() >= sc->deadline)
        return BR_ETIMEOUT;
    return 0;
}

/* Execute one attempt of script task T. See engine_internal.h. */
void task_script_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                      outcome_t *out)
{
    script_call_t sc = {.ctx = ctx, .t = t, .seq = seq, .deadline = attempt_deadline};
    script_host_t host = {.ctx = &sc, .callint = host_callint, .should_stop = host_should_stop};
    script_env_t env = {
        .max_memory = ctx->eng->cfg.script_max_memory,
        .max_instructions = ctx->eng->cfg.script_max_instructions,
        .host = &host,
    };
    script_out_t so;
    err_t err = {0};
    /* The script sees only vars and the input context: no secrets, no connections. */
    int rc = script_run(&env, t->u.script.source, t->u.script.len, ctx->vars, ctx->input, &so,
                        &err);
    out->logs = so.logs;
    so.logs = NULL;
    if (rc == 0) {
        json_decref(ctx->vars);
        ctx->vars = so.vars;
        so.vars = NULL;
        out->success = true;
        out->result = so.result;
        so.result = NULL;
    } else if (so.error) {
        /* An ERROR table the script let through: a callint failure keeps the child's error
         * (code, message, run_id); error({code = ...}) raises the script's own code. */
        out->error = so.error;
        so.error = NULL;
        if (!json_is_string(json_object_get(out->error, "message")))
            json_object_set_new(out->error, "message", json_string(err.msg));
        if (!json_object_get(out->error, "retryable"))
            json_object_set_new(out->error, "retryable", json_false());
    } else {
        outcome_fail_err(out, &err);
    }
    script_out_deinit(&so);
    err_clear(&err);
}
