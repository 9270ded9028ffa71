/* devicestate: folds a device's readings into its DeviceState row, and commits the row with
 * optimistic concurrency (If-Match etags, jittered exponential backoff), exactly once per event. */
#include "devicestate.h"

#include "crypto.h"
#include "clock.h"
#include "dict.h"
#include "invocation.h"
#include "log.h"
#include "table.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const metricProps[METRIC_COUNT] = {"Celsius", "Humidity", "hPa", "Light"};

/* What this process last wrote or read for a device: the whole row and its etag, so the steady
 * state is one merge per device per batch, without a read. */
typedef struct known {
    json_t *row;
    size_t bytes; /* rowBytes(row), kept up to date by devicestateUpdate */
    char etag[160];
} known;

static const settings *cfg;
static dict cache;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void freeKnown(void *p) {
    known *k = p;
    if (!k) return;
    json_decref(k->row);
    free(k);
}

int devicestateInit(const settings *s) {
    cfg = s;
    if (dictInit(&cache, 4096, freeKnown) != 0) return -1;
    /* Bounded by bytes, not devices: a row with long strings costs tens of KiB. The least
     * recently used rows go first; a device evicted costs one read when it reports again. */
    dictSetBudget(&cache, s->rowCacheBytes);
    return 0;
}

/* What one property of a cached row costs, near enough: jansson keeps it as a key, a hash-table
 * pair and a value (about 96 bytes together on 64-bit glibc) plus its text. */
static size_t propBytes(const char *key, const json_t *v) {
    return 96 + strlen(key) + (json_is_string(v) ? json_string_length(v) + 1 : 0);
}

/* What a cached row costs. */
static size_t rowBytes(const json_t *row) {
    size_t n = sizeof(known) + 64;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)row, key, v) n += propBytes(key, v);
    return n;
}

size_t devicestateUpdate(json_t *row, json_t *props, size_t bytes) {
    const char *key;
    json_t *v;
    if (bytes) {
        json_object_foreach(props, key, v) {
            json_t *old = json_object_get(row, key);
            bytes += propBytes(key, v) - (old ? propBytes(key, old) : 0);
        }
    }
    json_object_update(row, props);
    return bytes;
}

void devicestateCacheStats(size_t *entries, size_t *bytes, unsigned long *evicted) {
    pthread_mutex_lock(&lock);
    *entries = dictSize(&cache);
    *bytes = dictBytes(&cache);
    *evicted = dictEvicted(&cache);
    pthread_mutex_unlock(&lock);
}

void devicestateShutdown(void) { dictFree(&cache); }

void devicestateForget(const char *deviceId) {
    pthread_mutex_lock(&lock);
    dictDelete(&cache, deviceId);
    pthread_mutex_unlock(&lock);
}

int devicestateRecall(const char *id, json_t **row, char *etag, size_t etaglen, size_t *bytes) {
    pthread_mutex_lock(&lock);
    known *k = dictGet(&cache, id);
    *row = NULL;
    *bytes = 0;
    if (k) {
        /* taken, not copied: a row of a device with history carries about a hundred
         * properties, and a copy and a free per device per batch showed in the profile; the
         * commit gives it back (Remember) */
        *row = k->row;
        *bytes = k->bytes;
        k->row = NULL;
        snprintf(etag, etaglen, "%s", k->etag);
        dictDelete(&cache, id);
    }
    pthread_mutex_unlock(&lock);
    return *row != NULL;
}

void devicestateRemember(const char *id, json_t *row, const char *etag, size_t bytes) {
    known *k = calloc(1, sizeof(*k));
    if (!k || !etag || !etag[0]) {
        free(k);
        json_decref(row);
        devicestateForget(id);
        return;
    }
    k->row = row;
    snprintf(k->etag, sizeof(k->etag), "%s", etag);
    k->bytes = bytes = bytes ? bytes : rowBytes(row);
    pthread_mutex_lock(&lock);
    if (dictSetSized(&cache, id, k, bytes) != 0) {
        /* Over the whole budget, or OOM: not kept (k freed); the next commit reads the row. */
    }
    pthread_mutex_unlock(&lock);
}

