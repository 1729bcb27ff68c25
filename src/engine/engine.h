/* engine.h - the engine: publishing, the one call path every way in ends in, runs, workers.
 *
 * HTTP, the command line, call_integration and callint() all reach integrations through
 * engine_execute (from outside) or the same internal call (from a running integration), so
 * limits, history and security hold everywhere at once. Sync runs execute on the caller's
 * thread; async runs are committed to the store's queue and started by the workers.
 * All functions are thread-safe unless stated otherwise.
 */
#ifndef BRAID_ENGINE_H
#define BRAID_ENGINE_H

#include "core/err.h"
#include "definition/definition.h"
#include "net/http_loop.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct engine engine_t;

#define ENGINE_MAX_CALL_DEPTH 1000 /* the highest max_call_depth accepted */

typedef struct engine_config {
    int max_call_depth;      /* deepest call chain; default 32, at most ENGINE_MAX_CALL_DEPTH */
    int64_t max_descendants; /* runs one root's tree may start; default 100000 */
    int max_steps;           /* task executions per run; default 10000 */
    int workers;             /* threads running async runs; default 4 */
    int loop_runs;           /* async runs at once on the outbound loop; default 256 */
    int retain_days;         /* history kept; default 30 */
    int64_t lease_ms;        /* how long a claimed run stays ours without renewal; 30000 */
    int max_attempts_on_interrupt; /* attempts before an interrupted run fails; 3 */
    definition_limits_t def_limits;
    size_t max_input_bytes;  /* JSON input documents; default 10 MiB */
    int max_input_depth;     /* JSON input nesting; default 64 */
    bool log_runs;           /* one JSON log line on stderr per finished run; default off */
    size_t script_max_memory;        /* bytes of Lua memory per script task; default 64 MiB */
    int64_t script_max_instructions; /* Lua instructions per script task; default 100 million */
    const char *data_dir;    /* where the master key file lives (borrowed); NULL = "." */
    const json_t *allow_net; /* borrowed array of CIDR strings the address guard opens */
    int64_t http_connect_timeout_ms; /* default 10000 (never beyond the task's timeout) */
    int64_t http_low_speed_bytes;    /* a response slower than this many bytes/s ... */
    int64_t http_low_speed_ms;       /* ... for this long fails with timeout; 1 and 10000 */
    int http_max_idle_connections;   /* keep-alive connections kept open; default 64 */
} engine_config_t;

/* Fill CFG with the defaults above. */
void engine_config_defaults(engine_config_t *cfg);

/* Create an engine over STORE (borrowed; must outlive the engine). No threads start until
 * engine_start. Returns 0 and *OUT (free with engine_free). */
int engine_new(const engine_config_t *cfg, store_t *store, engine_t **out, err_t *err);
/* Stop workers (engine_stop with no grace) and free. NULL-safe. */
void engine_free(engine_t *eng);

store_t *engine_store(engine_t *eng);
/* The outbound loop (net/http_loop.h) the engine runs async runs on that wait only on outbound
 * requests; a server runs such sync executions there too. Owned by the engine. */
http_loop_t *engine_loop(engine_t *eng);
const engine_config_t *engine_config(engine_t *eng);

/* ---- publishing ---------------------------------------------------------------------------- */

/* Validate TEXT and publish it as the next version of its integration. NAME_HINT (may be NULL)
 * must match the document's name. On success *RESULT (owned) is
 * {"name", "version", "created": bool, "warnings": [{"integration", "version", "task",
 * "message"}...]}. On invalid input returns BR_EINVALID_DEFINITION with DIAGS filled. */
int engine_publish(engine_t *eng, const char *text, size_t len, const char *name_hint,
                   json_t **result, diags_t *diags, err_t *err);
/* Archive NAME: no new runs (calls answer not_found), history and versions kept. Seen by this
 * engine at once (other processes within their catalog check). BR_ENOT_FOUND when unknown. */
int engine_archive(engine_t *eng, const char *name, err_t *err);

/* Validate TEXT as a publish would, storing nothing. 0 when valid. */
int engine_validate(engine_t *eng, const char *text, size_t len, diags_t *diags);

/* ---- calls from outside ---------------------------------------------------------------------- */

