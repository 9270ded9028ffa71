/* fn_events: the EnvironmentEventTrigger function: an Event Hubs batch from the host in, device
 * rows committed, rejected readings kept, live pushes out, a summary back. */
#include "calibration.h"
#include "commit.h"
#include "devicestate.h"
#include "dict.h"
#include "functions.h"
#include "invocation.h"
#include "livepush.h"
#include "log.h"
#include "quarantine.h"
#include "table.h"
#include "telemetry.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A rejected reading's text goes into its row whole: split into String properties Body, Body2,
 * ... of at most BODY_PART_UNITS UTF-16 units each (a String property holds 32,768), at most
 * BODY_PARTS of them (the entity stays under 1 MiB). A longer text goes to the quarantine table
 * and the row names it (BodyQuarantineId). */
#define BODY_PART_UNITS 32000
#define BODY_PARTS 12
#define BAD_DEVICE_ID                                                                              \
    "device id holds characters Table Storage forbids (/ \\ # ? or control characters) or is "     \
    "longer than 512 UTF-16 units"

/* One reading of the batch: an event's body, or one element of an array body. */
typedef struct item {
    reading r;
    const char *device; /* borrowed from the batch, NULL when unknown */
    size_t event;       /* index of its event */
    size_t k;           /* index within the event's body */
    int rejected;
    char reason[TELEMETRY_REASON_LEN];
    char *text; /* the reading's text for the rejected table (owned), or NULL */
} item;

typedef struct batchRun {
    const fnContext *ctx;
    hostBatch b;
    item *items;
    size_t nitems;
    deviceWork *works;
    size_t nworks;
    size_t *rejects; /* indices of rejected items */
    size_t nrejects;
    int rejectFailures; /* rejected readings not kept because of a transient failure */
    int rejectRefused;  /* rejected readings the store refuses to keep (logged) */
    char rejectError[256];
    int tablesGone; /* a table the batch needs does not exist (deleted while running) */
    pthread_mutex_t lock;
} batchRun;

static void reject(item *it, const char *reason) {
    it->rejected = 1;
    snprintf(it->reason, sizeof(it->reason), "%s", reason);
}

/* Splits every event into readings and normalises them. Returns 0 or -1 (OOM). */
static int collect(batchRun *run) {
    size_t n = 0;
    for (size_t i = 0; i < run->b.count; i++) {
        json_t *body = run->b.events[i].body;
        n += json_is_array(body) && json_array_size(body) ? json_array_size(body) : 1;
    }
    run->items = calloc(n ? n : 1, sizeof(item));
    if (!run->items) return -1;
    for (size_t i = 0; i < run->b.count; i++) {
        hostEvent *e = &run->b.events[i];
        size_t parts =
            json_is_array(e->body) && json_array_size(e->body) ? json_array_size(e->body) : 1;
        for (size_t k = 0; k < parts; k++) {
            item *it = &run->items[run->nitems++];
            it->event = i;
            it->k = k;
            it->device = e->deviceId;
            if (e->badDeviceId) {
                it->device = NULL;
                reject(it, BAD_DEVICE_ID);
                continue;
            }
            json_t *src = json_is_array(e->body) ? json_array_get(e->body, k) : e->body;
            if (json_is_array(e->body)) it->text = json_dumps(src, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!e->body) {
                reject(it, "event body is not JSON");
                continue;
            }
            if (json_is_array(e->body) && !src) {
                reject(it, "event body is an empty array");
                continue;
            }
            if (telemetryNormalize(src, &it->r, it->reason, sizeof(it->reason)) != 0) {
                it->rejected = 1;
                /* The device may still be named in the body. */
                json_t *d = json_object_get(src, "deviceId");
                if (!it->device && json_is_string(d) &&
                    strlen(json_string_value(d)) == json_string_length(d))
                    it->device = json_string_value(d);
                continue;
            }
            /* The IoT Hub system property wins; the body's id only where there is none. */
            if (!it->device) it->device = it->r.bodyDeviceId;
        }
    }
    for (size_t i = 0; i < run->nitems; i++) {
        item *it = &run->items[i];
        if (!it->device || !*it->device) {
            it->device = NULL;
            if (!it->rejected) reject(it, "no device id (iothub-connection-device-id or deviceId)");
        } else if (!tableKeyValid(it->device)) {
            it->device = NULL; /* cannot name a row */
            if (!it->rejected) reject(it, BAD_DEVICE_ID);
        }
    }
    return 0;
}

