/* test_vault.c - the vault (random text, the token hash, constant-time compare, wiping) and
 * API tokens on top of it: making, parsing and checking them against a real store in a
 * temporary directory under /tmp, removed afterwards.
 */
#include "vault/token.h"
#include "vault/vault.h"

#include "core/xalloc.h"
#include "store/store.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmp_store.h"

/* BLAKE2b-256 of "secret-one" keyed with "braid-token-hash-v1", as Python's hashlib computes it:
 * hashlib.blake2b(b"secret-one", digest_size=32, key=b"braid-token-hash-v1").hexdigest() */
#define EXPECTED_HASH_HEX "da33062440c42a27fc27228e03490932010717d3afd3643c1f4cc8bbb2a18647"

/* ---- fixtures -------------------------------------------------------------------------------- */

typedef store_fx_t fx_t;

static int setup(void **state)
{
    return store_fx_setup(state, "/tmp/braid_vault_XXXXXX", NULL);
}

static int teardown(void **state)
{
    return store_fx_teardown(state);
}

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Make a token in F's store; returns it owned (plain free: tests hold no real secrets). */
static char *make(fx_t *f, const char *role, token_rec_t **rec)
{
    char *tok = NULL;
    err_t err = {0};
    int rc = token_create(f->st, role, NULL, NULL, &tok, rec, &err);
    if (rc != 0)
        fprintf(stderr, "token_create: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(tok);
    return tok;
}

/* ---- the vault ------------------------------------------------------------------------------- */

static void test_vault_init_twice(void **state)
{
    (void)state;
    assert_int_equal(vault_init(NULL), 0);
    assert_int_equal(vault_init(NULL), 0);
}

static void test_vault_random_text(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 16, 32, 33, 100};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char out[200];
        memset(out, 'X', sizeof out);
        vault_random_text(out, 4 * n / 3 + 2, n);
        assert_int_equal(strlen(out), (4 * n + 2) / 3); /* ceil(4n/3), no padding */
        for (const char *p = out; *p; p++)
            assert_true(is_b64url(*p));
    }
    char a[44], b[44];
    vault_random_text(a, sizeof a, 32);
    vault_random_text(b, sizeof b, 32);
    assert_int_equal(strlen(a), 43);
    assert_string_not_equal(a, b);

    /* Over many draws every character of the alphabet turns up (and nothing else). */
    bool seen[256] = {false};
    for (int k = 0; k < 200; k++) {
        vault_random_text(a, sizeof a, 32);
        for (const char *p = a; *p; p++)
            seen[(unsigned char)*p] = true;
    }
    int count = 0;
    for (int c = 0; c < 256; c++)
        if (seen[c]) {
            assert_true(is_b64url((char)c));
            count++;
        }
    assert_int_equal(count, 64);
}

static void test_vault_random_bytes(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    vault_random(a, sizeof a);
    vault_random(b, sizeof b);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_vault_hash(void **state)
{
    (void)state;
    unsigned char h1[32], h2[32], h3[32], h4[32];
    vault_token_hash("secret-one", 10, h1);
    vault_token_hash("secret-one", 10, h2);
    vault_token_hash("secret-two", 10, h3);
    vault_token_hash("secret-on", 9, h4);
    assert_memory_equal(h1, h2, 32);
    assert_memory_not_equal(h1, h3, 32);
    assert_memory_not_equal(h1, h4, 32);
    /* Stable across builds: stored hashes must keep matching. BLAKE2b-256 keyed with
     * "braid-token-hash-v1" of "secret-one". */
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h1[i]);
    assert_string_equal(hex, EXPECTED_HASH_HEX);
}

static void test_vault_equal_and_wipe(void **state)
{
    (void)state;
    unsigned char a[16] = "0123456789abcde", b[16] = "0123456789abcde", c[16] = "0123456789abcdX";
    assert_true(vault_equal(a, b, sizeof a));
    assert_false(vault_equal(a, c, sizeof a));
    assert_true(vault_equal(a, c, 14)); /* only the first N bytes count */
    vault_wipe(a, sizeof a);
    unsigned char zero[16] = {0};
    assert_memory_equal(a, zero, sizeof a);
    vault_wipe(NULL, 0);
}

/* ---- tokens ---------------------------------------------------------------------------------- */

