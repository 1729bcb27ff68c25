/* secret.c - sealing connection secrets under the master key (XChaCha20-Poly1305 IETF).
 *
 * Invariants: key bytes and opened values only ever sit in sodium_malloc memory (guarded,
 * locked, wiped by sodium_free); the key set is read-only once built. A sealed value names
 * its key version in clear and binds that version, the connection id and the secret's name
 * in the AEAD's additional data, so it opens only under the same key, connection and name.
 *
 * Sealed text:  "v<version>:" base64(nonce[24] || ciphertext || tag[16]), standard alphabet,
 * padded. Additional data: "braid-secret-v1" NUL <version decimal> NUL <connection id> NUL
 * <name> -- ids and names are C strings, so the NULs make the encoding unambiguous.
 *
 * Key file (DATA_DIR/master.key, mode 0600, owned by the user running braid):
 *     # comment lines and blank lines are ignored
 *     1 <base64 of 32 bytes>
 *     2 <base64 of 32 bytes>
 * one "VERSION KEY" per line, VERSION a decimal in 1..999999, each version at most once. The
 * highest version seals; every listed version opens, so rotation appends a line, re-seals
 * everything, then may drop the old line. BRAID_MASTER_KEY holds one key, version 1.
 */
#include "vault/secret.h"

#include "core/xalloc.h"
#include "vault/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_VERSION 999999
#define MAX_KEYS 64
#define MAX_KEY_FILE 65536      /* bytes; a real file is ~50 bytes per version */
#define MAX_PLAIN (1024 * 1024) /* bytes of one secret value */
#define AD_CONTEXT "braid-secret-v1"
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(SECRET_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "the master key must be exactly an XChaCha20-Poly1305 key");

struct key_entry {
    int version; /* 1..MAX_VERSION, unique in the set */
    unsigned char key[SECRET_KEY_BYTES];
};

struct secret_key {
    size_t n;       /* entries used, >= 1 */
    size_t current; /* index of the highest version: the one that seals */
    struct key_entry e[];
};

/* A key set with room for N entries in sodium_malloc memory, or NULL. sodium_malloc places
 * the block against the guard page that follows it, so the address is only aligned when the
 * size is a multiple of the alignment: round it up. */
static secret_key_t *keyset_alloc(size_t n)
{
    const size_t align = _Alignof(max_align_t);
    size_t size = (sizeof(secret_key_t) + n * sizeof(struct key_entry) + align - 1) / align * align;
    secret_key_t *k = sodium_malloc(size);
    if (k)
        memset(k, 0, size);
    return k;
}

/* Decode exactly 32 bytes of standard base64 (padded or not) from B64 (LEN chars) into OUT.
 * Anything else -- other lengths, stray characters, non-canonical trailing bits -- fails. */
static bool decode_key(const char *b64, size_t len, unsigned char *out)
{
    const int variants[] = {sodium_base64_VARIANT_ORIGINAL,
                            sodium_base64_VARIANT_ORIGINAL_NO_PADDING};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        size_t bin_len = 0;
        const char *end = NULL;
        if (sodium_base642bin(out, SECRET_KEY_BYTES, b64, len, NULL, &bin_len, &end, variants[i]) ==
                0 &&
            end == b64 + len && bin_len == SECRET_KEY_BYTES)
            return true;
    }
    sodium_memzero(out, SECRET_KEY_BYTES);
    return false;
}

static void finish(secret_key_t *k)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->e[i].version > k->e[k->current].version)
            k->current = i;
    sodium_mprotect_readonly(k);
}

/* Build a key set from a key file's TEXT (LEN bytes, borrowed; the caller wipes it). 0 or
 * BR_EINPUT_INVALID naming the bad line (never its content). *OUT returned owned (free with
 * secret_key_free). Any thread. */