/* Groups the items by device into works. Returns 0 or -1. */
static int group(batchRun *run) {
    dict index;
    int rc = -1;
    if (dictInit(&index, 256, NULL)) return -1;
    run->works = calloc(run->nitems ? run->nitems : 1, sizeof(deviceWork));
    run->rejects = calloc(run->nitems ? run->nitems : 1, sizeof(size_t));
    if (!run->works || !run->rejects) goto out;
    /* One work per device, and how many entries each will hold... */
    for (size_t i = 0; i < run->nitems; i++) {
        item *it = &run->items[i];
        if (it->rejected) run->rejects[run->nrejects++] = i;
        if (!it->device) continue;
        deviceWork *w = dictGet(&index, it->device);
        if (!w) {
            w = &run->works[run->nworks++];
            w->deviceId = it->device;
            w->partition = run->b.partition;
            w->eventHubNamespace = run->b.eventHubNamespace;
            w->eventHubName = run->b.eventHubName;
            if (dictSet(&index, it->device, w)) goto out;
        }
        w->count++;
    }
    for (size_t i = 0; i < run->nworks; i++) {
        run->works[i].entries = calloc(run->works[i].count, sizeof(deviceEntry));
        if (!run->works[i].entries) goto out;
        run->works[i].count = 0;
    }
    /* ...then the entries, in batch order. */
    for (size_t i = 0; i < run->nitems; i++) {
        item *it = &run->items[i];
        if (!it->device) continue;
        deviceWork *w = dictGet(&index, it->device);
        hostEvent *e = &run->b.events[it->event];
        deviceEntry *de = &w->entries[w->count++];
        de->r = it->rejected ? NULL : &it->r;
        de->hasSeq = e->hasSeq;
        de->seq = e->seq;
        de->enqueuedMs = e->enqueuedMs;
        de->k = it->k;
    }
    rc = 0;
out:
    dictFree(&index);
    return rc;
}

/* Calibrates and validates the normalised readings. Returns 0, or -1 with err. */
static int calibrate(batchRun *run, char *err, size_t errlen) {
    const char **ids = calloc(run->nitems ? run->nitems : 1, sizeof(char *));
    size_t n = 0;
    if (!ids) return -1;
    for (size_t i = 0; i < run->nitems; i++)
        if (!run->items[i].rejected && run->items[i].device) ids[n++] = run->items[i].device;
    int rc = calibrationPrepare(ids, n, err, errlen);
    free(ids);
    if (rc == CALIBRATION_TABLE_GONE) run->tablesGone = 1;
    if (rc) return -1;
    for (size_t i = 0; i < run->nitems; i++) {
        item *it = &run->items[i];
        if (it->rejected || !it->device) continue;
        calibration c;
        if (calibrationGet(it->device, &c, it->reason, sizeof(it->reason)) != 0) {
            it->rejected = 1;
            continue;
        }
        telemetryCalibrate(&it->r, &c);
        if (telemetryValidate(&it->r, it->reason, sizeof(it->reason)) != 0) it->rejected = 1;
    }
    return 0;
}

/* Puts text into p as Body, Body2, ... (see BODY_PART_UNITS). Returns 0, or 1 when it does not
 * fit in BODY_PARTS parts (nothing set). */
static int setBody(json_t *p, const char *text, size_t len) {
    const char *parts[BODY_PARTS];
    size_t lens[BODY_PARTS], n = 0, off = 0;
    while (off < len || n == 0) {
        if (n == BODY_PARTS) return 1;
        size_t take = tableUtf16Prefix(text + off, len - off, BODY_PART_UNITS);
        if (take == 0 && off < len) return 1; /* not UTF-8: cannot be a String */
        parts[n] = text + off;
        lens[n++] = take;
        off += take;
    }
    for (size_t i = 0; i < n; i++) {
        char name[16];
        if (i == 0)
            snprintf(name, sizeof(name), "Body");
        else
            snprintf(name, sizeof(name), "Body%zu", i + 1);
        json_object_set_new(p, name, json_stringn_nocheck(parts[i], lens[i]));
    }
    if (n > 1) tableSetInt64(p, "BodyParts", (int64_t)n);
    return 0;
}

