/* store.h - braid's durable state: integrations and their versions, runs, steps, the queue.
 *
 * The interface knows nothing of SQL: SQLite (sqlite.c) implements it today and PostgreSQL
 * can implement it later without the engine changing. Writes of run history go through a
 * writer that commits many at a time (group commit); a caller that must not answer before its
 * write is durable takes a ticket and waits for it. Every function is thread-safe.
 *
 * Ownership: record pointers passed in are borrowed (the store copies or references what it
 * keeps: JSON values are referenced, so a caller must not modify a value after handing it
 * over). Records returned are owned by the caller and freed with the matching _free.
 */
#ifndef BRAID_STORE_H
#define BRAID_STORE_H

#include "core/buf.h"
#include "core/err.h"
#include "core/uuid.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct store store_t;

typedef enum {
    RUN_SCHEDULED,
    RUN_QUEUED,
    RUN_RUNNING,
    RUN_SUCCEEDED,
    RUN_FAILED,
    RUN_CANCELLED,
} run_status_t;

const char *run_status_name(run_status_t s);
/* 0 and *OUT on a known name, -1 otherwise. */
int run_status_parse(const char *name, run_status_t *out);
static inline bool run_status_finished(run_status_t s)
{
    return s >= RUN_SUCCEEDED;
}

typedef struct run_rec {
    char id[UUID_STR_LEN];
    char *integration;
    int version;
    run_status_t status;
    char *trigger;                /* "api", "trigger", "call", "callint", "cli" */
    json_t *trigger_info;         /* who started it (object), or NULL */
    char parent_id[UUID_STR_LEN]; /* "" for a root run */
    char root_id[UUID_STR_LEN];   /* its own id for a root run */
    int depth;                    /* 0 for a root */
    char *task;                   /* calling task id; NULL for a root */
    int parent_step;              /* seq of the calling step in the parent; -1 for a root */
    bool sync_child;              /* runs inline in its caller's thread */
    bool detached;                /* survives its caller's cancellation */
    bool retry_on_interrupt;      /* the integration's on_interrupt is "retry" */
    json_t *input;                /* input context {payload, params, path, headers, method, fullpath} */
    json_t *output;               /* NULL until finished */
    json_t *error;                /* ERROR object or NULL */
    int64_t created_at;           /* epoch ms */
    int64_t scheduled_at;         /* epoch ms the run is due; for queued runs its creation */
    int64_t started_at;           /* epoch ms; 0 = not started */
    int64_t finished_at;          /* epoch ms; 0 = not finished */
    int64_t deadline_at;          /* epoch ms; 0 = none beyond the integration's own timeout */
    int attempt;                  /* 1, 2, ... */
    char *idempotency_key;        /* NULL = none */
    /* A running run this process took without a claim (scheduler_accept) is written owned by
     * OWNER (borrowed: the engine's) until LEASE_UNTIL, as a claim would leave it; a put of
     * the run in any other status ignores them. NULL for every other run: a put keeps
     * whatever owner the row has. */
    const char *owner;
    int64_t lease_until;
    /* Steps of this attempt kept in the run's own row (store_run_hold_step): the text of a
     * JSON array, written with every put of the record; empty when none. Records read back
     * leave it empty (store_run_steps reads the steps). */
    buf_t steps;
} run_rec_t;

run_rec_t *run_rec_new(void);
run_rec_t *run_rec_copy(const run_rec_t *r);
void run_rec_free(run_rec_t *r);
/* The run as the API shows it (SPEC §8 field names, RFC 3339 times); returned owned. */
json_t *run_rec_to_json(const run_rec_t *r);
/* The same record written as JSON text to B: byte for byte what dumping run_rec_to_json(R)
 * with jsonx_dump_buf writes, without building the object (an answer to a sync execute is
 * written once and sent). It begins with {"id":"ID", ID R's 36-character id. */
void run_rec_dump(buf_t *b, const run_rec_t *r);

