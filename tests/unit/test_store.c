/* test_store.c - the store on SQLite: schema, integrations, run history, the queue, the
 * group-commit writer under concurrency, and a rough throughput figure (printed, not asserted).
 * Each test has its own temporary directory under /tmp, removed afterwards.
 */
#include "store/store.h"
#include "store/store_internal.h" /* the claim cache, tested on its own */

#include "core/buf.h"
#include "core/clock.h"
#include "core/jsonx.h"
#include "core/uuid.h"
#include "core/xalloc.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmp_store.h"

/* ---- fixtures -------------------------------------------------------------------------------- */

typedef store_fx_t fx_t;

static int open_store(fx_t *f, int64_t group_commit_ms)
{
    store_options_t o = {.group_commit_ms = group_commit_ms};
    return tmp_store_open(f->dir, &o, &f->st);
}

static int setup(void **state)
{
    store_options_t o = {.group_commit_ms = 0};
    return store_fx_setup(state, "/tmp/braid_store_XXXXXX", &o);
}

static int teardown(void **state)
{
    return store_fx_teardown(state);
}

/* A run of INTEGRATION with STATUS, a root unless PARENT is given; times at T. Owned. */
static run_rec_t *mk_run(const char *integration, run_status_t status, const run_rec_t *parent,
                         int64_t t)
{
    run_rec_t *r = run_rec_new();
    uuid_v7(r->id);
    r->integration = xstrdup(integration);
    r->version = 1;
    r->status = status;
    r->trigger = xstrdup(parent ? "call" : "api");
    if (parent) {
        memcpy(r->parent_id, parent->id, UUID_STR_LEN);
        memcpy(r->root_id, parent->root_id[0] ? parent->root_id : parent->id, UUID_STR_LEN);
        r->depth = parent->depth + 1;
        r->task = xstrdup("call");
        r->parent_step = 0;
    } else {
        memcpy(r->root_id, r->id, UUID_STR_LEN);
    }
    r->input = json_pack("{s:{s:i}}", "payload", "n", 1);
    r->created_at = t;
    r->scheduled_at = t;
    r->retry_on_interrupt = true;
    return r;
}

static void put_and_flush(store_t *st, const run_rec_t *r)
{
    store_run_put(st, r);
    assert_int_equal(store_flush(st, NULL), 0);
}

static run_rec_t *get_run(store_t *st, const char *id)
{
    run_rec_t *r = NULL;
    err_t err = {0};
    int rc = store_run_get(st, id, &r, &err);
    if (rc != 0)
        fprintf(stderr, "store_run_get: %s\n", err.msg);
    assert_int_equal(rc, 0);
    err_clear(&err);
    return r;
}

static void assert_json_equal(const json_t *a, const json_t *b)
{
    if (!json_equal(a, b)) {
        char *x = json_dumps(a, JSON_ENCODE_ANY), *y = json_dumps(b, JSON_ENCODE_ANY);
        fprintf(stderr, "JSON differs:\n  %s\n  %s\n", x ? x : "NULL", y ? y : "NULL");
        free(x);
        free(y);
        fail();
    }
}

/* ---- opening --------------------------------------------------------------------------------- */

static void test_store_open_reopen_keeps_data(void **state)
{
    fx_t *f = *state;
    int version;
    bool created;
    assert_int_equal(
        store_integration_publish(f->st, "a/b", "{\"x\":1}", NULL, &version, &created, NULL), 0);
    run_rec_t *r = mk_run("a/b", RUN_SUCCEEDED, NULL, 1000);
    put_and_flush(f->st, r);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, 0), 0);

    integration_version_t *v = NULL;
    assert_int_equal(store_integration_get(f->st, "a/b", 0, &v, NULL), 0);
    assert_int_equal(v->version, 1);
    assert_string_equal(v->doc, "{\"x\":1}");
    integration_version_free(v);
    run_rec_t *got = get_run(f->st, r->id);
    assert_string_equal(got->integration, "a/b");
    run_rec_free(got);
    run_rec_free(r);

    /* sqlite:PATH and a database file path reach the same data. */
    store_close(f->st);
    f->st = NULL;
    char url[128], file[128];
    snprintf(url, sizeof url, "sqlite:%s", f->dir);
    snprintf(file, sizeof file, "%s/braid.db", f->dir);
    const char *urls[] = {url, file};
    for (int i = 0; i < 2; i++) {
        store_t *st = NULL;
        assert_int_equal(store_open(urls[i], NULL, &st, NULL), 0);
        assert_int_equal(store_integration_get(st, "a/b", 1, &v, NULL), 0);
        integration_version_free(v);
        store_close(st);
    }
    assert_int_equal(open_store(f, 0), 0);
}

static int read_user_version(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/braid.db", dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    unsigned char b[4];
    /* The SQLite file header keeps user_version big-endian at offset 60. */
    assert_int_equal(pread(fd, b, 4, 60), 4);
    close(fd);
    return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
}

static void test_store_schema_version(void **state)
{
    fx_t *f = *state;
    store_close(f->st); /* the last connection checkpoints the WAL into the file */
    f->st = NULL;
    assert_int_equal(read_user_version(f->dir),
                     STORE_SCHEMA_NOW); /* the schema this build writes */

    /* A database from a newer braid is refused, not damaged. */
    char path[128];
    snprintf(path, sizeof path, "%s/braid.db", f->dir);
    int fd = open(path, O_WRONLY);
    unsigned char future[4] = {0, 0, 0, 99};
    assert_int_equal(pwrite(fd, future, 4, 60), 4);
    close(fd);
    err_t err = {0};
    store_t *st = NULL;
    assert_int_equal(store_open(f->dir, NULL, &st, &err), BR_ESTORE);
    assert_non_null(strstr(err.msg, "newer"));
    err_clear(&err);
    fd = open(path, O_WRONLY);
    unsigned char one[4] = {0, 0, 0, 1};
    assert_int_equal(pwrite(fd, one, 4, 60), 4);
    close(fd);
    assert_int_equal(open_store(f, 0), 0);
}

static step_rec_t mk_step(const char *run_id, int attempt, int seq, const char *task);

/* The schema braid wrote as user_version 1 (migration 0 -> 1, as released). */
static const char V1_SCHEMA[] =
    "CREATE TABLE integrations (  name TEXT PRIMARY KEY,  archived INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,  updated_at INTEGER NOT NULL);"
    "CREATE TABLE integration_versions (  name TEXT NOT NULL,  version INTEGER NOT NULL,"
    "  doc TEXT NOT NULL,  created_at INTEGER NOT NULL,  PRIMARY KEY (name, version));"
    "CREATE TABLE triggers (  trigger_id TEXT NOT NULL,  name TEXT NOT NULL,"
    "  PRIMARY KEY (trigger_id, name)) WITHOUT ROWID;"
    "CREATE INDEX triggers_name ON triggers(name);"
    "CREATE TABLE catalog (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL);"
    "INSERT INTO catalog(id, epoch) VALUES (1, 0);"
    "CREATE TABLE runs (  id TEXT PRIMARY KEY,  integration TEXT NOT NULL,"
    "  version INTEGER NOT NULL,  status TEXT NOT NULL,  trigger_type TEXT,  trigger_info TEXT,"
    "  parent_id TEXT,  root_id TEXT NOT NULL,  depth INTEGER NOT NULL,  task TEXT,"
    "  parent_step INTEGER NOT NULL,  sync_child INTEGER NOT NULL,  detached INTEGER NOT NULL,"
    "  retry_on_interrupt INTEGER NOT NULL,  input TEXT,  output TEXT,  error TEXT,"
    "  created_at INTEGER NOT NULL,  scheduled_at INTEGER NOT NULL,  started_at INTEGER NOT NULL,"
    "  finished_at INTEGER NOT NULL,  deadline_at INTEGER NOT NULL,  attempt INTEGER NOT NULL,"
    "  idempotency_key TEXT,  owner TEXT,  lease_until INTEGER,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX runs_active ON runs(status, scheduled_at)"
    "  WHERE status='scheduled' OR status='queued' OR status='running';"
    "CREATE INDEX runs_parent ON runs(parent_id, parent_step) WHERE parent_id IS NOT NULL;"
    "CREATE INDEX runs_root ON runs(root_id);"
    "CREATE INDEX runs_integration ON runs(integration, id);"
    "CREATE INDEX runs_finished ON runs(finished_at) WHERE finished_at > 0;"
    "CREATE TABLE steps (  run_id TEXT NOT NULL,  attempt INTEGER NOT NULL,  seq INTEGER NOT NULL,"
    "  task_id TEXT,  type TEXT,  status TEXT,  task_attempt INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL,  duration_ms INTEGER NOT NULL,  result TEXT,  error TEXT,"
    "  PRIMARY KEY (run_id, attempt, seq)) WITHOUT ROWID;"
    "CREATE TABLE idempotency (  scope TEXT NOT NULL,  key TEXT NOT NULL,  run_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,  PRIMARY KEY (scope, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_created ON idempotency(created_at);"
    "PRAGMA user_version=1;";

/* Text of the schema object (table, index) NAME in DIR's database, owned; NULL when the
 * schema has none. */
static char *schema_sql(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/braid.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE name=?1", -1,
                                        &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    char *sql = sqlite3_step(st) == SQLITE_ROW
                    ? xstrdup((const char *)sqlite3_column_text(st, 0))
                    : NULL;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return sql;
}

/* Text of the schema object NAME in DIR's database, owned; it must exist. */
static char *table_sql(const char *dir, const char *name)
{
    char *sql = schema_sql(dir, name);
    assert_non_null(sql);
    return sql;
}

