/* test_connections.c - connectors and connections in the engine, on a real SQLite store and a
 * key file in a temp dir: publishing and caching connectors, connection writes (config and
 * secret semantics, refusals that never echo a value), opening (values decrypted, tampering
 * and swapped values refused as secret_unreadable), and master key rotation in file and
 * environment mode, including a rotation interrupted after the key was added.
 */
#include "engine/engine_internal.h"

#include "definition/connector.h"
#include "store/store.h"
#include "vault/secret.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmp_engine.h"

/* base64 of 32 bytes 0x00..0x1f, and of 32 bytes 0x01. */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

#define BILLING                                                                                    \
    "{\"slug\": \"billing\", \"base_url\": \"{{conn.base_url}}\","                                 \
    " \"config\": {\"base_url\": {\"type\": \"string\", \"required\": true}},"                     \
    " \"secrets\": [\"api_key\", \"webhook_secret\"],"                                             \
    " \"auth\": {\"type\": \"bearer\", \"token\": \"{{secret.api_key}}\"},"                        \
    " \"operations\": {\"create_invoice\": {\"method\": \"POST\", \"path\": \"/invoices\","        \
    " \"inputs\": {\"lines\": {\"type\": \"array\", \"required\": true}},"                         \
    " \"body\": {\"lines\": \"{{input.lines}}\"},"                                                 \
    " \"outputs\": {\"invoice_id\": \"body.id\", \"total\": \"body.total\"}}}}"

#define MAILER                                                                                     \
    "{\"slug\": \"mailer\", \"base_url\": \"https://mail.example.com\", \"secrets\": [\"token\"]," \
    " \"operations\": {\"send\": {\"method\": \"POST\", \"path\": \"/send\"}}}"

typedef engine_fx_t fixture_t;

/* A new engine over F's store and directory into *ENG. */
static void engine_up_into(fixture_t *f, engine_t **eng)
{
    engine_config_t cfg;
    engine_config_defaults(&cfg);
    cfg.data_dir = f->dir;
    err_t err = {0};
    if (engine_new(&cfg, f->st, eng, &err) < 0)
        fail_msg("engine_new: %s", err.msg);
}

static void engine_up(fixture_t *f)
{
    engine_up_into(f, &f->eng);
}

/* A fresh engine over the same store: forgets the cached key and connectors. */
static void engine_restart(fixture_t *f)
{
    engine_free(f->eng);
    engine_up(f);
}

