/* claim_cache.c - the input and trigger info of runs this process queued, kept as values until
 * the runs are claimed, so that a claim need not parse them back from the text it reads.
 *
 * Under sustained async load a claim parsed every claimed run's input on the store's writer
 * thread (about a tenth of the server's CPU), though the process that accepted the run a
 * moment earlier still held it as a value. The cache holds references to those values, keyed
 * by run id, for runs whose putter promises never to change them (store_run_put_kept). It is
 * bounded by count and by each value's size, oldest out first; a run it no longer holds, or
 * never held (queued by another process, or before a restart), is parsed as before. */
#include "store/store_internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <string.h>

/* Runs held at most: about the backlog a busy server drains within a few commits. */
#define CLAIM_CACHE_RUNS 1024
/* A run whose input takes more than this as JSON text is not held (memory stays bounded:
 * about CLAIM_CACHE_RUNS times this, in values). */
#define CLAIM_CACHE_VALUE_MAX 2048
/* Slots of the hash table: between two rehashes (one per lap of the ring) at most twice
 * CLAIM_CACHE_RUNS are in use, live or removed, so the table stays at most half full and a
 * lookup that misses stops within a few probes. */
#define CLAIM_CACHE_SLOTS (4 * CLAIM_CACHE_RUNS)

typedef struct entry {
    char id[UUID_STR_LEN]; /* "" = free */
    json_t *input, *trigger_info;
} entry_t;

struct claim_cache {
    pthread_mutex_t mu;
    /* Open addressing over SLOTS indexes into ENTRIES, which is a ring: NEXT is the slot to
     * fill next, and the entry found there, if any, is the oldest and goes. */
    entry_t entries[CLAIM_CACHE_RUNS];
    int slots[CLAIM_CACHE_SLOTS]; /* entry index + 1; 0 = empty; -1 = removed */
    int next;
};

claim_cache_t *claim_cache_new(void)
{
    claim_cache_t *c = XNEW(claim_cache_t);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void entry_clear(entry_t *e)
{
    json_decref(e->input);
    json_decref(e->trigger_info);
    memset(e, 0, sizeof *e);
}

void claim_cache_free(claim_cache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < CLAIM_CACHE_RUNS; i++)
        entry_clear(&c->entries[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The slot holding ID, or -1. Under mu. */
static int slot_of(const claim_cache_t *c, const char *id)
{
    size_t mask = CLAIM_CACHE_SLOTS - 1;
    for (size_t h = store_id_hash(id) & mask, probes = 0; probes <= mask;
         h = (h + 1) & mask, probes++) {
        int s = c->slots[h];
        if (s == 0)
            return -1;
        if (s > 0 && strcmp(c->entries[s - 1].id, id) == 0)
            return (int)h;
    }
    return -1;
}

/* Drop the entry in slot S. Under mu; the values go to *INPUT / *TRIGGER_INFO when given,
 * else are released. */
static void slot_drop(claim_cache_t *c, int s, json_t **input, json_t **trigger_info)
{
    entry_t *e = &c->entries[c->slots[s] - 1];
    c->slots[s] = -1;
    if (input) {
        *input = e->input;
        *trigger_info = e->trigger_info;
        e->input = e->trigger_info = NULL;
    }
    entry_clear(e);
}

/* Rebuild the slots from the entries: removed marks accumulate under steady use. */
static void rehash(claim_cache_t *c)
{
    memset(c->slots, 0, sizeof c->slots);
    size_t mask = CLAIM_CACHE_SLOTS - 1;
    for (int i = 0; i < CLAIM_CACHE_RUNS; i++) {
        if (!c->entries[i].id[0])
            continue;
        size_t h = store_id_hash(c->entries[i].id) & mask;
        while (c->slots[h] != 0)
            h = (h + 1) & mask;
        c->slots[h] = i + 1;
    }
}

void claim_cache_put(claim_cache_t *c, const char *id, json_t *input, json_t *trigger_info)
{
    if (!input || jsonx_size_at_least(input, CLAIM_CACHE_VALUE_MAX) > CLAIM_CACHE_VALUE_MAX ||
        (trigger_info &&
         jsonx_size_at_least(trigger_info, CLAIM_CACHE_VALUE_MAX) > CLAIM_CACHE_VALUE_MAX))
        return;
    json_incref(input);
    json_incref(trigger_info);
    entry_t old = {0};
    pthread_mutex_lock(&c->mu);
    entry_t *e = &c->entries[c->next];
    if (e->id[0]) { /* the oldest goes */
        int s = slot_of(c, e->id);
        if (s >= 0)
            c->slots[s] = -1;
        old = *e;
        memset(e, 0, sizeof *e);
    }
    int at = c->next;
    c->next = (c->next + 1) % CLAIM_CACHE_RUNS;
    if (c->next == 0)
        rehash(c); /* once per lap of the ring: removed marks never fill the slots */
    int dup = slot_of(c, id);
    if (dup >= 0) /* the same run queued again (a put repeated): the newer values win */
        slot_drop(c, dup, NULL, NULL);
    memcpy(e->id, id, UUID_STR_LEN);
    e->input = input;
    e->trigger_info = trigger_info;
    size_t mask = CLAIM_CACHE_SLOTS - 1;
    size_t h = store_id_hash(id) & mask;
    while (c->slots[h] > 0)
        h = (h + 1) & mask;
    c->slots[h] = at + 1;
    pthread_mutex_unlock(&c->mu);
    json_decref(old.input); /* outside the lock: freeing a large value takes a while */
    json_decref(old.trigger_info);
}

bool claim_cache_take(claim_cache_t *c, const char *id, json_t **input, json_t **trigger_info)
{
    pthread_mutex_lock(&c->mu);
    int s = slot_of(c, id);
    if (s >= 0)
        slot_drop(c, s, input, trigger_info);
    pthread_mutex_unlock(&c->mu);
    return s >= 0;
}