static void test_store_migrate_from_v1(void **state)
{
    fx_t *f = *state;
    store_close(f->st);
    f->st = NULL;
    char dir[128], path[160];
    snprintf(dir, sizeof dir, "%s/v1", f->dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/braid.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, V1_SCHEMA, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO runs(id, integration, version, status, root_id, depth,"
                     " parent_step, sync_child, detached, retry_on_interrupt, input, created_at,"
                     " scheduled_at, started_at, finished_at, deadline_at, attempt) VALUES"
                     " ('0190b0b0-0000-7000-8000-000000000001', 'old', 1, 'succeeded',"
                     " '0190b0b0-0000-7000-8000-000000000001', 0, -1, 0, 0, 1, '{\"a\":1}',"
                     " 5, 5, 6, 7, 0, 1);"
                     "INSERT INTO runs(id, integration, version, status, parent_id, root_id, depth,"
                     " parent_step, sync_child, detached, retry_on_interrupt, input, created_at,"
                     " scheduled_at, started_at, finished_at, deadline_at, attempt) VALUES"
                     " ('0190b0b0-0000-7000-8000-000000000002', 'old-child', 1, 'succeeded',"
                     " '0190b0b0-0000-7000-8000-000000000001',"
                     " '0190b0b0-0000-7000-8000-000000000001', 1, 0, 1, 0, 1, '{}',"
                     " 6, 6, 6, 6, 0, 1);"
                     "INSERT INTO steps(run_id, attempt, seq, task_id, type, status, task_attempt,"
                     " started_at, duration_ms, result) VALUES"
                     " ('0190b0b0-0000-7000-8000-000000000001', 1, 0, 't', 'set', 'succeeded', 1,"
                     " 6, 1, '[1,2]');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(read_user_version(dir), 1);

    store_t *st = NULL;
    err_t err = {0};
    assert_int_equal(store_open(dir, NULL, &st, &err), 0);
    /* What was there reads back. */
    run_rec_t *got = get_run(st, "0190b0b0-0000-7000-8000-000000000001");
    assert_string_equal(got->integration, "old");
    assert_int_equal(got->finished_at, 7);
    assert_int_equal(json_integer_value(json_object_get(got->input, "a")), 1);
    run_rec_free(got);
    step_rec_t **steps = NULL;
    int n = 0;
    assert_int_equal(store_run_steps(st, "0190b0b0-0000-7000-8000-000000000001", &steps, &n, NULL),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(json_array_size(steps[0]->result), 2);
    step_rec_free(steps[0]);
    free(steps);
    /* The old child is found through the index that replaced runs_parent and runs_root. */
    run_rec_t **kids = NULL;
    assert_int_equal(store_run_children(st, "0190b0b0-0000-7000-8000-000000000001", &kids, &n,
                                        NULL),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(kids[0]->integration, "old-child");
    run_recs_free(kids, n);
    json_t *ids = NULL;
    assert_int_equal(
        store_step_children(st, "0190b0b0-0000-7000-8000-000000000001", 0, 10, &ids, NULL), 0);
    assert_int_equal(json_array_size(ids), 1);
    json_decref(ids);
    int64_t count = 0;
    assert_int_equal(store_root_count(st, "0190b0b0-0000-7000-8000-000000000001", &count, NULL),
                     0);
    assert_int_equal(count, 2);
    /* New writes land, replacing old rows too. */
    run_rec_t *r = mk_run("new", RUN_RUNNING, NULL, 10);
    put_and_flush(st, r);
    r->status = RUN_SUCCEEDED;
    r->finished_at = 20;
    put_and_flush(st, r);
    got = get_run(st, r->id);
    assert_int_equal(got->status, RUN_SUCCEEDED);
    run_rec_free(got);
    step_rec_t s = mk_step("0190b0b0-0000-7000-8000-000000000001", 1, 0, "t2");
    store_step_put(st, &s);
    assert_int_equal(store_flush(st, NULL), 0);
    assert_int_equal(store_run_steps(st, "0190b0b0-0000-7000-8000-000000000001", &steps, &n, NULL),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0]->task_id, "t2");
    step_rec_free(steps[0]);
    free(steps);
    store_close(st);
    run_rec_free(r);

    /* The tables lost their NOT NULL constraints (only the steps key keeps them, implied). */
    assert_int_equal(read_user_version(dir), STORE_SCHEMA_NOW);
    char *runs = table_sql(dir, "runs"), *stepsql = table_sql(dir, "steps");
    assert_null(strstr(runs, "NOT NULL"));
    assert_non_null(strstr(runs, "cancel_requested INTEGER DEFAULT 0"));
    assert_null(strstr(stepsql, "NOT NULL"));
    assert_non_null(strstr(stepsql, "PRIMARY KEY (run_id, attempt, seq)) WITHOUT ROWID"));
    free(runs);
    free(stepsql);
    char *tree = table_sql(dir, "runs_tree");
    assert_non_null(strstr(tree, "runs(root_id, parent_id, parent_step)"));
    free(tree);
    assert_null(schema_sql(dir, "runs_parent"));
    assert_null(schema_sql(dir, "runs_root"));
    /* A new database gets the same tables. */
    runs = table_sql(f->dir, "runs");
    assert_null(strstr(runs, "NOT NULL"));
    free(runs);
    assert_int_equal(open_store(f, 0), 0);
}

/* Ids of the runs in ROOT's tree as listed in pages of 2, newest first: their count. */
static int list_tree(store_t *st, const char *root, char ids[][UUID_STR_LEN], int max)
{
    run_filter_t flt = {.status = -1, .limit = 2, .root_id = root};
    char *cursor = NULL;
    int n = 0;
    do {
        run_rec_t **runs = NULL;
        int k = 0;
        char *next = NULL;
        flt.cursor = cursor;
        assert_int_equal(store_runs_list(st, &flt, &runs, &k, &next, NULL), 0);
        for (int i = 0; i < k; i++) {
            assert_string_equal(runs[i]->root_id, root);
            assert_true(n < max);
            memcpy(ids[n++], runs[i]->id, UUID_STR_LEN);
        }
        run_recs_free(runs, k);
        free(cursor);
        cursor = next;
    } while (cursor);
    return n;
}

/* A tree is counted and listed whole, however deep, and finishing a run keeps it there. */
static void test_store_tree_count_and_list(void **state)
{
    fx_t *f = *state;
    run_rec_t *root = mk_run("tree/root", RUN_SUCCEEDED, NULL, 10);
    run_rec_t *child = mk_run("tree/child", RUN_SUCCEEDED, root, 11);
    run_rec_t *grand = mk_run("tree/grand", RUN_SUCCEEDED, child, 12);
    run_rec_t *great = mk_run("tree/great", RUN_SUCCEEDED, grand, 13);
    run_rec_t *other = mk_run("tree/other", RUN_SUCCEEDED, NULL, 14);
    run_rec_t *other_child = mk_run("tree/child", RUN_SUCCEEDED, other, 15);
    const run_rec_t *all[] = {root, child, grand, great, other, other_child};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        store_run_put(f->st, all[i]);
    assert_int_equal(store_flush(f->st, NULL), 0);
    /* A second child of the root and a grandchild through it, written later. */
    run_rec_t *child2 = mk_run("tree/child", RUN_RUNNING, root, 16);
    run_rec_t *grand2 = mk_run("tree/grand", RUN_RUNNING, child2, 17);
    store_run_put(f->st, child2);
    put_and_flush(f->st, grand2);

    int64_t count = 0;
    assert_int_equal(store_root_count(f->st, root->id, &count, NULL), 0);
    assert_int_equal(count, 6);
    assert_int_equal(store_root_count(f->st, other->id, &count, NULL), 0);
    assert_int_equal(count, 2);
    assert_int_equal(store_root_count(f->st, child->id, &count, NULL), 0);
    assert_int_equal(count, 0); /* a child is no root */

    char ids[8][UUID_STR_LEN];
    const run_rec_t *want[] = {grand2, child2, great, grand, child, root}; /* newest first */
    assert_int_equal(list_tree(f->st, root->id, ids, 8), 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(ids[i], want[i]->id);
    assert_int_equal(list_tree(f->st, other->id, ids, 8), 2);
    assert_string_equal(ids[0], other_child->id);
    assert_string_equal(ids[1], other->id);

    /* Finishing a run moves none of it out of its tree. */
    grand2->status = RUN_SUCCEEDED;
    grand2->finished_at = 30;
    put_and_flush(f->st, grand2);
    assert_int_equal(store_root_count(f->st, root->id, &count, NULL), 0);
    assert_int_equal(count, 6);

    run_rec_free(root);
    run_rec_free(child);
    run_rec_free(grand);
    run_rec_free(great);
    run_rec_free(other);
    run_rec_free(other_child);
    run_rec_free(child2);
    run_rec_free(grand2);
}

static void test_store_open_errors(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    store_t *st = NULL;

    assert_int_equal(store_open("postgres://u@h/db", NULL, &st, &err), BR_ESTORE);
    assert_string_equal(err.msg, "the PostgreSQL store is not available in this build");
    err_clear(&err);

    /* A file that is not a database. */
    char dir[128], path[160];
    snprintf(dir, sizeof dir, "%s/corrupt", f->dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/braid.db", dir);
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < 512; i++)
        fputs("this is not a database ", fp);
    fclose(fp);
    assert_int_equal(store_open(dir, NULL, &st, &err), BR_ESTORE);
    assert_true(strlen(err.msg) > 0);
    err_clear(&err);

    /* A directory that cannot be created (a file is in the way). */
    snprintf(path, sizeof path, "%s/plainfile", f->dir);
    fp = fopen(path, "w");
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/plainfile/sub", f->dir);
    assert_int_equal(store_open(dir, NULL, &st, &err), BR_ESTORE);
    err_clear(&err);

    /* A directory we may not write (unless we are root, who may). */
    if (geteuid() != 0) {
        snprintf(dir, sizeof dir, "%s/ro", f->dir);
        mkdir(dir, 0500);
        assert_int_equal(store_open(dir, NULL, &st, &err), BR_ESTORE);
        err_clear(&err);
        chmod(dir, 0700);
    }
    assert_int_equal(store_open("", NULL, &st, &err), BR_ESTORE);
    err_clear(&err);
}

/* ---- integrations ---------------------------------------------------------------------------- */

static int64_t epoch_of(store_t *st)
{
    int64_t e = -1;
    assert_int_equal(store_catalog_epoch(st, &e, NULL), 0);
    return e;
}

static void test_store_publish(void **state)
{
    fx_t *f = *state;
    int version = 0;
    bool created = false;
    err_t err = {0};
    json_t *tr = json_pack("[s, s]", "t1", "t2");
    int64_t e0 = epoch_of(f->st);

    assert_int_equal(store_integration_publish(f->st, "orders/intake", "{\"v\":1}", tr, &version,
                                               &created, &err),
                     0);
    assert_int_equal(version, 1);
    assert_true(created);
    int64_t e1 = epoch_of(f->st);
    assert_true(e1 != e0);

    /* Identical: nothing stored. */
    assert_int_equal(store_integration_publish(f->st, "orders/intake", "{\"v\":1}", tr, &version,
                                               &created, NULL),
                     0);
    assert_int_equal(version, 1);
    assert_false(created);
    assert_int_equal(epoch_of(f->st), e1);

    /* A new version replaces the triggers. */
    json_t *tr2 = json_pack("[s]", "t3");
    assert_int_equal(store_integration_publish(f->st, "orders/intake", "{\"v\":2}", tr2, &version,
                                               &created, NULL),
                     0);
    assert_int_equal(version, 2);
    assert_true(created);
    int64_t e2 = epoch_of(f->st);
    assert_true(e2 != e1);
    assert_int_equal(store_integration_publish(f->st, "other", "{}", tr2, &version, &created, NULL),
                     0);
    assert_int_equal(version, 1);

    json_t *targets = NULL;
    assert_int_equal(store_trigger_targets(f->st, "t1", &targets, NULL), 0);
    assert_int_equal(json_array_size(targets), 0);
    json_decref(targets);
    assert_int_equal(store_trigger_targets(f->st, "t3", &targets, NULL), 0);
    json_t *want = json_pack("[s, s]", "orders/intake", "other");
    assert_json_equal(targets, want);
    json_decref(want);
    json_decref(targets);

    /* Get: latest, a given version, unknown name, unknown version. */
    integration_version_t *v = NULL;
    assert_int_equal(store_integration_get(f->st, "orders/intake", 0, &v, NULL), 0);
    assert_int_equal(v->version, 2);
    assert_string_equal(v->doc, "{\"v\":2}");
    assert_string_equal(v->name, "orders/intake");
    assert_false(v->archived);
    assert_true(v->created_at > 0);
    integration_version_free(v);
    assert_int_equal(store_integration_get(f->st, "orders/intake", 1, &v, NULL), 0);
    assert_string_equal(v->doc, "{\"v\":1}");
    integration_version_free(v);
    assert_int_equal(store_integration_get(f->st, "nope", 0, &v, &err), BR_ENOT_FOUND);
    assert_int_equal(err.code, BR_ENOT_FOUND);
    assert_int_equal(store_integration_get(f->st, "nope", 3, &v, NULL), BR_ENOT_FOUND);
    assert_int_equal(store_integration_get(f->st, "orders/intake", 3, &v, &err),
                     BR_EVERSION_NOT_FOUND);

    /* Versions. */
    json_t *vs = NULL;
    assert_int_equal(store_integration_versions(f->st, "orders/intake", &vs, NULL), 0);
    assert_int_equal(json_array_size(vs), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(vs, 0), "version")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(vs, 1), "version")), 2);
    assert_true(json_is_string(json_object_get(json_array_get(vs, 0), "created_at")));
    json_decref(vs);
    assert_int_equal(store_integration_versions(f->st, "nope", &vs, NULL), BR_ENOT_FOUND);

    /* Archive: gone from triggers and the default list, epoch moves. */
    assert_int_equal(store_integration_archive(f->st, "orders/intake", NULL), 0);
    assert_true(epoch_of(f->st) != e2);
    assert_int_equal(store_integration_archive(f->st, "nope", &err), BR_ENOT_FOUND);
    assert_int_equal(store_trigger_targets(f->st, "t3", &targets, NULL), 0);
    want = json_pack("[s]", "other");
    assert_json_equal(targets, want);
    json_decref(want);
    json_decref(targets);
    json_t *list = NULL;
    assert_int_equal(store_integration_list(f->st, false, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
                        "other");
    json_decref(list);
    assert_int_equal(store_integration_list(f->st, true, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 2);
    json_t *first = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(first, "name")), "orders/intake");
    assert_int_equal(json_integer_value(json_object_get(first, "latest_version")), 2);
    assert_true(json_is_true(json_object_get(first, "archived")));
    want = json_pack("[s]", "t3");
    assert_json_equal(json_object_get(first, "triggers"), want);
    json_decref(want);
    assert_true(json_is_string(json_object_get(first, "updated_at")));
    json_decref(list);
    assert_int_equal(store_integration_get(f->st, "orders/intake", 0, &v, NULL), 0);
    assert_true(v->archived);
    integration_version_free(v);

    /* Publishing again un-archives, even the same document. */
    int64_t e3 = epoch_of(f->st);
    assert_int_equal(store_integration_publish(f->st, "orders/intake", "{\"v\":2}", tr2, &version,
                                               &created, NULL),
                     0);
    assert_false(created);
    assert_int_equal(version, 2);
    assert_true(epoch_of(f->st) != e3);
    assert_int_equal(store_integration_get(f->st, "orders/intake", 0, &v, NULL), 0);
    assert_false(v->archived);
    integration_version_free(v);
    assert_int_equal(store_trigger_targets(f->st, "t3", &targets, NULL), 0);
    assert_int_equal(json_array_size(targets), 2);
    json_decref(targets);

    /* Bad triggers are refused before anything is stored. */
    json_t *bad = json_pack("[i]", 3);
    assert_int_equal(store_integration_publish(f->st, "x", "{}", bad, &version, &created, NULL),
                     BR_EINPUT_INVALID);
    json_decref(bad);
    json_decref(tr);
    json_decref(tr2);
    err_clear(&err);
}

/* ---- runs and steps -------------------------------------------------------------------------- */

/* run_rec_dump writes what dumping run_rec_to_json(R) writes, byte for byte. */
static void assert_dump_matches(const run_rec_t *r)
{
    json_t *j = run_rec_to_json(r);
    buf_t want = BUF_INIT, got = BUF_INIT;
    jsonx_dump_buf(&want, j);
    run_rec_dump(&got, r);
    assert_string_equal(got.data, want.data);
    assert_int_equal(got.len, want.len);
    json_decref(j);
    buf_deinit(&want);
    buf_deinit(&got);
}

static void test_store_run_roundtrip(void **state)
{
    fx_t *f = *state;
    run_rec_t *root = mk_run("orders/intake", RUN_SUCCEEDED, NULL, 1700000000123);
    put_and_flush(f->st, root);
    run_rec_t *got = get_run(f->st, root->id);
    assert_string_equal(got->parent_id, "");
    assert_string_equal(got->root_id, root->id);
    assert_null(got->task);
    assert_int_equal(got->parent_step, -1);
    assert_null(got->trigger_info);
    assert_null(got->output);
    assert_null(got->idempotency_key);
    run_rec_free(got);

    run_rec_t *r = mk_run("pricing/line", RUN_FAILED, root, 1700000000200);
    r->version = 7;
    r->trigger_info = json_pack("{s:s}", "token", "ops");
    r->depth = 3;
    r->parent_step = 4;
    r->sync_child = true;
    r->detached = true;
    r->retry_on_interrupt = false;
    json_decref(r->input);
    r->input = json_pack("{s:[i,f,s,n,b], s:s}", "payload", 1, 2.5, "x\"y", true, "path",
                         "/integrations/execute/pricing/line");
    r->output = json_pack("{s:s}", "total", "12.50");
    r->error = json_pack("{s:s, s:s}", "code", "timeout", "message", "too slow");
    r->scheduled_at = 1700000000300;
    r->started_at = 1700000000400;
    r->finished_at = 1700000000500;
    r->deadline_at = 1700000009999;
    r->attempt = 2;
    r->idempotency_key = xstrdup("key-1");
    put_and_flush(f->st, r);

    got = get_run(f->st, r->id);
    assert_string_equal(got->id, r->id);
    assert_string_equal(got->integration, "pricing/line");
    assert_int_equal(got->version, 7);
    assert_int_equal(got->status, RUN_FAILED);
    assert_string_equal(got->trigger, "call");
    assert_json_equal(got->trigger_info, r->trigger_info);
    assert_string_equal(got->parent_id, root->id);
    assert_string_equal(got->root_id, root->id);
    assert_int_equal(got->depth, 3);
    assert_string_equal(got->task, "call");
    assert_int_equal(got->parent_step, 4);
    assert_true(got->sync_child);
    assert_true(got->detached);
    assert_false(got->retry_on_interrupt);
    assert_json_equal(got->input, r->input);
    assert_json_equal(got->output, r->output);
    assert_json_equal(got->error, r->error);
    assert_int_equal(got->created_at, 1700000000200);
    assert_int_equal(got->scheduled_at, 1700000000300);
    assert_int_equal(got->started_at, 1700000000400);
    assert_int_equal(got->finished_at, 1700000000500);
    assert_int_equal(got->deadline_at, 1700000009999);
    assert_int_equal(got->attempt, 2);
    assert_string_equal(got->idempotency_key, "key-1");

    /* The API shape. */
    json_t *j = run_rec_to_json(got);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "parent_id")), root->id);
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2023-11-14T22:13:20.200Z");
    assert_int_equal(json_integer_value(json_object_get(j, "duration_ms")), 100);
    assert_non_null(json_object_get(j, "trigger_info"));
    assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 2);
    json_decref(j);
    assert_dump_matches(got);
    /* Text that needs escaping, non-ASCII text, numbers of every kind. */
    json_decref(got->output);
    got->output = json_pack("{s:s, s:f, s:I, s:b, s:n, s:[s]}", "q", "a \"b\"\n\\ \u00e9\u2603",
                            "r", 0.5, "i", (json_int_t)-42, "t", 1, "z", "arr", "\x01");
    got->trigger_info = got->trigger_info ? got->trigger_info : json_pack("{s:s}", "token", "t_1");
    assert_dump_matches(got);
    /* Input contexts: all members stored, a path without its fullpath, members in another
     * order, and none. */
    json_decref(got->input);
    got->input = json_pack("{s:{s:i}, s:{s:s}, s:s, s:{s:s}, s:s, s:s}", "payload", "n", 1,
                           "params", "a", "b", "path", "/x/y", "headers", "h", "v", "method",
                           "PUT", "fullpath", "/x/y?a=b");
    assert_dump_matches(got);
    json_decref(got->input);
    got->input = json_pack("{s:s, s:[i]}", "path", "/p\u00e9", "payload", 3);
    assert_dump_matches(got);
    json_decref(got->input);
    got->input = json_pack("{s:s}", "method", "GET");
    assert_dump_matches(got);
    json_decref(got->input);
    got->input = json_string("not an object");
    assert_dump_matches(got);
    run_rec_t *fresh = run_rec_new();
    uuid_v7(fresh->id);
    assert_dump_matches(fresh);
    j = run_rec_to_json(fresh);
    assert_true(json_is_null(json_object_get(j, "parent_id")));
    assert_true(json_is_null(json_object_get(j, "task")));
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_null(json_object_get(j, "trigger_info"));
    assert_null(json_object_get(j, "duration_ms"));
    assert_string_equal(json_string_value(json_object_get(j, "root_id")), fresh->id);
    json_decref(j);
    run_rec_free(fresh);

    assert_int_equal(store_run_get(f->st, "0190b0b0-0000-7000-8000-000000000000", &got, NULL),
                     BR_ENOT_FOUND);
    run_rec_free(got);
    run_rec_free(r);
    run_rec_free(root);
}

