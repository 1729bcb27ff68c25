/* test_router.c - the server's router: path normalisation (every trick that could make one
 * path read two ways is refused), route matching with names holding '/', 404 against 405,
 * and the role × permission matrix. */
#include "server/server_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const struct {
    const char *raw;
    const char *want; /* NULL = refused */
} paths[] = {
    {"/integrations", "/integrations"},
    {"/integrations/orders/intake", "/integrations/orders/intake"},
    {"/integrations/a%20b", "/integrations/a b"},
    {"/integrations/%61bc", "/integrations/abc"},
    {"/", "/"},
    {"/Integrations", "/Integrations"}, /* kept: case decides in matching (404) */
    {"/integrations/", NULL},
    {"//integrations", NULL},
    {"/integrations//x", NULL},
    {"/integrations/./x", NULL},
    {"/integrations/../runs", NULL},
    {"/integrations/..", NULL},
    {"/integrations/%2e%2e/runs", NULL},
    {"/integrations/%2E", NULL},
    {"/integrations/a%2Fb", NULL},
    {"/integrations/a%2fb", NULL},
    {"/integrations/a%00b", NULL},
    {"/integrations/a%zz", NULL},
    {"/integrations/a%2", NULL},
    {"/integrations/a%", NULL},
    {"integrations", NULL},
    {"", NULL},
    {"http://x/integrations", NULL},
    {"/runs/a\tb", NULL},
};

static void test_router_normalize_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *why = NULL;
        char *got = router_normalize(paths[i].raw, &why);
        if (paths[i].want) {
            assert_non_null(got);
            assert_string_equal(got, paths[i].want);
        } else {
            if (got)
                fail_msg("'%s' was accepted as '%s'", paths[i].raw, got);
            assert_non_null(why);
        }
        free(got);
    }
}

static router_result_t match(const char *method, const char *path, const char **pattern,
                             char *p0, char *p1, char *allow)
{
    route_match_t m;
    router_result_t r = router_match(method, path, &m);
    *pattern = m.route ? m.route->pattern : NULL;
    strcpy(p0, m.params[0] ? m.params[0] : "");
    strcpy(p1, m.params[1] ? m.params[1] : "");
    strcpy(allow, m.allow);
    route_match_deinit(&m);
    return r;
}

static void test_router_match_names_with_slashes(void **state)
{
    (void)state;
    const char *pat;
    char p0[256], p1[256], allow[64];
    assert_int_equal(match("POST", "/integrations/execute/orders/intake", &pat, p0, p1, allow),
                     ROUTER_FOUND);
    assert_string_equal(pat, "/integrations/execute/{name}");
    assert_string_equal(p0, "orders/intake");

    assert_int_equal(match("GET", "/integrations/a/b/c", &pat, p0, p1, allow), ROUTER_FOUND);
    assert_string_equal(pat, "/integrations/{name}");
    assert_string_equal(p0, "a/b/c");

    assert_int_equal(match("GET", "/integrations/a/b/versions", &pat, p0, p1, allow),
                     ROUTER_FOUND);
    assert_string_equal(pat, "/integrations/{name}/versions");
    assert_string_equal(p0, "a/b");

    assert_int_equal(match("GET", "/integrations/a/b/versions/3", &pat, p0, p1, allow),
                     ROUTER_FOUND);
    assert_string_equal(pat, "/integrations/{name}/versions/{n}");
    assert_string_equal(p0, "a/b");
    assert_string_equal(p1, "3");

    assert_int_equal(match("PUT", "/integrations/x", &pat, p0, p1, allow), ROUTER_FOUND);
    assert_int_equal(match("DELETE", "/integrations/x", &pat, p0, p1, allow), ROUTER_FOUND);
    assert_int_equal(match("GET", "/runs/abc/tree", &pat, p0, p1, allow), ROUTER_FOUND);
    assert_string_equal(p0, "abc");
    assert_int_equal(match("POST", "/triggers/go/execute", &pat, p0, p1, allow), ROUTER_FOUND);
    assert_string_equal(p0, "go");
}

