/* engine.c - the engine's lifecycle, its shared in-process tables (live runs, roots of call
 * trees, running counts), publishing, and engine_execute, the door from the outside. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void engine_config_defaults(engine_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_call_depth = 32;
    cfg->max_descendants = 100000;
    cfg->max_steps = 10000;
    cfg->workers = 4;
    cfg->loop_runs = 256;
    cfg->retain_days = 30;
    cfg->lease_ms = 30000;
    cfg->max_attempts_on_interrupt = 3;
    cfg->def_limits.max_bytes = 1 << 20;
    cfg->def_limits.max_depth = 64;
    cfg->def_limits.max_tasks = 1000;
    cfg->max_input_bytes = 10 << 20;
    cfg->max_input_depth = 64;
    cfg->script_max_memory = (size_t)64 << 20;
    cfg->script_max_instructions = 100000000;
    cfg->http_connect_timeout_ms = 10000;
    cfg->http_low_speed_bytes = 1;
    cfg->http_low_speed_ms = 10000;
    cfg->http_max_idle_connections = 64;
}

/* Create an engine over STORE (borrowed). See engine.h. */
int engine_new(const engine_config_t *cfg, store_t *store, engine_t **out, err_t *err)
{
    engine_t *eng = XNEW(engine_t);
    if (cfg)
        eng->cfg = *cfg;
    else
        engine_config_defaults(&eng->cfg);
    if (eng->cfg.max_call_depth < 1 || eng->cfg.max_call_depth > ENGINE_MAX_CALL_DEPTH ||
        eng->cfg.max_steps < 1 || eng->cfg.max_descendants < 1 ||
        eng->cfg.workers < 1 || eng->cfg.workers > 1024 || eng->cfg.loop_runs < 0) {
        free(eng);
        return err_set(err, BR_EUSAGE, "engine settings out of range");
    }
    /* Announce this engine on the store at once, so another process recovering "every run
     * whose process is gone" never takes the sync runs this one is executing. */
    bool alone;
    int rc = store_engine_lock(store, &alone, err);
    if (rc < 0) {
        free(eng);
        return rc;
    }
    eng->store = store;
    if ((rc = outbound_init(eng, err)) < 0) {
        free(eng);
        return rc;
    }
    connections_init(eng);
    eng->reg = registry_new(store, &eng->cfg.def_limits);
    char host[64] = "host", id[UUID_STR_LEN];
    gethostname(host, sizeof host - 1);
    uuid_v7(id);
    snprintf(eng->owner, sizeof eng->owner, "%s:%d:%.8s", host, (int)getpid(), id + 28);
    pthread_mutex_init(&eng->live_mu, NULL);
    pthread_mutex_init(&eng->roots_mu, NULL);
    pthread_mutex_init(&eng->conc_mu, NULL);
    pthread_mutex_init(&eng->watch_mu, NULL);
    pthread_cond_init(&eng->watch_cv, NULL);
    eng->live = strmap_new();
    eng->roots = strmap_new();
    eng->running = strmap_new();
    *out = eng;
    return 0;
}

void engine_free(engine_t *eng)
{
    if (!eng)
        return;
    engine_stop(eng, 0);
    pthread_mutex_lock(&eng->watch_mu);
    bool joined = eng->watching;
    eng->watch_stop = true;
    pthread_cond_signal(&eng->watch_cv);
    pthread_mutex_unlock(&eng->watch_mu);
    if (joined)
        pthread_join(eng->watcher, NULL);
    pthread_mutex_destroy(&eng->watch_mu);
    pthread_cond_destroy(&eng->watch_cv);
    registry_free(eng->reg);
    connections_deinit(eng);
    outbound_deinit(eng);
    strmap_free(eng->live);
    strmap_free(eng->roots);
    strmap_free(eng->running);
    pthread_mutex_destroy(&eng->live_mu);
    pthread_mutex_destroy(&eng->roots_mu);
    pthread_mutex_destroy(&eng->conc_mu);
    free(eng);
}

