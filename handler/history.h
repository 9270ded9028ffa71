/* history: the history table's format v2 (README, "History"): keys, the reading text, the fold of
 * a device's readings into its DeviceState row (minute slots, pending readings) and the rows the
 * fold yields (chunk rows, frozen hour rows), and the writer of those rows.
 *
 * Keys: PartitionKey "h" + the UTC hour (h2026120213). A chunk row holds up to HISTORY_CHUNK
 * readings of one device and one hour as text, RowKey "<devkey> <ms13> <partition> <seq20> <k>
 * <hash8>" (its first reading, and 8 hex digits of SHA-256 over its Readings); a frozen hour row
 * ("~~m <devkey>") holds the per-minute summaries of a closed hour. The hour being filled lives in
 * the device's own row (Min00..Min59, with the readings of the groups QLater marks added:
 * historySlotsView), and so do the readings not yet in a chunk (groups Q00..Q31): the device row is
 * committed with If-Match, so what it records is exact under replays and competing writers; the
 * history rows it names are written before it (chunks as inserts, InsertOrReplace when one exists:
 * historyWriteRows).
 *
 * Bounds this rests on: a device row gains at most 95 properties (60 slots, 32 pending groups,
 * HistHour, LateReadings, QLater; a row of format v2 also keeps its 32 slots P00..P31 and PendN),
 * within Table Storage's 252 a row, and a chunk's Readings (64 texts of at most HISTORY_READING_MAX
 * - 1 bytes and 63 newlines: 32,767) stays under a String's 32,768 UTF-16 units ("Understanding the
 * Table service data model", learn.microsoft.com, read 2026-12-02; table.h). Why not a row per
 * reading: Azurite 3.35.0 looks every inserted or merged entity up with findOne({PartitionKey,
 * RowKey}) (node_modules/azurite/dist/src/table/persistence/LokiTableMetadataStore.js,
 * insertTableEntity, insertOrUpdateTableEntity, insertOrMergeTableEntity), a scan of the
 * partition's rows; and on Azure an entity weighs 4 bytes + 2 a key character + per property 8
 * bytes + 2 a name character
 * + its value ("How the size of an entity is calculated in Windows Azure table storage", MSDN
 * blog archive, learn.microsoft.com, 2011-11-30, read 2026-12-02).
 *
 * Ownership: every function borrows its arguments unless its comment says otherwise. */
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
/* Readings in a chunk row: 64, since a flush (one insert per device) costs Azurite 3.35.0 about
 * three merges' work a row (tests/bench/chunkwrite.mjs); the texts of 64 still fit a String. */
#define HISTORY_CHUNK 64
#define HISTORY_V2_SLOTS 32 /* format v2 rows: pending slots P00..P31 */
/* pending groups Q00..Q31: past 32, the next batch gathers them into Q00 (a new generation) */
#define HISTORY_GROUPS 32
/* The group properties and QLater, for a $select: what historySlotsView and historyPendingWalk
 * read. */
#define HISTORY_GROUP_COLUMNS                                                                      \
    "QLater,Q00,Q01,Q02,Q03,Q04,Q05,Q06,Q07,Q08,Q09,Q10,Q11,Q12,Q13,Q14,Q15,Q16,Q17,Q18,Q19,Q20,"  \
    "Q21,Q22,Q23,Q24,Q25,Q26,Q27,Q28,Q29,Q30,Q31"
#define HISTORY_READING_MAX 512     /* bytes: one reading text with its NUL */
#define HISTORY_MINUTE_TEXT_MAX 512 /* bytes: one minute's summary text with its NUL */

/* Frozen hour rows: one per device per closed hour, in the hour's partition, RowKey
 * HISTORY_SUMMARY_PREFIX + the device part; properties DeviceId, Count (Int64) and M00..M59, one
 * per minute that has readings: "<count>|<n>,<min>,<max>,<sum>|..." for Celsius, Humidity, hPa
 * and Light (historyMinuteText). */
#define HISTORY_SUMMARY_PREFIX "~~m "

/* DeviceState properties of format v2 (hformat.md). */
#define HISTORY_PROP_HOUR "HistHour"
#define HISTORY_PROP_PENDING "PendN"
#define HISTORY_PROP_LATE "LateReadings"
/* The generation whose groups after Q00 hold readings not in the minute slots yet (Int64): the
 * Q00 a fold that cuts chunks writes is in them, the groups a batch adds after it are not, until
 * the next such fold (historyFold). Rows of earlier builds have none: all their groups are in the
 * slots. Not a mark in the group itself, so that an earlier build, run on the same table by
 * mistake, reads every group as one and appends after them instead of writing over one (the
 * summaries are then off, never the readings). */