int secret_key_parse(const char *text, size_t len, secret_key_t **out, err_t *err)
{
    *out = NULL;
    if (vault_init(err) < 0)
        return BR_EINTERNAL;
    secret_key_t *k = keyset_alloc(MAX_KEYS);
    if (!k)
        return err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
    int rc = 0;
    size_t line_no = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        line_no++;
        while (eol > p && (eol[-1] == '\r' || eol[-1] == ' ' || eol[-1] == '\t'))
            eol--;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        if (p == eol || *p == '#') {
            p = next;
            continue;
        }
        long version = 0;
        const char *q = p;
        while (q < eol && *q >= '0' && *q <= '9' && version <= MAX_VERSION)
            version = version * 10 + (*q++ - '0');
        if (q == p || *p == '0' || version > MAX_VERSION || q == eol || (*q != ' ' && *q != '\t')) {
            rc = err_set(err, BR_EINPUT_INVALID,
                         "master key file, line %zu: expected \"VERSION BASE64KEY\" with "
                         "VERSION in 1..%d",
                         line_no, MAX_VERSION);
            goto out;
        }
        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        for (size_t i = 0; i < k->n; i++)
            if (k->e[i].version == (int)version) {
                rc = err_set(err, BR_EINPUT_INVALID,
                             "master key file, line %zu: key version %ld appears twice", line_no,
                             version);
                goto out;
            }
        if (k->n == MAX_KEYS) {
            rc = err_set(err, BR_EINPUT_INVALID, "master key file: more than %d keys", MAX_KEYS);
            goto out;
        }
        if (!decode_key(q, (size_t)(eol - q), k->e[k->n].key)) {
            rc = err_set(err, BR_EINPUT_INVALID,
                         "master key file, line %zu: the key is not base64 of exactly %d bytes",
                         line_no, SECRET_KEY_BYTES);
            goto out;
        }
        k->e[k->n++].version = (int)version;
        p = next;
    }
    if (k->n == 0) {
        rc = err_set(err, BR_EINPUT_INVALID, "master key file holds no key");
        goto out;
    }
    finish(k);
    *out = k;
    k = NULL;
out:
    sodium_free(k);
    return rc;
}

/* The key set holding the one key in VALUE (borrowed): standard base64 of exactly 32 bytes,
 * surrounding whitespace ignored, version 1 -- the form BRAID_MASTER_KEY and
 * BRAID_NEW_MASTER_KEY hold. SOURCE (borrowed) names where VALUE came from in the error
 * message, which never quotes VALUE. 0 or BR_EINPUT_INVALID / BR_EINTERNAL; *OUT returned
 * owned (free with secret_key_free). Any thread. */
int secret_key_from_base64(const char *value, const char *source, secret_key_t **out, err_t *err)
{
    *out = NULL;
    if (vault_init(err) < 0)
        return BR_EINTERNAL;
    size_t len = strlen(value);
    while (len && strchr(" \t\r\n", value[len - 1]))
        len--;
    while (len && strchr(" \t\r\n", *value)) {
        value++;
        len--;
    }
    secret_key_t *k = keyset_alloc(1);
    if (!k)
        return err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
    if (!decode_key(value, len, k->e[0].key)) {
        sodium_free(k);
        return err_set(err, BR_EINPUT_INVALID,
                       "%s must be standard base64 of exactly %d bytes (e.g. the output of "
                       "`head -c %d /dev/urandom | base64`)",
                       source, SECRET_KEY_BYTES, SECRET_KEY_BYTES);
    }
    k->e[0].version = 1;
    k->n = 1;
    finish(k);
    *out = k;
    return 0;
}

/* Read the key file at PATH. 1 when it does not exist, 0 with *OUT set, or an error: not a
 * regular file, not ours, group/other access in its mode, unreadable, malformed. */