/* A rejected reading's row, kept where an operator finds it: one row per reading, keyed by
 * partition, sequence number and position, so a replay writes the same row again instead of a new
 * one. Sets rk (160 bytes) and *props (caller decrefs). Returns an enum quarantineStatus (OK,
 * TRANSIENT: try later, REFUSED: never fits, TABLE_GONE). */
static int rejectedRow(batchRun *run, const item *it, char *rk, json_t **props, char *err,
                       size_t errlen) {
    const settings *s = run->ctx->s;
    const hostEvent *e = &run->b.events[it->event];
    const char *part = tableKeyValid(run->b.partition) ? run->b.partition : "p";
    char when[40];
    *props = NULL;
    if (e->hasSeq)
        snprintf(rk, 160, "%s-%020" PRId64 "-%zu", part, e->seq, it->k);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(rk, 160, "%s-t%" PRId64 "%09ld-%zu-%zu", part, (int64_t)ts.tv_sec, ts.tv_nsec,
                 it->event, it->k);
    }
    const char *text = it->text ? it->text : e->raw ? e->raw : "";
    size_t tl = it->text ? strlen(it->text) : e->raw ? e->rawlen : 0;
    json_t *p = json_object();
    if (!p) {
        snprintf(err, errlen, "keeping rejected reading %s: out of memory", rk);
        return QUARANTINE_TRANSIENT;
    }
    tableSetString(p, "Reason", it->reason);
    /* a device id that cannot be a key can be any length: the body holds it whole */
    tableSetString(p, "DeviceId", it->device && tableKeyValid(it->device) ? it->device : "");
    tableSetString(p, "EventHubPartition", run->b.partition);
    if (e->hasSeq) tableSetInt64(p, "SequenceNumber", e->seq);
    if (e->enqueuedMs) {
        invocationFormatTime(e->enqueuedMs, when, sizeof(when));
        tableSetDateTime(p, "EnqueuedTime", when);
    }
    tableSetInt64(p, "BodyBytes", (int64_t)tl);
    if (setBody(p, text, tl) != 0) {
        char id[QUARANTINE_ID_LEN];
        quarantineItem q = {.reason = it->reason,
                            .partition = run->b.partition,
                            .hasSeqRange = e->hasSeq,
                            .seqFirst = e->seq,
                            .seqLast = e->seq};
        quarantineId("r", text, tl, id);
        int rc =
            quarantineKeep(&s->storage, s->quarantineTable, id, &q, text, tl, NULL, err, errlen);
        if (rc != QUARANTINE_OK) {
            json_decref(p);
            return rc;
        }
        tableSetString(p, "Body", "");
        tableSetString(p, "BodyQuarantineId", id);
    }
    *props = p;
    return QUARANTINE_OK;
}

/* Keeps one rejected reading (see rejectedRow). Returns an enum quarantineStatus. */
static int keepRejected(batchRun *run, const item *it, char *err, size_t errlen) {
    const settings *s = run->ctx->s;
    char rk[160];
    json_t *p;
    int rc = rejectedRow(run, it, rk, &p, err, errlen);
    if (rc != QUARANTINE_OK) return rc;
    tableResult r;
    int c = tableUpsert(&s->storage, s->rejectedTable, s->partitionKey, rk, p, &r);
    rc = c == TABLE_OK ? QUARANTINE_OK
         : r.tableGone ? QUARANTINE_TABLE_GONE
         : r.permanent ? QUARANTINE_REFUSED
                       : QUARANTINE_TRANSIENT;
    if (c != TABLE_OK) snprintf(err, errlen, "keeping rejected reading %s: %s", rk, r.message);
    json_decref(p);
    return rc;
}

