/* history: the history table's format v2: keys, reading texts, the fold into the device row and
 * the rows it yields, and their writer (see history.h). */
#include "history.h"

#include "commit.h"
#include "crypto.h"
#include "escape.h"
#include "invocation.h"
#include "table.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert((HISTORY_CHUNK) * (HISTORY_READING_MAX) <= 32768, "a chunk's Readings fit a String");

/* Property names by index: "M00".."M59", "Min00".."Min59", "P00".."P31" (no snprintf per row). */
static const char *const minuteNames[60] = {
    "M00", "M01", "M02", "M03", "M04", "M05", "M06", "M07", "M08", "M09", "M10", "M11",
    "M12", "M13", "M14", "M15", "M16", "M17", "M18", "M19", "M20", "M21", "M22", "M23",
    "M24", "M25", "M26", "M27", "M28", "M29", "M30", "M31", "M32", "M33", "M34", "M35",
    "M36", "M37", "M38", "M39", "M40", "M41", "M42", "M43", "M44", "M45", "M46", "M47",
    "M48", "M49", "M50", "M51", "M52", "M53", "M54", "M55", "M56", "M57", "M58", "M59"};
static const char *const slotNames[60] = {
    "Min00", "Min01", "Min02", "Min03", "Min04", "Min05", "Min06", "Min07", "Min08", "Min09",
    "Min10", "Min11", "Min12", "Min13", "Min14", "Min15", "Min16", "Min17", "Min18", "Min19",
    "Min20", "Min21", "Min22", "Min23", "Min24", "Min25", "Min26", "Min27", "Min28", "Min29",
    "Min30", "Min31", "Min32", "Min33", "Min34", "Min35", "Min36", "Min37", "Min38", "Min39",
    "Min40", "Min41", "Min42", "Min43", "Min44", "Min45", "Min46", "Min47", "Min48", "Min49",
    "Min50", "Min51", "Min52", "Min53", "Min54", "Min55", "Min56", "Min57", "Min58", "Min59"};
static const char *const pendingNames[HISTORY_V2_SLOTS] = {
    "P00", "P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10",
    "P11", "P12", "P13", "P14", "P15", "P16", "P17", "P18", "P19", "P20", "P21",
    "P22", "P23", "P24", "P25", "P26", "P27", "P28", "P29", "P30", "P31"};
static const char *const groupNames[HISTORY_GROUPS] = {
    "Q00", "Q01", "Q02", "Q03", "Q04", "Q05", "Q06", "Q07", "Q08", "Q09", "Q10",
    "Q11", "Q12", "Q13", "Q14", "Q15", "Q16", "Q17", "Q18", "Q19", "Q20", "Q21",
    "Q22", "Q23", "Q24", "Q25", "Q26", "Q27", "Q28", "Q29", "Q30", "Q31"};

/* A group's generation ("<gen>|", 1 to 18 digits, the first not 0: as textInt writes it, so one
 * generation has one spelling) and where its texts start. Returns 0, or -1 when t is not a
 * group. */
static int groupHeader(const char *t, int64_t *gen, const char **body) {
    int64_t g = 0;
    int digits = 0;
    if (!t || *t == '0') return -1;
    for (; *t >= '0' && *t <= '9' && digits < 18; t++, digits++)
        g = g * 10 + (*t - '0');
    if (!digits || *t != '|' || g == 0) return -1;
    *gen = g;
    *body = t + 1;
    return 0;
}

/* Calls fn for each text of a group's body (texts joined by "\n"; empty: none). Returns the
 * texts passed, or -1 when fn stopped. */
static long groupTexts(const char *body, historyTextFn fn, void *ctx) {
    long n = 0;
    while (*body) {
        const char *nl = strchr(body, '\n');
        size_t len = nl ? (size_t)(nl - body) : strlen(body);
        if (fn(body, len, ctx) != 0) return -1;
        n++;
        if (!nl) break;
        body = nl + 1;
    }
    return n;
}

/* The current groups of a row: Q00 and the groups after it of Q00's generation, up to the first
 * that is not one (missing, malformed or of another generation). Sets body[0..n), summed[0..n)
 * (when not NULL: 0 for a group after Q00 when QLater names the generation, its readings not in
 * the minute slots yet; else 1) and *gen (0 when none); returns n. */
static size_t currentGroups(const json_t *row, const char *body[HISTORY_GROUPS],
                            int summed[HISTORY_GROUPS], int64_t *gen) {
    size_t n = 0;
    int64_t g, later = summed ? tableGetInt64(row, HISTORY_PROP_LATER, 0) : 0;
    *gen = 0;
    for (; n < HISTORY_GROUPS; n++) {
        if (groupHeader(json_string_value(json_object_get(row, groupNames[n])), &g, &body[n]) !=
                0 ||
            (n && g != *gen))
            break;
        *gen = g;
        if (summed) summed[n] = !(n && g == later);
    }
    return n;
}

/* A pending text, and whether the minute slots hold it already. */
typedef int (*pendingFn)(const char *text, size_t len, int summed, void *ctx);

/* The texts of one group's body, to fn (see groupTexts). */
typedef struct groupCtx {
    pendingFn fn;
    int summed;
    void *ctx;
} groupCtx;

static int groupText(const char *text, size_t len, void *ctx) {
    groupCtx *g = ctx;
    return g->fn(text, len, g->summed, g->ctx);
}

/* historyPendingWalk with each text's place: v2 slots are in the minute slots, and so are the
 * texts of the current groups but those after Q00 when QLater names their generation. */
