/* history: the history table's keys and its transaction writer (see history.h). */
#include "history.h"

#include "crypto.h"
#include "dict.h"
#include "invocation.h"
#include "log.h"
#include "table.h"
#include "tablebatch.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const metricProps[METRIC_COUNT] = {"Celsius", "Humidity", "hPa", "Light"};

/* Table Storage allows at most 15 discrete comparisons in one $filter (the Azure Storage SDKs'
 * query documentation, e.g. the Python TableService: "no more than 15 discrete comparisons are
 * permitted within a $filter string", citing the REST reference "Querying Tables and Entities"):
 * one for the PartitionKey, 14 RowKeys. */
#define LOOKUP_KEYS 14
#define LOOKUP_FILTER_MAX 8192
/* The most a lookup's filter may take once percent-encoded in the query URL (table.c sends URLs
 * of up to 8 KiB, endpoint, table and continuation included). */
#define LOOKUP_URL_BUDGET 5000
/* Rounds of "insert, find what exists" for one hour's rows before giving up (the host retries). */
#define CONFLICT_ROUNDS 8
/* The summary rows this process last wrote or read, with their etags: at most this many bytes. */
#define SUMMARY_CACHE_BYTES ((size_t)64 << 20)
#define MINUTE_TEXT_MAX 512

/* A cached summary row. */
typedef struct cached {
    char etag[TABLEBATCH_ETAG_MAX]; /* "" when the row is not there */
    historySummary s;
} cached;

static pthread_mutex_t cacheLock = PTHREAD_MUTEX_INITIALIZER;
static dict cache;
static int cacheReady;

/* Copies the cached row of key into *out. Returns 1 when there was one. */
static int cacheGet(const char *key, cached *out) {
    int found = 0;
    pthread_mutex_lock(&cacheLock);
    if (cacheReady) {
        cached *c = dictTouch(&cache, key);
        if (c) {
            *out = *c;
            found = 1;
        }
    }
    pthread_mutex_unlock(&cacheLock);
    return found;
}

static void cachePut(const char *key, const cached *in) {
    cached *c = malloc(sizeof(*c));
    if (!c) return;
    *c = *in;
    pthread_mutex_lock(&cacheLock);
    if (!cacheReady && dictInit(&cache, 1024, free) == 0) {
        dictSetBudget(&cache, SUMMARY_CACHE_BYTES);
        cacheReady = 1;
    }
    /* Not kept (over the budget, or out of memory: the value is freed) only costs a read later. */
    if (!cacheReady)
        free(c);
    else if (dictSetSized(&cache, key, c, sizeof(*c)) != 0)
        logDebug("history: summary %s not cached", key);
    pthread_mutex_unlock(&cacheLock);
}

void historyForget(void) {
    pthread_mutex_lock(&cacheLock);
    if (cacheReady) dictClear(&cache);
    pthread_mutex_unlock(&cacheLock);
}

