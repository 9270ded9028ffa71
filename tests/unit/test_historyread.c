/* Unit tests: historyread (reading texts, chunk rows, pending slots, v1 rows, minute slots, groups
 * de-duplicated and in time order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "historyread.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_parse(void **state) {
    (void)state;
    historyreadReading r;
    const char *t = "1764669600123;3;00042;2;21.5;;1013.25;-0";
    assert_int_equal(historyreadParse(t, strlen(t), &r), 0);
    assert_int_equal(r.ms, 1764669600123LL);
    assert_string_equal(r.partition, "3");
    assert_int_equal(r.seq, 42);
    assert_int_equal(r.k, 2);
    assert_int_equal(r.has[0], 1);
    assert_true(r.value[0] == 21.5);
    assert_int_equal(r.has[1], 0);
    assert_true(r.value[2] == 1013.25);
    assert_int_equal(r.has[3], 1);
    /* %.17g values, a percent-encoded partition, every metric empty */
    t = "1764669600123;a%2Fb%20c;999999999999999999;0;0.10000000000000001;1e+300;;";
    assert_int_equal(historyreadParse(t, strlen(t), &r), 0);
    assert_string_equal(r.partition, "a/b c");
    assert_int_equal(r.seq, 999999999999999999LL); /* 18 digits: the most history.c reads */
    assert_true(r.value[0] == 0.1);
    assert_int_equal(r.has[2] + r.has[3], 0);
    /* len bounds the text: what follows is not read */
    assert_int_equal(historyreadParse("1;p;2;3;4;5;6;7XYZ", 15, &r), 0);
    assert_true(r.value[3] == 7);
}

static void test_parse_rejects(void **state) {
    (void)state;
    historyreadReading r;
    const char *bad[] = {
        "",
        "1;p;2;3;4;5;6",                  /* seven fields */
        "1;p;2;3;4;5;6;7;8",              /* nine */
        "x;p;2;3;4;5;6;7",                /* ms not a number */
        "-1;p;2;3;4;5;6;7",               /* negative */
        "12345678901234;p;2;3;;;;",       /* 14 digits of ms */
        "1;p;;3;;;;",                     /* no seq */
        "1;p;2;-3;;;;",                   /* negative k */
        "1;p;99999999999999999999;3;;;;", /* seq past int64 */
        "1;p%2;2;3;;;;",                  /* cut escape */
        "1;p%zz;2;3;;;;",                 /* bad escape */
        "1;p%00;2;3;;;;",                 /* encoded NUL */
        "1;p;2;3;nan;;;",                 /* not finite */
        "1;p;2;3;inf;;;",
        "1;p;2;3;1e999;;;", /* overflows */
        "1;p;2;3;12abc;;;", /* trailing junk */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (historyreadParse(bad[i], strlen(bad[i]), &r) == 0) fail_msg("accepted '%s'", bad[i]);
    }
    char longp[200];
    memset(longp, 'p', sizeof(longp));
    char text[400];
    snprintf(text, sizeof(text), "1;%.*s;2;3;;;;", (int)sizeof(longp), longp);
    assert_int_equal(historyreadParse(text, strlen(text), &r), -1); /* partition over 64 bytes */
}

typedef struct collected {
    historyreadReading v[64];
    int n, stopAt;
} collected;

static int collect(const historyreadReading *r, void *ctx) {
    collected *c = ctx;
    c->v[c->n++] = *r;
    return c->stopAt && c->n == c->stopAt;
}

static void test_chunk(void **state) {
    (void)state;
    collected c = {.n = 0};
    size_t bad = 0;
    const char *text = "1000;0;5;0;1;;;\n1000;0;5;1;2;;;\ngarbage\n\n2000;0;6;0;3;;;";
    assert_int_equal(historyreadChunk(text, collect, &c, &bad), 3);
    assert_int_equal(bad, 1);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.v[1].k, 1);
    assert_int_equal(c.v[2].seq, 6);
    /* the callback stops the walk */
    collected s = {.stopAt = 2};
    assert_int_equal(historyreadChunk(text, collect, &s, NULL), -1);
    assert_int_equal(s.n, 2);
    assert_int_equal(historyreadChunk("", collect, &s, NULL), 0);
}

