/* dict: a string-keyed hash table with separate chaining, and optionally a byte budget: entries
 * set with a size are kept in use order and the least recently used are evicted past the budget.
 * Not locked: callers serialise. */
#ifndef ENVIROMON_DICT_H
#define ENVIROMON_DICT_H

#include <stddef.h>

typedef struct dictEntry {
    char *key;
    void *value;
    struct dictEntry *next;          /* in its bucket */
    struct dictEntry *older, *newer; /* use order */
    size_t bytes;                    /* as given to dictSetSized, plus the key and the entry */
} dictEntry;

typedef struct dict {
    dictEntry **buckets;
    size_t nbuckets;
    size_t count;
    void (*freeValue)(void *value); /* called on values removed or replaced; may be NULL */
    dictEntry *newest, *oldest;
    size_t bytes;          /* the sum of the entries' bytes */
    size_t maxBytes;       /* 0: no budget */
    unsigned long evicted; /* entries evicted for the budget since init */
} dict;

/* Returns 0, or -1 on OOM. */
int dictInit(dict *d, size_t nbuckets, void (*freeValue)(void *));
/* Sets the byte budget (0: none); evicts at once past it. */
void dictSetBudget(dict *d, size_t maxBytes);
/* The value stored under key (borrowed), or NULL. */
void *dictGet(const dict *d, const char *key);
/* dictGet, and marks the entry as just used (last to be evicted). */
void *dictTouch(dict *d, const char *key);
/* Stores value under key (the key is copied; the dict owns value from now on, even on failure).
 * Returns 0, or -1 on OOM. */
int dictSet(dict *d, const char *key, void *value);
/* dictSet for an entry that costs bytes of memory (its value's; the key and the entry itself are
 * added here). Entries least recently set or touched are evicted while the total is over the
 * budget; an entry over the whole budget on its own is not kept. Returns 0 when it was stored,
 * 1 when it was not kept (value freed), -1 on OOM (value freed). */
int dictSetSized(dict *d, const char *key, void *value, size_t bytes);
/* Removes key; returns 1 when it was there. */
int dictDelete(dict *d, const char *key);
/* Removes everything. */
void dictClear(dict *d);
void dictFree(dict *d);

/* Visits every entry, oldest first: fn gets the key and value (both borrowed; fn may take the
 * value by returning 1, and the entry is then removed without freeing it). */
typedef int (*dictVisitFn)(const char *key, void *value, void *ctx);
void dictTakeEach(dict *d, dictVisitFn fn, void *ctx);

#endif