static long pendingWalk(const json_t *row, pendingFn fn, void *ctx) {
    long n = 0, k;
    int64_t pend = tableGetInt64(row, HISTORY_PROP_PENDING, 0), gen;
    const char *body[HISTORY_GROUPS];
    int summed[HISTORY_GROUPS];
    if (pend > HISTORY_V2_SLOTS) pend = HISTORY_V2_SLOTS;
    for (int64_t i = 0; i < pend; i++, n++) {
        json_t *t = json_object_get(row, pendingNames[i]);
        /* a slot missing or not a string is passed empty: the caller counts it unreadable */
        if (fn(json_is_string(t) ? json_string_value(t) : "", json_string_length(t), 1, ctx) != 0)
            return -1;
    }
    for (size_t i = 0, groups = currentGroups(row, body, summed, &gen); i < groups; i++, n += k) {
        groupCtx g = {fn, summed[i], ctx};
        if ((k = groupTexts(body[i], groupText, &g)) < 0) return -1;
    }
    return n;
}

typedef struct walkCtx {
    historyTextFn fn;
    void *ctx;
} walkCtx;

static int walkText(const char *text, size_t len, int summed, void *ctx) {
    walkCtx *w = ctx;
    (void)summed;
    return w->fn(text, len, w->ctx);
}

long historyPendingWalk(const json_t *row, historyTextFn fn, void *ctx) {
    walkCtx w = {fn, ctx};
    return pendingWalk(row, walkText, &w);
}

int historyPendingAny(const json_t *row) {
    int64_t gen;
    const char *body[HISTORY_GROUPS];
    if (tableGetInt64(row, HISTORY_PROP_PENDING, 0) > 0) return 1;
    for (size_t i = 0, groups = currentGroups(row, body, NULL, &gen); i < groups; i++)
        if (*body[i]) return 1;
    return 0;
}

void historyPendingTrim(json_t *row) {
    int64_t pend = tableGetInt64(row, HISTORY_PROP_PENDING, 0), gen;
    const char *body[HISTORY_GROUPS];
    for (size_t k = pend > 0 ? (size_t)pend : 0; k < HISTORY_V2_SLOTS; k++)
        json_object_del(row, pendingNames[k]);
    for (size_t i = currentGroups(row, body, NULL, &gen); i < HISTORY_GROUPS; i++)
        json_object_del(row, groupNames[i]);
}

