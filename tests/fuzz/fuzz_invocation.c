/* libFuzzer harness: the host payload decoder and the reading normaliser (outside input). */
#include "invocation.h"
#include "telemetry.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hostBatch b;
    char err[INVOCATION_ERR_LEN];
    if (invocationDecodeBatch((const char *)data, size, &b, err, sizeof(err)) != 0) return 0;
    for (size_t i = 0; i < b.count; i++) {
        reading r;
        char why[TELEMETRY_REASON_LEN];
        if (telemetryNormalize(b.events[i].body, &r, why, sizeof(why)) == 0)
            telemetryValidate(&r, why, sizeof(why));
    }
    invocationBatchFree(&b);
    return 0;
}