store_t *engine_store(engine_t *eng)
{
    return eng->store;
}

const engine_config_t *engine_config(engine_t *eng)
{
    return &eng->cfg;
}

/* ---- live runs ------------------------------------------------------------------------------ */

void live_init(live_run_t *lr, const char *id)
{
    memset(lr, 0, sizeof *lr);
    memcpy(lr->id, id, UUID_STR_LEN);
    atomic_init(&lr->cancel, 0);
    pthread_mutex_init(&lr->mu, NULL);
    pthread_cond_init(&lr->cv, NULL);
    lr->status = RUN_RUNNING;
    lr->refs = 1;
}

void live_deinit(live_run_t *lr)
{
    pthread_mutex_destroy(&lr->mu);
    pthread_cond_destroy(&lr->cv);
}

live_run_t *live_register(engine_t *eng, const char *id)
{
    live_run_t *lr = xmalloc(sizeof *lr);
    live_init(lr, id);
    pthread_mutex_lock(&eng->live_mu);
    strmap_put(eng->live, id, lr);
    pthread_mutex_unlock(&eng->live_mu);
    return lr;
}

static void live_destroy(live_run_t *lr)
{
    json_decref(lr->output);
    json_decref(lr->error);
    live_deinit(lr);
    free(lr);
}

void live_finish(engine_t *eng, live_run_t *lr, run_status_t status, json_t *output,
                 json_t *error)
{
    pthread_mutex_lock(&eng->live_mu);
    strmap_del(eng->live, lr->id);
    pthread_mutex_unlock(&eng->live_mu);

    pthread_mutex_lock(&lr->mu);
    lr->status = status;
    lr->output = json_incref(output);
    lr->error = json_incref(error);
    pthread_cond_broadcast(&lr->cv);
    pthread_mutex_unlock(&lr->mu);
    live_release(eng, lr);
}

live_run_t *live_acquire(engine_t *eng, const char *id)
{
    pthread_mutex_lock(&eng->live_mu);
    live_run_t *lr = strmap_get(eng->live, id);
    if (lr)
        lr->refs++;
    pthread_mutex_unlock(&eng->live_mu);
    return lr;
}

bool live_snapshot(engine_t *eng, const char *id, int64_t until, run_status_t *status,
                   json_t **output, json_t **error)
{
    live_run_t *lr = live_acquire(eng, id);
    if (!lr)
        return false;
    pthread_mutex_lock(&lr->mu);
    while (!run_status_finished(lr->status) && clock_mono_ms() < until)
        cond_wait_until(&lr->cv, &lr->mu, until, 100);
    *status = lr->status;
    if (run_status_finished(lr->status)) {
        *output = json_incref(lr->output);
        *error = json_incref(lr->error);
    }
    pthread_mutex_unlock(&lr->mu);
    live_release(eng, lr);
    return true;
}

void live_release(engine_t *eng, live_run_t *lr)
{
    pthread_mutex_lock(&eng->live_mu);
    int left = --lr->refs;
    pthread_mutex_unlock(&eng->live_mu);
    if (left == 0)
        live_destroy(lr);
}

/* ---- cancellations asked elsewhere --------------------------------------------------------- */

void live_cancel_ids(engine_t *eng, const json_t *ids)
{
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        live_run_t *lr = live_acquire(eng, json_string_value(id));
        if (lr) {
            atomic_store(&lr->cancel, 1);
            live_release(eng, lr);
        }
    }
}

void engine_poll_cancellations(engine_t *eng)
{
    /* Runs claimed from the queue carry our owner; runs started here directly (roots of
     * `braid run`, later HTTP requests) carry none. */
    json_t *ids = NULL;
    if (store_cancel_requested(eng->store, eng->owner, &ids, NULL) == 0)
        live_cancel_ids(eng, ids);
    json_decref(ids);
    ids = NULL;
    if (store_cancel_requested(eng->store, NULL, &ids, NULL) == 0)
        live_cancel_ids(eng, ids);
    json_decref(ids);
}