static void test_store_status_names(void **state)
{
    (void)state;
    for (int s = RUN_SCHEDULED; s <= RUN_CANCELLED; s++) {
        run_status_t back;
        assert_int_equal(run_status_parse(run_status_name((run_status_t)s), &back), 0);
        assert_int_equal(back, s);
    }
    run_status_t x;
    assert_int_equal(run_status_parse("bogus", &x), -1);
    assert_false(run_status_finished(RUN_RUNNING));
    assert_true(run_status_finished(RUN_CANCELLED));
}

static void test_store_run_coalesce(void **state)
{
    fx_t *f = *state;
    /* A wide window puts both writes in one batch. With coalescing only the later one is
     * written, so even an older attempt lands (a separate write would be refused by the
     * attempt guard). */
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, 300), 0);
    run_rec_t *r = mk_run("c", RUN_RUNNING, NULL, 1000);
    r->attempt = 2;
    store_run_put(f->st, r);
    r->attempt = 1;
    r->status = RUN_SUCCEEDED;
    uint64_t t = store_run_put(f->st, r);
    assert_int_equal(store_wait(f->st, t, NULL), 0);
    run_rec_t *got = get_run(f->st, r->id);
    assert_int_equal(got->status, RUN_SUCCEEDED);
    assert_int_equal(got->attempt, 1);
    run_rec_free(got);

    /* In separate batches the newer attempt wins. */
    r->attempt = 3;
    put_and_flush(f->st, r);
    r->attempt = 2;
    r->status = RUN_FAILED;
    put_and_flush(f->st, r);
    got = get_run(f->st, r->id);
    assert_int_equal(got->attempt, 3);
    assert_int_equal(got->status, RUN_SUCCEEDED);
    run_rec_free(got);
    run_rec_free(r);
}

/* A second put of a run (here after a claim) changes what changes over a run's life (status,
 * output, error, the times, the attempt) and keeps what a run is: its identity, fixed by its
 * first write. */
static void test_store_run_put_again(void **state)
{
    fx_t *f = *state;
    run_rec_t *root = mk_run("again/root", RUN_RUNNING, NULL, 100);
    run_rec_t *r = mk_run("again/child", RUN_QUEUED, root, 200);
    r->trigger_info = json_pack("{s:s}", "token", "ops");
    r->idempotency_key = xstrdup("k");
    r->parent_step = 3;
    put_and_flush(f->st, root); /* history holds a run's parent before the run */
    put_and_flush(f->st, r);
    run_rec_t **runs = NULL;
    int n = 0;
    assert_int_equal(store_queue_claim(f->st, "me", 300, 9000, 10, NULL, &runs, &n, NULL), 0);
    assert_int_equal(n, 1);
    run_recs_free(runs, n);

    run_rec_t *again = run_rec_copy(r);
    again->status = RUN_FAILED;
    again->output = json_pack("{s:i}", "y", 2);
    again->error = json_pack("{s:s}", "code", "boom");
    again->scheduled_at = 250;
    again->started_at = 300;
    again->finished_at = 400;
    again->deadline_at = 500;
    again->attempt = 2;
    /* Identity a later put cannot change (the engine never sends another). */
    free(again->integration);
    again->integration = xstrdup("again/other");
    again->version = 9;
    again->parent_step = 7;
    again->depth = 5;
    put_and_flush(f->st, again);

    run_rec_t *got = get_run(f->st, r->id);
    assert_int_equal(got->status, RUN_FAILED);
    assert_json_equal(got->output, again->output);
    assert_json_equal(got->error, again->error);
    assert_int_equal(got->scheduled_at, 250);
    assert_int_equal(got->started_at, 300);
    assert_int_equal(got->finished_at, 400);
    assert_int_equal(got->deadline_at, 500);
    assert_int_equal(got->attempt, 2);
    assert_string_equal(got->integration, "again/child");
    assert_int_equal(got->version, 1);
    assert_int_equal(got->parent_step, 3);
    assert_int_equal(got->depth, 1);
    assert_string_equal(got->parent_id, root->id);
    assert_string_equal(got->root_id, root->id);
    assert_json_equal(got->trigger_info, r->trigger_info);
    assert_json_equal(got->input, r->input);
    assert_string_equal(got->idempotency_key, "k");
    run_rec_free(got);
    /* Listing by integration and by parent step still finds it where it was first written. */
    run_filter_t flt = {.status = -1, .limit = 10, .integration = "again/child"};
    char *next = NULL;
    assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
    assert_int_equal(n, 1);
    run_recs_free(runs, n);
    json_t *kids = NULL;
    assert_int_equal(store_step_children(f->st, root->id, 3, 10, &kids, NULL), 0);
    assert_int_equal(json_array_size(kids), 1);
    json_decref(kids);
    run_rec_free(again);
    run_rec_free(r);
    run_rec_free(root);
}

static step_rec_t mk_step(const char *run_id, int attempt, int seq, const char *task)
{
    step_rec_t s = {0};
    snprintf(s.run_id, sizeof s.run_id, "%s", run_id);
    s.attempt = attempt;
    s.seq = seq;
    s.task_id = (char *)task;
    s.type = (char *)"set";
    s.status = (char *)"succeeded";
    s.task_attempt = 1;
    s.started_at = 1700000000000 + seq;
    s.duration_ms = 5;
    return s;
}

