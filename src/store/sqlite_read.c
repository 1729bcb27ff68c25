/* sqlite_read.c - the SQLite backend's read side: integrations, run history, the queue's
 * counters and API tokens, on read-only connections borrowed from the pool.
 *
 * Each function borrows one connection, runs its statements, resets them (so no read
 * transaction outlives the call and later reads see newer commits) and gives it back. Any
 * thread may call any function here at any time.
 */
#include "store/sqlite_internal.h"

#include "core/buf.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Borrow a reader and prepare SQL on it. On failure nothing is held. */
int sq_begin_read(store_backend_t *be, const char *sql, sq_conn_t **c, sqlite3_stmt **st,
                  err_t *err)
{
    int rc = sq_reader_get(be, c, err);
    if (rc < 0)
        return rc;
    if ((rc = sq_prepare(*c, sql, st, err)) < 0) {
        sq_reader_put(be, *c);
        return rc;
    }
    sqlite3_clear_bindings(*st);
    return 0;
}

void sq_end_read(store_backend_t *be, sq_conn_t *c, sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sq_reader_put(be, c);
}

/* Step ST (on C) for a single integer (SQL NULL and no row read as 0): 0 or BR_ESTORE. */
int sq_one_int64(sq_conn_t *c, sqlite3_stmt *st, int64_t *out, err_t *err, const char *what)
{
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        return 0;
    }
    if (s == SQLITE_DONE) {
        *out = 0;
        return 0;
    }
    return sq_fail(c->db, err, what);
}

/* Step ST (bound, from sq_begin_read with C) through its rows into an owned array of ROW's
 * values, and give C and ST back. *OUT is set only on success; a row that ROW refuses ends it
 * with ROW's error, a failed step with BR_ESTORE naming WHAT. */
