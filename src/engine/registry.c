/* registry.c - compiled definitions by (name, version), shared read-only between threads.
 *
 * A definition is compiled once per process and kept for the engine's life (versions are
 * immutable, so a cached one is never stale). What can go stale is "the latest version of a
 * name" and "who listens to a trigger": those answers are cached too and dropped whenever the
 * store's catalog epoch moves, which is checked at most every EPOCH_CHECK_MS. A publish in
 * this process drops them at once; one from another process is seen within that interval. */
#include "engine/engine_internal.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPOCH_CHECK_MS 200

typedef struct latest {
    int version;
    bool archived;
    definition_t *def;  /* that version, compiled (owned by defs) */
    signed char waits;  /* engine_waits of it: -1 not known yet, else an exec_waits_t */
} latest_t;

struct registry {
    store_t *store;
    definition_limits_t limits;
    pthread_mutex_t mu;
    strmap_t *defs;     /* "name@version" -> definition_t (owned) */
    strmap_t *latest;   /* name -> latest_t (owned) */
    strmap_t *triggers; /* trigger id -> json array of names (owned) */
    int64_t epoch;
    int64_t checked_at; /* monotonic ms of the last epoch check */
};

registry_t *registry_new(store_t *st, const definition_limits_t *limits)
{
    registry_t *reg = XNEW(registry_t);
    reg->store = st;
    reg->limits = *limits;
    pthread_mutex_init(&reg->mu, NULL);
    reg->defs = strmap_new();
    reg->latest = strmap_new();
    reg->triggers = strmap_new();
    reg->epoch = -1;
    return reg;
}

static void free_def(void *ctx, const char *key, void *value)
{
    (void)ctx, (void)key;
    definition_free(value);
}

static void free_ptr(void *ctx, const char *key, void *value)
{
    (void)ctx, (void)key;
    free(value);
}

static void free_json(void *ctx, const char *key, void *value)
{
    (void)ctx, (void)key;
    json_decref(value);
}

static void drop_answers(registry_t *reg)
{
    strmap_each(reg->latest, free_ptr, NULL);
    strmap_free(reg->latest);
    reg->latest = strmap_new();
    strmap_each(reg->triggers, free_json, NULL);
    strmap_free(reg->triggers);
    reg->triggers = strmap_new();
}