/* A run's whole input context {payload, params, path, headers, method, fullpath}: STORED
 * (borrowed, may be NULL) holds the members that differ from a call's defaults — params {},
 * path and fullpath /integrations/execute/NAME, headers {}, method POST — and the rest are
 * filled in. Records keep only what differs, since most runs are called with the defaults.
 * Returned owned. */
json_t *run_input_context(const char *integration, const json_t *stored);

typedef struct step_rec {
    char run_id[UUID_STR_LEN];
    int attempt; /* the run's attempt this step belongs to */
    int seq;     /* 0, 1, 2, ... in execution order within the attempt */
    char *task_id;
    char *type;
    char *status; /* "succeeded" or "failed" */
    int task_attempt; /* attempts this task took (retries) */
    int64_t started_at;   /* epoch ms */
    int64_t duration_ms;
    json_t *result; /* may be NULL; the engine has already cut it to 64 KiB */
    json_t *error;  /* ERROR or NULL */
} step_rec_t;

void step_rec_free(step_rec_t *s);
/* Keep step S in its run R's own row instead of a row of its own: it is written with R's next
 * put, so a run that ends soon after its steps writes one row for all of them. S must be of
 * R's attempt, and not yet written. Readers see held steps and steps written alone the same
 * (store_run_steps). */
void store_run_hold_step(run_rec_t *r, const step_rec_t *s);
/* The step as the API shows it, with CHILD_RUN_IDS (borrowed, may be NULL) added; owned. */
json_t *step_rec_to_json(const step_rec_t *s, json_t *child_run_ids);

typedef struct store_options {
    int64_t group_commit_ms; /* longest a write waits for company before its commit; default 2 */
    int busy_timeout_ms;     /* default 5000 */
} store_options_t;

/* Open the store at URL: a directory (SQLite file braid.db inside, created with the schema on
 * first use, WAL mode) or, later, "postgres://...". OPTS may be NULL. */
int store_open(const char *url, const store_options_t *opts, store_t **out, err_t *err);
/* Flush every pending write, then close. NULL-safe. */
void store_close(store_t *st);

/* ---- integrations ------------------------------------------------------------------------ */

typedef struct integration_version {
    char *name;
    int version;
    char *doc; /* canonical JSON text of the document */
    int64_t created_at;
    bool archived; /* the integration (all versions) is archived */
} integration_version_t;

void integration_version_free(integration_version_t *v);

/* Store DOC (canonical text, borrowed) as the next version of NAME, atomically. When it equals
 * the latest version's text, nothing is stored and *CREATED is false. TRIGGERS (array of
 * strings, borrowed) replace NAME's trigger ids. Publishing an archived name un-archives it.
 * Durable on return. */
int store_integration_publish(store_t *st, const char *name, const char *doc,
                              const json_t *triggers, int *version, bool *created, err_t *err);
/* Version VERSION of NAME (0 = latest). BR_ENOT_FOUND when NAME has none,
 * BR_EVERSION_NOT_FOUND when VERSION does not exist. */
int store_integration_get(store_t *st, const char *name, int version, integration_version_t **out,
                          err_t *err);
/* All names: array of {"name", "latest_version", "triggers", "archived", "updated_at"}. */
int store_integration_list(store_t *st, bool include_archived, json_t **out, err_t *err);
/* NAME's versions: array of {"version", "created_at"}. */
int store_integration_versions(store_t *st, const char *name, json_t **out, err_t *err);
int store_integration_archive(store_t *st, const char *name, err_t *err);
/* Names of the non-archived integrations listing API trigger TRIGGER_ID: array of strings. */
int store_trigger_targets(store_t *st, const char *trigger_id, json_t **out, err_t *err);
/* A number that changes whenever any process publishes or archives; cheap to read. */
int store_catalog_epoch(store_t *st, int64_t *epoch, err_t *err);

/* ---- run history (batched writes) -------------------------------------------------------- */

/* Insert or replace the whole run record R. Queued for the next group commit; returns the
 * write's ticket (for store_wait). */
