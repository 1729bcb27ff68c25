/* test_store_connections.c - the store's connectors (versioned documents) and connections
 * (config and sealed secrets) on SQLite: publish, read, list, put, delete, the all-or-nothing
 * put_all, the connections epoch, and the 3 -> 4 schema migration. Each test has its own
 * temporary directory under /tmp, removed afterwards.
 */
#include "store/store.h"

#include "core/clock.h"
#include "core/xalloc.h"

#include <ftw.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tmp_store.h"

/* ---- fixtures -------------------------------------------------------------------------------- */

typedef store_fx_t fx_t;

static int open_store(fx_t *f)
{
    return tmp_store_open(f->dir, NULL, &f->st);
}

static int setup(void **state)
{
    return store_fx_setup(state, "/tmp/braid_conn_XXXXXX", NULL);
}

static int teardown(void **state)
{
    return store_fx_teardown(state);
}

static void reopen(fx_t *f)
{
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f), 0);
}

static int64_t epoch(store_t *st)
{
    int64_t e = -1;
    assert_int_equal(store_connections_epoch(st, &e, NULL), 0);
    return e;
}

/* A connection ID of CONNECTOR with one config value and one sealed secret. Owned. */
static connection_rec_t *mk_conn(const char *id, const char *connector, const char *base_url,
                                 const char *sealed)
{
    connection_rec_t *c = connection_rec_new();
    c->id = xstrdup(id);
    c->connector = xstrdup(connector);
    c->config = json_pack("{s:s, s:i, s:{s:[i,i]}}", "base_url", base_url, "retries", 3, "nested",
                          "a", 1, 2);
    c->secrets = json_pack("{s:{s:s, s:I}}", "api_key", "sealed", sealed, "updated_at",
                           (json_int_t)1700000000000);
    return c;
}

