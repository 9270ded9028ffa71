/* historyread: reading texts, minute slots and de-duplicated groups of history format v2 (see
 * historyread.h). */
#include "historyread.h"

#include "table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const metricProps[METRIC_COUNT] = {"Celsius", "Humidity", "hPa", "Light"};

/* A decimal integer of 1 to maxDigits (at most 18) digits in [p, end). Returns 0 or -1. */
static int parseInt(const char *p, const char *end, int maxDigits, int64_t *out) {
    int64_t v = 0;
    if (p == end || end - p > maxDigits || maxDigits > 18) return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

int historyreadParse(const char *text, size_t len, historyreadReading *out) {
    historyParsed p;
    /* the writer's own parser of the format (history.c), so that one parser reads it */
    if (len == 0 || len > HISTORYREAD_TEXT_MAX || historyReadingParse(text, len, &p) != 0 ||
        p.ms > HISTORY_MAX_MS || p.k > INT32_MAX)
        return -1;
    memset(out, 0, sizeof(*out));
    out->ms = p.ms;
    out->seq = p.seq;
    out->k = (int64_t)p.k;
    snprintf(out->partition, sizeof(out->partition), "%s", p.partition);
    for (int m = 0; m < METRIC_COUNT; m++) {
        out->has[m] = p.has[m] != 0;
        out->value[m] = p.value[m];
    }
    return 0;
}

long historyreadChunk(const char *readings, historyreadFn fn, void *ctx, size_t *bad) {
    long n = 0;
    const char *p = readings;
    historyreadReading r;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len && historyreadParse(p, len, &r) == 0) {
            if (fn(&r, ctx) != 0) return -1;
            n++;
        } else if (len && bad) {
            (*bad)++;
        }
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

typedef struct pendingCtx {
    historyreadFn fn;
    void *ctx;
    size_t *bad;
    long n;
} pendingCtx;

static int pendingText(const char *text, size_t len, void *ctx) {
    pendingCtx *c = ctx;
    historyreadReading r;
    if (historyreadParse(text, len, &r) != 0) {
        if (c->bad) (*c->bad)++;
        return 0;
    }
    c->n++;
    return c->fn(&r, c->ctx);
}

long historyreadPending(const json_t *row, historyreadFn fn, void *ctx, size_t *bad) {
    pendingCtx c = {fn, ctx, bad, 0};
    return historyPendingWalk(row, pendingText, &c) < 0 ? -1 : c.n;
}

/* Parses an Edm.DateTime as the table returns it (2026-11-30T10:00:10.123Z, up to 7 fraction
 * digits) into ms. Returns 0 or -1. */
static int parseTableTime(const char *s, int64_t *ms) {
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n != 19)
        return -1;
    const char *p = s + n;
    int frac = 0, digits = 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) frac = frac * 10 + (*p - '0');
    for (int i = digits; i < 3; i++)
        frac *= 10;
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    /* days from civil (Howard Hinnant's algorithm), no time zone involved */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac;
    return 0;
}

int historyreadFromV1(const json_t *row, historyreadReading *out) {
    const char *rk = json_string_value(json_object_get(row, "RowKey"));
    const char *part = json_string_value(json_object_get(row, "Partition"));
    memset(out, 0, sizeof(*out));
    if (parseTableTime(json_string_value(json_object_get(row, "Time")), &out->ms) != 0) return -1;
    out->seq = tableGetInt64(row, "SequenceNumber", -1);
    const char *sp = rk ? strrchr(rk, ' ') : NULL;
    if (out->seq < 0 || !sp || parseInt(sp + 1, sp + 1 + strlen(sp + 1), 9, &out->k) != 0)
        return -1;
    snprintf(out->partition, sizeof(out->partition), "%s", part ? part : "");
    for (int m = 0; m < METRIC_COUNT; m++) {
        json_t *v = json_object_get(row, metricProps[m]);
        if (json_is_number(v)) {
            out->has[m] = 1;
            out->value[m] = json_number_value(v);
        }
    }
    return 0;
}

int64_t historyreadHistHour(const json_t *row) { return tableGetInt64(row, "HistHour", -1); }

int historyreadSlots(const json_t *row, int64_t first, historyMinute out[60]) {
    int found = 0;
    int64_t minute[60];
    historyMinute m[60];
    memset(out, 0, 60 * sizeof(historyMinute));
    historySlotsView(row, minute, m);
    for (int i = 0; i < 60; i++) {
        int64_t u = minute[i];
        /* a kept minute has readings */
        if (u < first || u > first + 59 || m[i].count <= 0) continue;
        out[u - first] = m[i];
        found++;
    }
    return found;
}

/* A mean for the charts: two decimals without trailing zeros ("21.06", "1012", "-0.5"), or %.6g
 * past 1e9. */
static void meanTextPrintf(double v, char *out, size_t outlen) {
    if (!(fabs(v) < 1e9)) {
        snprintf(out, outlen, "%.6g", v);
        return;
    }
    snprintf(out, outlen, "%.2f", v);
    char *dot = strchr(out, '.');
    if (dot) {
        char *end = out + strlen(out) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot) *end = '\0';
    }
    if (strcmp(out, "-0") == 0) snprintf(out, outlen, "0");
}

/* Writes the decimal digits of u (no NUL) at p; returns the end. */
static char *putDigits(char *p, uint64_t u) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *p++ = tmp[--n];
    return p;
}

