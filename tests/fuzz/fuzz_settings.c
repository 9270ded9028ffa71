/* libFuzzer harness: storage connection strings and Table keys (outside input). */
#include "settings.h"
#include "table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    storageAccount a;
    char err[SETTINGS_ERR_LEN], esc[4096];
    settingsParseStorage("StorageConnectionString", text, &a, err, sizeof(err));
    if (tableKeyValid(text)) tableEscapeKey(text, esc, sizeof(esc));
    free(text);
    return 0;
}
