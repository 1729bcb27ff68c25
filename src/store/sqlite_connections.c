/* sqlite_connections.c - the SQLite backend's connectors (immutable versions, like
 * integration_versions; sqlite_versions.c stores and reads those for both) and connections
 * (config and sealed secrets as JSON text), both sides: the write ops the writer thread runs,
 * and the reads on pooled read-only connections.
 *
 * Invariant: every write here also moves the 'connections' row of counters in the same
 * transaction, so an engine that reads an unchanged epoch has seen every change. Secrets
 * arrive sealed (store.c refuses anything else); nothing here ever sees a secret's value.
 */
#include "store/sqlite_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdlib.h>

/* ---- the write side (writer thread, inside the op's savepoint) ------------------------------- */

/* An upsert rather than a plain UPDATE: a counters row deleted by hand comes back. */
static const char SQL_EPOCH_BUMP[] = "INSERT INTO counters(name, value) VALUES ('connections', 1)"
                                     " ON CONFLICT(name) DO UPDATE SET value=value+1";
/* ?5 is the record's created_at: 0 means now (?7) for a new row and "keep" for an existing one. */
static const char SQL_CONNECTION_PUT[] =
    "INSERT INTO connections(id, connector, config, secrets, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5>0 THEN ?5 ELSE ?7 END, ?6)"
    " ON CONFLICT(id) DO UPDATE SET connector=excluded.connector, config=excluded.config,"
    " secrets=excluded.secrets,"
    " created_at=CASE WHEN ?5>0 THEN ?5 ELSE connections.created_at END,"
    " updated_at=excluded.updated_at";
static const char SQL_CONNECTION_UPDATE[] =
    "UPDATE connections SET connector=?2, config=?3, secrets=?4,"
    " created_at=CASE WHEN ?5>0 THEN ?5 ELSE created_at END, updated_at=?6 WHERE id=?1";
static const char SQL_CONNECTION_DELETE[] = "DELETE FROM connections WHERE id=?1";

static int bump_epoch(store_backend_t *be, err_t *err)
{
    sqlite3_stmt *st;
    int rc = sq_prep_w(be, SQL_EPOCH_BUMP, &st, err);
    return rc < 0 ? rc : sq_step_done(be->w->db, st, err, "cannot update the connections epoch");
}

/* Store the op's document as the slug's next version unless it equals the latest (which moves
 * nothing, the epoch included). */
int sq_op_connector_publish(store_backend_t *be, store_op_t *op, err_t *err)
{
    int rc = sq_docs_publish(be, &sq_connector_docs, op->u.publish.name, op->u.publish.doc,
                             clock_now_ms(), &op->u.publish.version, &op->u.publish.created, err);
    return rc < 0 || !op->u.publish.created ? rc : bump_epoch(be, err);
}

/* Bind C to SQL_CONNECTION_PUT's or SQL_CONNECTION_UPDATE's ?1..?6 on ST and step it: config
 * and secrets as compact text ({} when absent), updated_at NOW when C has none. */
static int write_connection(store_backend_t *be, const char *sql, const connection_rec_t *c,
                            int64_t now, err_t *err)
{
    sqlite3_stmt *st;
    int rc = sq_prep_w(be, sql, &st, err);
    if (rc < 0)
        return rc;
    char *config = c->config ? jsonx_dump(c->config) : xstrdup("{}");
    char *secrets = c->secrets ? jsonx_dump(c->secrets) : xstrdup("{}");
    sq_bind_str(st, 1, c->id);
    sq_bind_str(st, 2, c->connector);
    sq_bind_str(st, 3, config);
    sq_bind_str(st, 4, secrets);
    sqlite3_bind_int64(st, 5, c->created_at > 0 ? c->created_at : 0);
    sqlite3_bind_int64(st, 6, c->updated_at > 0 ? c->updated_at : now);
    if (sql == SQL_CONNECTION_PUT)
        sqlite3_bind_int64(st, 7, now);
    rc = sq_step_done(be->w->db, st, err, "cannot store a connection");
    free(config);
    free(secrets);
    return rc;
}

int sq_op_connection_put(store_backend_t *be, store_op_t *op, err_t *err)
{
    int rc = write_connection(be, SQL_CONNECTION_PUT, op->u.connection_put.rec,
                              op->u.connection_put.now, err);
    return rc < 0 ? rc : bump_epoch(be, err);
}

int sq_op_connection_delete(store_backend_t *be, store_op_t *op, err_t *err)
{
    sqlite3_stmt *st;
    int rc = sq_prep_w(be, SQL_CONNECTION_DELETE, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, op->u.connection_delete.id);
    if ((rc = sq_step_done(be->w->db, st, err, "cannot delete a connection")) < 0)
        return rc;
    if (sqlite3_changes(be->w->db) == 0)
        return err_set(err, BR_ECONNECTION_NOT_FOUND, "connection %s not found",
                       op->u.connection_delete.id);
    return bump_epoch(be, err);
}