int historySummaryKey(const char *device, char *out, size_t outlen) {
    char dev[HISTORY_DEVICE_KEY_MAX + 1];
    if (historyDeviceKey(device, dev, sizeof(dev)) != 0) return -1;
    int n = snprintf(out, outlen, "%s%s", HISTORY_SUMMARY_PREFIX, dev);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

double historySumAdd(double sum, double v) {
    double s = sum + v;
    return s > DBL_MAX ? DBL_MAX : s < -DBL_MAX ? -DBL_MAX : s;
}

static void aggAdd(historyAgg *a, double v) {
    if (!a->n || v < a->min) a->min = v;
    if (!a->n || v > a->max) a->max = v;
    a->sum = historySumAdd(a->sum, v);
    a->n++;
}

int historyFormatDouble(double v, char *out, size_t outlen) {
    static const double tens[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    /* a value with at most 6 decimals (what sensors send): that decimal, which strtod reads
     * back as v (r / 10^d is correctly rounded like strtod, and equal to v); glibc's %.17g costs
     * about a microsecond a number, and this runs for every reading and every minute */
    for (int d = 0; d < 7 && isfinite(v) && fabs(v) < 1e15 / tens[d]; d++) {
        double r = nearbyint(v * tens[d]);
        if (r / tens[d] != v) continue;
        char digits[24];
        int64_t q = (int64_t)fabs(r);
        int n = 0;
        do {
            digits[n++] = (char)('0' + q % 10);
            q /= 10;
        } while (q || n <= d);
        size_t o = 0;
        if (r < 0 && o + 1 < outlen) out[o++] = '-';
        for (int i = n - 1; i >= 0 && o + 2 < outlen; i--) {
            out[o++] = digits[i];
            if (i == d && d > 0) out[o++] = '.';
        }
        if (o + 1 >= outlen) break;
        out[o] = '\0';
        return (int)o;
    }
    int n = snprintf(out, outlen, "%.17g", v);
    return n > 0 && (size_t)n < outlen ? n : -1;
}

/* A capped text being built into a caller's buffer: no snprintf per field (the texts below are
 * built for every reading and every changed minute, and glibc's formatting showed in the
 * handler's profile). over is set, and nothing more written, once a piece does not fit. */
typedef struct text {
    char *p;
    size_t len, cap; /* cap counts the NUL */
    int over;
} text;

static void textPut(text *t, const char *s, size_t n) {
    if (t->over || n >= t->cap - t->len) {
        t->over = 1;
        return;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void textChar(text *t, char c) { textPut(t, &c, 1); }

static void textInt(text *t, int64_t v) {
    char d[24];
    size_t n = sizeof(d);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) d[--n] = '-';
    textPut(t, d + n, sizeof(d) - n);
}

static void textDouble(text *t, double v) {
    char num[32];
    int n = historyFormatDouble(v, num, sizeof(num));
    if (n < 0)
        t->over = 1;
    else
        textPut(t, num, (size_t)n);
}

/* NUL-terminates t. Returns its length, or -1 when something did not fit. */
static int textEnd(text *t) {
    if (t->cap) t->p[t->over ? 0 : t->len] = '\0';
    return t->over || !t->cap ? -1 : (int)t->len;
}

/* Appends mi's summary text to t. */
static void minuteText(text *t, const historyMinute *mi) {
    textInt(t, mi->count);
    for (int m = 0; m < METRIC_COUNT; m++) {
        const historyAgg *a = &mi->m[m];
        if (!a->n) {
            textPut(t, "|0,,,", 5);
            continue;
        }
        textChar(t, '|');
        textInt(t, a->n);
        textChar(t, ',');
        textDouble(t, a->min);
        textChar(t, ',');
        textDouble(t, a->max);
        textChar(t, ',');
        textDouble(t, a->sum);
    }
}

void historyMinuteText(const historyMinute *mi, char *out, size_t outlen) {
    text t = {out, 0, outlen, 0};
    minuteText(&t, mi);
    textEnd(&t);
}

double historyParseDouble(const char *s, char **end) {
    static const double tens[] = {1,   1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const char *p = s;
    int64_t m = 0;
    int digits = 0, frac = 0;
    int neg = *p == '-';
    p += neg;
    for (; *p >= '0' && *p <= '9' && digits < 16; p++, digits++)
        m = m * 10 + (*p - '0');
    if (*p == '.' && p[1] >= '0' && p[1] <= '9')
        for (p++; *p >= '0' && *p <= '9' && digits < 16; p++, digits++, frac++)
            m = m * 10 + (*p - '0');
    /* what the texts hold: up to 15 digits, no exponent. m (< 2^53) and 10^frac are exact
     * doubles, and one IEEE division is correctly rounded, as strtod is: the same double. */
    if (digits == 0 || digits > 15 || (*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' ||
        *p == 'E' || *p == 'x' || *p == 'X')
        return strtod(s, end);
    *end = (char *)p;
    double v = frac ? (double)m / tens[frac] : (double)m;
    return neg ? -v : v;
}

int historyMinuteParse(const char *text, historyMinute *mi) {
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
            *v[k] = historyParseDouble(p, &end);
            if (end == p || !isfinite(*v[k])) return -1;
        }
    }
    return *end == '\0' ? 0 : -1;
}

void historySummaryFromRow(const json_t *row, historySummary *s) {
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 60; i++) {
        const char *t = json_string_value(json_object_get(row, minuteNames[i]));
        if (!t || historyMinuteParse(t, &s->minute[i]) != 0) {
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

int historyReadingText(const historyReading *v, char *out, size_t outlen) {
    const char *part = v->partition ? v->partition : "";
    text t = {out, 0, outlen, 0};
    size_t plain =
        strspn(part, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~");
    if (plain > 3 * 64) return -1; /* as escapePercentTo's cap below */
    textInt(&t, v->enqueuedMs);
    textChar(&t, ';');
    if (part[plain] == '\0') {
        textPut(&t, part, plain); /* nothing to encode: the common case */
    } else {
        char enc[3 * 64 + 1];
        if (escapePercentTo(part, enc, sizeof(enc)) != 0) return -1;
        textPut(&t, enc, strlen(enc));
    }
    textChar(&t, ';');
    textInt(&t, v->seq);
    textChar(&t, ';');
    textInt(&t, (int64_t)v->k);
    for (int m = 0; m < METRIC_COUNT; m++) {
        textChar(&t, ';');
        if (v->r->has[m]) textDouble(&t, v->r->value[m]);
    }
    return textEnd(&t);
}

/* A decimal integer of exactly len bytes (no sign, at most maxDigits, at most 19, and at most
 * INT64_MAX: a sequence number can be any of 0..INT64_MAX). Returns 0 or -1. */
static int fieldInt(const char *text, size_t len, size_t maxDigits, int64_t *out) {
    uint64_t v = 0;
    if (len == 0 || len > maxDigits || len > 19) return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        v = v * 10 + (uint64_t)(text[i] - '0'); /* 19 digits fit in 64 bits unsigned */
    }
    if (v > (uint64_t)INT64_MAX) return -1;
    *out = (int64_t)v;
    return 0;
}

int historyReadingParse(const char *text, size_t len, historyParsed *p) {
    enum { FIELDS = 4 + METRIC_COUNT };
    const char *f[FIELDS];
    size_t fl[FIELDS], nf = 0, start = 0;
    int64_t k;
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != ';') continue;
        if (nf == FIELDS) return -1;
        f[nf] = text + start;
        fl[nf++] = i - start;
        start = i + 1;
    }
    if (nf != FIELDS || fieldInt(f[0], fl[0], 18, &p->ms) != 0 ||
        fieldInt(f[2], fl[2], 19, &p->seq) != 0 || fieldInt(f[3], fl[3], 18, &k) != 0)
        return -1;
    p->k = (size_t)k;
    char *part = escapePercentDecode(f[1], fl[1], 0);
    if (!part || strlen(part) >= sizeof(p->partition)) {
        free(part);
        return -1;
    }
    memcpy(p->partition, part, strlen(part) + 1);
    free(part);
    for (int m = 0; m < METRIC_COUNT; m++) {
        char num[48], *end;
        size_t l = fl[4 + m];
        if (l == 0) continue;
        if (l >= sizeof(num)) return -1;
        memcpy(num, f[4 + m], l);
        num[l] = '\0';
        p->value[m] = historyParseDouble(num, &end);
        if (*end || !isfinite(p->value[m])) return -1;
        p->has[m] = 1;
    }
    return 0;
}

void historyRowsFree(historyRows *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].rk);
        json_decref(r->v[i].props);
        json_decref(r->v[i].ifSame);
    }
    free(r->v);
    memset(r, 0, sizeof(*r));
}

int historyRowsFrozen(const historyRows *r) {
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].frozen) return 1;
    return 0;
}

int historyRowsEqual(const historyRows *a, const historyRows *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].pk, b->v[i].pk) != 0 || strcmp(a->v[i].rk, b->v[i].rk) != 0 ||
            !json_equal(a->v[i].props, b->v[i].props))
            return 0;
    return 1;
}

/* Appends a row (rk copied, props stolen). Returns 0 or -1 (OOM: props freed). */
static int rowsAdd(historyRows *r, const char *pk, const char *rk, json_t *props, int frozen) {
    if (!props) return -1;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        historyRow *v = realloc(r->v, cap * sizeof(*v));
        if (!v) {
            json_decref(props);
            return -1;
        }
        r->v = v;
        r->cap = cap;
    }
    historyRow *x = &r->v[r->n];
    memset(x, 0, sizeof(*x));
    snprintf(x->pk, sizeof(x->pk), "%s", pk);
    x->rk = strdup(rk);
    x->props = props;
    x->frozen = frozen;
    if (!x->rk) {
        json_decref(props);
        return -1;
    }
    r->n++;
    return 0;
}

