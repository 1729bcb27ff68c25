/* sqlite_internal.h - what sqlite.c (connections, schema, the write side), sqlite_read.c
 * (the read side), sqlite_versions.c (versioned documents: integrations and connectors) and
 * sqlite_connections.c (connectors and connections) share. Only src/store/
 * includes this header, and with it sqlite3.h.
 *
 * One writing connection belongs to the writer thread; read-only connections come from a
 * small pool, each used by one thread at a time. Every connection caches its prepared
 * statements, keyed by the address of the SQL text (a static array per statement).
 */
#ifndef BRAID_STORE_SQLITE_INTERNAL_H
#define BRAID_STORE_SQLITE_INTERNAL_H

#include "store/store_internal.h"

#include "core/buf.h"

#include <pthread.h>
#include <sqlite3.h>

#define SQ_CACHE 64   /* prepared statements per connection (open addressing) */
#define SQ_READERS 16 /* most read connections open at once */
#define SQ_PUT_SIZES 7  /* multi-row put statements of 1, 2, 4, ... 64 rows */

typedef struct sq_conn {
    sqlite3 *db;
    struct {
        const char *sql; /* key: the static SQL text; NULL = free slot */
        sqlite3_stmt *st;
    } cache[SQ_CACHE];
    struct sq_conn *next; /* in the pool's free list */
} sq_conn_t;

/* A multi-row put statement and what its parameters hold: bindings outlive a reset, so a
 * parameter whose value is unchanged (a NULL, a version, a time to the ms, text at the same
 * address) is not bound again. */
typedef struct sq_put {
    sqlite3_stmt *st;
    int64_t *val;   /* per parameter (from 1): the integer bound, or the text's address */
    int *len;       /* per parameter: the text's length */
    uint8_t *state; /* per parameter: SQ_BOUND_* */
    bool keep_text; /* text at the same address may stay bound (UTF-8 databases: SQLite keeps
                     * the address rather than a converted copy) */
} sq_put_t;

/* Text bound static is read at its address when the statement runs, so the same address and
 * length need no new binding even when the bytes there are new. */
enum { SQ_BOUND_OTHER, SQ_BOUND_NULL, SQ_BOUND_INT, SQ_BOUND_TEXT };

struct store_backend {
    char *path;
    int busy_ms;
    sq_conn_t *w; /* the writer thread's connection */
    /* The writer's multi-row puts: [k] writes 2^k rows in one statement, prepared on first use.
     * Rows of one statement share its cursors, so index entries that land at the end of
     * their index (ids, times and parents grow) are appended without a search from the root. */
    sq_put_t run_put[SQ_PUT_SIZES];
    sq_put_t step_put[SQ_PUT_SIZES];
    int put_log_max; /* the largest k the connection's variable limit allows */
    bool utf8;       /* the database's text encoding is UTF-8 (braid's always are) */

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    sq_conn_t *idle; /* read connections not in use */
    int readers;     /* read connections open */

    pthread_mutex_t lock_mu; /* guards the two descriptors below */
    int engine_fd;           /* PATH-engine, shared-locked while an engine uses the store */
    int gate_fd;             /* PATH-engine-gate, held only while announcing */
};

/* SQL: the run's root_id is that of the run whose id is PARAM. A run's children are found
 * through runs_tree (root_id, parent_id, parent_step) by their parent's root first, read from
 * the parent's own row; so only the children of a parent still in history are found. */
#define SAME_ROOT_AS(param) "root_id=(SELECT root_id FROM runs WHERE id=" param ")"

/* The columns sq_row_run reads, in order. */
#define SQ_RUN_COLS                                                                                \
    "id, integration, version, status, trigger_type, trigger_info, parent_id, root_id, depth, "    \
    "task, parent_step, sync_child, detached, retry_on_interrupt, input, output, error, "          \
    "created_at, scheduled_at, started_at, finished_at, deadline_at, attempt, idempotency_key"

/* Fill ERR with BR_ESTORE, WHAT and SQLite's message for DB; returns BR_ESTORE. */
int sq_fail(sqlite3 *db, err_t *err, const char *what);
/* The cached statement for SQL (a static array) on C, prepared on first use; reset it after
 * use. 0 or BR_ESTORE. */
int sq_prepare(sq_conn_t *c, const char *sql, sqlite3_stmt **out, err_t *err);
/* The name of the VFS the writing connection opens the database with (sqlite_gather_vfs.c: a
 * commit reaches the WAL in one write, a checkpoint's run of pages the database in one), or
 * NULL for SQLite's default when it cannot be set up. Any thread. */
const char *sq_gather_vfs(void);
/* Borrow a read connection (waits while all SQ_READERS are busy) and give it back. */
int sq_reader_get(store_backend_t *be, sq_conn_t **out, err_t *err);
void sq_reader_put(store_backend_t *be, sq_conn_t *c);

/* The lowest UUIDv7 text a run created at MS can carry: ids begin with their creation time,
 * so a time bound becomes a primary-key range. */
void sq_id_floor(int64_t ms, char out[UUID_STR_LEN]);
/* Bind S (NULL binds NULL) as static text: S must outlive the statement's step. */
int sq_bind_str(sqlite3_stmt *st, int i, const char *s);
/* Column I as an owned string, or NULL when SQL NULL. */
char *sq_col_str(sqlite3_stmt *st, int i);
/* Column I parsed as JSON into *OUT (owned; NULL when SQL NULL). 0 or BR_ESTORE. */
int sq_col_json(sqlite3_stmt *st, int i, json_t **out, err_t *err);
/* The run in the current row, columns SQ_RUN_COLS from column 0; its input and trigger info
 * taken from CACHE when it holds them (claims; NULL elsewhere). 0 or BR_ESTORE. */
