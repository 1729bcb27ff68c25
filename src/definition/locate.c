/* locate.c - line and column of a JSON Pointer in a document's text.
 *
 * Jansson keeps no positions, so this scans the original text again: it follows the pointer
 * token by token, skipping the values in between. The text has already been parsed
 * successfully, so the scanner may trust its shape; it still never reads past LEN.
 * Positions are the first byte of the value (or of the key, for at_key diagnostics); a
 * pointer that goes where the document has nothing (a missing required field) stops at the
 * deepest value that exists, the enclosing object.
 */
#include "definition/internal.h"

#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

typedef struct scan {
    const char *s;
    size_t len;
    size_t pos;
} scan_t;

static int peek(const scan_t *sc)
{
    return sc->pos < sc->len ? (unsigned char)sc->s[sc->pos] : -1;
}

static void skip_ws(scan_t *sc)
{
    while (sc->pos < sc->len) {
        char ch = sc->s[sc->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        sc->pos++;
    }
}

/* Skip the string starting at the opening quote. Long strings are common (descriptions,
 * payloads), so jump from quote to quote with memchr: a quote ends the string unless an odd
 * run of backslashes precedes it. */
static void skip_string(scan_t *sc)
{
    size_t from = sc->pos + 1;
    while (from < sc->len) {
        const char *q = memchr(sc->s + from, '"', sc->len - from);
        if (!q)
            break;
        size_t at = (size_t)(q - sc->s), bs = 0;
        while (at - bs > sc->pos + 1 && sc->s[at - bs - 1] == '\\')
            bs++;
        if (bs % 2 == 0) {
            sc->pos = at + 1;
            return;
        }
        from = at + 1;
    }
    sc->pos = sc->len;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            v |= ch - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static void put_utf8(buf_t *b, unsigned cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, o, n);
}

/* Decode the string starting at the opening quote into OUT (reset first): keys in the text
 * may spell the same name with escapes ("\u0069d" is "id"). */
static void read_string(scan_t *sc, buf_t *out)
{
    buf_reset(out);
    buf_append(out, "", 0);
    sc->pos++;
    while (sc->pos < sc->len) {
        char ch = sc->s[sc->pos++];
        if (ch == '"')
            return;
        if (ch != '\\') {
            buf_putc(out, ch);
            continue;
        }
        if (sc->pos >= sc->len)
            return;
        char e = sc->s[sc->pos++];
        switch (e) {
        case 'b':
            buf_putc(out, '\b');
            break;
        case 'f':
            buf_putc(out, '\f');
            break;
        case 'n':
            buf_putc(out, '\n');
            break;
        case 'r':
            buf_putc(out, '\r');
            break;
        case 't':
            buf_putc(out, '\t');
            break;
        case 'u': {
            if (sc->len - sc->pos < 4)
                return;
            int cp = hex4(sc->s + sc->pos);
            sc->pos += 4;
            if (cp < 0)
                return;
            if (cp >= 0xd800 && cp <= 0xdbff && sc->len - sc->pos >= 6 && sc->s[sc->pos] == '\\' &&
                sc->s[sc->pos + 1] == 'u') {
                int lo = hex4(sc->s + sc->pos + 2);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    sc->pos += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
            }
            put_utf8(out, (unsigned)cp);
            break;
        }
        default:
            buf_putc(out, e);
            break; /* '"', '\\', '/' */
        }
    }
}

/* Skip one value of any kind. Containers are skipped by counting brackets outside strings,
 * without recursion, so nesting depth costs nothing. */
static void skip_value(scan_t *sc)
{
    int ch = peek(sc);
    if (ch == '"') {
        skip_string(sc);
        return;
    }
    if (ch == '{' || ch == '[') {
        int depth = 0;
        while (sc->pos < sc->len) {
            char c2 = sc->s[sc->pos];
            if (c2 == '"') {
                skip_string(sc);
                continue;
            }
            sc->pos++;
            if (c2 == '{' || c2 == '[')
                depth++;
            else if ((c2 == '}' || c2 == ']') && --depth == 0)
                return;
        }
        return;
    }
    while (sc->pos < sc->len) {
        char c2 = sc->s[sc->pos];
        if (c2 == ',' || c2 == ']' || c2 == '}' || c2 == ' ' || c2 == '\t' || c2 == '\n' ||
            c2 == '\r')
            return;
        sc->pos++;
    }
}

/* Split the next token off *P (a JSON Pointer after its leading '/') into TOK, undoing the
 * ~1 and ~0 escapes. */
static void next_token(const char **p, buf_t *tok)
{
    buf_reset(tok);
    buf_append(tok, "", 0);
    const char *s = *p;
    while (*s && *s != '/') {
        if (s[0] == '~' && s[1] == '1') {
            buf_putc(tok, '/');
            s += 2;
        } else if (s[0] == '~' && s[1] == '0') {
            buf_putc(tok, '~');
            s += 2;
        } else {
            buf_putc(tok, *s++);
        }
    }
    *p = s;
}

/* Find the member TOK of the object at SC's position. Leaves SC at its value and sets
 * *KEY_POS; returns false (SC anywhere) when there is no such member. */
static bool find_member(scan_t *sc, const char *tok, buf_t *key, size_t *key_pos)
{
    sc->pos++; /* '{' */
    for (;;) {
        skip_ws(sc);
        if (peek(sc) != '"')
            return false;
        *key_pos = sc->pos;
        read_string(sc, key);
        skip_ws(sc);
        if (peek(sc) != ':')
            return false;
        sc->pos++;
        skip_ws(sc);
        if (strcmp(key->data, tok) == 0)
            return true;
        skip_value(sc);
        skip_ws(sc);
        if (peek(sc) != ',')
            return false;
        sc->pos++;
    }
}

/* Move SC to element TOK (a decimal index) of the array at its position. */
static bool find_element(scan_t *sc, const char *tok)
{
    if (!*tok || strspn(tok, "0123456789") != strlen(tok) || strlen(tok) > 9)
        return false;
    long idx = strtol(tok, NULL, 10);
    sc->pos++; /* '[' */
    skip_ws(sc);
    if (peek(sc) == ']')
        return false;
    for (long i = 0;; i++) {
        skip_ws(sc);
        if (i == idx)
            return true;
        skip_value(sc);
        skip_ws(sc);
        if (peek(sc) != ',')
            return false;
        sc->pos++;
    }
}

/* Byte offset in TEXT of what POINTER designates (see the file comment). */
static size_t locate(const char *text, size_t len, const char *pointer, bool at_key)
{
    scan_t sc = {text, len, 0};
    buf_t tok = BUF_INIT, key = BUF_INIT;
    skip_ws(&sc);
    size_t found = sc.pos;
    const char *p = pointer;
    while (*p == '/') {
        p++;
        next_token(&p, &tok);
        bool last = *p == '\0';
        int ch = peek(&sc);
        size_t key_pos = 0;
        bool ok;
        if (ch == '{')
            ok = find_member(&sc, tok.data, &key, &key_pos);
        else if (ch == '[')
            ok = find_element(&sc, tok.data);
        else
            ok = false;
        if (!ok)
            break;
        found = last && at_key && ch == '{' ? key_pos : sc.pos;
    }
    buf_deinit(&tok);
    buf_deinit(&key);
    return found < len ? found : len;
}

typedef struct spot {
    size_t pos;
    int index; /* into the diagnostics */
} spot_t;

static int spot_cmp(const void *a, const void *b)
{
    const spot_t *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Fill line and column of every diagnostic in D that has none yet, from TEXT (LEN bytes,
 * borrowed, need not be NUL-terminated), the text the diagnostics were found in. Lines and
 * columns count from 1; columns count characters, not bytes (UTF-8 continuation bytes do not
 * count), as jansson counts its own. One partial scan of the text per diagnostic finds its
 * offset, then one pass over the text, in offset order, turns offsets into lines and
 * columns. Not thread-safe on one D. */
void diags_locate(diags_t *d, const char *text, size_t len)
{
    if (!d || !text || d->n == 0)
        return;
    spot_t *spots = xcalloc((size_t)d->n, sizeof *spots);
    int n = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->items[i].line > 0)
            continue;
        spots[n].pos = locate(text, len, d->items[i].pointer, d->items[i].at_key);
        spots[n].index = i;
        n++;
    }
    qsort(spots, (size_t)n, sizeof *spots, spot_cmp);
    int line = 1, col = 1;
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        for (; at < spots[k].pos; at++) {
            unsigned char ch = (unsigned char)text[at];
            if (ch == '\n') {
                line++;
                col = 1;
            } else if ((ch & 0xc0) != 0x80) {
                col++;
            }
        }
        d->items[spots[k].index].line = line;
        d->items[spots[k].index].column = col;
    }
    free(spots);
}