int sq_read_array(store_backend_t *be, sq_conn_t *c, sqlite3_stmt *st, sq_row_json_cb row,
                  const char *what, json_t **out, err_t *err)
{
    json_t *arr = json_array();
    int rc = 0, s = SQLITE_DONE;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *v = NULL;
        if ((rc = row(st, &v, err)) == 0)
            json_array_append_new(arr, v);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sq_fail(c->db, err, what);
    sq_end_read(be, c, st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* An sq_row_json_cb: column 0 as a string. */
static int row_text(sqlite3_stmt *st, json_t **out, err_t *err)
{
    (void)err;
    *out = json_string((const char *)sqlite3_column_text(st, 0));
    return 0;
}

/* ---- integrations (their versions: sqlite_versions.c) -------------------------------------- */

static const char SQL_INTEGRATION_LIST[] =
    "SELECT i.name, (SELECT max(version) FROM integration_versions v WHERE v.name=i.name),"
    " (SELECT json_group_array(trigger_id) FROM (SELECT trigger_id FROM triggers t"
    "   WHERE t.name=i.name ORDER BY trigger_id)),"
    " i.archived, i.updated_at FROM integrations i WHERE ?1 OR i.archived=0 ORDER BY i.name";

/* An sq_row_json_cb for SQL_INTEGRATION_LIST. */
static int row_integration(sqlite3_stmt *st, json_t **out, err_t *err)
{
    json_t *triggers;
    int rc = sq_col_json(st, 2, &triggers, err);
    if (rc < 0)
        return rc;
    *out = json_pack("{s:s, s:i, s:o, s:b, s:o}", "name", (const char *)sqlite3_column_text(st, 0),
                     "latest_version", sqlite3_column_int(st, 1), "triggers",
                     triggers ? triggers : json_array(), "archived", sqlite3_column_int(st, 3),
                     "updated_at", jsonx_time(sqlite3_column_int64(st, 4)));
    return 0;
}

/* Every integration (archived ones when INCLUDE_ARCHIVED), by name: an owned array of
 * {"name", "latest_version", "triggers", "archived", "updated_at" (RFC 3339)}. */
int sq_integration_list(store_backend_t *be, bool include_archived, json_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_INTEGRATION_LIST, &c, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int(st, 1, include_archived);
    return sq_read_array(be, c, st, row_integration, "cannot list integrations", out, err);
}

static const char SQL_TRIGGER_TARGETS[] =
    "SELECT t.name FROM triggers t JOIN integrations i ON i.name=t.name"
    " WHERE t.trigger_id=?1 AND i.archived=0 ORDER BY t.name";

/* Names of the live integrations listing TRIGGER_ID, sorted: an owned array of strings. */
int sq_trigger_targets(store_backend_t *be, const char *trigger_id, json_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_TRIGGER_TARGETS, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, trigger_id);
    return sq_read_array(be, c, st, row_text, "cannot read trigger targets", out, err);
}

static const char SQL_EPOCH[] = "SELECT epoch FROM catalog WHERE id=1";

/* The catalog's change counter: one primary-key read. */
int sq_catalog_epoch(store_backend_t *be, int64_t *epoch, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_EPOCH, &c, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_one_int64(c, st, epoch, err, "cannot read the catalog");
    sq_end_read(be, c, st);
    return rc;
}

/* ---- runs and steps -------------------------------------------------------------------------- */

static const char SQL_RUN_GET[] = "SELECT " SQ_RUN_COLS " FROM runs WHERE id=?1";

/* Run ID into *OUT (owned; run_rec_free), or BR_ENOT_FOUND. */
int sq_run_get(store_backend_t *be, const char *id, run_rec_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_RUN_GET, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        rc = sq_row_run(st, NULL, out, err);
    else if (s == SQLITE_DONE)
        rc = err_set(err, BR_ENOT_FOUND, "run %s not found", id);
    else
        rc = sq_fail(c->db, err, "cannot read a run");
    sq_end_read(be, c, st);
    return rc;
}

/* The latest attempt is the run's own; steps written before their run record (or of a run
 * already purged) fall back to the highest attempt on record. */
static const char SQL_STEPS[] =
    "SELECT run_id, attempt, seq, task_id, type, status, task_attempt, started_at, duration_ms,"
    " result, error FROM steps WHERE run_id=?1 AND attempt=coalesce("
    " (SELECT attempt FROM runs WHERE id=?1), (SELECT max(attempt) FROM steps WHERE run_id=?1))"
    " ORDER BY seq";

static int row_step(sqlite3_stmt *st, step_rec_t **out, err_t *err)
{
    step_rec_t *s = XNEW(step_rec_t);
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(s->run_id, sizeof s->run_id, "%s", id ? id : "");
    s->attempt = sqlite3_column_int(st, 1);
    s->seq = sqlite3_column_int(st, 2);
    s->task_id = sq_col_str(st, 3);
    s->type = sq_col_str(st, 4);
    s->status = sq_col_str(st, 5);
    s->task_attempt = sqlite3_column_int(st, 6);
    s->started_at = sqlite3_column_int64(st, 7);
    s->duration_ms = sqlite3_column_int64(st, 8);
    int rc;
    if ((rc = sq_col_json(st, 9, &s->result, err)) < 0 ||
        (rc = sq_col_json(st, 10, &s->error, err)) < 0) {
        step_rec_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* The steps a run keeps in its own row (store_run_hold_step), with the attempt they are of. */
static const char SQL_HELD_STEPS[] = "SELECT attempt, steps FROM runs WHERE id=?1";

static int by_seq(const void *a, const void *b)
{
    const step_rec_t *x = *(step_rec_t *const *)a, *y = *(step_rec_t *const *)b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Append the rows of ST (SQL_STEPS, bound) to *V. */
static int read_step_rows(sq_conn_t *c, sqlite3_stmt *st, step_rec_t ***v, int *n, int *cap,
                          err_t *err)
{
    int s, rc;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        step_rec_t *step;
        if ((rc = row_step(st, &step, err)) < 0)
            return rc;
        step_vec_push(v, n, cap, step);
    }
    return s == SQLITE_DONE ? 0 : sq_fail(c->db, err, "cannot read steps");
}

/* Steps of RUN_ID's latest attempt by seq, those kept in its row and those written alone: *OUT
 * an owned array of *N owned steps. */
int sq_run_steps(store_backend_t *be, const char *run_id, step_rec_t ***out, int *n, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_HELD_STEPS, &c, &st, err);
    if (rc < 0)
        return rc;
    /* One snapshot for both reads: a run moves steps from its row to rows of their own. */
    bool txn = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    sq_bind_str(st, 1, run_id);
    step_rec_t **v = NULL;
    int count = 0, cap = 0, s = sqlite3_step(st);
    if (s == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL)
        rc = store_held_steps_parse(run_id, (const char *)sqlite3_column_text(st, 1),
                                    (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_int(st, 0),
                                    &v, &count, &cap, err);
    else if (s != SQLITE_ROW && s != SQLITE_DONE)
        rc = sq_fail(c->db, err, "cannot read steps");
    sqlite3_reset(st);
    if (rc == 0 && (rc = sq_prepare(c, SQL_STEPS, &st, err)) == 0) {
        sqlite3_clear_bindings(st);
        sq_bind_str(st, 1, run_id);
        rc = read_step_rows(c, st, &v, &count, &cap, err);
        sqlite3_reset(st);
    }
    if (txn)
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    sq_reader_put(be, c);
    if (rc < 0) {
        for (int i = 0; i < count; i++)
            step_rec_free(v[i]);
        free(v);
        return rc;
    }
    if (count > 1)
        qsort(v, (size_t)count, sizeof *v, by_seq);
    *out = v;
    *n = count;
    return 0;
}

static const char SQL_STEP_CHILDREN[] = "SELECT id FROM runs WHERE " SAME_ROOT_AS("?1")
    " AND parent_id=?1 AND parent_step=?2 ORDER BY id LIMIT ?3";

/* Ids of the runs started by step SEQ of PARENT_ID, oldest first, at most LIMIT (<= 0: all):
 * an owned array of strings. */
int sq_step_children(store_backend_t *be, const char *parent_id, int seq, int limit, json_t **out,
                     err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_STEP_CHILDREN, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, parent_id);
    sqlite3_bind_int(st, 2, seq);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    return sq_read_array(be, c, st, row_text, "cannot read child runs", out, err);
}

/* Runs matching F newest first (ids are UUIDv7, so id order is creation order), one page of
 * F->limit (clamped to 1..1000). *NEXT_CURSOR (owned) is the last id returned when more
 * remain, else NULL. The statement depends on which filters are set, so it is prepared per
 * call rather than cached; listing is not on the hot path. */
int sq_runs_list(store_backend_t *be, const run_filter_t *f, run_rec_t ***out, int *n,
                 char **next_cursor, err_t *err)
{
    int limit = f->limit < 1 ? 1 : f->limit > 1000 ? 1000 : f->limit;
    char floor_id[UUID_STR_LEN];
    buf_t sql = BUF_INIT;
    buf_puts(&sql, "SELECT " SQ_RUN_COLS " FROM runs WHERE 1");
    if (f->integration)
        buf_puts(&sql, " AND integration=?1");
    if (f->status >= 0)
        buf_puts(&sql, " AND status=?2");
    if (f->root_id)
        buf_puts(&sql, " AND root_id=?3");
    if (f->parent_id)
        buf_puts(&sql, " AND " SAME_ROOT_AS("?4") " AND parent_id=?4");
    if (f->since > 0) {
        /* A minute of slack: an id's time may run ahead of created_at by a little. */
        sq_id_floor(f->since - 60000, floor_id);
        buf_puts(&sql, " AND id>=?5 AND created_at>=?6");
    }
    if (f->cursor)
        buf_puts(&sql, " AND id<?7");
    buf_puts(&sql, " ORDER BY id DESC LIMIT ?8");

    sq_conn_t *c;
    int rc = sq_reader_get(be, &c, err);
    if (rc < 0) {
        buf_deinit(&sql);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql.data, -1, &st, NULL) != SQLITE_OK) {
        rc = sq_fail(c->db, err, "cannot list runs");
        goto out;
    }
    if (f->integration)
        sq_bind_str(st, 1, f->integration);
    if (f->status >= 0)
        sq_bind_str(st, 2, run_status_name((run_status_t)f->status));
    if (f->root_id)
        sq_bind_str(st, 3, f->root_id);
    if (f->parent_id)
        sq_bind_str(st, 4, f->parent_id);
    if (f->since > 0) {
        sq_bind_str(st, 5, floor_id);
        sqlite3_bind_int64(st, 6, f->since);
    }
    if (f->cursor)
        sq_bind_str(st, 7, f->cursor);
    sqlite3_bind_int(st, 8, limit + 1);
    run_rec_t **v;
    int count;
    if ((rc = sq_collect_runs(c->db, st, NULL, &v, &count, err)) < 0)
        goto out;
    *next_cursor = NULL;
    if (count > limit) {
        run_rec_free(v[limit]);
        count = limit;
        *next_cursor = xstrdup(v[limit - 1]->id);
    }
    *out = v;
    *n = count;
out:
    sqlite3_finalize(st);
    sq_reader_put(be, c);
    buf_deinit(&sql);
    return rc;
}

static const char SQL_CHILDREN[] =
    "SELECT " SQ_RUN_COLS " FROM runs WHERE " SAME_ROOT_AS("?1") " AND parent_id=?1 ORDER BY id";

/* Children of PARENT_ID, oldest first: *OUT an owned array of *N owned records. */
int sq_run_children(store_backend_t *be, const char *parent_id, run_rec_t ***out, int *n,
                    err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_CHILDREN, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, parent_id);
    rc = sq_collect_runs(c->db, st, NULL, out, n, err);
    sq_end_read(be, c, st);
    return rc;
}

