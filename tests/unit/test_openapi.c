/* test_openapi.c - docs/openapi.yaml stays true to the server's route table (issue 3 item 7).
 *
 * The document is read as text (found under $BRAID_SOURCE_DIR, which ctest sets) and scanned
 * by its regular layout: under `paths:`, a path at two spaces ending in ':', an operation
 * (get/put/post/delete/...) at four spaces ending in ':', and inside an operation, at six
 * spaces, `x-braid-roles: [r1, r2]` and optionally `security: []`. Each documented (method,
 * path) pair is compared with server_routes[] in both directions, after mapping the table's
 * pattern syntax to an OpenAPI path template in one place (route_to_openapi_path). For each
 * pair found on both sides, the documented roles must be exactly those router_role_allows
 * lets through, and only an open route (PERM_NONE) may say `security: []`. A mismatch names
 * the pair. */
#include "server/server_internal.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- mapping ------------------------------------------------------------------------------ */

/* The OpenAPI path template of a route table pattern. The table writes parameters as "{name}"
 * (one or more segments), "{id}" and "{n}" (one segment each); the document uses the same
 * brace syntax, with "{n}" spelled "{version}". The only place the two syntaxes meet. */
static void route_to_openapi_path(const char *pattern, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < size;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "{n}", 3) == 0) {
            rep = "{version}";
            skip = 3;
        }
        if (rep) {
            size_t len = strlen(rep);
            if (o + len >= size)
                break;
            memcpy(out + o, rep, len);
            o += len;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* ---- the document ------------------------------------------------------------------------- */

#define MAX_OPS 128
#define ROLE_BITS(r) (1u << (r))

typedef struct doc_op {
    char method[16]; /* upper case */
    char path[256];
    unsigned roles;  /* ROLE_BITS of x-braid-roles */
    bool has_roles;  /* an x-braid-roles line was seen */
    bool open;       /* security: [] */
    int line;
} doc_op_t;

typedef struct doc {
    doc_op_t ops[MAX_OPS];
    int n;
} doc_t;

static const char *const http_methods[] = {"get",  "put",     "post",  "delete",
                                           "patch", "head", "options", "trace"};

static int indent_of(const char *line)
{
    int n = 0;
    while (line[n] == ' ')
        n++;
    return n;
}

/* The bare key of a line "<indent>KEY:" (nothing after the colon), copied to KEY; false when
 * the line is not of that form. */
static bool bare_key(const char *line, int indent, char *key, size_t size)
{
    if (indent_of(line) != indent)
        return false;
    const char *s = line + indent;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\r'))
        len--;
    if (len < 2 || s[len - 1] != ':' || len - 1 >= size)
        return false;
    memcpy(key, s, len - 1);
    key[len - 1] = '\0';
    return true;
}

/* Parse the flow list of "x-braid-roles: [a, b]" into role bits; -1 on a bad list or role. */
static int parse_roles(const char *list, unsigned *bits)
{
    *bits = 0;
    const char *p = strchr(list, '[');
    const char *end = p ? strchr(p, ']') : NULL;
    if (!p || !end)
        return -1;
    p++;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ')
            p++;
        if (p == s)
            break;
        char name[32];
        size_t len = (size_t)(p - s);
        if (len >= sizeof name)
            return -1;
        memcpy(name, s, len);
        name[len] = '\0';
        role_t r = role_parse(name);
        if (r == ROLE_NONE)
            return -1;
        *bits |= ROLE_BITS(r);
    }
    return 0;
}