static int setup(void **state)
{
    unsetenv(SECRET_KEY_ENV);
    unsetenv(SECRET_NEW_KEY_ENV);
    fixture_t *f = engine_fx_new("/tmp/braid-test-conn-XXXXXX");
    engine_up(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    engine_fx_free(*state);
    unsetenv(SECRET_KEY_ENV);
    unsetenv(SECRET_NEW_KEY_ENV);
    return 0;
}

static void publish_connector(fixture_t *f, const char *text, int want_version)
{
    json_t *res = NULL;
    diags_t diags = {0};
    err_t err = {0};
    expect_published(engine_connector_publish(f->eng, text, strlen(text), NULL, &res, &diags, &err),
                     &diags, &err);
    assert_int_equal(json_integer_value(json_object_get(res, "version")), want_version);
    json_decref(res);
}

/* PUT connection ID with BODY (JSON text); returns the code, ERR filled. */
static int put(fixture_t *f, const char *id, const char *body, err_t *err)
{
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    json_t *out = NULL;
    bool created;
    int rc = engine_connection_put(f->eng, id, b, &created, &out, err);
    if (rc == 0) {
        char *text = json_dumps(out, 0);
        /* The public form never holds a value or sealed text. */
        assert_null(strstr(text, "s3cr3t"));
        assert_null(strstr(text, "\"v1:"));
        free(text);
    }
    json_decref(out);
    json_decref(b);
    return rc;
}

static void put_ok(fixture_t *f, const char *id, const char *body)
{
    err_t err = {0};
    if (put(f, id, body, &err) < 0)
        fail_msg("put %s: %s", id, err.msg);
}

/* PUT connection ID of BILLING with base_url "u" and, unless NULL, SECRETS (a JSON object). */
static void put_billing(fixture_t *f, const char *id, const char *secrets)
{
    char *body = xasprintf("{\"connector\": \"billing\", \"config\": {\"base_url\": \"u\"}%s%s}",
                           secrets ? ", \"secrets\": " : "", secrets ? secrets : "");
    put_ok(f, id, body);
    free(body);
}

/* The path of F's key file into PATH (128 bytes). */
static void key_file_path(fixture_t *f, char path[128])
{
    snprintf(path, 128, "%s/%s", f->dir, SECRET_KEY_FILE);
}

/* The key file exists, readable by its owner only. */
static void assert_key_file_private(fixture_t *f)
{
    char path[128];
    key_file_path(f, path);
    struct stat stt;
    assert_int_equal(stat(path, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0600);
}

/* The value of secret NAME of connection ID, opened (returned owned), or NULL when absent. */
static char *open_secret(fixture_t *f, const char *id, const char *name)
{
    opened_connection_t oc;
    err_t err = {0};
    if (connection_open(f->eng, id, &oc, &err) < 0)
        fail_msg("open %s: %s", id, err.msg);
    const char *v = json_string_value(json_object_get(oc.secret, name));
    char *copy = v ? strdup(v) : NULL;
    connection_close(&oc);
    return copy;
}

static void assert_secret(fixture_t *f, const char *id, const char *name, const char *want)
{
    char *got = open_secret(f, id, name);
    if (want) {
        assert_non_null(got);
        assert_string_equal(got, want);
    } else {
        assert_null(got);
    }
    free(got);
}

static char *read_key_file(fixture_t *f)
{
    char path[128];
    key_file_path(f, path);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return strdup(buf);
}

/* Number of key lines ("VERSION KEY") in the key file. */
static int key_lines(fixture_t *f, int *first_version)
{
    char *text = read_key_file(f);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#') {
            if (n++ == 0 && first_version)
                *first_version = atoi(line);
        }
    free(text);
    return n;
}

/* Change the sealed text of secret NAME of connection ID in the store with FN. */
static void tamper(fixture_t *f, const char *id, const char *name, const char *replacement)
{
    connection_rec_t *rec = NULL;
    assert_int_equal(store_connection_get(f->st, id, &rec, NULL), 0);
    json_t *s = json_object_get(rec->secrets, name);
    assert_non_null(s);
    if (replacement) {
        json_object_set_new(s, "sealed", json_string(replacement));
    } else {
        char *sealed = strdup(json_string_value(json_object_get(s, "sealed")));
        size_t at = strlen(sealed) / 2;
        sealed[at] = sealed[at] == 'A' ? 'B' : 'A';
        json_object_set_new(s, "sealed", json_string(sealed));
        free(sealed);
    }
    assert_int_equal(store_connection_put(f->st, rec, NULL), 0);
    connection_rec_free(rec);
}

static char *sealed_of(fixture_t *f, const char *id, const char *name)
{
    connection_rec_t *rec = NULL;
    assert_int_equal(store_connection_get(f->st, id, &rec, NULL), 0);
    char *s =
        strdup(json_string_value(json_object_get(json_object_get(rec->secrets, name), "sealed")));
    connection_rec_free(rec);
    return s;
}

/* ---- connectors ---------------------------------------------------------------------------- */

static void test_connections_connector_publish_and_cache(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    publish_connector(f, BILLING, 1); /* unchanged */
    const connector_t *c1 = NULL, *c2 = NULL;
    assert_int_equal(connectors_get(f->eng, "billing", 0, &c1, NULL), 0);
    assert_int_equal(c1->version, 1);
    assert_int_equal(connectors_get(f->eng, "billing", 1, &c2, NULL), 0);
    assert_ptr_equal(c1, c2);
    publish_connector(f, MAILER, 1);
    const char *v2 = "{\"slug\": \"mailer\", \"base_url\": \"https://mail2.example.com\","
                     " \"secrets\": [\"token\"], \"operations\": {\"send\": {\"method\": \"POST\","
                     " \"path\": \"/send\"}}}";
    publish_connector(f, v2, 2);
    assert_int_equal(connectors_get(f->eng, "mailer", 0, &c1, NULL), 0);
    assert_int_equal(c1->version, 2);
    err_t err = {0};
    assert_int_equal(connectors_get(f->eng, "nope", 0, &c1, &err), BR_ENOT_FOUND);
    assert_string_equal(err.msg, "connector 'nope' is not published");
    assert_int_equal(connectors_get(f->eng, "mailer", 7, &c1, &err), BR_EVERSION_NOT_FOUND);

    json_t *doc = NULL;
    int version = 0;
    assert_int_equal(engine_connector_get(f->eng, "billing", 0, &doc, &version, NULL), 0);
    assert_int_equal(version, 1);
    assert_string_equal(json_string_value(json_object_get(doc, "slug")), "billing");
    json_decref(doc);
    json_t *list = NULL;
    assert_int_equal(engine_connector_list(f->eng, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
}

/* ---- writing --------------------------------------------------------------------------------- */

static void test_connections_put_semantics(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    publish_connector(f, MAILER, 1);
    put_ok(f, "billing-prod",
           "{\"connector\": \"billing\", \"config\": {\"base_url\": \"https://b.example.com\"},"
           " \"secrets\": {\"api_key\": \"s3cr3t-1\", \"webhook_secret\": \"s3cr3t-w\"}}");
    assert_secret(f, "billing-prod", "api_key", "s3cr3t-1");
    assert_secret(f, "billing-prod", "webhook_secret", "s3cr3t-w");

    /* The key file was made on first use, mode 0600. */
    assert_key_file_private(f);

    /* Named: set; unnamed: kept; config absent: kept. */
    put_ok(f, "billing-prod",
           "{\"connector\": \"billing\", \"secrets\": {\"api_key\": \"s3cr3t-2\"}}");
    assert_secret(f, "billing-prod", "api_key", "s3cr3t-2");
    assert_secret(f, "billing-prod", "webhook_secret", "s3cr3t-w");
    json_t *pub = NULL;
    assert_int_equal(engine_connection_get(f->eng, "billing-prod", &pub, NULL), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(pub, "config"), "base_url")),
        "https://b.example.com");
    json_t *secrets = json_object_get(pub, "secrets");
    assert_int_equal(json_array_size(secrets), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(secrets, 0), "name")),
                        "api_key");
    assert_non_null(json_string_value(json_object_get(json_array_get(secrets, 0), "updated_at")));
    json_decref(pub);

    /* null removes. */
    put_ok(f, "billing-prod",
           "{\"connector\": \"billing\", \"secrets\": {\"webhook_secret\": null}}");
    assert_secret(f, "billing-prod", "webhook_secret", NULL);
    assert_secret(f, "billing-prod", "api_key", "s3cr3t-2");

    /* Config given replaces it whole and is checked. */
    err_t err = {0};
    assert_int_equal(put(f, "billing-prod", "{\"connector\": \"billing\", \"config\": {}}", &err),
                     BR_EINPUT_INVALID);
    err_clear(&err);

    /* Another connector: the old secrets go. */
    put_ok(f, "billing-prod",
           "{\"connector\": \"mailer\", \"secrets\": {\"token\": \"s3cr3t-t\"}}");
    assert_secret(f, "billing-prod", "api_key", NULL);
    assert_secret(f, "billing-prod", "token", "s3cr3t-t");

    json_t *list = NULL;
    put_ok(f, "a-first", "{\"connector\": \"mailer\"}");
    assert_int_equal(engine_connection_list(f->eng, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")),
                        "a-first");
    json_decref(list);
    assert_int_equal(engine_connection_delete(f->eng, "a-first", NULL), 0);
    assert_int_equal(engine_connection_delete(f->eng, "a-first", NULL), BR_ECONNECTION_NOT_FOUND);
    opened_connection_t oc;
    assert_int_equal(connection_open(f->eng, "a-first", &oc, NULL), BR_ECONNECTION_NOT_FOUND);
}

