/* jsonx.c - see jsonx.h. */
#include "core/jsonx.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/xalloc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maximum nesting of TEXT, counted outside strings; stops counting past LIMIT. Jansson has a
 * compile-time depth limit of its own; we check ours first so the error names our setting. */
static int scan_depth(const char *text, size_t len, int limit, size_t *where)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit) {
                    *where = i;
                    return max;
                }
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

static void position_of(const char *text, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Jansson cannot hold NUL in object keys. A key with an escaped NUL (\u0000) gets U+FFFD in
 * its place, escape for escape, so the document is still accepted and every position in it
 * stays where it was. Returns a modified copy (owned) or NULL when no key needs it. */
static char *replace_nul_in_keys(const char *text, size_t len)
{
    char *copy = NULL;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '"')
            continue;
        size_t start = i++;
        bool has_nul = false;
        for (; i < len && text[i] != '"'; i++) {
            if (text[i] == '\\' && i + 1 < len) {
                if (i + 5 < len && memcmp(text + i, "\\u0000", 6) == 0)
                    has_nul = true;
                i++;
            }
        }
        size_t end = i, j = i + 1;
        while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r'))
            j++;
        if (!has_nul || j >= len || text[j] != ':')
            continue;
        if (!copy)
            copy = xstrndup(text, len);
        for (size_t k = start; k + 5 < end; k++) {
            if (copy[k] == '\\' && memcmp(copy + k, "\\u0000", 6) == 0) {
                memcpy(copy + k, "\\ufffd", 6);
                k += 5;
            } else if (copy[k] == '\\') {
                k++;
            }
        }
    }
    return copy;
}

json_t *jsonx_parse(const char *text, size_t len, const jsonx_limits_t *limits, err_t *err)
{
    size_t max_bytes = limits ? limits->max_bytes : 0;
    int max_depth = limits && limits->max_depth > 0 ? limits->max_depth : JSONX_DEFAULT_DEPTH;

    if (max_bytes && len > max_bytes) {
        err_set_detail(err, BR_EINPUT_INVALID, json_pack("{s:I}", "max_bytes", (json_int_t)max_bytes),
                       "document is %zu bytes, more than the limit of %zu", len, max_bytes);
        return NULL;
    }
    size_t where = 0;
    if (scan_depth(text, len, max_depth, &where) > max_depth) {
        int line, col;
        position_of(text, where, &line, &col);
        err_set_detail(err, BR_EINPUT_INVALID,
                       json_pack("{s:i, s:i, s:I, s:i}", "line", line, "column", col, "position",
                                 (json_int_t)where, "max_depth", max_depth),
                       "line %d, column %d: nesting deeper than the limit of %d", line, col,
                       max_depth);
        return NULL;
    }

    /* A raw NUL byte is never valid JSON, but jansson stops reading at one as if the text
     * ended there ("123\0" would parse as 123). */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line, col;
        position_of(text, (size_t)(nul - text), &line, &col);
        err_set_detail(err, BR_EINPUT_INVALID,
                       json_pack("{s:i, s:i, s:I}", "line", line, "column", col, "position",
                                 (json_int_t)(nul - text)),
                       "line %d, column %d: a NUL byte is not allowed in JSON text", line, col);
        return NULL;
    }

    size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    if (limits && limits->reject_duplicate_keys)
        flags |= JSON_REJECT_DUPLICATES;
    json_error_t je;
    json_t *v = json_loadb(text, len, flags, &je);
    if (!v && json_error_code(&je) == json_error_null_byte_in_key) {
        char *fixed = replace_nul_in_keys(text, len);
        if (fixed) {
            v = json_loadb(fixed, len, flags, &je);
            free(fixed);
        }
    }
    if (!v) {
        int line = je.line > 0 ? je.line : 1, col = je.column > 0 ? je.column : 1;
        err_set_detail(err, BR_EINPUT_INVALID,
                       json_pack("{s:i, s:i, s:i}", "line", line, "column", col, "position",
                                 je.position),
                       "line %d, column %d: %s", line, col, je.text);
    }
    return v;
}

char *jsonx_dump(const json_t *v)
{
    buf_t b = BUF_INIT;
    jsonx_dump_buf(&b, v);
    return buf_steal(&b);
}

static int append_to_buf(const char *p, size_t n, void *b)
{
    buf_append(b, p, n);
    return 0;
}

