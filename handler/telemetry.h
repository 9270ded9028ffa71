/* telemetry: one reading: field aliases, calibration, validation. Pure: no I/O. */
#ifndef ENVIROMON_TELEMETRY_H
#define ENVIROMON_TELEMETRY_H

#include <jansson.h>
#include <stddef.h>

#define TELEMETRY_REASON_LEN 160
/* Bounds on the strings a device sends that end up in its row, in UTF-16 code units (what Table
 * Storage counts; a String property holds at most 32,768). Longer values reject the reading:
 * a row the store refuses would otherwise stop the partition (README, failure handling). */
#define TELEMETRY_GEO_UNITS 1024
#define TELEMETRY_ID_BYTES 128 /* messageId: UTF-8 bytes, so at most 128 UTF-16 units too */

enum { METRIC_CELSIUS, METRIC_HUMIDITY, METRIC_HPA, METRIC_LIGHT, METRIC_COUNT };

typedef struct reading {
    int has[METRIC_COUNT];
    double value[METRIC_COUNT];
    const char *bodyDeviceId; /* deviceId / DeviceId from the body, borrowed from it, or NULL */
    const char *geo;          /* borrowed from the body, or NULL */
    char id[TELEMETRY_ID_BYTES + 1]; /* messageId / Id as text, or "" */
} reading;

typedef struct calibration {
    double slope[3]; /* Celsius, Humidity, hPa */
    double intercept[3];
} calibration;

/* The identity calibration (slope 1, intercept 0). */
void telemetryIdentity(calibration *c);

/* Reads a Calibration row (TemperatureSlope, TemperatureYIntercept, HumiditySlope, ...; numbers
 * or numeric strings; absent ones keep the identity). Returns 0, or -1 with reason when a present
 * value is not a finite number. */
int telemetryCalibrationFromRow(const json_t *row, calibration *c, char *reason, size_t len);

/* Normalises one body object into *r using the aliases (first match wins). The reading borrows
 * strings from body, which must outlive it. Returns 0, or -1 with reason (not an object, a metric
 * that is not a finite number, a used string that holds NUL or is longer than its bound). Fields
 * the handler does not read are not looked at. */
int telemetryNormalize(const json_t *body, reading *r, char *reason, size_t len);

/* value * slope + intercept for each calibrated metric that is present. */
void telemetryCalibrate(reading *r, const calibration *c);

/* Range checks after calibration: -40 <= Celsius <= 80, 0 <= Humidity <= 100,
 * 600 <= hPa <= 1600, every present value finite, at least one of the three present.
 * Returns 0, or -1 with reason. */
int telemetryValidate(const reading *r, char *reason, size_t len);

#endif
