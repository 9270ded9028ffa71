/* telemetry: one reading: field aliases, calibration, validation. Pure: no I/O. */
#include "telemetry.h"

#include "table.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const aliases[METRIC_COUNT][5] = {
    [METRIC_CELSIUS] = {"temperature", "Temperature", "Celsius", NULL},
    [METRIC_HUMIDITY] = {"humidity", "Humidity", NULL},
    [METRIC_HPA] = {"pressure", "Pressure", "hPa", "HPa", NULL},
    [METRIC_LIGHT] = {"light", "Light", NULL},
};
static const char *const metricNames[METRIC_COUNT] = {"temperature", "humidity", "pressure",
                                                      "light"};

void telemetryIdentity(calibration *c) {
    for (int i = 0; i < 3; i++) {
        c->slope[i] = 1.0;
        c->intercept[i] = 0.0;
    }
}

/* The first alias present with a non-null value, or NULL. */
static json_t *firstOf(const json_t *obj, const char *const *names, const char **which) {
    for (; *names; names++) {
        json_t *v = json_object_get(obj, *names);
        if (v && !json_is_null(v)) {
            if (which) *which = *names;
            return v;
        }
    }
    return NULL;
}

int telemetryNormalize(const json_t *body, reading *r, char *reason, size_t len) {
    memset(r, 0, sizeof(*r));
    if (!json_is_object(body)) {
        snprintf(reason, len, "reading is not a JSON object");
        return -1;
    }
    for (int m = 0; m < METRIC_COUNT; m++) {
        const char *name = NULL;
        json_t *v = firstOf(body, aliases[m], &name);
        if (!v) continue;
        if (!json_is_number(v)) {
            snprintf(reason, len, "%s must be a number", name);
            return -1;
        }
        double d = json_number_value(v);
        if (!isfinite(d)) {
            snprintf(reason, len, "%s is not a finite number", name);
            return -1;
        }
        r->has[m] = 1;
        r->value[m] = d;
    }
    static const char *const dev[] = {"deviceId", "DeviceId", NULL};
    json_t *d = firstOf(body, dev, NULL);
    if (d && (!json_is_string(d) || strlen(json_string_value(d)) != json_string_length(d))) {
        snprintf(reason, len, "deviceId must be a string without NUL characters");
        return -1;
    }
    r->bodyDeviceId = json_string_value(d);
    static const char *const geo[] = {"geo", "Geo", NULL};
    json_t *g = firstOf(body, geo, NULL);
    if (g && (!json_is_string(g) || strlen(json_string_value(g)) != json_string_length(g))) {
        snprintf(reason, len, "geo must be a string without NUL characters");
        return -1;
    }
    if (g && tableUtf16Length(json_string_value(g), json_string_length(g)) > TELEMETRY_GEO_UNITS) {
        snprintf(reason, len, "geo is longer than %d characters (UTF-16 units)",
                 TELEMETRY_GEO_UNITS);
        return -1;
    }
    r->geo = json_string_value(g);
    static const char *const id[] = {"messageId", "Id", NULL};
    json_t *i = firstOf(body, id, NULL);
    if (json_is_string(i) && strlen(json_string_value(i)) != json_string_length(i)) {
        snprintf(reason, len, "messageId must be a string without NUL characters");
        return -1;
    }
    if (json_is_string(i) && json_string_length(i) > TELEMETRY_ID_BYTES) {
        snprintf(reason, len, "messageId is longer than %d bytes of UTF-8", TELEMETRY_ID_BYTES);
        return -1;
    }
    if (json_is_string(i))
        snprintf(r->id, sizeof(r->id), "%s", json_string_value(i));
    else if (json_is_integer(i))
        snprintf(r->id, sizeof(r->id), "%" JSON_INTEGER_FORMAT, json_integer_value(i));
    else if (i) {
        snprintf(reason, len, "messageId must be a string or an integer");
        return -1;
    }
    return 0;
}

void telemetryCalibrate(reading *r, const calibration *c) {
    for (int m = 0; m < 3; m++)
        if (r->has[m]) r->value[m] = r->value[m] * c->slope[m] + c->intercept[m];
}

int telemetryValidate(const reading *r, char *reason, size_t len) {
    static const double lo[3] = {-40, 0, 600}, hi[3] = {80, 100, 1600};
    if (!r->has[METRIC_CELSIUS] && !r->has[METRIC_HUMIDITY] && !r->has[METRIC_HPA]) {
        snprintf(reason, len, "no temperature, humidity or pressure in the reading");
        return -1;
    }
    for (int m = 0; m < METRIC_COUNT; m++) {
        if (!r->has[m]) continue;
        double v = r->value[m];
        if (!isfinite(v)) {
            snprintf(reason, len, "%s is not a finite number after calibration", metricNames[m]);
            return -1;
        }
        if (m < 3 && (v < lo[m] || v > hi[m])) {
            snprintf(reason, len, "%s %g is outside %g..%g", metricNames[m], v, lo[m], hi[m]);
            return -1;
        }
    }
    return 0;
}

static int rowNumber(const json_t *row, const char *name, double *out, char *reason, size_t len) {
    json_t *v = json_object_get(row, name);
    if (!v || json_is_null(v)) return 0;
    double d;
    if (json_is_number(v))
        d = json_number_value(v);
    else if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        d = strtod(s, &end);
        if (end == s || *end) d = NAN;
    } else
        d = NAN;
    if (!isfinite(d)) {
        snprintf(reason, len, "calibration %s is not a finite number", name);
        return -1;
    }
    *out = d;
    return 0;
}

int telemetryCalibrationFromRow(const json_t *row, calibration *c, char *reason, size_t len) {
    static const char *const slope[3] = {"TemperatureSlope", "HumiditySlope", "PressureSlope"};
    static const char *const icpt[3] = {"TemperatureYIntercept", "HumidityYIntercept",
                                        "PressureYIntercept"};
    telemetryIdentity(c);
    for (int m = 0; m < 3; m++)
        if (rowNumber(row, slope[m], &c->slope[m], reason, len) ||
            rowNumber(row, icpt[m], &c->intercept[m], reason, len))
            return -1;
    return 0;
}
