/* httpd: the stand-in's HTTP server, its only module that calls libmicrohttpd (the handler's is
 * handler/server.c): request bodies under a cap, CORS on every answer, preflights, keep-alive, and
 * the WebSocket upgrade hand-off. */
#ifndef STANDIN_HTTPD_H
#define STANDIN_HTTPD_H

#include <stddef.h>

#define HTTPD_MAX_HEADERS 4
#define HTTPD_HEADER_VALUE_LEN 96
#define HTTPD_ERR_LEN 256

struct httpd;
struct httpdRequest;

/* Called once the connection is upgraded: fd is the socket (never close() it: call
 * closeFn(closeCtx) once instead, from any thread), extra the bytes already read past the request
 * (borrowed for the call). ctx is the response's upgradeCtx, now owned by the callee. */
typedef void (*httpdUpgradeFn)(void *ctx, int fd, const char *extra, size_t extraLen,
                               void (*closeFn)(void *), void *closeCtx);

struct httpdResponse {
    int status;              /* 0: not answered */
    const char *contentType; /* static, or NULL */
    char *body;              /* owned: httpd frees it; may be NULL */
    size_t bodyLen;
    int headerCount;
    struct {
        const char *name; /* static */
        char value[HTTPD_HEADER_VALUE_LEN];
    } headers[HTTPD_MAX_HEADERS];
    /* With status 101: what serves the connection after the switch. When the switch does not
     * happen, upgradeFree(upgradeCtx) is called instead. */
    httpdUpgradeFn upgrade;
    void *upgradeCtx;
    void (*upgradeFree)(void *ctx);
};

/* Decides a request. The early call sees the headers only (httpdBody gives NULL): it may answer
 * (401, 404...) so that the body is discarded unread; the full call sees the body too, and is
 * made only when the early call left the request unanswered. Preflights (OPTIONS) are answered
 * by httpd itself and reach neither. */
typedef void (*httpdHandler)(const struct httpdRequest *req, struct httpdResponse *resp, void *ctx);

/* Starts serving host:port (numeric IPv4 or IPv6) on internal threads. Bodies past maxBody get
 * 413. Returns the server, or NULL with the reason in err. */
struct httpd *httpdStart(const char *host, int port, size_t maxBody, httpdHandler early,
                         httpdHandler full, void *ctx, char *err, size_t errlen);

/* Stops accepting, finishes with the connections, frees d. Upgraded sockets must all have been
 * closed through their closeFn first. Accepts NULL. */
void httpdStop(struct httpd *d);

/* The request method, borrowed for the request. */
const char *httpdMethod(const struct httpdRequest *req);

/* The path as sent, not percent-decoded, without the query; borrowed for the request. */
const char *httpdPath(const struct httpdRequest *req);

/* A request header (case-insensitive name), borrowed for the request; NULL when absent. */
const char *httpdHeader(const struct httpdRequest *req, const char *name);

/* A query parameter, percent- and '+'-decoded. Caller frees; NULL when absent, undecodable or
 * out of memory. */
char *httpdQuery(const struct httpdRequest *req, const char *name);

/* The body (NUL-terminated, borrowed for the request) and its length; NULL in the early call. */
const char *httpdBody(const struct httpdRequest *req, size_t *len);

/* Sets status, a static content type and a copy of text as the body. Returns 0, or -1 on OOM
 * (the status is still set, without a body). */
int httpdSetText(struct httpdResponse *resp, int status, const char *contentType, const char *text);

/* Adds a header; value is copied and cut at HTTPD_HEADER_VALUE_LEN - 1. Returns 0, or -1 when
 * full. */
int httpdAddHeader(struct httpdResponse *resp, const char *name, const char *value);

#endif
