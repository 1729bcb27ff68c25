/* buf.h - a growable byte buffer, always NUL-terminated. */
#ifndef BRAID_CORE_BUF_H
#define BRAID_CORE_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
} buf_t;

#define BUF_INIT {NULL, 0, 0}

/* Make room for EXTRA more bytes, so that appends up to that many do not reallocate. */
void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *data, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the contents as an owned string (free with free()) and resets B. */
char *buf_steal(buf_t *b);
void buf_reset(buf_t *b);
void buf_deinit(buf_t *b);
/* buf_deinit after overwriting every byte held: for buffers that held credentials. */
void buf_wipe(buf_t *b);

#endif