uint64_t store_run_put(store_t *st, const run_rec_t *r);
/* store_run_put for a queued run whose input and trigger info nobody will change from now on
 * (a run accepted from outside): the store keeps references to them until the run is claimed
 * here, so that the claim need not parse them back. */
uint64_t store_run_put_kept(store_t *st, const run_rec_t *r);
/* Insert or replace step S. Queued for the next group commit. */
uint64_t store_step_put(store_t *st, const step_rec_t *s);
/* Block until every write up to TICKET is committed. 0, or the commit's error. */
int store_wait(store_t *st, uint64_t ticket, err_t *err);
/* Commit everything queued so far and wait for it (and for the callbacks of store_on_commit
 * that this settles). */
int store_flush(store_t *st, err_t *err);
/* What store_on_commit calls: RC 0 when the writes are durable, else the commit's error. */
typedef void (*store_commit_fn)(void *arg, int rc, const err_t *err);
/* Call FN(ARG, ...) once every write up to TICKET is committed, instead of waiting for it: at
 * once on this thread when it already is, else on the store's writer thread right after the
 * commit (which may be another caller's thread). FN must be quick and must not call the
 * store. Any thread. */
void store_on_commit(store_t *st, uint64_t ticket, store_commit_fn fn, void *arg);
/* Make TICKET durable without waiting for another thread, when that can be done: true when
 * it is committed already or this thread could commit it (nobody else committing, few writes
 * pending), with *RC 0 or the commit's error; false when it must be waited for (store_wait,
 * store_on_commit). Blocks for the commit itself. Any thread but a store_on_commit callback. */
bool store_try_commit(store_t *st, uint64_t ticket, int *rc, err_t *err);
/* Commits made so far (for benchmarks: commits per run). */
uint64_t store_commit_count(store_t *st);

/* ---- run history (reads; they see committed writes) -------------------------------------- */

int store_run_get(store_t *st, const char *id, run_rec_t **out, err_t *err);
/* Steps of RUN_ID's latest attempt in order; *OUT is an array of N owned step pointers (free
 * each with step_rec_free, then the array with free). */
int store_run_steps(store_t *st, const char *run_id, step_rec_t ***out, int *n, err_t *err);
/* Ids of the runs started by step SEQ of PARENT_ID, in creation order, at most LIMIT:
 * array of strings (owned). */
int store_step_children(store_t *st, const char *parent_id, int seq, int limit, json_t **out,
                        err_t *err);

typedef struct run_filter {
    const char *integration; /* NULL = any */
    int status;              /* -1 = any, else run_status_t */
    const char *root_id;
    const char *parent_id;
    int64_t since; /* epoch ms, 0 = any */
    const char *cursor; /* id to continue after (exclusive); runs come newest first */
    int limit;          /* 1..1000 */
} run_filter_t;

/* Runs matching F, newest first: *OUT array of *N owned records (free each, then the array).
 * *NEXT_CURSOR (owned, may be NULL) continues the listing when more remain. */
int store_runs_list(store_t *st, const run_filter_t *f, run_rec_t ***out, int *n,
                    char **next_cursor, err_t *err);
/* Children of PARENT_ID in creation order, same ownership as store_runs_list. */
int store_run_children(store_t *st, const char *parent_id, run_rec_t ***out, int *n, err_t *err);
void run_recs_free(run_rec_t **runs, int n);

/* How many runs have ROOT_ID as their root, the root included. */
int store_root_count(store_t *st, const char *root_id, int64_t *count, err_t *err);

/* ---- the queue ---------------------------------------------------------------------------- */

/* Claim up to MAX runs that are due at NOW (queued, or scheduled with scheduled_at <= NOW),
 * oldest first, skipping integrations named in EXCLUDE (array of strings, may be NULL). Each
 * claimed run becomes running, owned by OWNER until LEASE_UNTIL, with started_at = NOW.
 * Durable on return. *OUT as in store_runs_list. */
