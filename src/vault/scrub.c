/* scrub.c - a run's scrub set and the scrubbing of text and JSON.
 *
 * Each value added is expanded once into every form it may take on the way out: raw;
 * base64 and base64url, padded and not; the base64 "cores" of the value at byte offsets 0, 1
 * and 2 inside a longer base64 stream (an echoed "Authorization: Basic" header); percent
 * encodings (RFC 3986 and the common variants: upper/lower hex, '/' kept, '+' for space,
 * JavaScript's kept sub-delimiters); JSON escapes (minimal or ASCII-only, upper/lower hex,
 * '/' escaped or not). Forms are deduplicated and live in sodium_malloc memory, read-only
 * once built, wiped by scrub_free.
 *
 * Scrubbing marks every occurrence of every form, overlapping ones included, and replaces
 * each maximal run of overlapping matches by one "[secret]". That union covers at least what
 * a longest-first replacement would, so no fragment of a form can survive next to a mark.
 *
 * Values shorter than SCRUB_MIN_LEN (4) bytes are ignored: replacing every "abc" or "1" in a
 * run's output would shred it while hiding nothing an attacker could not guess anyway.
 * Threads: scrub_add must not run concurrently with anything else on the same set; the
 * const functions may run concurrently with each other.
 */
#include "vault/scrub.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A core shorter than this many base64 characters (48 bits) would match random base64 too
 * often; the full forms have no such floor since the value itself is >= SCRUB_MIN_LEN. */
#define CORE_MIN 8

enum {
    F_RAW = 0,
    F_B64 = 1,   /* 4 variants */
    F_CORE = 5,  /* 3 offsets x {standard, url} */
    F_PCT = 11,  /* 16 flag combinations */
    F_JSON = 27, /* 8 flag combinations */
    F_COUNT = 35
};

enum { P_UPPER = 1, P_KEEP_SLASH = 2, P_PLUS_SPACE = 4, P_JS_KEEP = 8 };
enum { J_UPPER = 1, J_ASCII = 2, J_SLASH = 4 };

typedef struct form {
    const unsigned char *p; /* into one of the blocks; NUL after len */
    size_t len;             /* >= SCRUB_MIN_LEN */
} form_t;

struct scrub {
    form_t *forms;
    size_t nforms, forms_cap;
    unsigned char **blocks; /* sodium_malloc'd, read-only: one per value added */
    size_t nblocks, blocks_cap;
};

static void *secure_alloc(size_t n)
{
    void *p = sodium_malloc(n);
    if (!p) {
        fprintf(stderr, "braid: fatal: out of protected memory\n");
        abort();
    }
    return p;
}

/* Create an empty set: returned owned (free with scrub_free). Any thread. */
scrub_t *scrub_new(void)
{
    if (sodium_init() < 0) { /* sodium_malloc needs it (page size, canary) */
        fprintf(stderr, "braid: fatal: cannot initialise libsodium\n");
        abort();
    }
    return XNEW(scrub_t);
}

static size_t put_hex(unsigned char *out, const char *prefix, unsigned v, int digits, bool upper)
{
    const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    for (int i = digits - 1; i >= 0; i--)
        out[n++] = (unsigned char)hex[(v >> (4 * i)) & 0xf];
    return n;
}

static size_t percent(const unsigned char *s, size_t n, int flags, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' ||
                    ((flags & P_KEEP_SLASH) && c == '/') ||
                    ((flags & P_JS_KEEP) && c && strchr("!'()*", c));
        if (keep)
            out[o++] = c;
        else if (c == ' ' && (flags & P_PLUS_SPACE))
            out[o++] = '+';
        else
            o += put_hex(out + o, "%", c, 2, flags & P_UPPER);
    }
    return o;
}

/* Decode one UTF-8 sequence at S (N bytes left) into *CP; its length, or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    size_t len;
    unsigned v, min;
    if (s[0] < 0x80)
        return *cp = s[0], 1;
    else if ((s[0] & 0xe0) == 0xc0)
        len = 2, v = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, v = s[0] & 0x0f, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, v = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* The JSON string-body escape of S; 0 when J_ASCII is asked of invalid UTF-8. */
static size_t json_escape(const unsigned char *s, size_t n, int flags, unsigned char *out)
{
    bool upper = flags & J_UPPER;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        const char *esc = NULL;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '/':
            esc = (flags & J_SLASH) ? "\\/" : NULL;
            break;
        default:
            break;
        }
        if (esc) {
            memcpy(out + o, esc, 2);
            o += 2;
            i++;
        } else if (c < 0x20) {
            o += put_hex(out + o, "\\u", c, 4, upper);
            i++;
        } else if (c >= 0x80 && (flags & J_ASCII)) {
            unsigned cp;
            size_t l = utf8_decode(s + i, n - i, &cp);
            if (!l)
                return 0;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                o += put_hex(out + o, "\\u", 0xd800 + (cp >> 10), 4, upper);
                o += put_hex(out + o, "\\u", 0xdc00 + (cp & 0x3ff), 4, upper);
            } else {
                o += put_hex(out + o, "\\u", cp, 4, upper);
            }
            i += l;
        } else {
            out[o++] = c;
            i++;
        }
    }
    return o;
}

