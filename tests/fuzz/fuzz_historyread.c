/* Fuzz harness: historyread on any bytes: one reading text, a chunk's Readings, a minute slot. */
#include "historyread.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int count(const historyreadReading *r, void *ctx) {
    (void)r;
    ++*(long *)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    historyreadReading r;
    historyMinute m[60];
    long n = 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    (void)historyreadParse(text, size, &r);
    (void)historyreadChunk(text, count, &n, NULL);
    json_t *row = json_object();
    json_object_set_new(row, "Min07", json_string(text));
    json_object_set_new(row, "PendN", json_integer(1));
    json_object_set_new(row, "P00", json_string(text));
    json_object_set_new(row, "Q00", json_string(text)); /* a group when it starts "<gen>|" */
    json_object_set_new(row, "Q01", json_string(text));
    (void)historyreadSlots(row, 0, m);
    (void)historyreadSlots(row, strtoll(text, NULL, 10), m);
    (void)historyreadPending(row, count, &n, NULL);
    json_decref(row);
    free(text);
    return 0;
}
