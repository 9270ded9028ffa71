/* history: the history table's keys and its transaction writer (see history.h). */
#include "history.h"

#include "crypto.h"
#include "invocation.h"
#include "log.h"
#include "table.h"
#include "tablebatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const metric_props[METRIC_COUNT] = {"Celsius", "Humidity", "hPa", "Light"};

/* Azure's Query Entities allows at most 15 discrete comparisons in one $filter ("Querying tables
 * and entities", learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities, read
 * 2026-12-02): one for the PartitionKey, 14 RowKeys. */
#define LOOKUP_KEYS 14
#define LOOKUP_FILTER_MAX 8192
/* Rounds of "insert, find what exists" for one hour's rows before giving up (the host retries). */
#define CONFLICT_ROUNDS 8

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
    const historyReading *v;
    int state; /* 0 to write, 1 written, 2 there already */
} row;

static json_t *row_props(const row *w) {
    char when[40];
    json_t *p = json_object();
    if (!p) return NULL;
    tableSetString(p, "DeviceId", w->v->device);
    invocationFormatTime(w->v->enqueuedMs, when, sizeof(when));
    tableSetDateTime(p, "Time", when);
    for (int m = 0; m < METRIC_COUNT; m++)
        if (w->v->r->has[m]) tableSetDouble(p, metric_props[m], w->v->r->value[m]);
    tableSetString(p, "Partition", w->v->partition ? w->v->partition : "");
    tableSetInt64(p, "SequenceNumber", w->v->seq);
    return p;
}

static int by_key(const void *a, const void *b) {
    const row *x = a, *y = b;
    int c = strcmp(x->pk, y->pk);
    return c ? c : strcmp(x->rk, y->rk);
}

typedef struct lookup {
    row **rows;
    size_t n;
} lookup;

static int mark_existing(json_t *e, void *ctx) {
    lookup *l = ctx;
    const char *rk = json_string_value(json_object_get(e, "RowKey"));
    for (size_t i = 0; rk && i < l->n; i++)
        if (strcmp(l->rows[i]->rk, rk) == 0) l->rows[i]->state = 2;
    return 0;
}

/* Finds which of rows (one PartitionKey) exist and marks them. Returns 0 or -1 with err. */
static int find_existing(const storageAccount *a, const char *table, row **rows, size_t n,
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
        while (i + take < n && take < LOOKUP_KEYS) {
            if (historyQuote(rows[i + take]->rk, lit, sizeof(lit)) != 0) break;
            size_t need = strlen(lit) + 16;
            if (take && len + need + 2 > LOOKUP_FILTER_MAX) break;
            len += (size_t)snprintf(filter + len, LOOKUP_FILTER_MAX - len, "%sRowKey eq %s",
                                    take ? " or " : "", lit);
            take++;
        }
        snprintf(filter + len, LOOKUP_FILTER_MAX - len, ")");
        lookup l = {rows + i, take};
        tableResult r;
        st->lookups++;
        if (tableQuerySelect(a, table, filter, "RowKey", mark_existing, &l, &r) != TABLE_OK) {
            snprintf(err, errlen, "history: finding rows already written: %s", r.message);
            goto out;
        }
        i += take;
    }
    rc = 0;
out:
    free(filter);
    return rc;
}

/* Writes rows[0..n) (one PartitionKey). Returns 0 or -1 with err. */
static int write_hour(const storageAccount *a, const char *table, row *rows, size_t n,
                      historyStats *st, char *err, size_t errlen) {
    row *sent[TABLEBATCH_MAX_OPS];
    char why[256];
    int rounds = 0;
    size_t i = 0;
    while (i < n) {
        tableBatch *b = tableBatchNew(a, table, rows[i].pk, 0, why, sizeof(why));
        size_t nsent = 0, j = i;
        if (!b) {
            snprintf(err, errlen, "history: %s", why);
            return -1;
        }
        for (; j < n; j++) {
            if (rows[j].state) continue;
            json_t *p = row_props(&rows[j]);
            int add = p ? tableBatchAdd(b, TABLEBATCH_INSERT, rows[j].rk, p, NULL, why, sizeof(why))
                        : TABLEBATCH_INVALID;
            json_decref(p);
            if (add == TABLEBATCH_FULL) break;
            if (add != TABLEBATCH_ADDED) {
                snprintf(err, errlen, "history: row %s %s: %s", rows[j].pk, rows[j].rk,
                         p ? why : "out of memory");
                tableBatchFree(b);
                return -1;
            }
            sent[nsent++] = &rows[j];
        }
        tableBatchResult res;
        int rc = tableBatchSubmit(a, b, &res);
        tableBatchFree(b);
        if (nsent) st->transactions++;
        if (rc == TABLE_OK) {
            for (size_t k = 0; k < nsent; k++)
                sent[k]->state = 1;
            st->written += nsent;
            i = j;
            continue;
        }
        if (rc != TABLE_CONFLICT || res.unknown || ++rounds > CONFLICT_ROUNDS) {
            snprintf(err, errlen, "history: transaction of %zu rows in %s: %ld %s %s", nsent,
                     rows[i].pk, res.status, res.code, res.message);
            return -1;
        }
        /* A replay: nothing of this transaction was applied; find which rows exist, skip them. */
        if (find_existing(a, table, sent, nsent, st, err, errlen) != 0) return -1;
        for (size_t k = 0; k < nsent; k++)
            st->existed += sent[k]->state == 2;
    }
    return 0;
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
        if (historyRowKey(&v[i], rows[m].rk, sizeof(rows[m].rk)) != 0) {
            snprintf(err, errlen, "history: row key of device '%.64s' too long", v[i].device);
            goto out;
        }
        m++;
    }
    /* Sorted: one hour's rows together, and the same split into transactions on every delivery
     * of the same readings. Two readings with one key (an event delivered twice in one batch)
     * are one row. */
    qsort(rows, m, sizeof(row), by_key);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || by_key(&rows[u - 1], &rows[i]) != 0) rows[u++] = rows[i];
    for (size_t i = 0; i < u;) {
        size_t j = i;
        while (j < u && strcmp(rows[j].pk, rows[i].pk) == 0)
            j++;
        if (write_hour(a, table, rows + i, j - i, st, err, errlen) != 0) goto out;
        i = j;
    }
    rc = 0;
out:
    free(rows);
    return rc;
}
