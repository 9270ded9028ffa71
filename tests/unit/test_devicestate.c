/* Unit tests: devicestate (folding readings into a row, replays, backoff bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devicestate.h"
#include "table.h"

#include <string.h>

static reading make(double celsius, double humidity) {
    reading r;
    memset(&r, 0, sizeof(r));
    r.has[METRIC_CELSIUS] = r.has[METRIC_HUMIDITY] = 1;
    r.value[METRIC_CELSIUS] = celsius;
    r.value[METRIC_HUMIDITY] = humidity;
    return r;
}

static void test_fold_new_row(void **state) {
    (void)state;
    reading a = make(20, 50), b = make(21, 51);
    deviceEntry e[3] = {{&a, 1, 10, 1000}, {NULL, 1, 11, 2000}, {&b, 1, 12, 3000}};
    size_t applied, replayed;
    json_t *p = devicestateFold(NULL, "0", "Sydney", e, 3, 5000, &applied, &replayed);
    assert_non_null(p);
    assert_int_equal(applied, 3);
    assert_int_equal(replayed, 0);
    assert_int_equal(tableGetInt64(p, "Count", -1), 2);
    assert_int_equal(tableGetInt64(p, "Rejected", -1), 1);
    assert_int_equal(tableGetInt64(p, "SeqP0", -1), 12);
    assert_float_equal(json_real_value(json_object_get(p, "Celsius")), 21, 1e-9);
    assert_string_equal(json_string_value(json_object_get(p, "Geo")), "Sydney");
    assert_string_equal(json_string_value(json_object_get(p, "LastSeen")),
                        "1970-01-01T00:00:03.000Z");
    json_decref(p);
}

static void test_fold_replay_skipped(void **state) {
    (void)state;
    reading a = make(20, 50), b = make(30, 60);
    json_t *row =
        json_loads("{\"RowKey\":\"d\",\"Count\":\"5\",\"Rejected\":\"1\",\"SeqP0\":\"11\","
                   "\"LastSeen\":\"1970-01-01T00:00:01.000Z\",\"Celsius\":19}",
                   0, NULL);
    deviceEntry e[2] = {{&a, 1, 11, 1500}, {&b, 1, 12, 2500}};
    size_t applied, replayed;
    json_t *p = devicestateFold(row, "0", "Sydney", e, 2, 9000, &applied, &replayed);
    assert_int_equal(applied, 1);
    assert_int_equal(replayed, 1);
    assert_int_equal(tableGetInt64(p, "Count", -1), 6);
    assert_int_equal(tableGetInt64(p, "Rejected", -1), 1);
    assert_int_equal(tableGetInt64(p, "SeqP0", -1), 12);
    assert_float_equal(json_real_value(json_object_get(p, "Celsius")), 30, 1e-9);
    json_decref(p);

    /* the whole batch again: nothing to write */
    e[0].seq = 10;
    p = devicestateFold(row, "0", "Sydney", e, 1, 9000, &applied, &replayed);
    assert_null(p);
    assert_int_equal(replayed, 1);

    /* another partition has its own sequence */
    p = devicestateFold(row, "3", "Sydney", e, 1, 9000, &applied, &replayed);
    assert_non_null(p);
    assert_int_equal(tableGetInt64(p, "SeqP3", -1), 10);
    assert_int_equal(tableGetInt64(p, "Count", -1), 6);
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
    deviceEntry e[1] = {{&a, 1, 1, 2000}};
    size_t applied, replayed;
    json_t *p = devicestateFold(row, "1", NULL, e, 1, 9000, &applied, &replayed);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_new_row),
        cmocka_unit_test(test_fold_replay_skipped),
        cmocka_unit_test(test_fold_keeps_later_values),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_seq_property),
    };
    return cmocka_run_group_tests_name("devicestate", tests, NULL, NULL);
}