int historySummaryKey(const char *device, char *out, size_t outlen) {
    char dev[HISTORY_DEVICE_KEY_MAX + 1];
    if (historyDeviceKey(device, dev, sizeof(dev)) != 0) return -1;
    int n = snprintf(out, outlen, "%s%s", HISTORY_SUMMARY_PREFIX, dev);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static void aggAdd(historyAgg *a, double v) {
    if (!a->n || v < a->min) a->min = v;
    if (!a->n || v > a->max) a->max = v;
    a->sum += v;
    a->n++;
}

static void minuteMerge(historyMinute *into, const historyMinute *from) {
    into->count += from->count;
    for (int m = 0; m < METRIC_COUNT; m++) {
        const historyAgg *f = &from->m[m];
        historyAgg *t = &into->m[m];
        if (!f->n) continue;
        if (!t->n || f->min < t->min) t->min = f->min;
        if (!t->n || f->max > t->max) t->max = f->max;
        t->sum += f->sum;
        t->n += f->n;
    }
}

static void minuteText(const historyMinute *mi, char *out, size_t outlen) {
    size_t o = (size_t)snprintf(out, outlen, "%" PRId64, mi->count);
    for (int m = 0; m < METRIC_COUNT && o < outlen; m++) {
        const historyAgg *a = &mi->m[m];
        if (a->n)
            o += (size_t)snprintf(out + o, outlen - o, "|%" PRId64 ",%.17g,%.17g,%.17g", a->n,
                                  a->min, a->max, a->sum);
        else
            o += (size_t)snprintf(out + o, outlen - o, "|0,,,");
    }
}

static int minuteParse(const char *text, historyMinute *mi) {
    char *end;
    memset(mi, 0, sizeof(*mi));
    mi->count = strtoll(text, &end, 10);
    if (end == text || mi->count < 0) return -1;
    for (int m = 0; m < METRIC_COUNT; m++) {
        historyAgg *a = &mi->m[m];
        if (*end != '|') return -1;
        const char *p = end + 1;
        a->n = strtoll(p, &end, 10);
        if (end == p || *end != ',' || a->n < 0) return -1;
        if (a->n == 0) {
            if (strncmp(end, ",,,", 3) != 0) return -1;
            end += 3;
            continue;
        }
        double *v[3] = {&a->min, &a->max, &a->sum};
        for (int k = 0; k < 3; k++) {
            if (*end != ',') return -1;
            p = end + 1;
            *v[k] = strtod(p, &end);
            if (end == p || !isfinite(*v[k])) return -1;
        }
    }
    return *end == '\0' ? 0 : -1;
}

void historySummaryFromRow(const json_t *row, historySummary *s) {
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 60; i++) {
        char name[8];
        snprintf(name, sizeof(name), "M%02d", i);
        const char *t = json_string_value(json_object_get(row, name));
        if (!t || minuteParse(t, &s->minute[i]) != 0) {
            memset(&s->minute[i], 0, sizeof(s->minute[i]));
            continue;
        }
        s->count += s->minute[i].count;
    }
}

void historyPartitionKey(int64_t ms, char *out) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, HISTORY_PK_LEN, "h%04d%02d%02d%02d", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour);
}

int historyDeviceKey(const char *device, char *out, size_t outlen) {
    size_t len = strlen(device);
    if (len <= HISTORY_DEVICE_KEY_MAX) {
        if (len + 1 > outlen) return -1;
        memcpy(out, device, len + 1);
        return 0;
    }
    unsigned char d[CRYPTO_SHA256_LEN];
    if (outlen < 2 + 2 * CRYPTO_SHA256_LEN || cryptoSha256(device, len, d) != 0) return -1;
    out[0] = '~';
    for (size_t i = 0; i < CRYPTO_SHA256_LEN; i++)
        snprintf(out + 1 + 2 * i, 3, "%02x", d[i]);
    return 0;
}