void devicestateSeqProperty(const char *partition, char *out, size_t outlen) {
    size_t o = (size_t)snprintf(out, outlen, "SeqP");
    for (const char *p = partition; p && *p && o + 1 < outlen && o < 40; p++)
        out[o++] = isalnum((unsigned char)*p) ? *p : '_';
    out[o < outlen ? o : outlen - 1] = '\0';
}

static void hexDigest(const void *msg, size_t len, char *out, size_t digits) {
    static const char hex[] = "0123456789abcdef";
    unsigned char d[CRYPTO_SHA256_LEN];
    if (cryptoSha256(msg, len, d) != 0) memset(d, 0, sizeof(d)); /* OpenSSL cannot fail here */
    for (size_t i = 0; i < digits && i / 2 < sizeof(d); i++)
        out[i] = hex[i % 2 ? d[i / 2] & 15 : d[i / 2] >> 4];
    out[digits] = '\0';
}

/* The namespace and hub name are compared without regard to ASCII case, as the Event Hubs
 * checkpoint store does (it lowercases both in its blob names: Azure/azure-sdk-for-net,
 * sdk/eventhub/Azure.Messaging.EventHubs.Shared/src/BlobCheckpointStore/
 * BlobCheckpointStoreInternal.cs, GetCheckpointBlobName, at
 * 144525514ebdee845c5b1255c1dadafc42a10afd); the partition id is compared exactly. The consumer
 * group is left out on purpose: every consumer group reads the same events, so two apps (or
 * slots) reading one hub through two groups into one table must share a watermark, or they
 * would count each event twice. Lengths prefix both names, so no pair of names can be spelt as
 * another. 64 bits of SHA-256: for the few hundred hubs one row can remember, the chance that two
 * share an id is about n^2 / 2^65, below 1e-14. */
void devicestateHubId(const devicestateSource *src, char *out) {
    const char *ns = src->eventHubNamespace ? src->eventHubNamespace : "";
    const char *hub = src->eventHubName ? src->eventHubName : "";
    size_t nl = strlen(ns), hl = strlen(hub), o = 0;
    char *m = malloc(nl + hl + 48);
    if (!m) {
        memset(out, '0', DEVICESTATE_HUB_ID_LEN); /* out of memory: one shared id, never a skip */
        out[DEVICESTATE_HUB_ID_LEN] = '\0';
        return;
    }
    o += (size_t)snprintf(m, 48, "%zu:", nl);
    for (size_t i = 0; i < nl; i++)
        m[o++] = (char)tolower((unsigned char)ns[i]);
    o += (size_t)snprintf(m + o, 24, "%zu:", hl);
    for (size_t i = 0; i < hl; i++)
        m[o++] = (char)tolower((unsigned char)hub[i]);
    hexDigest(m, o, out, DEVICESTATE_HUB_ID_LEN);
    free(m);
}