/* One minute slot of the device row: Min<mm> = "<unix minute>;<minute text>". */
typedef struct minuteSlot {
    int loaded;       /* minute and text read from the row */
    int64_t minute;   /* -1: empty */
    const char *text; /* its minute text in the row, not parsed yet (NULL once parsed) */
    historyMinute m;
    int changed;
} minuteSlot;

/* A reading of the fold: a pending one (text from the row) or a new one. */
typedef struct foldItem {
    char *text; /* owned */
    size_t len;
    int64_t ms;
    int parsed; /* p holds the reading (else only ms is known: a pending text) */
    int later;  /* a pending text the minute slots do not hold yet (HISTORY_PROP_LATER) */
    historyParsed p;
} foldItem;

/* An hour the fold closed, with its summary (written as a frozen hour row). */
typedef struct closedHour {
    int64_t hour;
    historySummary s;
} closedHour;

/* The whole state of one fold. */
typedef struct fold {
    const json_t *row;
    const char *device;
    char devkey[HISTORY_DEVICE_KEY_MAX + 1];
    int64_t hour;   /* HistHour, -1 when none */
    int64_t newest; /* the newest unix minute in the slots, -1 when none (once allLoaded) */
    int allLoaded;
    int stays;     /* the row's pending groups stay as they are: the new readings are one more */
    size_t groups; /* with stays: the row's current groups Q00.. (the new one is the next) */
    int64_t gen;   /* with stays: their generation */
    size_t cap;    /* items allocated */
    foldItem *items;
    size_t nitems;
    closedHour *closed;
    size_t nclosed;
    /* last: historyFold clears only what is above it and each slot's loaded and changed (zeroing
     * all 60 slots, ~10 KB, cost more than the rest of a typical fold); slotLoad clears a slot
     * when it first reads it */
    minuteSlot slot[60];
} fold;

static void minuteAdd(historyMinute *mi, const historyParsed *p) {
    mi->count++;
    for (int m = 0; m < METRIC_COUNT; m++)
        if (p->has[m]) aggAdd(&mi->m[m], p->value[m]);
}

/* Slot mm's unix minute and text from the row, on first use: a batch touches one or two of the
 * 60, and their texts are parsed only then (slotGet). */
static minuteSlot *slotLoad(fold *f, int mm) {
    minuteSlot *s = &f->slot[mm];
    if (s->loaded) return s;
    memset(s, 0, sizeof(*s));
    s->loaded = 1;
    s->minute = -1;
    const char *t = json_string_value(json_object_get(f->row, slotNames[mm]));
    char *end;
    if (!t) return s;
    long long mn = strtoll(t, &end, 10);
    if (end == t || *end != ';' || mn < 0 || mn % 60 != mm) return s;
    s->minute = mn;
    s->text = end + 1;
    return s;
}

/* Every slot loaded, and the newest minute among them. */
static void loadAll(fold *f) {
    if (f->allLoaded) return;
    f->allLoaded = 1;
    for (int i = 0; i < 60; i++) {
        minuteSlot *s = slotLoad(f, i);
        if (s->minute > f->newest) f->newest = s->minute;
    }
}

static void readSlots(fold *f) {
    f->newest = -1;
    f->hour = tableGetInt64(f->row, HISTORY_PROP_HOUR, -1);
    if (f->hour >= 0) return;
    /* a row without HistHour but with slots (written by hand?): the newest slot's hour */
    loadAll(f);
    if (f->newest >= 0) f->hour = f->newest / 60;
}

/* Slot mm with its minute text parsed (a malformed text counts as an empty minute). */
static minuteSlot *slotGet(fold *f, int mm) {
    minuteSlot *s = slotLoad(f, mm);
    if (s->text && historyMinuteParse(s->text, &s->m) != 0) memset(&s->m, 0, sizeof(s->m));
    s->text = NULL;
    return s;
}

/* Adds p (of unix minute mn) to its slot, which holds mn or an older minute. */
static void slotAdd(fold *f, int64_t mn, const historyParsed *p) {
    minuteSlot *s = slotGet(f, (int)(mn % 60));
    if (s->minute != mn) {
        memset(&s->m, 0, sizeof(s->m));
        s->minute = mn;
    }
    minuteAdd(&s->m, p);
    s->changed = 1;
    if (mn > f->newest) f->newest = mn;
}

/* Closes hour h: its summary from the slots (they hold all of it while it is HistHour). */
static int closeHour(fold *f, int64_t h) {
    closedHour *c = realloc(f->closed, (f->nclosed + 1) * sizeof(*c));
    if (!c) return -1;
    f->closed = c;
    c = &f->closed[f->nclosed++];
    memset(c, 0, sizeof(*c));
    c->hour = h;
    loadAll(f);
    for (int i = 0; i < 60; i++)
        if (f->slot[i].minute >= 0 && f->slot[i].minute / 60 == h) {
            c->s.minute[i] = slotGet(f, i)->m;
            c->s.count += f->slot[i].m.count;
        }
    return 0;
}

/* Puts the reading p into the summaries: the slots, or an hour this fold closed; returns 1 when
 * it is late (older than what the slots can hold: raw only), 0 when counted, -1 on OOM. */
