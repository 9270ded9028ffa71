/* libFuzzer harness: the JSON scanner (outside input), checked against jansson: the same texts
 * accepted (numbers jansson cannot convert and raw NUL bytes aside), the same strings, element
 * counts and keys. */
#include "jsonscan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jsonscanSpan v;
    json_error_t je;
    char err[128];
    /* jansson takes a raw NUL byte for the end of the text; the scanner refuses it (a JSON text
     * holds none): not compared. */
    if (memchr(data, 0, size)) {
        if (jsonscanCheck((const char *)data, size, &v, err, sizeof(err)) == 0) abort();
        return 0;
    }
    int mine = jsonscanCheck((const char *)data, size, &v, err, sizeof(err)) == 0;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j && json_error_code(&je) == json_error_numeric_overflow) return 0;
    if (mine != (j != NULL)) abort();
    if (j && json_is_string(j)) {
        char *out = malloc(v.n);
        size_t n = jsonscanString(&v, out);
        if (n != json_string_length(j) || memcmp(out, json_string_value(j), n) != 0) abort();
        free(out);
    }
    if (j && json_is_array(j) && jsonscanCount(&v) != json_array_size(j)) abort();
    if (j && json_is_object(j)) {
        const char *key;
        json_t *x;
        json_object_foreach(j, key, x) {
            jsonscanSpan m;
            /* keys with NUL or escapes beyond a short key aside, each is found */
            if (strlen(key) < 64 && !jsonscanMember(&v, key, &m)) abort();
        }
    }
    json_decref(j);
    return 0;
}