void registry_free(registry_t *reg)
{
    if (!reg)
        return;
    strmap_each(reg->defs, free_def, NULL);
    strmap_free(reg->defs);
    drop_answers(reg);
    strmap_free(reg->latest);
    strmap_free(reg->triggers);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

void registry_invalidate(registry_t *reg)
{
    pthread_mutex_lock(&reg->mu);
    drop_answers(reg);
    reg->checked_at = 0;
    pthread_mutex_unlock(&reg->mu);
}

/* Called with mu held. */
static void check_epoch(registry_t *reg)
{
    int64_t now = clock_mono_ms();
    if (reg->checked_at && now - reg->checked_at < EPOCH_CHECK_MS)
        return;
    reg->checked_at = now;
    int64_t epoch;
    if (store_catalog_epoch(reg->store, &epoch, NULL) == 0 && epoch != reg->epoch) {
        reg->epoch = epoch;
        drop_answers(reg);
    }
}

static int compile_stored(registry_t *reg, const integration_version_t *iv, definition_t **out,
                          err_t *err)
{
    json_t *doc = jsonx_parse(iv->doc, strlen(iv->doc), NULL, err);
    if (!doc)
        return err_set(err, BR_EINTERNAL, "stored definition of %s v%d does not parse", iv->name,
                       iv->version);
    diags_t diags = {0};
    int rc = definition_compile(doc, NULL, &reg->limits, out, &diags);
    if (rc < 0)
        err_set(err, BR_EINTERNAL, "stored definition of %s v%d no longer compiles: %s", iv->name,
                iv->version, diags.n ? diags.items[0].message : "?");
    else
        (*out)->version = iv->version;
    diags_deinit(&diags);
    json_decref(doc);
    return rc < 0 ? BR_EINTERNAL : 0;
}

/* The compiled definition of NAME at VERSION (0 = latest). Thread-safe; see the header. */
int registry_get(registry_t *reg, const char *name, int version, const definition_t **out,
                 bool *archived, err_t *err)
{
    char key[300];
    pthread_mutex_lock(&reg->mu);
    check_epoch(reg);
    latest_t *lt = strmap_get(reg->latest, name);
    if (lt) {
        *archived = lt->archived;
        definition_t *def = NULL;
        if (!version || version == lt->version) {
            def = lt->def; /* the hot path: no key to format */
        } else {
            snprintf(key, sizeof key, "%s@%d", name, version);
            def = strmap_get(reg->defs, key);
        }
        if (def) {
            pthread_mutex_unlock(&reg->mu);
            *out = def;
            return 0;
        }
    }
    pthread_mutex_unlock(&reg->mu);

    /* Miss: read and compile outside the lock; a racing thread may do the same, and the
     * loser's copy is dropped below. */
    integration_version_t *iv = NULL;
    int rc = store_integration_get(reg->store, name, 0, &iv, err);
    if (rc < 0)
        return rc;
    latest_t now_latest = {iv->version, iv->archived, NULL, -1};
    if (version && version != iv->version) {
        integration_version_free(iv);
        iv = NULL;
        if ((rc = store_integration_get(reg->store, name, version, &iv, err)) < 0)
            return rc;
    }
    definition_t *def = NULL;
    rc = compile_stored(reg, iv, &def, err);
    integration_version_free(iv);
    if (rc < 0)
        return rc;

    snprintf(key, sizeof key, "%s@%d", name, def->version);
    pthread_mutex_lock(&reg->mu);
    definition_t *have = strmap_get(reg->defs, key);
    if (have) {
        definition_free(def);
        def = have;
    } else {
        strmap_put(reg->defs, key, def);
    }
    latest_t *nl = xmalloc(sizeof *nl);
    *nl = now_latest;
    if (def->version == nl->version) {
        nl->def = def;
    } else {
        /* VERSION was pinned: find or leave the latest's compiled form for a later call. */
        snprintf(key, sizeof key, "%s@%d", name, nl->version);
        nl->def = strmap_get(reg->defs, key);
    }
    if (nl->def)
        free(strmap_put(reg->latest, name, nl));
    else
        free(nl);
    pthread_mutex_unlock(&reg->mu);
    *archived = now_latest.archived;
    *out = def;
    return 0;
}

/* The remembered answer for DEF when it is NAME's latest version: -1 none, else an
 * exec_waits_t. Thread-safe. */
int registry_waits(registry_t *reg, const char *name, const definition_t *def)
{
    pthread_mutex_lock(&reg->mu);
    check_epoch(reg);
    latest_t *lt = strmap_get(reg->latest, name);
    int v = lt && lt->def == def ? lt->waits : -1;
    pthread_mutex_unlock(&reg->mu);
    return v;
}

/* Remember VALUE for NAME's latest version, if DEF still is it. Thread-safe. */
void registry_remember_waits(registry_t *reg, const char *name, const definition_t *def,
                             exec_waits_t value)
{
    pthread_mutex_lock(&reg->mu);
    latest_t *lt = strmap_get(reg->latest, name);
    if (lt && lt->def == def)
        lt->waits = (signed char)value;
    pthread_mutex_unlock(&reg->mu);
}

int registry_trigger_targets(registry_t *reg, const char *trigger_id, json_t **out, err_t *err)
{
    pthread_mutex_lock(&reg->mu);
    check_epoch(reg);
    json_t *names = strmap_get(reg->triggers, trigger_id);
    if (names) {
        *out = json_incref(names);
        pthread_mutex_unlock(&reg->mu);
        return 0;
    }
    pthread_mutex_unlock(&reg->mu);
    int rc = store_trigger_targets(reg->store, trigger_id, &names, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&reg->mu);
    json_decref(strmap_put(reg->triggers, trigger_id, json_incref(names)));
    pthread_mutex_unlock(&reg->mu);
    *out = names;
    return 0;
}