/* Scan TEXT (the YAML document) into DOC; problems with the layout itself go to ERRS. */
static void parse_openapi(const char *text, doc_t *doc, char *errs, size_t errsize)
{
    memset(doc, 0, sizeof *doc);
    char *copy = strdup(text);
    bool in_paths = false;
    char path[256] = "";
    doc_op_t *op = NULL;
    int lineno = 0;
    size_t elen = strlen(errs);
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        if (line[0] == '#' || line[strspn(line, " \r")] == '\0')
            continue;
        if (indent_of(line) == 0) {
            in_paths = strncmp(line, "paths:", 6) == 0;
            op = NULL;
            continue;
        }
        if (!in_paths)
            continue;
        char key[256];
        int ind = indent_of(line);
        if (ind == 2) {
            op = NULL;
            if (!bare_key(line, 2, key, sizeof key) || key[0] != '/') {
                elen += (size_t)snprintf(errs + elen, errsize - elen,
                                         "  layout: a path at two spaces must be '/...:', got '%s'\n",
                                         line);
                path[0] = '\0';
                continue;
            }
            snprintf(path, sizeof path, "%s", key);
        } else if (ind == 4) {
            op = NULL;
            if (!bare_key(line, 4, key, sizeof key))
                continue;
            bool is_method = false;
            for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++)
                if (strcmp(key, http_methods[i]) == 0)
                    is_method = true;
            if (!is_method || !path[0])
                continue; /* "parameters:", "summary:", ... */
            if (doc->n == MAX_OPS) {
                elen += (size_t)snprintf(errs + elen, errsize - elen, "  too many operations\n");
                continue;
            }
            op = &doc->ops[doc->n++];
            for (size_t i = 0; key[i] && i + 1 < sizeof op->method; i++)
                op->method[i] = (char)toupper((unsigned char)key[i]);
            snprintf(op->path, sizeof op->path, "%s", path);
            op->line = lineno;
        } else if (ind == 6 && op) {
            const char *s = line + 6;
            if (strncmp(s, "x-braid-roles:", 14) == 0) {
                op->has_roles = true;
                if (parse_roles(s + 14, &op->roles) < 0)
                    elen += (size_t)snprintf(errs + elen, errsize - elen,
                                             "  %s %s: bad x-braid-roles '%s'\n", op->method,
                                             op->path, s + 14);
            } else if (strncmp(s, "security:", 9) == 0) {
                const char *v = s + 9;
                while (*v == ' ')
                    v++;
                if (strncmp(v, "[]", 2) == 0)
                    op->open = true;
            }
        }
    }
    free(copy);
}

/* ---- comparison --------------------------------------------------------------------------- */

/* The roles documented for a route needing PERM: every role router_role_allows lets through;
 * none for an open route. */
static unsigned expected_roles(perm_t perm)
{
    if (perm == PERM_NONE)
        return 0;
    unsigned bits = 0;
    for (role_t r = ROLE_ADMIN; r <= ROLE_INVOKER; r++)
        if (router_role_allows(r, perm))
            bits |= ROLE_BITS(r);
    return bits;
}

static void roles_text(unsigned bits, char *out, size_t size)
{
    static const char *const names[] = {"", "admin", "editor", "viewer", "invoker"};
    size_t o = 0;
    out[0] = '\0';
    o += (size_t)snprintf(out + o, size - o, "[");
    bool first = true;
    for (role_t r = ROLE_ADMIN; r <= ROLE_INVOKER; r++) {
        if (bits & ROLE_BITS(r)) {
            o += (size_t)snprintf(out + o, size - o, "%s%s", first ? "" : ", ", names[r]);
            first = false;
        }
    }
    snprintf(out + o, size - o, "]");
}

/* Compare DOC with ROUTES in both directions; every mismatch appended to ERRS as one line
 * naming the (method, path) pair. Returns the number of mismatches. */
static int compare(const doc_t *doc, const route_t *routes, size_t nroutes, char *errs,
                   size_t errsize)
{
    int bad = 0;
    size_t elen = strlen(errs);
#define ERR(...)                                                                                   \
    do {                                                                                           \
        bad++;                                                                                     \
        if (elen < errsize)                                                                        \
            elen += (size_t)snprintf(errs + elen, errsize - elen, __VA_ARGS__);                    \
    } while (0)
    bool *seen = calloc(doc->n ? (size_t)doc->n : 1, sizeof *seen);
    for (size_t i = 0; i < nroutes; i++) {
        char want[256];
        route_to_openapi_path(routes[i].pattern, want, sizeof want);
        int found = -1;
        for (int k = 0; k < doc->n; k++) {
            if (strcmp(doc->ops[k].method, routes[i].method) == 0 &&
                strcmp(doc->ops[k].path, want) == 0) {
                if (found >= 0)
                    ERR("  %s %s is documented twice\n", routes[i].method, want);
                found = k;
                seen[k] = true;
            }
        }
        if (found < 0) {
            ERR("  route %s %s (pattern %s) is not documented in docs/openapi.yaml\n",
                routes[i].method, want, routes[i].pattern);
            continue;
        }
        const doc_op_t *op = &doc->ops[found];
        unsigned exp = expected_roles(routes[i].perm);
        if (!op->has_roles) {
            ERR("  %s %s has no x-braid-roles\n", op->method, op->path);
        } else if (op->roles != exp) {
            char a[80], b[80];
            roles_text(op->roles, a, sizeof a);
            roles_text(exp, b, sizeof b);
            ERR("  %s %s: x-braid-roles %s, the permission matrix says %s\n", op->method,
                op->path, a, b);
        }
        if (op->open != (routes[i].perm == PERM_NONE))
            ERR("  %s %s: %s\n", op->method, op->path,
                op->open ? "documented without a token (security: []) but the route needs one"
                         : "the route needs no token but is not documented with security: []");
    }
    for (int k = 0; k < doc->n; k++)
        if (!seen[k])
            ERR("  documented %s %s (line %d) is not in server_routes[]\n", doc->ops[k].method,
                doc->ops[k].path, doc->ops[k].line);
    free(seen);
#undef ERR
    return bad;
}

