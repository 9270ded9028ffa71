/* Unit tests: devicestate (folding readings into a row, replays, backoff bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devicestate.h"
#include "settings.h"
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static reading make(double celsius, double humidity) {
    reading r;
    memset(&r, 0, sizeof(r));
    r.has[METRIC_CELSIUS] = r.has[METRIC_HUMIDITY] = 1;
    r.value[METRIC_CELSIUS] = celsius;
    r.value[METRIC_HUMIDITY] = humidity;
    return r;
}

static const devicestateSource hubA0 = {"ns-a.servicebus.windows.net", "iothub-a", "0"};
static const devicestateSource hubB0 = {"ns-b.servicebus.windows.net", "iothub-b", "0"};

/* The Watermarks entry of src in p (or row), -1 when it has none. */
static int64_t watermark_of(const json_t *p, const devicestateSource *src) {
    char key[256], pat[300];
    assert_int_equal(devicestateWatermarkKey(src, key, sizeof(key)), 0);
    const char *text = json_string_value(json_object_get(p, DEVICESTATE_WATERMARKS));
    if (!text) return -1;
    snprintf(pat, sizeof(pat), "%s=", key);
    for (const char *t = text; (t = strstr(t, pat)) != NULL; t++)
        if (t == text || t[-1] == ' ') return strtoll(t + strlen(pat), NULL, 10);
    return -1;
}

/* Applies p to row as a merge does. */
static void merge(json_t *row, json_t *p) {
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) {
        if (!strchr(k, '@')) json_object_set(row, k, v);
    }
}

static void test_fold_new_row(void **state) {
    (void)state;
    reading a = make(20, 50), b = make(21, 51);
    deviceEntry e[3] = {{&a, 1, 10, 1000, 0}, {NULL, 1, 11, 2000, 0}, {&b, 1, 12, 3000, 0}};
    devicestateFoldResult f;
    json_t *p = devicestateFold(NULL, &hubA0, "Sydney", e, 3, 5000, &f);
    assert_non_null(p);
    assert_int_equal(f.applied, 3);
    assert_int_equal(f.replayed, 0);
    assert_int_equal(tableGetInt64(p, "Count", -1), 2);
    assert_int_equal(tableGetInt64(p, "Rejected", -1), 1);
    assert_int_equal(watermark_of(p, &hubA0), 12);
    assert_null(json_object_get(p, "SeqP0")); /* no legacy property for a new row */
    assert_float_equal(json_real_value(json_object_get(p, "Celsius")), 21, 1e-9);
    assert_string_equal(json_string_value(json_object_get(p, "Geo")), "Sydney");
    assert_string_equal(json_string_value(json_object_get(p, "LastSeen")),
                        "1970-01-01T00:00:03.000Z");
    json_decref(p);
}

static void test_fold_replay_skipped(void **state) {
    (void)state;
    reading a = make(20, 50), b = make(30, 60);
    json_t *row = json_loads("{\"RowKey\":\"d\",\"Count\":\"5\",\"Rejected\":\"1\","
                             "\"LastSeen\":\"1970-01-01T00:00:01.000Z\",\"Celsius\":19}",
                             0, NULL);
    deviceEntry first[1] = {{&a, 1, 11, 1000, 0}};
    devicestateFoldResult f;
    json_t *p = devicestateFold(row, &hubA0, "Sydney", first, 1, 9000, &f);
    merge(row, p);
    json_decref(p);

    deviceEntry e[2] = {{&a, 1, 11, 1500, 0}, {&b, 1, 12, 2500, 0}};
    p = devicestateFold(row, &hubA0, "Sydney", e, 2, 9000, &f);
    assert_int_equal(f.applied, 1);
    assert_int_equal(f.replayed, 1);
    assert_int_equal(f.replayFirst, 11);
    assert_int_equal(f.replayLast, 11);
    assert_int_equal(f.watermark, 11);
    assert_false(f.legacy);
    assert_int_equal(tableGetInt64(p, "Count", -1), 7);
    assert_int_equal(watermark_of(p, &hubA0), 12);
    assert_float_equal(json_real_value(json_object_get(p, "Celsius")), 30, 1e-9);
    json_decref(p);

    /* the whole batch again: nothing to write */
    e[0].seq = 10;
    p = devicestateFold(row, &hubA0, "Sydney", e, 1, 9000, &f);
    assert_null(p);
    assert_int_equal(f.replayed, 1);

    /* another partition has its own sequence */
    devicestateSource a3 = hubA0;
    a3.partition = "3";
    p = devicestateFold(row, &a3, "Sydney", e, 1, 9000, &f);
    assert_non_null(p);
    assert_int_equal(watermark_of(p, &a3), 10);
    assert_int_equal(watermark_of(p, &hubA0), 11); /* kept */
    assert_int_equal(tableGetInt64(p, "Count", -1), 7);
    json_decref(p);
    json_decref(row);
}

