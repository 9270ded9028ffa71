/* historyread: the readers' side of history format v2 (README, "History"): the reading texts of
 * chunk rows and of a DeviceState row's pending slots, the minute slots Min00..Min59 of a
 * DeviceState row, and a group of one device's readings of one hour, de-duplicated by
 * (partition, sequence number, index) and put in time order. Pure: no network.
 *
 * A reading is in exactly one hour (its enqueued time's), and every copy of it (an orphan chunk
 * left by a device commit that failed, a chunk and the pending slot it came from, a format v1
 * row) lives in that hour's partition or in the device row's pending slots, which hold one hour.
 * So one device's readings of one hour, gathered and sorted, are exactly de-duplicated: no state
 * carries over from one hour to the next, and memory stays at one group (at most
 * HISTORYREAD_GROUP_MAX readings) whatever the range.
 *
 * Ownership: every function borrows its arguments; a group owns its readings. */
#ifndef ENVIROMON_HISTORYREAD_H
#define ENVIROMON_HISTORYREAD_H

#include "buf.h"
#include "history.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HISTORYREAD_PARTITION_MAX 64 /* bytes of a decoded partition id (Event Hubs: "0".."31") */
#define HISTORYREAD_TEXT_MAX 1024    /* bytes of one reading text */
#define HISTORYREAD_GROUP_MAX 16384  /* readings in one group (one device, one hour) */

/* One stored reading. */
typedef struct historyreadReading {
    int64_t ms;  /* enqueued time, ms since 1970 */
    int64_t seq; /* Event Hubs sequence number */
    int64_t k;   /* index within its event's body */
    unsigned char has[METRIC_COUNT];
    double value[METRIC_COUNT]; /* Celsius, Humidity, hPa, Light */
    char partition[HISTORYREAD_PARTITION_MAX + 1];
} historyreadReading;

/* Parses one reading text (len bytes, no NUL needed) with the writer's parser
 * (historyReadingParse: "<ms>;<partition>;<seq>;<k>;<Celsius>;<Humidity>;<hPa>;<Light>"), and
 * refuses an ms past HISTORY_MAX_MS. Returns 0, or -1 (out unspecified) when malformed. */
int historyreadParse(const char *text, size_t len, historyreadReading *out);

/* Called per reading; return non-zero to stop. r is borrowed for the call. */
typedef int (*historyreadFn)(const historyreadReading *r, void *ctx);

/* Calls fn for each reading of a chunk row's Readings text (reading texts joined by "\n").
 * Malformed lines are skipped and counted in *bad (may be NULL). Returns the readings passed to
 * fn, or -1 when fn stopped the walk. */
long historyreadChunk(const char *readings, historyreadFn fn, void *ctx, size_t *bad);

/* Calls fn for each pending reading of a DeviceState row (historyPendingWalk: v2 slots
 * P00..P(PendN-1), then the current groups Q00..); as historyreadChunk. */
long historyreadPending(const json_t *row, historyreadFn fn, void *ctx, size_t *bad);

/* A format v1 row (one reading: Time, Celsius..Light, Partition, SequenceNumber, k the last
 * field of its RowKey) into *out. Returns 0, or -1 when it is not one. */
int historyreadFromV1(const json_t *row, historyreadReading *out);

/* The unix hour (ms / 3600000) of the newest reading folded into a DeviceState row's slots
 * (HistHour), or -1 when the row has none. */
int64_t historyreadHistHour(const json_t *row);

/* The minute slots of a DeviceState row, with the readings of the groups QLater marks added
 * (historySlotsView), for the 60 unix minutes first..first+59: out[i] is minute first+i (zeroed
 * when no slot holds that minute or the slot is malformed). Returns how many minutes had
 * readings. */
int historyreadSlots(const json_t *row, int64_t first, historyMinute out[60]);

/* The per-minute means of a DeviceState row's last 60 minutes (unix minutes nowMinute-59 ..
 * nowMinute, from its slots), appended to out as compact JSON:
 *   {"from":"<ISO time of minute nowMinute-59>","minute":[i,...],"temperature":[mean,...],
 *    "humidity":[...],"pressure":[...],"light":[...]}
 * minute holds the offsets (0..59) of the minutes with readings, in order; each metric's array
 * has one mean per listed minute (null when no reading of that minute had the metric), and a
 * metric with no value in the hour is left out. Means are rounded to two decimals (what the
 * dashboard shows; %.6g past 1e9). Appends nothing
 * when no minute has readings. Returns the minutes written, or -1 when out is full (out freed, as
 * bufAppend). */
int historyreadLastHour(const json_t *row, int64_t nowMinute, buf *out)
    __attribute__((warn_unused_result));

/* A mean as historyreadLastHour writes it into out (outlen >= 48): two decimals without trailing
 * zeros ("21.06", "1012", "-0.5", "0" for -0.004), %.6g past 1e9. Returns its length. */
size_t historyreadMeanText(double v, char *out, size_t outlen);

/* One device's readings of one hour, gathered then settled. */
typedef struct historyreadGroup {
    historyreadReading *v;
    size_t n, cap;
    size_t dropped; /* duplicates dropped by settles so far */
} historyreadGroup;

void historyreadGroupInit(historyreadGroup *g);
/* Adds a copy of r. Returns 0, or -1 when the group holds HISTORYREAD_GROUP_MAX readings or
 * memory ran out (the caller settles and emits what it holds, then adds again). */
int historyreadGroupAdd(historyreadGroup *g, const historyreadReading *r)
    __attribute__((warn_unused_result));
/* Sorts by (ms, partition, seq, k) and drops the copies of a reading (same partition, seq, k).
 * Returns the readings left (g->v[0..n)). */
size_t historyreadGroupSettle(historyreadGroup *g);
/* Empties the group, keeping its memory for the next. */
void historyreadGroupClear(historyreadGroup *g);
void historyreadGroupFree(historyreadGroup *g);

#endif