size_t historyreadMeanText(double v, char *out, size_t outlen) {
    /* Without printf (a first look writes some 12,000 means; printf's %.2f was a quarter of the
     * handler's time for it) when the result is certain: v*100 is computed within 1e-8 of its
     * exact value below 1e6, so when its fraction is further than 1e-6 from one half, rounding
     * it to the nearest integer gives what %.2f gives from v's exact value. Otherwise (ties,
     * large, not finite) printf's text. The same text either way (unit test against printf). */
    double x = v * 100.0;
    double frac = fabs(x - trunc(x));
    if (outlen >= 24 && fabs(v) < 1e6 && fabs(frac - 0.5) > 1e-6) {
        int64_t c = (int64_t)llround(x);
        char *p = out;
        if (c < 0) *p++ = '-';
        uint64_t u = (uint64_t)(c < 0 ? -c : c);
        p = putDigits(p, u / 100);
        unsigned f = (unsigned)(u % 100);
        if (f) {
            *p++ = '.';
            *p++ = (char)('0' + f / 10);
            if (f % 10) *p++ = (char)('0' + f % 10);
        }
        *p = '\0';
        if (c == 0) strcpy(out, "0"); /* -0.004: "0", as printf's "-0" is made "0" */
        return strlen(out);
    }
    meanTextPrintf(v, out, outlen);
    return strlen(out);
}

int historyreadLastHour(const json_t *row, int64_t nowMinute, buf *out) {
    static const char *const names[METRIC_COUNT] = {"temperature", "humidity", "pressure", "light"};
    historyMinute m[60];
    int64_t first = nowMinute - 59;
    int n = historyreadSlots(row, first, m);
    if (n == 0) return 0;
    int64_t ms = first * 60000;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    int bad = bufPrintf(out, "{\"from\":\"%04d-%02d-%02dT%02d:%02d:00.000Z\",\"minute\":[",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
    const char *sep = "";
    for (int i = 0; i < 60 && !bad; i++) {
        if (!m[i].count) continue;
        char num[3], *p = num;
        if (*sep) *p++ = ',';
        if (i >= 10) *p++ = (char)('0' + i / 10);
        *p++ = (char)('0' + i % 10);
        bad = bufAppend(out, num, (size_t)(p - num));
        sep = ",";
    }
    bad = bad || bufAppend(out, "]", 1);
    for (int k = 0; k < METRIC_COUNT && !bad; k++) {
        int any = 0;
        for (int i = 0; i < 60; i++)
            any |= m[i].count && m[i].m[k].n;
        if (!any) continue;
        bad = bufPrintf(out, ",\"%s\":[", names[k]);
        sep = "";
        for (int i = 0; i < 60 && !bad; i++) {
            if (!m[i].count) continue;
            const historyAgg *a = &m[i].m[k];
            char num[48];
            size_t nl = a->n ? historyreadMeanText(a->sum / (double)a->n, num, sizeof(num)) : 0;
            bad = (*sep && bufAppend(out, sep, 1)) ||
                  (a->n ? bufAppend(out, num, nl) : bufAppend(out, "null", 4));
            sep = ",";
        }
        bad = bad || bufAppend(out, "]", 1);
    }
    bad = bad || bufAppend(out, "}", 1);
    return bad ? -1 : n;
}

void historyreadGroupInit(historyreadGroup *g) { memset(g, 0, sizeof(*g)); }

int historyreadGroupAdd(historyreadGroup *g, const historyreadReading *r) {
    if (g->n == g->cap) {
        if (g->cap >= HISTORYREAD_GROUP_MAX) return -1;
        size_t cap = g->cap ? g->cap * 2 : 64;
        if (cap > HISTORYREAD_GROUP_MAX) cap = HISTORYREAD_GROUP_MAX;
        historyreadReading *v = realloc(g->v, cap * sizeof(*v));
        if (!v) return -1;
        g->v = v;
        g->cap = cap;
    }
    g->v[g->n++] = *r;
    return 0;
}

static int cmpInt(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

/* By identity: partition, seq, k (then time, so that the order is total). */
static int byIdentity(const void *a, const void *b) {
    const historyreadReading *x = a, *y = b;
    int c = strcmp(x->partition, y->partition);
    if (!c) c = cmpInt(x->seq, y->seq);
    if (!c) c = cmpInt(x->k, y->k);
    return c ? c : cmpInt(x->ms, y->ms);
}

/* By time, then identity. */
static int byTime(const void *a, const void *b) {
    const historyreadReading *x = a, *y = b;
    int c = cmpInt(x->ms, y->ms);
    if (c) return c;
    c = strcmp(x->partition, y->partition);
    if (!c) c = cmpInt(x->seq, y->seq);
    return c ? c : cmpInt(x->k, y->k);
}

size_t historyreadGroupSettle(historyreadGroup *g) {
    if (g->n < 2) return g->n;
    qsort(g->v, g->n, sizeof(*g->v), byIdentity);
    size_t u = 1;
    for (size_t i = 1; i < g->n; i++) {
        const historyreadReading *p = &g->v[u - 1], *r = &g->v[i];
        if (p->seq == r->seq && p->k == r->k && strcmp(p->partition, r->partition) == 0) continue;
        if (u != i) g->v[u] = *r;
        u++;
    }
    g->dropped += g->n - u;
    g->n = u;
    qsort(g->v, g->n, sizeof(*g->v), byTime);
    return g->n;
}

void historyreadGroupClear(historyreadGroup *g) { g->n = 0; }

void historyreadGroupFree(historyreadGroup *g) {
    free(g->v);
    memset(g, 0, sizeof(*g));
}
