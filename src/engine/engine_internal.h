/* engine_internal.h - what the engine's files share and nothing outside engine/ may see:
 * the engine struct, the per-run context the interpreter works in, task outcomes, live runs,
 * and the one internal call path every way in ends in. */
#ifndef BRAID_ENGINE_INTERNAL_H
#define BRAID_ENGINE_INTERNAL_H

#include "core/strmap.h"
#include "core/template.h"
#include "engine/engine.h"

#include <pthread.h>
#include <stdatomic.h>

#define NO_DEADLINE INT64_MAX

/* ---- registry: compiled definitions by (name, version) ---------------------------------- */

typedef struct registry registry_t;

registry_t *registry_new(store_t *st, const definition_limits_t *limits);
void registry_free(registry_t *reg);
/* The compiled definition of NAME at VERSION (0 = latest), borrowed for the engine's life.
 * *ARCHIVED tells whether NAME is archived. BR_ENOT_FOUND / BR_EVERSION_NOT_FOUND. */
int registry_get(registry_t *reg, const char *name, int version, const definition_t **out,
                 bool *archived, err_t *err);
/* Names behind API trigger TRIGGER_ID (array of strings, owned). */
int registry_trigger_targets(registry_t *reg, const char *trigger_id, json_t **out, err_t *err);
/* Forget cached "latest" answers (after a publish or archive in this process). */
void registry_invalidate(registry_t *reg);
/* What DEF may wait for (engine_waits), remembered while DEF is NAME's latest version and the
 * catalog does not change: -1 when not known, else an exec_waits_t. */
int registry_waits(registry_t *reg, const char *name, const definition_t *def);
/* Remember VALUE for NAME's latest version, when DEF still is that version. */
void registry_remember_waits(registry_t *reg, const char *name, const definition_t *def,
                             exec_waits_t value);

/* ---- connectors and connections (connections.c) ------------------------------------------ */

struct connector;

void connections_init(engine_t *eng);
void connections_deinit(engine_t *eng);

/* The compiled connector SLUG at VERSION (0 = latest), cached for the engine's life (a
 * version never changes). Borrowed. BR_ENOT_FOUND / BR_EVERSION_NOT_FOUND. */
int connectors_get(engine_t *eng, const char *slug, int version, const struct connector **out,
                   err_t *err);

/* A connection opened for one task: its config and its secrets decrypted. The secret strings
 * are wiped when closed; nobody may keep a reference to them. */
typedef struct opened_connection {
    char *connector; /* slug (owned) */
    json_t *conn;    /* the config object (owned): the `conn` template root */
    json_t *secret;  /* name -> value strings (owned): the `secret` template root */
} opened_connection_t;

/* Open connection ID: BR_ECONNECTION_NOT_FOUND, or BR_ESECRET_UNREADABLE when a sealed value
 * fails to open (altered, another key) -- the message names the secret, never its value. */
int connection_open(engine_t *eng, const char *id, opened_connection_t *out, err_t *err);
/* Wipe the secret values and free. NULL-safe members. */
void connection_close(opened_connection_t *oc);

/* ---- outbound requests (task_http.c) --------------------------------------------------------- */

/* Build the outbound client from the engine's settings (--allow-net ranges). */
int outbound_init(engine_t *eng, err_t *err);
void outbound_deinit(engine_t *eng);

/* ---- live runs: runs executing in this process ------------------------------------------- */

typedef struct live_run {
    char id[UUID_STR_LEN];
    atomic_int cancel; /* set to cancel: the interpreter checks it between steps and in waits */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    run_status_t status; /* under mu */
    json_t *output;      /* under mu; owned; set when finished */
    json_t *error;       /* under mu; owned */
    int refs;            /* under the engine's live_mu */
} live_run_t;

/* Per root: descendants started so far, shared by every run of the tree in this process. */
typedef struct root_state {
    char id[UUID_STR_LEN];
    atomic_llong descendants;
    int refs; /* under the engine's roots_mu */
} root_state_t;

typedef struct scheduler scheduler_t;

struct engine {
    engine_config_t cfg;
    store_t *store;
    registry_t *reg;
    char owner[96]; /* this process in leases: host:pid:random */

