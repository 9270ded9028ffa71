/* Fuzz harness: connstr (parts, lookup, checking, the whole-number parser) and url (every value
 * parsed as a URL and written in normal form) on any bytes. */
#include "connstr.h"
#include "url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const known[] = {"Endpoint", "AccessKey", "Port", NULL};
    char *cs = malloc(size + 1), v[32], err[256];
    long n;
    if (!cs) return 0;
    memcpy(cs, data, size);
    cs[size] = '\0';
    const char *pos = cs;
    int index = 0, r;
    connstrPart p;
    while ((r = connstrNext(&pos, &index, &p)) != 0)
        if (r > 0) {
            urlParts u;
            char norm[512];
            (void)connstrParseLong(p.value, p.valueLen, -1000, 1000, &n);
            if (urlParse(p.value, p.valueLen, &u) == URL_OK) {
                (void)urlFormat(&u, -1, 1, norm, sizeof(norm));
                (void)urlFormat(&u, 8080, 0, norm, 16);
            }
        }
    (void)connstrGet(cs, "Port", v, sizeof(v));
    (void)connstrCheck(cs, known, err, sizeof(err));
    free(cs);
    return 0;
}