int historyRowKey(const historyReading *v, char *out, size_t outlen) {
    char dev[HISTORY_DEVICE_KEY_MAX + 1];
    const char *part = v->partition && tableKeyValid(v->partition) ? v->partition : "p";
    if (historyDeviceKey(v->device, dev, sizeof(dev)) != 0) return -1;
    int n = snprintf(out, outlen, "%s %013" PRId64 " %s %020" PRId64 " %zu", dev, v->enqueuedMs,
                     part, v->seq, v->k);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int historyQuote(const char *s, char *out, size_t outlen) {
    size_t o = 0;
    if (outlen < 3) return -1;
    out[o++] = '\'';
    for (; *s; s++) {
        if (o + (*s == '\'' ? 2 : 1) + 2 > outlen) return -1;
        if (*s == '\'') out[o++] = '\'';
        out[o++] = *s;
    }
    out[o++] = '\'';
    out[o] = '\0';
    return 0;
}

/* One row to write. */
typedef struct row {
    char pk[HISTORY_PK_LEN];
    char rk[HISTORY_RK_MAX];
    char sk[HISTORY_RK_MAX]; /* its device's summary RowKey */
    const historyReading *v;
    int state; /* 0 to write, 1 written, 2 there already */
} row;

static json_t *rowProps(const row *w) {
    char when[40];
    json_t *p = json_object();
    if (!p) return NULL;
    tableSetString(p, "DeviceId", w->v->device);
    invocationFormatTime(w->v->enqueuedMs, when, sizeof(when));
    tableSetDateTime(p, "Time", when);
    for (int m = 0; m < METRIC_COUNT; m++)
        if (w->v->r->has[m]) tableSetDouble(p, metricProps[m], w->v->r->value[m]);
    tableSetString(p, "Partition", w->v->partition ? w->v->partition : "");
    tableSetInt64(p, "SequenceNumber", w->v->seq);
    return p;
}

static int byKey(const void *a, const void *b) {
    const row *x = a, *y = b;
    int c = strcmp(x->pk, y->pk);
    return c ? c : strcmp(x->rk, y->rk);
}

typedef struct lookup {
    row **rows;
    size_t n;
} lookup;

static int markExisting(json_t *e, void *ctx) {
    lookup *l = ctx;
    const char *rk = json_string_value(json_object_get(e, "RowKey"));
    for (size_t i = 0; rk && i < l->n; i++)
        if (strcmp(l->rows[i]->rk, rk) == 0) l->rows[i]->state = 2;
    return 0;
}

/* The length of s percent-encoded (all but letters, digits and - . _ ~ take 3 bytes). */
static size_t encodedLen(const char *s) {
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
        n += plain ? 1 : 3;
    }
    return n;
}

/* Finds which of rows (one PartitionKey) exist and marks them. Returns 0 or -1 with err. */
static int findExisting(const storageAccount *a, const char *table, row **rows, size_t n,
                        historyStats *st, char *err, size_t errlen) {
    char *filter = malloc(LOOKUP_FILTER_MAX);
    char lit[2 * HISTORY_RK_MAX + 3];
    int rc = -1;
    if (!filter) {
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n;) {
        size_t take = 0, len;
        historyQuote(rows[i]->pk, lit, sizeof(lit));
        len = (size_t)snprintf(filter, LOOKUP_FILTER_MAX, "PartitionKey eq %s and (", lit);
        size_t url = encodedLen(filter);
        while (i + take < n && take < LOOKUP_KEYS) {
            if (historyQuote(rows[i + take]->rk, lit, sizeof(lit)) != 0) break;
            size_t need = strlen(lit) + 16, eneed = encodedLen(lit) + 3 * 16;
            if (take && (len + need + 2 > LOOKUP_FILTER_MAX || url + eneed > LOOKUP_URL_BUDGET))
                break;
            url += eneed;
            len += (size_t)snprintf(filter + len, LOOKUP_FILTER_MAX - len, "%sRowKey eq %s",
                                    take ? " or " : "", lit);
            take++;
        }
        snprintf(filter + len, LOOKUP_FILTER_MAX - len, ")");
        lookup l = {rows + i, take};
        tableResult r;
        st->lookups++;
        if (tableQuerySelect(a, table, filter, "RowKey", markExisting, &l, &r) != TABLE_OK) {
            snprintf(err, errlen, "history: finding rows already written: %s", r.message);
            st->tableGone |= r.tableGone;
            goto out;
        }
        i += take;
    }
    rc = 0;
out:
    free(filter);
    return rc;
}

/* One device's summary in a transaction being built. */
typedef struct devop {
    const row *first; /* its first row (device, summary key) */
    cached now;       /* the row as known before this transaction */
    int known;        /* now came from the cache or a read (else: assumed absent) */
    historySummary delta;
    char touched[60];
} devop;

