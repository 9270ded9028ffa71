/* Unit tests: history (keys, OData quoting, summary rows read back, malformed minutes skipped;
 * format v2: reading texts, numbers, the fold into the device row and the chunk cut). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "history.h"

#include <float.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"

static void test_partition_key(void **state) {
    (void)state;
    char pk[HISTORY_PK_LEN];
    historyPartitionKey(1764669599999LL, pk); /* 2025-12-02T09:59:59.999Z */
    assert_string_equal(pk, "h2025120209");
    historyPartitionKey(1764669600000LL, pk);
    assert_string_equal(pk, "h2025120210");
}

static void test_row_key(void **state) {
    (void)state;
    reading r;
    memset(&r, 0, sizeof(r));
    historyReading v = {"dev 1", &r, "3", 42, 2, 1764669600123LL};
    char rk[HISTORY_RK_MAX];
    assert_int_equal(historyRowKey(&v, rk, sizeof(rk)), 0);
    assert_string_equal(rk, "dev 1 1764669600123 3 00000000000000000042 2");
    /* a partition that cannot be in a key is "p"; a long id is its digest */
    char longid[400];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    historyReading w = {longid, &r, "a/b", 1, 0, 1764669600123LL};
    assert_int_equal(historyRowKey(&w, rk, sizeof(rk)), 0);
    assert_int_equal(rk[0], '~');
    assert_non_null(strstr(rk, " 1764669600123 p 00000000000000000001 0"));
    assert_int_equal(historyRowKey(&v, rk, 10), -1);
    char sk[HISTORY_RK_MAX];
    assert_int_equal(historySummaryKey("dev 1", sk, sizeof(sk)), 0);
    assert_string_equal(sk, "~~m dev 1");
}

static void test_quote(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(historyQuote("o'brien' or 'a'", out, sizeof(out)), 0);
    assert_string_equal(out, "'o''brien'' or ''a'''");
    assert_int_equal(historyQuote("abcdef", out, 5), -1);
}

static void test_summary_row(void **state) {
    (void)state;
    json_t *row = json_pack("{s:s,s:s,s:s,s:s}", "M00", "3|3,1,5,9|0,,,|1,1000,1000,1000|0,,,",
                            "M59", "1|1,-2.5,-2.5,-2.5|1,50,50,50|0,,,|1,7,7,7", "M10",
                            "2|2,1,x,3|0,,,|0,,,|0,,,", "M11", "2|2,1,2,3");
    historySummary s;
    historySummaryFromRow(row, &s);
    assert_int_equal(s.count, 4); /* M10 and M11 are malformed: skipped */
    assert_int_equal(s.minute[0].count, 3);
    assert_int_equal(s.minute[0].m[METRIC_CELSIUS].n, 3);
    assert_true(s.minute[0].m[METRIC_CELSIUS].max == 5);
    assert_int_equal(s.minute[0].m[METRIC_HUMIDITY].n, 0);
    assert_true(s.minute[59].m[METRIC_CELSIUS].min == -2.5);
    assert_true(s.minute[59].m[METRIC_LIGHT].sum == 7);
    assert_int_equal(s.minute[10].count, 0);
    assert_int_equal(s.minute[11].count, 0);
    json_decref(row);
}

static reading mk(double c, double h) {
    reading r;
    memset(&r, 0, sizeof(r));
    r.has[METRIC_CELSIUS] = 1;
    r.value[METRIC_CELSIUS] = c;
    r.has[METRIC_HUMIDITY] = 1;
    r.value[METRIC_HUMIDITY] = h;
    return r;
}