static void test_connections_put_refusals(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    err_t err = {0};
    assert_int_equal(put(f, "x", "{\"connector\": \"nope\"}", &err), BR_ENOT_FOUND);
    assert_string_equal(err.msg, "connector 'nope' is not published");
    err_clear(&err);

    assert_int_equal(put(f, "x",
                         "{\"connector\": \"billing\", \"config\": {\"base_url\": \"u\"},"
                         " \"secrets\": {\"password\": \"s3cr3t-zz\"}}",
                         &err),
                     BR_EINPUT_INVALID);
    assert_non_null(strstr(err.msg, "'password'"));
    assert_null(strstr(err.msg, "s3cr3t"));
    err_clear(&err);

    assert_int_equal(put(f, "x",
                         "{\"connector\": \"billing\", \"config\": {\"base_url\": \"u\"},"
                         " \"secrets\": {\"api_key\": 42}}",
                         &err),
                     BR_EINPUT_INVALID);
    err_clear(&err);

    const char *bad_ids[] = {"", "-lead", "has space", "semi;colon", "é", NULL};
    for (int i = 0; bad_ids[i]; i++) {
        assert_int_equal(put(f, bad_ids[i], "{\"connector\": \"billing\"}", &err),
                         BR_EINPUT_INVALID);
        assert_non_null(strstr(err.msg, "is not valid"));
        err_clear(&err);
    }
    char long_id[200];
    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    assert_int_equal(put(f, long_id, "{\"connector\": \"billing\"}", &err), BR_EINPUT_INVALID);
    err_clear(&err);
    long_id[128] = '\0';
    put_ok(f, long_id, "{\"connector\": \"billing\", \"config\": {\"base_url\": \"u\"}}");

    assert_int_equal(put(f, "x", "{\"connector\": \"billing\", \"extra\": 1}", &err),
                     BR_EINPUT_INVALID);
    err_clear(&err);
    assert_int_equal(put(f, "x", "{\"config\": {}}", &err), BR_EINPUT_INVALID);
    err_clear(&err);
}

