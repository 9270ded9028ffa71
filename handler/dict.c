/* dict: a string-keyed hash table with separate chaining. Not locked: callers serialise. */
#include "dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

int dictInit(dict *d, size_t nbuckets, void (*freeValue)(void *)) {
    d->buckets = calloc(nbuckets, sizeof(*d->buckets));
    d->nbuckets = nbuckets;
    d->count = 0;
    d->freeValue = freeValue;
    return d->buckets ? 0 : -1;
}

void *dictGet(const dict *d, const char *key) {
    for (dictEntry *e = d->buckets[hash(key) % d->nbuckets]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e->value;
    return NULL;
}

int dictSet(dict *d, const char *key, void *value) {
    dictEntry **slot = &d->buckets[hash(key) % d->nbuckets];
    for (dictEntry *e = *slot; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            if (d->freeValue && e->value != value) d->freeValue(e->value);
            e->value = value;
            return 0;
        }
    }
    dictEntry *e = malloc(sizeof(*e));
    char *k = strdup(key);
    if (!e || !k) {
        free(e);
        free(k);
        if (d->freeValue) d->freeValue(value);
        return -1;
    }
    e->key = k;
    e->value = value;
    e->next = *slot;
    *slot = e;
    d->count++;
    return 0;
}

int dictDelete(dict *d, const char *key) {
    for (dictEntry **p = &d->buckets[hash(key) % d->nbuckets]; *p; p = &(*p)->next) {
        dictEntry *e = *p;
        if (strcmp(e->key, key) == 0) {
            *p = e->next;
            if (d->freeValue) d->freeValue(e->value);
            free(e->key);
            free(e);
            d->count--;
            return 1;
        }
    }
    return 0;
}

void dictClear(dict *d) {
    for (size_t i = 0; i < d->nbuckets; i++) {
        dictEntry *e = d->buckets[i];
        while (e) {
            dictEntry *next = e->next;
            if (d->freeValue) d->freeValue(e->value);
            free(e->key);
            free(e);
            e = next;
        }
        d->buckets[i] = NULL;
    }
    d->count = 0;
}

void dictFree(dict *d) {
    if (!d->buckets) return;
    dictClear(d);
    free(d->buckets);
    d->buckets = NULL;
}
