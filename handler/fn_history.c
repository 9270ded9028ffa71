/* fn_history: the gethistory function: one device or all over a time range, raw readings or
 * per-minute / per-hour count, min, max and mean, as JSON or CSV, streamed page by page.
 *
 * Storage format v2 (README, "History"; historyread.h): raw readings are in chunk rows (up to 32
 * reading texts) and format v1 rows (one reading) of each hour's partition, and in the device
 * row's pending slots; they are gathered one device and one hour at a time, de-duplicated by
 * (partition, sequence number, index) and sent in time order. Summaries: the hours before a
 * device's HistHour from its frozen hour rows, the hour HistHour from its row's minute slots with
 * the readings of its groups QLater marks (historySlotsView). */
#include "functions.h"
#include "buf.h"
#include "history.h"
#include "historyread.h"
#include "log.h"
#include "table.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HOUR_MS ((int64_t)3600000)
#define DAY_MS (24 * HOUR_MS)
/* The widest range each resolution answers (a wider one is a 400 that says which to use). */
#define RAW_ONE_MAX_MS DAY_MS         /* one device, raw: a day (43,200 rows at one per 2 s) */
#define RAW_ALL_MAX_MS HOUR_MS        /* every device, raw: an hour */
#define MINUTE_MAX_MS (7 * DAY_MS)    /* per minute: a week */
#define HOUR_RES_MAX_MS (92 * DAY_MS) /* per hour: a quarter */
#define HELD_MAX (64 << 10)           /* bytes held before the answer is streamed */
#define COLUMNS "RowKey,DeviceId,Time,Celsius,Humidity,hPa,Light,Partition,SequenceNumber,Readings"
/* The device rows' columns each reader needs (historyread.h). */
#define SLOT_COLUMNS                                                                               \
    "RowKey,HistHour,Min00,Min01,Min02,Min03,Min04,Min05,Min06,Min07,Min08,Min09,Min10,Min11,"     \
    "Min12,Min13,Min14,Min15,Min16,Min17,Min18,Min19,Min20,Min21,Min22,Min23,Min24,Min25,Min26,"   \
    "Min27,Min28,Min29,Min30,Min31,Min32,Min33,Min34,Min35,Min36,Min37,Min38,Min39,Min40,Min41,"   \
    "Min42,Min43,Min44,Min45,Min46,Min47,Min48,Min49,Min50,Min51,Min52,Min53,Min54,Min55,Min56,"   \
    "Min57,Min58,Min59," HISTORY_GROUP_COLUMNS
#define PENDING_COLUMNS                                                                            \
    "RowKey,PendN,P00,P01,P02,P03,P04,P05,P06,P07,P08,P09,P10,P11,P12,P13,P14,P15,P16,P17,P18,"    \
    "P19,P20,P21,P22,P23,P24,P25,P26,P27,P28,P29,P30,P31," HISTORY_GROUP_COLUMNS
/* Device rows held for one answer (those with pending readings, or slots in the range: at most
 * about 4 KiB, and 6 KiB of slots more; a row's pending texts, fewer than 64, once
 * historyPendingTrim has dropped its stale groups and v2 slots, which took as much again). */
#define DEVICES_MAX 10000
/* A device id as its CSV field or JSON text (every byte may take six: \u0001). */
#define DEV_TEXT_MAX (6 * TABLE_KEY_MAX + 32)

static const char *const metricJson[METRIC_COUNT] = {"celsius", "humidity", "hPa", "light"};

enum { RES_RAW, RES_MINUTE, RES_HOUR };

typedef struct agg {
    char device[TABLE_KEY_MAX + 1];
    int64_t bucket; /* start, ms; -1 when empty */
    int64_t count;
    int64_t n[METRIC_COUNT];
    double min[METRIC_COUNT], max[METRIC_COUNT], sum[METRIC_COUNT];
} agg;

/* A device row the answer needs: its pending readings (raw) or its slots (summaries). */
typedef struct devRow {
    const char *id; /* its RowKey, borrowed from row */
    json_t *row;    /* owned */
    int64_t histHour;
    int64_t pendingDone; /* the hour whose pending readings were sent, -1 */
} devRow;