typedef enum { EXEC_DEFAULT, EXEC_SYNC, EXEC_ASYNC } exec_mode_t;
/* What an execution may wait for, from least to most (engine_waits). */
typedef enum { EXEC_WAITS_NOTHING, EXEC_WAITS_NETWORK, EXEC_WAITS_OTHER } exec_waits_t;

/* An answer of engine_execute as JSON text, written straight from the run's record without
 * building an object first. Empty (JSON.len 0) when the answer came as an object instead. */
typedef struct exec_text {
    buf_t json;
    bool async;                 /* {"run_id", "status", "scheduled_at"}: the run was queued */
    char run_id[UUID_STR_LEN];  /* the run's id */
} exec_text_t;

typedef struct exec_request {
    const char *integration;     /* target name, or NULL with trigger_id */
    const char *trigger_id;      /* run every integration behind this API trigger id */
    int version;                 /* 0 = latest */
    exec_mode_t mode;            /* EXEC_DEFAULT: the integration's run_async decides */
    const json_t *payload;       /* borrowed, and never changed afterwards (an async run keeps
                                    it until it is claimed); NULL = {} */
    const json_t *context;       /* borrowed, as payload; overrides of {params, path, headers,
                                    method, fullpath}; NULL = the defaults */
    const char *trigger;         /* how it was started: "cli", "api", "trigger" */
    const json_t *trigger_info;  /* borrowed, as payload, may be NULL: who started it */
    const char *idempotency_key; /* NULL = none */
    int64_t delay_ms;            /* async only */
    /* Called (on the executing thread) once a sync root run exists, before its first task,
     * with its id: lets a caller that stops waiting answer with the id while the run goes on.
     * The run's record is queued, not yet durable: TICKET is its store ticket, to see
     * committed (store_on_commit, store_wait) before the id is handed out. NULL = not needed. */
    void (*on_started)(void *ctx, const char *run_id, uint64_t ticket);
    void *started_ctx;
    /* NULL: engine_execute returns once the run's record is durable. Else it does not wait:
     * *TICKET is the store ticket the caller must see committed (store_wait, store_on_commit)
     * before it hands the answer out (SPEC §8), 0 when nothing is left to wait for. */
    uint64_t *ticket;
    /* NULL, or an empty answer (see exec_text_t) for a run of INTEGRATION (not a trigger):
     * a finished sync run's record or an async run's {"run_id", "status", "scheduled_at"}
     * then comes there as JSON text, and *OUT stays NULL. */
    exec_text_t *text;
} exec_request_t;

/* Run REQ. A sync run executes on this thread and *OUT (owned) is the finished run record
 * (run_rec_to_json); an async call answers {"run_id", "status", "scheduled_at"} once the run
 * is durable (either as text in REQ->text when given); a trigger answers {"runs": [...]} with one such entry per integration. Errors that
 * start no run (not_found, version_not_found, input_invalid, forbidden, call limits) return
 * their code with ERR filled and *OUT NULL. A run that starts and fails returns 0: its failure
 * is in the record. The run's record is durable before this returns, unless REQ->ticket asks
 * the caller to see to that. */
int engine_execute(engine_t *eng, const exec_request_t *req, json_t **out, err_t *err);

/* What executing NAME at VERSION (0 = latest) in MODE may wait for, so a caller can choose the
 * thread to run it on:
 * - EXEC_WAITS_NOTHING: it only computes, and may run on a thread that must not block. The
 *   call is async (it only enqueues the run), or the integration and every integration it
 *   calls synchronously use only set, switch, fail and single sync calls with literal
 *   targets, without retries.
 * - EXEC_WAITS_NETWORK: as well, http and connector tasks, retries' pauses and for_each
 *   calls, whose waits go through a fiber's host when it runs on one (net/http_loop.h; a
 *   fan-out there has fibers of the loop for helpers).
 * - EXEC_WAITS_OTHER: anything else (scripts, await, async or repeated calls...).
 * A publish that changes this is seen as the registry sees new versions. The most cautious
 * answer when unsure (deep call chains); unknown names fail at once, so they wait for
 * nothing. */
exec_waits_t engine_waits(engine_t *eng, const char *name, int version, exec_mode_t mode);

