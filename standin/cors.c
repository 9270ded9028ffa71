/* cors: the stand-in's CORS headers and preflights, above the shared HTTP server. */
#include "cors.h"

#include <stdio.h>
#include <string.h>

#define CORS_ALLOW_HEADERS "X-Requested-With, X-SignalR-User-Agent, Authorization, Content-Type"
#define CORS_ALLOW_METHODS "GET, HEAD, POST, PUT, DELETE, OPTIONS"
#define CORS_MAX_AGE "600"
#define MAX_ECHOED_HEADER 1024

/* A header value fit to echo: printable ASCII, not too long. */
static int echoable(const char *v) {
    size_t n = 0;
    if (!v) return 0;
    for (; v[n]; n++)
        if ((unsigned char)v[n] < 0x20 || (unsigned char)v[n] > 0x7e || n >= MAX_ECHOED_HEADER)
            return 0;
    return n > 0;
}

int corsPreflight(const httpdRequest *req, httpdResponse *resp) {
    const char *asked = httpdHeader(req, "Access-Control-Request-Headers");
    char headers[MAX_ECHOED_HEADER + sizeof(CORS_ALLOW_HEADERS) + 8];
    if (strcmp(httpdMethod(req), "OPTIONS") != 0) return 0;
    if (echoable(asked))
        snprintf(headers, sizeof(headers), "%s, %s", asked, CORS_ALLOW_HEADERS);
    else
        snprintf(headers, sizeof(headers), "%s", CORS_ALLOW_HEADERS);
    httpdSetBody(resp, 204, NULL, NULL, 0);
    httpdAddHeader(resp, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    httpdAddHeader(resp, "Access-Control-Allow-Headers", headers);
    httpdAddHeader(resp, "Access-Control-Max-Age", CORS_MAX_AGE);
    httpdAddHeader(resp, "Allow", CORS_ALLOW_METHODS);
    return 1;
}

void corsFinish(const httpdRequest *req, httpdResponse *resp, void *ctx) {
    const char *origin = httpdHeader(req, "Origin");
    (void)ctx;
    if (resp->status != 101) httpdAddHeader(resp, "Cache-Control", "no-store");
    if (!echoable(origin)) return;
    httpdAddHeader(resp, "Access-Control-Allow-Origin", origin);
    httpdAddHeader(resp, "Access-Control-Allow-Credentials", "true");
    httpdAddHeader(resp, "Vary", "Origin");
}
