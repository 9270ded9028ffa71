/* httpc: the HTTP client (libcurl behind it): pooled handles so connections are reused,
 * bounded timeouts, capped response buffers. The only module that calls libcurl. */
#ifndef ENVIROMON_HTTPC_H
#define ENVIROMON_HTTPC_H

#include "buf.h"

typedef struct httpcResponse {
    long status;     /* HTTP status, 0 when no answer came */
    buf body;        /* capped by the caller's respcap */
    buf headers;     /* the final response's header lines, "name: value\r\n" */
    char error[256]; /* the transport error when status is 0 */
    int tooLarge;    /* the body went past respcap (status 0, error "response too large") */
} httpcResponse;

/* Once at start, before any thread uses httpc. Returns 0 or -1. */
int httpcGlobalInit(void);
/* Chooses, once at start and before any request, the CA certificates every HTTPS request
 * trusts, and logs the choice. bundle (borrowed), when not empty, is a PEM file named by the
 * setting called setting: a readable regular file of at most 64 MB holding a certificate. When
 * it is not, a required bundle is an error, another is passed over with a warning. Without a
 * usable bundle: libcurl's own system bundle or directory when the machine has one, else the
 * app's ca-certificates.crt in $FUNCTIONS_APP_ROOT_PATH, else none (HTTPS then fails, plain
 * HTTP works). Returns 0, or -1 with a message in err. Without this call libcurl's defaults
 * apply. */
int httpcCaInit(const char *bundle, const char *setting, int required, char *err, size_t errlen);
/* Frees the pooled handles (and their connections). */
void httpcGlobalCleanup(void);

/* Performs one request. headers: NULL-terminated array of "Name: value" (borrowed). body may be
 * NULL. The response is written to *resp, which the caller frees with httpcResponseFree whatever
 * the result. Returns 0 when an HTTP answer arrived (any status), -1 on a transport failure
 * (resp->error says which), a timeout, or a response body over respcap. Thread-safe. */
int httpcRequest(const char *method, const char *url, const char *const *headers, const void *body,
                 size_t bodylen, size_t respcap, long timeout_ms, httpcResponse *resp);

/* Copies the value of response header name (case-insensitive) into out, trimmed and
 * NUL-terminated. Returns out, or NULL when absent or longer than outlen - 1. */
const char *httpcHeader(const httpcResponse *resp, const char *name, char *out, size_t outlen);

void httpcResponseFree(httpcResponse *resp);

#endif
