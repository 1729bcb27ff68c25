/* token.h - API tokens (SPEC §9): making one, reading one off a request, checking it.
 *
 * A token reads "brd_<id>_<secret>": <id> is "t_" and 16 lowercase hex digits, public (it
 * names the token in lists and in DELETE /tokens/ID); <secret> is 32 random bytes as 43
 * characters of URL-safe base64 without padding, shown once and stored only as its hash.
 * Used by `braid token create` and by the server (bootstrap admin token, POST /tokens, and
 * every authenticated request).
 */
#ifndef BRAID_VAULT_TOKEN_H
#define BRAID_VAULT_TOKEN_H

#include "core/err.h"
#include "store/store.h"

#include <jansson.h>

#define TOKEN_PREFIX "brd_"
#define TOKEN_ID_LEN 18                                     /* "t_" + 16 hex digits */
#define TOKEN_SECRET_LEN 43                                 /* base64url of 32 bytes, no padding */
#define TOKEN_LEN (4 + TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN) /* 66 */

/* Whether ROLE is one of "admin", "editor", "viewer", "invoker". */
bool token_role_valid(const char *role);

/* Make and store a new token with ROLE, SCOPES (borrowed; array of non-empty glob strings, or
 * NULL for none) and DESCRIPTION (borrowed, may be NULL). *TOKEN_OUT is the whole token, the
 * only time its secret exists outside the caller: returned owned, wipe it with vault_wipe and
 * free it. *REC_OUT (REC_OUT may be NULL) is the stored record, returned owned
 * (token_rec_free). 0; BR_EUSAGE for a bad role, scopes or description; the store's error
 * (BR_ESTORE) otherwise. Durable on return. Any thread. */
int token_create(store_t *st, const char *role, const json_t *scopes, const char *description,
                 char **token_out, token_rec_t **rec_out, err_t *err);

/* Split BEARER (the token alone, without "Bearer ") into ID and SECRET (both NUL-terminated).
 * 0, or -1 when it is not exactly TOKEN_PREFIX, a well-formed id, "_" and a canonical 43-char
 * secret; then ID and SECRET are left empty. */
int token_parse(const char *bearer, char id[40], char secret[64]);

/* Check TOKEN (borrowed, the token alone): well-formed, known, its secret's hash equal in
 * constant time to the stored one, not revoked. 0 and *OUT (OUT may be NULL; returned owned,
 * token_rec_free) when it is good. Every refusal is BR_ENOT_FOUND with the same message,
 * whether the token was malformed, unknown, wrong or revoked, so a caller cannot tell which
 * (answer 401). BR_ESTORE when the store cannot be read (answer 503, not 401). Any thread. */
int token_verify(store_t *st, const char *token, token_rec_t **out, err_t *err);

#endif
