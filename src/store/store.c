/* store.c - the public store interface: chooses a backend from the URL, starts the
 * group-commit writer over it, and dispatches. Writes go through the writer (puts queued,
 * synchronous operations awaited); reads go straight to the backend's read side.
 *
 * Invariant: only the writer thread ever writes through the backend, so there is one writing
 * connection and our own threads never contend for the database's write lock.
 */
#include "store/store_internal.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_GROUP_COMMIT_MS 2
#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define DB_FILE "braid.db"
#define PURGE_CHUNK 2000 /* runs per purge transaction */

struct store {
    store_backend_t *be;
    const store_backend_ops_t *ops;
    writer_t *w;
    claim_cache_t *claims; /* values of runs queued here, for their claims */
};

/* mkdir -p PATH (0700: the data directory may hold secrets). */
static int make_dirs(const char *path, err_t *err)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = err_set(err, BR_ESTORE, "cannot create the directory %s: %s", p, strerror(errno));
            break;
        }
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            rc = err_set(err, BR_ESTORE, "%s is not a directory", p);
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The SQLite file for LOCATION: a directory (created when missing) holds braid.db; an
 * existing file, or a name ending in .db, .sqlite or .sqlite3, is the database itself (its
 * directory created when missing). Returned owned in *OUT. */
