/* devicestate: folds a device's readings into its DeviceState row, and commits the row with
 * optimistic concurrency (If-Match etags, jittered exponential backoff), exactly once per event. */
#include "devicestate.h"

#include "dict.h"
#include "invocation.h"
#include "log.h"
#include "table.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const metric_props[METRIC_COUNT] = {"Celsius", "Humidity", "hPa", "Light"};

/* What this process last wrote or read for a device: the whole row and its etag, so the steady
 * state is one merge per device per batch, without a read. */
typedef struct known {
    json_t *row;
    char etag[160];
} known;

static const settings *cfg;
static dict cache;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void free_known(void *p) {
    known *k = p;
    if (!k) return;
    json_decref(k->row);
    free(k);
}

int devicestateInit(const settings *s) {
    cfg = s;
    if (dictInit(&cache, 4096, free_known) != 0) return -1;
    /* Bounded by bytes, not devices: a row with long strings costs tens of KiB. The least
     * recently used rows go first; a device evicted costs one read when it reports again. */
    dictSetBudget(&cache, s->rowCacheBytes);
    return 0;
}

/* What a cached row costs, near enough: jansson keeps each property as a key, a hash-table pair
 * and a value (about 96 bytes together on 64-bit glibc) plus its text. */
static size_t row_bytes(const json_t *row) {
    size_t n = sizeof(known) + 64;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)row, key, v) {
        n += 96 + strlen(key);
        if (json_is_string(v)) n += json_string_length(v) + 1;
    }
    return n;
}

void devicestateCacheStats(size_t *entries, size_t *bytes, unsigned long *evicted) {
    pthread_mutex_lock(&lock);
    *entries = cache.count;
    *bytes = cache.bytes;
    *evicted = cache.evicted;
    pthread_mutex_unlock(&lock);
}

void devicestateShutdown(void) { dictFree(&cache); }

void devicestateForget(const char *deviceId) {
    pthread_mutex_lock(&lock);
    dictDelete(&cache, deviceId);
    pthread_mutex_unlock(&lock);
}

/* Copies the cached row and etag; returns 1 when the device is known. */
static int recall(const char *id, json_t **row, char *etag, size_t etaglen) {
    pthread_mutex_lock(&lock);
    known *k = dictTouch(&cache, id);
    if (k) {
        *row = json_deep_copy(k->row);
        snprintf(etag, etaglen, "%s", k->etag);
    }
    pthread_mutex_unlock(&lock);
    return k && *row;
}

/* Steals row. */
static void remember(const char *id, json_t *row, const char *etag) {
    known *k = calloc(1, sizeof(*k));
    if (!k || !etag || !etag[0]) {
        free(k);
        json_decref(row);
        devicestateForget(id);
        return;
    }
    k->row = row;
    snprintf(k->etag, sizeof(k->etag), "%s", etag);
    size_t bytes = row_bytes(row);
    pthread_mutex_lock(&lock);
    dictSetSized(&cache, id, k, bytes); /* a row over the whole budget is not kept */
    pthread_mutex_unlock(&lock);
}

void devicestateSeqProperty(const char *partition, char *out, size_t outlen) {
    size_t o = (size_t)snprintf(out, outlen, "SeqP");
    for (const char *p = partition; p && *p && o + 1 < outlen && o < 40; p++)
        out[o++] = isalnum((unsigned char)*p) ? *p : '_';
    out[o < outlen ? o : outlen - 1] = '\0';
}