static void test_vault_token_round_trip(void **state)
{
    fx_t *f = *state;
    json_t *scopes = json_pack("[s, s]", "orders/*", "trigger-1");
    char *tok = NULL;
    token_rec_t *rec = NULL;
    err_t err = {0};
    assert_int_equal(token_create(f->st, "invoker", scopes, "ci", &tok, &rec, &err), 0);
    assert_int_equal(strlen(tok), TOKEN_LEN);
    assert_int_equal(strncmp(tok, "brd_t_", 6), 0);
    assert_int_equal(strlen(rec->id), 18);
    assert_int_equal(strncmp(tok + 4, rec->id, 18), 0);
    assert_string_equal(rec->role, "invoker");
    assert_true(rec->created_at > 0);
    assert_int_equal(rec->revoked_at, 0);

    char id[40], secret[64];
    assert_int_equal(token_parse(tok, id, secret), 0);
    assert_string_equal(id, rec->id);
    assert_int_equal(strlen(secret), 43);

    /* Only the hash is stored, and it is the secret's. */
    token_rec_t *got = NULL;
    assert_int_equal(store_token_get(f->st, id, &got, NULL), 0);
    unsigned char h[32];
    vault_token_hash(secret, strlen(secret), h);
    assert_memory_equal(got->hash, h, 32);
    assert_true(json_equal(got->scopes, scopes));
    assert_string_equal(got->description, "ci");
    token_rec_free(got);

    token_rec_t *who = NULL;
    assert_int_equal(token_verify(f->st, tok, &who, &err), 0);
    assert_string_equal(who->id, rec->id);
    assert_string_equal(who->role, "invoker");
    assert_true(json_equal(who->scopes, scopes));
    token_rec_free(who);
    assert_int_equal(token_verify(f->st, tok, NULL, NULL), 0);

    /* Two tokens never share id or secret. */
    char *tok2 = make(f, "invoker", NULL);
    assert_string_not_equal(tok, tok2);
    assert_int_not_equal(strncmp(tok, tok2, 22), 0);

    vault_wipe(tok, strlen(tok));
    free(tok);
    free(tok2);
    token_rec_free(rec);
    json_decref(scopes);
}

static void test_vault_token_create_checks(void **state)
{
    fx_t *f = *state;
    char *tok = (char *)"untouched";
    token_rec_t *rec = NULL;
    err_t err = {0};
    assert_int_equal(token_create(f->st, "root", NULL, NULL, &tok, &rec, &err), BR_EUSAGE);
    assert_null(tok);
    assert_null(rec);
    assert_non_null(strstr(err.msg, "role"));
    assert_int_equal(token_create(f->st, NULL, NULL, NULL, &tok, NULL, NULL), BR_EUSAGE);
    assert_int_equal(token_create(f->st, "Admin", NULL, NULL, &tok, NULL, NULL), BR_EUSAGE);

    json_t *bad[] = {json_pack("[s, s]", "ok", ""), json_pack("[s, i]", "ok", 3),
                     json_pack("{s:s}", "a", "b"), json_pack("[n]")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(token_create(f->st, "invoker", bad[i], NULL, &tok, NULL, NULL), BR_EUSAGE);
        json_decref(bad[i]);
    }
    json_t *empty = json_array();
    static const char *const roles[] = {"admin", "editor", "viewer", "invoker"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(token_create(f->st, roles[i], empty, NULL, &tok, &rec, NULL), 0);
        assert_string_equal(rec->role, roles[i]);
        assert_int_equal(json_array_size(rec->scopes), 0);
        assert_null(rec->description);
        free(tok);
        token_rec_free(rec);
    }
    json_decref(empty);
    json_t *list = NULL;
    assert_int_equal(store_token_list(f->st, &list, NULL), 0);
    assert_int_equal(json_array_size(list), 4); /* nothing of the refused ones was stored */
    json_decref(list);
}

static void test_vault_token_revoked_refused(void **state)
{
    fx_t *f = *state;
    token_rec_t *rec = NULL;
    char *tok = make(f, "admin", &rec);
    assert_int_equal(token_verify(f->st, tok, NULL, NULL), 0);
    assert_int_equal(store_token_revoke(f->st, rec->id, 0, NULL), 0);
    token_rec_t *who = (token_rec_t *)1;
    err_t err = {0};
    assert_int_equal(token_verify(f->st, tok, &who, &err), BR_ENOT_FOUND);
    assert_null(who);
    char revoked_msg[sizeof err.msg];
    snprintf(revoked_msg, sizeof revoked_msg, "%s", err.msg);

    /* Unknown id, malformed, wrong secret: the same answer, word for word. */
    char unknown[TOKEN_LEN + 1];
    snprintf(unknown, sizeof unknown, "%s", tok);
    memcpy(unknown + 6, "0000000000000000", 16);
    assert_int_equal(token_verify(f->st, unknown, NULL, &err), BR_ENOT_FOUND);
    assert_string_equal(err.msg, revoked_msg);
    assert_int_equal(token_verify(f->st, "nonsense", NULL, &err), BR_ENOT_FOUND);
    assert_string_equal(err.msg, revoked_msg);
    assert_int_equal(token_verify(f->st, NULL, NULL, &err), BR_ENOT_FOUND);
    assert_string_equal(err.msg, revoked_msg);
    free(tok);
    token_rec_free(rec);
}