static int summarize(fold *f, const historyParsed *p) {
    int64_t mn = p->ms / 60000, h = p->ms / 3600000;
    if (f->hour < 0 || h > f->hour) {
        if (f->hour >= 0 && closeHour(f, f->hour) != 0) return -1;
        f->hour = h;
        slotAdd(f, mn, p);
        return 0;
    }
    if (h == f->hour) {
        if (slotLoad(f, (int)(mn % 60))->minute > mn) return 1; /* a malformed row only */
        slotAdd(f, mn, p);
        return 0;
    }
    /* A closed hour: exact only when this fold closed it (its summary is here whole); an hour
     * an earlier batch closed may have lost minutes from the slots to the hour after it. */
    for (size_t i = 0; i < f->nclosed; i++) {
        if (f->closed[i].hour != h) continue;
        minuteAdd(&f->closed[i].s.minute[mn % 60], p);
        f->closed[i].s.count++;
        loadAll(f);
        minuteSlot *s = &f->slot[mn % 60];
        if (s->minute == mn || (s->minute < mn && mn > f->newest - 60)) slotAdd(f, mn, p);
        return 0;
    }
    return 1;
}

/* Appends the frozen hour rows of the hours this fold closed. Returns 0 or -1. */
static int emitClosed(fold *f, historyRows *out) {
    char rk[HISTORY_RK_MAX], pk[HISTORY_PK_LEN], text[HISTORY_MINUTE_TEXT_MAX];
    snprintf(rk, sizeof(rk), "%s%s", HISTORY_SUMMARY_PREFIX, f->devkey);
    for (size_t i = 0; i < f->nclosed; i++) {
        const closedHour *c = &f->closed[i];
        if (c->s.count == 0) continue;
        json_t *p = json_object();
        if (!p) return -1;
        tableSetString(p, "DeviceId", f->device);
        tableSetInt64(p, "Count", c->s.count);
        for (int m = 0; m < 60; m++) {
            if (!c->s.minute[m].count) continue;
            historyMinuteText(&c->s.minute[m], text, sizeof(text));
            tableSetString(p, minuteNames[m], text);
        }
        historyPartitionKey(c->hour * 3600000, pk);
        if (rowsAdd(out, pk, rk, p, 1) != 0) return -1;
    }
    return 0;
}

/* Appends the chunk row of items[a..b) (one hour). Returns 0 or -1. */
static int emitChunk(fold *f, size_t a, size_t b, historyRows *out) {
    size_t len = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = a; i < b; i++) {
        len += f->items[i].len + 1;
        if (f->items[i].ms < lo) lo = f->items[i].ms;
        if (f->items[i].ms > hi) hi = f->items[i].ms;
    }
    char *text = malloc(len + 1), rk[HISTORY_RK_MAX], pk[HISTORY_PK_LEN], when[40], hex[9];
    unsigned char d[CRYPTO_SHA256_LEN];
    if (!text) return -1;
    size_t o = 0;
    for (size_t i = a; i < b; i++) {
        if (i > a) text[o++] = '\n';
        memcpy(text + o, f->items[i].text, f->items[i].len);
        o += f->items[i].len;
    }
    text[o] = '\0';
    if (cryptoSha256(text, o, d) != 0) memset(d, 0, sizeof(d));
    for (int i = 0; i < 4; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    foldItem *fi = &f->items[a];
    if (!fi->parsed && historyReadingParse(fi->text, fi->len, &fi->p) != 0) {
        /* a pending text that cannot be read (only one written by hand): keyed as "p", seq 0 */
        memset(&fi->p, 0, sizeof(fi->p));
        fi->p.ms = fi->ms;
    }
    fi->parsed = 1;
    const historyParsed *first = &fi->p;
    const char *part =
        first->partition[0] && tableKeyValid(first->partition) ? first->partition : "p";
    snprintf(rk, sizeof(rk), "%s %013" PRId64 " %s %020" PRId64 " %zu %s", f->devkey, first->ms,
             part, first->seq, first->k, hex);
    historyPartitionKey(first->ms, pk);
    json_t *p = json_object();
    if (p) {
        tableSetString(p, "DeviceId", f->device);
        invocationFormatTime(lo, when, sizeof(when));
        tableSetDateTime(p, "From", when);
        invocationFormatTime(hi, when, sizeof(when));
        tableSetDateTime(p, "To", when);
        json_object_set_new(p, "Count", json_integer((json_int_t)(b - a)));
        json_object_set_new(p, "Readings", json_stringn_nocheck(text, o));
    }
    free(text);
    return rowsAdd(out, pk, rk, p, 0);
}

/* Cuts the items into chunks of HISTORY_CHUNK and at every change of hour; appends the chunks
 * and returns where the tail (left pending) starts. */
static int cutChunks(fold *f, historyRows *out, size_t *tail) {
    size_t start = 0;
    for (size_t i = 0; i < f->nitems; i++) {
        if (i > start && f->items[i].ms / 3600000 != f->items[start].ms / 3600000) {
            if (emitChunk(f, start, i, out) != 0) return -1;
            start = i;
        }
        if (i + 1 - start == HISTORY_CHUNK) {
            if (emitChunk(f, start, i + 1, out) != 0) return -1;
            start = i + 1;
        }
    }
    *tail = start;
    return 0;
}

/* The generation for a new Q00: one no group of the row holds, current or stale, so that no
 * stale group can pass for one of the new generation: above them all, or, once that would take
 * a 19th digit, the smallest free one (32 groups leave one of 1..33 free). */
static int64_t newGeneration(const json_t *row) {
    int64_t top = 0, g, held[HISTORY_GROUPS];
    size_t n = 0;
    const char *body;
    for (size_t i = 0; i < HISTORY_GROUPS; i++)
        if (groupHeader(json_string_value(json_object_get(row, groupNames[i])), &g, &body) == 0) {
            held[n++] = g;
            if (g > top) top = g;
        }
    if (top < INT64_C(999999999999999999)) return top + 1;
    for (g = 1;; g++) {
        size_t i = 0;
        while (i < n && held[i] != g)
            i++;
        if (i == n) return g;
    }
}

/* Sets in props what changed in the row: slots, HistHour, LateReadings, pending. Returns 0, or
 * -1 when memory ran out. */