typedef struct histOut {
    const serverRequest *req;
    serverResponse *res;
    int csv, resolution;
    const char *device; /* the one device asked for, or NULL */
    int64_t fromMs, toMs;
    buf text;
    serverStream *stream;
    size_t rows, points;
    int oom, gone;
    agg a;
    devRow *devs; /* sorted by id */
    size_t ndevs;
    /* raw: the group being gathered (one device, one hour) */
    historyreadGroup g;
    char gdev[TABLE_KEY_MAX + 1];
    int gActive;
    int tooMany;    /* more than DEVICES_MAX device rows needed */
    int64_t hourMs; /* the hour being read */
    size_t bad;     /* reading texts that could not be read */
} histOut;

/* Parses YYYY-MM-DDTHH:MM[:SS[.fff...]][Z|+00:00] (UTC) into ms. Returns 0 or -1. */
static int parseTime(const char *s, int64_t *ms) {
    struct tm tm;
    int n = 0, frac_ms = 0;
    memset(&tm, 0, sizeof(tm));
    if (strlen(s) > 40) return -1;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &n) != 5 ||
        n != 16)
        return -1;
    const char *p = s + n;
    if (*p == ':') {
        if (p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9') return -1;
        tm.tm_sec = (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
        if (*p == '.') {
            int digits = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                if (digits < 3) frac_ms = frac_ms * 10 + (*p - '0');
            if (!digits) return -1;
            for (; digits < 3; digits++)
                frac_ms *= 10;
        }
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "") != 0 && strcmp(p, "+00:00") != 0) return -1;
    if (tm.tm_year < 2000 || tm.tm_year > 2200 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return -1;
    int mday = tm.tm_mday, mon = tm.tm_mon;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != mday || tm.tm_mon != mon - 1) return -1; /* 31 Feb */
    *ms = (int64_t)t * 1000 + frac_ms;
    return 0;
}

static void formatMs(int64_t ms, char *out, size_t outlen) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Sends what is held once it passes HELD_MAX (or when flush is set and a stream is open). */
static void emit(histOut *o, const char *data, size_t len) {
    if (o->oom || o->gone) return;
    if (!o->stream && o->text.len + len > HELD_MAX) {
        o->stream = serverStreamOpen(o->req, o->res);
        if (!o->stream) {
            o->oom = 1;
            return;
        }
        if (serverStreamWrite(o->stream, o->text.data ? o->text.data : "", o->text.len) != 0)
            o->gone = 1;
        bufReset(&o->text);
    }
    if (o->stream) {
        if (!o->gone && serverStreamWrite(o->stream, data, len) != 0) o->gone = 1;
    } else if (bufAppend(&o->text, data, len) != 0) {
        o->oom = 1;
    }
}

/* A CSV field: quoted when it holds , " CR LF; a leading = + - @ gets a ' so that a spreadsheet
 * does not read it as a formula. */
static int csvField(buf *b, const char *s) {
    int quote = strpbrk(s, ",\"\r\n") != NULL, bad = 0;
    if (quote) bad |= bufAppend(b, "\"", 1);
    if (strchr("=+-@", s[0]) && s[0]) bad |= bufAppend(b, "'", 1);
    for (; *s; s++) {
        if (*s == '"') bad |= bufAppend(b, "\"", 1);
        bad |= bufAppend(b, s, 1);
    }
    if (quote) bad |= bufAppend(b, "\"", 1);
    return bad;
}

/* Emits b's text and frees b; bad (a failed append: b is then freed and empty) means out of
 * memory. */
static void emitBuf(histOut *o, buf *b, int bad) {
    if (bad || (!b->data && b->len == 0)) {
        bufFree(b);
        o->oom = 1;
        return;
    }
    emit(o, b->data, b->len);
    bufFree(b);
}

static void emitJsonPoint(histOut *o, json_t *j) {
    char *t = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (!t) {
        o->oom = 1;
        return;
    }
    if (o->points++) emit(o, ",", 1);
    emit(o, t, strlen(t));
    free(t);
}

static void flushAgg(histOut *o) {
    agg *a = &o->a;
    char when[40];
    if (a->bucket < 0) return;
    formatMs(a->bucket, when, sizeof(when));
    if (o->csv) {
        buf b;
        bufInit(&b, 4096);
        int bad = csvField(&b, a->device);
        bad |= bufPrintf(&b, ",%s,%" PRId64, when, a->count);
        for (int m = 0; m < METRIC_COUNT; m++) {
            if (a->n[m])
                bad |= bufPrintf(&b, ",%.10g,%.10g,%.10g", a->min[m], a->sum[m] / (double)a->n[m],
                                 a->max[m]);
            else
                bad |= bufAppend(&b, ",,,", 3);
        }
        bad |= bufAppend(&b, "\r\n", 2);
        emitBuf(o, &b, bad);
    } else {
        json_t *j = json_pack("{s:s,s:s,s:I}", "deviceId", a->device, "time", when, "count",
                              (json_int_t)a->count);
        for (int m = 0; j && m < METRIC_COUNT; m++)
            if (a->n[m])
                json_object_set_new(j, metricJson[m],
                                    json_pack("{s:f,s:f,s:f}", "min", a->min[m], "mean",
                                              a->sum[m] / (double)a->n[m], "max", a->max[m]));
        if (!j)
            o->oom = 1;
        else
            emitJsonPoint(o, j);
    }
    memset(a, 0, sizeof(*a));
    a->bucket = -1;
}

