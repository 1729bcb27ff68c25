/* vault.c - the one door to libsodium: random bytes and text, the stored hash of a token's
 * secret, constant-time comparison and wiping.
 *
 * Invariant: a token's secret is only ever hashed under TOKEN_HASH_KEY, so a hash stored by
 * one braid is checked the same way by the next; changing the key means a new "-vN" context.
 */
#include "vault/vault.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

/* The fixed key of the token hash (BLAKE2b's keyed mode as a domain separator): hashes of
 * token secrets can never be confused with BLAKE2b of the same bytes used elsewhere. The
 * secret has 256 bits of entropy, so a fast hash is enough; no salt or stretching is needed. */
static const unsigned char TOKEN_HASH_KEY[] = "braid-token-hash-v1";

/* crypto_generichash refuses keys shorter than 16 bytes. */
_Static_assert(sizeof TOKEN_HASH_KEY - 1 >= crypto_generichash_KEYBYTES_MIN,
               "the token hash key is too short for BLAKE2b");

/* Initialise libsodium. sodium_init returns 1 when it was already initialised, which is no
 * error; it is itself thread-safe. 0 or BR_EINTERNAL. Any thread. */
int vault_init(err_t *err)
{
    if (sodium_init() < 0)
        return err_set(err, BR_EINTERNAL, "cannot initialise libsodium");
    return 0;
}

/* libsodium must be initialised before its random functions are used (it picks the
 * getrandom() implementation and checks the kernel's pool); failing that nothing here can
 * work safely, so it is fatal. */
static void ensure_init(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "braid: fatal: cannot initialise libsodium\n");
        abort();
    }
}

/* Fill BUF (N bytes, borrowed) from the kernel's CSPRNG. Any thread. */
void vault_random(void *buf, size_t n)
{
    ensure_init();
    randombytes_buf(buf, n);
}

/* N random bytes as URL-safe base64 without padding into OUT (OUT_LEN bytes, borrowed),
 * NUL-terminated: ceil(4N/3) characters. An OUT too small is a programming error and aborts
 * rather than hand out a shortened secret. Any thread. */
void vault_random_text(char *out, size_t out_len, size_t n)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    if (out_len < sodium_base64_ENCODED_LEN(n, variant)) {
        fprintf(stderr, "braid: fatal: vault_random_text: %zu bytes cannot hold %zu random\n",
                out_len, n);
        abort();
    }
    unsigned char stack[64];
    unsigned char *raw = n <= sizeof stack ? stack : malloc(n);
    if (!raw) {
        fprintf(stderr, "braid: fatal: out of memory\n");
        abort();
    }
    vault_random(raw, n);
    sodium_bin2base64(out, out_len, raw, n, variant);
    sodium_memzero(raw, n);
    if (raw != stack)
        free(raw);
}

/* BLAKE2b-256 of SECRET (LEN bytes, borrowed) keyed with TOKEN_HASH_KEY into OUT. Any
 * thread. */
void vault_token_hash(const char *secret, size_t len, unsigned char out[32])
{
    ensure_init();
    /* Fails only for lengths outside BLAKE2b's limits, which these constants are not. */
    if (crypto_generichash(out, 32, (const unsigned char *)secret, len, TOKEN_HASH_KEY,
                           sizeof TOKEN_HASH_KEY - 1) != 0) {
        fprintf(stderr, "braid: fatal: crypto_generichash failed\n");
        abort();
    }
}

/* Whether the N bytes at A and B are equal, in time that depends on N only. Any thread. */
bool vault_equal(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

/* Zero N bytes at P (NULL-safe when N is 0) in a way the compiler cannot drop. Any thread. */
void vault_wipe(void *p, size_t n)
{
    if (p && n)
        sodium_memzero(p, n);
}

static void wipe_json(json_t *v)
{
    if (!v || v->refcount != 1)
        return;
    if (json_is_string(v)) {
        vault_wipe((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) wipe_json(child);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) wipe_json(child);
    }
}

/* See vault.h. Any thread, on a value no other thread is using. */
void vault_wipe_json_decref(json_t *v)
{
    wipe_json(v);
    json_decref(v);
}
