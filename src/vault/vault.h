/* vault.h - braid's door to libsodium: random bytes, hashing of token secrets,
 * constant-time comparison and wiping. Only src/vault/ includes sodium.h. */
#ifndef BRAID_VAULT_H
#define BRAID_VAULT_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Initialise libsodium; safe to call more than once and from any thread. 0 or BR_EINTERNAL. */
int vault_init(err_t *err);
/* Fill BUF with N bytes from the kernel's CSPRNG. */
void vault_random(void *buf, size_t n);
/* URL-safe base64 (no padding) of N random bytes into OUT (at least 4*N/3+2 bytes). */
void vault_random_text(char *out, size_t out_len, size_t n);
/* BLAKE2b-256 of SECRET (LEN bytes) under a fixed, versioned context: the stored form of a
 * token's secret. */
void vault_token_hash(const char *secret, size_t len, unsigned char out[32]);
/* Compare two N-byte buffers in time independent of their contents. */
bool vault_equal(const void *a, const void *b, size_t n);
/* Overwrite N bytes at P with zeros in a way the compiler cannot remove. */
void vault_wipe(void *p, size_t n);
/* Overwrite, in place, the text of every string inside V that only V's tree holds (each value
 * on the way down has one reference), then drop the caller's reference to V. A string shared
 * with anyone else -- a var the template copied by reference, a value the engine kept -- is
 * left intact. For parsed or rendered values that held credentials. NULL-safe. */
void vault_wipe_json_decref(json_t *v);

#endif
