/* libFuzzer harness: the $batch answer reader (outside input). The first byte picks the number of
 * operations the transaction had; the rest is the response body, read with and without a
 * Content-Type naming its boundary. */
#include "table.h"
#include "tablebatch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t nops = data[0] % (TABLEBATCH_MAX_OPS + 2);
    /* An exact-size copy, so that any read past the end is caught. */
    char *body = malloc(size - 1 ? size - 1 : 1);
    if (!body) return 0;
    memcpy(body, data + 1, size - 1);
    static tableBatchResult res;
    const char *ct = "multipart/mixed; boundary=batchresponse_11111111-2222-3333-4444-555555555555";
    int rc = tableBatchParse(202, ct, body, size - 1, nops, &res);
    if (rc == TABLE_OK && (res.count != nops || res.unknown || res.failed != -1)) abort();
    if (res.count > TABLEBATCH_MAX_OPS || (res.failed >= 0 && (size_t)res.failed >= nops)) abort();
    tableBatchParse(202, NULL, body, size - 1, nops, &res);
    tableBatchParse(400, "application/json", body, size - 1, nops, &res);
    free(body);
    return 0;
}