int devicestateWatermarkKey(const devicestateSource *src, char *out, size_t outlen) {
    static const char hex[] = "0123456789ABCDEF";
    const char *part = src->partition ? src->partition : "";
    size_t pl = strlen(part), o = DEVICESTATE_HUB_ID_LEN + 1;
    if (outlen < o + 18) return -1;
    devicestateHubId(src, out);
    out[DEVICESTATE_HUB_ID_LEN] = '/';
    if (pl > 63) {
        /* Longer than any PartitionId the decoder lets through: named by its digest. */
        out[o++] = '~';
        hexDigest(part, pl, out + o, 16);
        return 0;
    }
    for (size_t i = 0; i < pl; i++) {
        unsigned char c = (unsigned char)part[i];
        if (o + 4 > outlen) return -1;
        if (isalnum(c) || c == '-' || c == '_' || c == '.') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

/* A decimal integer, exactly: digits only (a leading '-' when neg), within int64. */
static int parseInt64(const char *p, size_t n, int neg, int64_t *out) {
    int minus = neg && n > 0 && p[0] == '-';
    size_t i = (size_t)minus;
    uint64_t v = 0;
    if (i == n) return -1;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(p[i] - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = minus ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* An Int64 property read back (a string under odata=nometadata, or a number), exactly. */
static int int64Property(const json_t *row, const char *name, int64_t *out) {
    json_t *v = json_object_get(row, name);
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) return -1;
    return parseInt64(json_string_value(v), json_string_length(v), 1, out);
}

/* One entry of the Watermarks text; key points into the text. */
typedef struct watermark {
    const char *key;
    size_t keylen;
    int64_t seq;
} watermark;

/* Splits a Watermarks text into entries (caller frees *out). An entry that is not
 * "<key>=<digits>" is left out: forgetting a watermark can only count a replay again, never
 * skip a new event. Returns the count (0 with *out NULL when there is none). */
static size_t parseWatermarks(const char *text, watermark **out) {
    size_t n = 0, cap = 1;
    *out = NULL;
    if (!text) return 0;
    for (const char *p = text; *p; p++)
        cap += *p == ' ';
    watermark *w = calloc(cap, sizeof(*w));
    if (!w) return 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && eq - p > DEVICESTATE_HUB_ID_LEN && p[DEVICESTATE_HUB_ID_LEN] == '/' &&
            parseInt64(eq + 1, (size_t)(end - eq - 1), 0, &w[n].seq) == 0) {
            w[n].key = p;
            w[n].keylen = (size_t)(eq - p);
            n++;
        }
        p = *end ? end + 1 : end;
    }
    if (n == 0) {
        free(w);
        w = NULL;
    }
    *out = w;
    return n;
}

/* Whether a SeqP<partition> watermark of an earlier version may skip events of this source. It
 * does not say which hub it was written for, so it is honoured only while nothing says the hub
 * changed: (1) the row has no watermark of this source yet, (2) every watermark the row holds
 * names this source's hub (legacy values belong to the hub in use at the upgrade, the first one
 * this version sees), (3) it is a sequence number below INT64_MAX (the earlier version saturated
 * overflowing numbers there). And per event (fold): (4) the event was enqueued no later than the
 * row's LastSeen. An event applied before cannot be newer than the newest reading the row holds,
 * while a new hub's events, enqueued after the switch, are. Events without an enqueued time are
 * counted. The property is set to -1 (honoured by nobody) once the source's own entry exists,
 * and every one of them once the row names two hubs. */
static int legacyApplies(const json_t *row, const char *legacyName, int hasOwn, int otherHub,
                         int64_t *value) {
    int64_t v;
    if (hasOwn || otherHub || int64Property(row, legacyName, &v) != 0) return 0;
    if (v < 0 || v == INT64_MAX) return 0;
    *value = v;
    return 1;
}

/* Sets every legacy SeqP property of row that still holds a value to -1 in p; only the one named
 * when only is not NULL. */
static void retireLegacy(const json_t *row, json_t *p, const char *only) {
    const char *name;
    json_t *v;
    int64_t x;
    if (only) {
        /* one name: a lookup, not a walk over the row (a hundred properties with history) */
        if (json_object_get(row, only) && !(int64Property(row, only, &x) == 0 && x == -1))
            tableSetInt64(p, only, -1);
        return;
    }
    json_object_foreach((json_t *)row, name, v) {
        if (strncmp(name, "SeqP", 4) != 0 || strchr(name, '@')) continue;
        if (int64Property(row, name, &x) == 0 && x == -1) continue;
        tableSetInt64(p, name, -1);
    }
}

/* What a row says about one source before a fold: its watermarks and the legacy one. */
typedef struct foldBase {
    char key[256]; /* the source's watermark key */
    size_t keylen;
    char hub[DEVICESTATE_HUB_ID_LEN + 1];
    char legacyName[64];
    watermark *wm; /* the row's watermarks (owned) */
    size_t nwm;
    int hasOwn;   /* the row holds the source's own watermark, own */
    int otherHub; /* the row holds a watermark of another hub */
    int useLegacy;
    int64_t own, legacy;
    int64_t seenMs; /* the row's LastSeen, -1 when none */
} foldBase;

static void readBase(const json_t *row, const devicestateSource *src, foldBase *b) {
    (void)devicestateWatermarkKey(src, b->key, sizeof(b->key)); /* 256 bytes always suffice */
    b->keylen = strlen(b->key);
    memcpy(b->hub, b->key, DEVICESTATE_HUB_ID_LEN);
    b->hub[DEVICESTATE_HUB_ID_LEN] = '\0';
    devicestateSeqProperty(src->partition, b->legacyName, sizeof(b->legacyName));
    b->nwm =
        parseWatermarks(json_string_value(json_object_get(row, DEVICESTATE_WATERMARKS)), &b->wm);
    b->hasOwn = b->otherHub = 0;
    b->own = b->legacy = -1;
    for (size_t i = 0; i < b->nwm; i++) {
        if (b->wm[i].keylen == b->keylen && memcmp(b->wm[i].key, b->key, b->keylen) == 0) {
            b->hasOwn = 1;
            b->own = b->wm[i].seq;
        }
        if (memcmp(b->wm[i].key, b->hub, DEVICESTATE_HUB_ID_LEN) != 0) b->otherHub = 1;
    }
    b->useLegacy = legacyApplies(row, b->legacyName, b->hasOwn, b->otherHub, &b->legacy);
    const char *seen = json_string_value(json_object_get(row, "LastSeen"));
    b->seenMs = seen ? invocationParseTime(seen) : -1;
}

/* The entries a fold applies: what they add up to. */
typedef struct foldPick {
    int64_t maxSeq, valid, rejected;
    int sawSeq;
    const deviceEntry *latest; /* the latest valid reading, or NULL */
    int64_t latestMs;
} foldPick;

/* 1 when e is at or below a watermark (already applied): by the source's own (*byOwn) or by a
 * legacy one (*byLegacy). */
static int isReplay(const foldBase *b, const deviceEntry *e, int *byOwn, int *byLegacy) {
    *byOwn = e->hasSeq && b->hasOwn && e->seq <= b->own;
    *byLegacy = e->hasSeq && !*byOwn && b->useLegacy && e->seq <= b->legacy && e->enqueuedMs > 0 &&
                e->enqueuedMs <= b->seenMs;
    return *byOwn || *byLegacy;
}

/* Skips the entries at or below a watermark (counted in res), sums up the others in k. */
static void pick(const foldBase *b, const deviceEntry *e, size_t n, int64_t nowMs, foldPick *k,
                 devicestateFoldResult *res) {
    k->maxSeq = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (e[i].hasSeq) {
            int byOwn, byLegacy;
            if (isReplay(b, &e[i], &byOwn, &byLegacy)) {
                if (res->replayed == 0 || e[i].seq < res->replayFirst) res->replayFirst = e[i].seq;
                if (res->replayed == 0 || e[i].seq > res->replayLast) res->replayLast = e[i].seq;
                res->replayed++;
                res->watermark = byOwn ? b->own : b->legacy;
                res->legacy = byLegacy;
                continue;
            }
        }
        res->applied++;
        if (e[i].hasSeq) {
            k->sawSeq = 1;
            if (e[i].seq > k->maxSeq) k->maxSeq = e[i].seq;
        }
        if (!e[i].r) {
            k->rejected++;
            continue;
        }
        k->valid++;
        int64_t ms = e[i].enqueuedMs ? e[i].enqueuedMs : nowMs;
        if (!k->latest || ms >= k->latestMs) k->latest = &e[i], k->latestMs = ms;
    }
}