int store_queue_claim(store_t *st, const char *owner, int64_t now, int64_t lease_until, int max,
                      const json_t *exclude, run_rec_t ***out, int *n, err_t *err);
/* Earliest scheduled_at of a queued or scheduled run, or 0 when there is none. */
int store_queue_next_due(store_t *st, int64_t *when, err_t *err);
/* Counts of runs per status, for progress lines: {"scheduled": n, "queued": n, "running": n}. */
int store_queue_counts(store_t *st, json_t **out, err_t *err);
/* Extend the lease of every running run owned by OWNER to LEASE_UNTIL. */
int store_lease_renew(store_t *st, const char *owner, int64_t lease_until, err_t *err);

/* Runs that were running for an owner that is gone (lease ended before NOW, or, with ALL,
 * any owner but NOT_OWNER): a root or async run with retry_on_interrupt and attempt < 3 goes
 * back to queued as attempt + 1; every other one fails with ERROR {"code": "interrupted"}.
 * *REQUEUED and *FAILED count them. Durable on return. */
int store_recover(store_t *st, int64_t now, bool all, const char *not_owner, int *requeued,
                  int *failed, err_t *err);

/* Cancel the unfinished, non-detached descendants of RUN_ID (not RUN_ID itself): scheduled and
 * queued ones become cancelled with ERROR {"code": "cancelled"} at NOW; the ids of running
 * ones are returned in *RUNNING (array, owned) for the engine to stop. Durable on return. */
int store_cancel_descendants(store_t *st, const char *run_id, int64_t now, json_t **running,
                             err_t *err);

/* ---- idempotency -------------------------------------------------------------------------- */

/* Claim KEY within SCOPE for RUN_ID. When the key is new, records it and leaves EXISTING
 * empty; otherwise copies the first run's id into EXISTING. Durable on return. */
int store_idempotency_claim(store_t *st, const char *scope, const char *key, const char *run_id,
                            char existing[UUID_STR_LEN], err_t *err);

/* ---- retention ---------------------------------------------------------------------------- */

/* Delete finished runs (and their steps) that finished before BEFORE; *DELETED counts them. */
int store_purge(store_t *st, int64_t before, int64_t *deleted, err_t *err);

/* ---- added for the engine's waiting and cancelling paths ---------------------------------- */

/* Claim run ID for OWNER when it is due (queued, or scheduled with scheduled_at <= NOW):
 * as store_queue_claim for that one run. BR_ENOT_FOUND when it is not claimable. */
int store_queue_claim_id(store_t *st, const char *id, const char *owner, int64_t now,
                         int64_t lease_until, run_rec_t **out, err_t *err);

/* Cancel run ID itself: a scheduled or queued run becomes cancelled at NOW (ERROR
 * {"code": "cancelled"}); a running one gets cancel_requested. *STATUS is its status afterwards.
 * Durable on return. */
int store_run_cancel(store_t *st, const char *id, int64_t now, run_status_t *status, err_t *err);

/* Ids of running runs owned by OWNER whose cancellation was requested (array, owned). */
int store_cancel_requested(store_t *st, const char *owner, json_t **out, err_t *err);

/* Announce an engine process on this store for as long as the store is open. *ALONE tells
 * whether no other engine process was using it at that moment (then every run still marked
 * running belongs to a process that is gone). */
int store_engine_lock(store_t *st, bool *alone, err_t *err);

/* ---- API tokens ---------------------------------------------------------------------------- */

typedef struct token_rec {
    char id[40];          /* public part of the token, e.g. "t_3f9a0c2e5b7d1f48" */
    char *role;           /* "admin", "editor", "viewer", "invoker" */
    json_t *scopes;       /* array of glob strings (may be empty) */
    unsigned char hash[32]; /* hash of the secret part; the secret itself is never stored */
    char *description;    /* may be NULL */
    int64_t created_at;   /* epoch ms */
    int64_t revoked_at;   /* epoch ms; 0 = active */
} token_rec_t;

