/* devicestate: folds a device's readings into its DeviceState row, and commits the row with
 * optimistic concurrency (If-Match etags, jittered exponential backoff), exactly once per event. */
#ifndef ENVIROMON_DEVICESTATE_H
#define ENVIROMON_DEVICESTATE_H

#include "history.h"
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
    size_t k;           /* index of the reading within its event's body */
} deviceEntry;

/* Where a batch's events come from. Sequence numbers grow within one partition of one Event Hub
 * only; after an IoT Hub failover, a re-created hub or a move to another Event Hub they restart
 * low, so a watermark names all three. All borrowed; NULL when the host did not say. */
typedef struct devicestateSource {
    const char *eventHubNamespace; /* PartitionContext.FullyQualifiedNamespace */
    const char *eventHubName;      /* PartitionContext.EventHubName */
    const char *partition;         /* PartitionContext.PartitionId */
} devicestateSource;

/* Everything a batch does to one device. */
typedef struct deviceWork {
    const char *deviceId;          /* borrowed */
    const char *partition;         /* Event Hubs partition of the batch, borrowed */
    const char *eventHubNamespace; /* its Event Hub (see devicestateSource), borrowed or NULL */
    const char *eventHubName;
    deviceEntry *entries; /* owned by the caller */
    size_t count;
    /* results */
    int ok;             /* committed, or nothing to commit */
    int changed;        /* the row was written */
    size_t applied;     /* entries newly applied */
    size_t replayed;    /* entries skipped: already applied (a decision storage confirmed) */
    int writes;         /* table round trips spent */
    json_t *state;      /* the committed row as a camelCase device object (owned), or NULL */
    int permanent;      /* not committed because the store refuses this row every time (a 400 such
                           as PropertyValueTooLarge, or a key refused before sending) */
    int tableGone;      /* not committed because the table does not exist (deleted while running) */
    size_t historyRows; /* history rows written (chunks and frozen hours; HistoryEnabled) */
    size_t historyLate; /* readings committed as late (raw only, LateReadings) */
    char error[256];
} deviceWork;

/* Once at start. Returns 0 or -1. */
int devicestateInit(const settings *s);
void devicestateShutdown(void);

/* Commits w's entries to the device's row: one optimistic-concurrency round (a merge with the
 * etag this process last saw, or an insert for a device it has not seen; on 412/409 a jittered
 * wait, a re-read and a re-apply), at most BackoffAttempts writes. Events are skipped as replays
 * only on what storage holds: when the row this process remembers says "already applied", the
 * row is read once to confirm. Sets w's results. Returns 0, or -1 when the row could not be
 * committed (w->error says why; w->permanent and w->tableGone say what kind). Thread-safe. */
int devicestateCommit(deviceWork *w);

/* What a fold decided. */
typedef struct devicestateFoldResult {
    size_t applied;      /* entries newly applied */
    size_t replayed;     /* entries at or below the watermark: skipped */
    int64_t replayFirst; /* the lowest and highest sequence number skipped */
    int64_t replayLast;
    int64_t watermark; /* the watermark that skipped them, -1 when none */
    int legacy;        /* that watermark was a SeqP<partition> of an earlier version */
    size_t dropped;    /* least recently written watermarks dropped to stay bounded */
} devicestateFoldResult;

/* Pure: the properties to merge into row (NULL for a new row) for these entries of one source,
 * or NULL when every entry was applied already. nowMs stands in for unknown enqueued times.
 * Fills *res. Caller decrefs the result.
 *
 * Watermarks live in one string property, DEVICESTATE_WATERMARKS: space-separated
 * "<hub>/<partition>=<sequence number>" entries, the most recently written first, where <hub> is
 * devicestateHubId and <partition> the PartitionId percent-encoded. One property whatever the
 * number of hubs, so the row's limit of 252 properties besides PartitionKey, RowKey and
 * Timestamp is never near ("Understanding the Table service data model", learn.microsoft.com,
 * read 2026-12-02, which also caps a string at 64 KiB); one property also because Merge Entity
 * never removes a property, only Update Entity (a Replace) does ("Merge Entity" and
 * Azure.Data.Tables TableUpdateMode, learn.microsoft.com, read 2026-12-02), and a Replace would
 * rewrite every property with a type that an odata=nometadata read does not return. The text is
 * kept under DEVICESTATE_WATERMARKS_MAX characters (16 KiB of UTF-16) by dropping the least
 * recently written entries. A
 * SeqP<partition> property written by an earlier version is honoured only as
 * devicestate.c explains (legacy_applies) and set to -1 once the source's own entry exists. */
