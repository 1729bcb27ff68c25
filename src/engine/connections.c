/* connections.c - connections for the engine (SPEC §5): written with their secrets sealed and
 * read without them, opened for one task, and master key rotation. (Connector documents are
 * in connectors.c; the cache they share, eng->connectors, is set up here with the key.)
 *
 * Invariants: a secret's value is in clear only in the caller's body during
 * engine_connection_put, briefly in sodium memory inside secret_open / secret_seal, and in an
 * opened_connection_t until connection_close wipes it. No value ever goes into an err_t, a
 * log line or a returned object: errors name the connection and the secret, nothing more.
 * eng->connectors and eng->key are guarded by eng->conn_mu, and the key is used only with
 * conn_mu held, so a rotation can swap it under a running server's feet.
 */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "definition/connector.h"
#include "vault/secret.h"
#include "vault/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID_LEN 128

void connections_init(engine_t *eng)
{
    pthread_mutex_init(&eng->conn_mu, NULL);
    eng->connectors = strmap_new();
    eng->key = NULL;
}

static void free_connector(void *ctx, const char *key, void *value)
{
    (void)ctx, (void)key;
    connector_free(value);
}

void connections_deinit(engine_t *eng)
{
    strmap_each(eng->connectors, free_connector, NULL);
    strmap_free(eng->connectors);
    eng->connectors = NULL;
    secret_key_free(eng->key);
    eng->key = NULL;
    pthread_mutex_destroy(&eng->conn_mu);
}

static const char *data_dir(const engine_t *eng)
{
    return eng->cfg.data_dir && *eng->cfg.data_dir ? eng->cfg.data_dir : ".";
}

/* The master key, loaded on first use. Called with conn_mu held. 0 or the load's error. */
static int key_locked(engine_t *eng, err_t *err)
{
    if (eng->key)
        return 0;
    return secret_key_load(data_dir(eng), &eng->key, err);
}

/* Put the master key in force after a rotation: replaces the cached set. Called with conn_mu
 * held. KEY taken. */
static void key_replace_locked(engine_t *eng, secret_key_t *key)
{
    secret_key_free(eng->key);
    eng->key = key;
}

/* ---- connections: the public form ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The form a connection is shown in (returned owned): names and times of its secrets, never
 * their sealed text or values. REC borrowed. */
static json_t *public_form(const connection_rec_t *rec)
{
    size_t n = json_object_size(rec->secrets), i = 0;
    const char **names = xmalloc((n ? n : 1) * sizeof *names);
    const char *name;
    json_t *v;
    json_object_foreach(rec->secrets, name, v)
    {
        names[i++] = name;
    }
    qsort(names, n, sizeof *names, cmp_str);
    json_t *secrets = json_array();
    for (i = 0; i < n; i++) {
        json_t *entry = json_object_get(rec->secrets, names[i]);
        json_t *at = json_object_get(entry, "updated_at");
        json_array_append_new(
            secrets,
            json_pack("{s:s, s:o}", "name", names[i], "updated_at",
                      json_is_integer(at) ? jsonx_time(json_integer_value(at)) : json_null()));
    }
    free(names);
    return json_pack("{s:s, s:s, s:O, s:o, s:o, s:o}", "id", rec->id, "connector", rec->connector,
                     "config", rec->config ? rec->config : json_object(), "secrets", secrets,
                     "created_at", jsonx_time(rec->created_at), "updated_at",
                     jsonx_time(rec->updated_at));
}

/* ---- connections: writing -------------------------------------------------------------------- */

/* The body's shape: an object with "connector" (string), optional "config" (object or null),
 * optional "secrets" (object of string | null), optional "id" equal to ID, nothing else. */
