/* dict: a string-keyed hash table with separate chaining. Not locked: callers serialise. */
#ifndef ENVIROMON_DICT_H
#define ENVIROMON_DICT_H

#include <stddef.h>

typedef struct dictEntry {
    char *key;
    void *value;
    struct dictEntry *next;
} dictEntry;

typedef struct dict {
    dictEntry **buckets;
    size_t nbuckets;
    size_t count;
    void (*freeValue)(void *value); /* called on values removed or replaced; may be NULL */
} dict;

/* Returns 0, or -1 on OOM. */
int dictInit(dict *d, size_t nbuckets, void (*freeValue)(void *));
/* The value stored under key (borrowed), or NULL. */
void *dictGet(const dict *d, const char *key);
/* Stores value under key (the key is copied; the dict owns value from now on, even on failure).
 * Returns 0, or -1 on OOM. */
int dictSet(dict *d, const char *key, void *value);
/* Removes key; returns 1 when it was there. */
int dictDelete(dict *d, const char *key);
/* Removes everything. */
void dictClear(dict *d);
void dictFree(dict *d);

#endif