static connection_rec_t *get_conn(store_t *st, const char *id)
{
    connection_rec_t *c = NULL;
    err_t err = {0};
    int rc = store_connection_get(st, id, &c, &err);
    if (rc != 0)
        fprintf(stderr, "store_connection_get(%s): %s\n", id, err.msg);
    err_clear(&err);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

static void publish(store_t *st, const char *slug, const char *doc, int want_version,
                    bool want_created)
{
    int version = -1;
    bool created = !want_created;
    assert_int_equal(store_connector_publish(st, slug, doc, &version, &created, NULL), 0);
    assert_int_equal(version, want_version);
    assert_int_equal(created, want_created);
}

static int user_version(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/braid.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void assert_rfc3339(const json_t *v)
{
    assert_true(json_is_string(v));
    int64_t ms = 0;
    assert_int_equal(clock_parse_rfc3339(json_string_value(v), &ms), 0);
    assert_true(ms > 0);
}

/* ---- connectors ------------------------------------------------------------------------------ */

static void test_store_connections_connector_publish(void **state)
{
    fx_t *f = *state;
    publish(f->st, "billing", "{\"slug\":\"billing\",\"n\":1}", 1, true);
    publish(f->st, "billing", "{\"slug\":\"billing\",\"n\":1}", 1, false);
    publish(f->st, "billing", "{\"slug\":\"billing\",\"n\":2}", 2, true);
    publish(f->st, "billing", "{\"slug\":\"billing\",\"n\":2}", 2, false);
    /* Going back to an older text is a new version: versions are immutable history. */
    publish(f->st, "billing", "{\"slug\":\"billing\",\"n\":1}", 3, true);
    publish(f->st, "crm", "{\"slug\":\"crm\"}", 1, true);

    err_t err = {0};
    assert_int_equal(store_connector_publish(f->st, "", "{}", NULL, NULL, &err), BR_EINPUT_INVALID);
    err_clear(&err);
    assert_int_equal(store_connector_publish(f->st, "x", NULL, NULL, NULL, NULL),
                     BR_EINPUT_INVALID);

    /* Durable: a new store on the same directory sees every version. */
    reopen(f);
    publish(f->st, "billing", "{\"slug\":\"billing\",\"n\":1}", 3, false);
}

static void test_store_connections_connector_get(void **state)
{
    fx_t *f = *state;
    publish(f->st, "billing", "{\"v\":1}", 1, true);
    publish(f->st, "billing", "{\"v\":2}", 2, true);

    integration_version_t *v = NULL;
    assert_int_equal(store_connector_get(f->st, "billing", 0, &v, NULL), 0);
    assert_string_equal(v->name, "billing");
    assert_int_equal(v->version, 2);
    assert_string_equal(v->doc, "{\"v\":2}");
    assert_false(v->archived);
    assert_true(v->created_at > 0);
    integration_version_free(v);

    v = NULL;
    assert_int_equal(store_connector_get(f->st, "billing", 1, &v, NULL), 0);
    assert_int_equal(v->version, 1);
    assert_string_equal(v->doc, "{\"v\":1}");
    integration_version_free(v);

    err_t err = {0};
    v = NULL;
    assert_int_equal(store_connector_get(f->st, "billing", 3, &v, &err), BR_EVERSION_NOT_FOUND);
    assert_null(v);
    assert_non_null(strstr(err.msg, "billing"));
    err_clear(&err);
    assert_int_equal(store_connector_get(f->st, "nope", 0, &v, NULL), BR_ENOT_FOUND);
    assert_int_equal(store_connector_get(f->st, "nope", 1, &v, NULL), BR_ENOT_FOUND);
    assert_int_equal(store_connector_get(f->st, "billing", -1, &v, NULL), BR_EVERSION_NOT_FOUND);
    assert_int_equal(store_connector_get(f->st, "nope", -1, &v, NULL), BR_ENOT_FOUND);
    assert_null(v);

    /* Integrations and connectors are separate namespaces. */
    assert_int_equal(store_integration_get(f->st, "billing", 0, &v, NULL), BR_ENOT_FOUND);
}

static void test_store_connections_connector_list(void **state)
{
    fx_t *f = *state;
    json_t *list = NULL;
    assert_int_equal(store_connector_list(f->st, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    publish(f->st, "zeta", "{\"z\":1}", 1, true);
    publish(f->st, "alpha", "{\"a\":1}", 1, true);
    publish(f->st, "alpha", "{\"a\":2}", 2, true);

    assert_int_equal(store_connector_list(f->st, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 2);
    json_t *a = json_array_get(list, 0), *z = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(a, "slug")), "alpha");
    assert_int_equal(json_integer_value(json_object_get(a, "latest_version")), 2);
    assert_rfc3339(json_object_get(a, "updated_at"));
    assert_string_equal(json_string_value(json_object_get(z, "slug")), "zeta");
    assert_int_equal(json_integer_value(json_object_get(z, "latest_version")), 1);
    assert_rfc3339(json_object_get(z, "updated_at"));
    assert_int_equal(json_object_size(a), 3);
    json_decref(list);

    /* Connectors are not integrations. */
    assert_int_equal(store_integration_list(f->st, true, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void test_store_connections_connector_versions(void **state)
{
    fx_t *f = *state;
    publish(f->st, "billing", "{\"v\":1}", 1, true);
    publish(f->st, "billing", "{\"v\":2}", 2, true);
    json_t *vs = NULL;
    assert_int_equal(store_connector_versions(f->st, "billing", &vs, NULL), 0);
    assert_int_equal(json_array_size(vs), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_array_get(vs, i);
        assert_int_equal(json_integer_value(json_object_get(v, "version")), (int)i + 1);
        assert_rfc3339(json_object_get(v, "created_at"));
    }
    json_decref(vs);
    vs = NULL;
    assert_int_equal(store_connector_versions(f->st, "nope", &vs, NULL), BR_ENOT_FOUND);
    assert_null(vs);
}

/* ---- connections ----------------------------------------------------------------------------- */

static void test_store_connections_put_get(void **state)
{
    fx_t *f = *state;
    connection_rec_t *c = mk_conn("billing-prod", "billing", "https://billing.example", "v1:AAAA");
    c->created_at = 1000;
    c->updated_at = 2000;
    assert_int_equal(store_connection_put(f->st, c, NULL), 0);

    connection_rec_t *got = get_conn(f->st, "billing-prod");
    assert_string_equal(got->id, "billing-prod");
    assert_string_equal(got->connector, "billing");
    assert_true(json_equal(got->config, c->config));
    assert_true(json_equal(got->secrets, c->secrets));
    assert_int_equal(got->created_at, 1000);
    assert_int_equal(got->updated_at, 2000);
    connection_rec_free(got);

    /* Replace as a whole: created_at 0 keeps the stored one, updated_at 0 means now. */
    connection_rec_t *c2 = mk_conn("billing-prod", "billing2", "https://other", "v2:BBBB");
    json_object_del(c2->config, "nested");
    int64_t before = clock_now_ms();
    assert_int_equal(store_connection_put(f->st, c2, NULL), 0);
    got = get_conn(f->st, "billing-prod");
    assert_string_equal(got->connector, "billing2");
    assert_true(json_equal(got->config, c2->config));
    assert_null(json_object_get(got->config, "nested"));
    assert_true(json_equal(got->secrets, c2->secrets));
    assert_int_equal(got->created_at, 1000);
    assert_true(got->updated_at >= before);
    connection_rec_free(got);

    /* A new one with no times gets now for both; NULL config and secrets read back as {}. */
    connection_rec_t *bare = connection_rec_new();
    bare->id = xstrdup("bare");
    bare->connector = xstrdup("crm");
    assert_int_equal(store_connection_put(f->st, bare, NULL), 0);
    got = get_conn(f->st, "bare");
    assert_true(got->created_at >= before);
    assert_int_equal(got->updated_at, got->created_at);
    assert_true(json_is_object(got->config) && json_object_size(got->config) == 0);
    assert_true(json_is_object(got->secrets) && json_object_size(got->secrets) == 0);
    connection_rec_free(got);

    /* Durable across a reopen. */
    reopen(f);
    got = get_conn(f->st, "billing-prod");
    assert_true(json_equal(got->secrets, c2->secrets));
    connection_rec_free(got);

    connection_rec_free(bare);
    connection_rec_free(c2);
    connection_rec_free(c);
}

static void test_store_connections_put_invalid(void **state)
{
    fx_t *f = *state;
    int64_t e0 = epoch(f->st);
    static const char *const bad_ids[] = {"", "-lead", ".x", "has space", "slash/no", "ü"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        connection_rec_t *c = mk_conn(bad_ids[i], "billing", "u", "v1:A");
        assert_int_equal(store_connection_put(f->st, c, NULL), BR_EINPUT_INVALID);
        connection_rec_free(c);
    }
    char long_id[130];
    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    connection_rec_t *c = mk_conn(long_id, "billing", "u", "v1:A");
    assert_int_equal(store_connection_put(f->st, c, NULL), BR_EINPUT_INVALID);
    long_id[128] = '\0'; /* 128 bytes is the most allowed */
    free(c->id);
    c->id = xstrdup(long_id);
    assert_int_equal(store_connection_put(f->st, c, NULL), 0);
    connection_rec_free(c);

    /* A secret that is not sealed never reaches the store. */
    c = mk_conn("ok_id.1-x", "billing", "u", "v1:A");
    json_object_set_new(c->secrets, "password", json_string("hunter2"));
    err_t err = {0};
    assert_int_equal(store_connection_put(f->st, c, &err), BR_EINPUT_INVALID);
    assert_non_null(strstr(err.msg, "password"));
    assert_null(strstr(err.msg, "hunter2"));
    err_clear(&err);
    json_object_del(c->secrets, "password");
    json_decref(c->config);
    c->config = json_array();
    assert_int_equal(store_connection_put(f->st, c, NULL), BR_EINPUT_INVALID);
    json_decref(c->config);
    c->config = NULL;
    free(c->connector);
    c->connector = NULL;
    assert_int_equal(store_connection_put(f->st, c, NULL), BR_EINPUT_INVALID);
    assert_int_equal(store_connection_put(f->st, NULL, NULL), BR_EINPUT_INVALID);
    connection_rec_free(c);

    connection_rec_t *none = NULL;
    assert_int_equal(store_connection_get(f->st, "ok_id.1-x", &none, NULL),
                     BR_ECONNECTION_NOT_FOUND);
    assert_int_equal(epoch(f->st), e0 + 1); /* only the 128-byte id was written */
}

static void test_store_connections_list(void **state)
{
    fx_t *f = *state;
    connection_rec_t **v = NULL;
    int n = -1;
    assert_int_equal(store_connection_list(f->st, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    connection_recs_free(v, n);

    static const char *const ids[] = {"b", "a", "c-1", "B", "a.2"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        connection_rec_t *c = mk_conn(ids[i], "billing", ids[i], "v1:A");
        assert_int_equal(store_connection_put(f->st, c, NULL), 0);
        connection_rec_free(c);
    }
    assert_int_equal(store_connection_list(f->st, &v, &n, NULL), 0);
    assert_int_equal(n, 5);
    static const char *const sorted[] = {"B", "a", "a.2", "b", "c-1"}; /* byte order */
    for (int i = 0; i < n; i++) {
        assert_string_equal(v[i]->id, sorted[i]);
        assert_string_equal(json_string_value(json_object_get(v[i]->config, "base_url")),
                            sorted[i]);
        assert_non_null(json_object_get(v[i]->secrets, "api_key"));
    }
    connection_recs_free(v, n);
}

static void test_store_connections_delete(void **state)
{
    fx_t *f = *state;
    connection_rec_t *c = mk_conn("gone", "billing", "u", "v1:A");
    assert_int_equal(store_connection_put(f->st, c, NULL), 0);
    connection_rec_free(c);
    connection_rec_free(get_conn(f->st, "gone"));

    assert_int_equal(store_connection_delete(f->st, "gone", NULL), 0);
    connection_rec_t *none = NULL;
    err_t err = {0};
    assert_int_equal(store_connection_get(f->st, "gone", &none, &err), BR_ECONNECTION_NOT_FOUND);
    assert_non_null(strstr(err.msg, "gone"));
    err_clear(&err);
    assert_null(none);
    assert_int_equal(store_connection_delete(f->st, "gone", NULL), BR_ECONNECTION_NOT_FOUND);
    assert_int_equal(store_connection_delete(f->st, "never", NULL), BR_ECONNECTION_NOT_FOUND);
    assert_int_equal(store_connection_delete(f->st, NULL, NULL), BR_ECONNECTION_NOT_FOUND);
    assert_int_equal(store_connection_get(f->st, NULL, &none, NULL), BR_ECONNECTION_NOT_FOUND);

    reopen(f);
    assert_int_equal(store_connection_get(f->st, "gone", &none, NULL), BR_ECONNECTION_NOT_FOUND);
}

static void test_store_connections_put_all_atomic(void **state)
{
    fx_t *f = *state;
    connection_rec_t *a = mk_conn("a", "billing", "https://a", "v1:AAAA");
    connection_rec_t *b = mk_conn("b", "billing", "https://b", "v1:BBBB");
    a->created_at = 111;
    assert_int_equal(store_connection_put(f->st, a, NULL), 0);
    assert_int_equal(store_connection_put(f->st, b, NULL), 0);
    int64_t e0 = epoch(f->st);

    /* Re-sealed copies, with one id that does not exist in the middle. */
    connection_rec_t *a2 = mk_conn("a", "billing", "https://a", "v2:aaaa");
    connection_rec_t *b2 = mk_conn("b", "billing", "https://b", "v2:bbbb");
    connection_rec_t *ghost = mk_conn("ghost", "billing", "https://g", "v2:gggg");
    connection_rec_t *const bad[] = {a2, ghost, b2};
    err_t err = {0};
    assert_int_equal(store_connection_put_all(f->st, bad, 3, &err), BR_ECONNECTION_NOT_FOUND);
    assert_non_null(strstr(err.msg, "ghost"));
    err_clear(&err);

    connection_rec_t *got = get_conn(f->st, "a");
    assert_true(json_equal(got->secrets, a->secrets)); /* a2 was undone */
    connection_rec_free(got);
    got = get_conn(f->st, "b");
    assert_true(json_equal(got->secrets, b->secrets));
    connection_rec_free(got);
    connection_rec_t *none = NULL;
    assert_int_equal(store_connection_get(f->st, "ghost", &none, NULL), BR_ECONNECTION_NOT_FOUND);
    assert_int_equal(epoch(f->st), e0);

    /* An invalid record also changes nothing. */
    json_object_set_new(b2->secrets, "raw", json_string("plain"));
    connection_rec_t *const invalid[] = {a2, b2};
    assert_int_equal(store_connection_put_all(f->st, invalid, 2, NULL), BR_EINPUT_INVALID);
    json_object_del(b2->secrets, "raw");
    got = get_conn(f->st, "a");
    assert_true(json_equal(got->secrets, a->secrets));
    connection_rec_free(got);

    /* All present: every record replaced, the epoch moves once, created_at kept. */
    connection_rec_t *const good[] = {a2, b2};
    assert_int_equal(store_connection_put_all(f->st, good, 2, NULL), 0);
    got = get_conn(f->st, "a");
    assert_true(json_equal(got->secrets, a2->secrets));
    assert_int_equal(got->created_at, 111);
    connection_rec_free(got);
    got = get_conn(f->st, "b");
    assert_true(json_equal(got->secrets, b2->secrets));
    connection_rec_free(got);
    assert_int_equal(epoch(f->st), e0 + 1);

    /* Nothing to do is not an error, and writes nothing. */
    assert_int_equal(store_connection_put_all(f->st, NULL, 0, NULL), 0);
    assert_int_equal(epoch(f->st), e0 + 1);

    connection_rec_free(ghost);
    connection_rec_free(b2);
    connection_rec_free(a2);
    connection_rec_free(b);
    connection_rec_free(a);
}

static void test_store_connections_epoch(void **state)
{
    fx_t *f = *state;
    int64_t e = epoch(f->st), next;
    assert_int_equal(e, 0);

    publish(f->st, "billing", "{\"v\":1}", 1, true);
    assert_true((next = epoch(f->st)) != e);
    e = next;
    publish(f->st, "billing", "{\"v\":1}", 1, false); /* nothing changed */
    assert_int_equal(epoch(f->st), e);
    publish(f->st, "billing", "{\"v\":2}", 2, true);
    assert_true((next = epoch(f->st)) != e);
    e = next;

    connection_rec_t *c = mk_conn("c", "billing", "u", "v1:A");
    assert_int_equal(store_connection_put(f->st, c, NULL), 0);
    assert_true((next = epoch(f->st)) != e);
    e = next;
    assert_int_equal(store_connection_put(f->st, c, NULL), 0); /* a put is a write */
    assert_true((next = epoch(f->st)) != e);
    e = next;
    connection_rec_t *const all[] = {c};
    assert_int_equal(store_connection_put_all(f->st, all, 1, NULL), 0);
    assert_true((next = epoch(f->st)) != e);
    e = next;
    assert_int_equal(store_connection_delete(f->st, "c", NULL), 0);
    assert_true((next = epoch(f->st)) != e);
    e = next;
    assert_int_equal(store_connection_delete(f->st, "c", NULL), BR_ECONNECTION_NOT_FOUND);
    assert_int_equal(epoch(f->st), e);

    /* Another process (here: another store on the same directory) sees the same counter. */
    store_t *other = NULL;
    assert_int_equal(store_open(f->dir, NULL, &other, NULL), 0);
    assert_int_equal(epoch(other), e);
    assert_int_equal(store_connection_put(other, c, NULL), 0);
    assert_true(epoch(f->st) != e);
    assert_int_equal(epoch(f->st), epoch(other));
    connection_rec_free(get_conn(f->st, "c"));
    store_close(other);

    /* The integration catalog's epoch is its own. */
    int64_t cat = -1;
    assert_int_equal(store_catalog_epoch(f->st, &cat, NULL), 0);
    assert_int_equal(cat, 0);
    connection_rec_free(c);
}

/* ---- schema ---------------------------------------------------------------------------------- */

static void test_store_connections_migrate_from_v3(void **state)
{
    fx_t *f = *state;
    bool created = false;
    assert_int_equal(
        store_integration_publish(f->st, "kept", "{\"name\":\"kept\"}", NULL, NULL, &created, NULL),
        0);
    assert_true(created);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(user_version(f->dir), STORE_SCHEMA_NOW);

    /* Schema 3 is schema 4 without the three new tables. */
    char path[128];
    snprintf(path, sizeof path, "%s/braid.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE connectors; DROP TABLE connections;"
                                  " DROP TABLE counters; PRAGMA user_version=3;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(user_version(f->dir), 3);

    assert_int_equal(open_store(f), 0);
    assert_int_equal(user_version(f->dir), STORE_SCHEMA_NOW);
    integration_version_t *v = NULL;
    assert_int_equal(store_integration_get(f->st, "kept", 0, &v, NULL), 0);
    assert_string_equal(v->doc, "{\"name\":\"kept\"}");
    integration_version_free(v);
    assert_int_equal(epoch(f->st), 0);
    publish(f->st, "billing", "{\"v\":1}", 1, true);
    connection_rec_t *c = mk_conn("c", "billing", "u", "v1:A");
    assert_int_equal(store_connection_put(f->st, c, NULL), 0);
    int64_t e = epoch(f->st);
    assert_int_equal(e, 2);

    /* Close and reopen: nothing is migrated twice, everything is there. */
    reopen(f);
    assert_int_equal(user_version(f->dir), STORE_SCHEMA_NOW);
    assert_int_equal(epoch(f->st), e);
    connection_rec_t *got = get_conn(f->st, "c");
    assert_true(json_equal(got->config, c->config));
    connection_rec_free(got);
    publish(f->st, "billing", "{\"v\":1}", 1, false);

    /* A user_version set back by hand re-runs 3 -> 4 harmlessly (IF NOT EXISTS, OR IGNORE). */
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=3;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(open_store(f), 0);
    assert_int_equal(user_version(f->dir), STORE_SCHEMA_NOW);
    assert_int_equal(epoch(f->st), e);
    connection_rec_free(get_conn(f->st, "c"));
    connection_rec_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_connections_connector_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_connector_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_connector_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_connector_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_put_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_put_all_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_connections_migrate_from_v3, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