#define WATCH_EVERY_MS 250

static void *watcher_main(void *arg)
{
    engine_t *eng = arg;
    pthread_mutex_lock(&eng->watch_mu);
    while (!eng->watch_stop) {
        cond_wait_until(&eng->watch_cv, &eng->watch_mu, NO_DEADLINE, WATCH_EVERY_MS);
        if (eng->watch_stop)
            break;
        pthread_mutex_lock(&eng->live_mu);
        bool any = strmap_count(eng->live) > 0;
        pthread_mutex_unlock(&eng->live_mu);
        if (!any)
            continue;
        pthread_mutex_unlock(&eng->watch_mu);
        engine_poll_cancellations(eng);
        pthread_mutex_lock(&eng->watch_mu);
    }
    pthread_mutex_unlock(&eng->watch_mu);
    return NULL;
}

void engine_watch_cancellations(engine_t *eng)
{
    pthread_mutex_lock(&eng->watch_mu);
    if (!eng->watching && !eng->watch_stop)
        eng->watching = pthread_create(&eng->watcher, NULL, watcher_main, eng) == 0;
    pthread_mutex_unlock(&eng->watch_mu);
}

/* ---- roots of call trees -------------------------------------------------------------------- */

/* The shared state of ROOT_ID's tree. A tree first seen here (an async child picked up from the
 * queue) starts from the store's count, so the descendant limit holds across processes and
 * restarts. The count is read before the state is published: a state visible to other threads
 * always carries its starting count, so no increment can be lost under it. */
root_state_t *root_acquire(engine_t *eng, const char *root_id, bool is_new)
{
    pthread_mutex_lock(&eng->roots_mu);
    root_state_t *rs = strmap_get(eng->roots, root_id);
    if (rs) {
        rs->refs++;
        pthread_mutex_unlock(&eng->roots_mu);
        return rs;
    }
    pthread_mutex_unlock(&eng->roots_mu);

    int64_t count = 0;
    if (!is_new && store_root_count(eng->store, root_id, &count, NULL) < 0)
        count = 0;
    pthread_mutex_lock(&eng->roots_mu);
    rs = strmap_get(eng->roots, root_id); /* another thread may have been quicker */
    if (!rs) {
        rs = XNEW(root_state_t);
        memcpy(rs->id, root_id, UUID_STR_LEN);
        atomic_init(&rs->descendants, count > 0 ? count - 1 : 0);
        strmap_put(eng->roots, root_id, rs);
    }
    rs->refs++;
    pthread_mutex_unlock(&eng->roots_mu);
    return rs;
}

void root_release(engine_t *eng, root_state_t *rs)
{
    if (!rs)
        return;
    pthread_mutex_lock(&eng->roots_mu);
    if (--rs->refs == 0) {
        strmap_del(eng->roots, rs->id);
        free(rs);
    }
    pthread_mutex_unlock(&eng->roots_mu);
}

/* ---- max_concurrency ------------------------------------------------------------------------ */

bool concurrency_enter(engine_t *eng, const char *name, int limit)
{
    pthread_mutex_lock(&eng->conc_mu);
    intptr_t n = (intptr_t)strmap_get(eng->running, name);
    bool ok = limit <= 0 || n < limit;
    if (ok)
        strmap_put(eng->running, name, (void *)(n + 1));
    pthread_mutex_unlock(&eng->conc_mu);
    return ok;
}

void concurrency_leave(engine_t *eng, const char *name)
{
    pthread_mutex_lock(&eng->conc_mu);
    intptr_t n = (intptr_t)strmap_get(eng->running, name);
    if (n <= 1)
        strmap_del(eng->running, name);
    else
        strmap_put(eng->running, name, (void *)(n - 1));
    pthread_mutex_unlock(&eng->conc_mu);
}