/* Reads the summary row of d into the cache. Returns 0 or -1 with err. */
static int readSummary(const storageAccount *a, const char *table, devop *d, historyStats *st,
                       char *err, size_t errlen) {
    json_t *e = NULL;
    tableResult r;
    char key[HISTORY_PK_LEN + HISTORY_RK_MAX + 2];
    cached c;
    memset(&c, 0, sizeof(c));
    st->summaryReads++;
    int rc = tableGetEntity(a, table, d->first->pk, d->first->sk, &e, &r);
    if ((rc != TABLE_OK && rc != TABLE_NOT_FOUND) || r.tableGone) {
        snprintf(err, errlen, "history: reading summary %s %s: %s", d->first->pk, d->first->sk,
                 r.message);
        st->tableGone |= r.tableGone;
        return -1;
    }
    if (rc == TABLE_OK) {
        historySummaryFromRow(e, &c.s);
        snprintf(c.etag, sizeof(c.etag), "%s", r.etag);
        json_decref(e);
    }
    snprintf(key, sizeof(key), "%s %s", d->first->pk, d->first->sk);
    cachePut(key, &c);
    return 0;
}

/* The operation that writes d's summary with its delta into b. Returns an enum
 * tableBatchAddStatus. */
static int addSummary(tableBatch *b, devop *d, char *why, size_t whylen) {
    historySummary next = d->now.s;
    char text[MINUTE_TEXT_MAX];
    json_t *p = json_object();
    if (!p) return TABLEBATCH_INVALID;
    next.count += d->delta.count;
    for (int i = 0; i < 60; i++) {
        if (!d->touched[i]) continue;
        minuteMerge(&next.minute[i], &d->delta.minute[i]);
        char name[8];
        snprintf(name, sizeof(name), "M%02d", i);
        minuteText(&next.minute[i], text, sizeof(text));
        tableSetString(p, name, text);
    }
    tableSetInt64(p, "Count", next.count);
    int exists = d->now.etag[0] != '\0';
    if (!exists) tableSetString(p, "DeviceId", d->first->v->device);
    int rc = tableBatchAdd(b, exists ? TABLEBATCH_MERGE : TABLEBATCH_INSERT, d->first->sk, p,
                           exists ? d->now.etag : NULL, why, whylen);
    json_decref(p);
    return rc;
}

/* One transaction of writeHour being built: its readings and one summary per device. */
typedef struct hourTx {
    tableBatch *b;
    row *sent[TABLEBATCH_MAX_OPS]; /* the readings in b */
    size_t nsent;
    devop *devs; /* TABLEBATCH_MAX_OPS of them; the first ndev in b */
    size_t ndev;
    int permanent; /* an operation was refused by the writer: it can never be sent */
} hourTx;

/* Starts d, the summary of first's device, from what the cache knows of its row. */
static void devopStart(devop *d, const row *first) {
    char key[HISTORY_PK_LEN + HISTORY_RK_MAX + 2];
    memset(d, 0, sizeof(*d));
    d->first = first;
    snprintf(key, sizeof(key), "%s %s", first->pk, first->sk);
    d->known = cacheGet(key, &d->now);
}

/* Adds the reading of w to d's delta. */
static void devopCount(devop *d, const row *w) {
    int64_t ms = w->v->enqueuedMs;
    int minute = (int)((ms / 60000) % 60);
    historyMinute *mi = &d->delta.minute[minute];
    d->touched[minute] = 1;
    d->delta.count++;
    mi->count++;
    for (int m = 0; m < METRIC_COUNT; m++)
        if (w->v->r->has[m]) aggAdd(&mi->m[m], w->v->r->value[m]);
}

/* Adds the rows of rows[i..n) not yet written to t while they fit with room for one summary per
 * device among them; *end is where the next transaction starts. Returns 0 or -1 with err. */