/* Appends s to b as a JSON string (s valid UTF-8, or "" when not). Returns 0 or -1. */
static int jsonText(buf *b, const char *s) {
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    int rc = bufAppend(b, t ? t : "\"\"", t ? strlen(t) : 2);
    free(t);
    return rc;
}

/* Whether s can go into JSON between quotes as it is. */
static int jsonPlain(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x80 || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* One reading of the device o->gdev (its field text, CSV- or JSON-escaped, in dev). */
static void emitReading(histOut *o, const char *dev, size_t devlen, const historyreadReading *r) {
    char line[512], when[40];
    size_t n;
    formatMs(r->ms, when, sizeof(when));
    if (o->csv) {
        n = (size_t)snprintf(line, sizeof(line), ",%s", when);
        for (int m = 0; m < METRIC_COUNT && n < sizeof(line); m++)
            n += r->has[m] ? (size_t)snprintf(line + n, sizeof(line) - n, ",%.10g", r->value[m])
                           : (size_t)snprintf(line + n, sizeof(line) - n, ",");
    } else {
        n = (size_t)snprintf(line, sizeof(line), ",\"time\":\"%s\"", when);
        for (int m = 0; m < METRIC_COUNT && n < sizeof(line); m++)
            if (r->has[m])
                n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"%s\":%.10g", metricJson[m],
                                      r->value[m]);
    }
    if (n >= sizeof(line)) n = sizeof(line) - 1;
    buf b;
    bufInit(&b, devlen + sizeof(line) + 2 * HISTORYREAD_PARTITION_MAX * 6 + 64);
    int bad = (!o->csv && o->points++ && bufAppend(&b, ",", 1)) || bufAppend(&b, dev, devlen) ||
              bufAppend(&b, line, n);
    if (o->csv) {
        bad = bad || bufAppend(&b, ",", 1) || csvField(&b, r->partition) ||
              bufPrintf(&b, ",%" PRId64 "\r\n", r->seq);
    } else {
        bad = bad || bufAppend(&b, ",\"partition\":", 13);
        if (!bad && jsonPlain(r->partition))
            bad = bufPrintf(&b, "\"%s\"", r->partition);
        else if (!bad)
            bad = jsonText(&b, r->partition);
        bad = bad || bufPrintf(&b, ",\"sequenceNumber\":%" PRId64 "}", r->seq);
    }
    o->rows++;
    emitBuf(o, &b, bad);
}

static int byDevId(const void *a, const void *b) {
    return strcmp(((const devRow *)a)->id, ((const devRow *)b)->id);
}

/* The held row of a device, or NULL. */
static devRow *findDev(const histOut *o, const char *id) {
    devRow key = {.id = id};
    return o->ndevs ? bsearch(&key, o->devs, o->ndevs, sizeof(devRow), byDevId) : NULL;
}

/* Sends what the group holds (settled: de-duplicated, in time order) and empties it. */
static void emitGroup(histOut *o) {
    historyreadGroupSettle(&o->g);
    if (o->g.n) {
        buf dev;
        bufInit(&dev, DEV_TEXT_MAX);
        if (o->csv ? csvField(&dev, o->gdev)
                   : bufAppend(&dev, "{\"deviceId\":", 12) || jsonText(&dev, o->gdev))
            o->oom = 1; /* dev freed */
        for (size_t i = 0; i < o->g.n && !o->oom && !o->gone; i++)
            emitReading(o, dev.data, dev.len, &o->g.v[i]);
        bufFree(&dev);
    }
    historyreadGroupClear(&o->g);
}

