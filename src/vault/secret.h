/* secret.h - connection secrets sealed at rest under the master key: loading the key (from
 * BRAID_MASTER_KEY or DATA_DIR/master.key), sealing and opening one secret value, and turning
 * core dumps off. Opened values live only in sodium_malloc memory and are wiped on free. */
#ifndef BRAID_VAULT_SECRET_H
#define BRAID_VAULT_SECRET_H

#include "core/err.h"

#include <stddef.h>

/* The master key set: one or more (version, 32-byte key) pairs; the highest version seals. */
typedef struct secret_key secret_key_t;

#define SECRET_KEY_BYTES 32
#define SECRET_KEY_FILE "master.key"
#define SECRET_KEY_ENV "BRAID_MASTER_KEY"
#define SECRET_NEW_KEY_ENV "BRAID_NEW_MASTER_KEY" /* the next key, for rotation in env mode */

int secret_key_load(const char *data_dir, secret_key_t **out, err_t *err);
/* Build a key set from the text of a key file (see secret.c for the format). */
int secret_key_parse(const char *text, size_t len, secret_key_t **out, err_t *err);
/* The one key (version 1) in VALUE, base64 as BRAID_MASTER_KEY holds it; SOURCE names VALUE's
 * origin in errors. */
int secret_key_from_base64(const char *value, const char *source, secret_key_t **out, err_t *err);
/* Rotation: KEY's keys plus a new random one a version higher (which seals); a set of only
 * KEY's current version; replacing DATA_DIR/master.key atomically with KEY's keys. */
int secret_key_next(const secret_key_t *key, secret_key_t **out, err_t *err);
int secret_key_current_only(const secret_key_t *key, secret_key_t **out, err_t *err);
int secret_key_save(const char *data_dir, const secret_key_t *key, err_t *err);
/* The version new seals are made under (the highest in the set). */
int secret_key_version(const secret_key_t *key);
void secret_key_free(secret_key_t *key);

int secret_seal(const secret_key_t *key, const char *connection_id, const char *name,
                const unsigned char *plain, size_t len, char **sealed_out, err_t *err);
/* The key version a sealed text names, or a negative BR_E* code when it is malformed. */
int secret_sealed_version(const char *sealed);
int secret_open(const secret_key_t *key, const char *connection_id, const char *name,
                const char *sealed, unsigned char **plain_out, size_t *len, err_t *err);
void secret_plain_free(unsigned char *plain);

int secret_no_core_dumps(void);

#endif