/* Read from runs_tree alone, never the table: a fan-out's tree of many thousand runs is
 * counted when its runs are drained (an index that left a root's own children out made this
 * read every child's row, and halved the drain rate). */
static const char SQL_ROOT_COUNT[] = "SELECT count(*) FROM runs WHERE root_id=?1";

/* Runs in ROOT_ID's tree, the root included. */
int sq_root_count(store_backend_t *be, const char *root_id, int64_t *count, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_ROOT_COUNT, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, root_id);
    rc = sq_one_int64(c, st, count, err, "cannot count runs");
    sq_end_read(be, c, st);
    return rc;
}

/* ---- the queue ------------------------------------------------------------------------------- */

/* Two min() lookups on the runs_active index, one per waiting status. */
static const char SQL_NEXT_DUE[] =
    "SELECT min(m) FROM (SELECT min(scheduled_at) AS m FROM runs WHERE status='queued'"
    " UNION ALL SELECT min(scheduled_at) FROM runs WHERE status='scheduled')";

/* Earliest scheduled_at among queued and scheduled runs, 0 when there is none. */
int sq_queue_next_due(store_backend_t *be, int64_t *when, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_NEXT_DUE, &c, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_one_int64(c, st, when, err, "cannot read the queue");
    sq_end_read(be, c, st);
    return rc;
}

