/* sqlite_versions.c - versioned documents in SQLite: integrations and connectors both keep
 * immutable, numbered versions of a document under a name (integration_versions, connectors).
 * One implementation serves both; an sq_docs_t names a kind's statements and the words of its
 * messages. Publishing runs on the writer thread inside the op's savepoint; reads on pooled
 * read-only connections, from any thread.
 *
 * Invariant: versions of a name are numbered 1, 2, ... without gaps, and a version is never
 * changed once written; publishing a document equal to the latest writes nothing.
 */
#include "store/sqlite_internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <string.h>

struct sq_docs {
    const char *noun;         /* "integration", "connector": in not-found messages */
    const char *sql_latest;   /* ?1 name -> version, doc of the latest version */
    const char *sql_insert;   /* ?1 name, ?2 version, ?3 doc, ?4 created_at */
    const char *sql_get;      /* ?1 name, ?2 version (0 = latest) -> name, version, doc,
                               * created_at, archived */
    const char *sql_exists;   /* ?1 name -> a row when the name has any version */
    const char *sql_versions; /* ?1 name -> version, created_at, oldest first */
    const char *fail_latest;  /* sq_fail's WHAT for each statement */
    const char *fail_insert;
    const char *fail_get;
    const char *fail_versions;
};

/* Each statement is a static array: the connection's statement cache is keyed by its address. */
static const char SQL_INTEGRATION_LATEST[] =
    "SELECT version, doc FROM integration_versions WHERE name=?1 ORDER BY version DESC LIMIT 1";
static const char SQL_INTEGRATION_INSERT[] =
    "INSERT INTO integration_versions(name, version, doc, created_at) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_INTEGRATION_GET[] =
    "SELECT v.name, v.version, v.doc, v.created_at, i.archived FROM integration_versions v"
    " JOIN integrations i ON i.name=v.name WHERE v.name=?1 AND (?2=0 OR v.version=?2)"
    " ORDER BY v.version DESC LIMIT 1";
static const char SQL_INTEGRATION_EXISTS[] =
    "SELECT 1 FROM integration_versions WHERE name=?1 LIMIT 1";
static const char SQL_INTEGRATION_VERSIONS[] =
    "SELECT version, created_at FROM integration_versions WHERE name=?1 ORDER BY version";

static const char SQL_CONNECTOR_LATEST[] =
    "SELECT version, doc FROM connectors WHERE slug=?1 ORDER BY version DESC LIMIT 1";
static const char SQL_CONNECTOR_INSERT[] =
    "INSERT INTO connectors(slug, version, doc, created_at) VALUES (?1, ?2, ?3, ?4)";
/* Connectors are never archived: the fifth column is a constant 0. */
static const char SQL_CONNECTOR_GET[] =
    "SELECT slug, version, doc, created_at, 0 FROM connectors"
    " WHERE slug=?1 AND (?2=0 OR version=?2) ORDER BY version DESC LIMIT 1";
static const char SQL_CONNECTOR_EXISTS[] = "SELECT 1 FROM connectors WHERE slug=?1 LIMIT 1";
static const char SQL_CONNECTOR_VERSIONS[] =
    "SELECT version, created_at FROM connectors WHERE slug=?1 ORDER BY version";

const sq_docs_t sq_integration_docs = {
    .noun = "integration",
    .sql_latest = SQL_INTEGRATION_LATEST,
    .sql_insert = SQL_INTEGRATION_INSERT,
    .sql_get = SQL_INTEGRATION_GET,
    .sql_exists = SQL_INTEGRATION_EXISTS,
    .sql_versions = SQL_INTEGRATION_VERSIONS,
    .fail_latest = "cannot read versions",
    .fail_insert = "cannot store the version",
    .fail_get = "cannot read an integration",
    .fail_versions = "cannot list versions",
};

const sq_docs_t sq_connector_docs = {
    .noun = "connector",
    .sql_latest = SQL_CONNECTOR_LATEST,
    .sql_insert = SQL_CONNECTOR_INSERT,
    .sql_get = SQL_CONNECTOR_GET,
    .sql_exists = SQL_CONNECTOR_EXISTS,
    .sql_versions = SQL_CONNECTOR_VERSIONS,
    .fail_latest = "cannot read connectors",
    .fail_insert = "cannot store the connector",
    .fail_get = "cannot read a connector",
    .fail_versions = "cannot list connector versions",
};

/* ---- the write side (writer thread, inside the op's savepoint) ------------------------------- */

/* Store DOC (borrowed) as NAME's next version of kind D, created at NOW (epoch ms), unless it
 * equals the latest: *VERSION is then the latest and *CREATED false, and nothing is written.
 * 0 or BR_ESTORE. Writer thread only. */