static void test_router_404_and_405(void **state)
{
    (void)state;
    const char *pat;
    char p0[256], p1[256], allow[64];
    assert_int_equal(match("GET", "/Integrations", &pat, p0, p1, allow), ROUTER_NO_PATH);
    assert_int_equal(match("GET", "/", &pat, p0, p1, allow), ROUTER_NO_PATH);
    assert_int_equal(match("GET", "/nope", &pat, p0, p1, allow), ROUTER_NO_PATH);
    assert_int_equal(match("GET", "/runs/a/b", &pat, p0, p1, allow), ROUTER_NO_PATH);
    assert_int_equal(match("POST", "/integrations/execute", &pat, p0, p1, allow),
                     ROUTER_NO_PATH);
    /* "versions" and "execute" are reserved: never part of a name. */
    assert_int_equal(match("GET", "/integrations/versions", &pat, p0, p1, allow), ROUTER_NO_PATH);
    assert_int_equal(match("GET", "/integrations/execute/x", &pat, p0, p1, allow),
                     ROUTER_NO_METHOD);
    assert_string_equal(allow, "POST");
    assert_int_equal(match("POST", "/integrations/x", &pat, p0, p1, allow), ROUTER_NO_METHOD);
    assert_string_equal(allow, "GET, PUT, DELETE");
    assert_int_equal(match("DELETE", "/runs", &pat, p0, p1, allow), ROUTER_NO_METHOD);
    assert_string_equal(allow, "GET");
    assert_int_equal(match("GET", "/runs/x/cancel", &pat, p0, p1, allow), ROUTER_NO_METHOD);
    assert_string_equal(allow, "POST");
    assert_int_equal(match("POST", "/healthz", &pat, p0, p1, allow), ROUTER_NO_METHOD);
}

static void test_router_permissions_per_role(void **state)
{
    (void)state;
    /* perm:           NONE READ PUBLISH EXECUTE RUN_READ RUN_CANCEL ADMIN */
    static const bool want[5][7] = {
        [ROLE_NONE] = {1, 0, 0, 0, 0, 0, 0},
        [ROLE_ADMIN] = {1, 1, 1, 1, 1, 1, 1},
        [ROLE_EDITOR] = {1, 1, 1, 0, 1, 1, 0},
        [ROLE_VIEWER] = {1, 1, 0, 0, 1, 0, 0},
        [ROLE_INVOKER] = {1, 0, 0, 1, 1, 1, 0},
    };
    for (int r = 0; r < 5; r++)
        for (int p = 0; p < 7; p++)
            if (router_role_allows((role_t)r, (perm_t)p) != want[r][p])
                fail_msg("role %d perm %d: expected %d", r, p, want[r][p]);
    assert_int_equal(role_parse("admin"), ROLE_ADMIN);
    assert_int_equal(role_parse("Admin"), ROLE_NONE);
    assert_int_equal(role_parse(NULL), ROLE_NONE);
}

/* Connectors and connections (SPEC §5, §9): the routes match with their parameter, and each
 * role may use exactly these. "viewer reads everything but secrets": it reads connections,
 * whose answers never hold a secret value; an invoker has no business here at all. */