static const char SQL_QUEUE_COUNTS[] =
    "SELECT status, count(*) FROM runs"
    " WHERE status='scheduled' OR status='queued' OR status='running' GROUP BY status";

/* {"scheduled": n, "queued": n, "running": n}, owned. */
int sq_queue_counts(store_backend_t *be, json_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_QUEUE_COUNTS, &c, &st, err);
    if (rc < 0)
        return rc;
    json_t *o = json_pack("{s:i, s:i, s:i}", "scheduled", 0, "queued", 0, "running", 0);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(o, (const char *)sqlite3_column_text(st, 0),
                            json_integer(sqlite3_column_int64(st, 1)));
    if (s != SQLITE_DONE)
        rc = sq_fail(c->db, err, "cannot count the queue");
    sq_end_read(be, c, st);
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

static const char SQL_CANCEL_REQUESTED[] =
    "SELECT id FROM runs WHERE status='running' AND owner IS ?1 AND cancel_requested=1"
    " ORDER BY id";

/* Ids of OWNER's running runs whose cancellation was requested (OWNER NULL: runs without an
 * owner): an owned array of strings. */
int sq_cancel_requested(store_backend_t *be, const char *owner, json_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_CANCEL_REQUESTED, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, owner);
    return sq_read_array(be, c, st, row_text, "cannot read cancellations", out, err);
}

