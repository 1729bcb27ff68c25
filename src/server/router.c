/* router.c - the route table, path normalisation and route matching.
 *
 * Invariant: a route only ever sees a path that has exactly one reading. The raw path is
 * decoded here (libmicrohttpd's own unescaping is switched off), and anything that another
 * component could read differently — encoded slashes, dot segments, empty segments, a
 * trailing slash — is refused, never repaired. Matching is case-sensitive.
 */
#include "server/server_internal.h"

#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const route_t server_routes[] = {
    {"POST", "/integrations/execute/{name}", api_execute_post, PERM_EXECUTE},
    {"POST", "/triggers/{id}/execute", api_triggers_execute, PERM_EXECUTE},
    {"GET", "/integrations", api_integrations_list, PERM_READ},
    {"GET", "/integrations/{name}", api_integrations_get, PERM_READ},
    {"PUT", "/integrations/{name}", api_integrations_put, PERM_PUBLISH},
    {"DELETE", "/integrations/{name}", api_integrations_delete, PERM_PUBLISH},
    {"GET", "/integrations/{name}/versions", api_integrations_versions, PERM_READ},
    {"GET", "/integrations/{name}/versions/{n}", api_integrations_version_get, PERM_READ},
    {"GET", "/runs", api_runs_list, PERM_RUN_READ},
    {"GET", "/runs/{id}", api_runs_get, PERM_RUN_READ},
    {"GET", "/runs/{id}/tree", api_runs_tree, PERM_RUN_READ},
    {"POST", "/runs/{id}/cancel", api_runs_cancel, PERM_RUN_CANCEL},
    {"GET", "/connectors", api_connectors_list, PERM_READ},
    {"GET", "/connectors/{slug}", api_connectors_get, PERM_READ},
    {"PUT", "/connectors/{slug}", api_connectors_put, PERM_PUBLISH},
    {"GET", "/connectors/{slug}/versions", api_connectors_versions, PERM_READ},
    {"GET", "/connectors/{slug}/versions/{n}", api_connectors_version_get, PERM_READ},
    {"GET", "/connections", api_connections_list, PERM_READ},
    {"GET", "/connections/{id}", api_connections_get, PERM_READ},
    {"PUT", "/connections/{id}", api_connections_put, PERM_PUBLISH},
    {"DELETE", "/connections/{id}", api_connections_delete, PERM_PUBLISH},
    {"POST", "/tokens", api_tokens_create, PERM_ADMIN},
    {"GET", "/tokens", api_tokens_list, PERM_ADMIN},
    {"DELETE", "/tokens/{id}", api_tokens_delete, PERM_ADMIN},
    {"GET", "/graph", api_graph_get, PERM_READ},
    {"GET", "/healthz", api_healthz_get, PERM_NONE},
    {"GET", "/metrics", api_metrics_get, PERM_READ},
};
const size_t server_route_count = sizeof server_routes / sizeof server_routes[0];

role_t role_parse(const char *name)
{
    if (!name)
        return ROLE_NONE;
    if (strcmp(name, "admin") == 0)
        return ROLE_ADMIN;
    if (strcmp(name, "editor") == 0)
        return ROLE_EDITOR;
    if (strcmp(name, "viewer") == 0)
        return ROLE_VIEWER;
    if (strcmp(name, "invoker") == 0)
        return ROLE_INVOKER;
    return ROLE_NONE;
}

/* The role × permission matrix of SPEC §9. Pure; any thread. */
bool router_role_allows(role_t role, perm_t perm)
{
    switch (perm) {
    case PERM_NONE: return true;
    case PERM_READ: return role == ROLE_ADMIN || role == ROLE_EDITOR || role == ROLE_VIEWER;
    case PERM_PUBLISH: return role == ROLE_ADMIN || role == ROLE_EDITOR;
    case PERM_EXECUTE: return role == ROLE_ADMIN || role == ROLE_INVOKER;
    case PERM_RUN_READ: return role != ROLE_NONE;
    case PERM_RUN_CANCEL: return role == ROLE_ADMIN || role == ROLE_EDITOR || role == ROLE_INVOKER;
    case PERM_ADMIN: return role == ROLE_ADMIN;
    }
    return false;
}

