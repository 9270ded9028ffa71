/* invocation: decodes the Functions host's {Data, Metadata} payload for an Event Hubs batch in
 * all its encodings, and builds the {Outputs, Logs, ReturnValue} answer. */
#include "invocation.h"

#include "crypto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EVENTS 100000

/* The host encodes array values a second time: accept an array, or a string holding one.
 * Returns a new reference, or NULL when v is neither. */
static json_t *unwrapArray(json_t *v) {
    if (json_is_array(v)) return json_incref(v);
    if (json_is_string(v)) {
        json_t *a = json_loadb(json_string_value(v), json_string_length(v),
                               JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (json_is_array(a)) return a;
        json_decref(a);
    }
    return NULL;
}

static int isContainer(const json_t *j) { return json_is_object(j) || json_is_array(j); }

/* Parses JSON text that must be an object or an array. \u0000 inside strings is allowed: a NUL
 * in a field the handler never reads must not reject the reading. NULL when it is neither. */
static json_t *loadContainer(const char *s, size_t n) {
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (isContainer(j)) return j;
    json_decref(j);
    return NULL;
}

/* Decodes one element of the events array into e. The element's text is borrowed: the caller
 * keeps the array alive. Returns 0 or -1 (OOM). */
static int decodeEvent(json_t *el, hostEvent *e) {
    if (json_is_string(el)) {
        const char *s = json_string_value(el);
        size_t n = json_string_length(el);
        if (memchr(s, '\0', n)) {
            /* Not JSON text (JSON text holds no raw NUL): kept escaped, so that it stays
             * readable and whole in the rejected table. */
            e->rawOwned = json_dumps(el, JSON_ENCODE_ANY);
            if (!e->rawOwned) return -1;
            e->raw = e->rawOwned;
            e->rawlen = strlen(e->rawOwned);
            return 0;
        }
        e->raw = s;
        e->rawlen = n;
        e->body = loadContainer(s, n);
        if (!e->body) {
            /* dataType binary: base64 of the body. */
            size_t blen = 0;
            unsigned char *bytes = cryptoBase64Decode(s, n, &blen);
            json_t *b = bytes ? loadContainer((char *)bytes, blen) : NULL;
            if (b && !memchr(bytes, '\0', blen)) {
                e->body = b;
                e->rawOwned = (char *)bytes;
                e->raw = e->rawOwned;
                e->rawlen = blen;
                return 0;
            }
            json_decref(b);
            free(bytes);
        }
        return 0;
    }
    e->body = json_incref(el);
    e->rawOwned = json_dumps(el, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!e->rawOwned) return -1;
    e->raw = e->rawOwned;
    e->rawlen = strlen(e->rawOwned);
    return 0;
}

/* After a failed decode: the partition and the sequence range, as far as the metadata can be
 * read, for the quarantine record. */
static void describeFailed(hostBatch *b) {
    json_t *meta = json_object_get(b->root, "Metadata");
    json_t *ctx = json_object_get(meta, "TriggerPartitionContext");
    if (!ctx) ctx = json_object_get(meta, "PartitionContext");
    json_t *pid = json_object_get(ctx, "PartitionId");
    if (json_is_string(pid) && json_string_length(pid) < sizeof(b->partition) &&
        strlen(json_string_value(pid)) == json_string_length(pid))
        snprintf(b->partition, sizeof(b->partition), "%s", json_string_value(pid));
    json_t *seqs = unwrapArray(json_object_get(meta, "SequenceNumberArray"));
    size_t i;
    json_t *v;
    json_array_foreach(seqs, i, v) {
        if (!json_is_integer(v)) continue;
        int64_t n = (int64_t)json_integer_value(v);
        if (!b->hasSeqRange || n < b->seqFirst) b->seqFirst = n;
        if (!b->hasSeqRange || n > b->seqLast) b->seqLast = n;
        b->hasSeqRange = 1;
    }
    json_decref(seqs);
}

static json_t *metadataArray(json_t *meta, const char *name, size_t count, int *bad) {
    json_t *v = json_object_get(meta, name);
    if (!v || json_is_null(v)) return NULL;
    json_t *a = unwrapArray(v);
    if (!a || json_array_size(a) != count) {
        json_decref(a);
        *bad = 1;
        return NULL;
    }
    return a;
}

/* One string of the partition context: absent or null leaves *out NULL; anything but a string of
 * at most 1024 bytes without NUL is an error. */
static int contextString(json_t *ctx, const char *name, const char **out, char *err,
                         size_t errlen) {
    json_t *v = json_object_get(ctx, name);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || json_string_length(v) > 1024 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "'%s' must be a string of at most 1024 bytes", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Where the batch comes from. The Event Hubs extension puts the same TriggerPartitionContext
 * (FullyQualifiedNamespace, EventHubName, ConsumerGroup, PartitionId) under both
 * "TriggerPartitionContext" and "PartitionContext" (Azure/azure-sdk-for-net,
 * sdk/eventhub/Microsoft.Azure.WebJobs.Extensions.EventHubs/src/Triggers/
 * EventHubTriggerBindingStrategy.cs, GetBindingData; Config/TriggerPartitionContext.cs at
 * ebb3eedf0db3c1096ba3ecee327f00e5cd5d07a0); older versions send only PartitionContext. */
static int readPartitionContext(json_t *meta, hostBatch *b, char *err, size_t errlen) {
    json_t *ctx = json_object_get(meta, "TriggerPartitionContext");
    if (!json_is_object(ctx)) ctx = json_object_get(meta, "PartitionContext");
    const char *pid;
    if (contextString(ctx, "PartitionId", &pid, err, errlen) ||
        contextString(ctx, "FullyQualifiedNamespace", &b->eventHubNamespace, err, errlen) ||
        contextString(ctx, "EventHubName", &b->eventHubName, err, errlen))
        return -1;
    if (pid && strlen(pid) >= sizeof(b->partition)) {
        snprintf(err, errlen, "'PartitionId' must be a short string");
        return -1;
    }
    if (pid) snprintf(b->partition, sizeof(b->partition), "%s", pid);
    return 0;
}

/* SequenceNumberArray: an array, or a string holding one, with one entry per event; NULL in
 * *out when the host sent none. */
static int sequenceArray(json_t *meta, size_t count, json_t **out, char *err, size_t errlen) {
    json_t *v = json_object_get(meta, "SequenceNumberArray");
    json_error_t je;
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_array(v)) {
        *out = json_incref(v);
    } else if (json_is_string(v)) {
        *out = json_loadb(json_string_value(v), json_string_length(v), JSON_DECODE_ANY, &je);
        if (!*out && json_error_code(&je) == json_error_numeric_overflow) {
            snprintf(err, errlen, "'SequenceNumberArray' holds a number beyond the 64-bit range");
            return -1;
        }
    }
    if (!json_is_array(*out) || json_array_size(*out) != count) {
        json_decref(*out);
        *out = NULL;
        snprintf(err, errlen, "metadata arrays must be arrays with one entry per event (%zu)",
                 count);
        return -1;
    }
    return 0;
}

/* One sequence number, exactly: an integer or a string of decimal digits, 0 to INT64_MAX (Event
 * Hubs numbers from 0; EventData.SequenceNumber is a long). Null or absent: the event has none.
 * Anything else (negative, fractional, beyond the range, text) is an error, never a clamped
 * value, so that no watermark is ever pinned at a value no event carries. */
static int sequenceNumber(json_t *s, size_t i, hostEvent *e, char *err, size_t errlen) {
    if (!s || json_is_null(s)) return 0;
    if (json_is_integer(s) && json_integer_value(s) >= 0) {
        e->hasSeq = 1;
        e->seq = (int64_t)json_integer_value(s);
        return 0;
    }
    if (json_is_string(s) && json_string_length(s) > 0) {
        const char *p = json_string_value(s);
        size_t n = json_string_length(s), k = 0, first;
        uint64_t v = 0;
        while (k < n && p[k] == '0')
            k++;
        for (first = k; k < n && k - first < 19 && p[k] >= '0' && p[k] <= '9'; k++)
            v = v * 10 + (uint64_t)(p[k] - '0'); /* 19 digits fit in 64 bits unsigned */
        if (k == n && v <= (uint64_t)INT64_MAX) {
            e->hasSeq = 1;
            e->seq = (int64_t)v;
            return 0;
        }
    }
    snprintf(err, errlen,
             "'SequenceNumberArray' must hold integers from 0 to 9223372036854775807 (entry %zu "
             "does not)",
             i);
    return -1;
}

/* Parses the body and finds the events' array in Data. Returns 0 with *events set (a new
 * reference, caller frees), or -1 with err set. */
static int findEvents(const char *body, size_t len, hostBatch *b, json_t **events, char *err,
                      size_t errlen) {
    json_error_t je;
    /* NUL characters (\u0000) are allowed here so that one event body holding one fails alone
     * (as "not JSON"), not the whole batch; strings the handler uses as text are checked. */
    b->root = json_loadb(body, len, JSON_ALLOW_NUL, &je);
    if (!b->root) {
        snprintf(err, errlen, "request body is not valid JSON: %s (line %d)", je.text, je.line);
        return -1;
    }
    json_t *data = json_object_get(b->root, "Data");
    if (!json_is_object(data)) {
        snprintf(err, errlen, "request has no 'Data' object");
        return -1;
    }
    /* The trigger's binding is named "events" in function.json; a single other name is taken
     * too, so a renamed binding still works. */
    json_t *ev = json_object_get(data, "events");
    if (!ev && json_object_size(data) == 1) ev = json_object_iter_value(json_object_iter(data));
    if (!ev) {
        snprintf(err, errlen, "'Data' has no 'events' binding");
        return -1;
    }
    *events = unwrapArray(ev);
    if (!*events) {
        snprintf(err, errlen, "'Data.events' must be an array (or a JSON string holding one)");
        return -1;
    }
    /* The events' texts are borrowed from the decoded array from here on: the (up to several
     * MB) string the host wrapped them in is no longer needed. */
    if (json_is_string(ev)) json_object_clear(data);
    b->count = json_array_size(*events);
    if (b->count > MAX_EVENTS) {
        snprintf(err, errlen, "too many events in one batch (%zu)", b->count);
        return -1;
    }
    return 0;
}

/* Widens the batch's sequence-number range by event e, or marks the batch as not all numbered. */
static void noteSequence(hostBatch *b, const hostEvent *e) {
    if (e->hasSeq) {
        if (!b->hasSeqRange || e->seq < b->seqFirst) b->seqFirst = e->seq;
        if (!b->hasSeqRange || e->seq > b->seqLast) b->seqLast = e->seq;
        b->hasSeqRange = 1;
    } else {
        b->allSeq = 0;
    }
}

/* Event i's enqueued time (from times) and device id (from its system properties, decoded in
 * place when the host sent them as a string). */
static void eventMetadata(hostBatch *b, json_t *times, size_t i, hostEvent *e) {
    json_t *t = json_array_get(times, i);
    if (json_is_string(t)) {
        int64_t ms = invocationParseTime(json_string_value(t));
        e->enqueuedMs = ms > 0 ? ms : 0;
    }
    json_t *sp = json_array_get(b->sysProps, i);
    if (json_is_string(sp)) {
        /* an element encoded once more */
        json_t *o = json_loadb(json_string_value(sp), json_string_length(sp), JSON_ALLOW_NUL, NULL);
        if (json_is_object(o))
            json_array_set_new(b->sysProps, i, o), sp = o;
        else
            json_decref(o);
    }
    json_t *id = json_object_get(sp, "iothub-connection-device-id");
    if (json_is_string(id) && json_string_length(id) > 0) {
        e->deviceId = json_string_value(id);
        /* an id with a NUL inside names no row: flagged, the reading is rejected */
        e->badDeviceId = strlen(e->deviceId) != json_string_length(id);
    }
}

/* Frees a batch that failed to decode, keeping what describes it in the log: the partition and
 * the sequence-number range. */
static void keepFailedContext(hostBatch *b) {
    char partition[sizeof(b->partition)];
    int has = 0;
    int64_t first = 0, last = 0;
    if (b->root) {
        describeFailed(b);
        has = b->hasSeqRange, first = b->seqFirst, last = b->seqLast;
    }
    memcpy(partition, b->partition, sizeof(partition));
    invocationBatchFree(b);
    memcpy(b->partition, partition, sizeof(partition));
    b->hasSeqRange = has, b->seqFirst = first, b->seqLast = last;
}

int invocationDecodeBatch(const char *body, size_t len, hostBatch *b, char *err, size_t errlen) {
    json_t *events = NULL, *seqs = NULL, *times = NULL;
    int rc = -1, bad = 0;
    memset(b, 0, sizeof(*b));

    if (findEvents(body, len, b, &events, err, errlen) != 0) goto out;
    json_t *meta = json_object_get(b->root, "Metadata");
    if (meta && !json_is_null(meta) && !json_is_object(meta)) {
        snprintf(err, errlen, "'Metadata' must be an object");
        goto out;
    }
    if (readPartitionContext(meta, b, err, errlen) != 0) goto out;
    if (sequenceArray(meta, b->count, &seqs, err, errlen) != 0) goto out;
    times = metadataArray(meta, "EnqueuedTimeUtcArray", b->count, &bad);
    b->sysProps = metadataArray(meta, "SystemPropertiesArray", b->count, &bad);
    if (bad) {
        snprintf(err, errlen, "metadata arrays must be arrays with one entry per event (%zu)",
                 b->count);
        goto out;
    }

    b->events = calloc(b->count ? b->count : 1, sizeof(*b->events));
    if (!b->events) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    b->allSeq = 1;
    for (size_t i = 0; i < b->count; i++) {
        hostEvent *e = &b->events[i];
        if (decodeEvent(json_array_get(events, i), e) != 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (sequenceNumber(json_array_get(seqs, i), i, e, err, errlen) != 0) goto out;
        noteSequence(b, e);
        eventMetadata(b, times, i, e);
    }
    b->eventsArr = events;
    events = NULL;
    rc = 0;
out:
    json_decref(events);
    json_decref(seqs);
    json_decref(times);
    if (rc != 0) keepFailedContext(b);
    return rc;
}

void invocationBatchFree(hostBatch *b) {
    for (size_t i = 0; b->events && i < b->count; i++) {
        json_decref(b->events[i].body);
        free(b->events[i].rawOwned);
    }
    free(b->events);
    json_decref(b->eventsArr);
    json_decref(b->sysProps);
    json_decref(b->root);
    memset(b, 0, sizeof(*b));
}

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p)) return -1;
        v = v * 10 + (*(*p)++ - '0');
    }
    *out = v;
    return 0;
}

int64_t invocationParseTime(const char *s) {
    int Y, M, D, h, m, sec, ms = 0;
    const char *p = s;
    if (!s || digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
        digits(&p, 2, &D) || (*p != 'T' && *p != ' '))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3) ms = ms * 10 + (*p - '0');
            n++, p++;
        }
        if (n == 0) return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (*p == 'Z')
        p++;
    else if (strcmp(p, "+00:00") == 0)
        p += 6;
    if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -1;
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t < 0) return -1;
    return (int64_t)t * 1000 + ms;
}

void invocationFormatTime(int64_t ms, char *out, size_t outlen) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03dZ", base, (int)(ms % 1000));
}

char *invocationAnswer(json_t *logs, const char *error) {
    json_t *a =
        json_pack("{s:{},s:o,s:n}", "Outputs", "Logs", logs ? logs : json_array(), "ReturnValue");
    if (a && error) json_object_set_new(a, "error", json_string(error));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}