/* ---- opening ----------------------------------------------------------------------------------
 */

static void test_connections_tamper_is_unreadable(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    put_billing(f, "one", "{\"api_key\": \"s3cr3t-1\"}");
    put_billing(f, "two", "{\"api_key\": \"s3cr3t-2\", \"webhook_secret\": \"s3cr3t-w\"}");

    /* A byte changed. */
    tamper(f, "one", "api_key", NULL);
    opened_connection_t oc;
    err_t err = {0};
    assert_int_equal(connection_open(f->eng, "one", &oc, &err), BR_ESECRET_UNREADABLE);
    assert_non_null(strstr(err.msg, "'api_key'"));
    assert_non_null(strstr(err.msg, "'one'"));
    assert_null(strstr(err.msg, "s3cr3t"));
    assert_null(oc.secret);
    err_clear(&err);

    /* A value moved to another connection or another name does not open there. */
    char *moved = sealed_of(f, "two", "api_key");
    tamper(f, "one", "api_key", moved);
    assert_int_equal(connection_open(f->eng, "one", &oc, &err), BR_ESECRET_UNREADABLE);
    err_clear(&err);
    tamper(f, "two", "webhook_secret", moved);
    assert_int_equal(connection_open(f->eng, "two", &oc, &err), BR_ESECRET_UNREADABLE);
    assert_non_null(strstr(err.msg, "'webhook_secret'"));
    err_clear(&err);
    free(moved);

    /* A rotation refuses to run over an unreadable value, changing nothing. */
    char *before = read_key_file(f);
    char *sealed_before = sealed_of(f, "two", "api_key");
    int count = -1;
    assert_int_equal(engine_keys_rotate(f->eng, &count, &err), BR_ESECRET_UNREADABLE);
    assert_int_equal(count, 0);
    assert_non_null(strstr(err.msg, "nothing was changed"));
    err_clear(&err);
    char *after = read_key_file(f);
    assert_string_equal(before, after);
    char *sealed_after = sealed_of(f, "two", "api_key");
    assert_string_equal(sealed_before, sealed_after);
    free(before);
    free(after);
    free(sealed_before);
    free(sealed_after);
}

