/* sqlite.c - the SQLite backend: connections, schema and migrations, and the write side
 * (batched puts and the synchronous operations) that the writer thread drives.
 *
 * The database is one file in WAL mode with synchronous=FULL, so a commit is durable when it
 * returns. Only the writer thread writes, through be->w; readers use read-only connections
 * (sqlite_read.c) that WAL lets run beside it. SQL is only ever built with bound parameters.
 * Times are epoch ms; JSON values are compact text; a root run has parent_id NULL.
 */
#include "store/sqlite_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* ---- schema ---------------------------------------------------------------------------------- */

/* The writer's page cache, KiB: memory against insert speed. Inserts touch only the right
 * edge of each b-tree (ids are time-ordered), but a group commit of thousands of runs dirties
 * more pages than a small cache holds, and SQLite then spills them to the WAL mid-transaction.
 * Measured (100,000 sub-calls, same session): 32 MiB was 12-15% faster than 4 MiB, and gave
 * a 58 MiB server under S1 load against 25 MiB. Since a run's upsert touches fewer indexes,
 * 6 MiB measured as fast as 8 MiB (6.0-7.0 against 6.1-6.4 us per sub-call, within the noise)
 * and keeps a server under S1 at ~18.5 MiB instead of ~20.5. */
#define WRITER_CACHE_KIB "6144"

/* A migration is SQL text, or a function for a step SQL alone cannot say. */
typedef struct migration {
    const char *sql;
    int (*run)(sqlite3 *db, err_t *err);
} migration_t;

static int relax_not_null(sqlite3 *db, err_t *err);
static int add_held_steps(sqlite3 *db, err_t *err);

/* Migration N brings user_version N to N + 1; append, never edit a released one. */
static const migration_t migrations[] = {
    /* 0 -> 1: the first schema. */
    {"CREATE TABLE integrations ("
    "  name TEXT PRIMARY KEY,"
    "  archived INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE integration_versions ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  doc TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (name, version));"
    "CREATE TABLE triggers ("
    "  trigger_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  PRIMARY KEY (trigger_id, name)) WITHOUT ROWID;"
    "CREATE INDEX triggers_name ON triggers(name);"
    "CREATE TABLE catalog (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL);"
    "INSERT INTO catalog(id, epoch) VALUES (1, 0);"
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY,"
    "  integration TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  trigger_type TEXT,"
    "  trigger_info TEXT,"
    "  parent_id TEXT,"
    "  root_id TEXT NOT NULL,"
    "  depth INTEGER NOT NULL,"
    "  task TEXT,"
    "  parent_step INTEGER NOT NULL,"
    "  sync_child INTEGER NOT NULL,"
    "  detached INTEGER NOT NULL,"
    "  retry_on_interrupt INTEGER NOT NULL,"
    "  input TEXT,"
    "  output TEXT,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  scheduled_at INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  finished_at INTEGER NOT NULL,"
    "  deadline_at INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  idempotency_key TEXT,"
    "  owner TEXT,"
    "  lease_until INTEGER,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX runs_active ON runs(status, scheduled_at)"
    "  WHERE status='scheduled' OR status='queued' OR status='running';"
    "CREATE INDEX runs_parent ON runs(parent_id, parent_step) WHERE parent_id IS NOT NULL;"
    "CREATE INDEX runs_root ON runs(root_id);"
    "CREATE INDEX runs_integration ON runs(integration, id);"
    "CREATE INDEX runs_finished ON runs(finished_at) WHERE finished_at > 0;" /* gone in 5 */
    "CREATE TABLE steps ("
    "  run_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  task_id TEXT,"
    "  type TEXT,"
    "  status TEXT,"
    "  task_attempt INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  duration_ms INTEGER NOT NULL,"
    "  result TEXT,"
    "  error TEXT,"
    "  PRIMARY KEY (run_id, attempt, seq)) WITHOUT ROWID;"
    "CREATE TABLE idempotency ("
    "  scope TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  run_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_created ON idempotency(created_at);", NULL},
    /* 1 -> 2: runs and steps lose their NOT NULL constraints (see relax_not_null). */
    {NULL, relax_not_null},
    /* 2 -> 3: API tokens, by the public id; hash is BLAKE2b-256 of the secret (vault.h), the
     * secret itself is never stored; scopes is a JSON array of globs; revoked_at 0 = active.
     * IF NOT EXISTS: running it twice (a user_version set back by hand) changes nothing. */
    {"CREATE TABLE IF NOT EXISTS tokens ("
    "  id TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL,"
    "  scopes TEXT NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  description TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0);", NULL},
    /* 3 -> 4: connectors (immutable versions, like integration_versions) and connections
     * (config and secrets as JSON objects; secrets hold sealed text only, never a value).
     * counters holds named change counters: 'connections' moves with every connector publish
     * and connection write, so engines notice what another process changed with one read.
     * IF NOT EXISTS and OR IGNORE, as in 2 -> 3: running it twice changes nothing. */
    {"CREATE TABLE IF NOT EXISTS connectors ("
    "  slug TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  doc TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (slug, version));"
    "CREATE TABLE IF NOT EXISTS connections ("
    "  id TEXT PRIMARY KEY,"
    "  connector TEXT NOT NULL,"
    "  config TEXT NOT NULL,"
    "  secrets TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS counters ("
    "  name TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO counters(name, value) VALUES ('connections', 0);", NULL},
    /* 4 -> 5: purge walks runs by id (UUIDv7: creation time first), so the finished_at index,
     * which every finished run paid for on insert, goes. */
    {"DROP INDEX IF EXISTS runs_finished;", NULL},
    /* 5 -> 6: runs.steps (see add_held_steps). */
    {NULL, add_held_steps},
    /* 6 -> 7: one index for a run's tree and its children, (root_id, parent_id, parent_step),
     * in place of runs_root and runs_parent: a child run costs one index entry fewer to
     * write. Children are read by their parent's root and id (sqlite_read.c). */
    {"CREATE INDEX IF NOT EXISTS runs_tree ON runs(root_id, parent_id, parent_step);"
     "DROP INDEX IF EXISTS runs_parent;"
     "DROP INDEX IF EXISTS runs_root;", NULL},
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- helpers shared with sqlite_read.c ------------------------------------------------------- */

/* BR_ESTORE with WHAT and DB's latest message (see sqlite_internal.h). */
int sq_fail(sqlite3 *db, err_t *err, const char *what)
{
    return err_set(err, BR_ESTORE, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

/* C's cached statement for the static text SQL, prepared once and kept (persistent). The
 * cache is keyed by the text's address, so each statement must be a static array. */
int sq_prepare(sq_conn_t *c, const char *sql, sqlite3_stmt **out, err_t *err)
{
    size_t h = ((uintptr_t)sql >> 3) % SQ_CACHE;
    for (size_t i = 0; i < SQ_CACHE; i++) {
        size_t k = (h + i) % SQ_CACHE;
        if (c->cache[k].sql == sql) {
            *out = c->cache[k].st;
            return 0;
        }
        if (!c->cache[k].sql) {
            sqlite3_stmt *st = NULL;
            if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
                SQLITE_OK)
                return sq_fail(c->db, err, "cannot prepare a statement");
            c->cache[k].sql = sql;
            c->cache[k].st = st;
            *out = st;
            return 0;
        }
    }
    return err_set(err, BR_ESTORE, "the statement cache is full");
}

/* "TTTTTTTT-TTTT-0000-0000-000000000000": the 48-bit time of MS and nothing after it. */
void sq_id_floor(int64_t ms, char out[UUID_STR_LEN])
{
    uint64_t t = ms > 0 ? (uint64_t)ms : 0;
    snprintf(out, UUID_STR_LEN, "%08x-%04x-0000-0000-000000000000", (unsigned)(t >> 16),
             (unsigned)(t & 0xffff));
}

/* Text bound without a copy: S must live until the statement is reset. */
int sq_bind_str(sqlite3_stmt *st, int i, const char *s)
{
    if (!s)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Column I copied (owned), NULL for SQL NULL. */
char *sq_col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    if (!s)
        return NULL;
    return xstrndup((const char *)s, (size_t)sqlite3_column_bytes(st, i));
}

/* Column I parsed back from the compact JSON text we stored; NUL in strings allowed. */
int sq_col_json(sqlite3_stmt *st, int i, json_t **out, err_t *err)
{
    *out = NULL;
    const char *s = (const char *)sqlite3_column_text(st, i);
    if (!s)
        return 0;
    json_error_t je;
    *out =
        json_loadb(s, (size_t)sqlite3_column_bytes(st, i), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!*out)
        return err_set(err, BR_ESTORE, "stored JSON in column %s is damaged: %s",
                       sqlite3_column_name(st, i), je.text);
    return 0;
}

static void col_id(sqlite3_stmt *st, int i, char out[UUID_STR_LEN])
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    snprintf(out, UUID_STR_LEN, "%s", s ? s : "");
}

/* The current row (SQ_RUN_COLS) as an owned record; a root's NULL parent_id reads as "". A
 * run whose values CACHE (may be NULL) holds takes them from it instead of parsing them. */
int sq_row_run(sqlite3_stmt *st, claim_cache_t *cache, run_rec_t **out, err_t *err)
{
    run_rec_t *r = run_rec_new();
    int rc = 0;
    col_id(st, 0, r->id);
    r->integration = sq_col_str(st, 1);
    r->version = sqlite3_column_int(st, 2);
    const char *status = (const char *)sqlite3_column_text(st, 3);
    if (run_status_parse(status, &r->status) < 0) {
        rc = err_set(err, BR_ESTORE, "run %s has an unknown status \"%s\"", r->id,
                     status ? status : "");
        goto out;
    }
    r->trigger = sq_col_str(st, 4);
    bool kept = cache && claim_cache_take(cache, r->id, &r->input, &r->trigger_info);
    if (!kept && (rc = sq_col_json(st, 5, &r->trigger_info, err)) < 0)
        goto out;
    col_id(st, 6, r->parent_id);
    col_id(st, 7, r->root_id);
    r->depth = sqlite3_column_int(st, 8);
    r->task = sq_col_str(st, 9);
    r->parent_step = sqlite3_column_int(st, 10);
    r->sync_child = sqlite3_column_int(st, 11) != 0;
    r->detached = sqlite3_column_int(st, 12) != 0;
    r->retry_on_interrupt = sqlite3_column_int(st, 13) != 0;
    if ((!kept && (rc = sq_col_json(st, 14, &r->input, err)) < 0) ||
        (rc = sq_col_json(st, 15, &r->output, err)) < 0 ||
        (rc = sq_col_json(st, 16, &r->error, err)) < 0)
        goto out;
    r->created_at = sqlite3_column_int64(st, 17);
    r->scheduled_at = sqlite3_column_int64(st, 18);
    r->started_at = sqlite3_column_int64(st, 19);
    r->finished_at = sqlite3_column_int64(st, 20);
    r->deadline_at = sqlite3_column_int64(st, 21);
    r->attempt = sqlite3_column_int(st, 22);
    r->idempotency_key = sq_col_str(st, 23);
    *out = r;
    r = NULL;
out:
    run_rec_free(r);
    return rc;
}

/* Every remaining row of ST as records (values CACHE holds taken from it; may be NULL); ST
 * is reset whatever happens. */
int sq_collect_runs(sqlite3 *db, sqlite3_stmt *st, claim_cache_t *cache, run_rec_t ***out,
                    int *n, err_t *err)
{
    run_rec_t **v = NULL;
    int count = 0, cap = 0, rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, (size_t)cap * sizeof *v);
        }
        if ((rc = sq_row_run(st, cache, &v[count], err)) < 0)
            break;
        count++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sq_fail(db, err, "cannot read runs");
    sqlite3_reset(st);
    if (rc < 0) {
        run_recs_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

/* ---- connections ----------------------------------------------------------------------------- */

static void conn_close(sq_conn_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < SQ_CACHE; i++)
        sqlite3_finalize(c->cache[i].st);
    sqlite3_close_v2(c->db);
    free(c);
}