/* The base64 characters that depend on S alone when S sits K bytes into a longer stream. */
static size_t b64_core(const unsigned char *s, size_t n, size_t k, bool url, unsigned char *shifted,
                       unsigned char *out)
{
    memset(shifted, 0, k);
    memcpy(shifted + k, s, n);
    int variant =
        url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    sodium_bin2base64((char *)out, sodium_base64_ENCODED_LEN(n + k, variant), shifted, n + k,
                      variant);
    size_t a = (8 * k + 5) / 6, b = 8 * (k + n) / 6;
    if (b <= a || b - a < CORE_MIN)
        return 0;
    memmove(out, out + a, b - a);
    return b - a;
}

/* Form ID of S (N bytes) into OUT (room for 6N+32 bytes); its length, 0 when it has none. */
static size_t gen_form(int id, const unsigned char *s, size_t n, unsigned char *shifted,
                       unsigned char *out)
{
    static const int b64[4] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    if (id == F_RAW) {
        memcpy(out, s, n);
        return n;
    }
    if (id < F_CORE) {
        int v = b64[id - F_B64];
        sodium_bin2base64((char *)out, sodium_base64_ENCODED_LEN(n, v), s, n, v);
        return strlen((char *)out);
    }
    if (id < F_PCT)
        return b64_core(s, n, (size_t)(id - F_CORE) / 2, (id - F_CORE) % 2, shifted, out);
    if (id < F_JSON)
        return percent(s, n, id - F_PCT, out);
    return json_escape(s, n, id - F_JSON, out);
}

static bool known(const scrub_t *s, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < s->nforms; i++)
        if (s->forms[i].len == len && memcmp(s->forms[i].p, p, len) == 0)
            return true;
    return false;
}

/* Add SECRET (LEN bytes, borrowed; the caller still wipes its own copy) with all its forms.
 * Values shorter than SCRUB_MIN_LEN, and S or SECRET NULL, are ignored; adding a value twice
 * adds nothing. Not concurrently with other calls on S. */
void scrub_add(scrub_t *s, const unsigned char *secret, size_t len)
{
    if (!s || !secret || len < SCRUB_MIN_LEN)
        return;
    if (len > (SIZE_MAX - 64) / 8) /* the scratch size below must not overflow */
        abort();
    size_t scratch_len = 6 * len + 32;
    unsigned char *scratch = secure_alloc(scratch_len);
    unsigned char *shifted = secure_alloc(len + 2);
    size_t total = 0;
    for (int id = 0; id < F_COUNT; id++)
        total += gen_form(id, secret, len, shifted, scratch) + 1;
    unsigned char *block = secure_alloc(total);
    size_t off = 0, added = 0;
    for (int id = 0; id < F_COUNT; id++) {
        size_t n = gen_form(id, secret, len, shifted, scratch);
        if (n < SCRUB_MIN_LEN || known(s, scratch, n))
            continue;
        memcpy(block + off, scratch, n);
        block[off + n] = '\0';
        if (s->nforms == s->forms_cap) {
            s->forms_cap = s->forms_cap ? 2 * s->forms_cap : 64;
            s->forms = xrealloc(s->forms, s->forms_cap * sizeof *s->forms);
        }
        s->forms[s->nforms++] = (form_t){block + off, n};
        off += n + 1;
        added++;
    }
    sodium_free(shifted);
    sodium_free(scratch);
    if (!added) {
        sodium_free(block);
        return;
    }
    sodium_mprotect_readonly(block);
    if (s->nblocks == s->blocks_cap) {
        s->blocks_cap = s->blocks_cap ? 2 * s->blocks_cap : 8;
        s->blocks = xrealloc(s->blocks, s->blocks_cap * sizeof *s->blocks);
    }
    s->blocks[s->nblocks++] = block;
}

/* The number of distinct forms S matches (0 for NULL). */
size_t scrub_form_count(const scrub_t *s)
{
    return s ? s->nforms : 0;
}

typedef struct span {
    size_t a, b; /* [a, b) byte offsets into the text */
} span_t;

static int span_cmp(const void *x, const void *y)
{
    const span_t *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return (p->b > q->b) - (p->b < q->b);
}