/* The reproduction: after a hub change, sequence numbers restart low; every reading
 * must count (it was 10 of 20). */
static void test_fold_hub_change_counts_everything(void **state) {
    (void)state;
    reading r = make(20, 50);
    json_t *row = json_object();
    deviceEntry e[10];
    devicestateFoldResult f;
    for (int i = 0; i < 10; i++)
        e[i] = (deviceEntry){&r, 1, 500 + i, 1000 + i, 0};
    json_t *p = devicestateFold(row, &hubA0, NULL, e, 10, 0, &f);
    merge(row, p);
    json_decref(p);
    for (int i = 0; i < 10; i++)
        e[i] = (deviceEntry){&r, 1, i, 5000 + i, 0}; /* the new hub numbers from 0 */
    p = devicestateFold(row, &hubB0, NULL, e, 10, 0, &f);
    assert_non_null(p);
    assert_int_equal(f.applied, 10);
    assert_int_equal(f.replayed, 0);
    merge(row, p);
    json_decref(p);
    assert_int_equal(tableGetInt64(row, "Count", -1), 20);
    assert_int_equal(watermark_of(row, &hubA0), 509);
    assert_int_equal(watermark_of(row, &hubB0), 9);

    /* the namespace and hub names are compared without regard to case; the partition is not */
    devicestateSource upper = {"NS-B.servicebus.windows.net", "IoTHub-B", "0"};
    p = devicestateFold(row, &upper, NULL, e, 10, 0, &f);
    assert_null(p);
    assert_int_equal(f.replayed, 10);
    /* only the namespace differs: another hub */
    devicestateSource otherNs = {"ns-c.servicebus.windows.net", "iothub-b", "0"};
    p = devicestateFold(row, &otherNs, NULL, e, 10, 0, &f);
    assert_int_equal(f.applied, 10);
    json_decref(p);
    json_decref(row);
}

static void test_fold_partitions_do_not_collide(void **state) {
    (void)state;
    reading r = make(20, 50);
    devicestateSource ab = {"ns", "hub", "a-b"}, a_b = {"ns", "hub", "a_b"};
    char k1[256], k2[256];
    assert_int_equal(devicestateWatermarkKey(&ab, k1, sizeof(k1)), 0);
    assert_int_equal(devicestateWatermarkKey(&a_b, k2, sizeof(k2)), 0);
    assert_string_not_equal(k1, k2);
    devicestateSource odd = {"ns", "hub", "p/q=r s%"};
    assert_int_equal(devicestateWatermarkKey(&odd, k1, sizeof(k1)), 0);
    assert_null(strchr(k1, ' '));
    assert_null(strchr(k1, '='));

    json_t *row = json_object();
    deviceEntry e[1] = {{&r, 1, 40, 1000, 0}};
    devicestateFoldResult f;
    json_t *p = devicestateFold(row, &ab, NULL, e, 1, 0, &f);
    merge(row, p);
    json_decref(p);
    e[0].seq = 7; /* below a-b's watermark, but a_b is another partition */
    p = devicestateFold(row, &a_b, NULL, e, 1, 0, &f);
    assert_non_null(p);
    assert_int_equal(f.applied, 1);
    merge(row, p);
    json_decref(p);
    assert_int_equal(watermark_of(row, &ab), 40);
    assert_int_equal(watermark_of(row, &a_b), 7);
    /* hub names cannot be spelt as one another by moving characters between the two */
    devicestateSource x = {"ab", "c", "0"}, y = {"a", "bc", "0"};
    char h1[DEVICESTATE_HUB_ID_LEN + 1], h2[DEVICESTATE_HUB_ID_LEN + 1];
    devicestateHubId(&x, h1);
    devicestateHubId(&y, h2);
    assert_string_not_equal(h1, h2);
    json_decref(row);
}