static int check_body(const char *id, const json_t *body, err_t *err)
{
    if (!json_is_object(body))
        return err_set(err, BR_EINPUT_INVALID,
                       "a connection is a JSON object {\"connector\", \"config\", \"secrets\"}");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "connector") == 0) {
            if (!json_is_string(v))
                return err_set(err, BR_EINPUT_INVALID,
                               "\"connector\" must be the slug of a published connector");
        } else if (strcmp(key, "config") == 0) {
            if (!json_is_object(v) && !json_is_null(v))
                return err_set(err, BR_EINPUT_INVALID, "\"config\" must be an object");
        } else if (strcmp(key, "secrets") == 0) {
            if (!json_is_object(v) && !json_is_null(v))
                return err_set(err, BR_EINPUT_INVALID,
                               "\"secrets\" must be an object of secret name -> string, or null "
                               "to remove that secret");
        } else if (strcmp(key, "id") == 0) {
            if (!json_is_string(v) || strcmp(json_string_value(v), id) != 0)
                return err_set(err, BR_EINPUT_INVALID,
                               "\"id\" in the body must equal the connection id '%s'", id);
        } else {
            return err_set(err, BR_EINPUT_INVALID,
                           "unknown field '%.64s' in a connection (expected \"connector\", "
                           "\"config\", \"secrets\")",
                           key);
        }
    }
    if (!json_object_get(body, "connector"))
        return err_set(err, BR_EINPUT_INVALID,
                       "\"connector\" is required: the slug of a published connector");
    return 0;
}

/* Check SECRETS' names against C's declared secrets and their values' types. */
static int check_secrets(const connector_t *c, const json_t *secrets, err_t *err)
{
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)secrets, name, v)
    {
        if (!connector_has_secret(c, name)) {
            char declared[256] = "";
            for (int i = 0; i < c->n_secrets; i++)
                snprintf(declared + strlen(declared), sizeof declared - strlen(declared), "%s%s",
                         i ? ", " : "", c->secrets[i]);
            return err_set(err, BR_EINPUT_INVALID,
                           "connector '%s' declares no secret named '%.128s' (it declares: %s)",
                           c->slug, name, c->n_secrets ? declared : "none");
        }
        if (!json_is_string(v) && !json_is_null(v))
            return err_set(err, BR_EINPUT_INVALID,
                           "secret '%s' must be a string, or null to remove it", name);
    }
    return 0;
}

/* Create or replace connection ID from BODY. See engine.h for the semantics; in short: config
 * replaced when given (kept when absent and the connector is unchanged), named secrets set or
 * removed, unnamed ones kept while the connector stays the same. BODY borrowed: its secret
 * strings are the caller's to wipe. *OUT returned owned. Any thread. */
int engine_connection_put(engine_t *eng, const char *id, const json_t *body, bool *created,
                          json_t **out, err_t *err)
{
    *out = NULL;
    if (created)
        *created = false;
    if (!definition_connection_id_valid(id))
        return err_set(err, BR_EINPUT_INVALID,
                       "connection id '%.*s' is not valid: use letters, digits, '_', '.' and "
                       "'-', starting with a letter or digit, at most %d characters",
                       64, id, MAX_ID_LEN);
    int rc = check_body(id, body, err);
    if (rc < 0)
        return rc;
    const char *slug = json_string_value(json_object_get(body, "connector"));
    const json_t *config = json_object_get(body, "config");
    const json_t *secrets = json_object_get(body, "secrets");
    const connector_t *c = NULL;
    if ((rc = connectors_get(eng, slug, 0, &c, err)) < 0)
        return rc;
    if (json_is_object(secrets) && (rc = check_secrets(c, secrets, err)) < 0)
        return rc;

    connection_rec_t *old = NULL;
    err_t e = {0};
    rc = store_connection_get(eng->store, id, &old, &e);
    if (rc < 0 && rc != BR_ECONNECTION_NOT_FOUND) {
        err_move(err, &e);
        return rc;
    }
    err_clear(&e);
    bool same_connector = old && strcmp(old->connector, c->slug) == 0;

    connection_rec_t *rec = connection_rec_new();
    json_t *bound = NULL;
    if (json_is_object(config) || !same_connector) {
        /* Bound against the latest version; a connector task pinned to an older version sees
         * the same object, which is fine: config fields only ever gain defaults. */
        if (!(bound = connector_bind_config(c, json_is_object(config) ? config : NULL, err))) {
            rc = err && err->code ? err->code : BR_EINPUT_INVALID;
            goto out;
        }
    } else {
        bound = jsonx_copy(old->config ? old->config : json_object());
    }
    int64_t now = clock_now_ms();
    rec->id = xstrdup(id);
    rec->connector = xstrdup(c->slug);
    rec->config = bound;
    rec->secrets = same_connector && old->secrets ? jsonx_copy(old->secrets) : json_object();
    rec->created_at = old ? old->created_at : now;
    rec->updated_at = now;

    if (json_is_object(secrets)) {
        pthread_mutex_lock(&eng->conn_mu);
        if ((rc = key_locked(eng, err)) == 0) {
            const char *name;
            json_t *v;
            json_object_foreach((json_t *)secrets, name, v)
            {
                if (json_is_null(v)) {
                    json_object_del(rec->secrets, name);
                    continue;
                }
                char *sealed = NULL;
                if ((rc = secret_seal(eng->key, id, name,
                                      (const unsigned char *)json_string_value(v),
                                      json_string_length(v), &sealed, err)) < 0)
                    break;
                json_object_set_new(
                    rec->secrets, name,
                    json_pack("{s:s, s:I}", "sealed", sealed, "updated_at", (json_int_t)now));
                free(sealed); /* sealed text is safe to drop without a wipe */
            }
        }
        pthread_mutex_unlock(&eng->conn_mu);
        if (rc < 0)
            goto out;
    }
    if ((rc = store_connection_put(eng->store, rec, err)) < 0)
        goto out;
    if (created)
        *created = old == NULL;
    *out = public_form(rec);
out:
    connection_rec_free(rec);
    connection_rec_free(old);
    return rc;
}