typedef struct full_ctx {
    engine_t *eng;
    json_t *names;
} full_ctx_t;

static void add_if_full(void *vctx, const char *name, void *value)
{
    full_ctx_t *fc = vctx;
    const definition_t *def;
    bool archived;
    if (registry_get(fc->eng->reg, name, 0, &def, &archived, NULL) == 0 && def->max_concurrency > 0 &&
        (intptr_t)value >= def->max_concurrency)
        json_array_append_new(fc->names, json_string(name));
}

json_t *concurrency_full(engine_t *eng)
{
    full_ctx_t fc = {eng, json_array()};
    pthread_mutex_lock(&eng->conc_mu);
    strmap_each(eng->running, add_if_full, &fc);
    pthread_mutex_unlock(&eng->conc_mu);
    return fc.names;
}

/* ---- outcomes and errors -------------------------------------------------------------------- */

json_t *error_new(const char *code, const char *message, json_t *detail)
{
    int known = err_code_by_name(code);
    json_t *e = json_object();
    json_object_set_new_nocheck(e, "code", jsonx_string_lossy(code));
    /* Messages may quote user data cut at a byte limit: keep them valid UTF-8. */
    json_object_set_new_nocheck(e, "message", jsonx_string_lossy(message ? message : ""));
    json_object_set_new_nocheck(e, "retryable", json_boolean(known ? err_retryable(known) : false));
    if (detail)
        json_object_set_new(e, "detail", detail);
    return e;
}

void outcome_init(outcome_t *o)
{
    memset(o, 0, sizeof *o);
    o->status = -1;
    o->jump = JUMP_NONE;
}

void outcome_deinit(outcome_t *o)
{
    json_decref(o->result);
    json_decref(o->error);
    json_decref(o->logs);
    o->result = o->error = o->logs = NULL;
}

void outcome_fail(outcome_t *o, const char *code, const char *message, json_t *detail)
{
    o->success = false;
    json_decref(o->error);
    o->error = error_new(code, message, detail);
}

void outcome_fail_err(outcome_t *o, err_t *err)
{
    json_t *detail = err->detail;
    err->detail = NULL;
    outcome_fail(o, err_name(err->code), err->msg, detail);
}

/* ---- publishing ----------------------------------------------------------------------------- */

/* The resolver's answers, CTX being the engine: what publish-time validation asks of the store
 * (through the engine's caches where it has them). */
static bool resolve_integration(void *ctx, const char *name)
{
    integration_version_t *iv = NULL;
    if (store_integration_get(((engine_t *)ctx)->store, name, 0, &iv, NULL) < 0)
        return false;
    bool ok = !iv->archived;
    integration_version_free(iv);
    return ok;
}

/* Borrowed from the engine's connector cache, which lives as long as the engine. */
static const struct connector *resolve_connector(void *ctx, const char *slug, int version)
{
    const struct connector *c = NULL;
    return connectors_get(ctx, slug, version, &c, NULL) == 0 ? c : NULL;
}

static char *resolve_connection(void *ctx, const char *id)
{
    connection_rec_t *rec = NULL;
    if (store_connection_get(((engine_t *)ctx)->store, id, &rec, NULL) < 0)
        return NULL;
    char *slug = xstrdup(rec->connector);
    connection_rec_free(rec);
    return slug;
}

/* The one resolver engine_publish and engine_validate check definitions with. */
static definition_resolver_t publish_resolver(engine_t *eng)
{
    definition_resolver_t r = {
        .ctx = eng,
        .integration_exists = resolve_integration,
        .connector_get = resolve_connector,
        .connection_connector = resolve_connection,
    };
    return r;
}