/* Adds a reading to the group when it is in the range and the hour. */
static int gather(const historyreadReading *r, void *ctx) {
    histOut *o = ctx;
    if (r->ms < o->fromMs || r->ms > o->toMs || r->ms < o->hourMs || r->ms >= o->hourMs + HOUR_MS)
        return 0;
    if (historyreadGroupAdd(&o->g, r) == 0) return 0;
    /* full (a device with more than HISTORYREAD_GROUP_MAX readings in an hour) or no memory:
     * what is held goes out, de-duplicated among itself */
    emitGroup(o);
    if (!o->oom && historyreadGroupAdd(&o->g, r) != 0) o->oom = 1;
    return o->oom || o->gone;
}

/* Sends the group of o->gdev for the hour: with its pending readings of that hour, settled. */
static void flushGroup(histOut *o) {
    if (!o->gActive) return;
    o->gActive = 0;
    devRow *d = findDev(o, o->gdev);
    if (d && d->pendingDone != o->hourMs) {
        d->pendingDone = o->hourMs;
        historyreadPending(d->row, gather, o, &o->bad);
    }
    emitGroup(o);
}

/* Starts the group of device dev (flushing the one before). */
static void startGroup(histOut *o, const char *dev) {
    if (o->gActive && strcmp(o->gdev, dev) == 0) return;
    flushGroup(o);
    snprintf(o->gdev, sizeof(o->gdev), "%s", dev);
    o->gActive = 1;
}

/* One row of an hour's partition, as its query page arrives (raw resolution): a chunk, a format
 * v1 reading, or anything else (a summary row: skipped). */
static int addRow(json_t *e, void *ctx) {
    histOut *o = ctx;
    const char *dev = json_string_value(json_object_get(e, "DeviceId"));
    const char *readings = json_string_value(json_object_get(e, "Readings"));
    historyreadReading r;
    if (!dev || (o->device && strcmp(dev, o->device) != 0)) return 0; /* not ours */
    if (readings) {
        startGroup(o, dev);
        historyreadChunk(readings, gather, o, &o->bad);
    } else if (json_object_get(e, "Time") && historyreadFromV1(e, &r) == 0) {
        startGroup(o, dev);
        gather(&r, o);
    }
    return o->oom || o->gone;
}

/* After the hour's rows: the last group, then the pending readings of devices that had no row in
 * the hour. */
static void finishHour(histOut *o) {
    flushGroup(o);
    for (size_t i = 0; i < o->ndevs && !o->oom && !o->gone; i++) {
        if (o->devs[i].pendingDone == o->hourMs) continue;
        startGroup(o, o->devs[i].id);
        flushGroup(o);
    }
}

/* The minutes of one device's hour (starting at hourMs; minute[i] is its minute i) within the
 * range: as minutes, or folded into the hour. */
static void emitMinutes(histOut *o, const char *dev, const historyMinute *minute, int64_t hourMs) {
    for (int i = 0; i < 60 && !o->oom && !o->gone; i++) {
        int64_t start = hourMs + (int64_t)i * 60000;
        const historyMinute *mi = &minute[i];
        if (!mi->count || start + 59999 < o->fromMs - o->fromMs % 60000 || start > o->toMs)
            continue;
        o->rows += (size_t)mi->count;
        agg *a = &o->a;
        int64_t bucket = o->resolution == RES_MINUTE ? start : hourMs;
        if (a->bucket != bucket || strcmp(a->device, dev) != 0) {
            flushAgg(o);
            snprintf(a->device, sizeof(a->device), "%s", dev);
            a->bucket = bucket;
        }
        a->count += mi->count;
        for (int m = 0; m < METRIC_COUNT; m++) {
            const historyAgg *g = &mi->m[m];
            if (!g->n) continue;
            if (!a->n[m] || g->min < a->min[m]) a->min[m] = g->min;
            if (!a->n[m] || g->max > a->max[m]) a->max[m] = g->max;
            a->sum[m] = historySumAdd(a->sum[m], g->sum);
            a->n[m] += g->n;
        }
    }
    flushAgg(o);
}

/* One frozen hour row (or a format v1 summary row) of the hour starting at hourMs. A device whose
 * HistHour is this hour is answered from its slots instead (emitSlots). */
static void emitSummary(histOut *o, const json_t *row, int64_t hourMs) {
    const char *dev = json_string_value(json_object_get(row, "DeviceId"));
    historySummary s;
    if (!dev || json_object_get(row, "Time") || json_object_get(row, "Readings")) return;
    const devRow *d = findDev(o, dev);
    if (d && d->histHour == hourMs / HOUR_MS) return;
    historySummaryFromRow(row, &s);
    emitMinutes(o, dev, s.minute, hourMs);
}