/* ---- workers ------------------------------------------------------------------------------- */

/* Recover runs left running by a dead process, then start the scheduler and worker threads. */
int engine_start(engine_t *eng, err_t *err);

typedef void (*engine_progress_cb)(void *ctx, const json_t *counts);

/* Start the workers if needed and return once no run is scheduled, queued or running in the
 * store (every async descendant has come due and finished). PROGRESS (may be NULL) is called
 * about every 200 ms with {"scheduled", "queued", "running", "finished"} counts. */
int engine_drain(engine_t *eng, engine_progress_cb progress, void *ctx, err_t *err);

/* Stop claiming new runs, let running ones finish for up to GRACE_MS, then stop the threads.
 * Queued and scheduled runs stay in the store. */
void engine_stop(engine_t *eng, int64_t grace_ms);

/* Cancel RUN_ID and its unfinished, non-detached descendants. *OUT (owned) is the run's record
 * afterwards. Cancelling a finished run changes nothing. */
int engine_cancel(engine_t *eng, const char *run_id, json_t **out, err_t *err);

/* ---- connectors and connections (SPEC §5) --------------------------------------------------- */

/* Validate TEXT as a connector document and publish it as its slug's next version. SLUG_HINT
 * (may be NULL) must match. *RESULT (owned): {"slug", "version", "created": bool}. Invalid:
 * BR_EINVALID_DEFINITION with DIAGS filled. */
int engine_connector_publish(engine_t *eng, const char *text, size_t len, const char *slug_hint,
                             json_t **result, diags_t *diags, err_t *err);
/* Connector SLUG at VERSION (0 = latest): *DOC (owned) is the document, *VERSION_OUT its
 * version. BR_ENOT_FOUND / BR_EVERSION_NOT_FOUND. */
int engine_connector_get(engine_t *eng, const char *slug, int version, json_t **doc,
                         int *version_out, err_t *err);
/* Array of {"slug", "latest_version", "updated_at"} (owned). */
int engine_connector_list(engine_t *eng, json_t **out, err_t *err);

/* Create or replace connection ID from BODY (borrowed) {"connector": SLUG, "config": {...},
 * "secrets": {NAME: "value" | null}}: config is replaced as a whole and checked against the
 * connector's latest version; each named secret is sealed and set (null removes it); secrets
 * not named keep their values while the connector stays the same. *CREATED tells whether ID
 * is new; *OUT (owned) is the connection as engine_connection_get shows it. Secret values
 * never appear in OUT or in ERR. BR_EINPUT_INVALID (bad body, config or secret names),
 * BR_ENOT_FOUND (unknown connector). */
int engine_connection_put(engine_t *eng, const char *id, const json_t *body, bool *created,
                          json_t **out, err_t *err);
/* {"id", "connector", "config", "secrets": [{"name", "updated_at"}], "created_at",
 * "updated_at"} -- names and times only, never a value. BR_ECONNECTION_NOT_FOUND. */
int engine_connection_get(engine_t *eng, const char *id, json_t **out, err_t *err);
/* Array of engine_connection_get objects, by id (owned). */
int engine_connection_list(engine_t *eng, json_t **out, err_t *err);
int engine_connection_delete(engine_t *eng, const char *id, err_t *err);
/* Re-seal every connection's secrets under a new master key (see docs/security.md): all in
 * one transaction, then the old key is dropped. *COUNT: secrets re-sealed. */
int engine_keys_rotate(engine_t *eng, int *count, err_t *err);

/* ---- reading ------------------------------------------------------------------------------- */

/* One run with its steps: run_rec_to_json plus "steps": [step_rec_to_json...]; owned. */
int engine_run_get(engine_t *eng, const char *run_id, json_t **out, err_t *err);
/* The run and all its descendants, nested: each node is the run record plus "children". */
int engine_run_tree(engine_t *eng, const char *run_id, json_t **out, err_t *err);
/* Static call graph of the latest versions: {"nodes": [{"name", "version", "triggers"}],
 * "edges": [{"from", "to", "task", "strategy", "trigger"?}]} where a trigger edge goes to every
 * integration behind the trigger id and a templated target has "to": null, "dynamic": true. */
int engine_graph(engine_t *eng, json_t **out, err_t *err);

#endif
