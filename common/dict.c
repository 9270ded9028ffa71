/* dict: a string-keyed hash table with separate chaining, and optionally a byte budget: entries
 * set with a size are kept in use order and the least recently used are evicted past the budget.
 * Not locked: callers serialise. */
#include "dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dictEntry {
    char *key;
    void *value;
    struct dictEntry *next;          /* in its bucket */
    struct dictEntry *older, *newer; /* use order */
    size_t bytes;                    /* as given to dictSetSized, plus the key and the entry */
};

static size_t hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

int dictInit(dict *d, size_t nbuckets, void (*freeValue)(void *)) {
    memset(d, 0, sizeof(*d));
    d->buckets = calloc(nbuckets, sizeof(*d->buckets));
    d->nbuckets = nbuckets;
    d->freeValue = freeValue;
    return d->buckets ? 0 : -1;
}

static void unlinkOrder(dict *d, dictEntry *e) {
    if (e->older)
        e->older->newer = e->newer;
    else if (d->oldest == e)
        d->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else if (d->newest == e)
        d->newest = e->older;
    e->older = e->newer = NULL;
}

static void linkNewest(dict *d, dictEntry *e) {
    e->older = d->newest;
    e->newer = NULL;
    if (d->newest) d->newest->newer = e;
    d->newest = e;
    if (!d->oldest) d->oldest = e;
}

static dictEntry *find(const dict *d, const char *key) {
    for (dictEntry *e = d->buckets[hash(key) % d->nbuckets]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e;
    return NULL;
}

/* Unlinks e from everything and frees it (its value too when free_value). */
static void removeEntry(dict *d, dictEntry *e, int free_value) {
    for (dictEntry **p = &d->buckets[hash(e->key) % d->nbuckets]; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            break;
        }
    }
    unlinkOrder(d, e);
    d->bytes -= e->bytes;
    d->count--;
    if (free_value && d->freeValue) d->freeValue(e->value);
    free(e->key);
    free(e);
}

static void evict(dict *d) {
    while (d->maxBytes && d->bytes > d->maxBytes && d->oldest) {
        removeEntry(d, d->oldest, 1);
        d->evicted++;
    }
}

void dictSetBudget(dict *d, size_t maxBytes) {
    d->maxBytes = maxBytes;
    evict(d);
}

void *dictGet(const dict *d, const char *key) {
    dictEntry *e = find(d, key);
    return e ? e->value : NULL;
}

void *dictTouch(dict *d, const char *key) {
    dictEntry *e = find(d, key);
    if (!e) return NULL;
    unlinkOrder(d, e);
    linkNewest(d, e);
    return e->value;
}

int dictSetSized(dict *d, const char *key, void *value, size_t bytes) {
    size_t klen = strlen(key);
    bytes = dictEntryBytes(key, bytes);
    if (d->maxBytes && bytes > d->maxBytes) {
        /* Too large to keep at all: whatever was stored under key is stale now too. */
        dictDelete(d, key);
        if (d->freeValue) d->freeValue(value);
        return 1;
    }
    dictEntry *e = find(d, key);
    if (e) {
        if (d->freeValue && e->value != value) d->freeValue(e->value);
        e->value = value;
        d->bytes = d->bytes - e->bytes + bytes;
        e->bytes = bytes;
        unlinkOrder(d, e);
        linkNewest(d, e);
        evict(d);
        return 0;
    }
    e = calloc(1, sizeof(*e));
    char *k = malloc(klen + 1);
    if (!e || !k) {
        free(e);
        free(k);
        if (d->freeValue) d->freeValue(value);
        return -1;
    }
    memcpy(k, key, klen + 1);
    dictEntry **slot = &d->buckets[hash(key) % d->nbuckets];
    e->key = k;
    e->value = value;
    e->bytes = bytes;
    e->next = *slot;
    *slot = e;
    linkNewest(d, e);
    d->count++;
    d->bytes += bytes;
    evict(d);
    return 0;
}

int dictSet(dict *d, const char *key, void *value) {
    int rc = dictSetSized(d, key, value, 0);
    return rc < 0 ? -1 : 0;
}

int dictDelete(dict *d, const char *key) {
    dictEntry *e = find(d, key);
    if (!e) return 0;
    removeEntry(d, e, 1);
    return 1;
}

void dictClear(dict *d) {
    while (d->oldest)
        removeEntry(d, d->oldest, 1);
}

void dictFree(dict *d) {
    if (!d->buckets) return;
    dictClear(d);
    free(d->buckets);
    d->buckets = NULL;
}

void dictTakeEach(dict *d, dictVisitFn fn, void *ctx) {
    dictEntry *e = d->oldest;
    while (e) {
        dictEntry *next = e->newer;
        if (fn(e->key, e->value, ctx)) removeEntry(d, e, 0);
        e = next;
    }
}

int dictReady(const dict *d) { return d->buckets != NULL; }

size_t dictSize(const dict *d) { return d->count; }

size_t dictBytes(const dict *d) { return d->bytes; }

unsigned long dictEvicted(const dict *d) { return d->evicted; }

void dictIterInit(dictIter *it, const dict *d) { it->next = d->oldest; }

int dictIterNext(dictIter *it, const char **key, void **value) {
    const dictEntry *e = it->next;
    if (!e) return 0;
    if (key) *key = e->key;
    if (value) *value = e->value;
    it->next = e->newer;
    return 1;
}

size_t dictEntryBytes(const char *key, size_t bytes) {
    return bytes + strlen(key) + 1 + sizeof(dictEntry);
}