static void test_vault_token_tampered_refused(void **state)
{
    fx_t *f = *state;
    char *tok = make(f, "viewer", NULL);
    char *other = make(f, "viewer", NULL);
    err_t err = {0};
    size_t n = strlen(tok);

    /* Each character of the secret changed to another canonical one. */
    for (size_t i = 23; i < n - 1; i++) {
        char t[TOKEN_LEN + 1];
        memcpy(t, tok, n + 1);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_int_equal(token_verify(f->st, t, NULL, &err), BR_ENOT_FOUND);
    }
    /* A real secret under another token's id. */
    char swapped[TOKEN_LEN + 1];
    memcpy(swapped, tok, 23);
    memcpy(swapped + 23, other + 23, n - 23 + 1);
    assert_int_equal(token_verify(f->st, swapped, NULL, &err), BR_ENOT_FOUND);
    /* Cut short, or with more after it. */
    char cut[TOKEN_LEN + 1];
    memcpy(cut, tok, n - 1);
    cut[n - 1] = '\0';
    assert_int_equal(token_verify(f->st, cut, NULL, &err), BR_ENOT_FOUND);
    char *longer = xasprintf("%sA", tok);
    assert_int_equal(token_verify(f->st, longer, NULL, &err), BR_ENOT_FOUND);
    free(longer);
    assert_int_equal(token_verify(f->st, tok, NULL, &err), 0);
    free(tok);
    free(other);
}

static void test_vault_token_parse_malformed(void **state)
{
    (void)state;
    /* A well-formed one to vary: 43 characters of secret, last one canonical ('A' ends
     * with zero bits: 32 bytes fill 256 of its 258 bits). */
    static const char good[] = "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A";
    char id[40], secret[64];
    assert_int_equal(strlen(good), TOKEN_LEN);
    assert_int_equal(token_parse(good, id, secret), 0);
    assert_string_equal(id, "t_0123456789abcdef");
    assert_string_equal(secret, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A");
    /* '_' and '-' belong to the secret's alphabet, first character included: the token is
     * read by position, not split at underscores. */
    assert_int_equal(
        token_parse("brd_t_0123456789abcdef__bcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_012-A", id,
                    secret),
        0);
    assert_string_equal(secret, "_bcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_012-A");

    static const char *const bad[] = {
        "",
        "brd_",
        /* missing or wrong prefix */
        "t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "xrd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "BRD_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "Bearer brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        /* wrong lengths: id one short or long, secret one short or long */
        "brd_t_0123456789abcde_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "brd_t_0123456789abcdef0_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123",
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123AA",
        /* same length, but extra underscores shift the parts */
        "brd__t_0123456789abcde_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "brd_t__0123456789abcde_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "brd_t_0123456789abcde__abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        /* id not lowercase hex */
        "brd_t_0123456789ABCDEF_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "brd_t_0123456789abcdeg_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        "brd_x_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A",
        /* non-base64url characters in the secret, standard base64's among them */
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ+/0123A",
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_012=A",
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01 3A",
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01.3A",
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01\xc3\xa9"
        "A",
        /* padding */
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_012A=",
        /* the last character not canonical ('B' leaves a bit set beyond the 256) */
        "brd_t_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123B",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(id, 'x', sizeof id);
        memset(secret, 'x', sizeof secret);
        if (token_parse(bad[i], id, secret) != -1)
            fail_msg("token_parse accepted \"%s\"", bad[i]);
        assert_string_equal(id, "");
        assert_string_equal(secret, "");
    }
    assert_int_equal(token_parse(NULL, id, secret), -1);

    /* Every byte outside the alphabet, in the middle of the secret (libsodium 1.0.18 alone
     * lets bytes >= 0x80 through). */
    char t[TOKEN_LEN + 1];
    for (int c = 1; c < 256; c++) {
        if (is_b64url((char)c))
            continue;
        memcpy(t, good, sizeof t);
        t[40] = (char)c;
        if (token_parse(t, id, secret) != -1)
            fail_msg("token_parse accepted byte 0x%02x in the secret", c);
    }
}

static void test_vault_token_role_valid(void **state)
{
    (void)state;
    assert_true(token_role_valid("admin"));
    assert_true(token_role_valid("editor"));
    assert_true(token_role_valid("viewer"));
    assert_true(token_role_valid("invoker"));
    assert_false(token_role_valid("admins"));
    assert_false(token_role_valid(""));
    assert_false(token_role_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vault_init_twice),
        cmocka_unit_test(test_vault_random_text),
        cmocka_unit_test(test_vault_random_bytes),
        cmocka_unit_test(test_vault_hash),
        cmocka_unit_test(test_vault_equal_and_wipe),
        cmocka_unit_test_setup_teardown(test_vault_token_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vault_token_create_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vault_token_revoked_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vault_token_tampered_refused, setup, teardown),
        cmocka_unit_test(test_vault_token_parse_malformed),
        cmocka_unit_test(test_vault_token_role_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