int sq_row_run(sqlite3_stmt *st, claim_cache_t *cache, run_rec_t **out, err_t *err);
/* Step ST through its rows into an owned array of runs (*OUT, *N), as sq_row_run. Resets ST. */
int sq_collect_runs(sqlite3 *db, sqlite3_stmt *st, claim_cache_t *cache, run_rec_t ***out,
                    int *n, err_t *err);

/* The writer's connection: SQL's cached statement with its bindings cleared (writer thread). */
int sq_prep_w(store_backend_t *be, const char *sql, sqlite3_stmt **st, err_t *err);
/* Step a write statement to completion and reset it. 0 or BR_ESTORE naming WHAT. */
int sq_step_done(sqlite3 *db, sqlite3_stmt *st, err_t *err, const char *what);
/* Borrow a reader and prepare SQL on it, bindings cleared; on failure nothing is held. Give
 * both back with sq_end_read, which resets ST. */
int sq_begin_read(store_backend_t *be, const char *sql, sq_conn_t **c, sqlite3_stmt **st,
                  err_t *err);
void sq_end_read(store_backend_t *be, sq_conn_t *c, sqlite3_stmt *st);
/* One row as a JSON value: *OUT owned. 0, or an error (BR_ESTORE for a damaged row). */
typedef int (*sq_row_json_cb)(sqlite3_stmt *st, json_t **out, err_t *err);
/* Step ST (from sq_begin_read) into an owned array of ROW's values, then sq_end_read. */
int sq_read_array(store_backend_t *be, sq_conn_t *c, sqlite3_stmt *st, sq_row_json_cb row,
                  const char *what, json_t **out, err_t *err);
/* Step ST for one integer (SQL NULL or no row: 0). 0 or BR_ESTORE naming WHAT. */
int sq_one_int64(sq_conn_t *c, sqlite3_stmt *st, int64_t *out, err_t *err, const char *what);

/* Versioned documents (sqlite_versions.c): a kind names its table's statements and the noun
 * of its messages. Integrations and connectors are the two kinds. */
typedef struct sq_docs sq_docs_t;
extern const sq_docs_t sq_integration_docs;
extern const sq_docs_t sq_connector_docs;
/* Store DOC as NAME's next version of kind D unless it equals the latest (writer thread). */
int sq_docs_publish(store_backend_t *be, const sq_docs_t *d, const char *name, const char *doc,
                    int64_t now, int *version, bool *created, err_t *err);
int sq_integration_get(store_backend_t *be, const char *name, int version,
                       integration_version_t **out, err_t *err);
int sq_integration_versions(store_backend_t *be, const char *name, json_t **out, err_t *err);
int sq_connector_get(store_backend_t *be, const char *slug, int version,
                     integration_version_t **out, err_t *err);
int sq_connector_versions(store_backend_t *be, const char *slug, json_t **out, err_t *err);

/* The read side (sqlite_read.c), for the vtable. */
int sq_integration_list(store_backend_t *be, bool include_archived, json_t **out, err_t *err);
int sq_trigger_targets(store_backend_t *be, const char *trigger_id, json_t **out, err_t *err);
int sq_catalog_epoch(store_backend_t *be, int64_t *epoch, err_t *err);
int sq_run_get(store_backend_t *be, const char *id, run_rec_t **out, err_t *err);
int sq_run_steps(store_backend_t *be, const char *run_id, step_rec_t ***out, int *n, err_t *err);
int sq_step_children(store_backend_t *be, const char *parent_id, int seq, int limit, json_t **out,
                     err_t *err);
int sq_runs_list(store_backend_t *be, const run_filter_t *f, run_rec_t ***out, int *n,
                 char **next_cursor, err_t *err);
int sq_run_children(store_backend_t *be, const char *parent_id, run_rec_t ***out, int *n,
                    err_t *err);
int sq_root_count(store_backend_t *be, const char *root_id, int64_t *count, err_t *err);
int sq_queue_next_due(store_backend_t *be, int64_t *when, err_t *err);
int sq_queue_counts(store_backend_t *be, json_t **out, err_t *err);
int sq_cancel_requested(store_backend_t *be, const char *owner, json_t **out, err_t *err);
int sq_token_get(store_backend_t *be, const char *id, token_rec_t **out, err_t *err);
int sq_token_list(store_backend_t *be, json_t **out, err_t *err);
int sq_token_any_active(store_backend_t *be, const char *role, bool *any, err_t *err);

/* Connectors and connections (sqlite_connections.c): the write ops, run by the writer inside
 * its op savepoint, and the read side for the vtable. */
int sq_op_connector_publish(store_backend_t *be, store_op_t *op, err_t *err);
int sq_op_connection_put(store_backend_t *be, store_op_t *op, err_t *err);
int sq_op_connection_delete(store_backend_t *be, store_op_t *op, err_t *err);
int sq_op_connection_put_all(store_backend_t *be, store_op_t *op, err_t *err);
int sq_connector_list(store_backend_t *be, json_t **out, err_t *err);
int sq_connection_get(store_backend_t *be, const char *id, connection_rec_t **out, err_t *err);
int sq_connection_list(store_backend_t *be, connection_rec_t ***out, int *n, err_t *err);
int sq_connections_epoch(store_backend_t *be, int64_t *epoch, err_t *err);

#endif
