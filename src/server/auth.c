/* auth.c - tokens and roles on requests: parsing "Authorization: Bearer brd_<id>_<secret>"
 * (vault/token.h), checking the secret against the stored hash in constant time, a cache of
 * token records kept at most one second (so a revocation takes effect within a second without
 * every request reading the store), invoker scopes and run ownership, and the first admin
 * token.
 * No token secret is ever logged or kept in memory longer than the request needs it.
 */
#include "server/server_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "definition/definition.h"
#include "vault/token.h"
#include "vault/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CACHE_MS 1000 /* longest a verified record is trusted without reading the store */

typedef struct cached {
    role_t role;
    json_t *scopes;         /* owned */
    unsigned char hash[32];
    bool revoked;
    int64_t fetched_ms;     /* monotonic */
} cached_t;

static void cached_free(cached_t *c)
{
    if (c) {
        json_decref(c->scopes);
        free(c);
    }
}

/* Fill OUT (role, scopes referenced, hash, revoked) for token ID from the cache or the
 * store; -1 when the token does not exist. Takes the auth lock briefly. */
static int lookup(server_t *srv, const char *id, cached_t *out)
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&srv->auth_lock);
    if (!srv->auth_cache)
        srv->auth_cache = strmap_new();
    cached_t *c = strmap_get(srv->auth_cache, id);
    if (c && now - c->fetched_ms < CACHE_MS) {
        *out = *c;
        json_incref(out->scopes);
        pthread_mutex_unlock(&srv->auth_lock);
        return 0;
    }
    pthread_mutex_unlock(&srv->auth_lock);

    token_rec_t *t = NULL;
    if (store_token_get(srv->st, id, &t, NULL) < 0)
        return -1;
    cached_t *fresh = XNEW(cached_t);
    fresh->role = role_parse(t->role);
    fresh->scopes = t->scopes ? json_incref(t->scopes) : json_array();
    memcpy(fresh->hash, t->hash, sizeof fresh->hash);
    fresh->revoked = t->revoked_at != 0;
    fresh->fetched_ms = now;
    token_rec_free(t);
    *out = *fresh;
    json_incref(out->scopes);
    pthread_mutex_lock(&srv->auth_lock);
    /* Keep the cache from growing without bound: tokens are few, but be safe. */
    cached_free(strmap_put(srv->auth_cache, id, fresh));
    pthread_mutex_unlock(&srv->auth_lock);
    return 0;
}

/* Authenticate REQ. See server_internal.h. libmicrohttpd threads. */
int auth_check(server_t *srv, request_t *req)
{
    const char *h = http_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return -1;
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    char id[40], secret[64];
    if (token_parse(token, id, secret) < 0)
        return -1;
    cached_t c;
    if (lookup(srv, id, &c) < 0)
        return -1;
    unsigned char hash[32];
    vault_token_hash(secret, strlen(secret), hash);
    vault_wipe(secret, sizeof secret);
    bool ok = vault_equal(hash, c.hash, sizeof hash) && !c.revoked && c.role != ROLE_NONE;
    if (!ok) {
        json_decref(c.scopes);
        return -1;
    }
    req->has_token = true;
    snprintf(req->token.id, sizeof req->token.id, "%s", id);
    req->token.role = c.role;
    req->token.scopes = c.scopes;
    return 0;
}

bool auth_scope_allows(const token_info_t *tok, const char *name)
{
    if (tok->role == ROLE_ADMIN)
        return true;
    if (tok->role != ROLE_INVOKER || !name)
        return false;
    size_t i;
    json_t *s;
    json_array_foreach(tok->scopes, i, s)
    {
        if (definition_glob_match(json_string_value(s), name))
            return true;
    }
    return false;
}

bool auth_may_see_run(const token_info_t *tok, const json_t *rec)
{
    if (tok->role != ROLE_INVOKER)
        return true;
    const json_t *info = json_object_get(rec, "trigger_info");
    const char *owner = json_string_value(json_object_get(info, "token"));
    return owner && strcmp(owner, tok->id) == 0;
}

static void free_entry(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    cached_free(value);
}

void auth_cache_free(server_t *srv)
{
    if (srv->auth_cache) {
        strmap_each(srv->auth_cache, free_entry, NULL);
        strmap_free(srv->auth_cache);
        srv->auth_cache = NULL;
    }
}

/* On first start, make an admin token and write it to DATA_DIR/admin.token (mode 0600,
 * replacing an older file). Logs where it is, never what. Main thread, before serving. */
int auth_bootstrap(store_t *st, const char *data_dir, err_t *err)
{
    bool any = false;
    int rc = store_token_any_active(st, "admin", &any, err);
    if (rc < 0 || any)
        return rc;
    char *token = NULL;
    token_rec_t *rec = NULL;
    rc = token_create(st, "admin", NULL, "created on first start", &token, &rec, err);
    if (rc < 0)
        return rc;
    char *path = xasprintf("%s/admin.token", data_dir);
    if (unlink(path) < 0 && errno != ENOENT)
        rc = err_set(err, BR_EIO, "cannot replace %s: %s", path, strerror(errno));
    int fd = rc < 0 ? -1 : open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (rc == 0 && fd < 0)
        rc = err_set(err, BR_EIO, "cannot create %s: %s", path, strerror(errno));
    if (fd >= 0) {
        size_t len = strlen(token);
        token[len] = '\n'; /* the NUL becomes a newline for the file; written length len + 1 */
        ssize_t w = write(fd, token, len + 1);
        token[len] = '\0';
        if (w != (ssize_t)(len + 1) || fsync(fd) < 0)
            rc = err_set(err, BR_EIO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
    }
    if (rc == 0)
        log_event(LOG_INFO, "admin token created", json_pack("{s:s, s:s}", "file", path, "id", rec->id));
    else /* nobody could use it: do not leave an admin token that blocks the next bootstrap */
        store_token_revoke(st, rec->id, clock_now_ms(), NULL);
    token_rec_free(rec);
    vault_wipe(token, strlen(token));
    free(token);
    free(path);
    return rc;
}