    pthread_mutex_t live_mu;
    strmap_t *live; /* run id -> live_run_t */

    pthread_mutex_t roots_mu;
    strmap_t *roots; /* root id -> root_state_t */

    pthread_mutex_t conc_mu;
    strmap_t *running; /* integration name -> (intptr_t) runs executing here */

    scheduler_t *sched; /* NULL until engine_start */

    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
    pthread_t watcher;   /* polls the store for cancellations asked by other processes */
    bool watching;       /* under watch_mu */
    bool watch_stop;     /* under watch_mu */

    /* connections.c: compiled connectors and the master key, loaded on first use */
    pthread_mutex_t conn_mu;
    strmap_t *connectors;   /* "slug@version" -> connector_t * (owned) */
    struct secret_key *key; /* NULL until a secret is first sealed or opened */

    struct http_client *http; /* task_http.c: the outbound client (guard, keep-alive pool) */
    struct http_loop *loop;   /* task_http.c: the outbound loop; its thread starts on first use */
};

/* Set the cancel flag of every run executing here whose cancellation another process asked
 * for (in the store). Cheap: one indexed read of running rows. */
void engine_poll_cancellations(engine_t *eng);
/* Start the watcher thread once (it calls engine_poll_cancellations every 250 ms). */
void engine_watch_cancellations(engine_t *eng);

live_run_t *live_register(engine_t *eng, const char *id);
/* A live run in the caller's storage, not in the table (for sync children). */
void live_init(live_run_t *lr, const char *id);
void live_deinit(live_run_t *lr);
/* Record the final state, wake waiters and drop the registration. OUTPUT/ERROR borrowed. */
void live_finish(engine_t *eng, live_run_t *lr, run_status_t status, json_t *output,
                 json_t *error);
/* A counted reference to the live run ID, or NULL when it is not executing here. */
live_run_t *live_acquire(engine_t *eng, const char *id);
/* When run ID executes here: wait until it finishes or UNTIL (monotonic ms; 0 = no wait), then
 * fill *STATUS and, once finished, *OUTPUT and *ERROR (new references) and return true.
 * False when it does not execute here (ask the store). */
bool live_snapshot(engine_t *eng, const char *id, int64_t until, run_status_t *status,
                   json_t **output, json_t **error);
/* Set the cancel flag of each run of IDS (array of ids) that executes here. */
void live_cancel_ids(engine_t *eng, const json_t *ids);
void live_release(engine_t *eng, live_run_t *lr);

root_state_t *root_acquire(engine_t *eng, const char *root_id, bool is_new);
void root_release(engine_t *eng, root_state_t *rs);

/* Count a run of NAME as executing here; false when that would pass LIMIT (0 = none). */
bool concurrency_enter(engine_t *eng, const char *name, int limit);
void concurrency_leave(engine_t *eng, const char *name);
/* Names at their max_concurrency here (array, owned) for the claim's exclude list. */
json_t *concurrency_full(engine_t *eng);

/* ---- runs and the interpreter ------------------------------------------------------------ */

typedef struct run_ctx run_ctx_t;

struct run_ctx {
    engine_t *eng;
    const definition_t *def;
    run_rec_t *rec; /* owned */
    json_t *vars;   /* owned */
    json_t *tasks;  /* owned: task id -> outcome; NULL when no template reads `tasks` */
    json_t *run;    /* owned: the `run` root; NULL when no template reads it */
    json_t *input;  /* owned: the whole input context; NULL when no template reads it */
    int64_t deadline; /* monotonic ms; NO_DEADLINE when none */
    int steps;        /* task executions so far */
    int step_seq;     /* next step sequence number */
    live_run_t *live;
    root_state_t *root;
    run_ctx_t *parent; /* the sync caller, when this run executes inline in it */
    bool announced;    /* the running record has been written (see run_announce) */
    /* Final records of sync runs below this one that ended while it was not announced: they
     * go to the store right after this run's own record, so history never shows a run whose
     * parent it does not have. Parents before their children; owned. */
    run_rec_t **deferred;
    int n_deferred, cap_deferred;
    struct scrub *scrub; /* secret values this run used (owned); NULL until it uses one */
    char trace_id[33];   /* W3C trace id of the call tree; "" until first needed */
};

