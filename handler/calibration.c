/* calibration: the per-device calibration cache, loaded lazily from the Calibration table (absent
 * rows cached too) and expired after a lifetime so that changes are picked up without a restart. */
#include "calibration.h"

#include "buf.h"
#include "dict.h"
#include "escape.h"
#include "fanout.h"
#include "log.h"
#include "table.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Azure allows at most 15 comparisons in one $filter: the PartitionKey and 14 RowKeys
 * ("Querying tables and entities", Microsoft Learn, read 2026-12-02). A query is also split so
 * that its $filter, percent-encoded as it goes into the URL, stays within FILTER_URL_MAX bytes:
 * 14 ids of 125 quotes each would need 10.5 KB, past the 8 KiB URL the table module builds.
 * One id alone (at most 512 UTF-16 units: 4.6 KB encoded at worst) always fits. */
#define IDS_PER_QUERY 14
#define FILTER_URL_MAX 4096
#define CACHE_MAX 100000

typedef struct entry {
    calibration cal;
    time_t loaded;
    char *refused; /* why the store refuses to read this device's row (owned), or NULL */
} entry;

static void freeEntry(void *p) {
    entry *e = p;
    if (e) free(e->refused);
    free(e);
}

static const settings *cfg;
static dict cache;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int calibrationInit(const settings *s) {
    cfg = s;
    return dictInit(&cache, 1024, freeEntry);
}

void calibrationShutdown(void) { dictFree(&cache); }

static int fresh(const entry *e, time_t now) {
    return e && now - e->loaded < cfg->calibrationCacheSeconds;
}

typedef struct loaded {
    dict *found; /* id -> entry */
    char err[160];
    int oom; /* a row could not be kept: the answer is incomplete */
} loaded;

static int onRow(json_t *row, void *ctx) {
    loaded *l = ctx;
    const char *id = json_string_value(json_object_get(row, "RowKey"));
    entry *e = calloc(1, sizeof(*e));
    if (!id || !e) {
        l->oom |= id != NULL;
        free(e);
        return 0;
    }
    if (telemetryCalibrationFromRow(row, &e->cal, l->err, sizeof(l->err)) != 0) {
        /* A broken row is logged and treated as no calibration, rather than blocking a device. */
        logWarn("calibration row for device '%s' ignored: %s", id, l->err);
        telemetryIdentity(&e->cal);
        l->err[0] = '\0';
    }
    if (dictSet(l->found, id, e) != 0) l->oom = 1; /* e freed */
    return 0;
}

/* Caches the entries of ids: found rows, absent ones as the identity, or (refused not NULL) the
 * reason the store refuses to read them. */
static void cacheEntries(const char *const *ids, size_t n, dict *found, const char *refused,
                         time_t now) {
    pthread_mutex_lock(&lock);
    if (dictSize(&cache) > CACHE_MAX) dictClear(&cache);
    for (size_t i = 0; i < n; i++) {
        entry *e = calloc(1, sizeof(*e));
        if (!e) continue;
        entry *got = found ? dictGet(found, ids[i]) : NULL;
        if (got)
            e->cal = got->cal;
        else
            telemetryIdentity(&e->cal);
        if (refused) e->refused = strdup(refused);
        e->loaded = now;
        if (dictSet(&cache, ids[i], e) != 0) continue; /* OOM: not cached (e freed) */
    }
    pthread_mutex_unlock(&lock);
}

/* Loads the calibration of ids (one query). Returns 0; 1 when the store refuses the query every
 * time (err says why); CALIBRATION_TRANSIENT or CALIBRATION_TABLE_GONE when it failed and may
 * succeed later. */
static int load(const char *const *ids, size_t n, time_t now, char *err, size_t errlen) {
    dict found;
    buf f;
    tableResult r;
    loaded l = {.found = &found};
    int rc = CALIBRATION_TRANSIENT;
    if (dictInit(&found, 64, freeEntry)) return CALIBRATION_TRANSIENT;
    bufInit(&f, 64 * 1024);
    if (bufAppend(&f, "PartitionKey eq ", 16) || escapeODataString(&f, cfg->partitionKey, 1) ||
        bufAppend(&f, " and (", 6))
        goto out;
    for (size_t i = 0; i < n; i++)
        if ((i && bufAppend(&f, " or ", 4)) || bufAppend(&f, "RowKey eq ", 10) ||
            escapeODataString(&f, ids[i], 1))
            goto out;
    if (bufAppend(&f, ")", 1)) goto out;
    if (tableQuery(&cfg->storage, cfg->calibrationTable, f.data, onRow, &l, &r) != TABLE_OK) {
        snprintf(err, errlen, "reading %s failed: %s", cfg->calibrationTable, r.message);
        rc = r.permanent ? 1 : r.tableGone ? CALIBRATION_TABLE_GONE : CALIBRATION_TRANSIENT;
        goto out;
    }
    if (l.oom) { /* a row that was read but not kept would pass for no calibration */
        snprintf(err, errlen, "reading %s: out of memory", cfg->calibrationTable);
        goto out;
    }
    cacheEntries(ids, n, &found, NULL, now);
    rc = 0;
out:
    if (rc && !err[0]) snprintf(err, errlen, "calibration query too long");
    bufFree(&f);
    dictFree(&found);
    return rc;
}