/* A row written by the earlier version (SeqP<partition>, no hub): replays of the hub in use at
 * the upgrade are still skipped; a new hub's events never are. */
static void test_fold_legacy_row(void **state) {
    (void)state;
    reading r = make(20, 50);
    const char *legacy = "{\"RowKey\":\"d\",\"Count\":\"50\",\"Rejected\":\"0\",\"SeqP0\":\"50\","
                         "\"SeqP1\":\"70\",\"LastSeen\":\"1970-01-01T00:00:10.000Z\"}";
    json_t *row = json_loads(legacy, 0, NULL);
    deviceEntry e[4] = {
        {&r, 1, 47, 9000, 0}, {&r, 1, 50, 10000, 0}, {&r, 1, 51, 11000, 0}, {&r, 1, 52, 12000, 0}};
    devicestateFoldResult f;
    /* the host replays from its checkpoint: 47 and 50 were applied, 51 and 52 are new */
    json_t *p = devicestateFold(row, &hubA0, NULL, e, 4, 0, &f);
    assert_int_equal(f.replayed, 2);
    assert_true(f.legacy);
    assert_int_equal(f.watermark, 50);
    assert_int_equal(tableGetInt64(p, "Count", -1), 52);
    assert_int_equal(watermark_of(p, &hubA0), 52);
    assert_int_equal(tableGetInt64(p, "SeqP0", 0), -1); /* migrated: retired */
    assert_null(json_object_get(p, "SeqP1"));           /* partition 1 keeps its own */
    merge(row, p);
    json_decref(p);
    /* a replay after the migration: the new watermark covers it */
    p = devicestateFold(row, &hubA0, NULL, e, 4, 0, &f);
    assert_null(p);
    assert_int_equal(f.replayed, 4);
    assert_false(f.legacy);
    json_decref(row);

    /* The hub changed at the upgrade: the new hub numbers from 0, its events enqueued after the
     * row's LastSeen. None of them is skipped. */
    row = json_loads(legacy, 0, NULL);
    deviceEntry n[3] = {{&r, 1, 0, 20000, 0}, {&r, 1, 1, 21000, 0}, {&r, 1, 2, 22000, 0}};
    p = devicestateFold(row, &hubB0, NULL, n, 3, 0, &f);
    assert_int_equal(f.applied, 3);
    assert_int_equal(tableGetInt64(p, "Count", -1), 53);
    merge(row, p);
    json_decref(p);
    /* and once the row names a hub, SeqP1 is not honoured for another one */
    devicestateSource a1 = hubA0;
    a1.partition = "1";
    deviceEntry old[1] = {{&r, 1, 60, 5000, 0}}; /* enqueued before LastSeen, below SeqP1 */
    p = devicestateFold(row, &a1, NULL, old, 1, 0, &f);
    assert_int_equal(f.applied, 1);
    /* a row naming two hubs retires every legacy watermark */
    assert_int_equal(tableGetInt64(p, "SeqP1", 0), -1);
    json_decref(p);
    json_decref(row);

    /* unknown enqueued time, and a saturated legacy value (the earlier version's overflow bug):
     * counted */
    row = json_loads("{\"Count\":\"1\",\"SeqP0\":\"9223372036854775807\","
                     "\"LastSeen\":\"1970-01-01T00:00:10.000Z\"}",
                     0, NULL);
    deviceEntry u[2] = {{&r, 1, 5, 1000, 0}, {&r, 1, 6, 0, 0}};
    p = devicestateFold(row, &hubA0, NULL, u, 2, 0, &f);
    assert_int_equal(f.applied, 2);
    json_decref(p);
    json_decref(row);
    row = json_loads("{\"Count\":\"1\",\"SeqP0\":\"9\",\"LastSeen\":\"1970-01-01T00:00:10.000Z\"}",
                     0, NULL);
    p = devicestateFold(row, &hubA0, NULL, u, 2, 0, &f);
    assert_int_equal(f.replayed, 1); /* 5, enqueued before LastSeen */
    assert_int_equal(f.applied, 1);  /* 6, enqueued time unknown */
    json_decref(p);
    json_decref(row);
}