static void test_format_double(void **state) {
    (void)state;
    char out[32];
    const struct {
        double v;
        const char *text;
    } cases[] = {{20.1, "20.1"},
                 {20, "20"},
                 {-0.05, "-0.05"},
                 {1012.25, "1012.25"},
                 {0, "0"},
                 {1e-7, "9.9999999999999995e-08"},
                 {0.1 + 0.2, "0.30000000000000004"},
                 {123456.000001, "123456.000001"},
                 {1e300, "1.0000000000000001e+300"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(historyFormatDouble(cases[i].v, out, sizeof(out)),
                         (int)strlen(cases[i].text));
        assert_string_equal(out, cases[i].text);
        assert_true(strtod(out, NULL) == cases[i].v); /* reads back exactly */
    }
}

/* historyParseDouble is strtod, value and end, on texts of its own format and on any other. */
static void test_parse_double_is_strtod(void **state) {
    (void)state;
    static const char alphabet[] = "0123456789.-+eEx ni";
    uint64_t x = 88172645463325252ULL;
    char s[40];
    for (int i = 0; i < 400000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 1 + x % 24;
        if (i % 2) { /* a decimal as the texts hold it */
            /* up to 15 digits mostly, sometimes up to 18 (past the fast path) */
            int64_t m = (int64_t)(x >> 5) % (i % 10 ? 1000000000000000LL : 1000000000000000000LL);
            int d = (int)((x >> 3) % 10);
            snprintf(s, sizeof(s), "%s%lld", x & 1 ? "-" : "", (long long)m);
            size_t l = strlen(s);
            if (d && l > (size_t)d + 1) {
                memmove(s + l - d + 1, s + l - d, (size_t)d + 1);
                s[l - d] = '.';
            }
        } else {
            uint64_t y = x;
            for (size_t k = 0; k < n; k++, y = y * 6364136223846793005ULL + 1442695040888963407ULL)
                s[k] = alphabet[(y >> 33) % (sizeof(alphabet) - 1)];
            s[n] = '\0';
        }
        char *e1, *e2;
        double a = strtod(s, &e1), b = historyParseDouble(s, &e2);
        if (memcmp(&a, &b, sizeof(a)) != 0 || e1 != e2)
            fail_msg("'%s': %.17g/%td against %.17g/%td", s, a, e1 - s, b, e2 - s);
    }
}

static void test_reading_text(void **state) {
    (void)state;
    reading r = mk(21.5, 50);
    r.has[METRIC_LIGHT] = 1;
    r.value[METRIC_LIGHT] = 0.1;
    historyReading v = {"d", &r, "p 1/%", 42, 3, 1764669600123LL};
    char t[HISTORY_READING_MAX];
    int n = historyReadingText(&v, t, sizeof(t));
    assert_string_equal(t, "1764669600123;p%201%2F%25;42;3;21.5;50;;0.1");
    assert_int_equal(n, (int)strlen(t));
    historyParsed p;
    assert_int_equal(historyReadingParse(t, strlen(t), &p), 0);
    assert_true(p.ms == 1764669600123LL && p.seq == 42 && p.k == 3);
    assert_string_equal(p.partition, "p 1/%");
    assert_true(p.has[METRIC_CELSIUS] && p.value[METRIC_CELSIUS] == 21.5);
    assert_false(p.has[METRIC_HPA]);
    assert_true(p.has[METRIC_LIGHT] && p.value[METRIC_LIGHT] == 0.1);
    assert_int_equal(historyReadingText(&v, t, 20), -1); /* does not fit */
    const char *bad[] = {"",
                         "1;p;2;3;4;5;6",     /* 7 fields */
                         "1;p;2;3;4;5;6;7;8", /* 9 fields */
                         "x;p;2;3;;;;",       /* time */
                         "1;p;-2;3;;;;",      /* sequence */
                         "1;%zz;2;3;;;;",     /* escape */
                         "1;p;2;3;1e999;;;",  /* not finite */
                         "1;p;2;3;12abc;;;",  /* not a number */
                         "1;p;2;1234567890123456789;;;;"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(historyReadingParse(bad[i], strlen(bad[i]), &p), -1);
}

#define T0 1764669600000LL /* 2025-12-02T10:00:00Z, an hour's start */
#define HOUR 3600000LL

/* n readings of device "dv" from ms t, a second apart, seq from seq0, partition "0". */
static void readings(historyReading *v, reading *r, size_t n, int64_t t, int64_t seq0) {
    for (size_t i = 0; i < n; i++) {
        r[i] = mk(20 + (double)(i % 3), 50);
        v[i] = (historyReading){"dv", &r[i], "0", seq0 + (int64_t)i, 0, t + (int64_t)i * 1000};
    }
}

/* The reading texts of pending group name in props when its generation is gen, else -1. */
static int groupTexts(const json_t *props, const char *name, const char *gen) {
    const char *t = json_string_value(json_object_get(props, name));
    size_t gl = strlen(gen);
    if (!t || strncmp(t, gen, gl) != 0 || t[gl] != '|') return -1;
    if (!t[gl + 1]) return 0;
    int n = 1;
    for (const char *p = t; *p; p++)
        n += *p == '\n';
    return n;
}

static const historyRow *rowAt(const historyRows *o, size_t i) {
    return i < o->n ? &o->v[i] : NULL;
}

static void test_fold_chunks_and_pending(void **state) {
    (void)state;
    enum { N = HISTORY_CHUNK + 8 }; /* 72: a chunk, 8 pending */
    reading r[N];
    historyReading v[N];
    readings(v, r, N, T0, 100);
    json_t *props = json_object();
    historyRows out = {0};
    assert_int_equal(historyFold(NULL, "dv", v, N, props, &out), 0);
    assert_int_equal(out.n, 1);
    const historyRow *c = rowAt(&out, 0);
    assert_string_equal(c->pk, "h2025120210");
    assert_false(c->frozen);
    const char *text = json_string_value(json_object_get(c->props, "Readings"));
    unsigned char d[CRYPTO_SHA256_LEN];
    char rk[128];
    cryptoSha256(text, strlen(text), d);
    snprintf(rk, sizeof(rk), "dv %013lld 0 %020d 0 %02x%02x%02x%02x", (long long)T0, 100, d[0],
             d[1], d[2], d[3]);
    assert_string_equal(c->rk, rk);
    assert_int_equal(json_integer_value(json_object_get(c->props, "Count")), 64);
    assert_string_equal(json_string_value(json_object_get(c->props, "From")),
                        "2025-12-02T10:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(c->props, "To")),
                        "2025-12-02T10:01:03.000Z");
    /* the tail: 8 pending in one group; the slots of minutes 0 (readings 0..59) and 1 (60..71) */
    assert_int_equal(groupTexts(props, "Q00", "1"), 8);
    assert_true(strncmp(json_string_value(json_object_get(props, "Q00")),
                        "1|1764669664000;0;164;0;21;50;;\n", 31) == 0);
    assert_null(json_object_get(props, "Q01"));
    assert_null(json_object_get(props, "PendN"));
    assert_string_equal(json_string_value(json_object_get(props, "Min00")),
                        "29411160;60|60,20,22,1260|60,50,50,3000|0,,,|0,,,");
    assert_string_equal(json_string_value(json_object_get(props, "Min01")),
                        "29411161;12|12,20,22,252|12,50,50,600|0,,,|0,,,");
    assert_string_equal(json_string_value(json_object_get(props, "HistHour")), "490186");
    assert_null(json_object_get(props, "LateReadings"));

    /* the same fold again (a replay or a re-fold): the same rows, byte for byte */
    json_t *props2 = json_object();
    historyRows out2 = {0};
    assert_int_equal(historyFold(NULL, "dv", v, N, props2, &out2), 0);
    assert_true(historyRowsEqual(&out, &out2));
    assert_true(json_equal(props, props2));

    /* the next batch on the committed row: 2 readings more, the pending ones stay as they are */
    json_t *row = json_deep_copy(props);
    reading r2[2];
    historyReading v2[2];
    readings(v2, r2, 2, T0 + N * 1000, 100 + N);
    json_t *p3 = json_object();
    historyRows out3 = {0};
    assert_int_equal(historyFold(row, "dv", v2, 2, p3, &out3), 0);
    assert_int_equal(out3.n, 0);
    assert_null(json_object_get(p3, "Q00")); /* unchanged: not sent */
    /* the two new ones: one property, not in the slots yet (":"), and no slot written */
    assert_int_equal(groupTexts(p3, "Q01", "1"), 2);
    assert_null(json_object_get(p3, "QLater")); /* the first fold's: generation 1 */
    assert_string_equal(json_string_value(json_object_get(props, "QLater")), "1");
    assert_null(json_object_get(p3, "PendN"));
    assert_null(json_object_get(p3, "Min01"));
    assert_null(json_object_get(p3, "Min00"));
    assert_null(json_object_get(p3, "HistHour"));
    /* ...but every reader of the slots sees them in minute 1 (historySlotsView) */
    json_object_update(row, p3);
    int64_t minute[60];
    historyMinute m[60];
    char mtext[HISTORY_MINUTE_TEXT_MAX];
    assert_int_equal(historySlotsView(row, minute, m), 490186);
    assert_int_equal(minute[1], 29411161);
    historyMinuteText(&m[1], mtext, sizeof(mtext));
    assert_string_equal(mtext, "14|14,20,22,293|14,50,50,700|0,,,|0,,,");
    assert_int_equal(minute[0], 29411160);
    assert_int_equal(m[0].count, 60);
    assert_int_equal(minute[2], -1);
    json_decref(row);
    json_decref(props);
    json_decref(props2);
    json_decref(p3);
    historyRowsFree(&out);
    historyRowsFree(&out2);
    historyRowsFree(&out3);
}

static void test_fold_hour_boundary_and_late(void **state) {
    (void)state;
    reading r[8];
    historyReading v[8];
    /* 5 readings at 10:59:55.., then 3 of the next hour */
    readings(v, r, 5, T0 + HOUR - 5000, 1);
    json_t *row = json_object();
    historyRows out = {0};
    assert_int_equal(historyFold(NULL, "dv", v, 5, row, &out), 0);
    assert_int_equal(out.n, 0);
    readings(v, r, 3, T0 + HOUR + 1000, 6);
    json_t *p = json_object();
    assert_int_equal(historyFold(row, "dv", v, 3, p, &out), 0);
    assert_int_equal(out.n, 2); /* the frozen hour 10, the chunk of its 5 pending readings */
    const historyRow *f = out.v[0].frozen ? &out.v[0] : &out.v[1];
    const historyRow *c = out.v[0].frozen ? &out.v[1] : &out.v[0];
    assert_string_equal(f->pk, "h2025120210");
    assert_string_equal(f->rk, "~~m dv");
    assert_string_equal(json_string_value(json_object_get(f->props, "Count")), "5");
    assert_string_equal(json_string_value(json_object_get(f->props, "M59")),
                        "5|5,20,22,104|5,50,50,250|0,,,|0,,,");
    assert_string_equal(c->pk, "h2025120210");
    assert_int_equal(json_integer_value(json_object_get(c->props, "Count")), 5);
    assert_int_equal(groupTexts(p, "Q00", "2"), 3); /* a new generation */
    assert_string_equal(json_string_value(json_object_get(p, "HistHour")), "490187");
    historyRowsFree(&out);

    /* a late reading: of hour 10, closed by an earlier batch: raw only, counted */
    json_object_update(row, p);
    readings(v, r, 1, T0 + 1000, 50);
    v[0].partition = "7";
    json_t *p2 = json_object();
    assert_int_equal(historyFold(row, "dv", v, 1, p2, &out), 0);
    assert_int_equal(out.late, 1);
    assert_string_equal(json_string_value(json_object_get(p2, "LateReadings")), "1");
    assert_null(json_object_get(p2, "Min00")); /* in no summary */
    assert_null(json_object_get(p2, "HistHour"));
    /* the pending readings of hour 11 become a chunk: the late one is of another hour */
    assert_int_equal(out.n, 1);
    assert_string_equal(out.v[0].pk, "h2025120211");
    assert_string_equal(json_string_value(json_object_get(p2, "Q00")),
                        "3|1764669601000;7;50;0;20;50;;");
    json_decref(row);
    json_decref(p);
    json_decref(p2);
    historyRowsFree(&out);
}

static void test_fold_hundred_readings(void **state) {
    (void)state;
    enum { N = 2 * HISTORY_CHUNK + 4 }; /* one batch: two chunks, four pending */
    reading r[N];
    historyReading v[N];
    readings(v, r, N, T0, 1000);
    json_t *p = json_object();
    historyRows out = {0};
    assert_int_equal(historyFold(NULL, "dv", v, N, p, &out), 0);
    assert_int_equal(out.n, 2);
    for (size_t i = 0; i < 2; i++) {
        char seq[32];
        snprintf(seq, sizeof(seq), " %020d ", 1000 + HISTORY_CHUNK * (int)i);
        assert_non_null(strstr(out.v[i].rk, seq));
        assert_int_equal(json_integer_value(json_object_get(out.v[i].props, "Count")),
                         HISTORY_CHUNK);
    }
    assert_int_equal(groupTexts(p, "Q00", "1"), 4);
    assert_int_equal(out.added, N);
    json_decref(p);
    historyRowsFree(&out);
}

static void test_fold_bad_rows(void **state) {
    (void)state;
    /* a row with malformed slots, a pending count past 32 and unreadable pending texts */
    json_t *row = json_pack("{s:s,s:s,s:i,s:s,s:s}", "Min00", "x;1|1,1,1,1|0,,,|0,,,|0,,,", "Min01",
                            "29411161;garbage", "PendN", 99, "P00", "not a reading", "P01",
                            "1764669600000;0;1;0;;;;");
    reading r[1];
    historyReading v[1];
    readings(v, r, 1, T0 + 61000, 5);
    json_t *p = json_object();
    historyRows out = {0};
    assert_int_equal(historyFold(row, "dv", v, 1, p, &out), 0);
    assert_int_equal(out.dropped, 1 + 30); /* P00 unreadable, P02..P31 absent */
    assert_string_equal(json_string_value(json_object_get(p, "Min01")),
                        "29411161;1|1,20,20,20|1,50,50,50|0,,,|0,,,");
    /* the v2 slots' readable reading and the new one, in Q00; the v2 count cleared */
    assert_int_equal(groupTexts(p, "Q00", "1"), 2);
    assert_int_equal(json_integer_value(json_object_get(p, "PendN")), 0);
    /* readings without a usable time are skipped */
    v[0].enqueuedMs = 5;
    json_t *p2 = json_object();
    assert_int_equal(historyFold(row, "dv", v, 1, p2, &out), 0);
    assert_int_equal(out.skipped, 1);
    json_decref(row);
    json_decref(p);
    json_decref(p2);
    historyRowsFree(&out);
}

static int collectText(const char *text, size_t len, void *ctx) {
    char *acc = ctx;
    size_t o = strlen(acc);
    snprintf(acc + o, 512 - o, "%.*s,", (int)len, text);
    return 0;
}

/* Pending groups: Q00's generation names the current ones; a group of another generation (left
 * from before a chunk was cut) is stale, and so is everything after it; v2 slots come first. */
static void test_pending_groups(void **state) {
    (void)state;
    char acc[512] = "";
    json_t *row = json_pack("{s:s,s:s,s:s,s:s}", "Q00", "5|a1", "Q01", "5|a2\na3", "Q02", "4|old",
                            "Q03", "5|after");
    assert_int_equal(historyPendingWalk(row, collectText, acc), 3);
    assert_string_equal(acc, "a1,a2,a3,");
    assert_true(historyPendingAny(row));
    json_object_set_new(row, "PendN", json_integer(1));
    json_object_set_new(row, "P00", json_string("v2"));
    acc[0] = '\0';
    assert_int_equal(historyPendingWalk(row, collectText, acc), 4);
    assert_string_equal(acc, "v2,a1,a2,a3,");
    json_decref(row);
    row = json_pack("{s:s,s:s}", "Q00", "3|", "Q01", "3|x"); /* an empty Q00: after a cut */
    assert_true(historyPendingAny(row));
    json_object_set_new(row, "Q01", json_string("2|x"));
    assert_false(historyPendingAny(row));
    json_object_set_new(row, "Q00", json_string("0|x")); /* generation 0: not a group */
    assert_false(historyPendingAny(row));
    assert_int_equal(historyPendingWalk(row, collectText, acc), 0);
    json_decref(row);
    /* a generation is written without leading zeros: "01" is not one (the JS reader of the
     * tests, pendingTexts, reads it so too), so "01|b" is not of generation 1 */
    row = json_pack("{s:s,s:s}", "Q00", "1|a", "Q01", "01|b");
    acc[0] = '\0';
    assert_int_equal(historyPendingWalk(row, collectText, acc), 1);
    assert_string_equal(acc, "a,");
    json_object_set_new(row, "Q00", json_string("01|a"));
    assert_false(historyPendingAny(row));
    json_decref(row);
    /* trimmed to what the readers read: the same texts, no stale group, no v2 slot past PendN */
    row = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s}", "Q00", "5|a1", "Q01", "5|a2\na3", "Q02",
                    "4|old", "Q03", "5|after", "PendN", 1, "P00", "v2", "P01", "v2old");
    historyPendingTrim(row);
    acc[0] = '\0';
    assert_int_equal(historyPendingWalk(row, collectText, acc), 4);
    assert_string_equal(acc, "v2,a1,a2,a3,");
    assert_int_equal(json_object_size(row), 4); /* Q00, Q01, PendN, P00 */
    json_decref(row);

    /* a fold appends after the current groups, over a stale one */
    reading r[HISTORY_CHUNK + 8];
    historyReading v[HISTORY_CHUNK + 8];
    readings(v, r, 1, T0 + 5000, 7);
    row = json_pack("{s:s,s:s,s:s,s:s,s:s}", "Q00", "7|1764669600000;0;1;0;20;50;;", "Q01",
                    "9|1764669601000;0;2;0;20;50;;", "Q05", "12|x", "HistHour", "490186", "QLater",
                    "7");
    json_t *p = json_object();
    historyRows out = {0};
    assert_int_equal(historyFold(row, "dv", v, 1, p, &out), 0);
    assert_int_equal(out.n, 0);
    assert_null(json_object_get(p, "Q00"));
    assert_string_equal(json_string_value(json_object_get(p, "Q01")),
                        "7|1764669605000;0;7;0;20;50;;");
    json_decref(p);
    /* without QLater (a row of an earlier build: its groups are in the slots), the batch's
     * reading goes into the slots, with a new Q00 that holds every pending one */
    json_t *older = json_deep_copy(row);
    json_object_del(older, "QLater");
    p = json_object();
    assert_int_equal(historyFold(older, "dv", v, 1, p, &out), 0);
    assert_int_equal(groupTexts(p, "Q00", "13"), 2);
    assert_string_equal(json_string_value(json_object_get(p, "QLater")), "13");
    assert_non_null(json_object_get(p, "Min00"));
    json_decref(p);
    json_decref(older);
    /* a cut: Q00 of a generation above every group in the row (12 in Q05) */
    readings(v, r, HISTORY_CHUNK + 8, T0 + 6000, 100);
    p = json_object();
    assert_int_equal(historyFold(row, "dv", v, HISTORY_CHUNK + 8, p, &out), 0);
    assert_int_equal(out.n, 1);
    assert_int_equal(groupTexts(p, "Q00", "13"), 1 + 8);
    json_decref(p);
    json_decref(row);
    historyRowsFree(&out);

    /* 32 groups (a reading each): the next batch gathers them into Q00, no chunk yet */
    row = json_object();
    for (int i = 0; i < HISTORY_GROUPS; i++) {
        char name[8], g[64];
        snprintf(name, sizeof(name), "Q%02d", i);
        snprintf(g, sizeof(g), "4|%lld;0;%d;0;20;50;;", (long long)T0 + i * 100, i);
        json_object_set_new(row, name, json_string(g));
    }
    readings(v, r, 1, T0 + 9000, 500);
    p = json_object();
    assert_int_equal(historyFold(row, "dv", v, 1, p, &out), 0);
    assert_int_equal(out.n, 0);
    assert_int_equal(groupTexts(p, "Q00", "5"), HISTORY_GROUPS + 1);
    assert_null(json_object_get(p, "Q01"));
    json_decref(p);
    json_decref(row);
    historyRowsFree(&out);

    /* a cut past the 18-digit top: a generation no group holds (1 and 2 are stale ones here),
     * not 1, which would make Q01 current again */
    row = json_pack("{s:s,s:s,s:s}", "Q00", "999999999999999999|1764669600000;0;1;0;20;50;;", "Q01",
                    "1|1764669601000;0;2;0;20;50;;", "Q02", "2|x");
    readings(v, r, 1, T0 + HOUR, 600); /* another hour: the pending reading is cut */
    p = json_object();
    assert_int_equal(historyFold(row, "dv", v, 1, p, &out), 0);
    assert_int_equal(out.n, 1); /* the chunk (no slots in the row: no frozen hour) */
    assert_int_equal(groupTexts(p, "Q00", "3"), 1);
    json_object_update(row, p);
    acc[0] = '\0';
    assert_int_equal(historyPendingWalk(row, collectText, acc), 1);
    json_decref(p);
    json_decref(row);
    historyRowsFree(&out);
    /* a v2 slot with a newline inside is unreadable, not two texts in Q00 */
    row = json_pack("{s:i,s:s}", "PendN", 1, "P00", "1764669600123;p%2\n01;42;3;61.5;51;;0");
    readings(v, r, 1, T0 + 9000, 700);
    p = json_object();
    assert_int_equal(historyFold(row, "dv", v, 1, p, &out), 0);
    assert_int_equal(out.dropped, 1);
    assert_int_equal(groupTexts(p, "Q00", "1"), 1);
    json_decref(p);
    json_decref(row);
    historyRowsFree(&out);
}

