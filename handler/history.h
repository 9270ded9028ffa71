/* history: every accepted reading kept as one row of the history table, written in entity group
 * transactions; the keys, the writer and the reader's filters.
 *
 * Keys (README, "History"): PartitionKey "h" + the UTC hour of the enqueued time (h2026120213);
 * RowKey "<device> <ms> <partition> <sequence> <index>": the device part (the id, or "~" and a
 * SHA-256 digest for an id over HISTORY_DEVICE_KEY_MAX bytes), the enqueued time in milliseconds
 * since 1970 (13 digits), the Event Hubs partition, the sequence number (20 digits) and the
 * reading's index within its event. A reading has one key whatever the delivery, so a replay
 * names the rows already written; one hour of the whole fleet shares a partition, so a batch of
 * 100 readings is one transaction (two across an hour boundary); one device over a time range is
 * a RowKey range in each hour's partition.
 *
 * Ownership: every function borrows its arguments. */
#ifndef ENVIROMON_HISTORY_H
#define ENVIROMON_HISTORY_H

#include "settings.h"
#include "telemetry.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HISTORY_PK_LEN 12              /* "h" + YYYYMMDDHH + NUL */
#define HISTORY_DEVICE_KEY_MAX 256     /* bytes of device id kept verbatim in a RowKey */
#define HISTORY_RK_MAX 640             /* bytes: a RowKey as built here */
#define HISTORY_MIN_MS 946684800000LL  /* 2000-01-01: earlier enqueued times are not kept */
#define HISTORY_MAX_MS 9999999999999LL /* 13 digits */

/* Summary rows: one per device per hour, in the hour's partition, RowKey HISTORY_SUMMARY_PREFIX +
 * the device part; properties DeviceId, Count (Int64) and M00..M59, one per minute that has
 * readings: "<count>|<n>,<min>,<max>,<sum>|..." for Celsius, Humidity, hPa and Light. Written in
 * the same transaction as the readings they count, so a reading is in its summary exactly when
 * its row exists. */
#define HISTORY_SUMMARY_PREFIX "~~m "

typedef struct historyAgg {
    int64_t n;
    double min, max, sum;
} historyAgg;

typedef struct historyMinute {
    int64_t count; /* readings in the minute */
    historyAgg m[METRIC_COUNT];
} historyMinute;

typedef struct historySummary {
    int64_t count;
    historyMinute minute[60];
} historySummary;

/* Reads a summary row's minutes into *s (zeroed first). Malformed minutes are skipped. */
void historySummaryFromRow(const json_t *row, historySummary *s);

/* The summary RowKey of a device. Returns 0 or -1 when out is too small. */
int historySummaryKey(const char *device, char *out, size_t outlen);

/* One accepted reading. */
typedef struct historyReading {
    const char *device;    /* a valid table key (tableKeyValid) */
    const reading *r;      /* calibrated and valid */
    const char *partition; /* Event Hubs PartitionId */
    int64_t seq;
    size_t k;           /* index within its event's body */
    int64_t enqueuedMs; /* HISTORY_MIN_MS..HISTORY_MAX_MS, else the reading is not kept */
} historyReading;

typedef struct historyStats {
    size_t written;      /* rows inserted */
    size_t existed;      /* rows already there (a replay): left untouched */
    size_t skipped;      /* readings without a usable enqueued time */
    size_t transactions; /* $batch requests sent */
    size_t lookups;      /* queries made to find rows a replay had written */
    size_t summaryReads; /* summary rows read (not in this process's cache, or changed) */
    int tableGone;       /* the history table does not exist (deleted while running) */
    int permanent;       /* the failure will recur on every delivery: a row the writer or the
                            store refuses (a 4xx for its value), a key too long */
} historyStats;

/* The PartitionKey of an hour: "h" + YYYYMMDDHH (UTC) of ms. out holds HISTORY_PK_LEN bytes. */
void historyPartitionKey(int64_t ms, char *out);

/* The device part of a RowKey (the id, or "~" + 64 hex digits of SHA-256 for a long id). Returns
 * 0, or -1 when out is too small (HISTORY_DEVICE_KEY_MAX + 1 suffices). */
int historyDeviceKey(const char *device, char *out, size_t outlen);

/* The RowKey of a reading. Returns 0, or -1 when it does not fit in outlen. */
int historyRowKey(const historyReading *v, char *out, size_t outlen);

/* Writes the readings' rows: grouped by hour, up to 100 operations a transaction: the readings'
 * inserts and, for each device among them, its hour's summary row (inserted, or merged with the
 * etag this process last wrote or read). A transaction refused because a reading's row exists (a
 * replay) finds which rows exist, leaves them as they are and writes the rest; one refused for a
 * summary (another writer, or a cache that does not know the row) reads it and goes again. Returns
 * 0, or -1 with err when some rows are not known to be written (the caller answers 500 so that the
 * host delivers the batch again). Thread-safe. */
int historyWrite(const storageAccount *a, const char *table, const historyReading *v, size_t n,
                 historyStats *st, char *err, size_t errlen);

/* Writes s as an OData string literal ('...' with quotes doubled) into out. Returns 0, or -1
 * when out is too small. */
int historyQuote(const char *s, char *out, size_t outlen);

/* Forgets the summary cache (tests). */
void historyForget(void);

#endif