/* The devices whose HistHour is the hour starting at hourMs, from their rows' minute slots. */
static void emitSlots(histOut *o, int64_t hourMs) {
    historyMinute minute[60];
    for (size_t i = 0; i < o->ndevs && !o->oom && !o->gone; i++) {
        const devRow *d = &o->devs[i];
        if (d->histHour != hourMs / HOUR_MS) continue;
        if (historyreadSlots(d->row, d->histHour * 60, minute) > 0)
            emitMinutes(o, d->id, minute, hourMs);
    }
}

typedef struct summaryCtx {
    histOut *o;
    int64_t hourMs;
} summaryCtx;

static int addSummaryRow(json_t *e, void *ctx) {
    summaryCtx *c = ctx;
    emitSummary(c->o, e, c->hourMs);
    return c->o->oom || c->o->gone;
}

/* Keeps a device row the answer needs (raw: pending readings; summaries: a HistHour in the
 * range). Steals row. Returns 0, or -1 when too many are held or out of memory. */
static int keepDev(histOut *o, json_t *row) {
    const char *id = json_string_value(json_object_get(row, "RowKey"));
    int64_t hh = historyreadHistHour(row);
    int want = o->resolution == RES_RAW ? historyPendingAny(row)
                                        : hh >= o->fromMs / HOUR_MS && hh <= o->toMs / HOUR_MS;
    if (!id || !want) {
        json_decref(row);
        return 0;
    }
    historyPendingTrim(row); /* summaries: QLater's groups are read too (historySlotsView) */
    if (o->ndevs == DEVICES_MAX || (o->ndevs & (o->ndevs - 1)) == 0) {
        devRow *n = o->ndevs == DEVICES_MAX
                        ? NULL
                        : realloc(o->devs, (o->ndevs ? 2 * o->ndevs : 1) * sizeof(devRow));
        o->tooMany |= o->ndevs == DEVICES_MAX;
        if (!n) {
            json_decref(row);
            return -1;
        }
        o->devs = n;
    }
    o->devs[o->ndevs++] = (devRow){id, row, hh, -1};
    return 0;
}

static int addDevRow(json_t *e, void *ctx) {
    histOut *o = ctx;
    if (keepDev(o, json_incref(e)) != 0) o->oom = 1;
    return o->oom;
}

/* Every device's row the answer needs, from the device table (all devices asked for). Returns a
 * TABLE_ status (no table is TABLE_OK); tr as the table's. */
static int readDevices(const fnContext *ctx, histOut *o, tableResult *tr) {
    char lit[2 * TABLE_KEY_MAX + 8], filter[2 * TABLE_KEY_MAX + 32];
    if (historyQuote(ctx->s->partitionKey, lit, sizeof(lit)) != 0) {
        snprintf(tr->message, sizeof(tr->message), "the partition key is too long");
        tr->status = 500;
        return TABLE_ERROR;
    }
    snprintf(filter, sizeof(filter), "PartitionKey eq %s", lit);
    int c = tableQuerySelect(&ctx->s->storage, ctx->s->deviceTable, filter,
                             o->resolution == RES_RAW ? PENDING_COLUMNS : SLOT_COLUMNS, addDevRow,
                             o, tr);
    if (o->ndevs) qsort(o->devs, o->ndevs, sizeof(devRow), byDevId);
    return c == TABLE_NOT_FOUND ? TABLE_OK : c;
}

static void bad(serverResponse *res, const char *param, const char *why) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", param, why);
    json_t *j = json_pack("{s:s,s:s}", "error", msg, "parameter", param);
    serverSetJson(res, 400, j);
}

/* The method, device, format and resolution of the request into o. Returns 0, or -1 with the
 * error set in res. */
static int readOptions(const serverRequest *req, serverResponse *res, histOut *o) {
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        serverSetError(res, 405, "gethistory takes GET");
        return -1;
    }
    const char *device = serverQuery(req, "device");
    const char *resolution = serverQuery(req, "resolution");
    const char *format = serverQuery(req, "format");
    if (device && !*device) device = NULL;
    o->device = device;
    if (device && !tableKeyValid(device)) {
        bad(res, "device",
            "not a device id (1 to 512 UTF-16 units, none of / \\ # ? or control "
            "characters)");
        return -1;
    }
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        bad(res, "format", "must be json or csv");
        return -1;
    }
    o->csv = format && strcmp(format, "csv") == 0;
    o->resolution = RES_RAW;
    if (resolution && strcmp(resolution, "minute") == 0)
        o->resolution = RES_MINUTE;
    else if (resolution && strcmp(resolution, "hour") == 0)
        o->resolution = RES_HOUR;
    else if (resolution && strcmp(resolution, "raw") != 0) {
        bad(res, "resolution", "must be raw, minute or hour");
        return -1;
    }
    return 0;
}