/* Sets the Watermarks text in p: this source's entry first, then the others from the most
 * recently written on, as many as fit: what falls off the end is what an old hub left longest
 * ago. Retires the legacy watermarks it supersedes. */
static void setWatermarks(const json_t *row, const foldBase *b, int64_t maxSeq, json_t *p,
                          devicestateFoldResult *res) {
    char text[DEVICESTATE_WATERMARKS_MAX + 1];
    int hubs2 = 0;
    int len = snprintf(text, sizeof(text), "%s=%" PRId64, b->key,
                       b->hasOwn && b->own > maxSeq ? b->own : maxSeq);
    size_t o = len > 0 && (size_t)len < sizeof(text) ? (size_t)len : 0;
    for (size_t i = 0; i < b->nwm; i++) {
        const watermark *w = &b->wm[i];
        if (w->keylen == b->keylen && memcmp(w->key, b->key, b->keylen) == 0) continue;
        char entry[DEVICESTATE_WATERMARKS_MAX + 1];
        int el = snprintf(entry, sizeof(entry), " %.*s=%" PRId64, (int)w->keylen, w->key, w->seq);
        if (res->dropped || el < 0 || o + (size_t)el > DEVICESTATE_WATERMARKS_MAX) {
            res->dropped++;
            continue;
        }
        memcpy(text + o, entry, (size_t)el + 1);
        o += (size_t)el;
        if (memcmp(w->key, b->hub, DEVICESTATE_HUB_ID_LEN) != 0) hubs2 = 1;
    }
    text[o] = '\0';
    tableSetString(p, DEVICESTATE_WATERMARKS, text);
    retireLegacy(row, p, hubs2 ? NULL : b->legacyName);
}

