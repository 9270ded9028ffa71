/* devicestate: folds a device's readings into its DeviceState row, and commits the row with
 * optimistic concurrency (If-Match etags, jittered exponential backoff), exactly once per event. */
#ifndef ENVIROMON_DEVICESTATE_H
#define ENVIROMON_DEVICESTATE_H

#include "settings.h"
#include "telemetry.h"

#include <jansson.h>
#include <stdint.h>

/* One reading of a batch for one device, valid or rejected. */
typedef struct deviceEntry {
    const reading *r; /* calibrated and valid; NULL for a rejected reading */
    int hasSeq;
    int64_t seq;
    int64_t enqueuedMs; /* 0 when unknown */
} deviceEntry;

/* Everything a batch does to one device. */
typedef struct deviceWork {
    const char *deviceId;  /* borrowed */
    const char *partition; /* Event Hubs partition of the batch, borrowed */
    deviceEntry *entries;  /* owned by the caller */
    size_t count;
    /* results */
    int ok;          /* committed, or nothing to commit */
    int changed;     /* the row was written */
    size_t applied;  /* entries newly applied */
    size_t replayed; /* entries skipped: already applied */
    int writes;      /* table round trips spent */
    json_t *state;   /* the committed row as a camelCase device object (owned), or NULL */
    char error[256];
} deviceWork;

/* Once at start. Returns 0 or -1. */
int devicestateInit(const settings *s);
void devicestateShutdown(void);

/* Commits w's entries to the device's row: one optimistic-concurrency round (a merge with the
 * etag this process last saw, or an insert for a device it has not seen; on 412/409 a jittered
 * wait, a re-read and a re-apply), at most BackoffAttempts writes. Sets w's results. Returns 0,
 * or -1 when the row could not be committed (w->error says why). Thread-safe. */
int devicestateCommit(deviceWork *w);

/* Pure: the properties to merge into row (NULL for a new row) for these entries, or NULL when
 * every entry was applied already. *applied and *replayed count the entries. nowMs stands in for
 * unknown enqueued times. Caller decrefs the result. */
json_t *devicestateFold(const json_t *row, const char *partition, const char *defaultGeo,
                        const deviceEntry *e, size_t n, int64_t nowMs, size_t *applied,
                        size_t *replayed);

/* The property that remembers the last sequence number applied from a partition. */
void devicestateSeqProperty(const char *partition, char *out, size_t outlen);

/* A DeviceState row as the dashboard's camelCase device object. Caller decrefs. */
json_t *devicestateToJson(const json_t *row);

/* The wait before write attempt number attempt (0-based) after a conflict: uniformly random in
 * [base, min(cap, base * 2^attempt)] ms. rnd is the caller's random state. */
int devicestateBackoffMs(int base, int cap, int attempt, uint64_t *rnd);

/* The row cache now: rows held, their estimated bytes (at most RowCacheBytes), rows evicted. */
void devicestateCacheStats(size_t *entries, size_t *bytes, unsigned long *evicted);

/* Forgets the etag cache (tests, and after a table error that leaves it unknown). */
void devicestateForget(const char *deviceId);

#endif
