/* fuzz_signalr_connstr: AzureSignalRConnectionString parsing, then the URLs and a token built
 * from whatever was accepted. */
#include "signalr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char cs[4096], err[SETTINGS_ERR_LEN], url[SIGNALR_URL_MAX * 2];
    signalrService s;
    if (size >= sizeof(cs)) return 0;
    memcpy(cs, data, size);
    cs[size] = '\0';
    if (signalrParse(cs, "Enviromon", &s, err, sizeof(err)) != 0) return 0;
    signalrRestUrl(&s, SIGNALR_TO_CONNECTION, cs, url, sizeof(url));
    free(signalrToken(&s, s.clientAud, NULL, 1700000000, 60));
    return 0;
}