typedef struct outcome {
    bool success;
    json_t *result; /* owned, may be NULL (= null) */
    json_t *error;  /* owned ERROR or NULL */
    int status;     /* HTTP status for http/connector; -1 otherwise */
    char run_id[UUID_STR_LEN]; /* single call_integration; "" otherwise */
    int jump;       /* switch: task index, TASK_END, or JUMP_NONE */
    json_t *logs;   /* script: the lines log() wrote (owned), else NULL */
    bool no_retry;  /* the attempt must not be repeated (a POST without the task's own retry) */
} outcome_t;

#define JUMP_NONE (-3)

void outcome_init(outcome_t *o);
void outcome_deinit(outcome_t *o);
/* Make O a failure with a new ERROR {code, message} (+ detail, taken) for task TASK_ID. */
void outcome_fail(outcome_t *o, const char *code, const char *message, json_t *detail);
/* Make O a failure from ERR (its code, message and detail, which is moved). */
void outcome_fail_err(outcome_t *o, err_t *err);

/* A new ERROR object: {"code", "message", "retryable"} plus detail when not NULL (taken). */
json_t *error_new(const char *code, const char *message, json_t *detail);

/* Set each mapping's var in VARS to the value at its path in FROM (null when absent). */
void engine_map_outputs(json_t *vars, const output_map_t *maps, int n, json_t *from);

/* Whether RUN_CTX (or a sync caller above it) was cancelled. */
bool run_cancelled(const run_ctx_t *ctx);
/* The template scope of CTX with ITEM and INDEX (borrowed, may be NULL). */
void run_scope(const run_ctx_t *ctx, json_t *item, json_t *index, tmpl_scope_t *scope);
/* Wait on COND/MU until woken, DEADLINE (monotonic ms) or at most SLICE_MS. */
void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline, int64_t slice_ms);

/* Execute one run whose record REC (taken) is already registered as running; VARS (taken) are
 * its bound inputs; PARENT is the sync caller or NULL; DEADLINE monotonic ms. Fills OUT with
 * the final status, output and error (owned by OUT). Writes the record when finished (or, when
 * PARENT is not announced yet, leaves it to be written after PARENT's: OUT->ticket is then 0)
 * and hands it over as RECORD asks (NULL: not wanted). */
/* Where a sync run's final record goes, as the API shows it: TEXT, when set, receives it as
 * JSON text (run_rec_dump); else *JSON, when JSON is set, as an object (run_rec_to_json,
 * owned). Both NULL: not wanted. */
typedef struct record_out {
    json_t **json;
    buf_t *text;
} record_out_t;

typedef struct run_result {
    run_status_t status;
    json_t *output;  /* owned */
    json_t *error;   /* owned */
    uint64_t ticket; /* store ticket of the last record written (0: none yet) */
} run_result_t;
void run_execute(engine_t *eng, const definition_t *def, run_rec_t *rec, json_t *vars,
                 run_ctx_t *parent, int64_t deadline, root_state_t *root, run_result_t *out,
                 const record_out_t *record);

/* The W3C trace id of CTX's outbound requests: one per call tree, found once per run and kept
 * in CTX->trace_id. A sync child asks its caller; an async child reads its root's record. The
 * run's own thread, or any once it is set (a parallel fan-out sets it before it starts). */
const char *run_trace_id(run_ctx_t *ctx);

/* Write CTX's record as running, after those of its sync callers not written yet, and then the
 * records deferred on it. Nothing when it was written already. The run's own thread. */
void run_announce(run_ctx_t *ctx);

/* ---- the call path ------------------------------------------------------------------------ */