char *jsonx_dumps(const json_t *v, size_t flags)
{
    buf_t b = BUF_INIT;
    if (json_dump_callback(v, append_to_buf, &b, flags | JSON_ENCODE_ANY) != 0 || !b.data)
        buf_puts(&b, "null");
    return buf_steal(&b);
}

/* ---- the compact writer ---- */

/* Room for EXTRA more bytes and the NUL after them, growing as buf.c grows a buffer. */
static inline void room(buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static inline void put_raw(buf_t *b, const char *p, size_t n)
{
    room(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void put_char(buf_t *b, char c)
{
    room(b, 1);
    b->data[b->len++] = c;
}

size_t jsonx_format_int(long long i, char out[24])
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930"
                                   "31323334353637383940414243444546474849505152535455565758596061"
                                   "62636465666768697071727374757677787980818283848586878889909192"
                                   "939495969798999";
    char tmp[24];
    char *end = tmp + sizeof tmp, *q = end;
    unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        q -= 2;
        q[0] = pairs[d];
        q[1] = pairs[d + 1];
    }
    if (u >= 10) {
        q -= 2;
        q[0] = pairs[u * 2];
        q[1] = pairs[u * 2 + 1];
    } else {
        *--q = (char)('0' + u);
    }
    if (i < 0)
        *--q = '-';
    size_t n = (size_t)(end - q);
    memcpy(out, q, n);
    out[n] = '\0';
    return n;
}

/* The common case without printf: a value with at most three decimals and below 1e12 (a
 * duration in milliseconds, a price) is K / 1000 for a whole K, and then %.15g would print
 * exactly K's digits (at most 15 significant ones, and no exponent from 1e-3 to 1e12). Writes
 * it as the function below would and returns its length, or 0 when D is not such a value. */
static size_t format_milli_real(double d, char out[40])
{
    if (!(d != 0 && d > -1e12 && d < 1e12))
        return 0; /* zero keeps printf's sign handling; NaN fails every comparison */
    long long k = llround(d * 1000);
    if ((double)k / 1000.0 != d)
        return 0;
    char *p = out;
    unsigned long long a = k < 0 ? (unsigned long long)(-k) : (unsigned long long)k;
    if (k < 0)
        *p++ = '-';
    char digits[24];
    int n = 0;
    for (unsigned long long whole = a / 1000; n == 0 || whole > 0; whole /= 10)
        digits[n++] = (char)('0' + whole % 10);
    while (n > 0)
        *p++ = digits[--n];
    *p++ = '.';
    unsigned frac = (unsigned)(a % 1000);
    char f[3] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10)};
    int keep = frac == 0 ? 1 : f[2] != '0' ? 3 : f[1] != '0' ? 2 : 1;
    for (int i = 0; i < keep; i++)
        *p++ = f[i];
    *p = '\0';
    return (size_t)(p - out);
}

size_t jsonx_format_real(double d, char out[40])
{
    size_t fast = format_milli_real(d, out);
    return fast ? fast : jsonx_format_real_printf(d, out);
}

size_t jsonx_format_real_printf(double d, char out[40])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    char *e = strchr(out, 'e');
    if (e) {
        char *w = e + 1;
        if (*w == '-')
            w++;
        char *q = w;
        if (*q == '+')
            q++;
        while (*q == '0' && q[1])
            q++;
        memmove(w, q, strlen(q) + 1);
    } else if (!strchr(out, '.')) {
        strcat(out, ".0");
    }
    return strlen(out);
}

/* Bytes that need an escape inside a JSON string: control characters, '"' and '\\'. */
static const unsigned char needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
};

/* The offset of the first byte of P[0..N) that needs an escape, or N. Eight bytes at a time:
 * a byte below 0x20, a '"' or a '\\' sets the high bit of its lane. */
static size_t clean_prefix(const char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t q = x ^ (ones * '"'), s = x ^ (ones * '\\');
        uint64_t hit = ((x - ones * 0x20) | (q - ones) | (s - ones)) & ~x & highs;
        if (hit)
            break;
    }
    for (; i < n; i++)
        if (needs_escape[(unsigned char)p[i]])
            return i;
    return n;
}