/* ---- rotation ----------------------------------------------------------------------------------
 */

static void test_connections_rotate_key_file(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    put_billing(f, "one", "{\"api_key\": \"s3cr3t-1\", \"webhook_secret\": \"s3cr3t-w\"}");
    put_billing(f, "two", "{\"api_key\": \"s3cr3t-2\"}");
    put_billing(f, "none", NULL);
    int version = 0;
    assert_int_equal(key_lines(f, &version), 1);
    assert_int_equal(version, 1);

    int count = 0;
    err_t err = {0};
    if (engine_keys_rotate(f->eng, &count, &err) < 0)
        fail_msg("rotate: %s", err.msg);
    assert_int_equal(count, 3);
    assert_int_equal(key_lines(f, &version), 1);
    assert_int_equal(version, 2);
    char *sealed = sealed_of(f, "one", "api_key");
    assert_int_equal(secret_sealed_version(sealed), 2);
    free(sealed);
    assert_secret(f, "one", "api_key", "s3cr3t-1");
    assert_secret(f, "one", "webhook_secret", "s3cr3t-w");
    engine_restart(f); /* from the file, not the cache */
    assert_secret(f, "two", "api_key", "s3cr3t-2");
    put_ok(f, "two",
           "{\"connector\": \"billing\", \"secrets\": {\"webhook_secret\": \"s3cr3t-3\"}}");
    assert_secret(f, "two", "webhook_secret", "s3cr3t-3");
    assert_key_file_private(f);
}

/* A rotation that died after adding the new key to the file (before the store changed) leaves
 * every value openable, and the next rotation finishes the job. */
static void test_connections_rotate_interrupted(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    put_billing(f, "one", "{\"api_key\": \"s3cr3t-1\"}");
    secret_key_t *k = NULL, *next = NULL;
    assert_int_equal(secret_key_load(f->dir, &k, NULL), 0);
    assert_int_equal(secret_key_next(k, &next, NULL), 0);
    assert_int_equal(secret_key_save(f->dir, next, NULL), 0);
    secret_key_free(k);
    secret_key_free(next);
    assert_int_equal(key_lines(f, NULL), 2);

    engine_restart(f);
    assert_secret(f, "one", "api_key", "s3cr3t-1"); /* v1 value, v1+v2 file */
    put_billing(f, "two", "{\"api_key\": \"s3cr3t-2\"}");
    char *sealed = sealed_of(f, "two", "api_key");
    assert_int_equal(secret_sealed_version(sealed), 2);
    free(sealed);

    int count = 0;
    assert_int_equal(engine_keys_rotate(f->eng, &count, NULL), 0);
    assert_int_equal(count, 2);
    int version = 0;
    assert_int_equal(key_lines(f, &version), 1);
    assert_int_equal(version, 3);
    engine_restart(f);
    assert_secret(f, "one", "api_key", "s3cr3t-1");
    assert_secret(f, "two", "api_key", "s3cr3t-2");
}

/* Another process rotated: our cached key lacks the new version; opening loads it again. */
static void test_connections_rotated_elsewhere(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    put_billing(f, "one", "{\"api_key\": \"s3cr3t-1\"}");
    assert_secret(f, "one", "api_key", "s3cr3t-1"); /* caches key v1 */
    engine_t *other = NULL;
    engine_up_into(f, &other);
    int count = 0;
    assert_int_equal(engine_keys_rotate(other, &count, NULL), 0);
    engine_free(other);
    assert_secret(f, "one", "api_key", "s3cr3t-1");
}