/* Connection ID in its public form. See engine.h. Any thread. */
int engine_connection_get(engine_t *eng, const char *id, json_t **out, err_t *err)
{
    *out = NULL;
    connection_rec_t *rec = NULL;
    int rc = store_connection_get(eng->store, id, &rec, err);
    if (rc < 0)
        return rc;
    *out = public_form(rec);
    connection_rec_free(rec);
    return 0;
}

/* Every connection in its public form, by id. See engine.h. Any thread. */
int engine_connection_list(engine_t *eng, json_t **out, err_t *err)
{
    *out = NULL;
    connection_rec_t **recs = NULL;
    int n = 0;
    int rc = store_connection_list(eng->store, &recs, &n, err);
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, public_form(recs[i]));
    connection_recs_free(recs, n);
    *out = list;
    return 0;
}

/* Delete connection ID. BR_ECONNECTION_NOT_FOUND when there is none. Any thread. */
int engine_connection_delete(engine_t *eng, const char *id, err_t *err)
{
    return store_connection_delete(eng->store, id, err);
}

/* ---- opening --------------------------------------------------------------------------------- */

/* Open SEALED as secret NAME of connection ID into *OUT (a new JSON string). Called with
 * conn_mu held. When the value names a key version above ours, another process has rotated
 * the key since we loaded it: load it again and retry once. */
static int open_one_locked(engine_t *eng, const char *id, const char *name, const char *sealed,
                           json_t **out, err_t *err)
{
    unsigned char *plain = NULL;
    size_t len = 0;
    err_t e = {0};
    int rc = secret_open(eng->key, id, name, sealed, &plain, &len, &e);
    if (rc < 0 && secret_sealed_version(sealed) > secret_key_version(eng->key)) {
        secret_key_t *fresh = NULL;
        if (secret_key_load(data_dir(eng), &fresh, NULL) == 0) {
            key_replace_locked(eng, fresh);
            err_clear(&e);
            rc = secret_open(eng->key, id, name, sealed, &plain, &len, &e);
        }
    }
    if (rc < 0) {
        rc = err_set(err, BR_ESECRET_UNREADABLE, "%s", e.msg);
        err_clear(&e);
        return rc;
    }
    /* jansson copies the bytes into its own buffer, which connection_close wipes. */
    *out = json_stringn((const char *)plain, len);
    secret_plain_free(plain);
    if (!*out)
        return err_set(err, BR_ESECRET_UNREADABLE,
                       "secret '%s' of connection '%s' is not valid UTF-8 text", name, id);
    return 0;
}

/* Open connection ID for one task: *OUT gets its connector, config and decrypted secrets (all
 * owned by OUT; release with connection_close, which wipes the values). 0,
 * BR_ECONNECTION_NOT_FOUND, or BR_ESECRET_UNREADABLE naming the connection and the secret.
 * On failure OUT holds nothing. Any thread. */
