/* invocation: decodes the Functions host's {Data, Metadata} payload for an Event Hubs batch in
 * all its encodings, and builds the {Outputs, Logs, ReturnValue} answer. */
#include "invocation.h"

#include "crypto.h"
#include "jsonscan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EVENTS 100000

/* An envelope's parts, as spans of the body (or of the texts decoded out of it). */
/* The Metadata members the handler reads, found in one pass over Metadata (its arrays are most
 * of the body). */
static const char *const metaNames[] = {"TriggerPartitionContext", "PartitionContext",
                                        "SequenceNumberArray", "EnqueuedTimeUtcArray",
                                        "SystemPropertiesArray"};
#define META_NAMES (sizeof(metaNames) / sizeof(metaNames[0]))

typedef struct envelope {
    jsonscanSpan root, data, meta, events;
    int hasMeta;
    jsonscanSpan metaValues[META_NAMES]; /* type JSONSCAN_NONE when absent */
    char *eventsText; /* Data.events decoded out of its string (owned), or NULL */
} envelope;

/* Fills env->metaValues (the last of duplicate keys, as jansson keeps). */
static void readMetadata(envelope *env) {
    jsonscanIter it;
    jsonscanSpan k, v;
    if (!env->hasMeta || env->meta.type != JSONSCAN_OBJECT) return;
    jsonscanOpen(&it, &env->meta);
    while (jsonscanNext(&it, &k, &v))
        for (size_t i = 0; i < META_NAMES; i++)
            if (jsonscanStringIs(&k, metaNames[i])) env->metaValues[i] = v;
}

/* A metadata value the host may encode a second time: an array, or a string holding one. Sets
 * *out to the array's span (in *text, owned by the caller, when it was a string). Returns 0, 1
 * when v is neither, or -1 when memory ran out. */
static int unwrapSpan(const jsonscanSpan *v, jsonscanSpan *out, char **text) {
    char why[96];
    *text = NULL;
    if (v->type == JSONSCAN_ARRAY) {
        *out = *v;
        return 0;
    }
    if (v->type != JSONSCAN_STRING) return 1;
    *text = malloc(v->n);
    if (!*text) return -1;
    size_t n = jsonscanString(v, *text);
    if (jsonscanCheck(*text, n, out, why, sizeof(why)) != 0 || out->type != JSONSCAN_ARRAY) {
        free(*text);
        *text = NULL;
        return 1;
    }
    return 0;
}

/* Loads a small span with jansson (what the handler reads as JSON values): NULL on failure. */
static json_t *loadSpan(const jsonscanSpan *v, json_error_t *je) {
    return json_loadb(v->s, v->n, JSON_DECODE_ANY | JSON_ALLOW_NUL, je);
}