#define HISTORY_PROP_LATER "QLater"

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

/* sum + v, saturated at +-DBL_MAX: a sum of finite readings stays finite (Light has no range,
 * and two readings of 1e308 made an inf that no minute text reads back), so counts, minimums and
 * maximums stay exact and only the mean of such values is off. */
double historySumAdd(double sum, double v);

/* Reads a summary row's minutes into *s (zeroed first). Malformed minutes are skipped. */
void historySummaryFromRow(const json_t *row, historySummary *s);

/* A number as the texts hold it: a decimal of at most 6 places when one reads back (strtod) as
 * exactly v ("20.1"), else %.17g. Returns its length, or -1 when it does not fit (32 bytes
 * always do). */
int historyFormatDouble(double v, char *out, size_t outlen);

/* strtod(s, end), faster for what the texts hold (a decimal of up to 15 digits, no exponent):
 * the same double and the same *end for every input. */
double historyParseDouble(const char *s, char **end);

/* A minute's summary text into out (HISTORY_MINUTE_TEXT_MAX bytes suffice). */
void historyMinuteText(const historyMinute *mi, char *out, size_t outlen);
/* Parses a minute's summary text. Returns 0, or -1 when malformed (*mi then undefined). */
int historyMinuteParse(const char *text, historyMinute *mi);

/* The summary RowKey of a device. Returns 0 or -1 when out is too small. */
int historySummaryKey(const char *device, char *out, size_t outlen);

/* Pending readings (README, "History"). A commit that leaves readings of a device pending writes
 * them as ONE property, a group "<gen>|<text>\n<text>..." (reading texts, as in a chunk's
 * Readings): the next of Q00..Q31 when the row's pending readings stay, or Q00 of a new
 * generation (held by no group in the row) holding what is left once chunks were cut. The pending
 * readings are Q00 and the groups after it of Q00's generation; a group of another generation is
 * stale. Rows of format v2 hold them instead as one reading a property, P00..P(PendN-1); a fold
 * moves those into Q00 and sets PendN to 0. Why groups: Azurite 3.35.0's work for each MERGE of
 * a transaction grows with the properties it carries (tests/bench/mergekeys.mjs), and a batch's
 * readings of a device cost one property instead of one each, and no counter. */
typedef int (*historyTextFn)(const char *text, size_t len, void *ctx);

/* Calls fn for each pending reading text of a DeviceState row (len bytes, not NUL-terminated;
 * a v2 slot missing is passed as ""), v2 slots first; fn returns non-zero to stop. Returns the
 * texts passed, or -1 when fn stopped the walk. */
long historyPendingWalk(const json_t *row, historyTextFn fn, void *ctx);

/* 1 when a DeviceState row holds a pending reading text (readable or not), else 0. */
int historyPendingAny(const json_t *row);

/* Deletes from a DeviceState row the pending properties no reader reads: v2 slots from PendN on,
 * and the groups from the first stale one on (a row keeps up to 31 stale groups, and 32 v2 slots
 * after its fold moved them into Q00). A row held for an answer then keeps its pending texts
 * only: fewer than HISTORY_CHUNK + HISTORY_V2_SLOTS. */
void historyPendingTrim(json_t *row);

/* The minute slots of a DeviceState row as they are once the readings of the groups QLater marks
 * are in them (as the next fold that cuts a chunk puts them, in the order they came): minute[i] the
 * unix minute slot i holds (-1: none) and m[i] its summary. What every reader of the slots reads.
 * Returns the row's HistHour (-1: none, or out of memory). */
int64_t historySlotsView(const json_t *row, int64_t minute[60], historyMinute m[60]);

/* One accepted reading. */
typedef struct historyReading {
    const char *device;    /* a valid table key (tableKeyValid) */
    const reading *r;      /* calibrated and valid */
    const char *partition; /* Event Hubs PartitionId */
    int64_t seq;
    size_t k;           /* index within its event's body */
    int64_t enqueuedMs; /* HISTORY_MIN_MS..HISTORY_MAX_MS, else the reading is not kept */
} historyReading;

/* The PartitionKey of an hour: "h" + YYYYMMDDHH (UTC) of ms. out holds HISTORY_PK_LEN bytes. */
void historyPartitionKey(int64_t ms, char *out);

