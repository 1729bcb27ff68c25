/* token.c - API tokens: making them, parsing them, checking them against the store.
 *
 * Invariant: the secret part of a token exists only in the string token_create hands back
 * and in the caller's request; the store keeps its BLAKE2b hash (vault_token_hash), and
 * every buffer here that held a secret is wiped before it is freed or goes out of scope.
 */
#include "vault/token.h"

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "vault/vault.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_BYTES 32
#define MAX_SCOPES 100
#define MAX_SCOPE_LEN 256
#define MAX_DESCRIPTION_LEN 1024
#define CREATE_ATTEMPTS 3 /* a new id colliding twice in 2^64 is not going to happen */

_Static_assert(TOKEN_ID_LEN < 40 && TOKEN_SECRET_LEN < 64, "token buffers too small");
_Static_assert(TOKEN_SECRET_LEN + 1 ==
                   sodium_base64_ENCODED_LEN(SECRET_BYTES,
                                             sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "TOKEN_SECRET_LEN does not match SECRET_BYTES");

static const char *const roles[] = {"admin", "editor", "viewer", "invoker"};

/* Whether ROLE names one of the four roles of SPEC §9. Any thread. */
bool token_role_valid(const char *role)
{
    if (!role)
        return false;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(role, roles[i]) == 0)
            return true;
    return false;
}

static int check_scopes(const json_t *scopes, err_t *err)
{
    if (!scopes)
        return 0;
    if (!json_is_array(scopes))
        return err_set(err, BR_EUSAGE, "scopes must be an array of glob strings");
    if (json_array_size(scopes) > MAX_SCOPES)
        return err_set(err, BR_EUSAGE, "a token has at most %d scopes", MAX_SCOPES);
    size_t i;
    const json_t *s;
    json_array_foreach(scopes, i, s)
    {
        size_t n = json_string_length(s);
        if (!json_is_string(s) || n == 0)
            return err_set(err, BR_EUSAGE, "scope %zu is not a non-empty string", i + 1);
        if (n > MAX_SCOPE_LEN || strlen(json_string_value(s)) != n)
            return err_set(err, BR_EUSAGE, "scope %zu is longer than %d bytes or holds NUL", i + 1,
                           MAX_SCOPE_LEN);
    }
    return 0;
}

/* "t_" and 16 lowercase hex digits of 8 random bytes. */
static void new_id(char id[40])
{
    unsigned char raw[8];
    vault_random(raw, sizeof raw);
    memcpy(id, "t_", 2);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(id + 2 + 2 * i, 3, "%02x", raw[i]);
}

/* Make and store a token. See token.h. */
int token_create(store_t *st, const char *role, const json_t *scopes, const char *description,
                 char **token_out, token_rec_t **rec_out, err_t *err)
{
    *token_out = NULL;
    if (rec_out)
        *rec_out = NULL;
    if (!token_role_valid(role))
        return err_set(err, BR_EUSAGE,
                       "unknown role \"%.64s\": use admin, editor, viewer or invoker",
                       role ? role : "");
    int rc = check_scopes(scopes, err);
    if (rc < 0)
        return rc;
    if (description && strlen(description) > MAX_DESCRIPTION_LEN)
        return err_set(err, BR_EUSAGE, "the description is longer than %d bytes",
                       MAX_DESCRIPTION_LEN);
    if ((rc = vault_init(err)) < 0)
        return rc;

    token_rec_t *t = XNEW(token_rec_t);
    t->role = xstrdup(role);
    t->scopes = scopes ? jsonx_copy(scopes) : json_array();
    t->description = description ? xstrdup(description) : NULL;
    char secret[TOKEN_SECRET_LEN + 1];
    vault_random_text(secret, sizeof secret, SECRET_BYTES);
    vault_token_hash(secret, TOKEN_SECRET_LEN, t->hash);
    for (int attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
        new_id(t->id);
        t->created_at = clock_now_ms();
        if ((rc = store_token_put(st, t, err)) != BR_ECONFLICT)
            break;
    }
    if (rc == 0) {
        *token_out = xasprintf(TOKEN_PREFIX "%s_%s", t->id, secret);
        if (rec_out) {
            *rec_out = t;
            t = NULL;
        }
    }
    vault_wipe(secret, sizeof secret);
    token_rec_free(t);
    return rc;
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Checked by hand before decoding: libsodium 1.0.18's sodium_base642bin takes bytes >= 0x80
 * (a plain char is signed here) for valid characters. */
static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Split a token into id and secret. See token.h. The secret's alphabet contains '_' and '-',
 * so the token is read by position, not split at underscores; a secret that decodes to other
 * than exactly 32 bytes, or is not the canonical encoding of them (stray low bits in its last
 * character), is refused, so one secret has only one spelling. */
int token_parse(const char *bearer, char id[40], char secret[64])
{
    id[0] = secret[0] = '\0';
    if (!bearer || strnlen(bearer, TOKEN_LEN + 1) != TOKEN_LEN)
        return -1;
    if (strncmp(bearer, TOKEN_PREFIX, 4) != 0)
        return -1;
    const char *p = bearer + 4;
    if (p[0] != 't' || p[1] != '_')
        return -1;
    for (int i = 2; i < TOKEN_ID_LEN; i++)
        if (!is_lower_hex(p[i]))
            return -1;
    if (p[TOKEN_ID_LEN] != '_')
        return -1;
    const char *s = p + TOKEN_ID_LEN + 1;
    for (int i = 0; i < TOKEN_SECRET_LEN; i++)
        if (!is_b64url(s[i]))
            return -1;
    unsigned char raw[SECRET_BYTES + 1];
    size_t raw_len = 0;
    const char *end = NULL;
    int ok = sodium_base642bin(raw, sizeof raw, s, TOKEN_SECRET_LEN, NULL, &raw_len, &end,
                               sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
             raw_len == SECRET_BYTES && end == s + TOKEN_SECRET_LEN;
    vault_wipe(raw, sizeof raw);
    if (!ok)
        return -1;
    memcpy(id, p, TOKEN_ID_LEN);
    id[TOKEN_ID_LEN] = '\0';
    memcpy(secret, s, TOKEN_SECRET_LEN);
    secret[TOKEN_SECRET_LEN] = '\0';
    return 0;
}

/* Check a presented token. See token.h. */
int token_verify(store_t *st, const char *token, token_rec_t **out, err_t *err)
{
    static const char refused[] = "the token is not valid";
    char id[40], secret[64];
    token_rec_t *t = NULL;
    unsigned char hash[32];
    int rc = BR_ENOT_FOUND;
    if (out)
        *out = NULL;
    if (token_parse(token, id, secret) < 0)
        goto out;
    if ((rc = store_token_get(st, id, &t, err)) < 0)
        goto out; /* BR_ENOT_FOUND gets the common message below */
    vault_token_hash(secret, TOKEN_SECRET_LEN, hash);
    bool same = vault_equal(hash, t->hash, sizeof hash);
    if (!same || t->revoked_at > 0) {
        rc = BR_ENOT_FOUND;
        goto out;
    }
    if (out) {
        *out = t;
        t = NULL;
    }
    rc = 0;
out:
    if (rc == BR_ENOT_FOUND)
        err_set(err, rc, "%s", refused);
    vault_wipe(secret, sizeof secret);
    vault_wipe(hash, sizeof hash);
    token_rec_free(t);
    return rc;
}