static void put_string(buf_t *b, const char *p, size_t n)
{
    room(b, n + 2);
    char *d = b->data + b->len;
    *d++ = '"';
    size_t i = clean_prefix(p, n);
    memcpy(d, p, i);
    b->len += i + 1;
    if (i < n) {
        size_t from = i;
        for (; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (!needs_escape[c])
                continue;
            put_raw(b, p + from, i - from);
            from = i + 1;
            char esc[8] = {'\\', 0};
            size_t k = 2;
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default: {
                static const char hex[] = "0123456789ABCDEF";
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                k = 6;
                break;
            }
            }
            put_raw(b, esc, k);
        }
        put_raw(b, p + from, n - from);
        room(b, 1);
    }
    b->data[b->len++] = '"';
}

void jsonx_put_string(buf_t *b, const char *p, size_t n)
{
    put_string(b, p, n);
    b->data[b->len] = '\0';
}

/* Append V; -1 as soon as B holds more than MAX bytes. B is left without its NUL. */
static int dump_value(buf_t *b, const json_t *v, size_t max)
{
    char num[40];
    size_t n;
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: {
        put_char(b, '{');
        bool first = true;
        /* jansson's iterators take a non-const object; iterating does not modify it. */
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                put_char(b, ',');
            first = false;
            size_t klen = json_object_iter_key_len(it);
            if (b->len > max || klen + 2 > max - b->len)
                return -1;
            put_string(b, json_object_iter_key(it), klen);
            put_char(b, ':');
            if (dump_value(b, json_object_iter_value(it), max) < 0)
                return -1;
        }
        put_char(b, '}');
        break;
    }
    case JSON_ARRAY: {
        put_char(b, '[');
        size_t size = json_array_size(v);
        for (size_t i = 0; i < size; i++) {
            if (i)
                put_char(b, ',');
            if (dump_value(b, json_array_get(v, i), max) < 0)
                return -1;
        }
        put_char(b, ']');
        break;
    }
    case JSON_STRING:
        n = json_string_length(v);
        if (b->len > max || n + 2 > max - b->len)
            return -1;
        put_string(b, json_string_value(v), n);
        break;
    case JSON_INTEGER:
        n = jsonx_format_int(json_integer_value(v), num);
        put_raw(b, num, n);
        break;
    case JSON_REAL:
        n = jsonx_format_real(json_real_value(v), num);
        put_raw(b, num, n);
        break;
    case JSON_TRUE:
        put_raw(b, "true", 4);
        break;
    case JSON_FALSE:
        put_raw(b, "false", 5);
        break;
    default:
        put_raw(b, "null", 4);
        break;
    }
    return b->len > max ? -1 : 0;
}

void jsonx_dump_buf(buf_t *b, const json_t *v)
{
    dump_value(b, v, SIZE_MAX);
    b->data[b->len] = '\0';
}

int jsonx_dump_buf_max(buf_t *b, const json_t *v, size_t max)
{
    int rc = dump_value(b, v, max);
    if (b->data)
        b->data[b->len] = '\0';
    return rc;
}

const char *jsonx_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

int jsonx_depth(const json_t *v)
{
    int max = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child)
        {
            int d = jsonx_depth(child);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            int d = jsonx_depth(child);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

json_t *jsonx_get_path(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    char key[512];
    while (cur && *p) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            p++;
            if (*p == '"') { /* ["key"] */
                p++;
                size_t n = 0;
                while (*p && *p != '"' && n < sizeof key - 1) {
                    if (*p == '\\' && p[1])
                        p++;
                    key[n++] = *p++;
                }
                key[n] = '\0';
                if (*p != '"')
                    return NULL;
                p++;
                if (*p != ']')
                    return NULL;
                p++;
                cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
            } else {
                char *end;
                long idx = strtol(p, &end, 10);
                if (end == p || *end != ']')
                    return NULL;
                p = end + 1;
                if (!json_is_array(cur))
                    return NULL;
                if (idx < 0)
                    idx += (long)json_array_size(cur);
                cur = idx >= 0 ? json_array_get(cur, (size_t)idx) : NULL;
            }
            continue;
        }
        size_t n = 0;
        while (*p && *p != '.' && *p != '[' && n < sizeof key - 1)
            key[n++] = *p++;
        key[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, key);
        } else if (json_is_array(cur)) {
            char *end;
            long idx = strtol(key, &end, 10);
            cur = (*end == '\0' && end != key && idx >= 0) ? json_array_get(cur, (size_t)idx) : NULL;
        } else {
            return NULL;
        }
    }
    return cur;
}