typedef struct call_spec {
    const char *target; /* integration name */
    int version;        /* 0 = latest */
    exec_mode_t mode;
    const json_t *payload; /* borrowed; NULL = {} */
    const json_t *context; /* borrowed overrides of the input context; may be NULL */
    const char *trigger;   /* "call", "callint", "cli", "api", "trigger" */
    const json_t *trigger_info;
    const char *idem_scope; /* with idem_key */
    const char *idem_key;
    int64_t delay_ms;
    bool detached;
    run_ctx_t *caller;       /* NULL for a root */
    const char *caller_task; /* with caller */
    int caller_step;
    int64_t deadline; /* monotonic ms the caller can wait until; NO_DEADLINE */
    bool durable;     /* wait for the commit of a root's record before returning */
    /* PAYLOAD, CONTEXT and TRIGGER_INFO never change after the call (a root started from
     * outside): a queued run's values can be kept for its claim (store_run_put_kept). A run's
     * own calls render theirs from its vars, which later tasks may change. */
    bool fixed_values;
    void (*on_started)(void *ctx, const char *run_id, uint64_t ticket); /* see exec_request_t */
    void *started_ctx;
    record_out_t record; /* where a sync run's final record goes */
} call_spec_t;

typedef struct call_result {
    char run_id[UUID_STR_LEN];
    int version;
    run_status_t status;
    json_t *output; /* owned */
    json_t *error;  /* owned */
    int64_t scheduled_at;
    uint64_t ticket; /* store ticket of the run's last write */
    bool async;      /* the call was async: answer with the run id, whatever its state */
} call_result_t;

void call_result_deinit(call_result_t *r);
/* The answer to an async call (RES->async): {"run_id", "status", "scheduled_at"}, owned. */
json_t *call_result_async_json(const call_result_t *res);

/* Start one run as SPEC says: checks (archived, callers, depth, descendants, concurrency,
 * inputs, idempotency) first; then sync runs execute here and RES holds the finished run;
 * async runs are enqueued. Returns 0 when a run was started (or found via idempotency), else
 * the error code with ERR filled and no run started. With DEFER_DURABLE an async enqueue
 * does not wait for its commit (the caller waits for RES->ticket). */
int engine_call(engine_t *eng, const call_spec_t *spec, call_result_t *res, bool defer_durable,
                err_t *err);

/* Run a claimed async run REC (taken) to its end on this thread. HELD: the caller already
 * counted REC in its integration's running count (concurrency_enter: a scheduler's ready run
 * of a limited integration); the count is dropped when the run ends, either way. */
void engine_run_claimed(engine_t *eng, run_rec_t *rec, bool held);

/* ---- task types ---------------------------------------------------------------------------- */

/* Each executes one attempt of task T for CTX, until ATTEMPT_DEADLINE (monotonic ms). */
void task_call_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                    outcome_t *out);
void task_set_exec(run_ctx_t *ctx, const task_t *t, outcome_t *out);
void task_switch_exec(run_ctx_t *ctx, const task_t *t, outcome_t *out);
void task_await_exec(run_ctx_t *ctx, const task_t *t, int64_t attempt_deadline, outcome_t *out);
void task_fail_exec(run_ctx_t *ctx, const task_t *t, outcome_t *out);
void task_script_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                      outcome_t *out);
void task_http_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                    outcome_t *out);
void task_connector_exec(run_ctx_t *ctx, const task_t *t, int seq, int64_t attempt_deadline,
                         outcome_t *out);

/* ---- scheduler ------------------------------------------------------------------------------ */

int scheduler_start(engine_t *eng, err_t *err);
void scheduler_wake(engine_t *eng);
/* Take REC, a root accepted from outside, due now, of an integration without a
 * max_concurrency, straight into the ready list when the scheduler has room and no older run
 * waits in the queue: REC is put running and owned (*TICKET its put's ticket) and belongs to
 * the scheduler from then on. False, REC untouched, when it must go to the queue. */
bool scheduler_accept(engine_t *eng, run_rec_t *rec, uint64_t *ticket);
void scheduler_stop(engine_t *eng, int64_t grace_ms);
/* Claim the due run ID for this thread when it is still queued; 0 and *OUT when claimed. */
int scheduler_claim_one(engine_t *eng, const char *id, run_rec_t **out);
/* Runs this process is executing from the queue (for drain). */
int scheduler_active(engine_t *eng);

#endif