static int load_file(const char *path, secret_key_t **out, err_t *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        return err_set(err, BR_EIO, "cannot open the master key file %s: %s", path,
                       strerror(errno));
    }
    char *buf = NULL;
    size_t got = 0;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = err_set(err, BR_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(err, BR_EIO, "the master key file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = err_set(err, BR_EIO,
                     "the master key file %s has mode %03o, which lets group or others at "
                     "it; refusing to use it (chmod 600 it)",
                     path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = err_set(err, BR_EIO, "the master key file %s belongs to another user", path);
        goto out;
    }
    if (st.st_size > MAX_KEY_FILE) {
        rc = err_set(err, BR_EIO, "the master key file %s is larger than %d bytes", path,
                     MAX_KEY_FILE);
        goto out;
    }
    buf = sodium_malloc(MAX_KEY_FILE + 1);
    if (!buf) {
        rc = err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, MAX_KEY_FILE + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = err_set(err, BR_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > MAX_KEY_FILE) {
            rc = err_set(err, BR_EIO, "the master key file %s is larger than %d bytes", path,
                         MAX_KEY_FILE);
            goto out;
        }
    }
    if ((rc = secret_key_parse(buf, got, out, err)) < 0 && err) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        err_set(err, rc, "%s: %s", path, why);
    }
out:
    sodium_free(buf); /* wipes */
    close(fd);
    return rc;
}

/* Write all N bytes of P to FD. */
static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Create the key file at PATH holding a new random key, version 1. 0 with *OUT set, 1 when
 * another process created it first (O_EXCL lost the race), or an error. The mode is 0600
 * from the start (umask can only take bits away), so the key is never readable by others. */
static int create_file(const char *data_dir, const char *path, secret_key_t **out, err_t *err)
{
    secret_key_t *k = keyset_alloc(1);
    if (!k)
        return err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
    const size_t line_cap = 128;
    char *line = sodium_malloc(line_cap);
    if (!line) {
        sodium_free(k);
        return err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
    }
    int rc = 0;
    vault_random(k->e[0].key, SECRET_KEY_BYTES);
    k->e[0].version = 1;
    k->n = 1;
    int n = snprintf(line, line_cap, "# braid master key: keep secret, keep a backup\n1 ");
    sodium_bin2base64(line + n, line_cap - (size_t)n, k->e[0].key, SECRET_KEY_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    strcat(line, "\n");

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno == EEXIST ? 1
                             : err_set(err, BR_EIO, "cannot create the master key file %s: %s",
                                       path, strerror(errno));
        goto out;
    }
    if (!write_all(fd, line, strlen(line)) || fsync(fd) != 0) {
        rc = err_set(err, BR_EIO, "cannot write the master key file %s: %s", path, strerror(errno));
        close(fd);
        unlink(path); /* a half-written key must not be found next time */
        goto out;
    }
    close(fd);
    /* Make the new name durable too: losing the file after secrets were sealed under its key
     * would lose them all. */
    int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    finish(k);
    *out = k;
    k = NULL;
out:
    sodium_free(line);
    sodium_free(k);
    return rc;
}

/* Load the master key set: from BRAID_MASTER_KEY when it is set (even to something wrong,
 * which is an error rather than a silent fall-back), else from DATA_DIR/master.key (borrowed
 * path), which is created with a new random key on first use. 0, BR_EINPUT_INVALID (bad key
 * text), BR_EIO (file missing rights, unreadable, unwritable) or BR_EINTERNAL. *OUT returned
 * owned (free with secret_key_free). Any thread; creation is safe against a concurrent braid. */
int secret_key_load(const char *data_dir, secret_key_t **out, err_t *err)
{
    *out = NULL;
    if (vault_init(err) < 0)
        return BR_EINTERNAL;
    const char *env = getenv(SECRET_KEY_ENV);
    if (env)
        return secret_key_from_base64(env, SECRET_KEY_ENV, out, err);
    char *path = xasprintf("%s/%s", data_dir, SECRET_KEY_FILE);
    int rc = load_file(path, out, err);
    if (rc == 1) {
        rc = create_file(data_dir, path, out, err);
        if (rc == 1)
            rc = load_file(path, out, err);
        if (rc == 1)
            rc = err_set(err, BR_EIO, "the master key file %s vanished while being created", path);
    }
    free(path);
    return rc;
}