/* The value of hex digit C, or -1. Pure. */
int router_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode and check a raw path. See server_internal.h. Pure; any thread. */
char *router_normalize(const char *raw, const char **why)
{
    if (!raw || raw[0] != '/') {
        *why = "the path must start with '/'";
        return NULL;
    }
    size_t n = strlen(raw);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = raw[i];
        if (c == '%') {
            int hi = i + 2 < n ? router_hexval(raw[i + 1]) : -1;
            int lo = hi >= 0 ? router_hexval(raw[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "bad percent-escape in the path";
                goto bad;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '/') {
                *why = "encoded '/' in the path";
                goto bad;
            }
            if (c == '\0') {
                *why = "encoded NUL in the path";
                goto bad;
            }
        } else if ((unsigned char)c < 0x20 || c == 0x7f) {
            *why = "control character in the path";
            goto bad;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    if (o > 1 && out[o - 1] == '/') {
        *why = "trailing '/' in the path";
        goto bad;
    }
    /* Check every segment of the decoded path: "/" alone has none. */
    for (const char *s = out + 1; o > 1;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0) {
            *why = "empty segment in the path";
            goto bad;
        }
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
            *why = "'.' or '..' segment in the path";
            goto bad;
        }
        if (!e)
            break;
        s = e + 1;
    }
    return out;
bad:
    free(out);
    return NULL;
}

/* Split PATH ("/a/b/c") into segments pointing into a copy; returns the count (at most MAX). */
static int split(char *copy, char **segs, int max)
{
    int n = 0;
    for (char *p = copy + 1; *p && n < max;) {
        segs[n++] = p;
        char *e = strchr(p, '/');
        if (!e)
            break;
        *e = '\0';
        p = e + 1;
    }
    return n;
}

static bool reserved(const char *seg)
{
    return strcmp(seg, "execute") == 0 || strcmp(seg, "versions") == 0;
}

#define MAX_SEGS 64

/* Whether the path segments SEGS[0..N) match PATTERN; fills PARAMS (owned) on a match. The
 * pattern is walked in place: every request tries it against the whole route table. */
static bool match_pattern(const char *pattern, char **segs, int n, char *params[2])
{
    int np = 0;
    for (const char *c = pattern; *c; c++)
        np += *c == '/';
    int si = 0, nparam = 0;
    char *got[2] = {NULL, NULL};
    const char *p = pattern;
    for (int pi = 0; pi < np; pi++) {
        p++; /* the '/' */
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 6 && memcmp(p, "{name}", 6) == 0) {
            /* One or more segments, leaving as many as the rest of the pattern needs. */
            int rest = np - pi - 1;
            int take = n - si - rest;
            if (take < 1)
                goto no;
            buf_t b = BUF_INIT;
            for (int k = 0; k < take; k++) {
                if (reserved(segs[si + k])) {
                    buf_deinit(&b);
                    goto no;
                }
                if (k)
                    buf_putc(&b, '/');
                buf_puts(&b, segs[si + k]);
            }
            got[nparam++] = buf_steal(&b);
            si += take;
        } else if (p[0] == '{') {
            if (si >= n)
                goto no;
            got[nparam++] = xstrdup(segs[si++]);
        } else {
            if (si >= n || strncmp(p, segs[si], len) != 0 || segs[si][len] != '\0')
                goto no;
            si++;
        }
        p += len;
    }
    if (si != n)
        goto no;
    params[0] = got[0];
    params[1] = got[1];
    return true;
no:
    free(got[0]);
    free(got[1]);
    return false;
}

router_result_t router_match(const char *method, const char *path, route_match_t *m)
{
    memset(m, 0, sizeof *m);
    char *copy = xstrdup(path);
    char *segs[MAX_SEGS];
    int n = strcmp(path, "/") == 0 ? 0 : split(copy, segs, MAX_SEGS);
    bool path_known = false;
    router_result_t res = ROUTER_NO_PATH;
    for (size_t i = 0; i < server_route_count; i++) {
        const route_t *r = &server_routes[i];
        char *params[2] = {NULL, NULL};
        if (!match_pattern(r->pattern, segs, n, params))
            continue;
        if (strcmp(r->method, method) == 0) {
            /* The first match wins; the Allow list of the rest is wanted only for a 405. */
            m->route = r;
            m->params[0] = params[0];
            m->params[1] = params[1];
            m->allow[0] = '\0';
            res = ROUTER_FOUND;
            break;
        }
        free(params[0]);
        free(params[1]);
        path_known = true;
        if (!strstr(m->allow, r->method)) {
            size_t len = strlen(m->allow);
            snprintf(m->allow + len, sizeof m->allow - len, "%s%s", len ? ", " : "", r->method);
        }
    }
    free(copy);
    if (res != ROUTER_FOUND && path_known)
        res = ROUTER_NO_METHOD;
    return res;
}

void route_match_deinit(route_match_t *m)
{
    free(m->params[0]);
    free(m->params[1]);
    m->params[0] = m->params[1] = NULL;
}