/* Every record updates an existing row; the first missing one fails the op, and the writer
 * rolls its savepoint back, so the rows updated before it are restored: all or nothing. */
int sq_op_connection_put_all(store_backend_t *be, store_op_t *op, err_t *err)
{
    for (int i = 0; i < op->u.connection_put_all.n; i++) {
        const connection_rec_t *c = op->u.connection_put_all.recs[i];
        int rc = write_connection(be, SQL_CONNECTION_UPDATE, c, op->u.connection_put_all.now, err);
        if (rc < 0)
            return rc;
        if (sqlite3_changes(be->w->db) == 0)
            return err_set(err, BR_ECONNECTION_NOT_FOUND, "connection %s not found", c->id);
    }
    return bump_epoch(be, err);
}

/* ---- the read side (any thread) -------------------------------------------------------------- */

/* created_at is a bare column beside max(): SQLite takes it from the row holding the maximum,
 * so updated_at is the latest version's time. */
static const char SQL_CONNECTOR_LIST[] =
    "SELECT slug, max(version), created_at FROM connectors GROUP BY slug ORDER BY slug";
#define CONNECTION_COLS "id, connector, config, secrets, created_at, updated_at"
static const char SQL_CONNECTION_GET[] = "SELECT " CONNECTION_COLS " FROM connections WHERE id=?1";
static const char SQL_CONNECTION_LIST[] = "SELECT " CONNECTION_COLS " FROM connections ORDER BY id";
static const char SQL_CONNECTIONS_EPOCH[] = "SELECT value FROM counters WHERE name='connections'";

/* An sq_row_json_cb for SQL_CONNECTOR_LIST. */
static int row_connector(sqlite3_stmt *st, json_t **out, err_t *err)
{
    (void)err;
    *out = json_pack("{s:s, s:i, s:o}", "slug", (const char *)sqlite3_column_text(st, 0),
                     "latest_version", sqlite3_column_int(st, 1), "updated_at",
                     jsonx_time(sqlite3_column_int64(st, 2)));
    return 0;
}

/* Every connector by slug: an owned array of {"slug", "latest_version", "updated_at"}. */
int sq_connector_list(store_backend_t *be, json_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_CONNECTOR_LIST, &c, &st, err);
    if (rc < 0)
        return rc;
    return sq_read_array(be, c, st, row_connector, "cannot list connectors", out, err);
}

/* The connection in the current row (CONNECTION_COLS) as an owned record. Config or secrets
 * that are not objects mean a damaged row: BR_ESTORE. */
static int row_connection(sqlite3_stmt *st, connection_rec_t **out, err_t *err)
{
    connection_rec_t *r = connection_rec_new();
    int rc = 0;
    r->id = sq_col_str(st, 0);
    r->connector = sq_col_str(st, 1);
    if ((rc = sq_col_json(st, 2, &r->config, err)) < 0 ||
        (rc = sq_col_json(st, 3, &r->secrets, err)) < 0)
        goto out;
    if (!json_is_object(r->config) || !json_is_object(r->secrets)) {
        rc = err_set(err, BR_ESTORE, "connection %s has damaged config or secrets",
                     r->id ? r->id : "");
        goto out;
    }
    r->created_at = sqlite3_column_int64(st, 4);
    r->updated_at = sqlite3_column_int64(st, 5);
    *out = r;
    r = NULL;
out:
    connection_rec_free(r);
    return rc;
}

/* Connection ID into *OUT (owned; connection_rec_free), or BR_ECONNECTION_NOT_FOUND. */
int sq_connection_get(store_backend_t *be, const char *id, connection_rec_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_CONNECTION_GET, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        rc = row_connection(st, out, err);
    else if (s == SQLITE_DONE)
        rc = err_set(err, BR_ECONNECTION_NOT_FOUND, "connection %s not found", id);
    else
        rc = sq_fail(c->db, err, "cannot read a connection");
    sq_end_read(be, c, st);
    return rc;
}

/* Every connection by id: *OUT an owned array of *N owned records. */
int sq_connection_list(store_backend_t *be, connection_rec_t ***out, int *n, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_CONNECTION_LIST, &c, &st, err);
    if (rc < 0)
        return rc;
    connection_rec_t **v = NULL;
    int count = 0, cap = 0, s = SQLITE_DONE;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, (size_t)cap * sizeof *v);
        }
        if ((rc = row_connection(st, &v[count], err)) == 0)
            count++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sq_fail(c->db, err, "cannot list connections");
    sq_end_read(be, c, st);
    if (rc < 0) {
        connection_recs_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

/* The connections' change counter: one primary-key read (0 when the row is missing). */
int sq_connections_epoch(store_backend_t *be, int64_t *epoch, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, SQL_CONNECTIONS_EPOCH, &c, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_one_int64(c, st, epoch, err, "cannot read the connections epoch");
    sq_end_read(be, c, st);
    return rc;
}