/* The latest reading's values, unless the row already holds a later one (another partition may
 * have delivered it first). Metrics it lacks keep their stored values. */
static void setLatest(json_t *p, const foldPick *k, int64_t seenMs, const char *defaultGeo) {
    if (!k->latest || k->latestMs < seenMs) return;
    const reading *r = k->latest->r;
    char iso[40];
    invocationFormatTime(k->latestMs, iso, sizeof(iso));
    tableSetDateTime(p, "LastSeen", iso);
    for (int m = 0; m < METRIC_COUNT; m++)
        if (r->has[m]) tableSetDouble(p, metricProps[m], r->value[m]);
    const char *geo = r->geo ? r->geo : defaultGeo;
    if (geo) tableSetString(p, "Geo", geo);
    if (r->id[0]) tableSetString(p, "LastMessageId", r->id);
}

/* Folds the applied valid entries of e into the history properties of props (historyFold).
 * Returns 0 or -1 (OOM). */
static int foldHistory(const json_t *row, const foldBase *b, const devicestateSource *src,
                       const char *deviceId, const deviceEntry *e, size_t n, json_t *props,
                       historyRows *hist) {
    historyReading *v = calloc(n ? n : 1, sizeof(*v));
    size_t m = 0;
    if (!v) return -1;
    for (size_t i = 0; i < n; i++) {
        int byOwn, byLegacy;
        if (!e[i].r || isReplay(b, &e[i], &byOwn, &byLegacy)) continue;
        v[m++] =
            (historyReading){deviceId, e[i].r, src->partition, e[i].seq, e[i].k, e[i].enqueuedMs};
    }
    int rc = m ? historyFold(row, deviceId, v, m, props, hist) : 0;
    free(v);
    return rc;
}

json_t *devicestateFold(const json_t *row, const devicestateSource *src, const char *defaultGeo,
                        const deviceEntry *e, size_t n, int64_t nowMs, devicestateFoldResult *res) {
    return devicestateFoldHistory(row, src, defaultGeo, NULL, e, n, nowMs, NULL, res);
}

json_t *devicestateFoldHistory(const json_t *row, const devicestateSource *src,
                               const char *defaultGeo, const char *deviceId, const deviceEntry *e,
                               size_t n, int64_t nowMs, historyRows *hist,
                               devicestateFoldResult *res) {
    foldBase b;
    foldPick k = {0};
    json_t *p = NULL;
    memset(res, 0, sizeof(*res));
    res->watermark = -1;
    readBase(row, src, &b);
    pick(&b, e, n, nowMs, &k, res);
    if (res->applied == 0) goto out;
    p = json_object();
    if (!p) goto out;
    tableSetInt64(p, "Count", tableGetInt64(row, "Count", 0) + k.valid);
    tableSetInt64(p, "Rejected", tableGetInt64(row, "Rejected", 0) + k.rejected);
    if (k.sawSeq) setWatermarks(row, &b, k.maxSeq, p, res);
    setLatest(p, &k, b.seenMs, defaultGeo);
    if (hist && deviceId && foldHistory(row, &b, src, deviceId, e, n, p, hist) != 0) {
        json_decref(p);
        p = NULL;
    }
out:
    free(b.wm);
    return p;
}

int devicestateBackoffMs(int base, int cap, int attempt, uint64_t *rnd) {
    long hi = base;
    for (int i = 0; i < attempt && hi < cap; i++)
        hi *= 2;
    if (hi > cap) hi = cap;
    if (hi < base) hi = base;
    /* xorshift64* */
    uint64_t x = *rnd ? *rnd : 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rnd = x;
    uint64_t r = x * 0x2545f4914f6cdd1dULL;
    return (int)(base + (long)(r % (uint64_t)(hi - base + 1)));
}