/* ---- API tokens ------------------------------------------------------------------------------ */

#define TOKEN_COLS "id, role, scopes, hash, description, created_at, revoked_at"

static const char SQL_TOKEN_GET[] = "SELECT " TOKEN_COLS " FROM tokens WHERE id=?1";
static const char SQL_TOKEN_LIST[] =
    "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at DESC, id DESC";
static const char SQL_TOKEN_ANY[] = "SELECT 1 FROM tokens WHERE role=?1 AND revoked_at=0 LIMIT 1";

/* The token in the current row (TOKEN_COLS) as an owned record. A hash that is not 32 bytes
 * or scopes that are not an array mean a damaged row: BR_ESTORE. */
static int row_token(sqlite3_stmt *st, token_rec_t **out, err_t *err)
{
    token_rec_t *t = XNEW(token_rec_t);
    int rc = 0;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(t->id, sizeof t->id, "%s", id ? id : "");
    t->role = sq_col_str(st, 1);
    if ((rc = sq_col_json(st, 2, &t->scopes, err)) < 0)
        goto out;
    if (!json_is_array(t->scopes)) {
        rc = err_set(err, BR_ESTORE, "token %s has damaged scopes", t->id);
        goto out;
    }
    const void *hash = sqlite3_column_blob(st, 3);
    if (!hash || sqlite3_column_bytes(st, 3) != (int)sizeof t->hash) {
        rc = err_set(err, BR_ESTORE, "token %s has a damaged hash", t->id);
        goto out;
    }
    memcpy(t->hash, hash, sizeof t->hash);
    t->description = sq_col_str(st, 4);
    t->created_at = sqlite3_column_int64(st, 5);
    t->revoked_at = sqlite3_column_int64(st, 6);
    *out = t;
    t = NULL;
out:
    token_rec_free(t);
    return rc;
}

/* Token ID into *OUT (owned; token_rec_free), revoked ones too. BR_ENOT_FOUND when unknown. */
int sq_token_get(store_backend_t *be, const char *id, token_rec_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_TOKEN_GET, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        rc = row_token(st, out, err);
    else if (s == SQLITE_DONE)
        rc = err_set(err, BR_ENOT_FOUND, "no token %s", id);
    else
        rc = sq_fail(c->db, err, "cannot read a token");
    sq_end_read(be, c, st);
    return rc;
}

/* An sq_row_json_cb: the token in the current row as token_rec_to_json. */
static int row_token_json(sqlite3_stmt *st, json_t **out, err_t *err)
{
    token_rec_t *t = NULL;
    int rc = row_token(st, &t, err);
    if (rc == 0)
        *out = token_rec_to_json(t);
    token_rec_free(t);
    return rc;
}

/* Every token as token_rec_to_json, newest first: *OUT an owned array. */
int sq_token_list(store_backend_t *be, json_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_TOKEN_LIST, &c, &st, err);
    if (rc < 0)
        return rc;
    return sq_read_array(be, c, st, row_token_json, "cannot list tokens", out, err);
}

/* Whether an unrevoked token with ROLE exists, into *ANY. */
int sq_token_any_active(store_backend_t *be, const char *role, bool *any, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_TOKEN_ANY, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, role);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW || s == SQLITE_DONE)
        *any = s == SQLITE_ROW;
    else
        rc = sq_fail(c->db, err, "cannot read tokens");
    sq_end_read(be, c, st);
    return rc;
}