int connection_open(engine_t *eng, const char *id, opened_connection_t *out, err_t *err)
{
    memset(out, 0, sizeof *out);
    connection_rec_t *rec = NULL;
    int rc = store_connection_get(eng->store, id, &rec, err);
    if (rc < 0)
        return rc;
    out->connector = xstrdup(rec->connector);
    out->conn = rec->config ? json_incref(rec->config) : json_object();
    out->secret = json_object();
    if (json_object_size(rec->secrets)) {
        pthread_mutex_lock(&eng->conn_mu);
        err_t e = {0};
        if ((rc = key_locked(eng, &e)) < 0) {
            rc = err_set(err, BR_ESECRET_UNREADABLE,
                         "the secrets of connection '%s' cannot be opened: %s", id, e.msg);
            err_clear(&e);
        }
        const char *name;
        json_t *v;
        json_object_foreach(rec->secrets, name, v)
        {
            if (rc < 0)
                break;
            const char *sealed = json_string_value(json_object_get(v, "sealed"));
            json_t *value = NULL;
            if (!sealed)
                rc =
                    err_set(err, BR_ESECRET_UNREADABLE,
                            "secret '%s' of connection '%s' is damaged: no sealed value", name, id);
            else if ((rc = open_one_locked(eng, id, name, sealed, &value, err)) == 0)
                json_object_set_new(out->secret, name, value);
        }
        pthread_mutex_unlock(&eng->conn_mu);
    }
    connection_rec_free(rec);
    if (rc < 0)
        connection_close(out);
    return rc;
}

/* Wipe every secret value of OC in place, then release OC's members (NULL-safe each). The
 * values' buffers belong to jansson, which frees without clearing: overwrite them first. */
void connection_close(opened_connection_t *oc)
{
    if (!oc)
        return;
    if (oc->secret) {
        const char *name;
        json_t *v;
        json_object_foreach(oc->secret, name, v)
        {
            if (json_is_string(v))
                vault_wipe((char *)json_string_value(v), json_string_length(v));
        }
    }
    json_decref(oc->secret);
    json_decref(oc->conn);
    free(oc->connector);
    memset(oc, 0, sizeof *oc);
}

/* ---- key rotation ---------------------------------------------------------------------------- */

/* Re-seal every secret of RECS (N records, changed in place) from OPENER to SEALER; *COUNT
 * counts them. The first secret that fails to open aborts with BR_ESECRET_UNREADABLE. */
static int reseal_all(connection_rec_t **recs, int n, const secret_key_t *opener,
                      const secret_key_t *sealer, int *count, err_t *err)
{
    for (int i = 0; i < n; i++) {
        const char *name;
        json_t *v;
        json_object_foreach(recs[i]->secrets, name, v)
        {
            const char *sealed = json_string_value(json_object_get(v, "sealed"));
            unsigned char *plain = NULL;
            size_t len = 0;
            err_t e = {0};
            if (!sealed || secret_open(opener, recs[i]->id, name, sealed, &plain, &len, &e) < 0) {
                int rc = err_set(err, BR_ESECRET_UNREADABLE,
                                 "%s; nothing was changed, the key is the same as before",
                                 sealed ? e.msg : "a secret has no sealed value");
                err_clear(&e);
                return rc;
            }
            char *resealed = NULL;
            int rc = secret_seal(sealer, recs[i]->id, name, plain, len, &resealed, err);
            secret_plain_free(plain);
            if (rc < 0)
                return rc;
            /* The value did not change, so its updated_at stays. */
            json_object_set_new(v, "sealed", json_string(resealed));
            free(resealed);
            (*count)++;
        }
    }
    return 0;
}

/* Whether every secret in the store is sealed under VERSION: no other process sealed one
 * under the old key while the rotation ran. */
static bool all_sealed_under(engine_t *eng, int version)
{
    connection_rec_t **recs = NULL;
    int n = 0;
    if (store_connection_list(eng->store, &recs, &n, NULL) < 0)
        return false;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const char *name;
        json_t *v;
        json_object_foreach(recs[i]->secrets, name, v)
        {
            if (secret_sealed_version(json_string_value(json_object_get(v, "sealed"))) != version)
                ok = false;
        }
    }
    connection_recs_free(recs, n);
    return ok;
}