void jsonx_set_dotted(json_t *obj, const char *key, json_t *value)
{
    /* Iterative, so a key with many dots costs no stack. */
    for (;;) {
        const char *dot = strchr(key, '.');
        if (!dot) {
            json_object_set_new(obj, key, value);
            return;
        }
        char *head = xstrndup(key, (size_t)(dot - key));
        json_t *child = json_object_get(obj, head);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(obj, head, child);
        }
        free(head);
        obj = child;
        key = dot + 1;
    }
}

bool jsonx_as_int(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
            *out = (long long)d;
            return true;
        }
    }
    return false;
}

/* A lower bound of V's compact text length, stopping past LIMIT. See jsonx.h. */
size_t jsonx_size_at_least(const json_t *v, size_t limit)
{
    size_t n = 0;
    switch (json_typeof(v)) {
    case JSON_STRING: return json_string_length(v) + 2;
    case JSON_OBJECT: {
        const char *k;
        json_t *child;
        n = 2;
        json_object_foreach((json_t *)v, k, child)
        {
            n += strlen(k) + 4 + jsonx_size_at_least(child, limit - (n < limit ? n : limit));
            if (n > limit)
                return limit + 1;
        }
        return n;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;
        n = 2;
        json_array_foreach(v, i, child)
        {
            n += 1 + jsonx_size_at_least(child, limit - (n < limit ? n : limit));
            if (n > limit)
                return limit + 1;
        }
        return n;
    }
    case JSON_INTEGER:
    case JSON_REAL: return 1;
    default: return 4;
    }
}

/* V, or a note that it was cut with a preview. See jsonx.h. */
json_t *jsonx_cut(const json_t *v, size_t max_bytes)
{
    if (!v || jsonx_size_at_least(v, max_bytes / 2) <= max_bytes / 2)
        return json_incref((json_t *)v); /* surely small: escapes at most double a text */
    char *text = jsonx_dump(v);
    size_t len = strlen(text);
    if (len <= max_bytes) {
        free(text);
        return json_incref((json_t *)v);
    }
    /* Room for the note around the preview; the preview may grow when escaped again. */
    size_t keep = max_bytes > 512 ? (max_bytes - 512) / 2 : 0;
    while (keep > 0 && ((unsigned char)text[keep] & 0xC0) == 0x80)
        keep--; /* never split a UTF-8 sequence */
    json_t *note = json_object();
    json_object_set_new(note, "truncated", json_true());
    json_object_set_new(note, "bytes", json_integer((json_int_t)len));
    json_t *preview = json_stringn(text, keep);
    json_object_set_new(note, "preview", preview ? preview : json_string(""));
    free(text);
    return note;
}

/* Length of the valid UTF-8 sequence at P (at most N bytes), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0)
        len = 2, cp = p[0] & 0x1F;
    else if ((p[0] & 0xF0) == 0xE0)
        len = 3, cp = p[0] & 0x0F;
    else if ((p[0] & 0xF8) == 0xF0)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0; /* overlong, out of range, or a surrogate */
    return len;
}

json_t *jsonx_string_lossy(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    buf_t b = BUF_INIT;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(p + i, n - i);
        if (len) {
            buf_append(&b, p + i, len);
            i += len;
        } else {
            buf_puts(&b, "\xef\xbf\xbd");
            i++;
        }
    }
    v = json_stringn(b.data ? b.data : "", b.len);
    buf_deinit(&b);
    return v ? v : json_string("");
}

/* See jsonx.h. Only reads J, so any number of threads may copy one value at once. */
json_t *jsonx_copy(const json_t *j)
{
    if (!j)
        return NULL;
    json_t *out, *child;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        if (!(out = json_object()))
            return NULL;
        json_object_keylen_foreach((json_t *)j, key, klen, child)
        {
            json_t *c = jsonx_copy(child);
            /* Keys of an existing object are valid UTF-8 already. */
            if (!c || json_object_setn_new_nocheck(out, key, klen, c) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    case JSON_ARRAY: {
        size_t i;
        if (!(out = json_array()))
            return NULL;
        json_array_foreach(j, i, child)
        {
            json_t *c = jsonx_copy(child);
            if (!c || json_array_append_new(out, c) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return json_integer(json_integer_value(j));
    case JSON_REAL:
        return json_real(json_real_value(j));
    default:
        return json_incref((json_t *)j); /* true, false and null are immutable singletons */
    }
}

/* See jsonx.h. */
json_t *jsonx_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[40];
    clock_format_rfc3339(ms, buf, sizeof buf);
    return json_string(buf);
}