static void test_pending(void **state) {
    (void)state;
    json_t *row = json_pack("{s:s,s:s,s:s,s:s,s:s}", "PendN", "2", "P00", "1000;1;7;0;1;;;", "P01",
                            "1500;1;8;0;2;;;", "P02", "9999;1;99;0;3;;;", "P03", "stale");
    collected c = {.n = 0};
    size_t bad = 0;
    /* PendN says two: P02 and beyond are stale slots, never read */
    assert_int_equal(historyreadPending(row, collect, &c, &bad), 2);
    assert_int_equal(bad, 0);
    assert_int_equal(c.v[1].seq, 8);
    json_object_set_new(row, "PendN", json_integer(4));
    c.n = 0;
    assert_int_equal(historyreadPending(row, collect, &c, &bad), 3);
    assert_int_equal(bad, 1);
    json_object_set_new(row, "PendN", json_integer(1000)); /* capped at 32 */
    c.n = 0;
    bad = 0;
    assert_int_equal(historyreadPending(row, collect, &c, &bad), 3);
    assert_int_equal(bad, 29);
    json_decref(row);
    json_t *none = json_object();
    assert_int_equal(historyreadPending(none, collect, &c, NULL), 0);
    json_decref(none);
}

static void test_v1_row(void **state) {
    (void)state;
    historyreadReading r;
    json_t *row = json_pack("{s:s,s:s,s:s,s:f,s:i,s:s,s:s}", "RowKey",
                            "hp x 1764669600123 3 00000000000000000042 2", "DeviceId", "hp x",
                            "Time", "2025-12-02T10:00:00.1234567Z", "Celsius", 21.5, "hPa", 1000,
                            "Partition", "3", "SequenceNumber", "42");
    assert_int_equal(historyreadFromV1(row, &r), 0);
    assert_int_equal(r.ms, 1764669600123LL);
    assert_int_equal(r.seq, 42);
    assert_int_equal(r.k, 2);
    assert_string_equal(r.partition, "3");
    assert_true(r.has[0] && r.value[0] == 21.5 && r.has[2] && r.value[2] == 1000);
    assert_false(r.has[1]);
    json_object_set_new(row, "Time", json_string("yesterday"));
    assert_int_equal(historyreadFromV1(row, &r), -1);
    json_decref(row);
}

static void test_slots(void **state) {
    (void)state;
    int64_t hour = 490186; /* a unix hour */
    int64_t first = hour * 60;
    char s05[64], s06[64], s07[64];
    snprintf(s05, sizeof(s05), "%lld;2|2,20,22,42|0,,,|0,,,|0,,,", (long long)(first + 5));
    snprintf(s06, sizeof(s06), "%lld;1|1,30,30,30|0,,,|0,,,|0,,,", (long long)(first + 6 - 60));
    snprintf(s07, sizeof(s07), "%lld;1|1,bad", (long long)(first + 7));
    json_t *row = json_pack("{s:I,s:s,s:s,s:s,s:s}", "HistHour", (json_int_t)hour, "Min05", s05,
                            "Min06", s06, "Min07", s07, "Min08", "junk");
    historyMinute m[60];
    assert_int_equal(historyreadHistHour(row), hour);
    /* minute 6 holds the hour before: not this hour's; 7 and 8 are malformed */
    assert_int_equal(historyreadSlots(row, first, m), 1);
    assert_int_equal(m[5].count, 2);
    assert_true(m[5].m[0].min == 20 && m[5].m[0].max == 22 && m[5].m[0].sum == 42);
    assert_int_equal(m[6].count, 0);
    /* a window of 60 minutes that starts in the hour before: minute 6 of that hour is its first
     * minute, minute 5 of this hour its last */
    assert_int_equal(historyreadSlots(row, first - 54, m), 2);
    assert_int_equal(m[0].count, 1);
    assert_int_equal(m[59].count, 2);
    json_decref(row);
    json_t *none = json_object();
    assert_int_equal(historyreadHistHour(none), -1);
    assert_int_equal(historyreadSlots(none, first, m), 0);
    json_decref(none);
}

