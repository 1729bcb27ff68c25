/* diags.c - the list of problems found in a document.
 *
 * Diagnostics keep the order in which validation found them; each owns its pointer and
 * message. Line and column stay 0 until diags_locate (locate.c) fills them from the text.
 */
#include "definition/internal.h"

#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at S (1-4), or 0 when the bytes there are not one. */
static int utf8_seq(const unsigned char *s)
{
    int n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

/* Messages quote parts of documents and of other modules' messages, which a fixed-size
 * buffer may have cut inside a UTF-8 sequence: replace any invalid byte with '?' so the
 * message always makes a JSON string. */
static void utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = utf8_seq(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* Append a diagnostic at POINTER (borrowed, copied) with a vprintf-style message. Returns
 * the new entry (borrowed, valid until the next add) so the caller can adjust it. */
diag_t *diags_vadd(diags_t *d, const char *pointer, const char *fmt, va_list ap)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->items = xrealloc(d->items, (size_t)d->cap * sizeof *d->items);
    }
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *msg = xmalloc(n > 0 ? (size_t)n + 1 : 1);
    if (n > 0)
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    else
        msg[0] = '\0';
    utf8_repair(msg);

    diag_t *g = &d->items[d->n++];
    memset(g, 0, sizeof *g);
    g->pointer = xstrdup(pointer ? pointer : "");
    g->message = msg;
    return g;
}

/* Append a diagnostic at POINTER (borrowed; "" = the whole document) with a printf-style
 * message. Line and column start at 0. Not thread-safe on one D. */
void diags_add(diags_t *d, const char *pointer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diags_vadd(d, pointer, fmt, ap);
    va_end(ap);
}

/* The diagnostics as [{"pointer", "message", "line", "column"}] in the order found; line and
 * column are omitted when unknown. Returns a new array (owned, json_decref it). */
json_t *diags_to_json(const diags_t *d)
{
    json_t *arr = json_array();
    for (int i = 0; i < d->n; i++) {
        const diag_t *g = &d->items[i];
        json_t *o = json_object();
        json_object_set_new(o, "pointer", json_string(g->pointer));
        json_object_set_new(o, "message", json_string(g->message));
        if (g->line > 0) {
            json_object_set_new(o, "line", json_integer(g->line));
            json_object_set_new(o, "column", json_integer(g->column));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

/* Free every diagnostic in D (caller's storage) and leave it empty and reusable. */
void diags_deinit(diags_t *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++) {
        free(d->items[i].pointer);
        free(d->items[i].message);
    }
    free(d->items);
    d->items = NULL;
    d->n = d->cap = 0;
}
