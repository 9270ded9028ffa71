/* Unit tests: telemetry (aliases, calibration, validation limits, non-finite values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "telemetry.h"

#include <math.h>
#include <string.h>

static reading parse(const char *text, int expect_ok, char *reason) {
    reading r;
    char why[TELEMETRY_REASON_LEN] = "";
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    int rc = telemetryNormalize(j, &r, why, sizeof(why));
    if ((rc == 0) != expect_ok)
        fail_msg("%s: expected %s, got '%s'", text, expect_ok ? "ok" : "error", why);
    if (reason) memcpy(reason, why, sizeof(why));
    r.bodyDeviceId = NULL; /* borrowed from j, freed below */
    r.geo = NULL;
    json_decref(j);
    return r;
}

static void test_aliases(void **state) {
    (void)state;
    /* first match wins, in the documented order */
    static const struct {
        const char *json;
        int metric;
        double value;
    } cases[] = {
        {"{\"temperature\":1,\"Temperature\":2,\"Celsius\":3}", METRIC_CELSIUS, 1},
        {"{\"Temperature\":2,\"Celsius\":3}", METRIC_CELSIUS, 2},
        {"{\"Celsius\":3}", METRIC_CELSIUS, 3},
        {"{\"humidity\":40,\"Humidity\":50}", METRIC_HUMIDITY, 40},
        {"{\"Humidity\":50}", METRIC_HUMIDITY, 50},
        {"{\"pressure\":1000,\"Pressure\":1001,\"hPa\":1002,\"HPa\":1003}", METRIC_HPA, 1000},
        {"{\"Pressure\":1001,\"hPa\":1002}", METRIC_HPA, 1001},
        {"{\"hPa\":1002,\"HPa\":1003}", METRIC_HPA, 1002},
        {"{\"HPa\":1003}", METRIC_HPA, 1003},
        {"{\"light\":7,\"Light\":8}", METRIC_LIGHT, 7},
        {"{\"temperature\":null,\"Celsius\":3}", METRIC_CELSIUS, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reading r = parse(cases[i].json, 1, NULL);
        assert_true(r.has[cases[i].metric]);
        assert_float_equal(r.value[cases[i].metric], cases[i].value, 1e-9);
    }
    json_t *j = json_loads("{\"DeviceId\":\"a\",\"Geo\":\"Perth\",\"Id\":12}", 0, NULL);
    reading r;
    char why[TELEMETRY_REASON_LEN];
    assert_int_equal(telemetryNormalize(j, &r, why, sizeof(why)), 0);
    assert_string_equal(r.bodyDeviceId, "a");
    assert_string_equal(r.geo, "Perth");
    assert_string_equal(r.id, "12");
    json_decref(j);
}

static void test_wrong_types(void **state) {
    (void)state;
    char why[TELEMETRY_REASON_LEN];
    parse("{\"temperature\":\"21.5\"}", 0, why);
    assert_string_equal(why, "temperature must be a number");
    parse("{\"humidity\":\"NaN\"}", 0, why);
    assert_string_equal(why, "humidity must be a number");
    parse("{\"deviceId\":5}", 0, why);
    parse("{\"Geo\":[1]}", 0, why);
    parse("{\"messageId\":{}}", 0, why);
    parse("[1,2]", 0, why);
    parse("\"text\"", 0, why);
}

static void test_string_bounds_and_nul(void **state) {
    (void)state;
    reading r;
    char reason[TELEMETRY_REASON_LEN] = "";
    /* NUL in a field the handler never reads: accepted */
    json_t *b = json_loadb("{\"temperature\":20,\"note\":\"a\\u0000b\"}", 36, JSON_ALLOW_NUL, NULL);
    assert_non_null(b);
    assert_int_equal(telemetryNormalize(b, &r, reason, sizeof(reason)), 0);
    json_decref(b);
    /* NUL in a used string: rejected with that reason */
    b = json_pack("{s:f,s:s%}", "temperature", 20.0, "messageId", "a\0b", (size_t)3);
    assert_int_equal(telemetryNormalize(b, &r, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "messageId must be a string without NUL"));
    json_decref(b);
    /* geo: 1024 UTF-16 units pass, 1025 do not */
    char geo[1026];
    memset(geo, 'g', 1025);
    geo[1024] = '\0';
    b = json_pack("{s:f,s:s}", "temperature", 20.0, "geo", geo);
    assert_int_equal(telemetryNormalize(b, &r, reason, sizeof(reason)), 0);
    json_decref(b);
    geo[1024] = 'g';
    geo[1025] = '\0';
    b = json_pack("{s:f,s:s}", "temperature", 20.0, "geo", geo);
    assert_int_equal(telemetryNormalize(b, &r, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "geo is longer than 1024"));
    json_decref(b);
}

static void test_calibration(void **state) {
    (void)state;
    reading r =
        parse("{\"temperature\":20,\"humidity\":50,\"pressure\":1000,\"light\":3}", 1, NULL);
    calibration c;
    char why[TELEMETRY_REASON_LEN];
    json_t *row = json_loads("{\"TemperatureSlope\":2,\"TemperatureYIntercept\":-1.5,"
                             "\"HumiditySlope\":\"0.5\",\"PressureYIntercept\":10}",
                             0, NULL);
    assert_int_equal(telemetryCalibrationFromRow(row, &c, why, sizeof(why)), 0);
    telemetryCalibrate(&r, &c);
    assert_float_equal(r.value[METRIC_CELSIUS], 38.5, 1e-9);
    assert_float_equal(r.value[METRIC_HUMIDITY], 25, 1e-9);
    assert_float_equal(r.value[METRIC_HPA], 1010, 1e-9);
    assert_float_equal(r.value[METRIC_LIGHT], 3, 1e-9); /* not calibrated */
    json_decref(row);

    row = json_loads("{\"TemperatureSlope\":\"steep\"}", 0, NULL);
    assert_int_equal(telemetryCalibrationFromRow(row, &c, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "TemperatureSlope"));
    json_decref(row);
}

static void test_validation_limits(void **state) {
    (void)state;
    static const struct {
        const char *json;
        int ok;
    } cases[] = {
        {"{\"temperature\":-40}", 1},
        {"{\"temperature\":80}", 1},
        {"{\"temperature\":-40.001}", 0},
        {"{\"temperature\":80.001}", 0},
        {"{\"humidity\":0}", 1},
        {"{\"humidity\":100}", 1},
        {"{\"humidity\":-0.1}", 0},
        {"{\"humidity\":100.1}", 0},
        {"{\"pressure\":600}", 1},
        {"{\"pressure\":1600}", 1},
        {"{\"pressure\":599.9}", 0},
        {"{\"pressure\":1600.1}", 0},
        {"{\"light\":5}", 0}, /* no metric the dashboard shows */
        {"{\"temperature\":500}", 0},
        {"{\"temperature\":21,\"humidity\":101}", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reading r = parse(cases[i].json, 1, NULL);
        char why[TELEMETRY_REASON_LEN] = "";
        int rc = telemetryValidate(&r, why, sizeof(why));
        if ((rc == 0) != cases[i].ok) fail_msg("%s: got %d '%s'", cases[i].json, rc, why);
    }
}

static void test_non_finite_after_calibration(void **state) {
    (void)state;
    reading r = parse("{\"temperature\":1e308}", 1, NULL);
    calibration c;
    telemetryIdentity(&c);
    c.slope[0] = 1e10; /* overflows to infinity */
    telemetryCalibrate(&r, &c);
    char why[TELEMETRY_REASON_LEN];
    assert_int_equal(telemetryValidate(&r, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "finite"));
    r.value[0] = NAN;
    assert_int_equal(telemetryValidate(&r, why, sizeof(why)), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_string_bounds_and_nul),
        cmocka_unit_test(test_calibration),
        cmocka_unit_test(test_validation_limits),
        cmocka_unit_test(test_non_finite_after_calibration),
    };
    return cmocka_run_group_tests_name("telemetry", tests, NULL, NULL);
}