/* The version new seals use. KEY borrowed. Any thread. */
int secret_key_version(const secret_key_t *key)
{
    return key->e[key->current].version;
}

/* Wipe and release KEY (taken; NULL-safe). */
void secret_key_free(secret_key_t *key)
{
    sodium_free(key);
}

/* ---- rotation ------------------------------------------------------------------------------ */

/* A new key set (returned owned in *OUT; free with secret_key_free): every key of KEY
 * (borrowed) plus a new random key one version above KEY's highest, which is the one the new
 * set seals with. 0, BR_ELIMIT (no version or slot left) or BR_EINTERNAL. Any thread. */
int secret_key_next(const secret_key_t *key, secret_key_t **out, err_t *err)
{
    *out = NULL;
    int top = key->e[key->current].version;
    if (top >= MAX_VERSION || key->n >= MAX_KEYS)
        return err_set(err, BR_ELIMIT,
                       "the master key set cannot grow: it already holds %zu keys, the highest "
                       "version %d (at most %d keys, versions up to %d)",
                       key->n, top, MAX_KEYS, MAX_VERSION);
    secret_key_t *k = keyset_alloc(key->n + 1);
    if (!k)
        return err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
    memcpy(k->e, key->e, key->n * sizeof key->e[0]);
    k->n = key->n;
    vault_random(k->e[k->n].key, SECRET_KEY_BYTES);
    k->e[k->n].version = top + 1;
    k->n++;
    finish(k);
    *out = k;
    return 0;
}

/* A key set (returned owned in *OUT) holding only KEY's current version: what the key file
 * keeps once every secret is sealed under it. 0 or BR_EINTERNAL. Any thread. */
int secret_key_current_only(const secret_key_t *key, secret_key_t **out, err_t *err)
{
    *out = NULL;
    secret_key_t *k = keyset_alloc(1);
    if (!k)
        return err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
    k->e[0] = key->e[key->current];
    k->n = 1;
    finish(k);
    *out = k;
    return 0;
}

/* Replace DATA_DIR/master.key (DATA_DIR borrowed) with the keys of KEY (borrowed), by
 * version, atomically: the text goes to a temporary file created with mode 0600 in the same
 * directory, is fsynced, renamed over the key file, and the directory is fsynced -- so after
 * a crash the file is either the old one or the new one, never a torn mix. 0 or BR_EIO.
 * Callers serialise their own rotations; any thread. */