static int sqlite_file(const char *location, char **out, err_t *err)
{
    struct stat sb;
    int rc;
    if (stat(location, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        *out = xstrdup(location);
        return 0;
    }
    if (has_suffix(location, ".db") || has_suffix(location, ".sqlite") ||
        has_suffix(location, ".sqlite3")) {
        const char *slash = strrchr(location, '/');
        if (slash && slash != location) {
            char *dir = xstrndup(location, (size_t)(slash - location));
            rc = make_dirs(dir, err);
            free(dir);
            if (rc < 0)
                return rc;
        }
        *out = xstrdup(location);
        return 0;
    }
    if ((rc = make_dirs(location, err)) < 0)
        return rc;
    size_t n = strlen(location);
    *out = xasprintf("%s%s" DB_FILE, location, n && location[n - 1] == '/' ? "" : "/");
    return 0;
}

/* Open the store at URL: a directory (braid.db inside), "sqlite:PATH" (PATH a directory or a
 * database file), or "postgres://..." (not in this build: BR_ESTORE). Creates what is missing,
 * brings the schema up to date, and starts the writer thread. OPTS (borrowed, may be NULL):
 * group_commit_ms 0 = the default 2, negative = commit at once; busy_timeout_ms 0 = 5000.
 * *OUT is owned: close with store_close. 0 or BR_ESTORE with the reason. Any thread. */
int store_open(const char *url, const store_options_t *opts, store_t **out, err_t *err)
{
    if (!url || !*url)
        return err_set(err, BR_ESTORE, "no store location given");
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return err_set(err, BR_ESTORE, "the PostgreSQL store is not available in this build");
    const char *location = url;
    if (strncmp(location, "sqlite://", 9) == 0)
        location += 9;
    else if (strncmp(location, "sqlite:", 7) == 0)
        location += 7;
    if (!*location)
        return err_set(err, BR_ESTORE, "no SQLite path in \"%s\"", url);

    int64_t gc_ms = opts && opts->group_commit_ms ? opts->group_commit_ms : DEFAULT_GROUP_COMMIT_MS;
    int busy_ms =
        opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    char *path = NULL;
    int rc = sqlite_file(location, &path, err);
    if (rc < 0)
        return rc;
    store_t *st = XNEW(store_t);
    rc = sqlite_backend_open(path, busy_ms, &st->be, &st->ops, err);
    free(path);
    if (rc == 0 && (rc = writer_start(st->be, st->ops, gc_ms > 0 ? gc_ms : 0, &st->w, err)) < 0)
        st->ops->close(st->be);
    if (rc < 0) {
        free(st);
        return rc;
    }
    st->claims = claim_cache_new();
    *out = st;
    return 0;
}

/* Commit every pending write, stop the writer, close the backend and free ST. No other call
 * on ST may be running or follow. NULL-safe. */
void store_close(store_t *st)
{
    if (!st)
        return;
    writer_stop(st->w);
    st->ops->close(st->be);
    claim_cache_free(st->claims);
    free(st);
}

/* ---- integrations ---------------------------------------------------------------------------- */

/* Run a publish op of KIND (STORE_OP_PUBLISH or STORE_OP_CONNECTOR_PUBLISH) for NAME's DOC
 * (TRIGGERS: integrations only) and hand back its version and whether it is new (VERSION and
 * CREATED may be NULL). Everything borrowed. The op's result or BR_ESTORE. */
static int publish(store_t *st, store_op_kind_t kind, const char *name, const char *doc,
                   const json_t *triggers, int *version, bool *created, err_t *err)
{
    store_op_t op = {.kind = kind};
    op.u.publish.name = name;
    op.u.publish.doc = doc;
    op.u.publish.triggers = triggers;
    int rc = writer_exec(st->w, &op, err);
    if (rc < 0)
        return rc;
    if (version)
        *version = op.u.publish.version;
    if (created)
        *created = op.u.publish.created;
    return 0;
}

/* Store DOC as NAME's next version unless it equals the latest (then *CREATED is false and
 * *VERSION the latest); replace NAME's triggers with TRIGGERS (array of strings, or NULL for
 * none); un-archive NAME; bump the catalog epoch. NAME, DOC, TRIGGERS borrowed. Durable on
 * return. 0, BR_EINPUT_INVALID for a trigger that is not a string, or BR_ESTORE. */
int store_integration_publish(store_t *st, const char *name, const char *doc,
                              const json_t *triggers, int *version, bool *created, err_t *err)
{
    if (!name || !*name || !doc)
        return err_set(err, BR_EINPUT_INVALID, "publish needs a name and a document");
    json_t *none = NULL;
    if (!triggers)
        triggers = none = json_array();
    if (!json_is_array(triggers)) {
        json_decref(none);
        return err_set(err, BR_EINPUT_INVALID, "triggers must be an array of trigger ids");
    }
    size_t i;
    json_t *t;
    json_array_foreach(triggers, i, t)
    {
        if (!json_is_string(t)) {
            json_decref(none);
            return err_set(err, BR_EINPUT_INVALID, "trigger %zu is not a string", i);
        }
    }
    int rc = publish(st, STORE_OP_PUBLISH, name, doc, triggers, version, created, err);
    json_decref(none);
    return rc;
}

/* Version VERSION of NAME (0 = latest) into *OUT (owned; integration_version_free).
 * BR_ENOT_FOUND, BR_EVERSION_NOT_FOUND or BR_ESTORE. Any thread. */
int store_integration_get(store_t *st, const char *name, int version, integration_version_t **out,
                          err_t *err)
{
    return st->ops->integration_get(st->be, name, version, out, err);
}

/* Every integration by name (archived ones too when INCLUDE_ARCHIVED): *OUT an owned array of
 * {"name", "latest_version", "triggers", "archived", "updated_at"}. Any thread. */
int store_integration_list(store_t *st, bool include_archived, json_t **out, err_t *err)
{
    return st->ops->integration_list(st->be, include_archived, out, err);
}

/* NAME's versions, oldest first: *OUT an owned array of {"version", "created_at"};
 * BR_ENOT_FOUND when NAME has none. Any thread. */
int store_integration_versions(store_t *st, const char *name, json_t **out, err_t *err)
{
    return st->ops->integration_versions(st->be, name, out, err);
}

/* Archive NAME (every version): it stops answering triggers until published again. Durable on
 * return. 0, BR_ENOT_FOUND or BR_ESTORE. Any thread. */
int store_integration_archive(store_t *st, const char *name, err_t *err)
{
    if (!name)
        return err_set(err, BR_ENOT_FOUND, "no integration named");
    store_op_t op = {.kind = STORE_OP_ARCHIVE};
    op.u.archive.name = name;
    return writer_exec(st->w, &op, err);
}

/* Names of the non-archived integrations listing TRIGGER_ID, sorted: *OUT an owned array of
 * strings. Any thread. */
int store_trigger_targets(store_t *st, const char *trigger_id, json_t **out, err_t *err)
{
    return st->ops->trigger_targets(st->be, trigger_id, out, err);
}

/* A counter that changes whenever any process publishes or archives: one indexed read. Any
 * thread. */
int store_catalog_epoch(store_t *st, int64_t *epoch, err_t *err)
{
    return st->ops->catalog_epoch(st->be, epoch, err);
}

/* ---- run history: writes --------------------------------------------------------------------- */

/* Queue an insert-or-replace of the whole run R (borrowed: strings are copied, JSON values
 * referenced, so the caller must not modify them afterwards) for the next group commit. Two
 * puts of one run in a batch write only the later. The queue's own columns (owner, lease,
 * cancel request) are kept, and a put never replaces a newer attempt. Returns the ticket for
 * store_wait without waiting (unless the queue is overfull). Any thread. */
uint64_t store_run_put(store_t *st, const run_rec_t *r)
{
    return writer_put_run(st->w, r);
}

/* See store.h. Only a queued run's values are kept: a scheduled one is claimed too late for
 * its values to be worth holding, and a running or finished one is never claimed. */
uint64_t store_run_put_kept(store_t *st, const run_rec_t *r)
{
    if (r->status == RUN_QUEUED)
        claim_cache_put(st->claims, r->id, r->input, r->trigger_info);
    return writer_put_run(st->w, r);
}

/* Queue an insert-or-replace of step S (borrowed, as in store_run_put), keyed by (run_id,
 * attempt, seq). Returns its ticket. Any thread. */
uint64_t store_step_put(store_t *st, const step_rec_t *s)
{
    return writer_put_step(st->w, s);
}

/* Block until every write up to TICKET is committed: 0, or the error of the batch that held
 * TICKET (its writes are lost). Any thread. */
int store_wait(store_t *st, uint64_t ticket, err_t *err)
{
    return writer_wait(st->w, ticket, err);
}

/* Commit everything queued so far, without waiting out the group-commit window, and wait for
 * it: 0 or the error of a batch that failed meanwhile. Any thread. */
int store_flush(store_t *st, err_t *err)
{
    return writer_flush(st->w, err);
}

/* See store.h. Any thread. */
void store_on_commit(store_t *st, uint64_t ticket, store_commit_fn fn, void *arg)
{
    writer_notify(st->w, ticket, fn, arg);
}

/* See store.h. */
bool store_try_commit(store_t *st, uint64_t ticket, int *rc, err_t *err)
{
    return writer_try_commit(st->w, ticket, rc, err);
}

/* Transactions the writer has committed. Any thread. */
uint64_t store_commit_count(store_t *st)
{
    return writer_commit_count(st->w);
}

/* ---- run history: reads ---------------------------------------------------------------------- */

/* Run ID into *OUT (owned; run_rec_free). BR_ENOT_FOUND or BR_ESTORE. Sees committed writes
 * only. Any thread. */
int store_run_get(store_t *st, const char *id, run_rec_t **out, err_t *err)
{
    if (!id)
        return err_set(err, BR_ENOT_FOUND, "no run id given");
    return st->ops->run_get(st->be, id, out, err);
}

/* Steps of RUN_ID's latest attempt in seq order: *OUT an owned array of *N owned steps
 * (step_rec_free each, then free). Any thread. */
int store_run_steps(store_t *st, const char *run_id, step_rec_t ***out, int *n, err_t *err)
{
    *out = NULL;
    *n = 0;
    return st->ops->run_steps(st->be, run_id, out, n, err);
}

/* Ids of the runs that step SEQ of PARENT_ID started, oldest first, at most LIMIT (<= 0 for
 * all): *OUT an owned array of strings. Any thread. */
int store_step_children(store_t *st, const char *parent_id, int seq, int limit, json_t **out,
                        err_t *err)
{
    return st->ops->step_children(st->be, parent_id, seq, limit, out, err);
}

/* One page of the runs matching F (borrowed), newest first: *OUT an owned array of *N owned
 * records (run_recs_free); *NEXT_CURSOR (owned, NULL on the last page) goes into F->cursor
 * for the next page. LIMIT is clamped to 1..1000. Any thread. */
int store_runs_list(store_t *st, const run_filter_t *f, run_rec_t ***out, int *n,
                    char **next_cursor, err_t *err)
{
    char *cursor = NULL;
    *out = NULL;
    *n = 0;
    int rc = st->ops->runs_list(st->be, f, out, n, &cursor, err);
    if (next_cursor)
        *next_cursor = cursor;
    else
        free(cursor);
    return rc;
}

/* Every child of PARENT_ID, oldest first; ownership as store_runs_list. Any thread. */
int store_run_children(store_t *st, const char *parent_id, run_rec_t ***out, int *n, err_t *err)
{
    *out = NULL;
    *n = 0;
    return st->ops->run_children(st->be, parent_id, out, n, err);
}

/* How many runs have ROOT_ID as their root, the root included. Any thread. */
int store_root_count(store_t *st, const char *root_id, int64_t *count, err_t *err)
{
    return st->ops->root_count(st->be, root_id, count, err);
}

/* ---- the queue ------------------------------------------------------------------------------- */

/* Claim up to MAX due runs oldest first (queued ones, and scheduled ones due by NOW), skipping
 * integrations in EXCLUDE (borrowed array of names, may be NULL): each becomes running, owned
 * by OWNER until LEASE_UNTIL, started at NOW. One transaction in the writer, so concurrent
 * claimers never get the same run. *OUT and *N as in store_runs_list. Durable on return. Any
 * thread. */
int store_queue_claim(store_t *st, const char *owner, int64_t now, int64_t lease_until, int max,
                      const json_t *exclude, run_rec_t ***out, int *n, err_t *err)
{
    *out = NULL;
    *n = 0;
    if (max <= 0)
        return 0;
    store_op_t op = {.kind = STORE_OP_CLAIM};
    op.u.claim.owner = owner;
    op.u.claim.now = now;
    op.u.claim.lease_until = lease_until;
    op.u.claim.max = max;
    op.u.claim.exclude = exclude;
    op.u.claim.cache = st->claims;
    int rc = writer_exec(st->w, &op, err);
    if (rc < 0)
        return rc;
    *out = op.u.claim.out;
    *n = op.u.claim.n;
    return 0;
}

/* Claim run ID for OWNER until LEASE_UNTIL when it is due at NOW (queued, or scheduled with
 * scheduled_at <= NOW), as store_queue_claim does for one run: *OUT (owned) is the running
 * record. BR_ENOT_FOUND when ID is missing or not claimable (already claimed, finished,
 * cancelled, not yet due). Durable on return. Any thread. */
int store_queue_claim_id(store_t *st, const char *id, const char *owner, int64_t now,
                         int64_t lease_until, run_rec_t **out, err_t *err)
{
    *out = NULL;
    if (!id)
        return err_set(err, BR_ENOT_FOUND, "no run id given");
    store_op_t op = {.kind = STORE_OP_CLAIM_ID};
    op.u.claim_id.id = id;
    op.u.claim_id.owner = owner;
    op.u.claim_id.now = now;
    op.u.claim_id.lease_until = lease_until;
    op.u.claim_id.cache = st->claims;
    int rc = writer_exec(st->w, &op, err);
    if (rc == 0)
        *out = op.u.claim_id.out;
    return rc;
}

/* Earliest scheduled_at of a queued or scheduled run, 0 when none (committed runs only). Any
 * thread. */
int store_queue_next_due(store_t *st, int64_t *when, err_t *err)
{
    return st->ops->queue_next_due(st->be, when, err);
}

/* {"scheduled": n, "queued": n, "running": n}, owned. Any thread. */
int store_queue_counts(store_t *st, json_t **out, err_t *err)
{
    return st->ops->queue_counts(st->be, out, err);
}

/* Move the lease of every run OWNER is running to LEASE_UNTIL. Durable on return. Any
 * thread. */
int store_lease_renew(store_t *st, const char *owner, int64_t lease_until, err_t *err)
{
    store_op_t op = {.kind = STORE_OP_RENEW};
    op.u.renew.owner = owner;
    op.u.renew.lease_until = lease_until;
    return writer_exec(st->w, &op, err);
}

/* Take over running runs whose owner is gone: with ALL every running run, leased or run
 * inline (no owner), else those whose lease ended before NOW; runs owned by NOT_OWNER (the
 * caller; may be NULL) are never taken. A root or async run with retry_on_interrupt and
 * attempt < 3 is queued again as attempt + 1 (due at NOW); every other one fails with ERROR
 * {"code": "interrupted"}. *REQUEUED and *FAILED (may be NULL) count them. Durable on return.
 * Any thread. */
int store_recover(store_t *st, int64_t now, bool all, const char *not_owner, int *requeued,
                  int *failed, err_t *err)
{
    store_op_t op = {.kind = STORE_OP_RECOVER};
    op.u.recover.now = now;
    op.u.recover.all = all;
    op.u.recover.not_owner = not_owner;
    int rc = writer_exec(st->w, &op, err);
    if (requeued)
        *requeued = rc < 0 ? 0 : op.u.recover.requeued;
    if (failed)
        *failed = rc < 0 ? 0 : op.u.recover.failed;
    return rc;
}

/* Cancel run ID itself: scheduled or queued, it becomes cancelled at NOW with ERROR
 * {"code": "cancelled"}; running, it is marked cancel_requested (its engine stops it); a
 * finished run is left as it is. *STATUS (may be NULL) is its status afterwards.
 * BR_ENOT_FOUND when there is no such run. Durable on return. Any thread. */
int store_run_cancel(store_t *st, const char *id, int64_t now, run_status_t *status, err_t *err)
{
    if (!id)
        return err_set(err, BR_ENOT_FOUND, "no run id given");
    store_op_t op = {.kind = STORE_OP_RUN_CANCEL};
    op.u.run_cancel.id = id;
    op.u.run_cancel.now = now;
    int rc = writer_exec(st->w, &op, err);
    if (rc == 0 && status)
        *status = op.u.run_cancel.status;
    return rc;
}

/* Ids of the running runs of OWNER (NULL: runs without an owner, run inline) whose
 * cancellation was requested, oldest first: *OUT an owned array of strings. Sees committed
 * writes. Any thread. */
int store_cancel_requested(store_t *st, const char *owner, json_t **out, err_t *err)
{
    return st->ops->cancel_requested(st->be, owner, out, err);
}

/* Announce an engine process on this store until store_close (or the process's end, which
 * the operating system notices for us). *ALONE is true when no other engine process had
 * announced itself: then every run still marked running belongs to a process that is gone,
 * and store_recover with ALL may take them all. Any thread. */
int store_engine_lock(store_t *st, bool *alone, err_t *err)
{
    bool a = false;
    int rc = st->ops->engine_lock(st->be, &a, err);
    if (alone)
        *alone = rc == 0 && a;
    return rc;
}

/* Cancel RUN_ID's descendants, not entering detached runs: scheduled and queued ones become
 * cancelled at NOW; running ones are marked and their ids returned in *RUNNING (owned array;
 * may be NULL if the caller does not want them) for the engine to stop. Durable on return.
 * Any thread. */
int store_cancel_descendants(store_t *st, const char *run_id, int64_t now, json_t **running,
                             err_t *err)
{
    store_op_t op = {.kind = STORE_OP_CANCEL};
    op.u.cancel.run_id = run_id;
    op.u.cancel.now = now;
    int rc = writer_exec(st->w, &op, err);
    json_t *ids = rc < 0 ? NULL : op.u.cancel.running;
    if (running)
        *running = ids;
    else
        json_decref(ids);
    return rc;
}

/* ---- idempotency ----------------------------------------------------------------------------- */

/* Claim KEY in SCOPE for RUN_ID: when new it is recorded and EXISTING is left empty, else
 * EXISTING gets the first claimer's run id. Durable on return. Any thread. */
int store_idempotency_claim(store_t *st, const char *scope, const char *key, const char *run_id,
                            char existing[UUID_STR_LEN], err_t *err)
{
    existing[0] = '\0';
    if (!scope || !key || !run_id)
        return err_set(err, BR_EINPUT_INVALID, "an idempotency claim needs scope, key and run");
    store_op_t op = {.kind = STORE_OP_IDEMPOTENCY};
    op.u.idem.scope = scope;
    op.u.idem.key = key;
    op.u.idem.run_id = run_id;
    int rc = writer_exec(st->w, &op, err);
    if (rc == 0)
        memcpy(existing, op.u.idem.existing, UUID_STR_LEN);
    return rc;
}

/* ---- retention ------------------------------------------------------------------------------- */

/* Delete the runs that finished before BEFORE, their steps, and idempotency keys older than
 * BEFORE whose run is gone. *DELETED (may be NULL) counts the runs. Runs go in chunks, each
 * its own transaction, so other writes interleave with a large purge; what is deleted is
 * durable on return. Any thread. */
int store_purge(store_t *st, int64_t before, int64_t *deleted, err_t *err)
{
    int64_t total = 0;
    int rc;
    for (;;) {
        store_op_t op = {.kind = STORE_OP_PURGE};
        op.u.purge.before = before;
        op.u.purge.chunk = PURGE_CHUNK;
        if ((rc = writer_exec(st->w, &op, err)) < 0)
            break;
        total += op.u.purge.deleted;
        if (op.u.purge.deleted < PURGE_CHUNK)
            break;
    }
    if (deleted)
        *deleted = total;
    return rc;
}

/* ---- API tokens ------------------------------------------------------------------------------ */

static bool token_role_ok(const char *role)
{
    return role && (strcmp(role, "admin") == 0 || strcmp(role, "editor") == 0 ||
                    strcmp(role, "viewer") == 0 || strcmp(role, "invoker") == 0);
}

/* Store the new token T (borrowed: its id, role, scopes, hash, description and times; the
 * secret is never given to the store). BR_EINPUT_INVALID for a record without id, a known
 * role or array scopes; BR_ECONFLICT when the id exists. Durable on return. Any thread. */
int store_token_put(store_t *st, const token_rec_t *t, err_t *err)
{
    if (!t || !t->id[0] || !memchr(t->id, '\0', sizeof t->id))
        return err_set(err, BR_EINPUT_INVALID, "a token needs an id");
    if (!token_role_ok(t->role))
        return err_set(err, BR_EINPUT_INVALID, "unknown token role \"%s\"", t->role ? t->role : "");
    if (t->scopes && !json_is_array(t->scopes))
        return err_set(err, BR_EINPUT_INVALID, "a token's scopes must be an array");
    store_op_t op = {.kind = STORE_OP_TOKEN_PUT};
    op.u.token_put.rec = t;
    return writer_exec(st->w, &op, err);
}

/* Token ID into *OUT (owned; token_rec_free), revoked ones too. BR_ENOT_FOUND when unknown.
 * Sees committed writes. Any thread. */
int store_token_get(store_t *st, const char *id, token_rec_t **out, err_t *err)
{
    *out = NULL;
    if (!id || !*id)
        return err_set(err, BR_ENOT_FOUND, "no token id given");
    return st->ops->token_get(st->be, id, out, err);
}

/* Every token as token_rec_to_json (no hashes), newest first: *OUT an owned array. Any
 * thread. */
int store_token_list(store_t *st, json_t **out, err_t *err)
{
    *out = NULL;
    return st->ops->token_list(st->be, out, err);
}

/* Revoke token ID at NOW (epoch ms; 0 or less means now). Revoking again keeps the first
 * time. BR_ENOT_FOUND when unknown. Durable on return. Any thread. */
int store_token_revoke(store_t *st, const char *id, int64_t now, err_t *err)
{
    if (!id || !*id)
        return err_set(err, BR_ENOT_FOUND, "no token id given");
    store_op_t op = {.kind = STORE_OP_TOKEN_REVOKE};
    op.u.token_revoke.id = id;
    op.u.token_revoke.now = now > 0 ? now : clock_now_ms();
    return writer_exec(st->w, &op, err);
}

/* Whether an active (unrevoked) token with ROLE exists, into *ANY: the server asks for
 * "admin" at start to decide on the bootstrap token. Any thread. */
int store_token_any_active(store_t *st, const char *role, bool *any, err_t *err)
{
    *any = false;
    if (!role)
        return err_set(err, BR_EINPUT_INVALID, "no role given");
    return st->ops->token_any_active(st->be, role, any, err);
}

/* ---- connectors ------------------------------------------------------------------------------ */

/* Store DOC (canonical text) as connector SLUG's next version unless it equals the latest
 * (then *CREATED is false and *VERSION the latest); a new version moves the connections epoch.
 * SLUG and DOC borrowed; VERSION and CREATED may be NULL. Durable on return. 0,
 * BR_EINPUT_INVALID without a slug or document, or BR_ESTORE. Any thread. */
int store_connector_publish(store_t *st, const char *slug, const char *doc, int *version,
                            bool *created, err_t *err)
{
    if (!slug || !*slug || !doc)
        return err_set(err, BR_EINPUT_INVALID, "publish needs a connector slug and a document");
    return publish(st, STORE_OP_CONNECTOR_PUBLISH, slug, doc, NULL, version, created, err);
}

/* Version VERSION of connector SLUG (0 = latest) into *OUT (owned; integration_version_free),
 * its name the slug and archived false. BR_ENOT_FOUND when SLUG has no version,
 * BR_EVERSION_NOT_FOUND when VERSION does not exist, or BR_ESTORE. Any thread. */
int store_connector_get(store_t *st, const char *slug, int version, integration_version_t **out,
                        err_t *err)
{
    *out = NULL;
    if (!slug || !*slug)
        return err_set(err, BR_ENOT_FOUND, "no connector named");
    return st->ops->connector_get(st->be, slug, version, out, err);
}

/* Every connector by slug: *OUT an owned array of {"slug", "latest_version", "updated_at"},
 * updated_at (RFC 3339) the time of its latest version. Any thread. */
int store_connector_list(store_t *st, json_t **out, err_t *err)
{
    *out = NULL;
    return st->ops->connector_list(st->be, out, err);
}

/* SLUG's versions, oldest first: *OUT an owned array of {"version", "created_at"} (RFC 3339).
 * BR_ENOT_FOUND when SLUG has none. Any thread. */
int store_connector_versions(store_t *st, const char *slug, json_t **out, err_t *err)
{
    *out = NULL;
    if (!slug || !*slug)
        return err_set(err, BR_ENOT_FOUND, "no connector named");
    return st->ops->connector_versions(st->be, slug, out, err);
}

/* ---- connections ----------------------------------------------------------------------------- */

#define CONNECTION_ID_MAX 128

/* Whether ID matches ^[A-Za-z0-9][A-Za-z0-9_.-]*$ within CONNECTION_ID_MAX bytes. */
static bool connection_id_ok(const char *id)
{
    if (!id)
        return false;
    size_t n = strlen(id);
    if (n == 0 || n > CONNECTION_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

/* Check C before it reaches the store: a valid id, a connector, config an object (or NULL)
 * and secrets an object (or NULL) whose every member is {"sealed": "<text>", ...}. The last
 * check keeps a plain secret value that slipped past the vault from ever being written. */
static int connection_check(const connection_rec_t *c, err_t *err)
{
    if (!c)
        return err_set(err, BR_EINPUT_INVALID, "no connection given");
    if (!connection_id_ok(c->id))
        return err_set(err, BR_EINPUT_INVALID,
                       "a connection id is 1 to %d letters, digits, '_', '.' or '-', starting "
                       "with a letter or digit",
                       CONNECTION_ID_MAX);
    if (!c->connector || !*c->connector)
        return err_set(err, BR_EINPUT_INVALID, "connection %s names no connector", c->id);
    if (c->config && !json_is_object(c->config))
        return err_set(err, BR_EINPUT_INVALID, "connection %s: config must be an object", c->id);
    if (c->secrets && !json_is_object(c->secrets))
        return err_set(err, BR_EINPUT_INVALID, "connection %s: secrets must be an object", c->id);
    const char *name;
    json_t *v;
    json_object_foreach(c->secrets, name, v)
    {
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "sealed")))
            return err_set(err, BR_EINPUT_INVALID,
                           "connection %s: secret %s is not sealed; the store keeps sealed "
                           "secrets only",
                           c->id, name);
    }
    return 0;
}