/* Counts the outcome of keepRejected. */
static void noteKept(batchRun *run, int rc, const char *err) {
    if (rc == QUARANTINE_OK) return;
    pthread_mutex_lock(&run->lock);
    if (rc == QUARANTINE_REFUSED)
        run->rejectRefused++;
    else
        run->rejectFailures++;
    if (rc == QUARANTINE_TABLE_GONE) run->tablesGone = 1;
    snprintf(run->rejectError, sizeof(run->rejectError), "%s", err);
    pthread_mutex_unlock(&run->lock);
    if (rc == QUARANTINE_REFUSED)
        logError("rejected reading not kept, the store refuses it: %s", err);
}

/* Keeps every rejected reading of the batch: the rows in transactions of the rejected table
 * (they all have the PartitionKey setting as PartitionKey), each a replace, so a replay rewrites
 * them. */
static void keepRejects(batchRun *run) {
    const settings *s = run->ctx->s;
    size_t n = run->nrejects, m = 0;
    commitRow *rows = calloc(n ? n : 1, sizeof(*rows));
    char(*rks)[160] = calloc(n ? n : 1, sizeof(*rks));
    char err[256];
    if (!rows || !rks) {
        for (size_t i = 0; i < n; i++)
            noteKept(run, QUARANTINE_TRANSIENT, "keeping rejected readings: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p;
        err[0] = '\0';
        int rc = rejectedRow(run, &run->items[run->rejects[i]], rks[m], &p, err, sizeof(err));
        if (rc != QUARANTINE_OK) {
            noteKept(run, rc, err);
            continue;
        }
        rows[m].rk = rks[m];
        rows[m++].props = p;
    }
    commitUpsertRows(s, s->rejectedTable, s->partitionKey, rows, m);
    for (size_t i = 0; i < m; i++) {
        if (!rows[i].ok) {
            snprintf(err, sizeof(err), "keeping rejected reading %s: %s", rows[i].rk,
                     rows[i].error);
            noteKept(run,
                     rows[i].tableGone   ? QUARANTINE_TABLE_GONE
                     : rows[i].permanent ? QUARANTINE_REFUSED
                                         : QUARANTINE_TRANSIENT,
                     err);
        }
        json_decref(rows[i].props);
    }
out:
    free(rows);
    free(rks);
}

static void freeRun(batchRun *run) {
    for (size_t i = 0; i < run->nitems; i++)
        free(run->items[i].text);
    for (size_t i = 0; i < run->nworks; i++) {
        free(run->works[i].entries);
        json_decref(run->works[i].state);
    }
    free(run->items);
    free(run->works);
    free(run->rejects);
    invocationBatchFree(&run->b);
    pthread_mutex_destroy(&run->lock);
}

static double msBetween(const struct timespec *a, const struct timespec *b) {
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Answers with the host's invocation result (logs stolen). */
static void answer(serverResponse *res, int status, json_t *logs, const char *error) {
    char *text = invocationAnswer(logs, error);
    serverSetBody(res, text ? status : 500, "application/json", text, text ? strlen(text) : 0);
}

/* The quarantine id of an invocation (out: QUARANTINE_ID_LEN bytes). */
static void batchId(const serverRequest *req, const hostBatch *b, const char *inv, char *id) {
    if (req->spool) {
        /* not read into memory, so not hashed: named by the invocation and the time */
        char seed[256];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int n = snprintf(seed, sizeof(seed), "%s %zu %lld %ld", inv ? inv : "", req->bodylen,
                         (long long)ts.tv_sec, ts.tv_nsec);
        quarantineId("s", seed, n > 0 ? (size_t)n : 0, id);
        return;
    }
    if (!b->events) {
        quarantineId("b", req->body, req->bodylen, id);
        return;
    }
    /* A decoded batch is named by its events, not by the whole body: the host's sys.UtcNow and
     * sys.RandGuid differ on every delivery, the events do not. */
    const size_t slot = QUARANTINE_ID_LEN + sizeof(int64_t);
    size_t n = b->count * slot + sizeof(b->partition);
    char *digests = calloc(1, n);
    if (!digests) {
        quarantineId("b", req->body, req->bodylen, id);
        return;
    }
    memcpy(digests, b->partition, sizeof(b->partition));
    for (size_t i = 0; i < b->count; i++) {
        char *d = digests + sizeof(b->partition) + i * slot;
        const hostEvent *e = &b->events[i];
        quarantineId(e->hasSeq ? "e" : "n", e->raw, e->raw ? e->rawlen : 0, d);
        if (e->hasSeq) memcpy(d + QUARANTINE_ID_LEN, &e->seq, sizeof(e->seq));
    }
    quarantineId("b", digests, n, id);
    free(digests);
}

/* Quarantines the whole invocation (from memory, or from the server's spool file) and answers
 * (logs stolen): 200 when it is kept or the store refuses it (nothing later would change that;
 * logged), 500 when the store could not be reached (the host retries). */
static void quarantineBatch(const batchRun *run, const serverRequest *req, serverResponse *res,
                            const char *reason, json_t *logs) {
    const settings *s = run->ctx->s;
    const hostBatch *b = &run->b;
    char id[QUARANTINE_ID_LEN], err[512] = "", line[768];
    const char *inv = serverHeader(req, "X-Azure-Functions-InvocationId");
    quarantineItem q = {.reason = reason,
                        .partition = b->partition,
                        .hasSeqRange = b->hasSeqRange,
                        .seqFirst = b->seqFirst,
                        .seqLast = b->seqLast,
                        .invocationId = inv};
    batchId(req, b, inv, id);
    int rc = quarantineKeep(&s->storage, s->quarantineTable, id, &q, req->spool ? NULL : req->body,
                            req->bodylen, req->spool, err, sizeof(err));
    char range[64] = "unknown";
    if (b->hasSeqRange)
        snprintf(range, sizeof(range), "%" PRId64 "..%" PRId64, b->seqFirst, b->seqLast);
    if (rc == QUARANTINE_TRANSIENT || rc == QUARANTINE_TABLE_GONE) {
        if (rc == QUARANTINE_TABLE_GONE) tablesetLost(run->ctx->tables);
        logError("EnvironmentEventTrigger: cannot quarantine the batch (%s), the host will retry: "
                 "%s",
                 reason, err);
        json_array_append_new(logs, json_string(err));
        answer(res, 500, logs, "the batch could not be quarantined");
        return;
    }
    if (rc == QUARANTINE_REFUSED)
        snprintf(line, sizeof(line),
                 "batch NOT kept (the store refuses it: %s): %zu bytes, partition '%s', "
                 "sequence %s: %s",
                 err, req->bodylen, b->partition, range, reason);
    else
        snprintf(line, sizeof(line),
                 "batch quarantined as %s in %s: %zu bytes, partition '%s', sequence %s: %s", id,
                 s->quarantineTable, req->bodylen, b->partition, range, reason);
    logError("EnvironmentEventTrigger: %s", line);
    json_array_append_new(logs, json_string(line));
    answer(res, 200, logs, NULL);
}

/* A device whose row the store refuses every time: its readings become rejected readings with
 * the store's reason, kept in RejectedTelemetry, and the row is committed once more with them
 * counted as Rejected (so the watermark moves). Returns 0, or -1 when that failed transiently. */
static int rejectDevice(batchRun *run, deviceWork *w) {
    char reason[TELEMETRY_REASON_LEN], err[256] = "";
    snprintf(reason, sizeof(reason), "Table Storage refuses the device's row: %s", w->error);
    logError("device '%s': %s; its %zu reading(s) are rejected", w->deviceId, w->error, w->count);
    for (size_t i = 0; i < run->nitems; i++) {
        item *it = &run->items[i];
        if (it->rejected || !it->device || strcmp(it->device, w->deviceId) != 0) continue;
        it->rejected = 1;
        snprintf(it->reason, sizeof(it->reason), "%s", reason);
        run->rejects[run->nrejects++] = i;
        noteKept(run, keepRejected(run, it, err, sizeof(err)), err);
    }
    for (size_t i = 0; i < w->count; i++)
        w->entries[i].r = NULL;
    json_decref(w->state);
    w->state = NULL;
    w->error[0] = '\0';
    w->permanent = 0;
    if (devicestateCommit(w) == 0) return 0;
    if (w->permanent) {
        /* not even the counters fit: the readings are kept; nothing more can be done */
        logError("device '%s': its row cannot be written at all (%s); the batch goes on",
                 w->deviceId, w->error);
        w->ok = 1;
        return 0;
    }
    return -1;
}

/* Takes the invocation in: the method, the tables, the envelope. Returns 0 when the batch can be
 * applied, 1 when it was answered (logs stolen): refused, failed, or quarantined whole. */
static int admit(batchRun *run, const serverRequest *req, serverResponse *res, json_t *logs) {
    const fnContext *ctx = run->ctx;
    char err[INVOCATION_ERR_LEN] = "", line[512];
    if (strcmp(req->method, "POST") != 0) {
        answer(res, 405, logs, "EnvironmentEventTrigger takes POST");
        return 1;
    }
    if (tablesetEnsure(ctx->tables, err, sizeof(err)) != 0) {
        logError("EnvironmentEventTrigger: %s", err);
        answer(res, 500, logs, err);
        return 1;
    }
    /* Deterministic failures of the whole envelope: quarantined whole, answered 200 (a non-2xx
     * answer would be retried forever and stop the partition). */
    if (req->spool) {
        snprintf(line, sizeof(line), "request body of %zu bytes is over MaxRequestBodyBytes (%zu)",
                 req->bodylen, ctx->s->maxBodyBytes);
        quarantineBatch(run, req, res, line, logs);
        return 1;
    }
    if (invocationDecodeBatch(req->body, req->bodylen, &run->b, err, sizeof(err)) != 0) {
        snprintf(line, sizeof(line), "the envelope cannot be read: %s", err);
        quarantineBatch(run, req, res, line, logs);
        return 1;
    }
    if (run->b.count && (!run->b.partition[0] || !run->b.allSeq)) {
        /* Exactly-once rests on (partition, sequence number): without them every delivery of
         * this batch would be counted again. */
        quarantineBatch(run, req, res,
                        !run->b.partition[0]
                            ? "no partition id in the metadata: cannot be applied exactly once"
                            : "events without sequence numbers: cannot be applied exactly once",
                        logs);
        return 1;
    }
    return 0;
}

/* Splits, calibrates and groups the readings, and logs the rejected ones. Returns 0, or 1 when it
 * failed and was answered (logs stolen). */
static int prepare(batchRun *run, serverResponse *res, json_t *logs) {
    char err[INVOCATION_ERR_LEN] = "";
    if (collect(run) != 0 || calibrate(run, err, sizeof(err)) != 0 || group(run) != 0) {
        if (!err[0]) snprintf(err, sizeof(err), "out of memory");
        if (run->tablesGone) tablesetLost(run->ctx->tables);
        logError("EnvironmentEventTrigger: %s", err);
        answer(res, 500, logs, err);
        return 1;
    }
    for (size_t i = 0; i < run->nrejects; i++) {
        const item *it = &run->items[run->rejects[i]];
        const hostEvent *e = &run->b.events[it->event];
        logWarn("rejected reading: device '%.200s', partition '%s', sequence %" PRId64 ": %s",
                it->device ? it->device : "(none)", run->b.partition, e->hasSeq ? e->seq : -1,
                it->reason);
    }
    return 0;
}

/* What the batch did, counted once its tasks ran. */
typedef struct tally {
    size_t updated, failed, replayed, valid, historyRows, historyLate;
} tally;

/* Goes over the devices once their commits ran: rejects those the store refuses, logs those not
 * committed, collects the changed states (into changed) for the live push. */
static void countDevices(batchRun *run, json_t *logs, json_t *changed, tally *t) {
    char line[512];
    for (size_t i = 0; i < run->nworks; i++) {
        deviceWork *w = &run->works[i];
        if (!w->ok && w->permanent && rejectDevice(run, w) != 0) {
            /* logged below as not committed */
        }
        t->replayed += w->replayed;
        t->historyRows += w->historyRows;
        t->historyLate += w->historyLate;
        if (!w->ok) {
            t->failed++;
            if (w->tableGone) tablesetLost(run->ctx->tables); /* created again on retry */
            snprintf(line, sizeof(line), "device '%.200s' not committed: %s", w->deviceId,
                     w->error);
            logError("%s", line);
            json_array_append_new(logs, json_string(line));
            continue;
        }
        if (w->changed) {
            t->updated++;
            if (w->state) json_array_append(changed, w->state);
        }
    }
    for (size_t i = 0; i < run->nitems; i++)
        t->valid += !run->items[i].rejected;
}

/* Answers once the tasks ran (logs stolen): 500 when a row or a rejected reading was not
 * committed (the host retries the batch), else 200 after the live push, with the batch's summary
 * line in summary (for the caller's timing line; "" otherwise). */
static void conclude(batchRun *run, serverResponse *res, json_t *logs, char *summary,
                     size_t summarylen) {
    char err[INVOCATION_ERR_LEN], line[512];
    tally t = {0};
    json_t *changed = json_array();
    countDevices(run, logs, changed, &t);
    snprintf(line, sizeof(line),
             "batch: %zu events, %zu valid readings, %zu devices updated, %zu rejected, "
             "%zu replayed, %zu failed",
             run->b.count, t.valid, t.updated, run->nrejects, t.replayed, t.failed);
    json_array_append_new(logs, json_string(line));
    if (run->rejectRefused) {
        char note[512];
        snprintf(note, sizeof(note), "%d rejected reading(s) could not be kept: %s",
                 run->rejectRefused, run->rejectError);
        json_array_append_new(logs, json_string(note));
    }
    if (t.failed || run->rejectFailures) {
        if (run->tablesGone) tablesetLost(run->ctx->tables);
        if (run->rejectFailures) json_array_append_new(logs, json_string(run->rejectError));
        snprintf(err, sizeof(err), "%zu device row(s) and %d rejected reading(s) not committed",
                 t.failed, run->rejectFailures);
        logError("EnvironmentEventTrigger: %s (the host will retry the batch)", err);
        answer(res, 500, logs, err);
        json_decref(changed);
        return;
    }
    if (run->ctx->s->historyEnabled) {
        /* history rows are written with the device rows (commit.c, history.h) */
        snprintf(line, sizeof(line), "history: %zu rows written, %zu late readings", t.historyRows,
                 t.historyLate);
        json_array_append_new(logs, json_string(line));
    }
    snprintf(summary, summarylen, "%s (%zu history rows)", line, t.historyRows);
    /* The rows are safe: a failed push is logged inside and does not fail the invocation. */
    if (json_array_size(changed)) livepushDevices(changed);
    json_decref(changed);
    answer(res, 200, logs, NULL);
}

void fnEnvironmentEventTrigger(const fnContext *ctx, const serverRequest *req,
                               serverResponse *res) {
    batchRun run;
    /* the phases, for the timing line (tests/bench/run.mjs prints their medians) */
    struct timespec t0, tDecoded, tFolded, tCommitted, tAnswered;
    char summary[512] = "";
    json_t *logs = json_array();
    memset(&run, 0, sizeof(run));
    run.ctx = ctx;
    pthread_mutex_init(&run.lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (admit(&run, req, res, logs) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &tDecoded);
        if (prepare(&run, res, logs) != 0) goto out;
        clock_gettime(CLOCK_MONOTONIC, &tFolded);
        /* The device rows in transactions (one device at a time under contention), each
         * device's history rows written before the row that records them; then the rejected
         * readings' rows. */
        commitDevices(ctx->s, run.works, run.nworks);
        keepRejects(&run);
        clock_gettime(CLOCK_MONOTONIC, &tCommitted);
        conclude(&run, res, logs, summary, sizeof(summary));
    }
out:
    freeRun(&run);
    if (summary[0]) {
        clock_gettime(CLOCK_MONOTONIC, &tAnswered);
        logInfo("%s; %.2f ms to receive, %.2f ms queued, %.2f ms to decode, %.2f ms to fold, %.2f "
                "ms to commit, %.2f ms to answer",
                summary, req->receiveMs, req->queuedMs, msBetween(&t0, &tDecoded),
                msBetween(&tDecoded, &tFolded), msBetween(&tFolded, &tCommitted),
                msBetween(&tCommitted, &tAnswered));
    }
}
