/* libFuzzer harness: the $batch writer's own JSON for flat properties (tablebatch.c appendFlat)
 * against jansson's dumper. The input is a property value (any bytes, UTF-8 or not) and, from its
 * first byte, an integer and a real: the operation's body must hold exactly what json_dumps writes
 * (COMPACT, ENSURE_ASCII), and a value jansson cannot write must not be added either. */
#include "settings.h"
#include "table.h"
#include "tablebatch.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static storageAccount az;
    static int ready;
    char err[256];
    if (!ready) {
        if (settingsParseStorage("S", "UseDevelopmentStorage=true", &az, err, sizeof(err)) != 0)
            abort();
        ready = 1;
    }
    if (size < 9) return 0;
    int64_t i;
    double d;
    memcpy(&i, data, sizeof(i));
    memcpy(&d, data + 1, sizeof(d));
    json_t *p = json_object();
    json_object_set_new(p, "S", json_stringn_nocheck((const char *)data + 9, size - 9));
    json_object_set_new(p, "I", json_integer(i));
    json_object_set_new(p, "R", json_real(d)); /* NULL (not set) when d is not finite */
    char *want = json_dumps(p, JSON_COMPACT | JSON_ENSURE_ASCII);
    tableBatch *b = tableBatchNew(&az, "DeviceState", "P", 0, err, sizeof(err));
    if (!b) abort();
    int a = tableBatchAdd(b, TABLEBATCH_UPDATE, "r", p, NULL, err, sizeof(err));
    if ((a == TABLEBATCH_ADDED) != (want != NULL)) abort();
    if (want) {
        size_t len;
        char *body = tableBatchBody(b, &len);
        if (!body || !strstr(body, want)) abort();
        free(body);
    }
    free(want);
    tableBatchFree(b);
    json_decref(p);
    return 0;
}