/* Run SQL (no parameters, results ignored) on DB. 0 or BR_ESTORE. */
static int exec_sql(sqlite3 *db, const char *sql, err_t *err, const char *what)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(db, err, what);
    return 0;
}

/* The single integer a pragma answers. */
static int pragma_int(sqlite3 *db, const char *sql, int *out, err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(db, err, "cannot read the database");
    int s = sqlite3_step(st);
    int rc = 0;
    if (s == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        rc = sq_fail(db, err, "cannot read the database");
    sqlite3_finalize(st);
    return rc;
}

static int conn_open(store_backend_t *be, bool readonly, sq_conn_t **out, err_t *err)
{
    sq_conn_t *c = XNEW(sq_conn_t);
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = 0;
    if (sqlite3_open_v2(be->path, &c->db, flags, readonly ? NULL : sq_gather_vfs()) != SQLITE_OK) {
        rc = err_set(err, BR_ESTORE, "cannot open the database %s: %s", be->path,
                     c->db ? sqlite3_errmsg(c->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, be->busy_ms);
    if (!readonly) {
        /* WAL lets readers run beside the writer; synchronous=FULL makes each commit durable
         * when it returns (NORMAL may lose the last commits on power loss, and we promise a
         * committed run survives). The first statement also tells a damaged file apart. */
        sqlite3_stmt *st = NULL;
        const char *mode = NULL;
        if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW || !(mode = (const char *)sqlite3_column_text(st, 0))) {
            rc = err_set(err, BR_ESTORE, "cannot use the database %s: %s", be->path,
                         sqlite3_errmsg(c->db));
            sqlite3_finalize(st);
            goto out;
        }
        if (strcmp(mode, "wal") != 0) {
            rc = err_set(err, BR_ESTORE, "the database %s cannot use WAL mode (it stays in %s)",
                         be->path, mode);
            sqlite3_finalize(st);
            goto out;
        }
        sqlite3_finalize(st);
        if ((rc = exec_sql(c->db,
                           "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                           "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-" WRITER_CACHE_KIB ";",
                           err, "cannot configure the database")) < 0)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    conn_close(c);
    return rc;
}

/* A read connection for this thread alone until sq_reader_put: an idle one, a new one while
 * fewer than SQ_READERS are open, else wait for one to come back. */
int sq_reader_get(store_backend_t *be, sq_conn_t **out, err_t *err)
{
    pthread_mutex_lock(&be->pool_mu);
    while (!be->idle && be->readers >= SQ_READERS)
        pthread_cond_wait(&be->pool_cv, &be->pool_mu);
    if (be->idle) {
        *out = be->idle;
        be->idle = be->idle->next;
        pthread_mutex_unlock(&be->pool_mu);
        return 0;
    }
    be->readers++;
    pthread_mutex_unlock(&be->pool_mu);
    int rc = conn_open(be, true, out, err);
    if (rc < 0) {
        pthread_mutex_lock(&be->pool_mu);
        be->readers--;
        pthread_cond_signal(&be->pool_cv);
        pthread_mutex_unlock(&be->pool_mu);
    }
    return rc;
}

/* Give C back to the pool (its statements must be reset). */
void sq_reader_put(store_backend_t *be, sq_conn_t *c)
{
    pthread_mutex_lock(&be->pool_mu);
    c->next = be->idle;
    be->idle = c;
    pthread_cond_signal(&be->pool_cv);
    pthread_mutex_unlock(&be->pool_mu);
}

/* 5 -> 6. A run's steps may be kept in its own row (store_run_hold_step): runs.steps, a JSON
 * array of the attempt's steps, so that a run that ends soon after its steps writes one row.
 * Added only when missing, so that running it twice (a user_version set back) changes
 * nothing, as the migrations written in SQL promise with IF NOT EXISTS. */
static int add_held_steps(sqlite3 *db, err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('runs') WHERE name='steps'", -1,
                           &st, NULL) != SQLITE_OK)
        return sq_fail(db, err, "cannot read the schema");
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_ROW)
        return 0;
    if (s != SQLITE_DONE)
        return sq_fail(db, err, "cannot read the schema");
    return exec_sql(db, "ALTER TABLE runs ADD COLUMN steps TEXT", err, "cannot update the schema");
}