/* The range from last, or from and to, into o->fromMs and o->toMs. Returns 0, or -1 with the
 * error set in res. */
static int readRange(const serverRequest *req, serverResponse *res, histOut *o) {
    const char *last = serverQuery(req, "last");
    const char *from = serverQuery(req, "from");
    const char *to = serverQuery(req, "to");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t nowMs = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (last && (from || to)) {
        bad(res, "last", "give either last or from/to, not both");
        return -1;
    }
    if (last || (!from && !to)) {
        int64_t span = 0;
        if (!last || strcmp(last, "1h") == 0)
            span = HOUR_MS;
        else if (strcmp(last, "24h") == 0)
            span = DAY_MS;
        else if (strcmp(last, "7d") == 0)
            span = 7 * DAY_MS;
        else {
            bad(res, "last", "must be 1h, 24h or 7d");
            return -1;
        }
        o->toMs = nowMs;
        o->fromMs = nowMs - span;
        return 0;
    }
    if (!from) {
        bad(res, "from", "missing (give from with to, or last)");
        return -1;
    }
    if (parseTime(from, &o->fromMs) != 0) {
        bad(res, "from", "not a UTC time like 2026-12-02T13:00:00Z");
        return -1;
    }
    o->toMs = nowMs;
    if (to && parseTime(to, &o->toMs) != 0) {
        bad(res, "to", "not a UTC time like 2026-12-02T14:00:00Z");
        return -1;
    }
    if (o->fromMs > o->toMs) {
        bad(res, "from", "is after to");
        return -1;
    }
    return 0;
}

/* Whether the range fits the widest the resolution answers. Returns 0, or -1 with the 400 set. */
static int checkSpan(serverResponse *res, const histOut *o) {
    int64_t span = o->toMs - o->fromMs;
    int64_t max = o->resolution == RES_MINUTE ? MINUTE_MAX_MS
                  : o->resolution == RES_HOUR ? HOUR_RES_MAX_MS
                  : o->device                 ? RAW_ONE_MAX_MS
                                              : RAW_ALL_MAX_MS;
    if (span <= max) return 0;
    bad(res, "resolution",
        o->resolution == RES_RAW
            ? (o->device ? "the range is too large for raw readings of one device (at most 24 "
                           "hours): use resolution=minute or hour"
                         : "the range is too large for raw readings of every device (at most 1 "
                           "hour): name a device, or use resolution=minute or hour")
        : o->resolution == RES_MINUTE
            ? "the range is too large for per-minute summaries (at most 7 days): use "
              "resolution=hour"
            : "the range is too large (at most 92 days)");
    return -1;
}

/* Whether the device asked for is in the device table (its row kept in o when the answer needs
 * it); its history key into dkey (dkeylen bytes). Returns 0, or -1 with the error set in res. */
static int checkDevice(const fnContext *ctx, histOut *o, const char *device, char *dkey,
                       size_t dkeylen) {
    serverResponse *res = o->res;
    char err[512];
    json_t *row = NULL;
    tableResult tr;
    /* Read before any history row: a pending reading moved into a chunk meanwhile is then seen
     * twice (and de-duplicated), never missed. */
    int c = tableGetEntity(&ctx->s->storage, ctx->s->deviceTable, ctx->s->partitionKey, device,
                           &row, &tr);
    if (c == TABLE_OK && keepDev(o, row) != 0) {
        serverSetError(res, 500, "out of memory");
        return -1;
    }
    if (c == TABLE_NOT_FOUND) {
        bad(res, "device", "no such device");
        return -1;
    }
    if (c != TABLE_OK) {
        snprintf(err, sizeof(err), "device table: %s", tr.message);
        serverSetError(res, tr.status == 0 ? 503 : 502, err);
        return -1;
    }
    historyDeviceKey(device, dkey, dkeylen);
    return 0;
}

