/* test_guard.c - the address guard's classifier (src/net/guard.c): the range table cases of
 * tests/cases/guard.txt (format at the top of that file, found under $BRAID_SOURCE_DIR, which
 * CTest sets, or under the current directory), --allow-net parsing, and real sockaddrs.
 */
#include "core/err.h"
#include "net/guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

/* One line of guard.txt; returns 1 when it passes, 0 when it fails (reported on stderr). */
static int run_case(char *line, int lineno)
{
    char *save = NULL;
    char *addr = strtok_r(line, " \t\r\n", &save);
    char *want = strtok_r(NULL, " \t\r\n", &save);
    if (!addr || !want || (strcmp(want, "allow") != 0 && strcmp(want, "block") != 0))
        fail_msg("guard.txt:%d: expected 'ADDRESS allow|block [--allow CIDR...]'", lineno);

    guard_t *g = guard_new();
    char *tok;
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
        char *cidr = strtok_r(NULL, " \t\r\n", &save);
        if (strcmp(tok, "--allow") != 0 || !cidr)
            fail_msg("guard.txt:%d: expected '--allow CIDR', got '%s'", lineno, tok);
        err_t err = {0};
        if (guard_allow_cidr(g, cidr, &err) != 0)
            fail_msg("guard.txt:%d: %s", lineno, err.msg);
    }
    char why[256];
    int rc = guard_check_text(g, addr, why, sizeof why);
    guard_free(g);

    int ok = strcmp(want, "allow") == 0 ? rc == 0 : rc == BR_EBLOCKED;
    if (!ok)
        fprintf(stderr, "guard.txt:%d: %s: expected %s, got %s%s%s\n", lineno, addr, want,
                rc == 0 ? "allow" : err_name(rc), *why ? ": " : "", why);
    if (ok && rc != 0 && why[0] == '\0') {
        fprintf(stderr, "guard.txt:%d: %s: refused without a reason\n", lineno, addr);
        ok = 0;
    }
    return ok;
}

static void test_guard_table_cases(void **state)
{
    (void)state;
    const char *dir = getenv("BRAID_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/cases/guard.txt", dir && *dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (set BRAID_SOURCE_DIR to the source tree)", path);

    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, cases = 0, failures = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        const char *p = line + strspn(line, " \t\r\n");
        if (*p == '\0' || *p == '#')
            continue;
        cases++;
        failures += !run_case(line, lineno);
    }
    free(line);
    fclose(f);
    fprintf(stderr, "guard.txt: %d cases, %d failed\n", cases, failures);
    assert_int_equal(failures, 0);
    assert_true(cases >= 80);
}

static void test_guard_allow_cidr_rejects_bad_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/8",
        "127.0.0.1/",
        "127.0.0.1/33",
        "::/129",
        "127.0.0.1/8",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0.0/-1",
        "10.0.0.0/8/8",
        "10.0.0.0/ 8",
        "127.1/32",
        "0x7f.0.0.1/32",
        "fe80::1%lo/128",
        "localhost",
        "fe80::1/9",
        "1.2.3.4.5/32",
        "::g/128",
        "10.0.0.0/1000",
        " 10.0.0.0/8",
    };
    guard_t *g = guard_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_t err = {0};
        int rc = guard_allow_cidr(g, bad[i], &err);
        if (rc != BR_EUSAGE)
            fail_msg("'%s' was accepted (rc %d)", bad[i], rc);
        assert_int_equal(err.code, BR_EUSAGE);
        assert_non_null(strstr(err.msg, "--allow-net"));
        err_clear(&err);
    }
    err_t err = {0};
    assert_int_equal(guard_allow_cidr(g, NULL, &err), BR_EUSAGE);
    err_clear(&err);
    assert_int_equal(guard_allow_cidr(g, "127.0.0.1/8", &err), BR_EUSAGE);
    assert_non_null(strstr(err.msg, "network address"));
    err_clear(&err);
    assert_int_equal(guard_allow_cidr(g, "10.0.0.0/33", NULL), BR_EUSAGE);

    static const char *const good[] = {"0.0.0.0/0",  "::/0",       "127.0.0.1",
                                       "fd00::/8",   "10.0.0.0/8", "::ffff:127.0.0.1/128",
                                       "127.0.0.0/8"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (guard_allow_cidr(g, good[i], &err) != 0)
            fail_msg("'%s' was refused: %s", good[i], err.msg);
    }
    /* A failed call leaves the guard as it was: 127.0.0.1/8 above did not open anything. */
    guard_free(g);
    g = guard_new();
    assert_int_equal(guard_allow_cidr(g, "127.0.0.1/8", NULL), BR_EUSAGE);
    assert_int_equal(guard_check_text(g, "127.0.0.1", NULL, 0), BR_EBLOCKED);
    guard_free(g);
    guard_free(NULL);
}