/* Warnings for every published caller whose `input` mapping into DEF no longer fits. */
static json_t *caller_warnings(engine_t *eng, const definition_t *def)
{
    json_t *warnings = json_array(), *names = NULL;
    if (!def->has_inputs || store_integration_list(eng->store, false, &names, NULL) != 0)
        return warnings;
    size_t i;
    json_t *entry;
    json_array_foreach(names, i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        const definition_t *caller;
        bool archived;
        if (!name || registry_get(eng->reg, name, 0, &caller, &archived, NULL) != 0)
            continue;
        for (int t = 0; t < caller->n_tasks; t++) {
            const task_t *task = &caller->tasks[t];
            if (task->type != TASK_CALL_INTEGRATION || task->u.call.payload_kind != PAYLOAD_INPUT ||
                !task->u.call.literal_target || strcmp(task->u.call.literal_target, def->name) != 0)
                continue;
            json_t *problems = definition_mapping_problems(def, task->u.call.input_keys);
            size_t j;
            json_t *p;
            json_array_foreach(problems, j, p)
            {
                json_array_append_new(
                    warnings, json_pack("{s:s, s:i, s:s, s:O}", "integration", caller->name,
                                        "version", caller->version, "task", task->id, "message", p));
            }
            json_decref(problems);
        }
    }
    json_decref(names);
    return warnings;
}

/* Validate TEXT and store it as the next version. See engine.h. */
int engine_publish(engine_t *eng, const char *text, size_t len, const char *name_hint,
                   json_t **result, diags_t *diags, err_t *err)
{
    definition_t *def = NULL;
    definition_resolver_t resolver = publish_resolver(eng);
    int rc = definition_load(text, len, name_hint, &eng->cfg.def_limits, &resolver, &def, diags);
    if (rc < 0)
        return err_set(err, BR_EINVALID_DEFINITION, "the definition is invalid (%d problems)",
                       diags->n);

    json_t *triggers = json_array();
    for (int i = 0; i < def->n_triggers; i++)
        json_array_append_new(triggers, json_string(def->triggers[i]));
    int version = 0;
    bool created = false;
    rc = store_integration_publish(eng->store, def->name, def->canonical, triggers, &version,
                                   &created, err);
    json_decref(triggers);
    if (rc < 0) {
        definition_free(def);
        return rc;
    }
    registry_invalidate(eng->reg);
    def->version = version;
    json_t *warnings = created ? caller_warnings(eng, def) : json_array();
    *result = json_pack("{s:s, s:i, s:b, s:o}", "name", def->name, "version", version, "created",
                        created, "warnings", warnings);
    definition_free(def);
    return 0;
}

int engine_archive(engine_t *eng, const char *name, err_t *err)
{
    int rc = store_integration_archive(eng->store, name, err);
    if (rc == 0)
        registry_invalidate(eng->reg);
    return rc;
}

int engine_validate(engine_t *eng, const char *text, size_t len, diags_t *diags)
{
    definition_t *def = NULL;
    definition_resolver_t resolver = publish_resolver(eng);
    int rc = definition_load(text, len, NULL, &eng->cfg.def_limits, &resolver, &def, diags);
    definition_free(def);
    return rc;
}

/* ---- calls from outside --------------------------------------------------------------------- */

void call_result_deinit(call_result_t *r)
{
    json_decref(r->output);
    json_decref(r->error);
    r->output = r->error = NULL;
}

/* {"run_id", "status", "scheduled_at"}: how an async call is answered, whoever made it. */
json_t *call_result_async_json(const call_result_t *res)
{
    char when[32];
    clock_format_rfc3339(res->scheduled_at, when, sizeof when);
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "run_id", json_stringn_nocheck(res->run_id, 36));
    json_object_set_new_nocheck(o, "status", json_string_nocheck(run_status_name(res->status)));
    json_object_set_new_nocheck(o, "scheduled_at", json_string_nocheck(when));
    return o;
}

/* The same answer written as JSON text to B: the bytes call_result_async_json dumps to. */
static void call_result_async_dump(buf_t *b, const call_result_t *res)
{
    char when[32];
    clock_format_rfc3339(res->scheduled_at, when, sizeof when);
    buf_puts(b, "{\"run_id\":\"");
    buf_append(b, res->run_id, 36);
    buf_puts(b, "\",\"status\":\"");
    buf_puts(b, run_status_name(res->status));
    buf_puts(b, "\",\"scheduled_at\":\"");
    buf_puts(b, when);
    buf_puts(b, "\"}");
}