/* The same, for a value that may be a string holding JSON (SequenceNumberArray). */
static json_t *loadUnwrapped(const jsonscanSpan *v, json_error_t *je) {
    if (v->type != JSONSCAN_STRING) return loadSpan(v, je);
    char *t = malloc(v->n);
    if (!t) return NULL;
    size_t n = jsonscanString(v, t);
    json_t *j = json_loadb(t, n, JSON_DECODE_ANY, je);
    free(t);
    return j;
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

/* Decodes one element of the events array (its span el) into e; a string's text goes to *arena
 * (moved past it). Returns 0 or -1 (OOM). */
static int decodeEvent(const jsonscanSpan *el, hostEvent *e, char **arena) {
    if (el->type == JSONSCAN_STRING) {
        char *s = *arena;
        size_t n = jsonscanString(el, s);
        *arena += n + 1;
        if (memchr(s, '\0', n)) {
            /* Not JSON text (JSON text holds no raw NUL): kept escaped, so that it stays
             * readable and whole in the rejected table. */
            json_t *str = json_stringn_nocheck(s, n);
            e->rawOwned = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
            json_decref(str);
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
    /* An object (no dataType), or any other value; a number beyond jansson's range is kept as
     * text, without a body. */
    e->body = loadSpan(el, NULL);
    e->rawOwned =
        e->body ? json_dumps(e->body, JSON_COMPACT | JSON_ENCODE_ANY) : strndup(el->s, el->n);
    if (!e->rawOwned) return -1;
    e->raw = e->rawOwned;
    e->rawlen = strlen(e->rawOwned);
    return 0;
}

/* The Metadata member name (absent, or null: 0). */
static int metaMember(const envelope *env, const char *name, jsonscanSpan *v) {
    for (size_t i = 0; i < META_NAMES; i++)
        if (strcmp(metaNames[i], name) == 0) {
            *v = env->metaValues[i];
            return v->type != JSONSCAN_NONE && v->type != JSONSCAN_NULL;
        }
    return 0;
}

/* The partition context object (a new reference), or NULL. The Event Hubs extension puts the
 * same TriggerPartitionContext (FullyQualifiedNamespace, EventHubName, ConsumerGroup,
 * PartitionId) under both "TriggerPartitionContext" and "PartitionContext"
 * (Azure/azure-sdk-for-net, sdk/eventhub/Microsoft.Azure.WebJobs.Extensions.EventHubs/src/
 * Triggers/EventHubTriggerBindingStrategy.cs, GetBindingData; Config/TriggerPartitionContext.cs
 * at ebb3eedf0db3c1096ba3ecee327f00e5cd5d07a0); older versions send only PartitionContext. */
static json_t *partitionContext(const envelope *env) {
    jsonscanSpan v;
    if (metaMember(env, "TriggerPartitionContext", &v) && v.type == JSONSCAN_OBJECT)
        return loadSpan(&v, NULL);
    if (metaMember(env, "PartitionContext", &v) && v.type == JSONSCAN_OBJECT)
        return loadSpan(&v, NULL);
    return NULL;
}

/* After a failed decode: the partition and the sequence range, as far as the metadata can be
 * read, for the quarantine record. */
static void describeFailed(const envelope *env, hostBatch *b) {
    json_t *ctx = partitionContext(env);
    json_t *pid = json_object_get(ctx, "PartitionId");
    if (json_is_string(pid) && json_string_length(pid) < sizeof(b->partition) &&
        strlen(json_string_value(pid)) == json_string_length(pid))
        snprintf(b->partition, sizeof(b->partition), "%s", json_string_value(pid));
    json_decref(ctx);
    jsonscanSpan v;
    json_t *seqs = metaMember(env, "SequenceNumberArray", &v) ? loadUnwrapped(&v, NULL) : NULL;
    size_t i;
    json_t *x;
    json_array_foreach(seqs, i, x) {
        if (!json_is_integer(x)) continue;
        int64_t n = (int64_t)json_integer_value(x);
        if (!b->hasSeqRange || n < b->seqFirst) b->seqFirst = n;
        if (!b->hasSeqRange || n > b->seqLast) b->seqLast = n;
        b->hasSeqRange = 1;
    }
    json_decref(seqs);
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

/* Where the batch comes from (see partitionContext): b->context keeps the strings. */
static int readPartitionContext(const envelope *env, hostBatch *b, char *err, size_t errlen) {
    json_t *ctx = b->context = partitionContext(env);
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
 * *out when the host sent none. Small: read with jansson, which converts the numbers. */
static int sequenceArray(const envelope *env, size_t count, json_t **out, char *err,
                         size_t errlen) {
    jsonscanSpan v;
    json_error_t je;
    *out = NULL;
    if (!metaMember(env, "SequenceNumberArray", &v)) return 0;
    if (v.type == JSONSCAN_ARRAY || v.type == JSONSCAN_STRING) {
        *out = loadUnwrapped(&v, &je);
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

/* Checks the body and finds Data's events array (env->events). Returns 0, or -1 with err set. */
static int findEvents(const char *body, size_t len, envelope *env, hostBatch *b, char *err,
                      size_t errlen) {
    char why[128];
    jsonscanSpan ev, k;
    /* NUL characters (\u0000) are allowed here so that one event body holding one fails alone
     * (as "not JSON"), not the whole batch; strings the handler uses as text are checked. */
    if (jsonscanCheck(body, len, &env->root, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "request body is not valid JSON: %s", why);
        return -1;
    }
    if (env->root.type != JSONSCAN_OBJECT && env->root.type != JSONSCAN_ARRAY) {
        snprintf(err, errlen, "request body is not valid JSON: '[' or '{' expected");
        return -1;
    }
    if (!jsonscanMember(&env->root, "Data", &env->data) || env->data.type != JSONSCAN_OBJECT) {
        snprintf(err, errlen, "request has no 'Data' object");
        return -1;
    }
    env->hasMeta = jsonscanMember(&env->root, "Metadata", &env->meta);
    readMetadata(env);
    /* The trigger's binding is named "events" in function.json; a single other name is taken
     * too, so a renamed binding still works. */
    if (!jsonscanMember(&env->data, "events", &ev)) {
        jsonscanIter it;
        int n = 0;
        jsonscanOpen(&it, &env->data);
        while (n < 2 && jsonscanNext(&it, &k, &ev))
            n++;
        if (n != 1) {
            snprintf(err, errlen, "'Data' has no 'events' binding");
            return -1;
        }
    }
    int rc = unwrapSpan(&ev, &env->events, &env->eventsText);
    if (rc != 0) {
        snprintf(err, errlen, "%s",
                 rc < 0 ? "out of memory"
                        : "'Data.events' must be an array (or a JSON string holding one)");
        return -1;
    }
    b->count = jsonscanCount(&env->events);
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

/* A metadata array with one entry per event, as a span in *out (*text owned when it was
 * decoded out of a string). Returns 0 (absent or null: out->type JSONSCAN_NONE), 1 when it is
 * not such an array, -1 on OOM. */
static int metadataArray(const envelope *env, const char *name, size_t count, jsonscanSpan *out,
                         char **text) {
    jsonscanSpan v;
    out->type = JSONSCAN_NONE;
    *text = NULL;
    if (!metaMember(env, name, &v)) return 0;
    int rc = unwrapSpan(&v, out, text);
    if (rc != 0) return rc;
    return jsonscanCount(out) == count ? 0 : 1;
}

/* Each event's enqueued time, from the EnqueuedTimeUtcArray span (or none). */
static void readTimes(hostBatch *b, const jsonscanSpan *times) {
    jsonscanIter it;
    jsonscanSpan t;
    char text[64];
    size_t i = 0;
    if (times->type == JSONSCAN_NONE) return;
    jsonscanOpen(&it, times);
    for (; i < b->count && jsonscanNext(&it, NULL, &t); i++) {
        if (t.type != JSONSCAN_STRING || t.n > sizeof(text)) continue; /* no time that long */
        jsonscanString(&t, text);
        int64_t ms = invocationParseTime(text);
        b->events[i].enqueuedMs = ms > 0 ? ms : 0;
    }
}

/* The device id in one element of SystemPropertiesArray: an object, or a string holding one
 * (tmp: room for that string's text). Decoded into *arena (moved past it). */
static void readDeviceId(const jsonscanSpan *sp, hostEvent *e, char *tmp, char **arena) {
    jsonscanSpan obj = *sp, id;
    char why[96];
    if (sp->type == JSONSCAN_STRING) {
        /* an element encoded once more */
        size_t n = jsonscanString(sp, tmp);
        if (jsonscanCheck(tmp, n, &obj, why, sizeof(why)) != 0) return;
    }
    if (!jsonscanMember(&obj, "iothub-connection-device-id", &id) || id.type != JSONSCAN_STRING ||
        id.n <= 2)
        return;
    char *s = *arena;
    size_t n = jsonscanString(&id, s);
    *arena += n + 1;
    e->deviceId = s;
    /* an id with a NUL inside names no row: flagged, the reading is rejected */
    e->badDeviceId = strlen(s) != n;
}

/* Each event's device id, from the SystemPropertiesArray span (or none): only the device id is
 * decoded, the other properties are only checked. Returns 0 or -1 (OOM). */
static int readDeviceIds(hostBatch *b, const jsonscanSpan *sys) {
    jsonscanIter it;
    jsonscanSpan sp;
    char *tmp = NULL;
    if (sys->type == JSONSCAN_NONE) return 0;
    /* every id decoded is shorter than its text within the span */
    b->ids = malloc(sys->n + 1);
    if (!b->ids) return -1;
    char *arena = b->ids;
    jsonscanOpen(&it, sys);
    for (size_t i = 0; i < b->count && jsonscanNext(&it, NULL, &sp); i++) {
        if (sp.type == JSONSCAN_STRING && !tmp && !(tmp = malloc(sys->n))) return -1;
        if (sp.type == JSONSCAN_STRING || sp.type == JSONSCAN_OBJECT)
            readDeviceId(&sp, &b->events[i], tmp, &arena);
    }
    free(tmp);
    return 0;
}

/* Frees a batch that failed to decode, keeping what describes it in the log: the partition and
 * the sequence-number range. */
static void keepFailedContext(const envelope *env, int readable, hostBatch *b) {
    char partition[sizeof(b->partition)];
    int has = 0;
    int64_t first = 0, last = 0;
    if (readable) {
        describeFailed(env, b);
        has = b->hasSeqRange, first = b->seqFirst, last = b->seqLast;
    }
    memcpy(partition, b->partition, sizeof(partition));
    invocationBatchFree(b);
    memcpy(b->partition, partition, sizeof(partition));
    b->hasSeqRange = has, b->seqFirst = first, b->seqLast = last;
}

/* The events themselves, with their sequence numbers (seqs may be NULL). */
static int decodeEvents(const envelope *env, hostBatch *b, json_t *seqs, char *err, size_t errlen) {
    jsonscanIter it;
    jsonscanSpan el;
    const jsonscanSpan *ev = &env->events;
    /* every string decoded is shorter than its text within the array */
    b->text = malloc(ev->n + 1);
    if (!b->text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *arena = b->text;
    b->allSeq = 1;
    jsonscanOpen(&it, ev);
    for (size_t i = 0; i < b->count && jsonscanNext(&it, NULL, &el); i++) {
        hostEvent *e = &b->events[i];
        if (decodeEvent(&el, e, &arena) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (sequenceNumber(json_array_get(seqs, i), i, e, err, errlen) != 0) return -1;
        noteSequence(b, e);
    }
    return 0;
}

int invocationDecodeBatch(const char *body, size_t len, hostBatch *b, char *err, size_t errlen) {
    envelope env;
    json_t *seqs = NULL;
    jsonscanSpan times, sys;
    char *timesText = NULL, *sysText = NULL;
    int rc = -1, readable = 0;
    memset(b, 0, sizeof(*b));
    memset(&env, 0, sizeof(env));

    if (findEvents(body, len, &env, b, err, errlen) != 0) goto out;
    readable = 1;
    if (env.hasMeta && env.meta.type != JSONSCAN_NULL && env.meta.type != JSONSCAN_OBJECT) {
        snprintf(err, errlen, "'Metadata' must be an object");
        goto out;
    }
    if (readPartitionContext(&env, b, err, errlen) != 0) goto out;
    if (sequenceArray(&env, b->count, &seqs, err, errlen) != 0) goto out;
    int t = metadataArray(&env, "EnqueuedTimeUtcArray", b->count, &times, &timesText);
    int s = metadataArray(&env, "SystemPropertiesArray", b->count, &sys, &sysText);
    if (t < 0 || s < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (t || s) {
        snprintf(err, errlen, "metadata arrays must be arrays with one entry per event (%zu)",
                 b->count);
        goto out;
    }

    b->events = calloc(b->count ? b->count : 1, sizeof(*b->events));
    if (!b->events) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (decodeEvents(&env, b, seqs, err, errlen) != 0) goto out;
    readTimes(b, &times);
    if (readDeviceIds(b, &sys) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(seqs);
    free(timesText);
    free(sysText);
    if (rc != 0) keepFailedContext(&env, readable, b);
    free(env.eventsText);
    return rc;
}

void invocationBatchFree(hostBatch *b) {
    for (size_t i = 0; b->events && i < b->count; i++) {
        json_decref(b->events[i].body);
        free(b->events[i].rawOwned);
    }
    free(b->events);
    free(b->text);
    free(b->ids);
    json_decref(b->context);
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