/* 1 -> 2. Every put writes every column of runs and steps, so their NOT NULL constraints
 * guarded nothing, but they cost on every batch: a NOT NULL check may abort a statement half
 * way, and a multi-row put that may abort needs a statement journal, a copy of each page
 * before the statement changes it. (The key columns of steps stay NOT NULL, as every WITHOUT
 * ROWID key is; the step put resolves those with ROLLBACK, which needs no journal.)
 *
 * Done as SQLite documents for removing NOT NULL constraints and changing nothing else: the
 * tables' text in sqlite_schema is edited and schema_version bumped, inside the migration's
 * transaction; no row is read or written, so it is instant on any size of database. Where
 * the library refuses (a build that forces defensive mode) the constraints stay: puts are
 * then only slower. */
static int relax_not_null(sqlite3 *db, err_t *err)
{
    int cookie = 0, rc;
    if ((rc = pragma_int(db, "PRAGMA schema_version", &cookie, err)) < 0)
        return rc;
    if ((rc = exec_sql(db, "SAVEPOINT relax", err, "cannot update the schema")) < 0)
        return rc;
    int defensive = 0, changed = 0;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, -1, &defensive);
    if (defensive)
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, 1, NULL);
    if (sqlite3_exec(db,
                     "UPDATE sqlite_schema SET sql=replace(replace(sql, ' NOT NULL,', ','),"
                     " ' NOT NULL DEFAULT', ' DEFAULT')"
                     " WHERE type='table' AND name IN ('runs', 'steps')",
                     NULL, NULL, NULL) == SQLITE_OK)
        changed = sqlite3_changes(db);
    sqlite3_db_config(db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, 0, NULL);
    if (defensive)
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    if (changed > 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA schema_version=%d", cookie + 1);
        rc = exec_sql(db, sql, err, "cannot update the schema");
    } else {
        sqlite3_exec(db, "ROLLBACK TO relax", NULL, NULL, NULL);
    }
    if (rc == 0)
        rc = exec_sql(db, "RELEASE relax", err, "cannot update the schema");
    return rc;
}

/* Bring the schema to SCHEMA_VERSION inside one write transaction, so two processes opening a
 * new database at once do not both create it. */
