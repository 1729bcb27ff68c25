/* strmap.c - see strmap.h. Deletion uses backward-shift, so there are no tombstones and
 * lookups stay short however many keys come and go (live runs churn constantly). */
#include "core/strmap.h"

#include "core/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    char *key; /* NULL = empty */
    uint64_t hash;
    void *value;
} slot_t;

struct strmap {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

strmap_t *strmap_new(void)
{
    strmap_t *m = XNEW(strmap_t);
    m->cap = 16;
    m->slots = xcalloc(m->cap, sizeof(slot_t));
    return m;
}

void strmap_free(strmap_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static size_t find(const strmap_t *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot_t *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
            return i;
    }
}

static void grow(strmap_t *m)
{
    slot_t *old = m->slots;
    size_t old_cap = m->cap;
    m->cap *= 2;
    m->slots = xcalloc(m->cap, sizeof(slot_t));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            m->slots[find(m, old[i].key, old[i].hash)] = old[i];
    free(old);
}

void *strmap_get(const strmap_t *m, const char *key)
{
    slot_t *s = &m->slots[find(m, key, hash_str(key))];
    return s->key ? s->value : NULL;
}

void *strmap_put(strmap_t *m, const char *key, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    uint64_t h = hash_str(key);
    slot_t *s = &m->slots[find(m, key, h)];
    if (s->key) {
        void *old = s->value;
        s->value = value;
        return old;
    }
    s->key = xstrdup(key);
    s->hash = h;
    s->value = value;
    m->count++;
    return NULL;
}

void *strmap_del(strmap_t *m, const char *key)
{
    size_t mask = m->cap - 1;
    size_t i = find(m, key, hash_str(key));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->count--;
    /* Shift later members of the probe run back so no gap breaks a lookup. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return value;
}

size_t strmap_count(const strmap_t *m)
{
    return m->count;
}

void strmap_each(const strmap_t *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            fn(ctx, m->slots[i].key, m->slots[i].value);
}