static void test_router_connections_per_role(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *pattern, *p0, *p1;
        bool admin, editor, viewer, invoker;
    } cases[] = {
        {"GET", "/connectors", "/connectors", "", "", 1, 1, 1, 0},
        {"GET", "/connectors/billing", "/connectors/{slug}", "billing", "", 1, 1, 1, 0},
        {"PUT", "/connectors/billing", "/connectors/{slug}", "billing", "", 1, 1, 0, 0},
        {"GET", "/connectors/billing/versions", "/connectors/{slug}/versions", "billing", "", 1,
         1, 1, 0},
        {"GET", "/connectors/billing/versions/2", "/connectors/{slug}/versions/{n}", "billing",
         "2", 1, 1, 1, 0},
        /* A slug is one segment, so "versions" can be a slug like any other. */
        {"GET", "/connectors/versions", "/connectors/{slug}", "versions", "", 1, 1, 1, 0},
        {"GET", "/connections", "/connections", "", "", 1, 1, 1, 0},
        {"GET", "/connections/billing-prod", "/connections/{id}", "billing-prod", "", 1, 1, 1, 0},
        {"PUT", "/connections/billing-prod", "/connections/{id}", "billing-prod", "", 1, 1, 0, 0},
        {"DELETE", "/connections/billing.prod_2", "/connections/{id}", "billing.prod_2", "", 1, 1,
         0, 0},
    };
    const char *pat;
    char p0[256], p1[256], allow[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        route_match_t m;
        if (router_match(cases[i].method, cases[i].path, &m) != ROUTER_FOUND)
            fail_msg("%s %s: no route", cases[i].method, cases[i].path);
        assert_string_equal(m.route->pattern, cases[i].pattern);
        assert_string_equal(m.params[0] ? m.params[0] : "", cases[i].p0);
        assert_string_equal(m.params[1] ? m.params[1] : "", cases[i].p1);
        const bool want[] = {[ROLE_NONE] = false,
                             [ROLE_ADMIN] = cases[i].admin,
                             [ROLE_EDITOR] = cases[i].editor,
                             [ROLE_VIEWER] = cases[i].viewer,
                             [ROLE_INVOKER] = cases[i].invoker};
        for (role_t r = ROLE_NONE; r <= ROLE_INVOKER; r++)
            if (router_role_allows(r, m.route->perm) != want[r])
                fail_msg("%s %s, role %d: expected %s", cases[i].method, cases[i].path, r,
                         want[r] ? "allowed" : "refused");
        route_match_deinit(&m);
    }
    /* A slug or an id is exactly one segment; the methods a path has are named on a 405. */
    assert_int_equal(match("GET", "/connectors/a/b", &pat, p0, p1, allow), ROUTER_NO_PATH);
    assert_int_equal(match("GET", "/connections/a/b", &pat, p0, p1, allow), ROUTER_NO_PATH);
    assert_int_equal(match("GET", "/connectors/billing/versions/1/x", &pat, p0, p1, allow),
                     ROUTER_NO_PATH);
    assert_int_equal(match("POST", "/connections/x", &pat, p0, p1, allow), ROUTER_NO_METHOD);
    assert_string_equal(allow, "GET, PUT, DELETE");
    assert_int_equal(match("DELETE", "/connectors/x", &pat, p0, p1, allow), ROUTER_NO_METHOD);
    assert_string_equal(allow, "GET, PUT");
    assert_int_equal(match("PUT", "/connections", &pat, p0, p1, allow), ROUTER_NO_METHOD);
    assert_string_equal(allow, "GET");
}

static void test_router_table_is_consistent(void **state)
{
    (void)state;
    for (size_t i = 0; i < server_route_count; i++) {
        const route_t *r = &server_routes[i];
        assert_non_null(r->handler);
        assert_true(r->pattern[0] == '/');
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->method, server_routes[j].method) == 0 &&
                strcmp(r->pattern, server_routes[j].pattern) == 0)
                fail_msg("duplicate route %s %s", r->method, r->pattern);
        /* Only /healthz is open. */
        assert_int_equal(r->perm == PERM_NONE, strcmp(r->pattern, "/healthz") == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_normalize_table),
        cmocka_unit_test(test_router_match_names_with_slashes),
        cmocka_unit_test(test_router_404_and_405),
        cmocka_unit_test(test_router_permissions_per_role),
        cmocka_unit_test(test_router_connections_per_role),
        cmocka_unit_test(test_router_table_is_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