static int setChanged(fold *f, size_t tail, size_t late, json_t *props) {
    char buf[HISTORY_MINUTE_TEXT_MAX + 32];
    for (int i = 0; i < 60; i++) {
        const char *name = slotNames[i];
        if (!f->slot[i].changed) continue;
        text t = {buf, 0, sizeof(buf), 0};
        textInt(&t, f->slot[i].minute);
        textChar(&t, ';');
        minuteText(&t, &f->slot[i].m);
        if (textEnd(&t) < 0) continue; /* cannot happen: a minute text is far shorter */
        const char *old = json_string_value(json_object_get(f->row, name));
        if (!old || strcmp(old, buf) != 0) tableSetString(props, name, buf);
    }
    if (f->hour >= 0 && tableGetInt64(f->row, HISTORY_PROP_HOUR, -1) != f->hour)
        tableSetInt64(props, HISTORY_PROP_HOUR, f->hour);
    if (late)
        tableSetInt64(props, HISTORY_PROP_LATE,
                      tableGetInt64(f->row, HISTORY_PROP_LATE, 0) + (int64_t)late);
    /* pending: one group more (the new readings: one property, however many they are), or Q00
     * of a new generation holding what the chunks left (every older group is then stale) */
    if (f->stays && f->nitems == 0) return 0;
    size_t len = 24;
    for (size_t i = tail; i < f->nitems; i++)
        len += f->items[i].len + 1;
    char *g = malloc(len);
    if (!g) return -1;
    text t = {g, 0, len, 0};
    int64_t gen = f->stays ? f->gen : newGeneration(f->row);
    textInt(&t, gen);
    textChar(&t, '|');
    for (size_t i = tail; i < f->nitems; i++) {
        if (i > tail) textChar(&t, '\n');
        textPut(&t, f->items[i].text, f->items[i].len);
    }
    int glen = textEnd(&t);
    json_t *v = glen >= 0 ? json_stringn_nocheck(g, (size_t)glen) : NULL;
    free(g);
    if (!v || json_object_set_new(props, groupNames[f->stays ? f->groups : 0], v) != 0) return -1;
    /* a new Q00, its readings in the slots; the groups that follow it will not be (pendingStays) */
    if (!f->stays) tableSetInt64(props, HISTORY_PROP_LATER, gen);
    if (!f->stays && tableGetInt64(f->row, HISTORY_PROP_PENDING, 0) != 0)
        json_object_set_new(props, HISTORY_PROP_PENDING, json_integer(0)); /* v2 slots now in Q00 */
    return 0;
}

/* Appends a reading text (copied) of time ms to the fold's items, with p when it is known.
 * Returns 0 or -1. */
static int itemAdd(fold *f, const char *text, size_t len, int64_t ms, const historyParsed *p) {
    foldItem *it = &f->items[f->nitems];
    it->text = malloc(len + 1);
    if (!it->text) return -1;
    memcpy(it->text, text, len);
    it->text[len] = '\0';
    it->len = len;
    it->ms = ms;
    it->parsed = p != NULL;
    if (p) it->p = *p;
    f->nitems++;
    return 0;
}

/* The time of a reading text (its first field) when the text has the fields of one, else -1:
 * pending texts are read in full only when one starts a chunk. */
static int64_t readingMs(const char *text, size_t len) {
    size_t fields = 1, digits = 0;
    int64_t ms = 0;
    for (size_t i = 0; i < len; i++)
        fields += text[i] == ';';
    for (; digits < len && digits < 18 && text[digits] >= '0' && text[digits] <= '9'; digits++)
        ms = ms * 10 + (text[digits] - '0');
    return fields == 4 + METRIC_COUNT && digits && digits < len && text[digits] == ';' ? ms : -1;
}

/* 1 when the pending readings of the row stay as they are (sets f->stays, groups, gen): the row
 * holds a current generation of groups, the new readings all fall in their hour, which is
 * HistHour, and do not fill a chunk, so no chunk is cut and the new readings go as one group
 * more, without touching the minute slots (QLater says so; the fold that next cuts a chunk adds
 * them, in the order they came: historyFold). The common case (a few readings a batch): the pending
 * texts are counted, not copied or parsed, and no slot is read. */
static int pendingStays(fold *f, const historyReading *v, size_t n) {
    int64_t gen, hour = f->hour;
    size_t groups, pend = 0;
    const char *body[HISTORY_GROUPS], *first = NULL;
    if (hour < 0) return 0;                                            /* no slots yet */
    if (tableGetInt64(f->row, HISTORY_PROP_PENDING, 0) != 0) return 0; /* v2 slots: into Q00 */
    groups = currentGroups(f->row, body, NULL, &gen);
    for (size_t i = 0; i < groups; i++) {
        if (!*body[i]) continue;
        if (!first) first = body[i];
        for (const char *p = body[i]; p; p = strchr(p + 1, '\n'))
            pend++;
    }
    if (!groups || groups == HISTORY_GROUPS || pend + n >= HISTORY_CHUNK) return 0;
    /* the new group is left out of the slots only where QLater says so: a Q00 this writer made
     * (a row of an earlier build, or one whose Q00 such a build made, gets a new Q00 first) */
    if (tableGetInt64(f->row, HISTORY_PROP_LATER, 0) != gen) return 0;
    if (first) {
        const char *nl = strchr(first, '\n');
        int64_t ms = readingMs(first, nl ? (size_t)(nl - first) : strlen(first));
        if (ms < HISTORY_MIN_MS || ms > HISTORY_MAX_MS || ms / 3600000 != hour) return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].enqueuedMs < HISTORY_MIN_MS || v[i].enqueuedMs > HISTORY_MAX_MS ||
            v[i].enqueuedMs / 3600000 != hour)
            return 0;
    f->stays = 1;
    f->groups = groups;
    f->gen = gen;
    return 1;
}

typedef struct pendingCtx {
    fold *f;
    historyRows *out;
    int oom;
} pendingCtx;