/* The device part of a RowKey (the id, or "~" + 64 hex digits of SHA-256 for a long id). Returns
 * 0, or -1 when out is too small (HISTORY_DEVICE_KEY_MAX + 1 suffices). */
int historyDeviceKey(const char *device, char *out, size_t outlen);

/* The RowKey of a format v1 row (one reading): "<devkey> <ms13> <partition> <seq20> <k>".
 * Returns 0, or -1 when it does not fit in outlen. */
int historyRowKey(const historyReading *v, char *out, size_t outlen);

/* The reading text "<ms>;<partition>;<seq>;<k>;<Celsius>;<Humidity>;<hPa>;<Light>" (partition
 * percent-encoded, values historyFormatDouble or empty). Returns its length, or -1 when it does not
 * fit. */
int historyReadingText(const historyReading *v, char *out, size_t outlen);

/* A reading text read back. */
typedef struct historyParsed {
    int64_t ms;
    char partition[64]; /* decoded */
    int64_t seq;
    size_t k;
    int has[METRIC_COUNT];
    double value[METRIC_COUNT];
} historyParsed;

/* Parses a reading text (len bytes). Returns 0, or -1 when malformed. */
int historyReadingParse(const char *text, size_t len, historyParsed *p);

/* Writes s as an OData string literal ('...' with quotes doubled) into out. Returns 0, or -1
 * when out is too small. */
int historyQuote(const char *s, char *out, size_t outlen);

/* A history-table row a fold yields. */
typedef struct historyRow {
    char pk[HISTORY_PK_LEN];
    char *rk;       /* owned */
    json_t *props;  /* owned */
    int frozen;     /* a frozen hour row (else a chunk row) */
    json_t *ifSame; /* owned; a repair (historyRepair) only: the properties this process wrote
                     * before; written only while the stored row still holds them */
    /* results of historyWriteRows */
    int ok;
    int permanent; /* the store refuses it every time */
    int tableGone;
    char error[256];
} historyRow;

/* The rows of one fold, and what the fold did. */
typedef struct historyRows {
    historyRow *v;
    size_t n, cap;
    size_t added;   /* readings folded */
    size_t late;    /* of them, older than the slots' window: raw only (LateReadings) */
    size_t skipped; /* readings without a usable enqueued time: not kept */
    size_t dropped; /* pending texts in the row that could not be read (logged, not kept) */
} historyRows;

/* Frees every row and empties r (r itself is the caller's). */
void historyRowsFree(historyRows *r);

/* 1 when r holds a frozen hour row. */
int historyRowsFrozen(const historyRows *r);

/* 1 when a and b hold the same rows (keys and properties) in the same order. */
int historyRowsEqual(const historyRows *a, const historyRows *b);

/* Pure: folds the readings v[0..n) of one device (in fold order; every one newly applied) into
 * the format v2 properties of its DeviceState row (NULL for a new row): sets in props only the
 * properties that change, and appends to out the chunk rows and frozen hour rows to write before
 * props is committed. Returns 0, or -1 when memory ran out (out then partly filled: free it). */
int historyFold(const json_t *row, const char *device, const historyReading *v, size_t n,
                json_t *props, historyRows *out);

/* After a lost race: rows (written) were written for a fold on oldRow, whose commit was refused;
 * newRow is the row as committed since by another writer, and hist the rows of the fold on it.
 * A frozen hour row of written for an hour newRow has closed and hist does not write again may
 * have replaced the one the other writer made: it is made again, from newRow's slots of that
 * hour and, for minutes newRow's slots no longer hold, oldRow's (exact unless the other writer's
 * batches spanned an hour or more), and appended to hist. It replaces only this process's own row:
 * when the stored row is no longer the one written (the other writer's came after it, and is
 * exact), historyWriteRows leaves it (one read per repaired row, after a lost race only). Returns 0
 * or -1 (OOM). */
int historyRepair(const json_t *oldRow, const json_t *newRow, const char *device,
                  const historyRows *written, historyRows *hist);

/* Writes rows[0..n) into table in entity group transactions per PartitionKey (commitUpsertRows:
 * at most 100 operations and 4 MiB each): chunk rows as plain inserts, and a transaction the store
 * answers 409 (a chunk a replay wrote before) again with InsertOrReplace; frozen hour rows with
 * InsertOrReplace. Each row's ok, permanent, tableGone
 * and error say how it went (a row the store refuses is set aside and the others of its
 * transaction go again). Returns how many rows are not ok. Thread-safe. */
size_t historyWriteRows(const settings *s, const char *table, historyRow *rows, size_t n);

#endif