static int migrate(store_backend_t *be, err_t *err)
{
    sqlite3 *db = be->w->db;
    int rc, version = 0;
    if ((rc = exec_sql(db, "BEGIN IMMEDIATE", err, "cannot start the schema update")) < 0)
        return rc;
    if ((rc = pragma_int(db, "PRAGMA user_version", &version, err)) < 0)
        goto fail;
    if (version > SCHEMA_VERSION) {
        rc = err_set(err, BR_ESTORE,
                     "the database %s has schema version %d, newer than this build's %d; "
                     "use a newer braid",
                     be->path, version, SCHEMA_VERSION);
        goto fail;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        const migration_t *m = &migrations[v];
        rc = m->sql ? exec_sql(db, m->sql, err, "cannot update the schema") : m->run(db, err);
        if (rc < 0)
            goto fail;
    }
    if (version < SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SCHEMA_VERSION);
        if ((rc = exec_sql(db, sql, err, "cannot update the schema")) < 0)
            goto fail;
    }
    if ((rc = exec_sql(db, "COMMIT", err, "cannot commit the schema update")) < 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- the write side: transactions ------------------------------------------------------------ */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_SAVEPOINT[] = "SAVEPOINT op";
static const char SQL_RELEASE[] = "RELEASE op";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO op";

/* Step a write statement to completion and reset it. 0 or BR_ESTORE naming WHAT. */
int sq_step_done(sqlite3 *db, sqlite3_stmt *st, err_t *err, const char *what)
{
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        ;
    int rc = s == SQLITE_DONE ? 0 : sq_fail(db, err, what);
    sqlite3_reset(st);
    return rc;
}

static int exec_cached(store_backend_t *be, const char *sql, err_t *err, const char *what)
{
    sqlite3_stmt *st;
    int rc = sq_prepare(be->w, sql, &st, err);
    return rc < 0 ? rc : sq_step_done(be->w->db, st, err, what);
}

static int w_begin(store_backend_t *be, err_t *err)
{
    return exec_cached(be, SQL_BEGIN, err, "cannot begin a transaction");
}

static int w_commit(store_backend_t *be, err_t *err)
{
    return exec_cached(be, SQL_COMMIT, err, "cannot commit");
}

static void w_rollback(store_backend_t *be)
{
    if (!sqlite3_get_autocommit(be->w->db))
        sqlite3_exec(be->w->db, "ROLLBACK", NULL, NULL, NULL);
}

static int w_savepoint(store_backend_t *be, err_t *err)
{
    return exec_cached(be, SQL_SAVEPOINT, err, "cannot set a savepoint");
}

static int w_release(store_backend_t *be, bool keep, err_t *err)
{
    if (sqlite3_get_autocommit(be->w->db))
        return 0; /* the failure already ended the transaction: nothing left to release */
    int rc = 0;
    if (!keep)
        rc = exec_cached(be, SQL_ROLLBACK_TO, err, "cannot roll back an operation");
    if (rc == 0)
        rc = exec_cached(be, SQL_RELEASE, err, "cannot release a savepoint");
    return rc;
}

static bool w_in_transaction(store_backend_t *be)
{
    return !sqlite3_get_autocommit(be->w->db);
}

/* ---- the write side: puts -------------------------------------------------------------------- */

/* Bind NULL to parameter I of P unless it holds NULL already. */
static inline void put_null(sq_put_t *p, int i)
{
    if (p->state[i] != SQ_BOUND_NULL) {
        sqlite3_bind_null(p->st, i);
        p->state[i] = SQ_BOUND_NULL;
    }
}

static inline void put_int(sq_put_t *p, int i, int64_t v)
{
    if (p->state[i] != SQ_BOUND_INT || p->val[i] != v) {
        sqlite3_bind_int64(p->st, i, v);
        p->state[i] = SQ_BOUND_INT;
        p->val[i] = v;
    }
}

/* N bytes at S as static text, unless that very text is bound already. S must stay until the
 * statement has run. */
static inline void put_textn(sq_put_t *p, int i, const char *s, int n)
{
    if (p->state[i] != SQ_BOUND_TEXT || p->val[i] != (int64_t)(intptr_t)s || p->len[i] != n ||
        !p->keep_text) {
        sqlite3_bind_text(p->st, i, s, n, SQLITE_STATIC);
        p->state[i] = SQ_BOUND_TEXT;
        p->val[i] = (int64_t)(intptr_t)s;
        p->len[i] = n;
    }
}

/* S, or NULL. The length is given: SQLite's own count goes byte by byte. */
static inline void put_text(sq_put_t *p, int i, const char *s)
{
    if (s)
        put_textn(p, i, s, (int)strlen(s));
    else
        put_null(p, i);
}

static inline void put_json(sq_put_t *p, int i, const store_text_t *t)
{
    if (t->p)
        put_textn(p, i, t->p, (int)t->n);
    else
        put_null(p, i);
}

/* The statement writing 2^K rows (K < be->put_log_max + 1) of runs (RUNS) or steps: HEAD,
 * 2^K groups of COLS parameters, TAIL. Prepared on first use and kept. */
static int put_stmt(store_backend_t *be, bool runs, int k, sq_put_t **out, err_t *err);

/* An upsert, not INSERT OR REPLACE: the queue's own columns (owner, lease_until,
 * cancel_requested) belong to claims and cancels and must survive the engine's puts. A put
 * from an older attempt never overwrites a newer attempt (a run taken over after its lease
 * ran out). The update sets only what changes over a run's life: SQLite rewrites every index
 * holding a column of the SET list, and the identity columns (integration, version, trigger,
 * parent, root, depth, task, parent_step, sync_child, detached, retry_on_interrupt, input,
 * created_at, idempotency_key) are fixed when the engine first builds the record (call.c),
 * so listing them made every second put of a run rewrite runs_integration and runs_tree
 * for nothing (bench/writer_analysis.md). */
#define RUN_PUT_COLS 27
static const char SQL_RUN_PUT_HEAD[] =
    "INSERT INTO runs(" SQ_RUN_COLS ", steps, owner, lease_until) VALUES ";
static const char SQL_RUN_PUT_TAIL[] =
    " ON CONFLICT(id) DO UPDATE SET status=excluded.status, output=excluded.output,"
    " error=excluded.error, scheduled_at=excluded.scheduled_at,"
    " started_at=excluded.started_at, finished_at=excluded.finished_at,"
    " deadline_at=excluded.deadline_at, attempt=excluded.attempt, steps=excluded.steps"
    " WHERE excluded.attempt >= runs.attempt";

#define STEP_PUT_COLS 11
/* The same as INSERT OR REPLACE, said so that no statement journal is needed: a key column
 * left NULL (WITHOUT ROWID keys are NOT NULL) rolls the batch back rather than aborting the
 * statement half way, and the other columns have no constraint left (schema 2). */
static const char SQL_STEP_PUT_HEAD[] =
    "INSERT OR ROLLBACK INTO steps(run_id, attempt, seq, task_id, type, status, task_attempt,"
    " started_at, duration_ms, result, error) VALUES ";
static const char SQL_STEP_PUT_TAIL[] =
    " ON CONFLICT(run_id, attempt, seq) DO UPDATE SET task_id=excluded.task_id,"
    " type=excluded.type, status=excluded.status, task_attempt=excluded.task_attempt,"
    " started_at=excluded.started_at, duration_ms=excluded.duration_ms,"
    " result=excluded.result, error=excluded.error";

#define PUT_ROWS_MAX (1 << (SQ_PUT_SIZES - 1))

static int put_stmt(store_backend_t *be, bool runs, int k, sq_put_t **out, err_t *err)
{
    sq_put_t *p = runs ? &be->run_put[k] : &be->step_put[k];
    *out = p;
    if (p->st)
        return 0;
    int rows = 1 << k, cols = runs ? RUN_PUT_COLS : STEP_PUT_COLS;
    buf_t sql = BUF_INIT;
    buf_puts(&sql, runs ? SQL_RUN_PUT_HEAD : SQL_STEP_PUT_HEAD);
    for (int i = 0; i < rows; i++) {
        buf_puts(&sql, i ? ",(?" : "(?");
        for (int c = 1; c < cols; c++)
            buf_puts(&sql, ",?");
        buf_putc(&sql, ')');
    }
    buf_puts(&sql, runs ? SQL_RUN_PUT_TAIL : SQL_STEP_PUT_TAIL);
    int rc = 0;
    if (sqlite3_prepare_v3(be->w->db, sql.data, (int)sql.len, SQLITE_PREPARE_PERSISTENT, &p->st,
                           NULL) != SQLITE_OK) {
        rc = sq_fail(be->w->db, err, "cannot prepare a statement");
    } else {
        size_t n = (size_t)(rows * cols) + 1;
        p->val = xcalloc(n, sizeof *p->val);
        p->len = xcalloc(n, sizeof *p->len);
        p->state = xcalloc(n, sizeof *p->state);
        p->keep_text = be->utf8;
    }
    buf_deinit(&sql);
    return rc;
}

static void put_stmt_free(sq_put_t *p)
{
    sqlite3_finalize(p->st);
    free(p->val);
    free(p->len);
    free(p->state);
    memset(p, 0, sizeof *p);
}

/* The largest 2^k rows, at most N, that one put statement writes. */
static int put_log(const store_backend_t *be, size_t n)
{
    int k = be->put_log_max;
    while (k > 0 && ((size_t)1 << k) > n)
        k--;
    return k;
}

/* Bind run R as the row whose first parameter is B + 1, its texts J (STORE_RUN_TEXTS). */
static void bind_run(sq_put_t *p, int b, const run_rec_t *r, const store_text_t j[STORE_RUN_TEXTS])
{
    put_text(p, b + 1, r->id);
    put_text(p, b + 2, r->integration ? r->integration : "");
    put_int(p, b + 3, r->version);
    put_text(p, b + 4, run_status_name(r->status));
    put_text(p, b + 5, r->trigger);
    put_json(p, b + 6, &j[0]);
    put_text(p, b + 7, r->parent_id[0] ? r->parent_id : NULL);
    put_text(p, b + 8, r->root_id[0] ? r->root_id : r->id);
    put_int(p, b + 9, r->depth);
    put_text(p, b + 10, r->task);
    put_int(p, b + 11, r->parent_step);
    put_int(p, b + 12, r->sync_child);
    put_int(p, b + 13, r->detached);
    put_int(p, b + 14, r->retry_on_interrupt);
    put_json(p, b + 15, &j[1]);
    put_json(p, b + 16, &j[2]);
    put_json(p, b + 17, &j[3]);
    put_int(p, b + 18, r->created_at);
    put_int(p, b + 19, r->scheduled_at);
    put_int(p, b + 20, r->started_at);
    put_int(p, b + 21, r->finished_at);
    put_int(p, b + 22, r->deadline_at);
    put_int(p, b + 23, r->attempt);
    put_text(p, b + 24, r->idempotency_key);
    put_json(p, b + 25, &j[STORE_RUN_JSON]); /* the held steps */
    /* Only a new row takes these (the upsert leaves a row's own): a run taken here without
     * a claim. */
    bool owned = r->owner && r->status == RUN_RUNNING;
    put_text(p, b + 26, owned ? r->owner : NULL);
    if (owned)
        put_int(p, b + 27, r->lease_until);
    else
        put_null(p, b + 27);
}

static int w_run_put(store_backend_t *be, run_rec_t *const *runs, const store_text_t *json,
                     size_t n, err_t *err)
{
    while (n > 0) {
        int k = put_log(be, n);
        size_t rows = (size_t)1 << k;
        sq_put_t *p;
        int rc = put_stmt(be, true, k, &p, err);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < rows; i++)
            bind_run(p, (int)i * RUN_PUT_COLS, runs[i], json + i * STORE_RUN_TEXTS);
        if ((rc = sq_step_done(be->w->db, p->st, err, "cannot write a run")) < 0)
            return rc;
        runs += rows;
        json += rows * STORE_RUN_TEXTS;
        n -= rows;
    }
    return 0;
}

static void bind_step(sq_put_t *p, int b, const step_rec_t *s, const store_text_t j[2])
{
    put_text(p, b + 1, s->run_id);
    put_int(p, b + 2, s->attempt);
    put_int(p, b + 3, s->seq);
    put_text(p, b + 4, s->task_id);
    put_text(p, b + 5, s->type);
    put_text(p, b + 6, s->status);
    put_int(p, b + 7, s->task_attempt);
    put_int(p, b + 8, s->started_at);
    put_int(p, b + 9, s->duration_ms);
    put_json(p, b + 10, &j[0]);
    put_json(p, b + 11, &j[1]);
}

static int w_step_put(store_backend_t *be, step_rec_t *const *steps, const store_text_t *json,
                      size_t n, err_t *err)
{
    while (n > 0) {
        int k = put_log(be, n);
        size_t rows = (size_t)1 << k;
        sq_put_t *p;
        int rc = put_stmt(be, false, k, &p, err);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < rows; i++)
            bind_step(p, (int)i * STEP_PUT_COLS, steps[i], json + i * STORE_STEP_JSON);
        if ((rc = sq_step_done(be->w->db, p->st, err, "cannot write a step")) < 0)
            return rc;
        steps += rows;
        json += rows * STORE_STEP_JSON;
        n -= rows;
    }
    return 0;
}

/* ---- the write side: integrations ------------------------------------------------------------ */

static const char SQL_IS_ARCHIVED[] = "SELECT archived FROM integrations WHERE name=?1";
static const char SQL_INTEGRATION_UPSERT[] =
    "INSERT INTO integrations(name, archived, created_at, updated_at) VALUES (?1, 0, ?2, ?2)"
    " ON CONFLICT(name) DO UPDATE SET archived=0, updated_at=excluded.updated_at";