/* ---- the file ----------------------------------------------------------------------------- */

static char *read_openapi(void)
{
    const char *dir = getenv("BRAID_SOURCE_DIR");
    if (!dir || !*dir)
        fail_msg("BRAID_SOURCE_DIR is not set (ctest sets it to the source tree)");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/openapi.yaml", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            text = realloc(text, cap);
        }
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_openapi_mapping(void **state)
{
    (void)state;
    char out[128];
    route_to_openapi_path("/integrations/{name}/versions/{n}", out, sizeof out);
    assert_string_equal(out, "/integrations/{name}/versions/{version}");
    route_to_openapi_path("/runs/{id}/tree", out, sizeof out);
    assert_string_equal(out, "/runs/{id}/tree");
    route_to_openapi_path("/connectors/{slug}/versions/{n}", out, sizeof out);
    assert_string_equal(out, "/connectors/{slug}/versions/{version}");
    route_to_openapi_path("/healthz", out, sizeof out);
    assert_string_equal(out, "/healthz");
}

/* The scanner and the comparison themselves: a made-up document against a made-up table
 * reports exactly the pairs missing on either side, and the wrong roles. */
static void test_openapi_compare_reports_mismatches(void **state)
{
    (void)state;
    static const char yaml[] = "openapi: 3.1.0\n"
                               "paths:\n"
                               "  /a/{name}:\n"
                               "    parameters:\n"
                               "      - $ref: x\n"
                               "    get:\n"
                               "      x-braid-roles: [admin, editor, viewer]\n"
                               "    put:\n"
                               "      x-braid-roles: [admin]\n"
                               "  /open:\n"
                               "    get:\n"
                               "      x-braid-roles: []\n"
                               "      security: []\n"
                               "  /extra:\n"
                               "    delete:\n"
                               "      x-braid-roles: [admin]\n"
                               "components:\n"
                               "  /not-a-path:\n"
                               "    get:\n";
    static const route_t table[] = {
        {"GET", "/a/{name}", NULL, PERM_READ},
        {"PUT", "/a/{name}", NULL, PERM_PUBLISH}, /* editor missing in the document */
        {"GET", "/open", NULL, PERM_NONE},
        {"POST", "/b/{id}/v/{n}", NULL, PERM_ADMIN}, /* not documented */
    };
    char errs[4096] = "";
    doc_t *doc = malloc(sizeof *doc);
    parse_openapi(yaml, doc, errs, sizeof errs);
    assert_string_equal(errs, "");
    assert_int_equal(doc->n, 4);
    int bad = compare(doc, table, sizeof table / sizeof table[0], errs, sizeof errs);
    assert_int_equal(bad, 3);
    assert_non_null(strstr(errs, "route POST /b/{id}/v/{version} (pattern /b/{id}/v/{n}) is not "
                                 "documented"));
    assert_non_null(strstr(errs, "documented DELETE /extra"));
    assert_non_null(strstr(errs, "PUT /a/{name}: x-braid-roles [admin], the permission matrix "
                                 "says [admin, editor]"));
    free(doc);
}

static void test_openapi_matches_route_table(void **state)
{
    (void)state;
    char *text = read_openapi();
    assert_non_null(strstr(text, "openapi: 3.1"));
    char errs[16384] = "";
    doc_t *doc = malloc(sizeof *doc);
    parse_openapi(text, doc, errs, sizeof errs);
    if (errs[0])
        fail_msg("docs/openapi.yaml does not keep the layout this test reads:\n%s", errs);
    if (doc->n == 0)
        fail_msg("no operation found under 'paths:' in docs/openapi.yaml");
    int bad = compare(doc, server_routes, server_route_count, errs, sizeof errs);
    if (bad)
        fail_msg("docs/openapi.yaml and server_routes[] disagree (%d):\n%s", bad, errs);
    assert_int_equal((size_t)doc->n, server_route_count);
    free(doc);
    free(text);
}

/* The whole document says bearer auth globally; only the open routes override it. */
static void test_openapi_global_bearer(void **state)
{
    (void)state;
    char *text = read_openapi();
    assert_non_null(strstr(text, "\nsecurity:\n  - bearerAuth: []\n"));
    assert_non_null(strstr(text, "    bearerAuth:\n      type: http\n      scheme: bearer\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openapi_mapping),
        cmocka_unit_test(test_openapi_compare_reports_mismatches),
        cmocka_unit_test(test_openapi_matches_route_table),
        cmocka_unit_test(test_openapi_global_bearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