/* Insert or replace connection C (borrowed; its config and secrets are referenced only until
 * return) as a whole. created_at 0 means now for a new connection and "keep" for an existing
 * one; updated_at 0 means now. Moves the connections epoch. Durable on return. 0,
 * BR_EINPUT_INVALID (see connection_check) or BR_ESTORE. Any thread. */
int store_connection_put(store_t *st, const connection_rec_t *c, err_t *err)
{
    int rc = connection_check(c, err);
    if (rc < 0)
        return rc;
    store_op_t op = {.kind = STORE_OP_CONNECTION_PUT};
    op.u.connection_put.rec = c;
    op.u.connection_put.now = clock_now_ms();
    return writer_exec(st->w, &op, err);
}

/* Connection ID into *OUT (owned; connection_rec_free), config and secrets as stored.
 * BR_ECONNECTION_NOT_FOUND when there is none, or BR_ESTORE. Any thread. */
int store_connection_get(store_t *st, const char *id, connection_rec_t **out, err_t *err)
{
    *out = NULL;
    if (!id || !*id)
        return err_set(err, BR_ECONNECTION_NOT_FOUND, "no connection id given");
    return st->ops->connection_get(st->be, id, out, err);
}

/* Every connection by id: *OUT an owned array of *N owned records (connection_recs_free). Any
 * thread. */