int secret_key_save(const char *data_dir, const secret_key_t *key, err_t *err)
{
    /* One line is "VERSION BASE64\n": at most 6 + 1 + 44 + 1 bytes. */
    const char header[] = "# braid master key: keep secret, keep a backup\n";
    size_t cap = sizeof header + key->n * 64;
    char *text = sodium_malloc(cap);
    if (!text)
        return err_set(err, BR_EINTERNAL, "cannot allocate protected memory for the key");
    size_t len = (size_t)snprintf(text, cap, "%s", header);
    int last = 0;
    for (size_t done = 0; done < key->n; done++) {
        const struct key_entry *e = NULL; /* the next version up */
        for (size_t i = 0; i < key->n; i++)
            if (key->e[i].version > last && (!e || key->e[i].version < e->version))
                e = &key->e[i];
        last = e->version;
        len += (size_t)snprintf(text + len, cap - len, "%d ", e->version);
        sodium_bin2base64(text + len, cap - len, e->key, SECRET_KEY_BYTES,
                          sodium_base64_VARIANT_ORIGINAL);
        len += strlen(text + len);
        text[len++] = '\n';
        text[len] = '\0';
    }

    char *path = xasprintf("%s/%s", data_dir, SECRET_KEY_FILE);
    char *tmp = xasprintf("%s/.%s.%d.tmp", data_dir, SECRET_KEY_FILE, (int)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) { /* left by a process with our pid that died mid-write */
        unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        rc = err_set(err, BR_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (!write_all(fd, text, len) || fsync(fd) != 0) {
        rc = err_set(err, BR_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        rc = err_set(err, BR_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(path);
    sodium_free(text); /* wipes */
    return rc;
}

/* The additional data binding a sealed value to its key version, connection and name:
 * returned owned (free with free()), length in *LEN. */
static unsigned char *make_ad(int version, const char *connection_id, const char *name, size_t *len)
{
    char v[16];
    int vn = snprintf(v, sizeof v, "%d", version);
    size_t cl = strlen(connection_id), nl = strlen(name);
    size_t n = sizeof AD_CONTEXT + (size_t)vn + 1 + cl + 1 + nl;
    unsigned char *ad = xmalloc(n), *p = ad;
    memcpy(p, AD_CONTEXT, sizeof AD_CONTEXT); /* with its NUL */
    p += sizeof AD_CONTEXT;
    memcpy(p, v, (size_t)vn + 1);
    p += vn + 1;
    memcpy(p, connection_id, cl + 1);
    p += cl + 1;
    memcpy(p, name, nl);
    *len = n;
    return ad;
}

/* Seal PLAIN (LEN bytes, borrowed) for secret NAME of connection CONNECTION_ID (borrowed)
 * under KEY's current version. *SEALED_OUT returned owned (free with free()): the text form
 * described at the top, safe to store and show (it reveals only the value's length). 0 or
 * BR_EINPUT_INVALID (value too large). Any thread. */
int secret_seal(const secret_key_t *key, const char *connection_id, const char *name,
                const unsigned char *plain, size_t len, char **sealed_out, err_t *err)
{
    *sealed_out = NULL;
    if (len > MAX_PLAIN)
        return err_set(err, BR_EINPUT_INVALID, "secret '%s' is larger than %d bytes", name,
                       MAX_PLAIN);
    const struct key_entry *e = &key->e[key->current];
    size_t ad_len;
    unsigned char *ad = make_ad(e->version, connection_id, name, &ad_len);
    size_t blob_len = NONCE_BYTES + len + TAG_BYTES;
    unsigned char *blob = xmalloc(blob_len);
    vault_random(blob, NONCE_BYTES); /* random 192-bit nonces never collide in practice */
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE_BYTES, &clen, plain, len, ad, ad_len,
                                               NULL, blob, e->key);
    char prefix[16];
    int pn = snprintf(prefix, sizeof prefix, "v%d:", e->version);
    size_t b64_cap = sodium_base64_ENCODED_LEN(blob_len, sodium_base64_VARIANT_ORIGINAL);
    char *out = xmalloc((size_t)pn + b64_cap);
    memcpy(out, prefix, (size_t)pn);
    sodium_bin2base64(out + pn, b64_cap, blob, blob_len, sodium_base64_VARIANT_ORIGINAL);
    free(blob);
    free(ad);
    *sealed_out = out;
    return 0;
}

/* The key version SEALED (borrowed) names: "v<1..999999>:" with no leading zero, else
 * BR_EINPUT_INVALID. Any thread. */
int secret_sealed_version(const char *sealed)
{
    if (!sealed || sealed[0] != 'v' || sealed[1] < '1' || sealed[1] > '9')
        return BR_EINPUT_INVALID;
    long v = 0;
    const char *p = sealed + 1;
    while (*p >= '0' && *p <= '9' && v <= MAX_VERSION)
        v = v * 10 + (*p++ - '0');
    if (*p != ':' || v > MAX_VERSION)
        return BR_EINPUT_INVALID;
    return (int)v;
}

/* Open SEALED (borrowed) as secret NAME of connection CONNECTION_ID (borrowed) under KEY.
 * *PLAIN_OUT returned owned, in sodium_malloc memory, NUL-terminated after *LEN bytes (free
 * with secret_plain_free, which wipes). 0 or BR_EINPUT_INVALID: a malformed text, a key
 * version not in KEY, or a value that fails authentication (altered, another connection or
 * name, another key) -- never a guess at the plain text. Errors never hold the value. Any
 * thread. */
int secret_open(const secret_key_t *key, const char *connection_id, const char *name,
                const char *sealed, unsigned char **plain_out, size_t *len, err_t *err)
{
    *plain_out = NULL;
    *len = 0;
    int version = secret_sealed_version(sealed);
    if (version < 0)
        return err_set(err, BR_EINPUT_INVALID,
                       "secret '%s' of connection '%s' is not a sealed value "
                       "(expected \"v<version>:<base64>\")",
                       name, connection_id);
    const struct key_entry *e = NULL;
    for (size_t i = 0; i < key->n; i++)
        if (key->e[i].version == version)
            e = &key->e[i];
    if (!e)
        return err_set(err, BR_EINPUT_INVALID,
                       "secret '%s' of connection '%s' is sealed under key version %d, which "
                       "the master key file does not hold",
                       name, connection_id, version);
    const char *b64 = strchr(sealed, ':') + 1;
    size_t b64_len = strlen(b64);
    if (b64_len > (size_t)(MAX_PLAIN + NONCE_BYTES + TAG_BYTES) / 3 * 4 + 8)
        return err_set(err, BR_EINPUT_INVALID, "secret '%s' of connection '%s' is too large", name,
                       connection_id);
    size_t cap = b64_len / 4 * 3 + 3, blob_len = 0;
    unsigned char *blob = xmalloc(cap), *ad = NULL, *plain = NULL;
    const char *end = NULL;
    int rc = 0;
    if (sodium_base642bin(blob, cap, b64, b64_len, NULL, &blob_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64 + b64_len || blob_len < NONCE_BYTES + TAG_BYTES) {
        rc = err_set(err, BR_EINPUT_INVALID,
                     "secret '%s' of connection '%s' is damaged: its sealed text is not "
                     "valid base64 of a nonce and ciphertext",
                     name, connection_id);
        goto out;
    }
    size_t ad_len;
    ad = make_ad(version, connection_id, name, &ad_len);
    size_t clen = blob_len - NONCE_BYTES;
    plain = sodium_malloc(clen - TAG_BYTES + 1);
    if (!plain) {
        rc = err_set(err, BR_EINTERNAL, "cannot allocate protected memory for a secret");
        goto out;
    }
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, blob + NONCE_BYTES, clen, ad,
                                                   ad_len, blob, e->key) != 0) {
        rc = err_set(err, BR_EINPUT_INVALID,
                     "secret '%s' of connection '%s' cannot be decrypted: it was altered, "
                     "belongs to another connection or name, or was sealed under another "
                     "master key",
                     name, connection_id);
        goto out;
    }
    plain[mlen] = '\0';
    *plain_out = plain;
    *len = (size_t)mlen;
    plain = NULL;
out:
    sodium_free(plain);
    free(ad);
    free(blob);
    return rc;
}

/* Wipe and release an opened value (taken; NULL-safe). */
void secret_plain_free(unsigned char *plain)
{
    sodium_free(plain);
}

/* Keep secrets out of core files: RLIMIT_CORE 0 stops the kernel writing one, and
 * PR_SET_DUMPABLE 0 also covers a core_pattern pipe (which ignores RLIMIT_CORE) and stops
 * other processes of the same user from ptrace-attaching or reading /proc/PID/mem. 0, or
 * BR_EINTERNAL when either call fails. Call once at start-up, from the main thread. */
int secret_no_core_dumps(void)
{
    struct rlimit rl = {0, 0};
    int rc = 0;
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        rc = BR_EINTERNAL;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        rc = BR_EINTERNAL;
    return rc;
}