static int pendingItem(const char *text, size_t len, int summed, void *ctx) {
    pendingCtx *c = ctx;
    int64_t ms = readingMs(text, len);
    /* a v2 slot holding a newline (no writer's: a partition id is percent-encoded) would be two
     * texts once in a group or a chunk: unreadable */
    if (ms < HISTORY_MIN_MS || ms > HISTORY_MAX_MS || c->f->nitems == c->f->cap ||
        memchr(text, '\n', len)) {
        c->out->dropped++; /* unreadable (only a row written by hand), or past what fits */
        return 0;
    }
    if (itemAdd(c->f, text, len, ms, NULL) != 0) c->oom = 1;
    if (!c->oom) c->f->items[c->f->nitems - 1].later = !summed;
    return c->oom;
}

/* The readings left pending in the row (format v2 slots, then the current groups), into the
 * fold's items. Returns 0 or -1 (OOM). */
static int readPending(fold *f, historyRows *out) {
    pendingCtx c = {f, out, 0};
    pendingWalk(f->row, pendingItem, &c);
    return c.oom ? -1 : 0;
}

/* Puts into the summaries the pending readings the slots do not hold yet, in the order they came
 * (before the new ones: as if each had been summarized in its own batch). Returns the late ones
 * (a text that cannot be read, only a row written by hand, counts as late: kept raw only), or -1
 * (OOM). */
static long summarizeLater(fold *f) {
    long late = 0;
    for (size_t i = 0; i < f->nitems; i++) {
        foldItem *it = &f->items[i];
        if (!it->later) continue;
        if (!it->parsed && historyReadingParse(it->text, it->len, &it->p) != 0) {
            late++;
            continue;
        }
        it->parsed = 1;
        int s = summarize(f, &it->p);
        if (s < 0) return -1;
        late += s;
    }
    return late;
}

int historyFold(const json_t *row, const char *device, const historyReading *v, size_t n,
                json_t *props, historyRows *out) {
    fold f;
    size_t late = 0, tail = 0;
    int rc = -1;
    memset(&f, 0, offsetof(fold, slot));
    for (int i = 0; i < 60; i++)
        f.slot[i].loaded = f.slot[i].changed = 0;
    f.row = row;
    f.device = device;
    if (historyDeviceKey(device, f.devkey, sizeof(f.devkey)) != 0) return -1;
    readSlots(&f);
    int stays = pendingStays(&f, v, n);
    /* pending: fewer than a chunk in groups, and up to HISTORY_V2_SLOTS more in v2 slots */
    f.cap = (stays ? 0 : HISTORY_CHUNK + HISTORY_V2_SLOTS) + n;
    f.items = calloc(f.cap + 1, sizeof(foldItem));
    if (!f.items || (!stays && readPending(&f, out) != 0)) goto out;
    if (!stays) {
        long l = summarizeLater(&f);
        if (l < 0) goto out;
        late += (size_t)l;
    }
    for (size_t i = 0; i < n; i++) {
        char text[HISTORY_READING_MAX];
        historyParsed p;
        int len;
        const char *part = v[i].partition ? v[i].partition : "";
        if (v[i].enqueuedMs < HISTORY_MIN_MS || v[i].enqueuedMs > HISTORY_MAX_MS ||
            strlen(part) >= sizeof(p.partition) ||
            (len = historyReadingText(&v[i], text, sizeof(text))) < 0) {
            out->skipped++;
            continue;
        }
        memset(&p, 0, sizeof(p));
        p.ms = v[i].enqueuedMs;
        memcpy(p.partition, part, strlen(part) + 1);
        p.seq = v[i].seq;
        p.k = v[i].k;
        for (int m = 0; m < METRIC_COUNT; m++) {
            p.has[m] = v[i].r->has[m];
            p.value[m] = v[i].r->value[m];
        }
        int s = stays ? 0 : summarize(&f, &p); /* staying: summarized when a chunk is cut */
        if (s < 0 || itemAdd(&f, text, (size_t)len, p.ms, &p) != 0) goto out;
        late += (size_t)s;
        out->added++;
    }
    out->late += late;
    if (emitClosed(&f, out) != 0 || cutChunks(&f, out, &tail) != 0) goto out;
    if (setChanged(&f, tail, late, props) != 0) goto out;
    rc = 0;
out:
    for (size_t i = 0; i < f.nitems; i++)
        free(f.items[i].text);
    free(f.items);
    free(f.closed);
    return rc;
}

typedef struct viewCtx {
    fold *f;
    int oom;
} viewCtx;

static int viewText(const char *text, size_t len, int summed, void *ctx) {
    viewCtx *c = ctx;
    historyParsed p;
    if (summed || historyReadingParse(text, len, &p) != 0) return 0;
    c->oom = summarize(c->f, &p) < 0;
    return c->oom;
}

int64_t historySlotsView(const json_t *row, int64_t minute[60], historyMinute m[60]) {
    fold f;
    viewCtx c = {&f, 0};
    memset(&f, 0, offsetof(fold, slot));
    for (int i = 0; i < 60; i++)
        f.slot[i].loaded = f.slot[i].changed = 0;
    f.row = row;
    readSlots(&f);
    pendingWalk(row, viewText, &c);
    loadAll(&f);
    for (int i = 0; i < 60; i++) {
        minuteSlot *sl = slotGet(&f, i);
        minute[i] = c.oom ? -1 : sl->minute;
        m[i] = sl->m;
    }
    free(f.closed);
    return c.oom ? -1 : f.hour;
}

/* The unix hour of a PartitionKey "hYYYYMMDDHH", or -1. */
static int64_t hourOfPk(const char *pk) {
    struct tm tm;
    int y, mo, d, h;
    char tail;
    if (sscanf(pk, "h%4d%2d%2d%2d%c", &y, &mo, &d, &h, &tail) != 4) return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t / 3600;
}

/* A row's slots as historySlotsView gives them. */
typedef struct slotsView {
    int64_t minute[60];
    historyMinute m[60];
} slotsView;

