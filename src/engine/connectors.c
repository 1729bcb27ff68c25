/* connectors.c - connector documents for the engine (SPEC §5): publishing, reading, and the
 * compiled connectors tasks use, cached by version in eng->connectors (under eng->conn_mu;
 * connections.c sets both up). A version never changes, so a cached compile stays right. */
#include "engine/engine_internal.h"

#include "core/jsonx.h"
#include "definition/connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLUG_LEN 128

/* Turn the store's answer for a missing connector into the message users see. */
static int connector_missing(int rc, const char *slug, int version, err_t *err)
{
    if (rc == BR_ENOT_FOUND)
        return err_set(err, rc, "connector '%s' is not published", slug);
    if (rc == BR_EVERSION_NOT_FOUND)
        return err_set(err, rc, "connector '%s' has no version %d", slug, version);
    return rc;
}

static int compile_stored(engine_t *eng, const integration_version_t *iv, connector_t **out,
                          err_t *err)
{
    json_t *doc = jsonx_parse(iv->doc, strlen(iv->doc), NULL, NULL);
    if (!doc)
        return err_set(err, BR_EINTERNAL, "stored connector %s v%d does not parse", iv->name,
                       iv->version);
    diags_t diags = {0};
    int rc = connector_compile(doc, &eng->cfg.def_limits, out, &diags);
    if (rc < 0)
        rc = err_set(err, BR_EINTERNAL, "stored connector %s v%d no longer compiles: %s", iv->name,
                     iv->version, diags.n ? diags.items[0].message : "?");
    else
        (*out)->version = iv->version;
    diags_deinit(&diags);
    json_decref(doc);
    return rc;
}

/* Keep C (taken) in the cache unless a racing thread put the same version there first; returns
 * the cached one. Versions never change, so either copy is right. */
static const connector_t *cache_put(engine_t *eng, connector_t *c)
{
    char key[MAX_SLUG_LEN + 16];
    snprintf(key, sizeof key, "%s@%d", c->slug, c->version);
    pthread_mutex_lock(&eng->conn_mu);
    connector_t *have = strmap_get(eng->connectors, key);
    if (have)
        connector_free(c);
    else
        strmap_put(eng->connectors, key, have = c);
    pthread_mutex_unlock(&eng->conn_mu);
    return have;
}

/* The compiled connector SLUG at VERSION (0 = latest), borrowed for the engine's life. The
 * latest version's number is asked of the store on every call (one indexed read), so a
 * publish by another process is seen at once; the compiled form comes from the cache. 0,
 * BR_ENOT_FOUND or BR_EVERSION_NOT_FOUND (ERR says which connector). Any thread. */
int connectors_get(engine_t *eng, const char *slug, int version, const connector_t **out,
                   err_t *err)
{
    *out = NULL;
    if (strlen(slug) > MAX_SLUG_LEN)
        return err_set(err, BR_ENOT_FOUND, "connector '%.64s...' is not published", slug);
    integration_version_t *iv = NULL;
    int rc;
    if (version == 0) {
        err_t e = {0};
        if ((rc = store_connector_get(eng->store, slug, 0, &iv, &e)) < 0) {
            rc =
                rc == BR_ENOT_FOUND ? connector_missing(rc, slug, 0, err) : (err_move(err, &e), rc);
            err_clear(&e);
            return rc;
        }
        version = iv->version;
    }
    char key[MAX_SLUG_LEN + 16];
    snprintf(key, sizeof key, "%s@%d", slug, version);
    pthread_mutex_lock(&eng->conn_mu);
    const connector_t *c = strmap_get(eng->connectors, key);
    pthread_mutex_unlock(&eng->conn_mu);
    if (c) {
        integration_version_free(iv);
        *out = c;
        return 0;
    }
    if (!iv) {
        err_t e = {0};
        if ((rc = store_connector_get(eng->store, slug, version, &iv, &e)) < 0) {
            rc = rc == BR_ENOT_FOUND || rc == BR_EVERSION_NOT_FOUND
                     ? connector_missing(rc, slug, version, err)
                     : (err_move(err, &e), rc);
            err_clear(&e);
            return rc;
        }
    }
    connector_t *compiled = NULL;
    rc = compile_stored(eng, iv, &compiled, err);
    integration_version_free(iv);
    if (rc < 0)
        return rc;
    *out = cache_put(eng, compiled);
    return 0;
}

/* Validate TEXT as a connector and publish it. See engine.h. Any thread. */
int engine_connector_publish(engine_t *eng, const char *text, size_t len, const char *slug_hint,
                             json_t **result, diags_t *diags, err_t *err)
{
    *result = NULL;
    connector_t *c = NULL;
    int rc = connector_load(text, len, slug_hint, &eng->cfg.def_limits, &c, diags);
    if (rc < 0)
        return err_set(err, BR_EINVALID_DEFINITION, "the connector is invalid (%d problems)",
                       diags->n);
    int version = 0;
    bool created = false;
    if ((rc = store_connector_publish(eng->store, c->slug, c->canonical, &version, &created, err)) <
        0) {
        connector_free(c);
        return rc;
    }
    *result = json_pack("{s:s, s:i, s:b}", "slug", c->slug, "version", version, "created", created);
    c->version = version;
    cache_put(eng, c); /* compiled already: the first task using it needs no compile */
    return 0;
}

/* Connector SLUG at VERSION (0 = latest) as its document. See engine.h. Any thread. */
int engine_connector_get(engine_t *eng, const char *slug, int version, json_t **doc,
                         int *version_out, err_t *err)
{
    *doc = NULL;
    integration_version_t *iv = NULL;
    err_t e = {0};
    int rc = store_connector_get(eng->store, slug, version, &iv, &e);
    if (rc < 0) {
        rc = rc == BR_ENOT_FOUND || rc == BR_EVERSION_NOT_FOUND
                 ? connector_missing(rc, slug, version, err)
                 : (err_move(err, &e), rc);
        err_clear(&e);
        return rc;
    }
    *doc = jsonx_parse(iv->doc, strlen(iv->doc), NULL, NULL);
    if (!*doc)
        rc =
            err_set(err, BR_EINTERNAL, "stored connector %s v%d does not parse", slug, iv->version);
    else if (version_out)
        *version_out = iv->version;
    integration_version_free(iv);
    return rc;
}

/* Every connector with its latest version. See engine.h. Any thread. */
int engine_connector_list(engine_t *eng, json_t **out, err_t *err)
{
    return store_connector_list(eng->store, out, err);
}