void token_rec_free(token_rec_t *t);
/* The token as the API lists it: {id, role, scopes, description, created_at, revoked_at}; never
 * the hash. Returned owned. */
json_t *token_rec_to_json(const token_rec_t *t);

/* Store a new token T (borrowed). BR_ECONFLICT when the id exists. Durable on return. */
int store_token_put(store_t *st, const token_rec_t *t, err_t *err);
/* Token ID (revoked ones too). BR_ENOT_FOUND when unknown. */
int store_token_get(store_t *st, const char *id, token_rec_t **out, err_t *err);
/* Every token, newest first: array of token_rec_to_json objects (owned). */
int store_token_list(store_t *st, json_t **out, err_t *err);
/* Revoke ID at NOW. BR_ENOT_FOUND when unknown; revoking twice keeps the first time. Durable. */
int store_token_revoke(store_t *st, const char *id, int64_t now, err_t *err);
/* Whether any active token has ROLE. */
int store_token_any_active(store_t *st, const char *role, bool *any, err_t *err);

/* ---- connectors (SPEC §5): versioned documents like integrations ------------------------ */

/* Store DOC (canonical text, borrowed) as the next version of connector SLUG, atomically; when
 * it equals the latest version's text nothing is stored and *CREATED is false. Durable. */
int store_connector_publish(store_t *st, const char *slug, const char *doc, int *version,
                            bool *created, err_t *err);
/* Version VERSION of SLUG (0 = latest), as an integration_version_t whose name is the slug
 * (archived always false). BR_ENOT_FOUND / BR_EVERSION_NOT_FOUND. */
int store_connector_get(store_t *st, const char *slug, int version, integration_version_t **out,
                        err_t *err);
/* Every connector: array of {"slug", "latest_version", "updated_at"} (RFC 3339), by slug. */
int store_connector_list(store_t *st, json_t **out, err_t *err);
/* SLUG's versions: array of {"version", "created_at"}. BR_ENOT_FOUND when SLUG has none. */
int store_connector_versions(store_t *st, const char *slug, json_t **out, err_t *err);

/* ---- connections (SPEC §5): credentials for a connector, secrets sealed ------------------ */

typedef struct connection_rec {
    char *id;        /* ^[A-Za-z0-9][A-Za-z0-9_.-]*$, at most 128 bytes */
    char *connector; /* connector slug */
    json_t *config;  /* object: the bound config (never secret) */
    /* object: secret name -> {"sealed": "v<key version>:<base64>", "updated_at": epoch ms}.
     * Only sealed text ever reaches the store. */
    json_t *secrets;
    int64_t created_at; /* epoch ms */
    int64_t updated_at; /* epoch ms */
} connection_rec_t;

connection_rec_t *connection_rec_new(void);
void connection_rec_free(connection_rec_t *c);
void connection_recs_free(connection_rec_t **recs, int n);

/* Insert or replace connection C (borrowed) as a whole. Durable on return. */
int store_connection_put(store_t *st, const connection_rec_t *c, err_t *err);
/* Connection ID. BR_ECONNECTION_NOT_FOUND when there is none. */
int store_connection_get(store_t *st, const char *id, connection_rec_t **out, err_t *err);
/* Every connection, by id: *OUT array of *N owned records. */
int store_connection_list(store_t *st, connection_rec_t ***out, int *n, err_t *err);
/* Delete ID. BR_ECONNECTION_NOT_FOUND when there is none. Durable on return. */
int store_connection_delete(store_t *st, const char *id, err_t *err);
/* Replace the N records RECS (each must exist) in one transaction: all or none (key
 * rotation re-seals every connection at once). Durable on return. */
int store_connection_put_all(store_t *st, connection_rec_t *const *recs, int n, err_t *err);
/* A number that changes whenever any process changes a connector or connection; cheap. */
int store_connections_epoch(store_t *st, int64_t *epoch, err_t *err);

#endif