/* Copies slot mm of a view into *mi when it holds a minute of hour h. Returns 1 so. */
static int slotOfHour(const slotsView *v, int mm, int64_t h, historyMinute *mi) {
    if (v->minute[mm] < 0 || v->minute[mm] / 60 != h) return 0;
    *mi = v->m[mm];
    return 1;
}

int historyRepair(const json_t *oldRow, const json_t *newRow, const char *device,
                  const historyRows *written, historyRows *hist) {
    int64_t now = tableGetInt64(newRow, HISTORY_PROP_HOUR, -1);
    slotsView *vn = NULL, *vo = NULL;
    int rc = -1;
    for (size_t i = 0; i < written->n; i++) {
        const historyRow *w = &written->v[i];
        int again = 0;
        if (!w->frozen) continue;
        for (size_t k = 0; k < hist->n && !again; k++)
            again = hist->v[k].frozen && strcmp(hist->v[k].pk, w->pk) == 0;
        int64_t h = hourOfPk(w->pk);
        if (again || h < 0 || now <= h) continue;
        if (!vn) {
            /* the slots with the readings QLater marks in them, as the next fold that
             * cuts a chunk puts them (heap: two views are 25 KB) */
            vn = malloc(sizeof(*vn));
            vo = malloc(sizeof(*vo));
            if (!vn || !vo) goto out;
            historySlotsView(newRow, vn->minute, vn->m);
            historySlotsView(oldRow, vo->minute, vo->m);
        }
        historySummary s;
        char text[HISTORY_MINUTE_TEXT_MAX], pk[HISTORY_PK_LEN], rk[HISTORY_RK_MAX];
        memset(&s, 0, sizeof(s));
        for (int m = 0; m < 60; m++) {
            if (!slotOfHour(vn, m, h, &s.minute[m]) && !slotOfHour(vo, m, h, &s.minute[m]))
                memset(&s.minute[m], 0, sizeof(s.minute[m]));
            s.count += s.minute[m].count;
        }
        json_t *p = json_object();
        if (!p) goto out;
        tableSetString(p, "DeviceId", device);
        tableSetInt64(p, "Count", s.count);
        for (int m = 0; m < 60; m++) {
            if (!s.minute[m].count) continue;
            historyMinuteText(&s.minute[m], text, sizeof(text));
            tableSetString(p, minuteNames[m], text);
        }
        historyPartitionKey(h * 3600000, pk);
        snprintf(rk, sizeof(rk), "%s", w->rk);
        if (rowsAdd(hist, pk, rk, p, 1) != 0) goto out;
        hist->v[hist->n - 1].ifSame = json_incref(w->props);
    }
    rc = 0;
out:
    free(vn);
    free(vo);
    return rc;
}

static int byPk(const void *a, const void *b) {
    const historyRow *const *x = a, *const *y = b;
    int c = strcmp((*x)->pk, (*y)->pk);
    return c ? c : (*x < *y ? -1 : *x > *y);
}

/* 1 when the stored frozen hour row holds what a row's props say (its Count and minutes). */
static int frozenSame(const json_t *stored, const json_t *props) {
    if (tableGetInt64(stored, "Count", -1) != tableGetInt64(props, "Count", -2)) return 0;
    for (int m = 0; m < 60; m++) {
        const char *a = json_string_value(json_object_get(stored, minuteNames[m]));
        const char *b = json_string_value(json_object_get(props, minuteNames[m]));
        if ((a || b) && (!a || !b || strcmp(a, b) != 0)) return 0;
    }
    return 1;
}

/* A repair (ifSame) whose row another writer has written since this process did: that row is
 * the one to keep (it was written before that writer's device commit, so after this process's
 * write, and from the committed history), not a repair made from slots that may have lost
 * minutes. Returns 1 so (the row is then settled as ok, not written). */
static int repairSuperseded(const settings *s, const char *table, const historyRow *x) {
    json_t *cur = NULL;
    tableResult tr;
    if (!x->ifSame) return 0;
    int c = tableGetEntity(&s->storage, table, x->pk, x->rk, &cur, &tr);
    int other = c == TABLE_OK && cur && !frozenSame(cur, x->ifSame);
    json_decref(cur);
    return other;
}

size_t historyWriteRows(const settings *s, const char *table, historyRow *rows, size_t n) {
    historyRow **order = calloc(n ? n : 1, sizeof(*order));
    commitRow *cr = calloc(n ? n : 1, sizeof(*cr));
    size_t notOk = 0, m = 0;
    if (!order || !cr) {
        for (size_t i = 0; i < n; i++)
            snprintf(rows[i].error, sizeof(rows[i].error), "history: out of memory");
        free(order);
        free(cr);
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].ok = 0;
        if (repairSuperseded(s, table, &rows[i]))
            rows[i].ok = 1, rows[i].error[0] = '\0'; /* the other writer's row stays */
        else
            order[m++] = &rows[i];
    }
    n = m;
    qsort(order, n, sizeof(*order), byPk); /* one PartitionKey's rows together */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(order[j]->pk, order[i]->pk) == 0) {
            /* a chunk row's RowKey ends in the hash of its readings: it exists only when this
             * batch is a replay, so it goes as an insert first (commitRow.insert) */
            cr[j - i] = (commitRow){
                .rk = order[j]->rk, .props = order[j]->props, .insert = !order[j]->frozen};
            j++;
        }
        commitUpsertRows(s, table, order[i]->pk, cr, j - i);
        for (size_t k = i; k < j; k++) {
            historyRow *x = order[k];
            const commitRow *c = &cr[k - i];
            x->ok = c->ok;
            x->permanent = c->permanent;
            x->tableGone = c->tableGone;
            snprintf(x->error, sizeof(x->error), "%s", c->error);
            notOk += !c->ok;
        }
        i = j;
    }
    free(order);
    free(cr);
    return notOk;
}