/* Batches of 1 to 5 readings, in time order over three hours, each folded on the row as the last
 * one committed it: after every batch, what the readers see (historySlotsView, and the frozen hour
 * rows) holds every reading once, with the count, minimum, maximum and sum of an independent
 * tally (the writer puts a batch's readings into the slots only when it cuts a chunk or the hour
 * changes; before that they are in groups "<gen>:"). */
static void test_fold_slots_view_sequence(void **state) {
    (void)state;
    enum { MAXN = 1200 };
    static reading r[MAXN];
    static historyReading v[MAXN];
    static historyMinute tally[3][60];
    int64_t hourCount[3] = {0, 0, 0}, frozenCount[3] = {0, 0, 0};
    json_t *row = json_object();
    size_t total = 0, stays = 0;
    unsigned seed = 12345;
    int64_t t = T0;
    memset(tally, 0, sizeof(tally));
    while (total < MAXN - 5) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 5;
        for (size_t i = 0; i < n; i++, total++) {
            seed = seed * 1103515245u + 12345u;
            t += 1000 + (int64_t)((seed >> 16) % 17000); /* about 10 s apart: 3 hours */
            r[total] = mk(15 + (double)((seed >> 8) % 100) / 10, 40 + (double)(seed % 7));
            v[total] = (historyReading){"dv", &r[total], "0", 1000 + (int64_t)total, 0, t};
        }
        if (t >= T0 + 3 * HOUR) {
            total -= n;
            break;
        }
        json_t *p = json_object();
        historyRows out = {0};
        assert_int_equal(historyFold(row, "dv", v + total - n, n, p, &out), 0);
        assert_int_equal(out.late, 0);
        stays += json_object_get(p, "HistHour") == NULL && json_object_get(p, "Q00") == NULL;
        for (size_t i = 0; i < out.n; i++) {
            static const char *const pks[3] = {"h2025120210", "h2025120211", "h2025120212"};
            historySummary fs;
            if (!out.v[i].frozen) continue;
            historySummaryFromRow(out.v[i].props, &fs);
            for (int k = 0; k < 3; k++)
                if (strcmp(out.v[i].pk, pks[k]) == 0) frozenCount[k] = fs.count;
        }
        historyRowsFree(&out);
        json_object_update(row, p);
        json_decref(p);
        for (size_t i = total - n; i < total; i++) {
            int64_t ms = v[i].enqueuedMs - T0;
            historyMinute *mi = &tally[ms / HOUR][(ms / 60000) % 60];
            mi->count++;
            for (int m = 0; m < METRIC_COUNT; m++) {
                if (!r[i].has[m]) continue;
                historyAgg *a = &mi->m[m];
                if (!a->n || r[i].value[m] < a->min) a->min = r[i].value[m];
                if (!a->n || r[i].value[m] > a->max) a->max = r[i].value[m];
                a->sum = historySumAdd(a->sum, r[i].value[m]);
                a->n++;
            }
            hourCount[ms / HOUR]++;
        }
        int64_t minute[60];
        historyMinute view[60];
        int64_t hh = historySlotsView(row, minute, view) - T0 / HOUR;
        assert_true(hh >= 0 && hh < 3);
        for (int i = 0; i < 60; i++) {
            const historyMinute *want = &tally[hh][i];
            if (!want->count) continue;
            assert_int_equal(minute[i], T0 / 60000 + hh * 60 + i);
            assert_int_equal(view[i].count, want->count);
            for (int m = 0; m < METRIC_COUNT; m++) {
                assert_int_equal(view[i].m[m].n, want->m[m].n);
                if (!want->m[m].n) continue;
                assert_true(view[i].m[m].min == want->m[m].min);
                assert_true(view[i].m[m].max == want->m[m].max);
                assert_true(view[i].m[m].sum == want->m[m].sum);
            }
        }
        for (int k = 0; k < hh; k++)
            assert_int_equal(frozenCount[k], hourCount[k]); /* closed hours: written whole */
    }
    assert_true(total > 900);
    assert_true(stays > 150); /* most batches left the slots alone */
    json_decref(row);
}

