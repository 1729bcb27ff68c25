/* xalloc.h - allocation that cannot fail: out of memory aborts with a message.
 * Sizes that come from input are checked against limits before they get here. */
#ifndef BRAID_CORE_XALLOC_H
#define BRAID_CORE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string (free with free()). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define XNEW(type) ((type *)xcalloc(1, sizeof(type)))

#endif