json_t *devicestateFold(const json_t *row, const devicestateSource *src, const char *defaultGeo,
                        const deviceEntry *e, size_t n, int64_t nowMs, devicestateFoldResult *res);

/* devicestateFold with history (HistoryEnabled): the applied valid entries are also folded into
 * the row's format v2 properties (historyFold; deviceId names the device), and the history rows
 * to write before the row are appended to *hist (caller frees with historyRowsFree). hist NULL:
 * devicestateFold. Returns NULL also when memory ran out for the history part (res->applied is
 * then non-zero: the caller treats it as a failure). */
json_t *devicestateFoldHistory(const json_t *row, const devicestateSource *src,
                               const char *defaultGeo, const char *deviceId, const deviceEntry *e,
                               size_t n, int64_t nowMs, historyRows *hist,
                               devicestateFoldResult *res);

#define DEVICESTATE_WATERMARKS "Watermarks"
#define DEVICESTATE_WATERMARKS_MAX 8192
#define DEVICESTATE_HUB_ID_LEN 16

/* The hub part of a watermark key: 16 lowercase hex digits (64 bits) of SHA-256 over the
 * lowercased namespace and Event Hub name (as the Event Hubs checkpoint store compares them).
 * out holds at least DEVICESTATE_HUB_ID_LEN + 1 bytes. */
void devicestateHubId(const devicestateSource *src, char *out);

/* The watermark key of a source, "<hub>/<partition percent-encoded>". Returns 0, or -1 when out
 * is too small (256 bytes always suffice for a PartitionId of up to 63 bytes). */
int devicestateWatermarkKey(const devicestateSource *src, char *out, size_t outlen);

/* The property an earlier version used for a partition's watermark, for any hub
 * ("SeqP" + the id with every character but letters and digits made '_'). */
void devicestateSeqProperty(const char *partition, char *out, size_t outlen);

/* A DeviceState row as the dashboard's camelCase device object. Caller decrefs. */
json_t *devicestateToJson(const json_t *row);

/* The wait before write attempt number attempt (0-based) after a conflict: uniformly random in
 * [base, min(cap, base * 2^attempt)] ms. rnd is the caller's random state. */
int devicestateBackoffMs(int base, int cap, int attempt, uint64_t *rnd);

/* The row cache now: rows held, their estimated bytes (at most RowCacheBytes), rows evicted. */
void devicestateCacheStats(size_t *entries, size_t *bytes, unsigned long *evicted);

/* The etag cache, for the transaction committer (commit.c). Recall takes the row this process
 * last wrote or read for the device out of the cache (caller owns *row: it gives it back with
 * Remember, or decrefs it) and its etag; returns 1 when the device is known, 0 when not (also
 * while another commit of the same device holds it: that one reads the row). Remember keeps row
 * (stolen) and etag as the device's; an empty etag forgets the device instead. Forget drops the
 * device (after an error that leaves its row unknown). Thread-safe. */
int devicestateRecall(const char *id, json_t **row, char *etag, size_t etaglen, size_t *bytes);
void devicestateRemember(const char *id, json_t *row, const char *etag, size_t bytes);
/* The cache's estimate of a row's bytes travels with it (Recall's *bytes, Remember's bytes; 0:
 * not known, then Remember walks the row): a row with history holds about a hundred properties,
 * and walking them on every Remember showed in the handler's profile with history on
 * (perf, W1). Update merges props into row (json_object_update) and returns the estimate after it
 * from bytes, the one before it (0 stays 0). */
size_t devicestateUpdate(json_t *row, json_t *props, size_t bytes);
void devicestateForget(const char *deviceId);

/* Logs what a committed fold skipped as replays and the watermarks it dropped, if any. */
void devicestateLogFold(const deviceWork *w, const devicestateFoldResult *f);

#endif