/* Light has no range: two readings of 1e308 in one minute overflowed the minute's sum to inf,
 * the slot text then read back as malformed and the next batch restarted the minute from zero
 * (readings lost from every summary). The sum saturates instead: count, min and max stay exact. */
static void test_fold_huge_values(void **state) {
    (void)state;
    reading r[3];
    historyReading v[3];
    readings(v, r, 3, T0, 1);
    for (int i = 0; i < 3; i++) {
        r[i].has[METRIC_LIGHT] = 1;
        r[i].value[METRIC_LIGHT] = i == 2 ? -0.0 : 1e308;
    }
    json_t *row = json_object();
    historyRows out = {0};
    assert_int_equal(historyFold(NULL, "dv", v, 2, row, &out), 0);
    const char *t = json_string_value(json_object_get(row, "Min00"));
    historyMinute mi;
    assert_non_null(t);
    assert_int_equal(historyMinuteParse(strchr(t, ';') + 1, &mi), 0);
    assert_int_equal(mi.count, 2);
    assert_true(mi.m[METRIC_LIGHT].max == 1e308);
    /* the next batch on the committed row: the minute goes on from 2 (in the slots' readers'
     * view; the writer adds it to the slot when it next cuts a chunk) */
    json_t *p = json_object();
    assert_int_equal(historyFold(row, "dv", v + 2, 1, p, &out), 0);
    assert_null(json_object_get(p, "Min00"));
    json_object_update(row, p);
    int64_t minute[60];
    historyMinute view[60];
    historySlotsView(row, minute, view);
    mi = view[0];
    assert_int_equal(mi.count, 3);
    assert_int_equal(mi.m[METRIC_LIGHT].n, 3);
    assert_true(mi.m[METRIC_LIGHT].min == 0);
    assert_true(historySumAdd(-1e308, -1e308) == -DBL_MAX);
    assert_true(historySumAdd(1e308, -1e308) == 0);
    json_decref(row);
    json_decref(p);
    historyRowsFree(&out);
}