static int check_v4(const guard_t *g, const char *ip, char *why, size_t why_len)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(443);
    assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    return guard_check(g, (const struct sockaddr *)&sin, sizeof sin, why, why_len);
}

static int check_v6(const guard_t *g, const char *ip, char *why, size_t why_len)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    return guard_check(g, (const struct sockaddr *)&sin6, sizeof sin6, why, why_len);
}

static void test_guard_check_real_sockaddrs(void **state)
{
    (void)state;
    char why[256];
    guard_t *g = guard_new();

    assert_int_equal(check_v4(g, "127.0.0.1", why, sizeof why), BR_EBLOCKED);
    assert_string_equal(why, "127.0.0.1 is loopback (127.0.0.0/8, RFC 1122)");
    assert_int_equal(check_v4(g, "169.254.169.254", why, sizeof why), BR_EBLOCKED);
    assert_non_null(strstr(why, "link-local"));
    assert_int_equal(check_v4(g, "8.8.8.8", why, sizeof why), 0);
    assert_string_equal(why, "");

    assert_int_equal(check_v6(g, "::ffff:127.0.0.1", why, sizeof why), BR_EBLOCKED);
    assert_non_null(strstr(why, "IPv4-mapped and embeds 127.0.0.1, which is loopback"));
    assert_int_equal(check_v6(g, "2001:0:808:808::80ff:fffe", why, sizeof why), BR_EBLOCKED);
    assert_non_null(strstr(why, "Teredo and embeds client 127.0.0.1"));
    assert_int_equal(check_v6(g, "2002:a9fe:a9fe::1", why, sizeof why), BR_EBLOCKED);
    assert_non_null(strstr(why, "6to4 and embeds 169.254.169.254"));
    assert_int_equal(check_v6(g, "::1", why, sizeof why), BR_EBLOCKED);
    assert_string_equal(why, "::1 is loopback (::1/128, RFC 4291)");
    assert_int_equal(check_v6(g, "2606:4700:4700::1111", why, sizeof why), 0);

    /* Short or foreign socket addresses are refused, never read past their length. */
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x08080808);
    assert_int_equal(guard_check(g, (const struct sockaddr *)&sin, sizeof sin, NULL, 0), 0);
    assert_int_equal(guard_check(g, (const struct sockaddr *)&sin, 4, why, sizeof why),
                     BR_EBLOCKED);
    assert_int_equal(guard_check(g, (const struct sockaddr *)&sin, 0, why, sizeof why),
                     BR_EBLOCKED);
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "2606:4700:4700::1111", &sin6.sin6_addr), 1);
    assert_int_equal(
        guard_check(g, (const struct sockaddr *)&sin6, sizeof(struct sockaddr_in), why, sizeof why),
        BR_EBLOCKED);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    assert_int_equal(guard_check(g, (const struct sockaddr *)&sun, sizeof sun, why, sizeof why),
                     BR_EBLOCKED);
    assert_non_null(strstr(why, "not IPv4 or IPv6"));
    assert_int_equal(guard_check(g, NULL, 0, why, sizeof why), BR_EBLOCKED);

    /* A tiny WHY buffer is truncated, never overrun. */
    char tiny[8];
    assert_int_equal(check_v4(g, "10.0.0.1", tiny, sizeof tiny), BR_EBLOCKED);
    assert_int_equal(strlen(tiny), 7);

    /* --allow-net reaches sockaddrs too; a NULL guard means the defaults. */
    assert_int_equal(guard_allow_cidr(g, "127.0.0.1/32", NULL), 0);
    assert_int_equal(check_v4(g, "127.0.0.1", why, sizeof why), 0);
    assert_int_equal(check_v6(g, "::ffff:127.0.0.1", why, sizeof why), 0);
    assert_int_equal(check_v4(g, "127.0.0.2", why, sizeof why), BR_EBLOCKED);
    assert_int_equal(check_v4(NULL, "127.0.0.1", why, sizeof why), BR_EBLOCKED);
    assert_int_equal(check_v4(NULL, "1.1.1.1", why, sizeof why), 0);
    guard_free(g);
}

static void test_guard_check_text_is_strict(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(guard_check_text(NULL, "127.1", why, sizeof why), BR_EBLOCKED);
    assert_string_equal(why, "'127.1' is not a strict IPv4 or IPv6 address");
    assert_int_equal(guard_check_text(NULL, NULL, why, sizeof why), BR_EBLOCKED);
    assert_int_equal(guard_check_text(NULL, "", NULL, 0), BR_EBLOCKED);
    assert_int_equal(guard_check_text(NULL, "64:ff9b::7f00:1", why, sizeof why), BR_EBLOCKED);
    assert_non_null(strstr(why, "NAT64 and embeds 127.0.0.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_table_cases),
        cmocka_unit_test(test_guard_allow_cidr_rejects_bad_text),
        cmocka_unit_test(test_guard_check_real_sockaddrs),
        cmocka_unit_test(test_guard_check_text_is_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
