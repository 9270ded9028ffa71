/* calibration: the per-device calibration cache, loaded lazily from the Calibration table (absent
 * rows cached too) and expired after a lifetime so that changes are picked up without a restart. */
#ifndef ENVIROMON_CALIBRATION_H
#define ENVIROMON_CALIBRATION_H

#include "settings.h"
#include "telemetry.h"

/* Once at start. Returns 0 or -1. */
int calibrationInit(const settings *s);
void calibrationShutdown(void);

enum calibrationStatus {
    CALIBRATION_OK = 0,
    CALIBRATION_TRANSIENT = -1,  /* the table could not be read: the batch is retried */
    CALIBRATION_TABLE_GONE = -2, /* the table does not exist (deleted while running): retried
                                    once the tables are created again (tablesetLost) */
};

/* Makes sure every device of ids (n of them) has a fresh cache entry, loading the missing and
 * expired ones with as few queries as the service allows (14 devices per query, a $filter of at
 * most 4 KiB percent-encoded). A device whose query the store refuses every time (a 400) is
 * cached as refused. Returns an enum calibrationStatus, with a message in err when not OK. */
int calibrationPrepare(const char *const *ids, size_t n, char *err, size_t errlen);

/* The device's calibration (identity when it has no row or was never prepared). Returns 0, or -1
 * with the reason (reason, len) when the store refuses to read its row. */
int calibrationGet(const char *id, calibration *out, char *reason, size_t len);

#endif