int sq_docs_publish(store_backend_t *be, const sq_docs_t *d, const char *name, const char *doc,
                    int64_t now, int *version, bool *created, err_t *err)
{
    sqlite3 *db = be->w->db;
    sqlite3_stmt *st;
    int rc, latest = 0;
    bool same = false;

    if ((rc = sq_prep_w(be, d->sql_latest, &st, err)) < 0)
        return rc;
    sq_bind_str(st, 1, name);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        latest = sqlite3_column_int(st, 0);
        const char *last = (const char *)sqlite3_column_text(st, 1);
        same = last && strcmp(last, doc) == 0;
    }
    rc = (s == SQLITE_ROW || s == SQLITE_DONE) ? 0 : sq_fail(db, err, d->fail_latest);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    if (!same) {
        if ((rc = sq_prep_w(be, d->sql_insert, &st, err)) < 0)
            return rc;
        sq_bind_str(st, 1, name);
        sqlite3_bind_int(st, 2, latest + 1);
        sq_bind_str(st, 3, doc);
        sqlite3_bind_int64(st, 4, now);
        if ((rc = sq_step_done(db, st, err, d->fail_insert)) < 0)
            return rc;
    }
    *version = same ? latest : latest + 1;
    *created = !same;
    return 0;
}

/* ---- the read side (any thread) -------------------------------------------------------------- */

/* Version VERSION (0 = latest) of NAME of kind D into *OUT (owned; integration_version_free):
 * BR_ENOT_FOUND when NAME has no version, BR_EVERSION_NOT_FOUND when only VERSION is missing,
 * or BR_ESTORE. */
static int docs_get(store_backend_t *be, const sq_docs_t *d, const char *name, int version,
                    integration_version_t **out, err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    int rc = sq_begin_read(be, d->sql_get, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, name);
    sqlite3_bind_int(st, 2, version);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        integration_version_t *v = XNEW(integration_version_t);
        v->name = sq_col_str(st, 0);
        v->version = sqlite3_column_int(st, 1);
        v->doc = sq_col_str(st, 2);
        v->created_at = sqlite3_column_int64(st, 3);
        v->archived = sqlite3_column_int(st, 4) != 0;
        *out = v;
    } else if (s != SQLITE_DONE) {
        rc = sq_fail(c->db, err, d->fail_get);
    } else if (version == 0) {
        rc = err_set(err, BR_ENOT_FOUND, "%s %s not found", d->noun, name);
    } else {
        /* Tell a missing version from a missing name. */
        sqlite3_reset(st);
        sqlite3_stmt *ex;
        if ((rc = sq_prepare(c, d->sql_exists, &ex, err)) == 0) {
            sq_bind_str(ex, 1, name);
            s = sqlite3_step(ex);
            if (s == SQLITE_ROW)
                rc = err_set(err, BR_EVERSION_NOT_FOUND, "%s %s has no version %d", d->noun, name,
                             version);
            else if (s == SQLITE_DONE)
                rc = err_set(err, BR_ENOT_FOUND, "%s %s not found", d->noun, name);
            else
                rc = sq_fail(c->db, err, d->fail_get);
            sqlite3_reset(ex);
        }
    }
    sq_end_read(be, c, st);
    return rc;
}

/* An sq_row_json_cb: {"version", "created_at"}. */
static int row_version(sqlite3_stmt *st, json_t **out, err_t *err)
{
    (void)err;
    *out = json_pack("{s:i, s:o}", "version", sqlite3_column_int(st, 0), "created_at",
                     jsonx_time(sqlite3_column_int64(st, 1)));
    return 0;
}

/* NAME's versions of kind D, oldest first: an owned array of {"version", "created_at"};
 * BR_ENOT_FOUND when NAME has none. */
static int docs_versions(store_backend_t *be, const sq_docs_t *d, const char *name, json_t **out,
                         err_t *err)
{
    sq_conn_t *c;
    sqlite3_stmt *st;
    json_t *arr;
    int rc = sq_begin_read(be, d->sql_versions, &c, &st, err);
    if (rc < 0)
        return rc;
    sq_bind_str(st, 1, name);
    if ((rc = sq_read_array(be, c, st, row_version, d->fail_versions, &arr, err)) < 0)
        return rc;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return err_set(err, BR_ENOT_FOUND, "%s %s not found", d->noun, name);
    }
    *out = arr;
    return 0;
}

/* The vtable's entries: docs_get and docs_versions for each kind. */
int sq_integration_get(store_backend_t *be, const char *name, int version,
                       integration_version_t **out, err_t *err)
{
    return docs_get(be, &sq_integration_docs, name, version, out, err);
}

int sq_integration_versions(store_backend_t *be, const char *name, json_t **out, err_t *err)
{
    return docs_versions(be, &sq_integration_docs, name, out, err);
}

/* As sq_integration_get, its name the slug and archived false. */
int sq_connector_get(store_backend_t *be, const char *slug, int version,
                     integration_version_t **out, err_t *err)
{
    return docs_get(be, &sq_connector_docs, slug, version, out, err);
}

int sq_connector_versions(store_backend_t *be, const char *slug, json_t **out, err_t *err)
{
    return docs_versions(be, &sq_connector_docs, slug, out, err);
}
