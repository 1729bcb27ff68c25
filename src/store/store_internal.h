/* store_internal.h - what the parts of src/store/ share and nobody else sees: the backend
 * vtable, the synchronous write operations, the group-commit writer and record helpers.
 *
 * A backend (sqlite.c today, postgres.c later) implements store_backend_ops_t. Write-side
 * entries are called by the writer thread only, so a backend keeps exactly one writing
 * connection; read-side entries may be called from any thread at once.
 */
#ifndef BRAID_STORE_INTERNAL_H
#define BRAID_STORE_INTERNAL_H

#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct store_backend store_backend_t;

/* ---- synchronous write operations (executed by the writer, awaited by the caller) ------------ */

typedef enum {
    STORE_OP_PUBLISH,
    STORE_OP_ARCHIVE,
    STORE_OP_CLAIM,
    STORE_OP_CLAIM_ID,
    STORE_OP_RUN_CANCEL,
    STORE_OP_RENEW,
    STORE_OP_RECOVER,
    STORE_OP_CANCEL,
    STORE_OP_IDEMPOTENCY,
    STORE_OP_PURGE,
    STORE_OP_TOKEN_PUT,
    STORE_OP_TOKEN_REVOKE,
    STORE_OP_CONNECTOR_PUBLISH,
    STORE_OP_CONNECTION_PUT,
    STORE_OP_CONNECTION_DELETE,
    STORE_OP_CONNECTION_PUT_ALL,
} store_op_kind_t;

/* FNV-1a of a run id, for the store's own hash tables (the writer's coalescing, the claim
 * cache). */
static inline uint32_t store_id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 16777619u;
    return h;
}

/* Values of runs this process queued, kept for their claims (claim_cache.c). */
typedef struct claim_cache claim_cache_t;

/* One operation: inputs are borrowed from the waiting caller (valid until it is answered),
 * outputs are filled by the backend and handed to the caller when the batch has committed. */
typedef struct store_op {
    store_op_kind_t kind;
    union {
        /* STORE_OP_PUBLISH, and STORE_OP_CONNECTOR_PUBLISH with the slug as NAME. */
        struct {
            const char *name, *doc;
            const json_t *triggers; /* integrations only; NULL for connectors */
            int version;            /* out */
            bool created;           /* out */
        } publish;
        struct {
            const char *name;
        } archive;
        struct {
            const char *owner;
            int64_t now, lease_until;
            int max;
            const json_t *exclude;
            claim_cache_t *cache; /* values of runs queued here, taken instead of parsed */
            run_rec_t **out;      /* out, owned array of owned records */
            int n;                /* out */
        } claim;
        struct {
            const char *id, *owner;
            int64_t now, lease_until;
            claim_cache_t *cache;
            run_rec_t *out; /* out, owned; NULL when not claimable */
        } claim_id;
        struct {
            const char *id;
            int64_t now;
            run_status_t status; /* out */
        } run_cancel;
        struct {
            const char *owner;
            int64_t lease_until;
        } renew;
        struct {
            int64_t now;
            bool all;
            const char *not_owner;
            int requeued, failed; /* out */
        } recover;
        struct {
            const char *run_id;
            int64_t now;
            json_t *running; /* out, owned array of ids */
        } cancel;
        struct {
            const char *scope, *key, *run_id;
            char existing[UUID_STR_LEN]; /* out */
        } idem;
        struct {
            int64_t before;
            int chunk;       /* most runs deleted by one op */
            int64_t deleted; /* out */
        } purge;
        struct {
            const token_rec_t *rec; /* its hash only: the secret never reaches the store */
        } token_put;
        struct {
            const char *id;
            int64_t now; /* epoch ms, > 0 */
        } token_revoke;
        struct {
            const connection_rec_t *rec; /* secrets sealed already */
            int64_t now;                 /* epoch ms: created_at / updated_at when those are 0 */
        } connection_put;
        struct {
            const char *id;
        } connection_delete;
        struct {
            connection_rec_t *const *recs; /* N records, each of an existing connection */
            int n;
            int64_t now; /* epoch ms: updated_at when a record's is 0 */
        } connection_put_all;
    } u;
} store_op_t;