static int addReadings(hourTx *t, row *rows, size_t i, size_t n, size_t *end, char *err,
                       size_t errlen) {
    char why[256];
    size_t j = i;
    for (; j < n; j++) {
        if (rows[j].state) continue;
        int newdev = t->ndev == 0 || strcmp(t->devs[t->ndev - 1].first->sk, rows[j].sk) != 0;
        if (t->nsent + t->ndev + 1 + (newdev ? 1 : 0) > TABLEBATCH_MAX_OPS) break;
        /* a device seen earlier in this transaction (ids with spaces and digits can sort
         * between another's rows): its summary is written once, so it waits for the next */
        int again = 0;
        for (size_t k = 0; newdev && k + 1 < t->ndev && !again; k++)
            again = strcmp(t->devs[k].first->sk, rows[j].sk) == 0;
        if (again) break;
        json_t *p = rowProps(&rows[j]);
        int add = p ? tableBatchAdd(t->b, TABLEBATCH_INSERT, rows[j].rk, p, NULL, why, sizeof(why))
                    : TABLEBATCH_INVALID;
        json_decref(p);
        if (add == TABLEBATCH_FULL) break;
        if (add != TABLEBATCH_ADDED) {
            snprintf(err, errlen, "history: row %s %s: %s", rows[j].pk, rows[j].rk,
                     p ? why : "out of memory");
            t->permanent = p != NULL; /* TABLEBATCH_INVALID: it can never be sent */
            return -1;
        }
        t->sent[t->nsent++] = &rows[j];
        if (newdev) devopStart(&t->devs[t->ndev++], &rows[j]);
        devopCount(&t->devs[t->ndev - 1], &rows[j]);
    }
    *end = j;
    return 0;
}

/* Adds the summary of each device of t to t->b (pk the partition). Returns 0 or -1 with err. */
static int addSummaries(hourTx *t, const char *pk, char *err, size_t errlen) {
    char why[256];
    for (size_t k = 0; k < t->ndev; k++) {
        if (addSummary(t->b, &t->devs[k], why, sizeof(why)) != TABLEBATCH_ADDED) {
            snprintf(err, errlen, "history: summary %s %s: %s", pk, t->devs[k].first->sk, why);
            t->permanent = 1;
            return -1;
        }
    }
    return 0;
}

/* After t went through (res its answer): its rows written, its summaries into the cache with
 * their new etags. */
static void rememberWritten(hourTx *t, const tableBatchResult *res, historyStats *st) {
    char key[HISTORY_PK_LEN + HISTORY_RK_MAX + 2];
    for (size_t k = 0; k < t->nsent; k++)
        t->sent[k]->state = 1;
    st->written += t->nsent;
    for (size_t k = 0; k < t->ndev; k++) {
        devop *d = &t->devs[k];
        cached next = d->now;
        next.s.count += d->delta.count;
        for (int m = 0; m < 60; m++)
            if (d->touched[m]) minuteMerge(&next.s.minute[m], &d->delta.minute[m]);
        snprintf(next.etag, sizeof(next.etag), "%s",
                 t->nsent + k < res->count && res->ops[t->nsent + k].etag[0]
                     ? res->ops[t->nsent + k].etag
                     : "*");
        snprintf(key, sizeof(key), "%s %s", d->first->pk, d->first->sk);
        cachePut(key, &next);
    }
}

/* After t was refused at res->failed (a conflict, a changed etag or a missing row): which of its
 * rows a replay already wrote, or every summary of it read again. Returns 0 or -1 with err. */
static int recoverRefused(const storageAccount *a, const char *table, hourTx *t,
                          const tableBatchResult *res, historyStats *st, char *err, size_t errlen) {
    if ((size_t)res->failed < t->nsent) {
        /* A replay: nothing of this transaction was applied; find which rows exist. */
        if (findExisting(a, table, t->sent, t->nsent, st, err, errlen) != 0) return -1;
        for (size_t k = 0; k < t->nsent; k++)
            st->existed += t->sent[k]->state == 2;
        return 0;
    }
    /* A summary row not as this process knew it (another writer): read every summary of
     * the transaction again, not only the refused one. A refused transaction leaves
     * nothing changed on Azure, but Azurite 3.35.0 rewrites the entities a failed
     * transaction touched (new etags), so a re-read of the refused row alone would be
     * refused at the next row (seen in tests/integration/transaction.test.mjs, two
     * handler processes). Conflicts are rare: the steady state reads nothing. */
    for (size_t k = 0; k < t->ndev; k++)
        if (readSummary(a, table, &t->devs[k], st, err, errlen) != 0) return -1;
    return 0;
}

