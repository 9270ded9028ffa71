/* fuzz_ws_token: what decides whether a client or server may connect: JWTs (as sent, and signed
 * here so that the claims are read too), request paths and audiences, the connection string.
 */
#include "config.h"
#include "crypto.h"
#include "jwt.h"
#include "path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BASE "http://127.0.0.1:8888"
#define KEY "fuzz-key"

static int audience(const char *aud, void *ctx) {
    struct pathRoute *r = ctx;
    return pathRestAudience(BASE, aud, r) || pathClientAudience(BASE, aud, "enviromon");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char text[4096], err[CONFIG_ERR_LEN], *user = NULL, *sig;
    unsigned char mac[CRYPTO_SHA256_LEN];
    struct pathRoute route;
    struct config cfg;
    size_t n;
    if (size >= sizeof(text) - 64) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    pathParse(text, &route);
    jwtVerify(text, size, KEY, strlen(KEY), 1700000000, audience, &route, &user);
    free(user);
    user = NULL;
    /* Sign the input as "header.payload" so that the claims are checked as well. */
    if (cryptoHmacSha256(KEY, strlen(KEY), text, size, mac) == 0 &&
        (sig = cryptoBase64UrlEncode(mac, sizeof(mac)))) {
        n = size;
        text[n++] = '.';
        memcpy(text + n, sig, strlen(sig) + 1);
        jwtVerify(text, strlen(text), KEY, strlen(KEY), 1700000000, audience, &route, &user);
        free(user);
        free(sig);
        text[size] = '\0';
    }
    pathRouteFree(&route);

    memset(&cfg, 0, sizeof(cfg));
    configParseConnectionString(&cfg, text, err, sizeof(err));
    configFree(&cfg);
    return 0;
}