/* Many hubs: the row stays one property, bounded; the least recently written entries go. */
static void test_fold_many_hubs_bounded(void **state) {
    (void)state;
    reading r = make(20, 50);
    json_t *row = json_object();
    char ns[64];
    size_t dropped = 0;
    for (int h = 0; h < 600; h++) {
        snprintf(ns, sizeof(ns), "ns-%d.servicebus.windows.net", h);
        devicestateSource src = {ns, "hub", "0"};
        deviceEntry e[1] = {{&r, 1, 1000 + h, 1000 + h, 0}};
        devicestateFoldResult f;
        json_t *p = devicestateFold(row, &src, NULL, e, 1, 0, &f);
        assert_non_null(p);
        dropped += f.dropped;
        merge(row, p);
        json_decref(p);
    }
    assert_int_equal(tableGetInt64(row, "Count", -1), 600);
    assert_true(dropped > 0);
    assert_true(json_object_size(row) < 20);
    const char *text = json_string_value(json_object_get(row, DEVICESTATE_WATERMARKS));
    assert_true(strlen(text) <= DEVICESTATE_WATERMARKS_MAX);
    /* the most recent hubs still deduplicate */
    for (int h = 599; h > 400; h--) {
        snprintf(ns, sizeof(ns), "ns-%d.servicebus.windows.net", h);
        devicestateSource src = {ns, "hub", "0"};
        assert_int_equal(watermark_of(row, &src), 1000 + h);
    }
    /* the oldest is gone: its events count again (never skipped) */
    devicestateSource first = {"ns-0.servicebus.windows.net", "hub", "0"};
    assert_int_equal(watermark_of(row, &first), -1);
    json_decref(row);
}

static void test_fold_corrupt_watermarks(void **state) {
    (void)state;
    reading r = make(20, 50);
    char key[256], text[600];
    devicestateWatermarkKey(&hubA0, key, sizeof(key));
    snprintf(text, sizeof(text), "junk %s=abc =5 %s=99999999999999999999 x/y=1", key, key);
    json_t *row = json_pack("{s:s}", DEVICESTATE_WATERMARKS, text);
    deviceEntry e[1] = {{&r, 1, 3, 1000, 0}};
    devicestateFoldResult f;
    json_t *p = devicestateFold(row, &hubA0, NULL, e, 1, 0, &f);
    assert_int_equal(f.applied, 1); /* nothing readable skips it */
    assert_int_equal(watermark_of(p, &hubA0), 3);
    json_decref(p);
    json_decref(row);
}

static void test_fold_keeps_later_values(void **state) {
    (void)state;
    /* The row already holds a reading enqueued later (from another partition): counts move,
     * values stay. */
    reading a = make(25, 55);
    json_t *row = json_loads("{\"Count\":\"1\",\"LastSeen\":\"1970-01-01T00:00:09.000Z\","
                             "\"Celsius\":19}",
                             0, NULL);
    deviceEntry e[1] = {{&a, 1, 1, 2000, 0}};
    devicestateSource p1 = {"ns", "hub", "1"};
    devicestateFoldResult f;
    json_t *p = devicestateFold(row, &p1, NULL, e, 1, 9000, &f);
    assert_int_equal(tableGetInt64(p, "Count", -1), 2);
    assert_null(json_object_get(p, "Celsius"));
    assert_null(json_object_get(p, "LastSeen"));
    json_decref(p);
    json_decref(row);
}

static void test_to_json(void **state) {
    (void)state;
    json_t *row = json_loads("{\"RowKey\":\"d<1>\",\"Count\":\"7\",\"Celsius\":20,\"hPa\":1000.5,"
                             "\"Geo\":\"Sydney\",\"LastSeen\":\"2026-11-27T08:00:00.000Z\"}",
                             0, NULL);
    json_t *o = devicestateToJson(row);
    char *text = json_dumps(o, JSON_COMPACT);
    assert_string_equal(text, "{\"deviceId\":\"d<1>\",\"temperature\":20.0,\"humidity\":null,"
                              "\"pressure\":1000.5,\"light\":null,\"geo\":\"Sydney\",\"count\":7,"
                              "\"rejected\":0,\"lastSeen\":\"2026-11-27T08:00:00.000Z\"}");
    free(text);
    json_decref(o);
    json_decref(row);
}