/* What historyreadLastHour wrote before its printf-free path: %.2f without trailing zeros, "-0"
 * made "0", %.6g past 1e9. */
static void meanReference(double v, char *out, size_t outlen) {
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

static void checkMean(double v) {
    char got[48], want[48];
    size_t n = historyreadMeanText(v, got, sizeof(got));
    meanReference(v, want, sizeof(want));
    if (strcmp(got, want) != 0 || n != strlen(want))
        fail_msg("mean %.17g: \"%s\", printf says \"%s\"", v, got, want);
}

static void test_mean_text(void **state) {
    (void)state;
    const double fixed[] = {
        0,          -0.0,     0.004,     -0.004,     0.005, -0.005, 0.015,  0.125,
        -0.125,     1.005,    2.675,     21.1,       21.06, -0.5,   1012,   999999.995,
        999999.994, 1e6,      -1e6,      123456.785, 5e8,   1e9,    -1e9,   1e10,
        1e-300,     INFINITY, -INFINITY, NAN,        0.285, 1.115,  20.125, 1000.0049999999999};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        checkMean(fixed[i]);
    /* every hundredth and the halves between them, and a few ulps either side, over the
     * metrics' ranges */
    for (int c = -5000; c <= 200000; c++) {
        double base = c / 100.0, half = (c + 0.5) / 100.0;
        checkMean(base);
        checkMean(half);
        checkMean(nextafter(half, INFINITY));
        checkMean(nextafter(half, -INFINITY));
        checkMean(nextafter(nextafter(half, -INFINITY), -INFINITY));
    }
    /* means of sums: what the fold makes */
    uint64_t seed = 12345;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int n = 1 + (int)(seed >> 60);
        double sum = 0;
        for (int k = 0; k < n; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            sum += (double)((int64_t)(seed >> 40) % 200000 - 40000) / 1000.0; /* 3 decimals */
        }
        checkMean(sum / n);
        checkMean((double)(int64_t)(seed >> 20) / 7.0 * (i % 2 ? 1 : -1)); /* up to 2^44 / 7 */
    }
}