int store_connection_list(store_t *st, connection_rec_t ***out, int *n, err_t *err)
{
    *out = NULL;
    *n = 0;
    return st->ops->connection_list(st->be, out, n, err);
}

/* Delete connection ID; moves the connections epoch. BR_ECONNECTION_NOT_FOUND when there is
 * none. Durable on return. Any thread. */
int store_connection_delete(store_t *st, const char *id, err_t *err)
{
    if (!id || !*id)
        return err_set(err, BR_ECONNECTION_NOT_FOUND, "no connection id given");
    store_op_t op = {.kind = STORE_OP_CONNECTION_DELETE};
    op.u.connection_delete.id = id;
    return writer_exec(st->w, &op, err);
}

/* Replace the N connections RECS (borrowed), each of which must exist, in one transaction:
 * when any is missing (BR_ECONNECTION_NOT_FOUND) or invalid (BR_EINPUT_INVALID) nothing
 * changes. created_at is kept unless a record gives one; updated_at 0 means now. Moves the
 * connections epoch once. N = 0 writes nothing. Durable on return. Any thread. */
int store_connection_put_all(store_t *st, connection_rec_t *const *recs, int n, err_t *err)
{
    if (n < 0 || (n > 0 && !recs))
        return err_set(err, BR_EINPUT_INVALID, "no connections given");
    if (n == 0)
        return 0;
    for (int i = 0; i < n; i++) {
        int rc = connection_check(recs[i], err);
        if (rc < 0)
            return rc;
    }
    store_op_t op = {.kind = STORE_OP_CONNECTION_PUT_ALL};
    op.u.connection_put_all.recs = recs;
    op.u.connection_put_all.n = n;
    op.u.connection_put_all.now = clock_now_ms();
    return writer_exec(st->w, &op, err);
}

/* A counter that moves with every connector publish and connection write, by any process:
 * one indexed read. Any thread. */
int store_connections_epoch(store_t *st, int64_t *epoch, err_t *err)
{
    *epoch = 0;
    return st->ops->connections_epoch(st->be, epoch, err);
}