/* Re-seal every connection's secrets under a new master key. *COUNT: secrets re-sealed.
 *
 * Key file (DATA/master.key): a new random key one version up is made in memory; every secret
 * is opened and re-sealed under it in memory (one that fails to open aborts, nothing changed);
 * the file is rewritten holding old and new keys; all connections are replaced in one store
 * transaction; then the file is rewritten with the new key alone. A crash at any point leaves
 * a file that opens every stored value. When another process sealed a value under the old key
 * meanwhile, the old key stays in the file (logged) rather than lose that value.
 *
 * BRAID_MASTER_KEY: the new key must come in BRAID_NEW_MASTER_KEY; values are opened with the
 * old key and sealed with the new one (both are version 1); the operator then sets
 * BRAID_MASTER_KEY to the new value. Without it: BR_EUSAGE.
 *
 * Other processes should not change connections while this runs: a connection written
 * between the read and the transaction is overwritten. Any thread. */
int engine_keys_rotate(engine_t *eng, int *count, err_t *err)
{
    *count = 0;
    const char *dir = data_dir(eng);
    const char *env = getenv(SECRET_KEY_ENV);
    const char *new_env = getenv(SECRET_NEW_KEY_ENV);
    if (env && !new_env)
        return err_set(err, BR_EUSAGE,
                       "the master key comes from %s, so braid cannot make the new one: put a "
                       "new key (base64 of 32 random bytes, e.g. `head -c 32 /dev/urandom | "
                       "base64`) in %s and rotate again",
                       SECRET_KEY_ENV, SECRET_NEW_KEY_ENV);
    if (!env && new_env)
        return err_set(err, BR_EUSAGE,
                       "%s is set but %s is not: the master key lives in %s/%s, and rotating "
                       "it makes the new key there; unset %s",
                       SECRET_NEW_KEY_ENV, SECRET_KEY_ENV, dir, SECRET_KEY_FILE,
                       SECRET_NEW_KEY_ENV);

    secret_key_t *old = NULL, *next = NULL, *final = NULL;
    connection_rec_t **recs = NULL;
    int n = 0, resealed = 0;
    pthread_mutex_lock(&eng->conn_mu);
    /* From the source, not the cache: another process may have rotated since. */
    int rc = secret_key_load(dir, &old, err);
    if (rc < 0)
        goto out;
    rc = env ? secret_key_from_base64(new_env, SECRET_NEW_KEY_ENV, &next, err)
             : secret_key_next(old, &next, err);
    if (rc < 0)
        goto out;
    if ((rc = store_connection_list(eng->store, &recs, &n, err)) < 0)
        goto out;
    if ((rc = reseal_all(recs, n, old, next, &resealed, err)) < 0)
        goto out;
    if (!env && (rc = secret_key_save(dir, next, err)) < 0)
        goto out;
    if ((rc = store_connection_put_all(eng->store, recs, n, err)) < 0) {
        if (!env) { /* the file holds both keys now: use them both */
            key_replace_locked(eng, next);
            next = NULL;
        }
        goto out;
    }
    *count = resealed;
    if (env) {
        key_replace_locked(eng, next);
        next = NULL;
        goto out;
    }
    int version = secret_key_version(next);
    if (!all_sealed_under(eng, version)) {
        log_msg(LOG_WARN,
                "key rotation: a connection was written under the old key while it ran; %s "
                "keeps both keys (rotate again to drop the old one)",
                SECRET_KEY_FILE);
        key_replace_locked(eng, next);
        next = NULL;
        goto out;
    }
    err_t e = {0};
    if (secret_key_current_only(next, &final, &e) < 0 || secret_key_save(dir, final, &e) < 0) {
        /* Everything is re-sealed and the file holds both keys: rotated, with the old key
         * still listed. Not a failure. */
        log_msg(LOG_WARN, "key rotation: cannot drop the old key from %s: %s", SECRET_KEY_FILE,
                e.msg);
        err_clear(&e);
        secret_key_free(final);
        key_replace_locked(eng, next);
        next = NULL;
        goto out;
    }
    key_replace_locked(eng, final);
out:
    pthread_mutex_unlock(&eng->conn_mu);
    connection_recs_free(recs, n);
    secret_key_free(next);
    secret_key_free(old);
    return rc;
}
