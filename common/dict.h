/* dict: a string-keyed hash table with separate chaining, and optionally a byte budget: entries
 * set with a size are kept in use order and the least recently used are evicted past the budget.
 * Not locked: callers serialise. */
#ifndef ENVIROMON_DICT_H
#define ENVIROMON_DICT_H

#include <stddef.h>

typedef struct dictEntry dictEntry; /* private to dict.c */

/* Private: read and change it only through the functions below (an all-zero dict is one not
 * initialised yet). */
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
int dictInit(dict *d, size_t nbuckets, void (*freeValue)(void *))
    __attribute__((warn_unused_result));
/* 1 once dictInit has succeeded (and until dictFree), else 0. */
int dictReady(const dict *d);
/* The number of entries. */
size_t dictSize(const dict *d);
/* The bytes the entries count against the budget (see dictEntryBytes). */
size_t dictBytes(const dict *d);
/* Entries evicted for the budget since dictInit. */
unsigned long dictEvicted(const dict *d);
/* Sets the byte budget (0: none); evicts at once past it. */
void dictSetBudget(dict *d, size_t maxBytes);
/* The value stored under key (borrowed), or NULL. */
void *dictGet(const dict *d, const char *key);
/* dictGet, and marks the entry as just used (last to be evicted). */
void *dictTouch(dict *d, const char *key);
/* Stores value under key (the key is copied; the dict owns value from now on, even on failure).
 * Returns 0, or -1 on OOM. */
int dictSet(dict *d, const char *key, void *value) __attribute__((warn_unused_result));
/* dictSet for an entry that costs bytes of memory (its value's; the key and the entry itself are
 * added here). Entries least recently set or touched are evicted while the total is over the
 * budget; an entry over the whole budget on its own is not kept. Returns 0 when it was stored,
 * 1 when it was not kept (value freed), -1 on OOM (value freed). */
int dictSetSized(dict *d, const char *key, void *value, size_t bytes)
    __attribute__((warn_unused_result));
/* What an entry of key whose value costs bytes counts against the budget. */
size_t dictEntryBytes(const char *key, size_t bytes);
/* Removes key; returns 1 when it was there. */
int dictDelete(dict *d, const char *key);
/* Removes everything. */
void dictClear(dict *d);
void dictFree(dict *d);

/* Visits every entry, oldest first: fn gets the key and value (both borrowed; fn may take the
 * value by returning 1, and the entry is then removed without freeing it). */
typedef int (*dictVisitFn)(const char *key, void *value, void *ctx);
void dictTakeEach(dict *d, dictVisitFn fn, void *ctx);

/* Walks the entries, oldest first, without changing the use order. The dict must not change
 * during the walk (dictGet is fine; dictTouch, set, delete or clear are not). */
typedef struct dictIter {
    const dictEntry *next;
} dictIter;
void dictIterInit(dictIter *it, const dict *d);
/* The next entry's key and value (both borrowed; either pointer may be NULL). Returns 1, or 0
 * when the walk is over. */
int dictIterNext(dictIter *it, const char **key, void **value);

#endif