/* ---- values kept for claims (claim_cache.c) -------------------------------------------------- */

claim_cache_t *claim_cache_new(void);
void claim_cache_free(claim_cache_t *c); /* NULL-safe */
/* Keep references to queued run ID's INPUT and TRIGGER_INFO (may be NULL), which nobody may
 * change from now on, unless they are large; the oldest kept run goes when the cache is full.
 * Any thread. */
void claim_cache_put(claim_cache_t *c, const char *id, json_t *input, json_t *trigger_info);
/* Hand over run ID's kept values (*INPUT and *TRIGGER_INFO, owned) and forget them: true, or
 * false when ID is not kept. Any thread. */
bool claim_cache_take(claim_cache_t *c, const char *id, json_t **input, json_t **trigger_info);

/* Free OP's outputs and reset them, so it can run again (a retried batch) or be dropped. */
void store_op_clear_results(store_op_t *op);

/* ---- the backend vtable ---------------------------------------------------------------------- */

/* A JSON value of a put as compact text (jsonx_dump_buf), P NULL for an absent value (SQL
 * NULL). The putting thread dumps a record's values when it puts it (writer.c), so the writer
 * thread only binds text. */
typedef struct store_text {
    const char *p;
    size_t n;
} store_text_t;

#define STORE_RUN_JSON 4 /* trigger_info, input, output, error */
/* A run's texts: its STORE_RUN_JSON values, then its held steps (run_rec_t.steps). */
#define STORE_RUN_TEXTS (STORE_RUN_JSON + 1)
#define STORE_STEP_JSON 2 /* result, error */

typedef struct store_backend_ops {
    const char *name; /* "sqlite" */

    /* Writer thread only. A batch is begin, puts and ops in order, commit (or rollback). Each
     * op runs inside a savepoint so that its failure undoes only itself. */
    int (*begin)(store_backend_t *be, err_t *err);
    int (*commit)(store_backend_t *be, err_t *err);
    void (*rollback)(store_backend_t *be);
    int (*savepoint)(store_backend_t *be, err_t *err);
    int (*release)(store_backend_t *be, bool keep, err_t *err); /* keep=false rolls back */
    bool (*in_transaction)(store_backend_t *be);
    /* Upsert N runs / steps, in order (a later one of the same key wins). Many at once: a
     * backend writes them with few statements. The records' JSON values come as text in
     * JSON (STORE_RUN_TEXTS per run, STORE_STEP_JSON per step, in the order named there); the
     * records' own json_t pointers and held steps are no longer set. */
    int (*run_put)(store_backend_t *be, run_rec_t *const *runs, const store_text_t *json,
                   size_t n, err_t *err);
    int (*step_put)(store_backend_t *be, step_rec_t *const *steps, const store_text_t *json,
                    size_t n, err_t *err);
    int (*exec)(store_backend_t *be, store_op_t *op, err_t *err);

    /* Any thread: the read side of store.h, with the same contracts. */
    int (*integration_get)(store_backend_t *be, const char *name, int version,
                           integration_version_t **out, err_t *err);
    int (*integration_list)(store_backend_t *be, bool include_archived, json_t **out, err_t *err);
    int (*integration_versions)(store_backend_t *be, const char *name, json_t **out, err_t *err);
    int (*trigger_targets)(store_backend_t *be, const char *trigger_id, json_t **out, err_t *err);
    int (*catalog_epoch)(store_backend_t *be, int64_t *epoch, err_t *err);
    int (*run_get)(store_backend_t *be, const char *id, run_rec_t **out, err_t *err);
    int (*run_steps)(store_backend_t *be, const char *run_id, step_rec_t ***out, int *n,
                     err_t *err);
    int (*step_children)(store_backend_t *be, const char *parent_id, int seq, int limit,
                         json_t **out, err_t *err);
    int (*runs_list)(store_backend_t *be, const run_filter_t *f, run_rec_t ***out, int *n,
                     char **next_cursor, err_t *err);
    int (*run_children)(store_backend_t *be, const char *parent_id, run_rec_t ***out, int *n,
                        err_t *err);
    int (*root_count)(store_backend_t *be, const char *root_id, int64_t *count, err_t *err);
    int (*queue_next_due)(store_backend_t *be, int64_t *when, err_t *err);
    int (*queue_counts)(store_backend_t *be, json_t **out, err_t *err);
    int (*cancel_requested)(store_backend_t *be, const char *owner, json_t **out, err_t *err);
    int (*token_get)(store_backend_t *be, const char *id, token_rec_t **out, err_t *err);
    int (*token_list)(store_backend_t *be, json_t **out, err_t *err);
    int (*token_any_active)(store_backend_t *be, const char *role, bool *any, err_t *err);
    int (*connector_get)(store_backend_t *be, const char *slug, int version,
                         integration_version_t **out, err_t *err);
    int (*connector_list)(store_backend_t *be, json_t **out, err_t *err);
    int (*connector_versions)(store_backend_t *be, const char *slug, json_t **out, err_t *err);
    int (*connection_get)(store_backend_t *be, const char *id, connection_rec_t **out, err_t *err);
    int (*connection_list)(store_backend_t *be, connection_rec_t ***out, int *n, err_t *err);
    int (*connections_epoch)(store_backend_t *be, int64_t *epoch, err_t *err);
    /* Not a database write: announces this process (see store_engine_lock). */
    int (*engine_lock)(store_backend_t *be, bool *alone, err_t *err);

    /* After the writer has stopped. */
    void (*close)(store_backend_t *be);
} store_backend_ops_t;