json_t *devicestateFold(const json_t *row, const char *partition, const char *defaultGeo,
                        const deviceEntry *e, size_t n, int64_t nowMs, size_t *applied,
                        size_t *replayed) {
    char seqprop[64];
    devicestateSeqProperty(partition, seqprop, sizeof(seqprop));
    int64_t last = tableGetInt64(row, seqprop, -1);
    int hasLast = json_object_get(row, seqprop) != NULL;
    int64_t maxSeq = hasLast ? last : INT64_MIN, valid = 0, rejected = 0;
    int sawSeq = 0;
    const deviceEntry *latest = NULL;
    int64_t latestMs = 0;
    *applied = *replayed = 0;

    for (size_t i = 0; i < n; i++) {
        if (e[i].hasSeq && hasLast && e[i].seq <= last) {
            (*replayed)++;
            continue;
        }
        (*applied)++;
        if (e[i].hasSeq) {
            sawSeq = 1;
            if (e[i].seq > maxSeq) maxSeq = e[i].seq;
        }
        if (!e[i].r) {
            rejected++;
            continue;
        }
        valid++;
        int64_t ms = e[i].enqueuedMs ? e[i].enqueuedMs : nowMs;
        if (!latest || ms >= latestMs) latest = &e[i], latestMs = ms;
    }
    if (*applied == 0) return NULL;

    json_t *p = json_object();
    if (!p) return NULL;
    tableSetInt64(p, "Count", tableGetInt64(row, "Count", 0) + valid);
    tableSetInt64(p, "Rejected", tableGetInt64(row, "Rejected", 0) + rejected);
    if (sawSeq) tableSetInt64(p, seqprop, maxSeq);

    /* The latest reading's values, unless the row already holds a later one (another partition
     * may have delivered it first). Metrics it lacks keep their stored values. */
    const char *seen = json_string_value(json_object_get(row, "LastSeen"));
    int64_t seenMs = seen ? invocationParseTime(seen) : -1;
    if (latest && latestMs >= seenMs) {
        char iso[40];
        invocationFormatTime(latestMs, iso, sizeof(iso));
        tableSetDateTime(p, "LastSeen", iso);
        for (int m = 0; m < METRIC_COUNT; m++)
            if (latest->r->has[m]) tableSetDouble(p, metric_props[m], latest->r->value[m]);
        const char *geo = latest->r->geo ? latest->r->geo : defaultGeo;
        if (geo) tableSetString(p, "Geo", geo);
        if (latest->r->id[0]) tableSetString(p, "LastMessageId", latest->r->id);
    }
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

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *devicestateToJson(const json_t *row) {
    static const char *const names[METRIC_COUNT] = {"temperature", "humidity", "pressure", "light"};
    json_t *o = json_object();
    json_t *id = json_object_get(row, "RowKey");
    json_object_set_new(o, "deviceId", json_is_string(id) ? json_incref(id) : json_null());
    for (int m = 0; m < METRIC_COUNT; m++) {
        json_t *v = json_object_get(row, metric_props[m]);
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

int devicestateCommit(deviceWork *w) {
    json_t *row = NULL;
    char etag[160] = "";
    uint64_t rnd = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)w;
    const storageAccount *a = &cfg->storage;
    int mode = recall(w->deviceId, &row, etag, sizeof(etag)) ? MODE_MERGE : MODE_INSERT;
    int guess = 1; /* the first try rests on what this process believes, not on a fresh read */
    int conflicts = 0;
    tableResult r;
    w->ok = w->changed = 0;
    w->writes = 0;

    for (int rounds = 0; rounds < cfg->backoffAttempts * 2 + 2; rounds++) {
        if (mode == MODE_READ) {
            json_decref(row);
            row = NULL;
            w->writes++;
            int c = tableGetEntity(a, cfg->deviceTable, cfg->partitionKey, w->deviceId, &row, &r);
            if (c == TABLE_OK) {
                snprintf(etag, sizeof(etag), "%s", r.etag);
                mode = MODE_MERGE;
            } else if (c == TABLE_NOT_FOUND && strcmp(r.code, "TableNotFound") == 0) {
                snprintf(w->error, sizeof(w->error), "%s", r.message); /* no retry helps */
                break;
            } else if (c == TABLE_NOT_FOUND) {
                mode = MODE_INSERT;
            } else {
                snprintf(w->error, sizeof(w->error), "%s", r.message);
                goto retry;
            }
        }
        size_t applied, replayed;
        json_t *props = devicestateFold(row, w->partition, cfg->partitionKey, w->entries, w->count,
                                        now_ms(), &applied, &replayed);
        w->applied = applied;
        w->replayed = replayed;
        if (!props) {
            /* Every event was applied already (a replay). */
            w->ok = 1;
            if (row) {
                w->state = devicestateToJson(row);
                remember(w->deviceId, row, etag);
                row = NULL;
            }
            goto out;
        }
        int c;
        w->writes++;
        if (mode == MODE_MERGE) {
            c = tableMerge(a, cfg->deviceTable, cfg->partitionKey, w->deviceId, props, etag, &r);
        } else {
            json_object_set_new(props, "PartitionKey", json_string(cfg->partitionKey));
            json_object_set_new(props, "RowKey", json_string(w->deviceId));
            c = tableInsert(a, cfg->deviceTable, props, &r);
        }
        if (c == TABLE_OK) {
            if (!row) row = json_object();
            json_object_update(row, props);
            json_object_set_new(row, "RowKey", json_string(w->deviceId));
            json_decref(props);
            w->ok = w->changed = 1;
            w->state = devicestateToJson(row);
            remember(w->deviceId, row, r.etag);
            row = NULL;
            goto out;
        }
        json_decref(props);
        snprintf(w->error, sizeof(w->error), "%s", r.message);
        if (c == TABLE_NOT_FOUND && strcmp(r.code, "TableNotFound") == 0) break;
        if (c == TABLE_PRECONDITION || c == TABLE_CONFLICT || c == TABLE_NOT_FOUND) {
            mode = MODE_READ;
            conflicts++;
            if (guess) {
                guess = 0; /* a stale belief, not contention: re-read at once */
                continue;
            }
            if (conflicts >= cfg->backoffAttempts) break;
            sleep_ms(
                devicestateBackoffMs(cfg->backoffBaseMs, cfg->backoffCapMs, conflicts - 1, &rnd));
            continue;
        }
    retry:
        /* No answer or a server error: the write may or may not have landed, so re-read. */
        guess = 0;
        mode = MODE_READ;
        if (++conflicts >= cfg->backoffAttempts || r.status == 0 ||
            (r.status >= 400 && r.status < 500))
            break;
        sleep_ms(devicestateBackoffMs(cfg->backoffBaseMs, cfg->backoffCapMs, conflicts - 1, &rnd));
    }
    devicestateForget(w->deviceId);
    if (!w->error[0]) snprintf(w->error, sizeof(w->error), "gave up after %d attempts", conflicts);
out:
    json_decref(row);
    return w->ok ? 0 : -1;
}