static void sleepMs(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

json_t *devicestateToJson(const json_t *row) {
    static const char *const names[METRIC_COUNT] = {"temperature", "humidity", "pressure", "light"};
    json_t *o = json_object();
    json_t *id = json_object_get(row, "RowKey");
    json_object_set_new(o, "deviceId", json_is_string(id) ? json_incref(id) : json_null());
    for (int m = 0; m < METRIC_COUNT; m++) {
        json_t *v = json_object_get(row, metricProps[m]);
        json_object_set_new(o, names[m],
                            json_is_number(v) ? json_real(json_number_value(v)) : json_null());
    }
    json_t *geo = json_object_get(row, "Geo");
    json_object_set_new(o, "geo", json_is_string(geo) ? json_incref(geo) : json_null());
    json_object_set_new(o, "count", json_integer(tableGetInt64(row, "Count", 0)));
    json_object_set_new(o, "rejected", json_integer(tableGetInt64(row, "Rejected", 0)));
    json_t *seen = json_object_get(row, "LastSeen");
    json_object_set_new(o, "lastSeen", json_is_string(seen) ? json_incref(seen) : json_null());
    json_t *msg = json_object_get(row, "LastMessageId");
    if (json_is_string(msg)) json_object_set(o, "lastMessageId", msg);
    return o;
}

enum { MODE_MERGE, MODE_INSERT, MODE_READ };

/* Logs the events a fold skipped as replays: the device, the source and the sequence range. */
static void logReplay(const deviceWork *w, const devicestateFoldResult *f) {
    logInfo("replay: device '%s', %zu event(s) of sequence %" PRId64 "..%" PRId64
            " from %s/%s partition '%s' at or below the %swatermark %" PRId64
            ": already applied, skipped",
            w->deviceId, f->replayed, f->replayFirst, f->replayLast,
            w->eventHubNamespace ? w->eventHubNamespace : "?",
            w->eventHubName ? w->eventHubName : "?", w->partition ? w->partition : "",
            f->legacy ? "legacy " : "", f->watermark);
}

/* One device's commit in progress: what devicestateCommit's rounds share. */
typedef struct commit {
    deviceWork *w;
    devicestateSource src;
    json_t *row;  /* the row as last read or written, or NULL (owned) */
    size_t bytes; /* its cache estimate (devicestateUpdate), 0 when not known */
    char etag[160];
    int fromCache; /* row is what this process remembers, not a fresh read */
    int mode;      /* MODE_MERGE, MODE_INSERT or MODE_READ (re-read first) */
    int guess;     /* the next write rests on what this process believes, not on a fresh read */
    int conflicts; /* failed writes and reads so far */
    size_t cachedReplays;
    devicestateFoldResult last; /* the fold written, logged once committed */
    tableResult r;              /* the last round trip's result */
    uint64_t rnd;
    historyRows written; /* the history rows last written for this commit's fold */
    json_t *writtenBase; /* the row their fold was made on, when they hold a frozen hour row */
} commit;

enum { STEP_AGAIN, STEP_DONE, STEP_FAIL };

static void backoff(commit *c) {
    sleepMs(devicestateBackoffMs(cfg->backoffBaseMs, cfg->backoffCapMs, c->conflicts - 1, &c->rnd));
}

/* After a write the service refused for the etag or the row's existence (412, 409, 404): re-read
 * at once when the write rested on a belief, after a wait when on a fresh read. */
static int afterConflict(commit *c) {
    c->mode = MODE_READ;
    c->conflicts++;
    if (c->guess) {
        c->guess = 0; /* a stale belief, not contention: re-read at once */
        return STEP_AGAIN;
    }
    if (c->conflicts >= cfg->backoffAttempts) return STEP_FAIL;
    backoff(c);
    return STEP_AGAIN;
}

/* After no answer or a server error: the write may or may not have landed, so re-read, after a
 * wait; a 4xx or no answer at all ends the commit. */
static int afterUnknown(commit *c) {
    c->guess = 0;
    c->mode = MODE_READ;
    if (++c->conflicts >= cfg->backoffAttempts || c->r.status == 0 ||
        (c->r.status >= 400 && c->r.status < 500))
        return STEP_FAIL;
    backoff(c);
    return STEP_AGAIN;
}

/* Reads the row afresh. Returns STEP_DONE when the round goes on with the fold (read, or no row:
 * an insert), STEP_FAIL when the table is gone, STEP_AGAIN when the read failed (retry). */
static int readRow(commit *c) {
    deviceWork *w = c->w;
    json_decref(c->row);
    c->row = NULL;
    c->bytes = 0;
    w->writes++;
    int t = tableGetEntity(&cfg->storage, cfg->deviceTable, cfg->partitionKey, w->deviceId, &c->row,
                           &c->r);
    c->fromCache = 0;
    if (t == TABLE_OK) {
        snprintf(c->etag, sizeof(c->etag), "%s", c->r.etag);
        c->mode = MODE_MERGE;
        return STEP_DONE;
    }
    if (c->r.tableGone) {
        snprintf(w->error, sizeof(w->error), "%s", c->r.message); /* no retry helps */
        w->tableGone = 1;
        return STEP_FAIL;
    }
    if (t == TABLE_NOT_FOUND) {
        c->mode = MODE_INSERT;
        return STEP_DONE;
    }
    snprintf(w->error, sizeof(w->error), "%s", c->r.message);
    return STEP_AGAIN;
}

/* Committed (or nothing to commit): the row becomes the device's state and is remembered. */
static void settle(commit *c, const char *etag) {
    deviceWork *w = c->w;
    w->ok = 1;
    if (!c->row) return;
    w->state = devicestateToJson(c->row);
    devicestateRemember(w->deviceId, c->row, etag, c->bytes);
    c->row = NULL;
}

/* Writes props (stolen) with a merge on the etag or an insert. Returns an enum tableStatus. */
static int writeRow(commit *c, json_t *props) {
    deviceWork *w = c->w;
    int t;
    w->writes++;
    if (c->mode == MODE_MERGE) {
        t = tableMerge(&cfg->storage, cfg->deviceTable, cfg->partitionKey, w->deviceId, props,
                       c->etag, &c->r);
    } else {
        json_object_set_new(props, "PartitionKey", json_string(cfg->partitionKey));
        json_object_set_new(props, "RowKey", json_string(w->deviceId));
        t = tableInsert(&cfg->storage, cfg->deviceTable, props, &c->r);
    }
    if (t == TABLE_OK) {
        if (!c->row) c->row = json_object(), c->bytes = 0;
        c->bytes = devicestateUpdate(c->row, props, c->bytes);
        json_object_set_new(c->row, "RowKey", json_string(w->deviceId));
        w->changed = 1;
        settle(c, c->r.etag);
    } else {
        snprintf(w->error, sizeof(w->error), "%s", c->r.message);
    }
    json_decref(props);
    return t;
}

/* Writes the history rows of this round's fold (hist) before the device row that records them,
 * unless the same rows were written by an earlier round. Returns 0, or -1 with w->error (and
 * w->permanent when the store refuses a row every time). */
static int writeHistory(commit *c, historyRows *hist) {
    deviceWork *w = c->w;
    if (hist->n == 0 || historyRowsEqual(hist, &c->written)) return 0;
    w->writes++;
    if (historyWriteRows(cfg, cfg->historyTable, hist->v, hist->n) == 0) {
        w->historyRows += hist->n;
        historyRowsFree(&c->written);
        json_decref(c->writtenBase);
        c->writtenBase = !historyRowsFrozen(hist) ? NULL
                         : c->row                 ? json_deep_copy(c->row)
                                                  : json_object(); /* made on no row */
        c->written = *hist;
        memset(hist, 0, sizeof(*hist));
        return 0;
    }
    for (size_t i = 0; i < hist->n; i++) {
        const historyRow *x = &hist->v[i];
        if (x->ok) continue;
        logError("device '%s': history row %s '%s' not written: %s", w->deviceId, x->pk, x->rk,
                 x->error);
        snprintf(w->error, sizeof(w->error), "history row not written: %s", x->error);
        w->permanent |= x->permanent;
        w->tableGone |= x->tableGone;
    }
    historyRowsFree(hist);
    return -1;
}

/* One round: a re-read when due, the fold, the write. Returns STEP_DONE (committed), STEP_AGAIN
 * or STEP_FAIL (give up). */
static int commitRound(commit *c) {
    deviceWork *w = c->w;
    if (c->mode == MODE_READ) {
        int step = readRow(c);
        if (step == STEP_FAIL) return STEP_FAIL;
        if (step == STEP_AGAIN) return afterUnknown(c);
    }
    devicestateFoldResult f;
    historyRows hist = {0};
    json_t *props =
        devicestateFoldHistory(c->row, &c->src, cfg->partitionKey, w->deviceId, w->entries,
                               w->count, clockWallMs(), cfg->historyEnabled ? &hist : NULL, &f);
    if ((!props && f.applied) ||
        (props && c->writtenBase &&
         historyRepair(c->writtenBase, c->row, w->deviceId, &c->written, &hist) != 0)) {
        json_decref(props);
        historyRowsFree(&hist);
        snprintf(w->error, sizeof(w->error), "out of memory folding the history");
        return STEP_FAIL;
    }
    if (props && c->guess && historyRowsFrozen(&hist)) {
        /* a frozen hour row is never made from a row this process only believes in (commit.c) */
        json_decref(props);
        historyRowsFree(&hist);
        c->fromCache = c->guess = 0;
        c->mode = MODE_READ;
        return STEP_AGAIN;
    }
    if (f.replayed && c->fromCache) {
        historyRowsFree(&hist);
        /* "Already applied" according to memory only: confirm with one read. Steady state
         * (nothing to skip) never comes here, so it stays one write per device per batch. */
        json_decref(props);
        c->cachedReplays = f.replayed;
        c->fromCache = c->guess = 0;
        c->mode = MODE_READ;
        return STEP_AGAIN;
    }
    if (c->cachedReplays > f.replayed)
        logWarn("device '%s': this process remembered %zu more event(s) as applied than "
                "storage holds (lost writes: a restore, failover or reset?); applying them",
                w->deviceId, c->cachedReplays - f.replayed);
    c->cachedReplays = 0;
    w->applied = f.applied;
    w->replayed = f.replayed;
    c->last = f; /* logged once committed, not on every try */
    if (!props) {
        historyRowsFree(&hist);
        settle(c, c->etag); /* every event was applied already (a replay) */
        return STEP_DONE;
    }
    if (writeHistory(c, &hist) != 0) {
        json_decref(props);
        return STEP_FAIL;
    }
    w->historyLate = hist.late;
    historyRowsFree(&hist);
    int t = writeRow(c, props);
    if (t == TABLE_OK) return STEP_DONE;
    if (c->r.tableGone) {
        w->tableGone = 1;
        return STEP_FAIL;
    }
    if (t == TABLE_PRECONDITION || t == TABLE_CONFLICT || t == TABLE_NOT_FOUND)
        return afterConflict(c);
    return afterUnknown(c);
}

void devicestateLogFold(const deviceWork *w, const devicestateFoldResult *f) {
    if (f->replayed) logReplay(w, f);
    if (f->dropped)
        logWarn("device '%s': %zu least recently written watermark(s) dropped to keep '%s' within "
                "%d characters",
                w->deviceId, f->dropped, DEVICESTATE_WATERMARKS, DEVICESTATE_WATERMARKS_MAX);
}

int devicestateCommit(deviceWork *w) {
    commit c = {.w = w,
                .src = {w->eventHubNamespace, w->eventHubName, w->partition},
                .guess = 1, /* the first try rests on what this process believes */
                .rnd = (uint64_t)clockWallMs() ^ (uint64_t)(uintptr_t)w};
    int step = STEP_FAIL;
    /* The row this process remembers: good enough to write on (a stale etag fails with 412), not
     * to skip events on, since storage may have lost writes it acknowledged (an account failover
     * or restore, an operator resetting rows, an emulator started afresh). */
    c.fromCache = devicestateRecall(w->deviceId, &c.row, c.etag, sizeof(c.etag), &c.bytes);
    c.mode = c.fromCache ? MODE_MERGE : MODE_INSERT;
    w->ok = w->changed = 0;
    w->writes = 0;
    w->tableGone = w->permanent = 0;

    for (int rounds = 0; rounds < cfg->backoffAttempts * 2 + 2; rounds++) {
        step = commitRound(&c);
        if (step != STEP_AGAIN) break;
    }
    if (step != STEP_DONE) {
        devicestateForget(w->deviceId);
        w->permanent |= c.r.permanent;
        if (!w->error[0])
            snprintf(w->error, sizeof(w->error), "gave up after %d attempts", c.conflicts);
    }
    if (w->ok) devicestateLogFold(w, &c.last);
    historyRowsFree(&c.written);
    json_decref(c.writtenBase);
    json_decref(c.row);
    return w->ok ? 0 : -1;
}