static void test_last_hour(void **state) {
    (void)state;
    int64_t now = 29411520 + 59; /* 2025-12-02T16:59Z, minute 59 of its hour */
    char s0[80], s1[80], s2[80];
    snprintf(s0, sizeof(s0), "%lld;2|2,20,22,42|1,50,50,50|0,,,|0,,,", (long long)(now - 59));
    snprintf(s1, sizeof(s1), "%lld;1|1,21.123456789,21.123456789,21.123456789|0,,,|0,,,|0,,,",
             (long long)now);
    snprintf(s2, sizeof(s2), "%lld;1|1,30,30,30|0,,,|0,,,|0,,,", (long long)(now - 60));
    /* minute-of-hour 0 holds now-59, 59 holds now; slot 58 holds a minute an hour too old */
    json_t *row = json_pack("{s:s,s:s,s:s}", "Min00", s0, "Min59", s1, "Min58", s2);
    buf b;
    bufInit(&b, 4096);
    assert_int_equal(historyreadLastHour(row, now, &b), 2);
    assert_int_equal(bufAppend(&b, "", 1), 0);
    assert_string_equal(b.data, "{\"from\":\"2025-12-02T16:00:00.000Z\",\"minute\":[0,59],"
                                "\"temperature\":[21,21.12],\"humidity\":[50,null]}");
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j); /* valid JSON */
    json_decref(j);
    bufFree(&b);
    /* rounding: -0.004 is 0, 1012.00 is 1012, 1e10 stays a number */
    char s3[96];
    snprintf(s3, sizeof(s3), "%lld;1|1,-0.004,-0.004,-0.004|1,1012,1012,1012|1,1e10,1e10,1e10|0,,,",
             (long long)(now - 58));
    json_t *r3 = json_pack("{s:s}", "Min01", s3);
    buf c;
    bufInit(&c, 4096);
    assert_int_equal(historyreadLastHour(r3, now, &c), 1);
    assert_int_equal(bufAppend(&c, "", 1), 0);
    assert_non_null(strstr(c.data, "\"temperature\":[0],\"humidity\":[1012],\"pressure\":[1e+10]"));
    bufFree(&c);
    json_decref(r3);
    /* nothing in the hour: nothing appended */
    bufInit(&b, 4096);
    assert_int_equal(historyreadLastHour(row, now + 120, &b), 0);
    assert_int_equal(b.len, 0);
    /* a buffer too small: -1 */
    buf small;
    bufInit(&small, 16);
    assert_int_equal(historyreadLastHour(row, now, &small), -1);
    bufFree(&small);
    bufFree(&b);
    json_decref(row);
}

static historyreadReading rd(int64_t ms, const char *p, int64_t seq, int64_t k, double v) {
    historyreadReading r;
    memset(&r, 0, sizeof(r));
    r.ms = ms;
    snprintf(r.partition, sizeof(r.partition), "%s", p);
    r.seq = seq;
    r.k = k;
    r.has[0] = 1;
    r.value[0] = v;
    return r;
}

static void test_group(void **state) {
    (void)state;
    historyreadGroup g;
    historyreadGroupInit(&g);
    /* an orphan chunk [a1 a2 b1 b2 b3], the committed one [a1 a2 a3 b1 b2], then pending [b3 b4]:
     * partition b lags behind a (earlier enqueued times) */
    historyreadReading in[] = {
        rd(1000, "a", 1, 0, 1), rd(1001, "a", 2, 0, 2), rd(500, "b", 1, 0, 3),
        rd(501, "b", 2, 0, 4),  rd(502, "b", 3, 0, 5),  rd(1000, "a", 1, 0, 1),
        rd(1001, "a", 2, 0, 2), rd(1002, "a", 3, 0, 6), rd(500, "b", 1, 0, 3),
        rd(501, "b", 2, 0, 4),  rd(502, "b", 3, 0, 5),  rd(503, "b", 4, 0, 7),
        rd(503, "b", 4, 1, 8), /* the same event's second reading */
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        assert_int_equal(historyreadGroupAdd(&g, &in[i]), 0);
    assert_int_equal(historyreadGroupSettle(&g), 8);
    assert_int_equal(g.dropped, 5);
    double want[] = {3, 4, 5, 7, 8, 1, 2, 6}; /* in time order */
    for (size_t i = 0; i < 8; i++)
        assert_true(g.v[i].value[0] == want[i]);
    historyreadGroupClear(&g);
    assert_int_equal(historyreadGroupSettle(&g), 0);
    /* capped */
    historyreadReading r = rd(1, "p", 1, 0, 0);
    size_t added = 0;
    while (historyreadGroupAdd(&g, &r) == 0)
        r.seq = (int64_t)++added + 1;
    assert_int_equal(added, HISTORYREAD_GROUP_MAX);
    historyreadGroupFree(&g);
    historyreadGroupFree(&g); /* twice is fine */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),     cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_chunk),     cmocka_unit_test(test_pending),
        cmocka_unit_test(test_v1_row),    cmocka_unit_test(test_slots),
        cmocka_unit_test(test_last_hour), cmocka_unit_test(test_mean_text),
        cmocka_unit_test(test_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