static const char SQL_TRIGGERS_DELETE[] = "DELETE FROM triggers WHERE name=?1";
static const char SQL_TRIGGER_INSERT[] =
    "INSERT OR IGNORE INTO triggers(trigger_id, name) VALUES (?1, ?2)";
static const char SQL_EPOCH_BUMP[] = "UPDATE catalog SET epoch=epoch+1 WHERE id=1";
static const char SQL_UNARCHIVE[] =
    "UPDATE integrations SET archived=0, updated_at=?2 WHERE name=?1";
static const char SQL_ARCHIVE[] = "UPDATE integrations SET archived=1, updated_at=?2 WHERE name=?1";

/* SQL's cached statement on the writer's connection, its bindings cleared. */
int sq_prep_w(store_backend_t *be, const char *sql, sqlite3_stmt **st, err_t *err)
{
    int rc = sq_prepare(be->w, sql, st, err);
    if (rc == 0)
        sqlite3_clear_bindings(*st);
    return rc;
}

/* The version itself is sq_docs_publish's; an integration also keeps its row in integrations
 * (un-archived by any publish) and its triggers, and moves the catalog epoch. */
static int op_publish(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    const char *name = op->u.publish.name;
    sqlite3_stmt *st;
    int rc, version;
    bool created, archived = false;
    int64_t now = clock_now_ms();

    if ((rc = sq_docs_publish(be, &sq_integration_docs, name, op->u.publish.doc, now, &version,
                              &created, err)) < 0)
        return rc;
    if (!created) {
        op->u.publish.version = version;
        op->u.publish.created = false;
        if ((rc = sq_prep_w(be, SQL_IS_ARCHIVED, &st, err)) < 0)
            return rc;
        sq_bind_str(st, 1, name);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            archived = sqlite3_column_int(st, 0) != 0;
        rc = (s == SQLITE_ROW || s == SQLITE_DONE) ? 0 : sq_fail(db, err, "cannot read versions");
        sqlite3_reset(st);
        if (rc < 0 || !archived)
            return rc;
        if ((rc = sq_prep_w(be, SQL_UNARCHIVE, &st, err)) < 0)
            return rc;
        sq_bind_str(st, 1, name);
        sqlite3_bind_int64(st, 2, now);
        if ((rc = sq_step_done(db, st, err, "cannot un-archive")) < 0)
            return rc;
        return exec_cached(be, SQL_EPOCH_BUMP, err, "cannot update the catalog");
    }

    if ((rc = sq_prep_w(be, SQL_INTEGRATION_UPSERT, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, name);
    sqlite3_bind_int64(st, 2, now);
    if ((rc = sq_step_done(db, st, err, "cannot store the integration")) < 0)
        return rc;

    if ((rc = sq_prep_w(be, SQL_TRIGGERS_DELETE, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, name);
    if ((rc = sq_step_done(db, st, err, "cannot replace triggers")) < 0)
        return rc;
    size_t i;
    json_t *t;
    json_array_foreach(op->u.publish.triggers, i, t)
    {
        if ((rc = sq_prep_w(be, SQL_TRIGGER_INSERT, &st, err)) < 0)
            return rc;
        sq_bind_str(st, 1, json_string_value(t));
        sq_bind_str(st, 2, name);
        if ((rc = sq_step_done(db, st, err, "cannot store a trigger")) < 0)
            return rc;
    }
    if ((rc = exec_cached(be, SQL_EPOCH_BUMP, err, "cannot update the catalog")) < 0)
        return rc;
    op->u.publish.version = version;
    op->u.publish.created = true;
    return 0;
}

static int op_archive(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3_stmt *st;
    int rc;
    if ((rc = sq_prep_w(be, SQL_ARCHIVE, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.archive.name);
    sqlite3_bind_int64(st, 2, clock_now_ms());
    if ((rc = sq_step_done(be->w->db, st, err, "cannot archive")) < 0)
        return rc;
    if (sqlite3_changes(be->w->db) == 0)
        return err_set(err, BR_ENOT_FOUND, "integration %s not found", op->u.archive.name);
    return exec_cached(be, SQL_EPOCH_BUMP, err, "cannot update the catalog");
}

/* ---- the write side: the queue --------------------------------------------------------------- */

/* Due runs, oldest first: every queued run, and scheduled runs whose time has come, up to MAX
 * of them. Each kind is one walk of runs_active in (scheduled_at, rowid) order that stops
 * after MAX rows: without integrations to leave out it reads the index alone, and a long
 * backlog costs no more than MAX entries per kind. The two walks are merged here, ties in
 * scheduled_at going by rowid (the order the runs were first written); then each claimed row
 * is read and updated by its rowid, in the same transaction.
 *
 * One UPDATE … RETURNING over a UNION of both walks did all of it in a statement, but SQLite
 * built three temporary b-trees for it on every claim (the UNION's order, the IN list, and
 * RETURNING's rows): ~70,000 instructions a claimed run under callgrind at low load, where
 * claims hold two or three runs. */
#define DUE_SQL(cond, filter)                                                                      \
    "SELECT rowid, scheduled_at FROM runs WHERE " cond filter " ORDER BY scheduled_at LIMIT ?2"
#define DUE_EXCLUDE " AND integration NOT IN (SELECT value FROM json_each(?3))"
static const char *const SQL_DUE[2][2] = {
    /* [scheduled][with integrations to leave out] */
    {DUE_SQL("status='queued'", ""), DUE_SQL("status='queued'", DUE_EXCLUDE)},
    {DUE_SQL("status='scheduled' AND scheduled_at<=?1", ""),
     DUE_SQL("status='scheduled' AND scheduled_at<=?1", DUE_EXCLUDE)},
};
static const char SQL_CLAIM_ID[] =
    "SELECT rowid FROM runs WHERE id=?1"
    " AND (status='queued' OR (status='scheduled' AND scheduled_at<=?2))";
static const char SQL_RUN_BY_ROWID[] = "SELECT " SQ_RUN_COLS " FROM runs WHERE rowid=?1";
static const char SQL_CLAIM_ROW[] =
    "UPDATE runs SET status='running', owner=?1, lease_until=?2, started_at=?3,"
    " cancel_requested=0 WHERE rowid=?4";

typedef struct due {
    int64_t at; /* scheduled_at */
    sqlite3_int64 rowid;
} due_t;

/* Append to V (*N, at most MAX) the rows of ST (rowid, scheduled_at; its parameters bound).
 * ST is reset. */
static int read_due(store_backend_t *be, sqlite3_stmt *st, due_t *v, int *n, int max, err_t *err)
{
    int s = SQLITE_DONE;
    while (*n < max && (s = sqlite3_step(st)) == SQLITE_ROW)
        v[(*n)++] = (due_t){sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 0)};
    int rc = *n < max && s != SQLITE_DONE ? sq_fail(be->w->db, err, "cannot read the queue") : 0;
    sqlite3_reset(st);
    return rc;
}

/* Claim for OWNER until LEASE_UNTIL, at NOW, the runs at ROWIDS (N): each is read, updated as
 * running and returned in *OUT, in the order of ROWIDS, as the update left it. */
static int claim_rows(store_backend_t *be, const sqlite3_int64 *rowids, int n, const char *owner,
                      int64_t lease_until, int64_t now, claim_cache_t *cache, run_rec_t ***out,
                      err_t *err)
{
    run_rec_t **v = xcalloc((size_t)(n > 0 ? n : 1), sizeof *v);
    sqlite3_stmt *get = NULL, *upd = NULL;
    int rc = 0, got = 0;
    if (n > 0 && ((rc = sq_prep_w(be, SQL_RUN_BY_ROWID, &get, err)) < 0 ||
                  (rc = sq_prep_w(be, SQL_CLAIM_ROW, &upd, err)) < 0))
        goto out;
    for (; got < n; got++) {
        sqlite3_bind_int64(get, 1, rowids[got]);
        if (sqlite3_step(get) != SQLITE_ROW) {
            rc = sq_fail(be->w->db, err, "cannot read a claimed run");
        } else if ((rc = sq_row_run(get, cache, &v[got], err)) == 0) {
            v[got]->status = RUN_RUNNING;
            v[got]->started_at = now;
        }
        sqlite3_reset(get);
        if (rc < 0)
            break;
        sq_bind_str(upd, 1, owner);
        sqlite3_bind_int64(upd, 2, lease_until);
        sqlite3_bind_int64(upd, 3, now);
        sqlite3_bind_int64(upd, 4, rowids[got]);
        if ((rc = sq_step_done(be->w->db, upd, err, "cannot claim a run")) < 0) {
            got++;
            break;
        }
    }
out:
    if (rc < 0) {
        run_recs_free(v, got);
        return rc;
    }
    *out = v;
    return 0;
}

static int op_claim(store_backend_t *be, store_op_t *op, err_t *err)
{
    int max = op->u.claim.max;
    op->u.claim.out = NULL;
    op->u.claim.n = 0;
    if (max <= 0)
        return 0;
    const json_t *ex = op->u.claim.exclude;
    char *exclude = json_is_array(ex) && json_array_size(ex) > 0 ? jsonx_dump(ex) : NULL;
    due_t *kind[2] = {xcalloc((size_t)max, sizeof(due_t)), xcalloc((size_t)max, sizeof(due_t))};
    int count[2] = {0, 0}, rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        sqlite3_stmt *st;
        if ((rc = sq_prep_w(be, SQL_DUE[k][exclude != NULL], &st, err)) < 0)
            break;
        sqlite3_bind_int64(st, 1, op->u.claim.now);
        sqlite3_bind_int(st, 2, max);
        if (exclude)
            sq_bind_str(st, 3, exclude);
        rc = read_due(be, st, kind[k], &count[k], max, err);
    }
    /* The MAX oldest of both, by scheduled_at then rowid. */
    sqlite3_int64 *rowids = xcalloc((size_t)max, sizeof *rowids);
    int n = 0;
    for (int q = 0, s = 0; rc == 0 && n < max && (q < count[0] || s < count[1]); n++) {
        bool take_q = s == count[1] ||
                      (q < count[0] && (kind[0][q].at < kind[1][s].at ||
                                        (kind[0][q].at == kind[1][s].at &&
                                         kind[0][q].rowid < kind[1][s].rowid)));
        rowids[n] = take_q ? kind[0][q++].rowid : kind[1][s++].rowid;
    }
    if (rc == 0)
        rc = claim_rows(be, rowids, n, op->u.claim.owner, op->u.claim.lease_until,
                        op->u.claim.now, op->u.claim.cache, &op->u.claim.out, err);
    if (rc == 0)
        op->u.claim.n = n;
    free(rowids);
    free(kind[0]);
    free(kind[1]);
    free(exclude);
    return rc;
}

static int op_claim_id(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3_stmt *st;
    int rc;
    if ((rc = sq_prep_w(be, SQL_CLAIM_ID, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.claim_id.id);
    sqlite3_bind_int64(st, 2, op->u.claim_id.now);
    sqlite3_int64 rowid = 0;
    int n = 0;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        rowid = sqlite3_column_int64(st, 0);
        n = 1;
    } else if (s != SQLITE_DONE) {
        rc = sq_fail(be->w->db, err, "cannot read the queue");
    }
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    if (n == 0)
        return err_set(err, BR_ENOT_FOUND, "run %s is not waiting to run", op->u.claim_id.id);
    run_rec_t **runs = NULL;
    if ((rc = claim_rows(be, &rowid, 1, op->u.claim_id.owner, op->u.claim_id.lease_until,
                         op->u.claim_id.now, op->u.claim_id.cache, &runs, err)) < 0)
        return rc;
    op->u.claim_id.out = runs[0];
    free(runs);
    return 0;
}

static const char SQL_RUN_CANCEL_WAITING[] =
    "UPDATE runs SET status='cancelled', finished_at=?2, error=?3"
    " WHERE id=?1 AND status IN ('queued', 'scheduled')";
static const char SQL_RUN_CANCEL_RUNNING[] =
    "UPDATE runs SET cancel_requested=1 WHERE id=?1 AND status='running'";
static const char SQL_RUN_STATUS[] = "SELECT status FROM runs WHERE id=?1";

static int op_run_cancel(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    sqlite3_stmt *st;
    int rc;
    json_t *e = json_pack("{s:s, s:s}", "code", "cancelled", "message", "the run was cancelled");
    char *etext = jsonx_dump(e);
    json_decref(e);
    if ((rc = sq_prep_w(be, SQL_RUN_CANCEL_WAITING, &st, err)) == 0) {
        sq_bind_str(st, 1, op->u.run_cancel.id);
        sqlite3_bind_int64(st, 2, op->u.run_cancel.now);
        sq_bind_str(st, 3, etext);
        rc = sq_step_done(db, st, err, "cannot cancel a run");
    }
    free(etext);
    if (rc < 0)
        return rc;
    if ((rc = sq_prep_w(be, SQL_RUN_CANCEL_RUNNING, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.run_cancel.id);
    if ((rc = sq_step_done(db, st, err, "cannot cancel a run")) < 0)
        return rc;
    if ((rc = sq_prep_w(be, SQL_RUN_STATUS, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.run_cancel.id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (run_status_parse(name, &op->u.run_cancel.status) < 0)
            rc = err_set(err, BR_ESTORE, "run %s has an unknown status", op->u.run_cancel.id);
    } else if (s == SQLITE_DONE) {
        rc = err_set(err, BR_ENOT_FOUND, "run %s not found", op->u.run_cancel.id);
    } else {
        rc = sq_fail(db, err, "cannot read a run");
    }
    sqlite3_reset(st);
    return rc;
}

static const char SQL_RENEW[] =
    "UPDATE runs SET lease_until=?2 WHERE status='running' AND owner=?1";

static int op_renew(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3_stmt *st;
    int rc;
    if ((rc = sq_prep_w(be, SQL_RENEW, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.renew.owner);
    sqlite3_bind_int64(st, 2, op->u.renew.lease_until);
    return sq_step_done(be->w->db, st, err, "cannot renew leases");
}

/* The runs to recover: ?1 = now, ?2 = all (0/1), ?3 = not_owner (never recovered; NULL =
 * none spared). In lease mode a run without a lease (one run inline by its caller) is left
 * alone: only a whole-process recovery, which knows every other owner is gone, takes those. */
#define RECOVER_WHERE                                                                              \
    " WHERE status='running' AND (?3 IS NULL OR owner IS NOT ?3)"                                  \
    " AND (?2 OR lease_until < ?1)"

static const char SQL_RECOVER_REQUEUE[] =
    "UPDATE runs SET status='queued', attempt=attempt+1, owner=NULL, lease_until=NULL,"
    " started_at=0, finished_at=0, output=NULL, error=NULL, scheduled_at=?1, "
    "cancel_requested=0" RECOVER_WHERE " AND retry_on_interrupt=1 AND sync_child=0 AND attempt<3";

static const char SQL_RECOVER_FAIL[] =
    "UPDATE runs SET status='failed', finished_at=?1, owner=NULL, lease_until=NULL,"
    " error=CASE WHEN retry_on_interrupt=1 AND sync_child=0 THEN json_object('code',"
    " 'interrupted', 'message', 'the process running this run stopped before it finished, after '"
    " || attempt || ' attempts', 'retryable', json('true')) ELSE ?4 END" RECOVER_WHERE;

static int op_recover(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    sqlite3_stmt *st;
    int rc;
    if ((rc = sq_prep_w(be, SQL_RECOVER_REQUEUE, &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, op->u.recover.now);
    sqlite3_bind_int(st, 2, op->u.recover.all);
    sq_bind_str(st, 3, op->u.recover.not_owner);
    if ((rc = sq_step_done(db, st, err, "cannot requeue interrupted runs")) < 0)
        return rc;
    op->u.recover.requeued = sqlite3_changes(db);

    json_t *e = store_error_json("interrupted",
                                 "the process running this run stopped before it finished", true);
    char *etext = jsonx_dump(e);
    json_decref(e);
    if ((rc = sq_prep_w(be, SQL_RECOVER_FAIL, &st, err)) == 0) {
        sqlite3_bind_int64(st, 1, op->u.recover.now);
        sqlite3_bind_int(st, 2, op->u.recover.all);
        sq_bind_str(st, 3, op->u.recover.not_owner);
        sq_bind_str(st, 4, etext);
        rc = sq_step_done(db, st, err, "cannot fail interrupted runs");
        if (rc == 0)
            op->u.recover.failed = sqlite3_changes(db);
    }
    free(etext);
    return rc;
}

/* The descendants of ?1, finished or not, not entering detached runs (a detached run and
 * everything below it outlive the caller's cancellation). UNION, not UNION ALL: a damaged
 * parent link that made a cycle must not make the walk endless. Every run of a tree has its
 * root's id, so each level is read from runs_tree (root_id, parent_id, parent_step). */
#define DESCENDANTS                                                                                \
    "WITH RECURSIVE d(id, root) AS (SELECT id, root_id FROM runs"                                  \
    " WHERE " SAME_ROOT_AS("?1") " AND parent_id=?1 AND detached=0"                                \
    " UNION SELECT r.id, r.root_id FROM d JOIN runs r ON r.root_id=d.root AND r.parent_id=d.id"   \
    " WHERE r.detached=0) "

static const char SQL_CANCEL_RUNNING[] =
    DESCENDANTS "UPDATE runs SET cancel_requested=1"
                " WHERE status='running' AND id IN (SELECT id FROM d) RETURNING id";
static const char SQL_CANCEL_WAITING[] =
    DESCENDANTS "UPDATE runs SET status='cancelled', finished_at=?2, error=?3"
                " WHERE status IN ('queued', 'scheduled') AND id IN (SELECT id FROM d)";

static int op_cancel(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    sqlite3_stmt *st;
    int rc, s;
    if ((rc = sq_prep_w(be, SQL_CANCEL_RUNNING, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.cancel.run_id);
    op->u.cancel.running = json_array();
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(op->u.cancel.running,
                              json_string((const char *)sqlite3_column_text(st, 0)));
    rc = s == SQLITE_DONE ? 0 : sq_fail(db, err, "cannot cancel running descendants");
    sqlite3_reset(st);
    if (rc < 0)
        return rc;

    json_t *e =
        json_pack("{s:s, s:s}", "code", "cancelled", "message", "cancelled with its parent");
    char *etext = jsonx_dump(e);
    json_decref(e);
    if ((rc = sq_prep_w(be, SQL_CANCEL_WAITING, &st, err)) == 0) {
        sq_bind_str(st, 1, op->u.cancel.run_id);
        sqlite3_bind_int64(st, 2, op->u.cancel.now);
        sq_bind_str(st, 3, etext);
        rc = sq_step_done(db, st, err, "cannot cancel waiting descendants");
    }
    free(etext);
    return rc;
}

/* ---- the write side: idempotency and retention ----------------------------------------------- */

static const char SQL_IDEM_INSERT[] =
    "INSERT INTO idempotency(scope, key, run_id, created_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT(scope, key) DO NOTHING";
static const char SQL_IDEM_GET[] = "SELECT run_id FROM idempotency WHERE scope=?1 AND key=?2";

static int op_idempotency(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    sqlite3_stmt *st;
    int rc;
    op->u.idem.existing[0] = '\0';
    if ((rc = sq_prep_w(be, SQL_IDEM_INSERT, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.idem.scope);
    sq_bind_str(st, 2, op->u.idem.key);
    sq_bind_str(st, 3, op->u.idem.run_id);
    sqlite3_bind_int64(st, 4, clock_now_ms());
    if ((rc = sq_step_done(db, st, err, "cannot record an idempotency key")) < 0)
        return rc;
    if (sqlite3_changes(db) > 0)
        return 0;
    if ((rc = sq_prep_w(be, SQL_IDEM_GET, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.idem.scope);
    sq_bind_str(st, 2, op->u.idem.key);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        col_id(st, 0, op->u.idem.existing);
    else
        rc = sq_fail(db, err, "cannot read an idempotency key");
    sqlite3_reset(st);
    return rc;
}

/* Finished before ?1, ?2 runs at a time, so a large purge does not hold the writer for long.
 * A run that finished before ?1 was created before it, and a UUIDv7 id starts with its
 * creation time, so the primary key bounds the walk (?3 = sq_id_floor(?1)): no index on
 * finished_at, which every insert would pay for. */
#define PURGE_CHUNK                                                                                \
    "SELECT id FROM runs WHERE id<?3 AND finished_at>0 AND finished_at<?1 ORDER BY id LIMIT ?2"

static const char SQL_PURGE_STEPS[] = "DELETE FROM steps WHERE run_id IN (" PURGE_CHUNK ")";
static const char SQL_PURGE_RUNS[] = "DELETE FROM runs WHERE id IN (" PURGE_CHUNK ")";
static const char SQL_PURGE_KEYS[] =
    "DELETE FROM idempotency WHERE created_at<?1"
    " AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.id=idempotency.run_id)";

static int op_purge(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    static const char *const sqls[] = {SQL_PURGE_STEPS, SQL_PURGE_RUNS, SQL_PURGE_KEYS};
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st;
        int rc;
        if (sqls[i] == SQL_PURGE_KEYS && op->u.purge.deleted >= op->u.purge.chunk)
            break; /* keys go with the last chunk */
        if ((rc = sq_prep_w(be, sqls[i], &st, err)) < 0)
            return rc;
        sqlite3_bind_int64(st, 1, op->u.purge.before);
        char floor[UUID_STR_LEN];
        if (sqls[i] != SQL_PURGE_KEYS) {
            sqlite3_bind_int(st, 2, op->u.purge.chunk);
            sq_id_floor(op->u.purge.before, floor);
            sqlite3_bind_text(st, 3, floor, UUID_STR_LEN - 1, SQLITE_TRANSIENT);
        }
        if ((rc = sq_step_done(db, st, err, "cannot purge old runs")) < 0)
            return rc;
        if (sqls[i] == SQL_PURGE_RUNS)
            op->u.purge.deleted = sqlite3_changes(db);
    }
    return 0;
}

/* ---- the write side: API tokens ------------------------------------------------------------- */

static const char SQL_TOKEN_INSERT[] =
    "INSERT INTO tokens(id, role, scopes, hash, description, created_at, revoked_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO NOTHING";
/* SQLite counts a row the WHERE matched as changed even when its value stays, so one
 * statement both keeps the first revocation time and tells whether the id exists. */
static const char SQL_TOKEN_REVOKE[] =
    "UPDATE tokens SET revoked_at=CASE WHEN revoked_at=0 THEN ?2 ELSE revoked_at END"
    " WHERE id=?1";

static int op_token_put(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    const token_rec_t *t = op->u.token_put.rec;
    sqlite3_stmt *st;
    int rc;
    if ((rc = sq_prep_w(be, SQL_TOKEN_INSERT, &st, err)) < 0)
        return rc;
    char *scopes = t->scopes ? jsonx_dump(t->scopes) : xstrdup("[]");
    sq_bind_str(st, 1, t->id);
    sq_bind_str(st, 2, t->role);
    sq_bind_str(st, 3, scopes);
    sqlite3_bind_blob(st, 4, t->hash, sizeof t->hash, SQLITE_STATIC);
    sq_bind_str(st, 5, t->description);
    sqlite3_bind_int64(st, 6, t->created_at);
    sqlite3_bind_int64(st, 7, t->revoked_at > 0 ? t->revoked_at : 0);
    rc = sq_step_done(db, st, err, "cannot store a token");
    free(scopes);
    if (rc == 0 && sqlite3_changes(db) == 0)
        rc = err_set(err, BR_ECONFLICT, "token %s exists already", t->id);
    return rc;
}

static int op_token_revoke(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3 *db = be->w->db;
    sqlite3_stmt *st;
    int rc;
    if ((rc = sq_prep_w(be, SQL_TOKEN_REVOKE, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, op->u.token_revoke.id);
    sqlite3_bind_int64(st, 2, op->u.token_revoke.now);
    if ((rc = sq_step_done(db, st, err, "cannot revoke a token")) < 0)
        return rc;
    if (sqlite3_changes(db) == 0)
        return err_set(err, BR_ENOT_FOUND, "no token %s", op->u.token_revoke.id);
    return 0;
}

static int w_exec(store_backend_t *be, store_op_t *op, err_t *err)
{
    switch (op->kind) {
    case STORE_OP_PUBLISH:
        return op_publish(be, op, err);
    case STORE_OP_ARCHIVE:
        return op_archive(be, op, err);
    case STORE_OP_CLAIM:
        return op_claim(be, op, err);
    case STORE_OP_CLAIM_ID:
        return op_claim_id(be, op, err);
    case STORE_OP_RUN_CANCEL:
        return op_run_cancel(be, op, err);
    case STORE_OP_RENEW:
        return op_renew(be, op, err);
    case STORE_OP_RECOVER:
        return op_recover(be, op, err);
    case STORE_OP_CANCEL:
        return op_cancel(be, op, err);
    case STORE_OP_IDEMPOTENCY:
        return op_idempotency(be, op, err);
    case STORE_OP_PURGE:
        return op_purge(be, op, err);
    case STORE_OP_TOKEN_PUT:
        return op_token_put(be, op, err);
    case STORE_OP_TOKEN_REVOKE:
        return op_token_revoke(be, op, err);
    case STORE_OP_CONNECTOR_PUBLISH:
        return sq_op_connector_publish(be, op, err);
    case STORE_OP_CONNECTION_PUT:
        return sq_op_connection_put(be, op, err);
    case STORE_OP_CONNECTION_DELETE:
        return sq_op_connection_delete(be, op, err);
    case STORE_OP_CONNECTION_PUT_ALL:
        return sq_op_connection_put_all(be, op, err);
    }
    return err_set(err, BR_EINTERNAL, "unknown store operation %d", (int)op->kind);
}

/* ---- the engine lock ------------------------------------------------------------------------- */

/* Open (creating) PATH SUFFIX for locking. */
static int open_lock_file(const char *path, const char *suffix, int *fd, err_t *err)
{
    char *name = xasprintf("%s%s", path, suffix);
    *fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int rc = 0;
    if (*fd < 0)
        rc = err_set(err, BR_ESTORE, "cannot open the lock file %s: %s", name, strerror(errno));
    free(name);
    return rc;
}

/* Every engine process holds a shared flock on PATH-engine while its store is open; the kernel
 * drops it when the process dies, so "nobody else holds it" means "no other engine is alive".
 * A process checks by trying for the exclusive lock and then keeps the shared one. flock may
 * convert exclusive to shared non-atomically, so checks are serialised by a second lock file
 * (the gate): nobody can slip in between. flock, unlike fcntl locks, belongs to the open file,
 * so two stores in one process also see each other. */
static int engine_lock(store_backend_t *be, bool *alone, err_t *err)
{
    int rc = 0;
    pthread_mutex_lock(&be->lock_mu);
    if (be->gate_fd < 0 && (rc = open_lock_file(be->path, "-engine-gate", &be->gate_fd, err)) < 0)
        goto out;
    if (be->engine_fd < 0 && (rc = open_lock_file(be->path, "-engine", &be->engine_fd, err)) < 0)
        goto out;
    if (flock(be->gate_fd, LOCK_EX) != 0) {
        rc = err_set(err, BR_ESTORE, "cannot lock %s-engine-gate: %s", be->path, strerror(errno));
        goto out;
    }
    *alone = flock(be->engine_fd, LOCK_EX | LOCK_NB) == 0;
    if (flock(be->engine_fd, LOCK_SH) != 0)
        rc = err_set(err, BR_ESTORE, "cannot lock %s-engine: %s", be->path, strerror(errno));
    flock(be->gate_fd, LOCK_UN);
out:
    pthread_mutex_unlock(&be->lock_mu);
    return rc;
}

/* ---- open and close -------------------------------------------------------------------------- */

static void backend_close(store_backend_t *be)
{
    if (!be)
        return;
    while (be->idle) {
        sq_conn_t *c = be->idle;
        be->idle = c->next;
        conn_close(c);
    }
    for (int k = 0; k < SQ_PUT_SIZES; k++) {
        put_stmt_free(&be->run_put[k]);
        put_stmt_free(&be->step_put[k]);
    }
    conn_close(be->w);
    if (be->engine_fd >= 0)
        close(be->engine_fd); /* drops the engine's shared lock */
    if (be->gate_fd >= 0)
        close(be->gate_fd);
    pthread_mutex_destroy(&be->lock_mu);
    pthread_mutex_destroy(&be->pool_mu);
    pthread_cond_destroy(&be->pool_cv);
    free(be->path);
    free(be);
}

static const store_backend_ops_t sqlite_ops = {
    .name = "sqlite",
    .begin = w_begin,
    .commit = w_commit,
    .rollback = w_rollback,
    .savepoint = w_savepoint,
    .release = w_release,
    .in_transaction = w_in_transaction,
    .run_put = w_run_put,
    .step_put = w_step_put,
    .exec = w_exec,
    .integration_get = sq_integration_get,
    .integration_list = sq_integration_list,
    .integration_versions = sq_integration_versions,
    .trigger_targets = sq_trigger_targets,
    .catalog_epoch = sq_catalog_epoch,
    .run_get = sq_run_get,
    .run_steps = sq_run_steps,
    .step_children = sq_step_children,
    .runs_list = sq_runs_list,
    .run_children = sq_run_children,
    .root_count = sq_root_count,
    .queue_next_due = sq_queue_next_due,
    .queue_counts = sq_queue_counts,
    .cancel_requested = sq_cancel_requested,
    .token_get = sq_token_get,
    .token_list = sq_token_list,
    .token_any_active = sq_token_any_active,
    .connector_get = sq_connector_get,
    .connector_list = sq_connector_list,
    .connector_versions = sq_connector_versions,
    .connection_get = sq_connection_get,
    .connection_list = sq_connection_list,
    .connections_epoch = sq_connections_epoch,
    .engine_lock = engine_lock,
    .close = backend_close,
};

/* Open (creating when missing) the SQLite database file PATH, bring its schema up to date and
 * return the backend (owned; close through OPS->close) and its vtable. BUSY_TIMEOUT_MS is how
 * long a statement waits for another process's lock. 0 or BR_ESTORE: a file that is not a
 * database, a directory we cannot write, a schema newer than this build. Any one thread. */
int sqlite_backend_open(const char *path, int busy_timeout_ms, store_backend_t **out,
                        const store_backend_ops_t **ops, err_t *err)
{
    if (!sqlite3_threadsafe())
        return err_set(err, BR_ESTORE, "this SQLite library was built without thread support");
    store_backend_t *be = XNEW(store_backend_t);
    be->path = xstrdup(path);
    be->busy_ms = busy_timeout_ms;
    pthread_mutex_init(&be->pool_mu, NULL);
    pthread_cond_init(&be->pool_cv, NULL);
    pthread_mutex_init(&be->lock_mu, NULL);
    be->engine_fd = be->gate_fd = -1;
    int rc = conn_open(be, false, &be->w, err);
    if (rc == 0) {
        int vars = sqlite3_limit(be->w->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
        while (be->put_log_max < SQ_PUT_SIZES - 1 &&
               (2 << be->put_log_max) * RUN_PUT_COLS <= vars)
            be->put_log_max++;
        rc = migrate(be, err);
    }
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(be->w->db, "PRAGMA encoding", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            be->utf8 = strcmp((const char *)sqlite3_column_text(st, 0), "UTF-8") == 0;
        sqlite3_finalize(st);
    }
    if (rc < 0) {
        backend_close(be);
        return rc;
    }
    *out = be;
    *ops = &sqlite_ops;
    return 0;
}