/* The status, headers and the answer's head (the CSV columns, or the JSON up to the points). */
static void emitHead(histOut *o) {
    serverSetBody(o->res, 200,
                  o->csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8", NULL, 0);
    serverAddHeader(o->res, "Cache-Control", "no-store");
    if (o->csv) {
        serverAddHeader(o->res, "Content-Disposition", "attachment; filename=\"history.csv\"");
        const char *head = o->resolution == RES_RAW
                               ? "deviceId,time,celsius,humidity,hPa,light,partition,"
                                 "sequenceNumber\r\n"
                               : "deviceId,time,count,celsius_min,celsius_mean,celsius_max,"
                                 "humidity_min,humidity_mean,humidity_max,hPa_min,hPa_mean,"
                                 "hPa_max,light_min,light_mean,light_max\r\n";
        emit(o, head, strlen(head));
    } else {
        char f[40], t[40], head[256];
        formatMs(o->fromMs, f, sizeof(f));
        formatMs(o->toMs, t, sizeof(t));
        snprintf(head, sizeof(head),
                 "{\"from\":\"%s\",\"to\":\"%s\",\"resolution\":\"%s\",\"points\":[", f, t,
                 o->resolution == RES_RAW      ? "raw"
                 : o->resolution == RES_MINUTE ? "minute"
                                               : "hour");
        emit(o, head, strlen(head));
    }
}

/* The summaries of the hour starting at h (partition pk): one point read for a device, one
 * query for all. Returns a TABLE_ status (no table or no row is TABLE_OK); tr as the table's. */
static int readHourSummaries(const fnContext *ctx, histOut *o, int64_t h, const char *pk,
                             tableResult *tr) {
    char filter[4 * HISTORY_RK_MAX + 512], lit[2 * HISTORY_RK_MAX + 8];
    char lo[HISTORY_RK_MAX], hi[HISTORY_RK_MAX];
    summaryCtx sc = {o, h};
    int c;
    if (o->device) {
        char sk[HISTORY_RK_MAX];
        json_t *row = NULL;
        const devRow *d = o->ndevs ? &o->devs[0] : NULL;
        /* its HistHour is in its row's slots; no hour after it has readings */
        if (d && d->histHour <= h / HOUR_MS) {
            emitSlots(o, h);
            return TABLE_OK;
        }
        historySummaryKey(o->device, sk, sizeof(sk));
        c = tableGetEntity(&ctx->s->storage, ctx->s->historyTable, pk, sk, &row, tr);
        if (c == TABLE_OK) emitSummary(o, row, h);
        json_decref(row);
    } else {
        historyQuote(pk, lit, sizeof(lit));
        int n = snprintf(filter, sizeof(filter), "PartitionKey eq %s", lit);
        snprintf(lo, sizeof(lo), "%s", HISTORY_SUMMARY_PREFIX);
        snprintf(hi, sizeof(hi), "%s", HISTORY_SUMMARY_PREFIX);
        hi[strlen(hi) - 1] = '!'; /* the prefix's last character, a space, plus one */
        historyQuote(lo, lit, sizeof(lit));
        n += snprintf(filter + n, sizeof(filter) - (size_t)n, " and RowKey ge %s", lit);
        historyQuote(hi, lit, sizeof(lit));
        snprintf(filter + n, sizeof(filter) - (size_t)n, " and RowKey lt %s", lit);
        c = tableQuerySelect(&ctx->s->storage, ctx->s->historyTable, filter, NULL, addSummaryRow,
                             &sc, tr);
        if (c == TABLE_OK || c == TABLE_NOT_FOUND) emitSlots(o, h);
    }
    return c == TABLE_NOT_FOUND ? TABLE_OK : c;
}

/* The readings of the hour starting at h (partition pk) within the range, of the device (dkey
 * its history key) or of all. Returns a TABLE_ status (no table is TABLE_OK); tr as the table's. */
static int readHourRaw(const fnContext *ctx, histOut *o, int64_t h, const char *pk,
                       const char *dkey, tableResult *tr) {
    char filter[4 * HISTORY_RK_MAX + 512], lit[2 * HISTORY_RK_MAX + 8], lit2[2 * TABLE_KEY_MAX + 8];
    char lo[HISTORY_RK_MAX], hi[HISTORY_RK_MAX];
    historyQuote(pk, lit, sizeof(lit));
    int n = snprintf(filter, sizeof(filter), "PartitionKey eq %s", lit);
    if (o->device) {
        /* a chunk is in one hour and keyed by its first reading, which may be before the range */
        snprintf(lo, sizeof(lo), "%s %013" PRId64, dkey, h);
        snprintf(hi, sizeof(hi), "%s %013" PRId64, dkey,
                 (o->toMs < h + HOUR_MS ? o->toMs : h + HOUR_MS) + 1);
        historyQuote(lo, lit, sizeof(lit));
        n += snprintf(filter + n, sizeof(filter) - (size_t)n, " and RowKey ge %s", lit);
        historyQuote(hi, lit, sizeof(lit));
        n += snprintf(filter + n, sizeof(filter) - (size_t)n, " and RowKey lt %s", lit);
        /* the id itself too, unless it is so long that the URL could not hold it (its key
         * part is then a digest; addRow compares the id either way) */
        if (strlen(o->device) <= HISTORY_DEVICE_KEY_MAX) {
            historyQuote(o->device, lit2, sizeof(lit2));
            n += snprintf(filter + n, sizeof(filter) - (size_t)n, " and DeviceId eq %s", lit2);
        }
    }
    o->hourMs = h;
    int c =
        tableQuerySelect(&ctx->s->storage, ctx->s->historyTable, filter, COLUMNS, addRow, o, tr);
    if (c == TABLE_OK || c == TABLE_NOT_FOUND) finishHour(o);
    return c == TABLE_NOT_FOUND ? TABLE_OK : c; /* no table yet: no history */
}

/* Sends the answer held or closes the stream; or the error: out of memory, or the history
 * table's (tr) when c is not TABLE_OK. */
static void finishAnswer(histOut *o, int c, const tableResult *tr) {
    char err[512];
    if (!o->oom && !o->gone && c == TABLE_OK) {
        flushAgg(o);
        if (!o->csv) emit(o, "]}", 2);
    }
    int ok = !o->oom && !o->gone && c == TABLE_OK;
    if (o->stream) {
        serverStreamClose(o->stream, ok);
    } else if (ok) {
        size_t len = o->text.len;
        char *text = bufDetach(&o->text);
        serverSetBody(o->res, 200,
                      o->csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
                      text ? text : strdup(""), text ? len : 0);
    } else if (o->oom) {
        serverSetError(o->res, 500, "out of memory");
    } else {
        snprintf(err, sizeof(err), "history table: %s", tr->message);
        serverSetError(o->res, tr->status == 0 ? 503 : 502, err);
    }
}

void fnGetHistory(const fnContext *ctx, const serverRequest *req, serverResponse *res) {
    histOut o;
    char dkey[HISTORY_DEVICE_KEY_MAX + 1], err[512];
    memset(&o, 0, sizeof(o));
    o.req = req;
    o.res = res;
    o.a.bucket = -1;
    bufInit(&o.text, HELD_MAX + 1);

    if (readOptions(req, res, &o) != 0 || readRange(req, res, &o) != 0 || checkSpan(res, &o) != 0)
        goto out;
    if (o.device && checkDevice(ctx, &o, o.device, dkey, sizeof(dkey)) != 0) goto out;
    int c = TABLE_OK;
    tableResult tr;
    memset(&tr, 0, sizeof(tr));
    if (!o.device) c = readDevices(ctx, &o, &tr);
    if (o.tooMany) {
        bad(res, "device",
            "more than 10,000 devices hold readings of this range in their rows: name a device");
        goto out;
    }
    if (c != TABLE_OK || o.oom) {
        snprintf(err, sizeof(err), "%s", o.oom ? "out of memory" : tr.message);
        serverSetError(res, o.oom ? 500 : tr.status == 0 ? 503 : 502, err);
        goto out;
    }
    emitHead(&o);
    /* One query per hour's partition, oldest first; within it, rows come device by device in
     * time order (RowKey order), so the summaries are made as the rows stream by. */
    for (int64_t h = o.fromMs - o.fromMs % HOUR_MS;
         h <= o.toMs && c == TABLE_OK && !o.oom && !o.gone; h += HOUR_MS) {
        char pk[HISTORY_PK_LEN];
        historyPartitionKey(h, pk);
        c = o.resolution != RES_RAW ? readHourSummaries(ctx, &o, h, pk, &tr)
                                    : readHourRaw(ctx, &o, h, pk, dkey, &tr);
    }
    finishAnswer(&o, c, &tr);
    logInfo("gethistory: %zu readings, %zu points, %zu duplicates dropped, %zu unreadable", o.rows,
            o.points, o.g.dropped, o.bad);
out:
    for (size_t i = 0; i < o.ndevs; i++)
        json_decref(o.devs[i].row);
    free(o.devs);
    historyreadGroupFree(&o.g);
    bufFree(&o.text);
}