static void test_connections_rotate_env(void **state)
{
    fixture_t *f = *state;
    setenv(SECRET_KEY_ENV, KEY_A, 1);
    engine_restart(f);
    publish_connector(f, BILLING, 1);
    put_billing(f, "one", "{\"api_key\": \"s3cr3t-1\"}");
    /* No key file in env mode. */
    char path[128];
    key_file_path(f, path);
    assert_int_not_equal(access(path, F_OK), 0);

    int count = 0;
    err_t err = {0};
    assert_int_equal(engine_keys_rotate(f->eng, &count, &err), BR_EUSAGE);
    assert_non_null(strstr(err.msg, SECRET_NEW_KEY_ENV));
    err_clear(&err);

    setenv(SECRET_NEW_KEY_ENV, "not base64!", 1);
    assert_int_equal(engine_keys_rotate(f->eng, &count, &err), BR_EINPUT_INVALID);
    err_clear(&err);

    setenv(SECRET_NEW_KEY_ENV, KEY_B, 1);
    if (engine_keys_rotate(f->eng, &count, &err) < 0)
        fail_msg("rotate: %s", err.msg);
    assert_int_equal(count, 1);
    unsetenv(SECRET_NEW_KEY_ENV);

    /* The old key opens nothing now; the new one does. */
    engine_restart(f);
    opened_connection_t oc;
    assert_int_equal(connection_open(f->eng, "one", &oc, &err), BR_ESECRET_UNREADABLE);
    err_clear(&err);
    setenv(SECRET_KEY_ENV, KEY_B, 1);
    engine_restart(f);
    assert_secret(f, "one", "api_key", "s3cr3t-1");

    /* BRAID_NEW_MASTER_KEY without BRAID_MASTER_KEY is refused. */
    unsetenv(SECRET_KEY_ENV);
    setenv(SECRET_NEW_KEY_ENV, KEY_B, 1);
    assert_int_equal(engine_keys_rotate(f->eng, &count, &err), BR_EUSAGE);
    err_clear(&err);
}

/* ---- the publish-time resolver ----------------------------------------------------------------
 */

static void test_connections_publish_resolves_connectors(void **state)
{
    fixture_t *f = *state;
    publish_connector(f, BILLING, 1);
    publish_connector(f, MAILER, 1);
    put_ok(f, "billing-prod", "{\"connector\": \"billing\", \"config\": {\"base_url\": \"u\"}}");
    const char *good =
        "{\"name\": \"invoice\", \"tasks\": [{\"id\": \"c\", \"type\": \"connector\","
        " \"connector\": \"billing\", \"operation\": \"create_invoice\","
        " \"connection\": \"billing-prod\", \"input\": {\"lines\": []}}]}";
    diags_t diags = {0};
    assert_int_equal(engine_validate(f->eng, good, strlen(good), &diags), 0);
    diags_deinit(&diags);

    /* The connection belongs to another connector. */
    const char *wrong =
        "{\"name\": \"invoice\", \"tasks\": [{\"id\": \"c\", \"type\": \"connector\","
        " \"connector\": \"mailer\", \"operation\": \"send\","
        " \"connection\": \"billing-prod\"}]}";
    assert_int_not_equal(engine_validate(f->eng, wrong, strlen(wrong), &diags), 0);
    assert_true(diags.n > 0);
    diags_deinit(&diags);

    /* An unknown connector. */
    const char *unknown =
        "{\"name\": \"invoice\", \"tasks\": [{\"id\": \"c\", \"type\": \"connector\","
        " \"connector\": \"nope\", \"operation\": \"send\", \"connection\": \"billing-prod\"}]}";
    assert_int_not_equal(engine_validate(f->eng, unknown, strlen(unknown), &diags), 0);
    diags_deinit(&diags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connections_connector_publish_and_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connections_put_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_put_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_tamper_is_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_rotate_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_rotate_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_rotated_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_rotate_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_publish_resolves_connectors, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