static int execute_one(engine_t *eng, const exec_request_t *req, const char *name, json_t **out,
                       err_t *err)
{
    call_spec_t spec = {
        .target = name,
        .version = req->version,
        .mode = req->mode,
        .payload = req->payload,
        .context = req->context,
        .trigger = req->trigger ? req->trigger : "cli",
        .trigger_info = req->trigger_info,
        .idem_key = req->idempotency_key,
        .delay_ms = req->delay_ms,
        .caller_step = -1,
        .deadline = NO_DEADLINE,
        .durable = !req->ticket,
        .fixed_values = true,
        .on_started = req->on_started,
        .started_ctx = req->started_ctx,
    };
    json_t *record = NULL;
    spec.record.json = &record;
    spec.record.text = req->text ? &req->text->json : NULL;
    char scope[300];
    if (req->idempotency_key) {
        snprintf(scope, sizeof scope, "integration:%s", name);
        spec.idem_scope = scope;
    }
    call_result_t res = {0};
    int rc = engine_call(eng, &spec, &res, req->ticket != NULL, err);
    if (rc < 0) {
        json_decref(record);
        return rc;
    }
    if (req->ticket && res.ticket > *req->ticket)
        *req->ticket = res.ticket;
    if (req->text && (res.async || req->text->json.len > 0)) {
        /* the answer goes as text: *OUT stays NULL */
        req->text->async = res.async;
        memcpy(req->text->run_id, res.run_id, UUID_STR_LEN);
        if (res.async)
            call_result_async_dump(&req->text->json, &res);
    } else if (res.async) {
        *out = call_result_async_json(&res);
    } else if (record) {
        *out = record; /* the record as written: no need to read it back */
    } else {
        /* A repeated idempotency key: the first run, as the store has it. */
        run_rec_t *rec = NULL;
        rc = store_run_get(eng->store, res.run_id, &rec, err);
        if (rc == 0) {
            *out = run_rec_to_json(rec);
            run_rec_free(rec);
        }
    }
    call_result_deinit(&res);
    return rc;
}

/* Run REQ from outside the engine. See engine.h. */
int engine_execute(engine_t *eng, const exec_request_t *req, json_t **out, err_t *err)
{
    *out = NULL;
    if (req->ticket)
        *req->ticket = 0;
    engine_watch_cancellations(eng);
    if (!req->trigger_id) {
        if (!req->integration)
            return err_set(err, BR_EUSAGE, "no integration named");
        return execute_one(eng, req, req->integration, out, err);
    }
    json_t *names = NULL;
    int rc = registry_trigger_targets(eng->reg, req->trigger_id, &names, err);
    if (rc < 0)
        return rc;
    if (json_array_size(names) == 0) {
        json_decref(names);
        return err_set(err, BR_ENOT_FOUND, "no integration listens to trigger '%s'",
                       req->trigger_id);
    }
    json_t *runs = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        json_t *one = NULL;
        err_t e = {0};
        exec_request_t sub = *req;
        sub.trigger_id = NULL;
        sub.text = NULL; /* each record goes into the array as an object */
        sub.version = 0;
        if (execute_one(eng, &sub, json_string_value(n), &one, &e) < 0) {
            one = json_pack("{s:s, s:s, s:o}", "integration", json_string_value(n), "status",
                            "failed", "error", error_new(err_name(e.code), e.msg, e.detail));
            e.detail = NULL;
        } else {
            json_object_set_new(one, "integration", json_string(json_string_value(n)));
        }
        err_clear(&e);
        json_array_append_new(runs, one);
    }
    json_decref(names);
    *out = json_pack("{s:o}", "runs", runs);
    return 0;
}