/* The SQLite backend: open (and create or migrate) the database file PATH. */
int sqlite_backend_open(const char *path, int busy_timeout_ms, store_backend_t **out,
                        const store_backend_ops_t **ops, err_t *err);

/* ---- the group-commit writer (writer.c) ------------------------------------------------------ */

typedef struct writer writer_t;

/* Start the writer thread over BE (borrowed; it must outlive the writer). GROUP_COMMIT_MS is
 * the longest the first write of a batch waits for company (0 = commit at once). */
int writer_start(store_backend_t *be, const store_backend_ops_t *ops, int64_t group_commit_ms,
                 writer_t **out, err_t *err);
/* Commit everything pending, stop the thread and free W. NULL-safe. */
void writer_stop(writer_t *w);
/* Enqueue a copy of R / S; returns the write's ticket. Any thread. */
uint64_t writer_put_run(writer_t *w, const run_rec_t *r);
uint64_t writer_put_step(writer_t *w, const step_rec_t *s);
/* Run OP in the writer (after every write enqueued before it) and wait until its batch is
 * committed. Returns the op's result, or the commit's error. Any thread. */
int writer_exec(writer_t *w, store_op_t *op, err_t *err);
int writer_wait(writer_t *w, uint64_t ticket, err_t *err);
int writer_flush(writer_t *w, err_t *err);
void writer_notify(writer_t *w, uint64_t ticket, store_commit_fn fn, void *arg);
/* When TICKET has settled, or nobody commits now and few writes are pending (then this
 * thread commits them): true, with *RC 0 or the error of TICKET's batch. Else false, and the
 * caller waits as usual (writer_wait, writer_notify). Not from a notice callback. */
bool writer_try_commit(writer_t *w, uint64_t ticket, int *rc, err_t *err);
uint64_t writer_commit_count(const writer_t *w);

/* ---- record helpers (records.c) -------------------------------------------------------------- */

/* A copy of S: strings duplicated, JSON values referenced. Returned owned. */
step_rec_t *step_rec_copy(const step_rec_t *s);
/* Append S (taken) to the array *V of *N steps, *CAP allocated. */
void step_vec_push(step_rec_t ***v, int *n, int *cap, step_rec_t *s);
/* Append to *V (*N used of *CAP) the steps of ATTEMPT among those held in run RUN_ID's row,
 * TEXT (LEN bytes) as store_run_hold_step wrote it; each owned. 0, or BR_ESTORE when the text
 * is damaged. */
int store_held_steps_parse(const char *run_id, const char *text, size_t len, int attempt,
                           step_rec_t ***v, int *n, int *cap, err_t *err);

/* The error objects the store writes itself. Returned owned. */
json_t *store_error_json(const char *code, const char *message, bool retryable);

#endif
