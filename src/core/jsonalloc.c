/* jsonalloc.c - the allocator jansson's values come from (see jsonalloc.h).
 *
 * Blocks come in NCLASS sizes, multiples of GRAIN. Each page of the reserved range holds
 * blocks of one size, written in page_class when the page is first carved, so a free needs
 * only the block's address. A thread's freed blocks wait on its own list for that size; past
 * CACHE_MAX of them, BATCH go to the size's shared list as one batch, and a thread whose list
 * is empty takes a whole batch from there before it carves a new page. Batches are linked
 * through their first blocks, so taking one costs no walk over blocks that other threads
 * freed (each a cache miss, under the size's lock). */
#include "core/jsonalloc.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define GRAIN 16
#define NCLASS (JSONALLOC_SMALL / GRAIN)
#define PAGE 4096
#define RESERVE ((size_t)1 << 30) /* address space only: a page costs memory once carved */
#define CACHE_MAX 512             /* freed blocks per size a thread keeps to itself */
#define BATCH 256                 /* blocks moved at once between a thread and the shared list */
#define CARVE 32                  /* blocks carved from a page at once */

typedef struct block {
    struct block *next;
    struct block *next_batch; /* a batch's first block on a shared list: the next batch */
} block_t;

_Static_assert(sizeof(block_t) <= GRAIN, "the smallest block holds both links");

typedef struct shared {
    pthread_mutex_t mu;
    block_t *batches; /* batches of BATCH blocks, linked through next_batch */
    block_t *loose;   /* blocks of threads that ended, linked through next */
} shared_t;

typedef struct cache {
    block_t *head[NCLASS];
    unsigned n[NCLASS];
    char *carve[NCLASS], *carve_end[NCLASS]; /* the rest of the page being carved per size */
    bool registered;                         /* its blocks go back to shared at thread exit */
} cache_t;

static char *region; /* RESERVE bytes, or NULL when the range could not be reserved */
static atomic_size_t region_used;
static uint8_t page_class[RESERVE / PAGE]; /* size class + 1 of each carved page */
static shared_t shared[NCLASS] = {[0 ... NCLASS - 1] = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL}};
static pthread_once_t reserve_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static __thread cache_t tc;

static void give_all_back(void *unused);