/* TEXT (LEN bytes, borrowed; may hold NULs; NULL when LEN is 0) with every occurrence of
 * every form in S (borrowed; NULL or empty = none) replaced: each maximal run of overlapping
 * matches becomes one "[secret]"; adjacent but separate matches stay separate marks.
 * Returned owned (free with free()), NUL-terminated; its length in *OUT_LEN (NULL allowed). */
char *scrub_text(const scrub_t *s, const char *text, size_t len, size_t *out_len)
{
    span_t *sp = NULL;
    size_t n = 0, cap = 0;
    for (size_t f = 0; s && f < s->nforms; f++) {
        const form_t *fm = &s->forms[f];
        size_t first = n; /* this form's spans start here; overlapping ones are merged now */
        const char *p = text;
        while (len >= fm->len && (size_t)(p - text) <= len - fm->len) {
            const char *hit = memmem(p, len - (size_t)(p - text), fm->p, fm->len);
            if (!hit)
                break;
            size_t a = (size_t)(hit - text), b = a + fm->len;
            if (n > first && a < sp[n - 1].b) {
                sp[n - 1].b = b;
            } else {
                if (n == cap) {
                    cap = cap ? 2 * cap : 16;
                    sp = xrealloc(sp, cap * sizeof *sp);
                }
                sp[n++] = (span_t){a, b};
            }
            p = hit + 1;
        }
    }
    if (n > 1)
        qsort(sp, n, sizeof *sp, span_cmp);
    const size_t mark = sizeof SCRUB_MARK - 1;
    char *out = xmalloc(len + n * mark + 1);
    size_t o = 0, at = 0;
    for (size_t i = 0; i < n;) {
        size_t a = sp[i].a, b = sp[i].b;
        for (i++; i < n && sp[i].a < b; i++)
            if (sp[i].b > b)
                b = sp[i].b;
        memcpy(out + o, text + at, a - at);
        o += a - at;
        memcpy(out + o, SCRUB_MARK, mark);
        o += mark;
        at = b;
    }
    if (len > at)
        memcpy(out + o, text + at, len - at);
    o += len - at;
    out[o] = '\0';
    free(sp);
    if (out_len)
        *out_len = o;
    return out;
}

/* A JSON string of P (N bytes) scrubbed. Cutting a form out of the middle of a multi-byte
 * character (a value that is not valid UTF-8 on its own) can leave invalid UTF-8, which
 * Jansson refuses; then the whole string becomes the mark rather than leak anything. */
static json_t *scrub_string(const scrub_t *s, const char *p, size_t n)
{
    size_t on;
    char *o = scrub_text(s, p, n, &on);
    json_t *r = json_stringn(o, on);
    free(o);
    return r ? r : json_string(SCRUB_MARK);
}

/* A copy of V (borrowed) in which every string, object key and number whose text holds a
 * form of S is scrubbed (numbers that do become strings). Returned owned (json_decref);
 * NULL only for a NULL V. Keys that collide once scrubbed get "#2", "#3", ... appended so no
 * member is lost. */
json_t *scrub_json(const scrub_t *s, const json_t *v)
{
    if (!v)
        return NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return scrub_string(s, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
    case JSON_REAL: {
        char *t = jsonx_dumps(v, JSON_ENCODE_ANY);
        size_t tn = strlen(t), on;
        char *o = scrub_text(s, t, tn, &on);
        json_t *r =
            (on == tn && memcmp(o, t, tn) == 0) ? json_copy((json_t *)v) : json_stringn(o, on);
        free(o);
        free(t);
        return r;
    }
    case JSON_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a, scrub_json(s, json_array_get(v, i)));
        return a;
    }
    case JSON_OBJECT: {
        json_t *obj = json_object();
        const char *key;
        size_t key_len;
        json_t *val;
        json_object_keylen_foreach((json_t *)v, key, key_len, val)
        {
            size_t bn;
            char *base = scrub_text(s, key, key_len, &bn);
            char *k = base;
            size_t kn = bn;
            for (int i = 2; json_object_getn(obj, k, kn); i++) {
                if (k == base)
                    k = xmalloc(bn + 16);
                memcpy(k, base, bn);
                kn = bn + (size_t)snprintf(k + bn, 16, "#%d", i);
            }
            /* A key cut mid-character is invalid UTF-8: it becomes the bare mark. */
            if (json_object_setn_new(obj, k, kn, scrub_json(s, val)) != 0)
                json_object_set_new(obj, SCRUB_MARK, scrub_json(s, val));
            if (k != base)
                free(k);
            free(base);
        }
        return obj;
    }
    default:
        return json_copy((json_t *)v); /* true, false, null */
    }
}

/* Wipe and release S (taken; NULL-safe). */
void scrub_free(scrub_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nblocks; i++)
        sodium_free(s->blocks[i]); /* unprotects, wipes, unmaps */
    free(s->blocks);
    free(s->forms);
    free(s);
}