/* Writes rows[0..n) (one PartitionKey). Returns 0 or -1 with err. */
static int writeHour(const storageAccount *a, const char *table, row *rows, size_t n,
                     historyStats *st, char *err, size_t errlen) {
    hourTx t;
    char why[256];
    int rounds = 0, rc = -1;
    size_t i = 0;
    memset(&t, 0, sizeof(t));
    t.devs = calloc(TABLEBATCH_MAX_OPS, sizeof(devop));
    if (!t.devs) {
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    while (i < n) {
        size_t j = i;
        t.nsent = t.ndev = 0;
        t.b = tableBatchNew(a, table, rows[i].pk, 0, why, sizeof(why));
        if (!t.b) {
            snprintf(err, errlen, "history: %s", why);
            goto out;
        }
        if (addReadings(&t, rows, i, n, &j, err, errlen) != 0 ||
            addSummaries(&t, rows[i].pk, err, errlen) != 0) {
            st->permanent |= t.permanent;
            tableBatchFree(t.b);
            goto out;
        }
        tableBatchResult res;
        int c = tableBatchSubmit(a, t.b, &res);
        tableBatchFree(t.b);
        if (t.nsent) st->transactions++;
        if (c == TABLE_OK) {
            rememberWritten(&t, &res, st);
            i = j;
            continue;
        }
        if (res.unknown || ++rounds > CONFLICT_ROUNDS || res.failed < 0 ||
            (c != TABLE_CONFLICT && c != TABLE_PRECONDITION && c != TABLE_NOT_FOUND)) {
            snprintf(err, errlen, "history: transaction of %zu rows in %s: %ld %s %s", t.nsent,
                     rows[i].pk, res.status, res.code, res.message);
            /* the service's error code, a structured field (404 TableNotFound) */
            st->tableGone |= strcmp(res.code, "TableNotFound") == 0;
            /* A value the store refuses (400 EntityTooLarge, ...) is refused on every delivery,
             * as the device rows' transactions treat it (commit.c); a conflict past
             * CONFLICT_ROUNDS, 408, 429, 5xx or no answer may pass later. */
            st->permanent |= !res.unknown && res.failed >= 0 && res.failedStatus >= 400 &&
                             res.failedStatus < 500 && res.failedStatus != 408 &&
                             res.failedStatus != 429 && c == TABLE_ERROR;
            goto out;
        }
        if (recoverRefused(a, table, &t, &res, st, err, errlen) != 0) goto out;
    }
    rc = 0;
out:
    free(t.devs);
    return rc;
}

int historyWrite(const storageAccount *a, const char *table, const historyReading *v, size_t n,
                 historyStats *st, char *err, size_t errlen) {
    row *rows = calloc(n ? n : 1, sizeof(row));
    size_t m = 0;
    int rc = -1;
    memset(st, 0, sizeof(*st));
    if (!rows) {
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].enqueuedMs < HISTORY_MIN_MS || v[i].enqueuedMs > HISTORY_MAX_MS) {
            st->skipped++;
            continue;
        }
        rows[m].v = &v[i];
        historyPartitionKey(v[i].enqueuedMs, rows[m].pk);
        if (historyRowKey(&v[i], rows[m].rk, sizeof(rows[m].rk)) != 0 ||
            historySummaryKey(v[i].device, rows[m].sk, sizeof(rows[m].sk)) != 0) {
            snprintf(err, errlen, "history: row key of device '%.64s' too long", v[i].device);
            st->permanent = 1;
            goto out;
        }
        m++;
    }
    /* Sorted: one hour's rows together, and the same split into transactions on every delivery
     * of the same readings. Two readings with one key (an event delivered twice in one batch)
     * are one row. */
    qsort(rows, m, sizeof(row), byKey);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || byKey(&rows[u - 1], &rows[i]) != 0) rows[u++] = rows[i];
    for (size_t i = 0; i < u;) {
        size_t j = i;
        while (j < u && strcmp(rows[j].pk, rows[i].pk) == 0)
            j++;
        if (writeHour(a, table, rows + i, j - i, st, err, errlen) != 0) goto out;
        i = j;
    }
    rc = 0;
out:
    free(rows);
    return rc;
}
