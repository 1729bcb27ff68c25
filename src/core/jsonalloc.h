/* jsonalloc.h - the allocator jansson's values come from.
 *
 * A run makes and drops a few dozen small JSON values per task (objects, their hash buckets
 * and key pairs, numbers, short strings). glibc's malloc keeps only seven freed blocks per size
 * for each thread, so every burst of frees fell through to its locked bins: about 45% of the
 * instructions of an in-process sub-call were malloc and free. This allocator keeps freed
 * blocks of up to JSONALLOC_SMALL bytes on per-thread lists without a lock, moves them to and
 * from one shared list per size in batches, and carves new blocks from pages of one reserved
 * address range, so a free finds a block's size from its page without a header. Larger
 * blocks, and every block once the range is used up, come from malloc.
 *
 * Blocks freed by another thread join that thread's lists. Memory is kept for reuse, never
 * given back to the system (as glibc keeps most of its heap). */
#ifndef BRAID_CORE_JSONALLOC_H
#define BRAID_CORE_JSONALLOC_H

#include <stdbool.h>
#include <stddef.h>

#define JSONALLOC_SMALL 256 /* bytes; bigger requests go to malloc */

/* Make jansson allocate with jsonalloc_malloc / jsonalloc_free. Call once at program start,
 * before other threads run; values made earlier with malloc are still freed right, since a
 * free tells the two apart by address. Does nothing in sanitizer builds, where blocks must
 * come from malloc for AddressSanitizer and LeakSanitizer to check them. Returns whether the
 * allocator is in use. */
bool jsonalloc_install(void);

/* N bytes, 16-aligned; NULL only when malloc fails for a block it cannot serve. Any thread. */
void *jsonalloc_malloc(size_t n);

/* Free P (NULL, a block of jsonalloc_malloc, or one of malloc). Any thread. */
void jsonalloc_free(void *p);

/* Bytes of the reserved range handed out as pages so far (for tests and metrics). */
size_t jsonalloc_reserved_used(void);

#endif