static void test_backoff_bounds(void **state) {
    (void)state;
    uint64_t rnd = 12345;
    for (int attempt = 0; attempt < 12; attempt++) {
        long hi = 40L << attempt;
        if (hi > 1000) hi = 1000;
        int seen_low = 0, seen_high = 0;
        for (int i = 0; i < 5000; i++) {
            int ms = devicestateBackoffMs(40, 1000, attempt, &rnd);
            if (ms < 40 || ms > hi) fail_msg("attempt %d: %d outside [40, %ld]", attempt, ms, hi);
            seen_low |= ms < 40 + (hi - 40) / 4 + 1;
            seen_high |= ms > hi - (hi - 40) / 4 - 1;
        }
        assert_true(seen_low && seen_high); /* spread over the range */
    }
    assert_int_equal(devicestateBackoffMs(50, 50, 3, &rnd), 50);
}

static void test_seq_property(void **state) {
    (void)state;
    char p[64];
    devicestateSeqProperty("12", p, sizeof(p));
    assert_string_equal(p, "SeqP12");
    devicestateSeqProperty("a-b/c", p, sizeof(p));
    assert_string_equal(p, "SeqPa_b_c");
    devicestateSeqProperty("", p, sizeof(p));
    assert_string_equal(p, "SeqP");
}

/* The row cache's estimate of a row carried through a merge (devicestateUpdate) is the one a
 * walk of the merged row gives (Remember with 0). */
static void test_cache_bytes_follow_merges(void **state) {
    (void)state;
    settings s;
    memset(&s, 0, sizeof(s));
    s.rowCacheBytes = 1 << 20;
    assert_int_equal(devicestateInit(&s), 0);
    char etag[160];
    size_t bytes, walked;
    json_t *row = json_pack("{s:s,s:i,s:s}", "RowKey", "d1", "Count", 3, "Q00", "1|abc");
    devicestateRemember("d1", row, "e1", 0);
    assert_int_equal(devicestateRecall("d1", &row, etag, sizeof(etag), &bytes), 1);
    assert_string_equal(etag, "e1");
    assert_true(bytes > 0);
    /* a longer value, a shorter one, a new property, a string become a number */
    json_t *props = json_pack("{s:s,s:s,s:s,s:i}", "Q00", "2|abcdefghijklmnop", "RowKey", "d",
                              "Min05", "29411165;1|1,20,20,20|0,,,|0,,,|0,,,", "Count", 4);
    bytes = devicestateUpdate(row, props, bytes);
    json_decref(props);
    devicestateRemember("d1", json_incref(row), "e2", bytes);
    assert_int_equal(devicestateRecall("d1", &row, etag, sizeof(etag), &walked), 1);
    json_decref(row); /* the cache's reference, handed over; one is left */
    assert_int_equal(walked, bytes);
    devicestateRemember("d1", row, "e3", 0); /* walked */
    assert_int_equal(devicestateRecall("d1", &row, etag, sizeof(etag), &walked), 1);
    assert_int_equal(walked, bytes);
    /* unknown stays unknown */
    props = json_pack("{s:i}", "Count", 5);
    assert_int_equal(devicestateUpdate(row, props, 0), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "Count")), 5);
    json_decref(props);
    json_decref(row);
    assert_int_equal(devicestateRecall("d1", &row, etag, sizeof(etag), &bytes), 0);
    devicestateShutdown();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_new_row),
        cmocka_unit_test(test_fold_replay_skipped),
        cmocka_unit_test(test_fold_hub_change_counts_everything),
        cmocka_unit_test(test_fold_partitions_do_not_collide),
        cmocka_unit_test(test_fold_legacy_row),
        cmocka_unit_test(test_fold_many_hubs_bounded),
        cmocka_unit_test(test_fold_corrupt_watermarks),
        cmocka_unit_test(test_fold_keeps_later_values),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_seq_property),
        cmocka_unit_test(test_cache_bytes_follow_merges),
    };
    return cmocka_run_group_tests_name("devicestate", tests, NULL, NULL);
}