/* Loads a group; when the store refuses the query every time, each device alone, so that only
 * the devices it refuses are marked (their readings are then rejected, not retried forever).
 * Returns 0, or a negative enum calibrationStatus (err) when a query failed and may succeed
 * later. */
static int loadGroup(const char *const *ids, size_t n, time_t now, char *err, size_t errlen) {
    int rc = load(ids, n, now, err, errlen);
    if (rc <= 0) return rc;
    for (size_t i = 0; i < n; i++) {
        if (n > 1) rc = load(&ids[i], 1, now, err, errlen);
        if (rc < 0) return rc;
        if (rc > 0) {
            char why[TELEMETRY_REASON_LEN];
            logError("calibration of device '%.200s' cannot be read: %s", ids[i], err);
            snprintf(why, sizeof(why), "calibration cannot be read: %s", err);
            cacheEntries(&ids[i], 1, NULL, why, now);
        }
    }
    err[0] = '\0';
    return 0;
}

/* The bytes " or RowKey eq '<id>'" takes in the URL once quotes are doubled and everything but
 * unreserved characters is percent-encoded. */
static size_t encodedClause(const char *id) {
    size_t n = 3 * 2 + 2 + 3 + 6 + 3 + 2 + 3 + 3 + 3; /* %20or%20RowKey%20eq%20%27...%27 */
    n += escapePercentLength(id, strlen(id));
    for (const char *q = strchr(id, '\''); q; q = strchr(q + 1, '\''))
        n += 3; /* the doubled quote's %27 */
    return n;
}

/* The queries of one calibrationPrepare, run at once (fanout). */
typedef struct group {
    const char *const *ids; /* a slice of the caller's list of ids to load */
    size_t n;
    int rc;
    char err[256];
} group;

typedef struct plan {
    group *groups;
    size_t ngroups;
    time_t now;
} plan;

static void loadTask(size_t i, void *ctx) {
    plan *p = ctx;
    group *g = &p->groups[i];
    g->rc = loadGroup(g->ids, g->n, p->now, g->err, sizeof(g->err));
}

int calibrationPrepare(const char *const *ids, size_t n, char *err, size_t errlen) {
    /* PartitionKey eq '<pk>' and ( ... ) */
    const size_t base = 64 + encodedClause(cfg->partitionKey);
    const char **need = calloc(n ? n : 1, sizeof(*need));
    group *groups = calloc(n ? n : 1, sizeof(*groups));
    dict seen;
    size_t k = 0, used = 0, ng = 0;
    time_t now = time(NULL);
    int rc = CALIBRATION_TRANSIENT;
    if (errlen) err[0] = '\0';
    if (dictInit(&seen, 64, NULL)) {
        free(need);
        free(groups);
        snprintf(err, errlen, "out of memory");
        return CALIBRATION_TRANSIENT;
    }
    if (!need || !groups) goto out;
    /* The devices not cached (each once), in queries of at most IDS_PER_QUERY ids whose URL
     * stays within FILTER_URL_MAX... */
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&lock);
        int ok = fresh(dictGet(&cache, ids[i]), now);
        pthread_mutex_unlock(&lock);
        if (ok || dictGet(&seen, ids[i])) continue;
        if (dictSet(&seen, ids[i], (void *)ids[i])) goto out;
        size_t cost = encodedClause(ids[i]);
        group *g = &groups[ng];
        if (g->n && (base + used + cost > FILTER_URL_MAX || g->n == IDS_PER_QUERY)) {
            g = &groups[++ng];
            used = 0;
        }
        if (!g->n) g->ids = need + k;
        need[k++] = ids[i];
        g->n++;
        used += cost;
    }
    if (k) ng++;
    /* ...sent at once: on a cold start (every device unknown) a batch waits for one round trip,
     * not one per query. */
    size_t most = cfg->batchConcurrency > 0 ? (size_t)cfg->batchConcurrency : 1;
    plan p = {groups, ng, now};
    fanoutRun(ng, ng < most ? ng : most, loadTask, &p);
    rc = 0;
    for (size_t i = 0; i < ng && !rc; i++)
        if (groups[i].rc) {
            rc = groups[i].rc;
            snprintf(err, errlen, "%s", groups[i].err);
        }
out:
    if (rc == CALIBRATION_TRANSIENT && errlen && !err[0]) snprintf(err, errlen, "out of memory");
    dictFree(&seen);
    free(need);
    free(groups);
    return rc;
}

int calibrationGet(const char *id, calibration *out, char *reason, size_t len) {
    int rc = 0;
    pthread_mutex_lock(&lock);
    entry *e = dictGet(&cache, id);
    if (e)
        *out = e->cal;
    else
        telemetryIdentity(out);
    if (e && e->refused) {
        snprintf(reason, len, "%s", e->refused);
        rc = -1;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