static void test_store_steps_latest_attempt(void **state)
{
    fx_t *f = *state;
    run_rec_t *r = mk_run("s", RUN_RUNNING, NULL, 1000);
    const char *tasks[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        step_rec_t s = mk_step(r->id, 1, i, tasks[i]);
        store_step_put(f->st, &s);
    }
    for (int i = 0; i < 2; i++) {
        step_rec_t s = mk_step(r->id, 2, i, tasks[i]);
        s.result = json_pack("{s:i}", "n", i);
        if (i == 1) {
            s.status = (char *)"failed";
            s.task_attempt = 3;
            s.error = json_pack("{s:s}", "code", "network");
        }
        store_step_put(f->st, &s);
        json_decref(s.result);
        json_decref(s.error);
    }
    assert_int_equal(store_flush(f->st, NULL), 0);

    /* No run record yet: the highest attempt on record. */
    step_rec_t **steps = NULL;
    int n = 0;
    assert_int_equal(store_run_steps(f->st, r->id, &steps, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(steps[0]->attempt, 2);
    assert_string_equal(steps[0]->task_id, "a");
    assert_string_equal(steps[1]->task_id, "b");
    assert_string_equal(steps[1]->status, "failed");
    assert_int_equal(steps[1]->task_attempt, 3);
    assert_int_equal(json_integer_value(json_object_get(steps[1]->result, "n")), 1);
    assert_string_equal(json_string_value(json_object_get(steps[1]->error, "code")), "network");
    assert_null(steps[0]->error);
    json_t *kids = json_pack("[s]", "0190b0b0-0000-7000-8000-000000000001");
    json_t *j = step_rec_to_json(steps[1], kids);
    assert_string_equal(json_string_value(json_object_get(j, "task")), "b");
    assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "duration_ms")), 5);
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "2023-11-14T22:13:20.001Z");
    assert_int_equal(json_array_size(json_object_get(j, "child_run_ids")), 1);
    json_decref(j);
    json_decref(kids);
    kids = json_array();
    j = step_rec_to_json(steps[0], kids);
    assert_null(json_object_get(j, "child_run_ids"));
    json_decref(j);
    json_decref(kids);
    for (int i = 0; i < n; i++)
        step_rec_free(steps[i]);
    free(steps);

    /* With the run at attempt 1, its own attempt's steps. */
    r->attempt = 1;
    put_and_flush(f->st, r);
    assert_int_equal(store_run_steps(f->st, r->id, &steps, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(steps[2]->task_id, "c");
    for (int i = 0; i < n; i++)
        step_rec_free(steps[i]);
    free(steps);

    assert_int_equal(store_run_steps(f->st, "none", &steps, &n, NULL), 0);
    assert_int_equal(n, 0);
    free(steps);
    run_rec_free(r);
}

/* Steps held in the run's own row (store_run_hold_step) read back as steps written alone do,
 * merged with those in seq order; a task id that needs escaping survives; a held step of
 * another attempt is not the run's; a copy of the record carries what it holds. */
static void test_store_steps_held_in_the_run_row(void **state)
{
    fx_t *f = *state;
    run_rec_t *r = mk_run("s", RUN_RUNNING, NULL, 1000);
    step_rec_t s0 = mk_step(r->id, 1, 0, "a \"quoted\"\n\u00e9");
    s0.result = json_pack("{s:[i,s]}", "v", 7, "x");
    store_run_hold_step(r, &s0);
    step_rec_t s1 = mk_step(r->id, 1, 1, "b");
    s1.status = (char *)"failed";
    s1.error = json_pack("{s:s}", "code", "boom");
    s1.result = json_null();
    store_run_hold_step(r, &s1);
    json_decref(s0.result);
    json_decref(s1.error);
    json_decref(s1.result);
    put_and_flush(f->st, r);
    step_rec_t s2 = mk_step(r->id, 1, 2, "c"); /* written alone, after the run let go */
    store_step_put(f->st, &s2);
    assert_int_equal(store_flush(f->st, NULL), 0);

    step_rec_t **steps = NULL;
    int n = 0;
    assert_int_equal(store_run_steps(f->st, r->id, &steps, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(steps[0]->task_id, "a \"quoted\"\n\u00e9");
    assert_string_equal(steps[0]->run_id, r->id);
    assert_int_equal(steps[0]->seq, 0);
    assert_int_equal(steps[0]->attempt, 1);
    assert_string_equal(steps[0]->type, "set");
    assert_int_equal(steps[0]->started_at, 1700000000000);
    assert_int_equal(steps[0]->duration_ms, 5);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(steps[0]->result, "v"), 0)),
                     7);
    assert_null(steps[0]->error);
    assert_string_equal(steps[1]->status, "failed");
    assert_true(json_is_null(steps[1]->result)); /* null, not absent */
    assert_string_equal(json_string_value(json_object_get(steps[1]->error, "code")), "boom");
    assert_string_equal(steps[2]->task_id, "c");
    for (int i = 0; i < n; i++)
        step_rec_free(steps[i]);
    free(steps);

    /* A copy holds the same text; the next attempt's record holds its own steps only. */
    run_rec_t *c = run_rec_copy(r);
    assert_int_equal(c->steps.len, r->steps.len);
    assert_memory_equal(c->steps.data, r->steps.data, r->steps.len);
    run_rec_free(c);
    run_rec_t *again = mk_run("s", RUN_RUNNING, NULL, 1000);
    memcpy(again->id, r->id, UUID_STR_LEN);
    again->attempt = 2;
    step_rec_t t0 = mk_step(r->id, 2, 0, "z");
    store_run_hold_step(again, &t0);
    put_and_flush(f->st, again);
    assert_int_equal(store_run_steps(f->st, r->id, &steps, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(steps[0]->task_id, "z");
    assert_int_equal(steps[0]->attempt, 2);
    step_rec_free(steps[0]);
    free(steps);
    run_rec_free(again);
    run_rec_free(r);
}

/* A queued run put with store_run_put_kept is claimed with its very input and trigger info,
 * not a parse of them; a run the cache no longer holds (pushed out by 1,024 newer ones, or too
 * large to keep) is claimed with its values parsed back, equal to what was put. */
static void test_store_claim_takes_kept_values(void **state)
{
    fx_t *f = *state;
    run_rec_t *kept = mk_run("k", RUN_QUEUED, NULL, 100);
    kept->trigger_info = json_pack("{s:s}", "token", "t_1");
    store_run_put_kept(f->st, kept);
    run_rec_t *big = mk_run("k", RUN_QUEUED, NULL, 101);
    char text[4096];
    memset(text, 'b', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    json_object_set_new(json_object_get(big->input, "payload"), "big", json_string(text));
    store_run_put_kept(f->st, big);
    assert_int_equal(store_flush(f->st, NULL), 0);

    run_rec_t **runs = NULL;
    int n = 0;
    assert_int_equal(store_queue_claim(f->st, "me", 200, 9000, 10, NULL, &runs, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(runs[0]->id, kept->id);
    assert_ptr_equal(runs[0]->input, kept->input); /* taken, not parsed */
    assert_ptr_equal(runs[0]->trigger_info, kept->trigger_info);
    assert_string_equal(runs[1]->id, big->id);
    assert_ptr_not_equal(runs[1]->input, big->input); /* too large to keep: parsed */
    assert_json_equal(runs[1]->input, big->input);
    run_recs_free(runs, n);

    /* 1,025 kept runs later, the first has left the cache; the newest is claimed by id. */
    run_rec_t *first = NULL, *last = NULL;
    for (int i = 0; i < 1025; i++) {
        run_rec_t *r = mk_run("k", RUN_QUEUED, NULL, 300 + i);
        store_run_put_kept(f->st, r);
        if (i == 0)
            first = r;
        else if (i == 1024)
            last = r;
        else
            run_rec_free(r);
    }
    assert_int_equal(store_flush(f->st, NULL), 0);
    run_rec_t *got = NULL;
    assert_int_equal(store_queue_claim_id(f->st, first->id, "me", 5000, 9000, &got, NULL), 0);
    assert_ptr_not_equal(got->input, first->input);
    assert_json_equal(got->input, first->input);
    run_rec_free(got);
    assert_int_equal(store_queue_claim_id(f->st, last->id, "me", 5000, 9000, &got, NULL), 0);
    assert_ptr_equal(got->input, last->input);
    run_rec_free(got);
    /* A value taken once is not taken again: the run, released and claimed anew, parses. */
    last->status = RUN_QUEUED;
    last->attempt = 2;
    put_and_flush(f->st, last);
    assert_int_equal(store_queue_claim_id(f->st, last->id, "me", 5000, 9000, &got, NULL), 0);
    assert_ptr_not_equal(got->input, last->input);
    assert_json_equal(got->input, last->input);
    run_rec_free(got);
    run_rec_free(first);
    run_rec_free(last);
    run_rec_free(big);
    run_rec_free(kept);
}

/* The claim cache on its own, over many laps of its ring: every take finds the values put
 * for that id and only once, a run pushed out by 1,024 newer ones is gone, and takes in
 * between (removed slots) never hide a live entry. */
static void test_claim_cache_laps(void **state)
{
    (void)state;
    enum { N = 5000, RUNS = 1024 };
    claim_cache_t *c = claim_cache_new();
    static char ids[N][UUID_STR_LEN];
    json_t *vals[N];
    for (int i = 0; i < N; i++) {
        uuid_v7(ids[i]);
        vals[i] = json_pack("{s:i}", "i", i);
        claim_cache_put(c, ids[i], vals[i], NULL);
        if (i % 3 == 0) { /* take every third at once: removed slots pile up between laps */
            json_t *in = NULL, *ti = NULL;
            assert_true(claim_cache_take(c, ids[i], &in, &ti));
            assert_ptr_equal(in, vals[i]);
            assert_null(ti);
            json_decref(in);
            assert_false(claim_cache_take(c, ids[i], &in, &ti));
        }
    }
    for (int i = 0; i < N; i++) {
        json_t *in = NULL, *ti = NULL;
        bool held = i % 3 != 0 && i >= N - RUNS;
        assert_int_equal(claim_cache_take(c, ids[i], &in, &ti), held);
        if (held) {
            assert_ptr_equal(in, vals[i]);
            json_decref(in);
        }
        json_decref(vals[i]);
    }
    claim_cache_free(c);
}

/* The writer's WAL writes are gathered (sqlite_gather_vfs.c) but reach the file before the sync
 * that commits them: a process that ends right after its commits, without closing the store,
 * leaves every committed run readable; batches far larger than one gathered write too. */
static void test_store_wal_commits_survive_exit(void **state)
{
    fx_t *f = *state;
    store_close(f->st);
    f->st = NULL;
    enum { RUNS = 3000 };
    char ids[RUNS][UUID_STR_LEN];
    char big[2048];
    memset(big, 'w', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < RUNS; i++)
        uuid_v7(ids[i]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_t *st = NULL;
        if (tmp_store_open(f->dir, NULL, &st) != 0)
            _exit(2);
        for (int i = 0; i < RUNS; i++) {
            run_rec_t *r = mk_run("wal/a", RUN_SUCCEEDED, NULL, 1000 + i);
            memcpy(r->id, ids[i], UUID_STR_LEN);
            memcpy(r->root_id, ids[i], UUID_STR_LEN);
            r->output = json_pack("{s:i, s:s}", "i", i, "pad", big);
            store_run_put(st, r);
            run_rec_free(r);
            if (i == 0 || i == RUNS / 2) /* one small commit, then two large ones */
                if (store_flush(st, NULL) != 0)
                    _exit(3);
        }
        _exit(store_flush(st, NULL) == 0 ? 0 : 4); /* no store_close: nothing else is written */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(open_store(f, 0), 0);
    for (int i = 0; i < RUNS; i += 7) {
        run_rec_t *got = get_run(f->st, ids[i]);
        assert_int_equal(json_integer_value(json_object_get(got->output, "i")), i);
        assert_string_equal(json_string_value(json_object_get(got->output, "pad")), big);
        run_rec_free(got);
    }
    run_rec_t *last = get_run(f->st, ids[RUNS - 1]);
    assert_int_equal(json_integer_value(json_object_get(last->output, "i")), RUNS - 1);
    run_rec_free(last);
}

static long file_size(const char *dir, const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* The WAL is copied back into the database as it grows and starts over (the writer's VFS
 * gathers the checkpoint's page writes too, and must not get in the way): 20 MiB of commits
 * leave a WAL far smaller than they are, the database file holds them, and readers (other
 * connections) find every round's runs, checkpointed or not. */
static void test_store_wal_checkpointed(void **state)
{
    fx_t *f = *state;
    enum { ROUNDS = 50 };
    char big[4096];
    memset(big, 'c', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char first[ROUNDS][UUID_STR_LEN];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < 100; i++) {
            run_rec_t *r = mk_run("ckpt/a", RUN_SUCCEEDED, NULL, 1000 + round);
            r->output = json_pack("{s:i, s:i, s:s}", "round", round, "i", i, "pad", big);
            store_run_put(f->st, r);
            if (i == 0)
                memcpy(first[round], r->id, UUID_STR_LEN);
            run_rec_free(r);
        }
        assert_int_equal(store_flush(f->st, NULL), 0);
        run_rec_t *got = get_run(f->st, first[round / 2]); /* one long since checkpointed */
        assert_int_equal(json_integer_value(json_object_get(got->output, "round")), round / 2);
        run_rec_free(got);
    }
    long wal = file_size(f->dir, "braid.db-wal"), db = file_size(f->dir, "braid.db");
    assert_true(wal >= 0 && wal < 10L * 1024 * 1024);
    assert_true(db > 10L * 1024 * 1024);
    for (int round = 0; round < ROUNDS; round++) {
        run_rec_t *got = get_run(f->st, first[round]);
        assert_int_equal(json_integer_value(json_object_get(got->output, "round")), round);
        assert_string_equal(json_string_value(json_object_get(got->output, "pad")), big);
        run_rec_free(got);
    }
}

/* A caller that needs its write durable while nobody commits commits it itself, at once,
 * however long the group-commit window; with many writes pending it leaves them to the
 * writer thread. */
static void test_store_try_commit_here(void **state)
{
    fx_t *f = *state;
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, 10000), 0); /* the writer thread would wait 10 s */
    run_rec_t *r = mk_run("here/one", RUN_SUCCEEDED, NULL, 1000);
    uint64_t commits = store_commit_count(f->st);
    int64_t t0 = clock_mono_ms();
    uint64_t ticket = store_run_put(f->st, r);
    int rc = -1;
    assert_true(store_try_commit(f->st, ticket, &rc, NULL));
    assert_int_equal(rc, 0);
    assert_true(clock_mono_ms() - t0 < 5000);
    assert_int_equal(store_commit_count(f->st), commits + 1);
    run_rec_t *got = get_run(f->st, r->id);
    assert_string_equal(got->integration, "here/one");
    run_rec_free(got);
    /* Settled already: true again, nothing more committed. */
    assert_true(store_try_commit(f->st, ticket, &rc, NULL));
    assert_int_equal(store_commit_count(f->st), commits + 1);
    run_rec_free(r);

    /* 100 writes pending: not this caller's to commit; a wait still gets them committed. */
    for (int i = 0; i < 100; i++) {
        run_rec_t *m = mk_run("here/many", RUN_SUCCEEDED, NULL, 2000 + i);
        ticket = store_run_put(f->st, m);
        run_rec_free(m);
    }
    assert_false(store_try_commit(f->st, ticket, &rc, NULL));
    assert_int_equal(store_wait(f->st, ticket, NULL), 0);
    assert_true(store_try_commit(f->st, ticket, &rc, NULL));
    assert_int_equal(rc, 0);
}

/* Many puts in one batch: the writer hands them to the backend together, which writes them
 * in statements of 64, 32, ... rows; every record must land whole whatever its place. */
static void test_store_put_batches(void **state)
{
    fx_t *f = *state;
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, 200), 0);
    static const int sizes[] = {1, 2, 3, 63, 64, 65, 127, 200};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k];
        run_rec_t **runs = xcalloc((size_t)n, sizeof *runs);
        uint64_t last = 0;
        for (int i = 0; i < n; i++) {
            runs[i] = mk_run(i % 3 ? "batch/a" : "batch/b", RUN_SUCCEEDED, NULL, 1000 + i);
            runs[i]->version = i + 1;
            runs[i]->depth = i % 5;
            runs[i]->finished_at = 2000 + i;
            runs[i]->output = json_pack("{s:i, s:s}", "i", i, "s", i % 2 ? "odd" : "\"even\"\n");
            if (i % 4 == 0)
                runs[i]->error = json_pack("{s:s}", "code", "x");
            if (i % 7 == 0)
                runs[i]->idempotency_key = xstrdup("k");
            store_run_put(f->st, runs[i]);
            step_rec_t s = mk_step(runs[i]->id, 1, 0, "t");
            s.result = json_integer(i);
            s.duration_ms = i;
            last = store_step_put(f->st, &s);
            json_decref(s.result);
        }
        assert_int_equal(store_wait(f->st, last, NULL), 0);
        for (int i = 0; i < n; i++) {
            run_rec_t *got = get_run(f->st, runs[i]->id);
            assert_string_equal(got->integration, runs[i]->integration);
            assert_int_equal(got->version, i + 1);
            assert_int_equal(got->depth, i % 5);
            assert_int_equal(got->created_at, 1000 + i);
            assert_int_equal(got->finished_at, 2000 + i);
            assert_json_equal(got->input, runs[i]->input);
            assert_json_equal(got->output, runs[i]->output);
            if (runs[i]->error)
                assert_json_equal(got->error, runs[i]->error);
            else
                assert_null(got->error);
            if (runs[i]->idempotency_key)
                assert_string_equal(got->idempotency_key, "k");
            else
                assert_null(got->idempotency_key);
            run_rec_free(got);
            step_rec_t **steps = NULL;
            int ns = 0;
            assert_int_equal(store_run_steps(f->st, runs[i]->id, &steps, &ns, NULL), 0);
            assert_int_equal(ns, 1);
            assert_int_equal(json_integer_value(steps[0]->result), i);
            assert_int_equal(steps[0]->duration_ms, i);
            assert_null(steps[0]->error);
            step_rec_free(steps[0]);
            free(steps);
            run_rec_free(runs[i]);
        }
        free(runs);
    }

    /* Batch after batch the copies of records reuse the same memory, and text at an address
     * already bound is not bound again: what is written must still be each batch's own. */
    for (int round = 0; round < 3; round++) {
        char name[16], out[16];
        snprintf(name, sizeof name, "round/%d", round);
        run_rec_t *rs[64];
        uint64_t t = 0;
        for (int i = 0; i < 64; i++) {
            rs[i] = mk_run(name, RUN_SUCCEEDED, NULL, 1000);
            snprintf(out, sizeof out, "r%d-%02d", round, i);
            rs[i]->output = json_string(out);
            t = store_run_put(f->st, rs[i]);
        }
        assert_int_equal(store_wait(f->st, t, NULL), 0);
        for (int i = 0; i < 64; i++) {
            run_rec_t *got = get_run(f->st, rs[i]->id);
            assert_string_equal(got->integration, name);
            assert_json_equal(got->output, rs[i]->output);
            run_rec_free(got);
            run_rec_free(rs[i]);
        }
    }

    /* A run put before and after an op in one batch: both writes land, in order. */
    run_rec_t *r = mk_run("batch/op", RUN_RUNNING, NULL, 1000);
    store_run_put(f->st, r);
    assert_int_equal(store_lease_renew(f->st, "nobody", 1, NULL), 0);
    r->status = RUN_SUCCEEDED;
    r->finished_at = 3000;
    assert_int_equal(store_wait(f->st, store_run_put(f->st, r), NULL), 0);
    run_rec_t *got = get_run(f->st, r->id);
    assert_int_equal(got->status, RUN_SUCCEEDED);
    assert_int_equal(got->finished_at, 3000);
    run_rec_free(got);
    run_rec_free(r);
}

/* jansson allocations alive, counted through its allocation hooks. */
static atomic_long json_live;

static void *counting_malloc(size_t n)
{
    atomic_fetch_add(&json_live, 1);
    return malloc(n);
}

static void counting_free(void *p)
{
    if (p)
        atomic_fetch_sub(&json_live, 1);
    free(p);
}

/* The writer drops its references to a batch's JSON values once they are written as text,
 * handing the values it held last to putting threads (or, when none comes, freeing them
 * itself once idle): nothing is kept. */
static void test_store_json_released(void **state)
{
    fx_t *f = *state;
    json_set_alloc_funcs(counting_malloc, counting_free);
    long before = atomic_load(&json_live);
    run_rec_t *shared = mk_run("rel", RUN_SUCCEEDED, NULL, 1000);
    for (int i = 0; i < 500; i++) {
        run_rec_t *r = mk_run("rel", RUN_SUCCEEDED, NULL, 1000 + i);
        r->output = json_pack("{s:[i, i], s:{s:s}}", "a", i, i, "b", "c", "d");
        store_run_put(f->st, r);
        step_rec_t s = mk_step(r->id, 1, 0, "t");
        s.result = i % 2 ? r->output : shared->input; /* shared with the run, or with us */
        store_step_put(f->st, &s);
        run_rec_free(r);
    }
    assert_int_equal(store_flush(f->st, NULL), 0);
    /* The shared value is ours again alone. */
    assert_int_equal(shared->input->refcount, 1);
    for (int i = 0; i < 100 && atomic_load(&json_live) > before + 3; i++)
        usleep(10 * 1000);
    run_rec_free(shared);
    assert_int_equal(atomic_load(&json_live), before);
    json_set_alloc_funcs(malloc, free);
}

static void test_store_step_children(void **state)
{
    fx_t *f = *state;
    run_rec_t *p = mk_run("p", RUN_RUNNING, NULL, 1000);
    store_run_put(f->st, p);
    char ids[5][UUID_STR_LEN];
    for (int i = 0; i < 5; i++) {
        run_rec_t *c = mk_run("c", RUN_SUCCEEDED, p, 1000 + i);
        c->parent_step = i < 4 ? 2 : 3;
        memcpy(ids[i], c->id, UUID_STR_LEN);
        store_run_put(f->st, c);
        run_rec_free(c);
    }
    assert_int_equal(store_flush(f->st, NULL), 0);
    json_t *kids = NULL;
    assert_int_equal(store_step_children(f->st, p->id, 2, 10, &kids, NULL), 0);
    assert_int_equal(json_array_size(kids), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(json_string_value(json_array_get(kids, (size_t)i)), ids[i]);
    json_decref(kids);
    assert_int_equal(store_step_children(f->st, p->id, 2, 3, &kids, NULL), 0);
    assert_int_equal(json_array_size(kids), 3);
    json_decref(kids);
    assert_int_equal(store_step_children(f->st, p->id, 3, 10, &kids, NULL), 0);
    assert_int_equal(json_array_size(kids), 1);
    assert_string_equal(json_string_value(json_array_get(kids, 0)), ids[4]);
    json_decref(kids);
    assert_int_equal(store_step_children(f->st, p->id, 9, 10, &kids, NULL), 0);
    assert_int_equal(json_array_size(kids), 0);
    json_decref(kids);
    run_rec_free(p);
}

static void test_store_list_filters_and_cursor(void **state)
{
    fx_t *f = *state;
    char ids[25][UUID_STR_LEN];
    run_rec_t *root = NULL;
    int64_t base = clock_now_ms();
    for (int i = 0; i < 25; i++) {
        run_rec_t *r;
        if (i == 0 || !root) {
            r = mk_run("list/a", RUN_SUCCEEDED, NULL, base);
            root = run_rec_copy(r);
        } else {
            r = mk_run(i % 2 ? "list/a" : "list/b", i % 5 == 0 ? RUN_FAILED : RUN_SUCCEEDED,
                       i < 10 ? root : NULL, base + i);
        }
        memcpy(ids[i], r->id, UUID_STR_LEN);
        store_run_put(f->st, r);
        run_rec_free(r);
    }
    assert_int_equal(store_flush(f->st, NULL), 0);

    /* All 25 in pages of 10, newest first. */
    run_filter_t flt = {.status = -1, .limit = 10};
    char *cursor = NULL;
    int seen = 0, pages = 0;
    do {
        run_rec_t **runs = NULL;
        int n = 0;
        char *next = NULL;
        flt.cursor = cursor;
        assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
        for (int i = 0; i < n; i++)
            assert_string_equal(runs[i]->id, ids[24 - seen - i]);
        seen += n;
        pages++;
        run_recs_free(runs, n);
        free(cursor);
        cursor = next;
    } while (cursor);
    assert_int_equal(seen, 25);
    assert_int_equal(pages, 3);

    /* An exact fit has no next page. */
    flt.cursor = NULL;
    flt.limit = 25;
    run_rec_t **runs = NULL;
    int n = 0;
    char *next = (char *)"unset";
    assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
    assert_int_equal(n, 25);
    assert_null(next);
    run_recs_free(runs, n);

    /* Filters. */
    flt.limit = 100;
    flt.integration = "list/b";
    assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
    assert_int_equal(n, 12); /* even i from 2 to 24 */
    for (int i = 0; i < n; i++)
        assert_string_equal(runs[i]->integration, "list/b");
    run_recs_free(runs, n);
    flt.status = RUN_FAILED;
    assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
    assert_int_equal(n, 2); /* 10, 20 */
    run_recs_free(runs, n);
    flt.integration = NULL;
    flt.status = -1;
    flt.root_id = root->id;
    assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
    assert_int_equal(n, 10);
    run_recs_free(runs, n);
    flt.root_id = NULL;
    flt.parent_id = root->id;
    assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
    assert_int_equal(n, 9);
    run_recs_free(runs, n);
    flt.parent_id = NULL;
    flt.since = base + 20;
    assert_int_equal(store_runs_list(f->st, &flt, &runs, &n, &next, NULL), 0);
    assert_int_equal(n, 5);
    assert_string_equal(runs[4]->id, ids[20]);
    run_recs_free(runs, n);

    /* Children and root counts. */
    assert_int_equal(store_run_children(f->st, root->id, &runs, &n, NULL), 0);
    assert_int_equal(n, 9);
    for (int i = 0; i < n; i++)
        assert_string_equal(runs[i]->id, ids[i + 1]);
    run_recs_free(runs, n);
    int64_t count = 0;
    assert_int_equal(store_root_count(f->st, root->id, &count, NULL), 0);
    assert_int_equal(count, 10);
    assert_int_equal(store_root_count(f->st, ids[24], &count, NULL), 0);
    assert_int_equal(count, 1);
    run_rec_free(root);
}

/* ---- the queue ------------------------------------------------------------------------------- */

static run_rec_t *put_waiting(store_t *st, const char *integration, run_status_t status,
                              int64_t due)
{
    run_rec_t *r = mk_run(integration, status, NULL, due);
    store_run_put(st, r);
    return r;
}

static void test_store_claim(void **state)
{
    fx_t *f = *state;
    run_rec_t *q1 = put_waiting(f->st, "q/a", RUN_QUEUED, 1000);
    run_rec_t *s1 = put_waiting(f->st, "q/a", RUN_SCHEDULED, 500);
    run_rec_t *s2 = put_waiting(f->st, "q/a", RUN_SCHEDULED, 5000); /* not due at 2000 */
    run_rec_t *x1 = put_waiting(f->st, "q/excluded", RUN_QUEUED, 100);
    run_rec_t *done = put_waiting(f->st, "q/a", RUN_SUCCEEDED, 10);
    assert_int_equal(store_flush(f->st, NULL), 0); /* reads see committed writes only */

    int64_t when = 0;
    assert_int_equal(store_queue_next_due(f->st, &when, NULL), 0);
    assert_int_equal(when, 100);
    json_t *counts = NULL;
    assert_int_equal(store_queue_counts(f->st, &counts, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(counts, "queued")), 2);
    assert_int_equal(json_integer_value(json_object_get(counts, "scheduled")), 2);
    assert_int_equal(json_integer_value(json_object_get(counts, "running")), 0);
    json_decref(counts);

    json_t *exclude = json_pack("[s]", "q/excluded");
    run_rec_t **runs = NULL;
    int n = 0;
    assert_int_equal(store_queue_claim(f->st, "me", 2000, 32000, 10, exclude, &runs, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(runs[0]->id, s1->id); /* oldest first */
    assert_string_equal(runs[1]->id, q1->id);
    assert_int_equal(runs[0]->status, RUN_RUNNING);
    assert_int_equal(runs[0]->started_at, 2000);
    run_recs_free(runs, n);

    /* Claimed once; the scheduled one comes due later; the excluded one when not excluded. */
    assert_int_equal(store_queue_claim(f->st, "me", 2000, 32000, 10, exclude, &runs, &n, NULL), 0);
    assert_int_equal(n, 0);
    free(runs);
    assert_int_equal(store_queue_claim(f->st, "me", 6000, 36000, 1, NULL, &runs, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(runs[0]->id, x1->id);
    run_recs_free(runs, n);
    assert_int_equal(store_queue_claim(f->st, "me", 6000, 36000, 10, NULL, &runs, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(runs[0]->id, s2->id);
    run_recs_free(runs, n);
    assert_int_equal(store_queue_next_due(f->st, &when, NULL), 0);
    assert_int_equal(when, 0);
    assert_int_equal(store_queue_counts(f->st, &counts, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(counts, "running")), 4);
    json_decref(counts);

    /* The engine's later put keeps the claim's owner: a lease-mode recovery still sees it. */
    run_rec_t *got = get_run(f->st, q1->id);
    got->output = json_pack("{}");
    put_and_flush(f->st, got);
    run_rec_free(got);
    int requeued = 0, failed = 0;
    assert_int_equal(store_recover(f->st, 40000, false, NULL, &requeued, &failed, NULL), 0);
    assert_int_equal(requeued, 4);
    assert_int_equal(failed, 0);

    json_decref(exclude);
    run_rec_free(q1);
    run_rec_free(s1);
    run_rec_free(s2);
    run_rec_free(x1);
    run_rec_free(done);
}

/* A batch claim takes the MAX oldest due runs across queued and scheduled ones, ties in
 * scheduled_at in the order the runs were first written; an empty exclude list is no list; a
 * run given back to the queue (as the scheduler does with runs it claimed ahead and did not
 * start) is claimed again, oldest first still, on the same attempt. */
static void test_store_claim_batch_and_release(void **state)
{
    fx_t *f = *state;
    run_rec_t *w[6];
    w[0] = put_waiting(f->st, "q/b", RUN_QUEUED, 300);
    w[1] = put_waiting(f->st, "q/b", RUN_SCHEDULED, 100);
    w[2] = put_waiting(f->st, "q/b", RUN_QUEUED, 300); /* a tie with w[0], written later */
    w[3] = put_waiting(f->st, "q/b", RUN_SCHEDULED, 200);
    w[4] = put_waiting(f->st, "q/b", RUN_QUEUED, 50);
    w[5] = put_waiting(f->st, "q/b", RUN_SCHEDULED, 9000); /* not due */
    assert_int_equal(store_flush(f->st, NULL), 0);

    json_t *none = json_array();
    run_rec_t **runs = NULL;
    int n = 0;
    assert_int_equal(store_queue_claim(f->st, "me", 1000, 9000, 4, none, &runs, &n, NULL), 0);
    assert_int_equal(n, 4);
    assert_string_equal(runs[0]->id, w[4]->id);
    assert_string_equal(runs[1]->id, w[1]->id);
    assert_string_equal(runs[2]->id, w[3]->id);
    assert_string_equal(runs[3]->id, w[0]->id);
    for (int i = 0; i < n; i++) {
        assert_int_equal(runs[i]->status, RUN_RUNNING);
        assert_int_equal(runs[i]->attempt, w[0]->attempt);
    }

    /* Give back the two oldest, not started. */
    for (int i = 0; i < 2; i++) {
        runs[i]->status = RUN_QUEUED;
        runs[i]->started_at = 0;
        store_run_put(f->st, runs[i]);
    }
    run_recs_free(runs, n);
    assert_int_equal(store_flush(f->st, NULL), 0);
    run_rec_t *back = get_run(f->st, w[4]->id);
    assert_int_equal(back->status, RUN_QUEUED);
    assert_int_equal(back->started_at, 0);
    run_rec_free(back);

    assert_int_equal(store_queue_claim(f->st, "me", 1000, 9000, 10, NULL, &runs, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(runs[0]->id, w[4]->id);
    assert_string_equal(runs[1]->id, w[1]->id); /* scheduled at 100, queued again: still due */
    assert_string_equal(runs[2]->id, w[2]->id);
    assert_int_equal(runs[0]->attempt, w[4]->attempt);
    assert_int_equal(runs[0]->started_at, 1000);
    run_recs_free(runs, n);

    assert_int_equal(store_queue_claim(f->st, "me", 1000, 9000, 10, none, &runs, &n, NULL), 0);
    assert_int_equal(n, 0);
    free(runs);
    json_decref(none);
    for (int i = 0; i < 6; i++)
        run_rec_free(w[i]);
}

typedef struct claimer {
    store_t *st;
    const char *owner;
    json_t *ids;
} claimer_t;

static void *claim_loop(void *arg)
{
    claimer_t *c = arg;
    for (;;) {
        run_rec_t **runs = NULL;
        int n = 0;
        if (store_queue_claim(c->st, c->owner, 10000, 20000, 7, NULL, &runs, &n, NULL) != 0)
            break;
        for (int i = 0; i < n; i++)
            json_array_append_new(c->ids, json_string(runs[i]->id));
        run_recs_free(runs, n);
        if (n == 0)
            break;
    }
    return NULL;
}

static void test_store_claim_two_threads(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 200; i++)
        run_rec_free(put_waiting(f->st, "q/t", i % 2 ? RUN_QUEUED : RUN_SCHEDULED, 100 + i));
    claimer_t a = {f->st, "A", json_array()}, b = {f->st, "B", json_array()};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, claim_loop, &a);
    pthread_create(&tb, NULL, claim_loop, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(json_array_size(a.ids) + json_array_size(b.ids), 200);
    json_t *all = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(a.ids, i, v) json_object_set(all, json_string_value(v), json_true());
    json_array_foreach(b.ids, i, v) json_object_set(all, json_string_value(v), json_true());
    assert_int_equal(json_object_size(all), 200);
    json_decref(all);
    json_decref(a.ids);
    json_decref(b.ids);
}

static void test_store_lease_renew(void **state)
{
    fx_t *f = *state;
    run_rec_free(put_waiting(f->st, "l", RUN_QUEUED, 100));
    run_rec_free(put_waiting(f->st, "l", RUN_QUEUED, 101));
    run_rec_t **runs = NULL;
    int n = 0;
    assert_int_equal(store_queue_claim(f->st, "A", 500, 1000, 1, NULL, &runs, &n, NULL), 0);
    run_recs_free(runs, n);
    assert_int_equal(store_queue_claim(f->st, "B", 500, 1000, 1, NULL, &runs, &n, NULL), 0);
    run_recs_free(runs, n);
    assert_int_equal(store_lease_renew(f->st, "A", 5000, NULL), 0);
    int requeued = 0, failed = 0;
    assert_int_equal(store_recover(f->st, 2000, false, NULL, &requeued, &failed, NULL), 0);
    assert_int_equal(requeued, 1); /* B's lease ran out; A's was renewed */
    assert_int_equal(failed, 0);
    assert_int_equal(store_recover(f->st, 6000, false, NULL, &requeued, &failed, NULL), 0);
    assert_int_equal(requeued, 1);
}

static void test_store_recover(void **state)
{
    fx_t *f = *state;
    /* Claimed by "gone" with a lease to 1000: a retrying root, a sync child, a third attempt,
     * an on_interrupt=fail run. */
    run_rec_t *retry = put_waiting(f->st, "r/retry", RUN_QUEUED, 10);
    run_rec_t *child = mk_run("r/child", RUN_QUEUED, retry, 11);
    child->sync_child = true;
    store_run_put(f->st, child);
    run_rec_t *third = mk_run("r/third", RUN_QUEUED, NULL, 12);
    third->attempt = 3;
    store_run_put(f->st, third);
    run_rec_t *nofail = mk_run("r/fail", RUN_QUEUED, NULL, 13);
    nofail->retry_on_interrupt = false;
    store_run_put(f->st, nofail);
    run_rec_t **runs = NULL;
    int n = 0;
    assert_int_equal(store_queue_claim(f->st, "gone", 100, 1000, 10, NULL, &runs, &n, NULL), 0);
    assert_int_equal(n, 4);
    run_recs_free(runs, n);

    int requeued = -1, failed = -1;
    assert_int_equal(store_recover(f->st, 999, false, NULL, &requeued, &failed, NULL), 0);
    assert_int_equal(requeued + failed, 0); /* leases still good */
    assert_int_equal(store_recover(f->st, 2000, false, NULL, &requeued, &failed, NULL), 0);
    assert_int_equal(requeued, 1);
    assert_int_equal(failed, 3);

    run_rec_t *got = get_run(f->st, retry->id);
    assert_int_equal(got->status, RUN_QUEUED);
    assert_int_equal(got->attempt, 2);
    assert_int_equal(got->started_at, 0);
    assert_int_equal(got->scheduled_at, 2000);
    assert_null(got->error);
    run_rec_free(got);
    got = get_run(f->st, child->id);
    assert_int_equal(got->status, RUN_FAILED);
    assert_int_equal(got->finished_at, 2000);
    assert_string_equal(json_string_value(json_object_get(got->error, "code")), "interrupted");
    assert_string_equal(json_string_value(json_object_get(got->error, "message")),
                        "the process running this run stopped before it finished");
    assert_true(json_is_true(json_object_get(got->error, "retryable")));
    run_rec_free(got);
    got = get_run(f->st, third->id);
    assert_int_equal(got->status, RUN_FAILED);
    assert_non_null(
        strstr(json_string_value(json_object_get(got->error, "message")), "after 3 attempts"));
    assert_true(json_is_true(json_object_get(got->error, "retryable")));
    run_rec_free(got);
    got = get_run(f->st, nofail->id);
    assert_int_equal(got->status, RUN_FAILED);
    assert_string_equal(json_string_value(json_object_get(got->error, "code")), "interrupted");
    run_rec_free(got);

    /* ALL: every running run not ours, leased or inline (no owner); ours stays. */
    run_rec_t *inline_run = mk_run("r/inline", RUN_RUNNING, NULL, 20);
    store_run_put(f->st, inline_run);
    assert_int_equal(store_queue_claim(f->st, "me", 3000, 999999, 10, NULL, &runs, &n, NULL), 0);
    assert_int_equal(n, 1); /* the requeued retry */
    run_recs_free(runs, n);
    assert_int_equal(store_recover(f->st, 4000, true, "me", &requeued, &failed, NULL), 0);
    assert_int_equal(requeued, 1);
    assert_int_equal(failed, 0);
    got = get_run(f->st, retry->id);
    assert_int_equal(got->status, RUN_RUNNING);
    run_rec_free(got);
    got = get_run(f->st, inline_run->id);
    assert_int_equal(got->status, RUN_QUEUED);
    assert_int_equal(got->attempt, 2);
    run_rec_free(got);
    /* ALL with no owner to spare takes ours too. */
    assert_int_equal(store_recover(f->st, 5000, true, NULL, &requeued, &failed, NULL), 0);
    assert_int_equal(requeued, 1);
    got = get_run(f->st, retry->id);
    assert_int_equal(got->attempt, 3);
    run_rec_free(got);

    run_rec_free(retry);
    run_rec_free(child);
    run_rec_free(third);
    run_rec_free(nofail);
    run_rec_free(inline_run);
}

static void test_store_claim_id(void **state)
{
    fx_t *f = *state;
    run_rec_t *q = put_waiting(f->st, "i", RUN_QUEUED, 100);
    run_rec_t *later = put_waiting(f->st, "i", RUN_SCHEDULED, 5000);
    run_rec_t *out = NULL;
    err_t err = {0};
    assert_int_equal(store_queue_claim_id(f->st, q->id, "me", 1000, 9000, &out, NULL), 0);
    assert_string_equal(out->id, q->id);
    assert_int_equal(out->status, RUN_RUNNING);
    assert_int_equal(out->started_at, 1000);
    run_rec_free(out);
    assert_int_equal(store_queue_claim_id(f->st, q->id, "other", 1000, 9000, &out, &err),
                     BR_ENOT_FOUND);
    assert_null(out);
    assert_int_equal(store_queue_claim_id(f->st, later->id, "me", 1000, 9000, &out, NULL),
                     BR_ENOT_FOUND);
    assert_int_equal(store_queue_claim_id(f->st, later->id, "me", 5000, 9000, &out, NULL), 0);
    run_rec_free(out);
    assert_int_equal(store_queue_claim_id(f->st, "nope", "me", 5000, 9000, &out, NULL),
                     BR_ENOT_FOUND);
    /* A lease-mode recovery never takes the caller's own runs. */
    int requeued = 0, failed = 0;
    assert_int_equal(store_recover(f->st, 20000, false, "me", &requeued, &failed, NULL), 0);
    assert_int_equal(requeued + failed, 0);
    err_clear(&err);
    run_rec_free(q);
    run_rec_free(later);
}

static void test_store_run_cancel(void **state)
{
    fx_t *f = *state;
    run_rec_t *q = put_waiting(f->st, "k", RUN_QUEUED, 100);
    run_rec_t *r = put_waiting(f->st, "k", RUN_QUEUED, 101);
    run_rec_t *done = put_waiting(f->st, "k", RUN_SUCCEEDED, 102);
    run_rec_t *out = NULL;
    assert_int_equal(store_queue_claim_id(f->st, r->id, "me", 1000, 9000, &out, NULL), 0);
    run_rec_free(out);

    run_status_t status;
    assert_int_equal(store_run_cancel(f->st, q->id, 2000, &status, NULL), 0);
    assert_int_equal(status, RUN_CANCELLED);
    run_rec_t *got = get_run(f->st, q->id);
    assert_int_equal(got->status, RUN_CANCELLED);
    assert_int_equal(got->finished_at, 2000);
    assert_string_equal(json_string_value(json_object_get(got->error, "code")), "cancelled");
    run_rec_free(got);

    json_t *ids = NULL;
    assert_int_equal(store_cancel_requested(f->st, "me", &ids, NULL), 0);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);
    assert_int_equal(store_run_cancel(f->st, r->id, 2000, &status, NULL), 0);
    assert_int_equal(status, RUN_RUNNING);
    assert_int_equal(store_cancel_requested(f->st, "me", &ids, NULL), 0);
    assert_int_equal(json_array_size(ids), 1);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), r->id);
    json_decref(ids);
    assert_int_equal(store_cancel_requested(f->st, "other", &ids, NULL), 0);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);

    assert_int_equal(store_run_cancel(f->st, done->id, 2000, &status, NULL), 0);
    assert_int_equal(status, RUN_SUCCEEDED);
    assert_int_equal(store_run_cancel(f->st, "nope", 2000, &status, NULL), BR_ENOT_FOUND);
    run_rec_free(q);
    run_rec_free(r);
    run_rec_free(done);
}

static void test_store_engine_lock(void **state)
{
    fx_t *f = *state;
    bool alone = false;
    assert_int_equal(store_engine_lock(f->st, &alone, NULL), 0);
    assert_true(alone);
    store_t *other = NULL;
    assert_int_equal(store_open(f->dir, NULL, &other, NULL), 0);
    assert_int_equal(store_engine_lock(other, &alone, NULL), 0);
    assert_false(alone);
    assert_int_equal(store_engine_lock(f->st, &alone, NULL), 0);
    assert_false(alone); /* asking again still sees the other */
    store_close(other);
    assert_int_equal(store_engine_lock(f->st, &alone, NULL), 0);
    assert_true(alone);
}

static void test_store_cancel_descendants(void **state)
{
    fx_t *f = *state;
    run_rec_t *root = mk_run("x", RUN_RUNNING, NULL, 1);
    run_rec_t *c1 = mk_run("x", RUN_QUEUED, root, 2);
    run_rec_t *c2 = mk_run("x", RUN_SCHEDULED, root, 3);
    run_rec_t *c3 = mk_run("x", RUN_RUNNING, root, 4);
    run_rec_t *c4 = mk_run("x", RUN_QUEUED, root, 5);
    c4->detached = true;
    run_rec_t *c4a = mk_run("x", RUN_QUEUED, c4, 6);
    run_rec_t *g1 = mk_run("x", RUN_QUEUED, c1, 7);
    run_rec_t *c5 = mk_run("x", RUN_SUCCEEDED, root, 8);
    run_rec_t *g5 = mk_run("x", RUN_SCHEDULED, c5, 9);
    run_rec_t *g3 = mk_run("x", RUN_RUNNING, c3, 10);
    run_rec_t *all[] = {root, c1, c2, c3, c4, c4a, g1, c5, g5, g3};
    for (int i = 0; i < 10; i++)
        store_run_put(f->st, all[i]);

    json_t *running = NULL;
    assert_int_equal(store_cancel_descendants(f->st, root->id, 777, &running, NULL), 0);
    assert_int_equal(json_array_size(running), 2);
    json_t *ids = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(running, i, v) json_object_set(ids, json_string_value(v), json_true());
    assert_non_null(json_object_get(ids, c3->id));
    assert_non_null(json_object_get(ids, g3->id));
    json_decref(ids);
    json_decref(running);

    const run_rec_t *cancelled[] = {c1, c2, g1, g5};
    for (int k = 0; k < 4; k++) {
        run_rec_t *got = get_run(f->st, cancelled[k]->id);
        assert_int_equal(got->status, RUN_CANCELLED);
        assert_int_equal(got->finished_at, 777);
        assert_string_equal(json_string_value(json_object_get(got->error, "code")), "cancelled");
        assert_string_equal(json_string_value(json_object_get(got->error, "message")),
                            "cancelled with its parent");
        run_rec_free(got);
    }
    const run_rec_t *untouched[] = {root, c4, c4a, c3, c5};
    const run_status_t was[] = {RUN_RUNNING, RUN_QUEUED, RUN_QUEUED, RUN_RUNNING, RUN_SUCCEEDED};
    for (int k = 0; k < 5; k++) {
        run_rec_t *got = get_run(f->st, untouched[k]->id);
        assert_int_equal(got->status, was[k]);
        run_rec_free(got);
    }
    for (int k = 0; k < 10; k++)
        run_rec_free(all[k]);
}

static void test_store_idempotency(void **state)
{
    fx_t *f = *state;
    char existing[UUID_STR_LEN];
    assert_int_equal(store_idempotency_claim(f->st, "orders", "k1", "run-1", existing, NULL), 0);
    assert_string_equal(existing, "");
    assert_int_equal(store_idempotency_claim(f->st, "orders", "k1", "run-2", existing, NULL), 0);
    assert_string_equal(existing, "run-1");
    assert_int_equal(store_idempotency_claim(f->st, "other", "k1", "run-3", existing, NULL), 0);
    assert_string_equal(existing, "");
}

static void test_store_purge(void **state)
{
    fx_t *f = *state;
    /* Ids are UUIDv7: their first 48 bits are the creation time, which purge relies on. */
    run_rec_t *old = mk_run("p", RUN_SUCCEEDED, NULL, 100);
    snprintf(old->id, UUID_STR_LEN, "00000000-0001-7000-8000-000000000001"); /* made at 1 ms */
    old->finished_at = 1000;
    run_rec_t *recent = mk_run("p", RUN_FAILED, NULL, 100);
    snprintf(recent->id, UUID_STR_LEN, "00000000-0002-7000-8000-000000000002");
    recent->finished_at = 9000; /* made before the cut-off, finished after it: kept */
    run_rec_t *live = mk_run("p", RUN_QUEUED, NULL, 100);
    store_run_put(f->st, old);
    store_run_put(f->st, recent);
    store_run_put(f->st, live);
    step_rec_t s = mk_step(old->id, 1, 0, "a");
    store_step_put(f->st, &s);
    int64_t deleted = -1;
    assert_int_equal(store_purge(f->st, 5000, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    run_rec_t *got = NULL;
    assert_int_equal(store_run_get(f->st, old->id, &got, NULL), BR_ENOT_FOUND);
    step_rec_t **steps = NULL;
    int n = -1;
    assert_int_equal(store_run_steps(f->st, old->id, &steps, &n, NULL), 0);
    assert_int_equal(n, 0);
    free(steps);
    run_rec_free(get_run(f->st, recent->id));
    run_rec_free(get_run(f->st, live->id));

    /* More than one chunk's worth (a purge commits in chunks of 2000 runs). */
    for (int i = 0; i < 2100; i++) {
        run_rec_t *r = mk_run("p", RUN_SUCCEEDED, NULL, 100);
        snprintf(r->id, UUID_STR_LEN, "00000000-0003-7000-8000-%012x", (unsigned)i + 16);
        r->finished_at = 2000;
        store_run_put(f->st, r);
        run_rec_free(r);
    }
    assert_int_equal(store_purge(f->st, 5000, &deleted, NULL), 0);
    assert_int_equal(deleted, 2100);
    assert_int_equal(store_purge(f->st, 10000, &deleted, NULL), 0);
    assert_int_equal(deleted, 1); /* the recent one; the queued one is not finished */
    run_rec_free(get_run(f->st, live->id));
    run_rec_free(old);
    run_rec_free(recent);
    run_rec_free(live);
}

/* ---- the writer under load ------------------------------------------------------------------- */

typedef struct putter {
    store_t *st;
    int n;
    bool wait_each; /* store_wait every 50th put and read it back */
    char root[UUID_STR_LEN];
    int failures;
} putter_t;

static void *put_loop(void *arg)
{
    putter_t *p = arg;
    run_rec_t *root = NULL;
    for (int i = 0; i < p->n; i++) {
        run_rec_t *r = mk_run("load", RUN_SUCCEEDED, root, 1000 + i);
        if (!root) {
            root = run_rec_copy(r);
            memcpy(p->root, r->id, UUID_STR_LEN);
        }
        uint64_t t = store_run_put(p->st, r);
        step_rec_t s = mk_step(r->id, 1, 0, "t");
        s.result = json_pack("{s:i}", "i", i);
        uint64_t t2 = store_step_put(p->st, &s);
        json_decref(s.result);
        if (t2 <= t)
            p->failures++;
        if (p->wait_each && i % 50 == 0) {
            run_rec_t *got = NULL;
            if (store_wait(p->st, t, NULL) != 0 || store_run_get(p->st, r->id, &got, NULL) != 0)
                p->failures++;
            run_rec_free(got);
        }
        run_rec_free(r);
    }
    run_rec_free(root);
    return NULL;
}

static void test_store_wait_flush_many_threads(void **state)
{
    fx_t *f = *state;
    enum { THREADS = 8, EACH = 1500 };
    putter_t p[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        p[i] = (putter_t){.st = f->st, .n = EACH, .wait_each = true};
        pthread_create(&t[i], NULL, put_loop, &p[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(store_flush(f->st, NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(p[i].failures, 0);
        int64_t count = 0;
        assert_int_equal(store_root_count(f->st, p[i].root, &count, NULL), 0);
        assert_int_equal(count, EACH);
    }
    uint64_t commits = store_commit_count(f->st);
    assert_true(commits > 0);
    assert_true(commits < (uint64_t)THREADS * EACH); /* writes were grouped */
    assert_int_equal(store_wait(f->st, 0, NULL), 0);
    assert_int_equal(store_flush(f->st, NULL), 0); /* nothing pending: returns at once */
}

/* ---- the compact JSON writer the store uses ------------------------------------------------ */

static void assert_dump_like_jansson(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    buf_t b = BUF_INIT;
    buf_puts(&b, "x"); /* appends after what is there */
    jsonx_dump_buf(&b, v);
    if (strcmp(b.data + 1, want) != 0)
        fail_msg("jsonx_dump_buf wrote %s, jansson %s", b.data + 1, want);
    free(want);
    buf_deinit(&b);
}

static void test_jsonx_dump_buf(void **state)
{
    (void)state;
    const char *docs[] = {
        "null", "true", "false", "0", "-1", "7", "9223372036854775807", "-9223372036854775808",
        "1234567890123", "\"\"", "\"plain text that is longer than eight bytes\"",
        "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f é ü 😀\"",
        "\"12345678\\\"12345678\\\\1234567\\n\"", "[]", "{}", "[[],{},[[]]]",
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\",\"f\":{}},\"\\\"k\\n\":-5}",
        "{\"payload\":{\"x\":0},\"params\":{},\"path\":\"/integrations/execute/a\","
        "\"headers\":{},\"method\":\"POST\"}",
        "[1,-2,30,-400,5000,-60000,700000,-8000000,90000000,-100000000,99,100,101,9,10,11]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t je;
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, &je);
        if (!v)
            fail_msg("bad test document %s: %s", docs[i], je.text);
        assert_dump_like_jansson(v);
        json_decref(v);
    }
    /* NUL inside strings and keys. */
    json_t *o = json_object();
    json_object_setn_new(o, "k\0y", 3, json_stringn("a\0b", 3));
    assert_dump_like_jansson(o);
    json_decref(o);
    /* Every escape at every offset of the eight-byte scan. */
    for (int c = 0; c < 128; c++) {
        for (int at = 0; at < 17; at++) {
            char s[18];
            memset(s, 'a', sizeof s);
            s[at] = (char)c;
            json_t *v = json_stringn(s, sizeof s);
            assert_dump_like_jansson(v);
            json_decref(v);
        }
    }
    /* Integers around every power of ten. */
    for (long long p = 1; p < LLONG_MAX / 10; p *= 10) {
        for (long long d = -1; d <= 1; d++) {
            json_t *v = json_integer(p + d), *w = json_integer(-(p + d));
            assert_dump_like_jansson(v);
            assert_dump_like_jansson(w);
            json_decref(v);
            json_decref(w);
        }
    }
    /* Reals: the shortest text that reads back as the same double, shaped like jansson's. */
    static const struct {
        double d;
        const char *text;
    } reals[] = {{0.1, "0.1"},         {2.5, "2.5"},     {1.0, "1.0"},
                 {-0.0, "-0.0"},       {1e300, "1e300"}, {1e-7, "1e-7"},
                 {123456789.0, "123456789.0"}, {0.30000000000000004, "0.30000000000000004"}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        buf_t b = BUF_INIT;
        json_t *v = json_real(reals[i].d);
        jsonx_dump_buf(&b, v);
        assert_string_equal(b.data, reals[i].text);
        assert_true(strtod(b.data, NULL) == reals[i].d);
        json_decref(v);
        buf_deinit(&b);
    }
    /* The bounded form stops once past the limit and says so. */
    json_t *big = json_pack("{s:s, s:[i, i, i]}", "a", "0123456789", "b", 1, 2, 3);
    buf_t b = BUF_INIT;
    assert_int_equal(jsonx_dump_buf_max(&b, big, 100), 0);
    assert_string_equal(b.data, "{\"a\":\"0123456789\",\"b\":[1,2,3]}");
    size_t full = b.len;
    buf_reset(&b);
    assert_int_equal(jsonx_dump_buf_max(&b, big, full), 0);
    buf_reset(&b);
    assert_int_equal(jsonx_dump_buf_max(&b, big, full - 1), -1);
    assert_true(b.len <= full);
    buf_reset(&b);
    assert_int_equal(jsonx_dump_buf_max(&b, big, 5), -1);
    buf_deinit(&b);
    json_decref(big);
}

static void test_store_throughput(void **state)
{
    fx_t *f = *state;
    enum { THREADS = 4, EACH = 25000 };
    putter_t p[THREADS];
    pthread_t t[THREADS];
    uint64_t c0 = store_commit_count(f->st);
    int64_t t0 = clock_mono_ms();
    for (int i = 0; i < THREADS; i++) {
        p[i] = (putter_t){.st = f->st, .n = EACH};
        pthread_create(&t[i], NULL, put_loop, &p[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(store_flush(f->st, NULL), 0);
    int64_t ms = clock_mono_ms() - t0;
    uint64_t commits = store_commit_count(f->st) - c0;
    double puts = 2.0 * THREADS * EACH;
    printf("[ throughput ] %.0f puts (runs + steps) in %lld ms: %.0f puts/s, %llu commits, "
           "%.0f puts per commit\n",
           puts, (long long)ms, puts * 1000.0 / (double)(ms ? ms : 1), (unsigned long long)commits,
           puts / (double)(commits ? commits : 1));
    int64_t count = 0;
    assert_int_equal(store_root_count(f->st, p[0].root, &count, NULL), 0);
    assert_int_equal(count, EACH);

    /* Latency of one durable write on an idle store: the group-commit window plus a commit. */
    enum { ROUNDS = 100 };
    t0 = clock_mono_ms();
    for (int i = 0; i < ROUNDS; i++) {
        run_rec_t *r = mk_run("latency", RUN_SUCCEEDED, NULL, 1000);
        assert_int_equal(store_wait(f->st, store_run_put(f->st, r), NULL), 0);
        run_rec_free(r);
    }
    printf("[ latency    ] put + store_wait on an idle store: %.2f ms on average\n",
           (double)(clock_mono_ms() - t0) / ROUNDS);
}

/* ---- API tokens ------------------------------------------------------------------------------ */

static token_rec_t *mk_token(const char *id, const char *role, int64_t created_at)
{
    token_rec_t *t = XNEW(token_rec_t);
    snprintf(t->id, sizeof t->id, "%s", id);
    t->role = xstrdup(role);
    t->scopes = json_pack("[s]", "orders/*");
    for (int i = 0; i < 32; i++)
        t->hash[i] = (unsigned char)(0xa0 + i);
    t->description = xstrdup("for the tests");
    t->created_at = created_at;
    return t;
}

/* Whether the N bytes at NEEDLE occur in the file PATH (missing file: false). */
static bool file_contains(const char *path, const void *needle, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    buf_t b = BUF_INIT;
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, k);
    fclose(f);
    bool found = b.len >= n && memmem(b.data, b.len, needle, n) != NULL;
    buf_deinit(&b);
    return found;
}

static void test_store_token_put_get(void **state)
{
    fx_t *f = *state;
    token_rec_t *t = mk_token("t_00000000000000aa", "invoker", 1700000000123);
    err_t err = {0};
    assert_int_equal(store_token_put(f->st, t, &err), 0);

    token_rec_t *got = NULL;
    assert_int_equal(store_token_get(f->st, t->id, &got, &err), 0);
    assert_string_equal(got->id, t->id);
    assert_string_equal(got->role, "invoker");
    assert_true(json_equal(got->scopes, t->scopes));
    assert_memory_equal(got->hash, t->hash, 32);
    assert_string_equal(got->description, "for the tests");
    assert_int_equal(got->created_at, 1700000000123);
    assert_int_equal(got->revoked_at, 0);
    token_rec_free(got);

    /* The same id again is a conflict and changes nothing. */
    token_rec_t *dup = mk_token(t->id, "admin", 5);
    assert_int_equal(store_token_put(f->st, dup, &err), BR_ECONFLICT);
    assert_int_equal(store_token_get(f->st, t->id, &got, NULL), 0);
    assert_string_equal(got->role, "invoker");
    token_rec_free(got);
    token_rec_free(dup);

    /* No description, no scopes. */
    token_rec_t *bare = mk_token("t_00000000000000bb", "viewer", 7);
    free(bare->description);
    bare->description = NULL;
    json_decref(bare->scopes);
    bare->scopes = NULL;
    assert_int_equal(store_token_put(f->st, bare, NULL), 0);
    assert_int_equal(store_token_get(f->st, bare->id, &got, NULL), 0);
    assert_null(got->description);
    assert_true(json_is_array(got->scopes));
    assert_int_equal(json_array_size(got->scopes), 0);
    token_rec_free(got);
    token_rec_free(bare);

    /* Unknown ids, bad records. */
    got = (token_rec_t *)1;
    assert_int_equal(store_token_get(f->st, "t_ffffffffffffffff", &got, NULL), BR_ENOT_FOUND);
    assert_null(got);
    token_rec_t *bad = mk_token("t_00000000000000cc", "root", 1);
    assert_int_equal(store_token_put(f->st, bad, NULL), BR_EINPUT_INVALID);
    bad->id[0] = '\0';
    free(bad->role);
    bad->role = xstrdup("admin");
    assert_int_equal(store_token_put(f->st, bad, NULL), BR_EINPUT_INVALID);
    token_rec_free(bad);
    token_rec_free(t);
    err_clear(&err);
}

static void test_store_token_list_and_json(void **state)
{
    fx_t *f = *state;
    json_t *list = NULL;
    assert_int_equal(store_token_list(f->st, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    token_rec_t *a = mk_token("t_000000000000000a", "admin", 1000);
    token_rec_t *b = mk_token("t_000000000000000b", "editor", 3000);
    token_rec_t *c = mk_token("t_000000000000000c", "viewer", 2000);
    assert_int_equal(store_token_put(f->st, a, NULL), 0);
    assert_int_equal(store_token_put(f->st, b, NULL), 0);
    assert_int_equal(store_token_put(f->st, c, NULL), 0);
    assert_int_equal(store_token_revoke(f->st, c->id, 2500, NULL), 0);
    assert_int_equal(store_token_list(f->st, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 3);
    /* Newest first. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), b->id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "id")), c->id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "id")), a->id);

    /* The listed shape: exactly these keys, RFC 3339 times, never the hash. */
    json_t *o = json_array_get(list, 1);
    assert_int_equal(json_object_size(o), 6);
    assert_string_equal(json_string_value(json_object_get(o, "role")), "viewer");
    assert_true(json_equal(json_object_get(o, "scopes"), c->scopes));
    assert_string_equal(json_string_value(json_object_get(o, "description")), "for the tests");
    assert_string_equal(json_string_value(json_object_get(o, "created_at")),
                        "1970-01-01T00:00:02.000Z");
    assert_string_equal(json_string_value(json_object_get(o, "revoked_at")),
                        "1970-01-01T00:00:02.500Z");
    assert_true(json_is_null(json_object_get(json_array_get(list, 0), "revoked_at")));
    char *text = json_dumps(list, JSON_COMPACT);
    assert_null(strstr(text, "hash"));
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", a->hash[i]);
    assert_null(strstr(text, hex));
    free(text);
    json_decref(list);

    /* token_rec_to_json of a bare record. */
    token_rec_t bare = {.id = "t_1", .created_at = 1};
    json_t *j = token_rec_to_json(&bare);
    assert_null(json_object_get(j, "hash"));
    assert_true(json_is_null(json_object_get(j, "description")));
    assert_int_equal(json_array_size(json_object_get(j, "scopes")), 0);
    json_decref(j);
    token_rec_free(a);
    token_rec_free(b);
    token_rec_free(c);
}

static void test_store_token_revoke(void **state)
{
    fx_t *f = *state;
    token_rec_t *t = mk_token("t_0000000000000001", "admin", 100);
    assert_int_equal(store_token_put(f->st, t, NULL), 0);
    assert_int_equal(store_token_revoke(f->st, t->id, 500, NULL), 0);
    token_rec_t *got = NULL;
    assert_int_equal(store_token_get(f->st, t->id, &got, NULL), 0);
    assert_int_equal(got->revoked_at, 500);
    token_rec_free(got);
    /* Twice keeps the first time. */
    assert_int_equal(store_token_revoke(f->st, t->id, 900, NULL), 0);
    assert_int_equal(store_token_get(f->st, t->id, &got, NULL), 0);
    assert_int_equal(got->revoked_at, 500);
    token_rec_free(got);
    err_t err = {0};
    assert_int_equal(store_token_revoke(f->st, "t_nope", 900, &err), BR_ENOT_FOUND);
    err_clear(&err);
    /* 0 means now. */
    token_rec_t *u = mk_token("t_0000000000000002", "viewer", 100);
    assert_int_equal(store_token_put(f->st, u, NULL), 0);
    int64_t before = clock_now_ms();
    assert_int_equal(store_token_revoke(f->st, u->id, 0, NULL), 0);
    assert_int_equal(store_token_get(f->st, u->id, &got, NULL), 0);
    assert_true(got->revoked_at >= before);
    token_rec_free(got);
    token_rec_free(u);
    token_rec_free(t);
}

static void test_store_token_any_active(void **state)
{
    fx_t *f = *state;
    bool any = true;
    assert_int_equal(store_token_any_active(f->st, "admin", &any, NULL), 0);
    assert_false(any);
    token_rec_t *v = mk_token("t_0000000000000003", "viewer", 1);
    token_rec_t *a1 = mk_token("t_0000000000000004", "admin", 2);
    token_rec_t *a2 = mk_token("t_0000000000000005", "admin", 3);
    assert_int_equal(store_token_put(f->st, v, NULL), 0);
    assert_int_equal(store_token_any_active(f->st, "admin", &any, NULL), 0);
    assert_false(any);
    assert_int_equal(store_token_any_active(f->st, "viewer", &any, NULL), 0);
    assert_true(any);
    assert_int_equal(store_token_put(f->st, a1, NULL), 0);
    assert_int_equal(store_token_put(f->st, a2, NULL), 0);
    assert_int_equal(store_token_any_active(f->st, "admin", &any, NULL), 0);
    assert_true(any);
    assert_int_equal(store_token_revoke(f->st, a1->id, 10, NULL), 0);
    assert_int_equal(store_token_any_active(f->st, "admin", &any, NULL), 0);
    assert_true(any);
    assert_int_equal(store_token_revoke(f->st, a2->id, 10, NULL), 0);
    assert_int_equal(store_token_any_active(f->st, "admin", &any, NULL), 0);
    assert_false(any);
    token_rec_free(v);
    token_rec_free(a1);
    token_rec_free(a2);
}

/* A database as braid left it at user_version 2 (before tokens) gets the tokens table and
 * keeps its runs; tokens written after the upgrade survive a reopen. */
static void test_store_token_migrate_from_v2(void **state)
{
    fx_t *f = *state;
    run_rec_t *r = mk_run("kept", RUN_SUCCEEDED, NULL, 10);
    r->finished_at = 20;
    put_and_flush(f->st, r);
    store_close(f->st);
    f->st = NULL;

    /* Schema 2 is schema 3 without the tokens table. */
    char path[128];
    snprintf(path, sizeof path, "%s/braid.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE tokens; PRAGMA user_version=2;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(read_user_version(f->dir), 2);

    assert_int_equal(open_store(f, 0), 0);
    run_rec_t *got = get_run(f->st, r->id);
    assert_string_equal(got->integration, "kept");
    assert_int_equal(got->finished_at, 20);
    run_rec_free(got);
    json_t *list = NULL;
    assert_int_equal(store_token_list(f->st, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    token_rec_t *t = mk_token("t_0000000000000006", "admin", 1);
    assert_int_equal(store_token_put(f->st, t, NULL), 0);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(read_user_version(f->dir), STORE_SCHEMA_NOW);

    assert_int_equal(open_store(f, 0), 0);
    token_rec_t *back = NULL;
    assert_int_equal(store_token_get(f->st, t->id, &back, NULL), 0);
    assert_memory_equal(back->hash, t->hash, 32);
    token_rec_free(back);
    run_rec_free(get_run(f->st, r->id));
    token_rec_free(t);
    run_rec_free(r);
}

/* A positive control for the e2e check that no secret reaches the data directory: what the
 * store does keep (the hash) is found by searching braid.db and its WAL for its bytes, so not
 * finding a secret there means something. */
static void test_store_token_bytes_on_disk(void **state)
{
    fx_t *f = *state;
    token_rec_t *t = mk_token("t_0000000000000007", "admin", 1);
    assert_int_equal(store_token_put(f->st, t, NULL), 0);
    char db[128], wal[140];
    snprintf(db, sizeof db, "%s/braid.db", f->dir);
    snprintf(wal, sizeof wal, "%s-wal", db);
    assert_true(file_contains(db, t->hash, 32) || file_contains(wal, t->hash, 32));
    token_rec_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_open_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_tree_count_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_run_put_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_run_roundtrip, setup, teardown),
        cmocka_unit_test(test_store_status_names),
        cmocka_unit_test_setup_teardown(test_store_run_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_steps_latest_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_steps_held_in_the_run_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_claim_takes_kept_values, setup, teardown),
        cmocka_unit_test(test_claim_cache_laps),
        cmocka_unit_test_setup_teardown(test_store_try_commit_here, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_put_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_wal_commits_survive_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_wal_checkpointed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_json_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_step_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_list_filters_and_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_claim_batch_and_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_claim_two_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_lease_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_claim_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_run_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_engine_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_cancel_descendants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_token_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_token_list_and_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_token_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_token_any_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_token_migrate_from_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_token_bytes_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_wait_flush_many_threads, setup, teardown),
        cmocka_unit_test(test_jsonx_dump_buf),
        cmocka_unit_test_setup_teardown(test_store_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
