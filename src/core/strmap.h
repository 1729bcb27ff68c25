/* strmap.h - a hash map from strings to pointers (open addressing, linear probing).
 * Not thread-safe: callers guard a shared map with their own lock. */
#ifndef BRAID_CORE_STRMAP_H
#define BRAID_CORE_STRMAP_H

#include <stddef.h>

typedef struct strmap strmap_t;

strmap_t *strmap_new(void);
/* Frees the map and its key copies; values are the caller's. NULL-safe. */
void strmap_free(strmap_t *m);
/* The value stored under KEY, or NULL. */
void *strmap_get(const strmap_t *m, const char *key);
/* Store VALUE (not NULL) under KEY (copied); returns the value it replaced, or NULL. */
void *strmap_put(strmap_t *m, const char *key, void *value);
/* Remove KEY; returns its value, or NULL when absent. */
void *strmap_del(strmap_t *m, const char *key);
size_t strmap_count(const strmap_t *m);
/* Call FN for every entry, in no particular order. FN must not change the map. */
void strmap_each(const strmap_t *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx);

#endif