static void reserve(void)
{
    void *p = mmap(NULL, RESERVE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return;
    if (pthread_key_create(&exit_key, give_all_back) != 0) {
        munmap(p, RESERVE);
        return;
    }
    region = p;
}

static inline bool in_region(const void *p)
{
    return region && (uintptr_t)p - (uintptr_t)region < RESERVE;
}

/* Put the batch FIRST (BATCH blocks linked through next, the last one's NULL) on class C's
 * shared list. */
static void share_batch(size_t c, block_t *first)
{
    pthread_mutex_lock(&shared[c].mu);
    first->next_batch = shared[c].batches;
    shared[c].batches = first;
    pthread_mutex_unlock(&shared[c].mu);
}

/* At thread exit: the thread's blocks, and the uncarved rest of its pages, to shared. */
static void give_all_back(void *unused)
{
    (void)unused;
    for (size_t c = 0; c < NCLASS; c++) {
        size_t size = (c + 1) * GRAIN;
        for (; tc.carve[c] && tc.carve[c] + size <= tc.carve_end[c]; tc.carve[c] += size) {
            block_t *b = (block_t *)tc.carve[c];
            b->next = tc.head[c];
            tc.head[c] = b;
        }
        if (tc.head[c]) {
            block_t *last = tc.head[c];
            while (last->next)
                last = last->next;
            pthread_mutex_lock(&shared[c].mu);
            last->next = shared[c].loose;
            shared[c].loose = tc.head[c];
            pthread_mutex_unlock(&shared[c].mu);
        }
        tc.head[c] = NULL;
        tc.n[c] = 0;
        tc.carve[c] = tc.carve_end[c] = NULL;
    }
}

static void register_thread(void)
{
    pthread_once(&reserve_once, reserve);
    if (region)
        pthread_setspecific(exit_key, &tc); /* any non-NULL value runs give_all_back */
    tc.registered = true;
}

/* Class C's list is empty: take a batch from shared, else carve a page. A block, or NULL when
 * the range is used up (the caller then asks malloc). */
static block_t *refill(size_t c)
{
    if (!tc.registered)
        register_thread();
    if (!region)
        return NULL;
    pthread_mutex_lock(&shared[c].mu);
    block_t *first = shared[c].batches;
    if (first) {
        shared[c].batches = first->next_batch;
        pthread_mutex_unlock(&shared[c].mu);
        tc.head[c] = first->next;
        tc.n[c] = BATCH - 1;
        return first;
    }
    if ((first = shared[c].loose)) { /* rare: only threads that ended leave blocks here */
        block_t *last = first;
        unsigned n = 1;
        for (; n < BATCH && last->next; n++)
            last = last->next;
        shared[c].loose = last->next;
        last->next = NULL;
        pthread_mutex_unlock(&shared[c].mu);
        tc.head[c] = first->next;
        tc.n[c] = n - 1;
        return first;
    }
    pthread_mutex_unlock(&shared[c].mu);

    size_t size = (c + 1) * GRAIN;
    if (!tc.carve[c] || tc.carve[c] + size > tc.carve_end[c]) {
        size_t off = atomic_fetch_add_explicit(&region_used, PAGE, memory_order_relaxed);
        if (off + PAGE > RESERVE)
            return NULL;
        page_class[off / PAGE] = (uint8_t)(c + 1);
        tc.carve[c] = region + off;
        tc.carve_end[c] = region + off + PAGE;
    }
    /* Carve up to CARVE blocks at once: the next allocations then find them on the list. */
    block_t *got = (block_t *)tc.carve[c];
    tc.carve[c] += size;
    block_t **link = &tc.head[c];
    for (unsigned n = 1; n < CARVE && tc.carve[c] + size <= tc.carve_end[c]; n++) {
        block_t *b = (block_t *)tc.carve[c];
        tc.carve[c] += size;
        *link = b;
        link = &b->next;
        tc.n[c]++;
    }
    *link = NULL;
    return got;
}

void *jsonalloc_malloc(size_t n)
{
    if (n > JSONALLOC_SMALL)
        return malloc(n);
    size_t c = n ? (n - 1) / GRAIN : 0;
    block_t *b = tc.head[c];
    if (b) {
        tc.head[c] = b->next;
        tc.n[c]--;
        return b;
    }
    b = refill(c);
    return b ? (void *)b : malloc(n);
}

void jsonalloc_free(void *p)
{
    if (!in_region(p)) {
        free(p);
        return;
    }
    size_t c = (size_t)page_class[((char *)p - region) / PAGE] - 1;
    block_t *b = p;
    b->next = tc.head[c];
    tc.head[c] = b;
    if (__builtin_expect(!tc.registered, 0))
        register_thread(); /* so that its blocks are not lost when it ends */
    if (++tc.n[c] <= CACHE_MAX)
        return;
    block_t *last = b;
    for (unsigned i = 1; i < BATCH; i++)
        last = last->next;
    tc.head[c] = last->next;
    last->next = NULL;
    tc.n[c] -= BATCH;
    share_batch(c, b);
}

size_t jsonalloc_reserved_used(void)
{
    size_t used = atomic_load_explicit(&region_used, memory_order_relaxed);
    return used < RESERVE ? used : RESERVE;
}

bool jsonalloc_install(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return false; /* the sanitizers check malloc's blocks, not ours */
#else
    pthread_once(&reserve_once, reserve);
    if (!region)
        return false;
    json_set_alloc_funcs(jsonalloc_malloc, jsonalloc_free);
    return true;
#endif
}