/* Sequence numbers run to INT64_MAX (19 digits; invocation.c accepts them): a reading text with
 * one must read back, or every reader drops the reading as unreadable. */
static void test_reading_text_big_sequence(void **state) {
    (void)state;
    reading r = mk(21.5, 50);
    historyReading v = {"d", &r, "0", INT64_MAX, 0, 1764669600123LL};
    char t[HISTORY_READING_MAX];
    historyParsed p;
    assert_true(historyReadingText(&v, t, sizeof(t)) > 0);
    assert_int_equal(historyReadingParse(t, strlen(t), &p), 0);
    assert_true(p.seq == INT64_MAX);
    const char *bad[] = {"1;p;9223372036854775808;0;;;;", /* past INT64_MAX */
                         "1;p;99999999999999999999;0;;;;"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(historyReadingParse(bad[i], strlen(bad[i]), &p), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_key),
        cmocka_unit_test(test_row_key),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_summary_row),
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_reading_text),
        cmocka_unit_test(test_fold_chunks_and_pending),
        cmocka_unit_test(test_fold_hour_boundary_and_late),
        cmocka_unit_test(test_fold_hundred_readings),
        cmocka_unit_test(test_fold_bad_rows),
        cmocka_unit_test(test_pending_groups),
        cmocka_unit_test(test_parse_double_is_strtod),
        cmocka_unit_test(test_fold_huge_values),
        cmocka_unit_test(test_fold_slots_view_sequence),
        cmocka_unit_test(test_reading_text_big_sequence),
    };
    return cmocka_run_group_tests_name("history", tests, NULL, NULL);
}
