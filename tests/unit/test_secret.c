/* test_secret.c - the master key (environment, key file creation, modes, format) and sealing:
 * round trips, tampering with every byte, wrong connection, name, version or key. Key files
 * live in a temporary directory under /tmp, removed afterwards.
 */
#include "vault/secret.h"

#include "core/xalloc.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* base64 of 32 bytes 0x00..0x1f, and of 32 bytes 0x01. */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

static char dir[64];

static int setup(void **state)
{
    (void)state;
    unsetenv(SECRET_KEY_ENV);
    snprintf(dir, sizeof dir, "/tmp/braid-secret-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *p = xasprintf("%s/%s", dir, SECRET_KEY_FILE);
    unlink(p);
    free(p);
    rmdir(dir);
    unsetenv(SECRET_KEY_ENV);
    return 0;
}

static secret_key_t *parse(const char *text)
{
    secret_key_t *k = NULL;
    err_t err = {0};
    int rc = secret_key_parse(text, strlen(text), &k, &err);
    if (rc != 0)
        fail_msg("parse: %s", err.msg);
    return k;
}

static void test_secret_round_trip(void **state)
{
    (void)state;
    secret_key_t *k = parse("1 " KEY_A "\n");
    const char *vals[] = {"hunter2-very-secret", "", "x", "with\0nul"};
    size_t lens[] = {19, 0, 1, 8};
    for (size_t i = 0; i < 4; i++) {
        char *sealed = NULL;
        err_t err = {0};
        assert_int_equal(secret_seal(k, "billing-prod", "api_key", (const unsigned char *)vals[i],
                                     lens[i], &sealed, &err),
                         0);
        assert_int_equal(strncmp(sealed, "v1:", 3), 0);
        assert_int_equal(secret_sealed_version(sealed), 1);
        unsigned char *plain = NULL;
        size_t len = 99;
        assert_int_equal(secret_open(k, "billing-prod", "api_key", sealed, &plain, &len, &err), 0);
        assert_int_equal(len, lens[i]);
        if (lens[i])
            assert_memory_equal(plain, vals[i], lens[i]);
        assert_int_equal(plain[len], 0);
        secret_plain_free(plain);
        /* Two seals of the same value differ (random nonce). */
        char *again = NULL;
        secret_seal(k, "billing-prod", "api_key", (const unsigned char *)vals[i], lens[i], &again,
                    NULL);
        assert_string_not_equal(sealed, again);
        free(again);
        free(sealed);
    }
    secret_key_free(k);
}

static void expect_open_fails(const secret_key_t *k, const char *id, const char *name,
                              const char *sealed)
{
    unsigned char *plain = (unsigned char *)"sentinel";
    size_t len = 7;
    err_t err = {0};
    int rc = secret_open(k, id, name, sealed, &plain, &len, &err);
    assert_int_equal(rc, BR_EINPUT_INVALID);
    assert_int_equal(err.code, BR_EINPUT_INVALID);
    assert_null(plain);
    assert_int_equal(len, 0);
    assert_null(strstr(err.msg, "s3cr3t-value"));
}

static void test_secret_tamper_every_byte(void **state)
{
    (void)state;
    secret_key_t *k = parse("1 " KEY_A "\n");
    char *sealed = NULL;
    assert_int_equal(
        secret_seal(k, "conn", "token", (const unsigned char *)"s3cr3t-value", 12, &sealed, NULL),
        0);
    size_t n = strlen(sealed);
    char *t = xstrdup(sealed);
    const char *alphabet = "ABCabc019+/=:v-_ \n";
    for (size_t i = 0; i < n; i++) {
        for (const char *a = alphabet; *a; a++) {
            if (*a == sealed[i])
                continue;
            t[i] = *a;
            expect_open_fails(k, "conn", "token", t);
        }
        t[i] = (char)(sealed[i] ^ 0x01);
        expect_open_fails(k, "conn", "token", t);
        t[i] = sealed[i];
    }
    /* Truncated at every length, and extended. */
    for (size_t i = 0; i < n; i++) {
        t[i] = '\0';
        expect_open_fails(k, "conn", "token", t);
        t[i] = sealed[i];
    }
    char *longer = xasprintf("%sAAAA", sealed);
    expect_open_fails(k, "conn", "token", longer);
    free(longer);
    free(t);
    free(sealed);
    secret_key_free(k);
}

static void test_secret_wrong_id_name_version_key(void **state)
{
    (void)state;
    /* Same key bytes under versions 1 and 2: only the bound version tells them apart. */
    secret_key_t *k12 = parse("# comment\n\n1 " KEY_A "\n2 " KEY_A "\n");
    assert_int_equal(secret_key_version(k12), 2);
    secret_key_t *k1 = parse("1 " KEY_A "\n");
    secret_key_t *kb = parse("1 " KEY_B "\n");
    char *sealed = NULL;
    assert_int_equal(
        secret_seal(k1, "conn", "token", (const unsigned char *)"s3cr3t-value", 12, &sealed, NULL),
        0);
    expect_open_fails(k1, "conn2", "token", sealed);
    expect_open_fails(k1, "con", "ntoken", sealed);
    expect_open_fails(k1, "conn", "token2", sealed);
    expect_open_fails(k1, "conn", "", sealed);
    expect_open_fails(kb, "conn", "token", sealed);
    /* Version 1 opens under the two-key set; relabelled as version 2 it does not. */
    unsigned char *plain = NULL;
    size_t len = 0;
    assert_int_equal(secret_open(k12, "conn", "token", sealed, &plain, &len, NULL), 0);
    secret_plain_free(plain);
    char *v2 = xasprintf("v2%s", sealed + 2);
    expect_open_fails(k12, "conn", "token", v2);
    expect_open_fails(k1, "conn", "token", v2); /* version 2 unknown to k1 */
    free(v2);
    /* Sealed under k12 it is version 2, which k1 lacks. */
    char *s2 = NULL;
    secret_seal(k12, "conn", "token", (const unsigned char *)"s3cr3t-value", 12, &s2, NULL);
    assert_int_equal(strncmp(s2, "v2:", 3), 0);
    expect_open_fails(k1, "conn", "token", s2);
    expect_open_fails(k1, "conn", "token", "not sealed");
    expect_open_fails(k1, "conn", "token", "v01:AAAA");
    free(s2);
    free(sealed);
    secret_key_free(k1);
    secret_key_free(k12);
    secret_key_free(kb);
}

static void expect_env_fails(const char *value)
{
    setenv(SECRET_KEY_ENV, value, 1);
    secret_key_t *k = (secret_key_t *)1;
    err_t err = {0};
    assert_int_equal(secret_key_load(dir, &k, &err), BR_EINPUT_INVALID);
    assert_null(k);
    assert_non_null(strstr(err.msg, SECRET_KEY_ENV));
}

static void test_secret_env_key(void **state)
{
    (void)state;
    setenv(SECRET_KEY_ENV, KEY_A "\n", 1);
    secret_key_t *env = NULL;
    err_t err = {0};
    assert_int_equal(secret_key_load(dir, &env, &err), 0);
    assert_int_equal(secret_key_version(env), 1);
    /* No key file is made when the environment provides the key. */
    char *path = xasprintf("%s/%s", dir, SECRET_KEY_FILE);
    assert_int_not_equal(access(path, F_OK), 0);
    free(path);
    /* It is the same key as the file form. */
    secret_key_t *file = parse("1 " KEY_A);
    char *sealed = NULL;
    secret_seal(env, "c", "n", (const unsigned char *)"value", 5, &sealed, NULL);
    unsigned char *plain = NULL;
    size_t len = 0;
    assert_int_equal(secret_open(file, "c", "n", sealed, &plain, &len, NULL), 0);
    secret_plain_free(plain);
    free(sealed);
    secret_key_free(file);
    secret_key_free(env);

    expect_env_fails("");
    expect_env_fails("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==");     /* 31 bytes */
    expect_env_fails("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ=="); /* 34 bytes */
    expect_env_fails("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8!");     /* bad character */
    expect_env_fails("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=");     /* non-canonical */
    expect_env_fails("not base64 at all");
}

static void test_secret_key_file_created_and_reused(void **state)
{
    (void)state;
    secret_key_t *k1 = NULL, *k2 = NULL;
    err_t err = {0};
    assert_int_equal(secret_key_load(dir, &k1, &err), 0);
    char *path = xasprintf("%s/%s", dir, SECRET_KEY_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(secret_key_version(k1), 1);
    char *sealed = NULL;
    secret_seal(k1, "c", "n", (const unsigned char *)"value", 5, &sealed, NULL);
    assert_int_equal(secret_key_load(dir, &k2, &err), 0);
    unsigned char *plain = NULL;
    size_t len = 0;
    assert_int_equal(secret_open(k2, "c", "n", sealed, &plain, &len, &err), 0);
    assert_memory_equal(plain, "value", 5);
    secret_plain_free(plain);
    free(sealed);
    secret_key_free(k1);
    secret_key_free(k2);

    /* Group- or world-readable: refused, naming the mode. */
    const mode_t bad[] = {0644, 0640, 0604, 0660, 0602};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chmod(path, bad[i]);
        secret_key_t *k = (secret_key_t *)1;
        err_clear(&err);
        assert_int_equal(secret_key_load(dir, &k, &err), BR_EIO);
        assert_null(k);
        assert_non_null(strstr(err.msg, "mode"));
    }
    chmod(path, 0400);
    assert_int_equal(secret_key_load(dir, &k1, &err), 0);
    secret_key_free(k1);

    /* A malformed file is an error naming the line, never replaced. */
    chmod(path, 0600);
    FILE *f = fopen(path, "w");
    fputs("# header\n1 " KEY_A "\n1 " KEY_B "\n", f);
    fclose(f);
    err_clear(&err);
    assert_int_equal(secret_key_load(dir, &k1, &err), BR_EINPUT_INVALID);
    assert_non_null(strstr(err.msg, "line 3"));
    f = fopen(path, "w");
    fputs("1 " KEY_A "\n7 " KEY_B "\n", f);
    fclose(f);
    assert_int_equal(secret_key_load(dir, &k1, &err), 0);
    assert_int_equal(secret_key_version(k1), 7);
    secret_key_free(k1);
    const char *bad_files[] = {"",    "# only a comment\n", "0 " KEY_A "\n",      "x " KEY_A "\n",
                               "1\n", "1 AAAA\n",           "1000000 " KEY_A "\n"};
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        secret_key_t *k = NULL;
        assert_int_equal(secret_key_parse(bad_files[i], strlen(bad_files[i]), &k, NULL),
                         BR_EINPUT_INVALID);
        assert_null(k);
    }
    free(path);
}

static void test_secret_no_core_dumps(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        int ok = secret_no_core_dumps() == 0 && getrlimit(RLIMIT_CORE, &rl) == 0 &&
                 rl.rlim_cur == 0 && rl.rlim_max == 0 && prctl(PR_GET_DUMPABLE) == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secret_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_tamper_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_wrong_id_name_version_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_env_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_file_created_and_reused, setup, teardown),
        cmocka_unit_test(test_secret_no_core_dumps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
