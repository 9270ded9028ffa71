/* httpd: the stand-in's HTTP server, its only module that calls libmicrohttpd (the handler's is
 * handler/server.c): request bodies under a cap, CORS on every answer, preflights, keep-alive, and
 * the WebSocket upgrade hand-off. */
#include "httpd.h"

#include "buf.h"
#include "escape.h"
#include "log.h"
#include "path.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IDLE_TIMEOUT_SECONDS 300 /* keep-alive connections idle past this are closed */
#define DISCARD_LIMIT_FACTOR 16  /* past maxBody * this, answer 413 without reading on */
#define CORS_ALLOW_HEADERS "X-Requested-With, X-SignalR-User-Agent, Authorization, Content-Type"
#define CORS_ALLOW_METHODS "GET, HEAD, POST, PUT, DELETE, OPTIONS"
#define CORS_MAX_AGE "600"
#define MAX_ECHOED_HEADER 1024

struct httpd {
    struct MHD_Daemon *daemon;
    httpdHandler early, full;
    void *ctx;
    size_t maxBody;
};

struct httpdRequest {
    struct MHD_Connection *conn;
    const char *method;
    char *path;
    buf body;                    /* capped at the server's maxBody */
    int bodyReady;               /* the full call: the body is all here */
    int discard;                 /* the answer is decided: drop body bytes */
    int preflight;               /* an OPTIONS request */
    struct httpdResponse answer; /* decided early (status != 0) */
    httpdUpgradeFn upgrade;      /* set when a 101 was queued, until the switch */
    void *upgradeCtx;
    void (*upgradeFree)(void *ctx);
};

/* ---- the request accessors ---- */

const char *httpdMethod(const struct httpdRequest *req) { return req->method; }

const char *httpdPath(const struct httpdRequest *req) { return req->path; }

const char *httpdHeader(const struct httpdRequest *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *httpdBody(const struct httpdRequest *req, size_t *len) {
    if (len) *len = req->bodyReady ? req->body.len : 0;
    if (!req->bodyReady) return NULL;
    return req->body.data ? req->body.data : "";
}

char *httpdQuery(const struct httpdRequest *req, const char *name) {
    /* libmicrohttpd leaves values raw: the unescape callback below does nothing. */
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!raw) return NULL;
    return escapePercentDecode(raw, strlen(raw), 1);
}

/* ---- responses ---- */

int httpdSetText(struct httpdResponse *resp, int status, const char *contentType,
                 const char *text) {
    resp->status = status;
    resp->contentType = contentType;
    free(resp->body);
    resp->body = NULL;
    resp->bodyLen = 0;
    if (!text) return 0;
    resp->body = strdup(text);
    if (!resp->body) return -1;
    resp->bodyLen = strlen(text);
    return 0;
}

int httpdAddHeader(struct httpdResponse *resp, const char *name, const char *value) {
    if (resp->headerCount >= HTTPD_MAX_HEADERS) return -1;
    resp->headers[resp->headerCount].name = name;
    snprintf(resp->headers[resp->headerCount].value, HTTPD_HEADER_VALUE_LEN, "%s", value);
    resp->headerCount++;
    return 0;
}

static void responseClear(struct httpdResponse *resp) {
    free(resp->body);
    if (resp->upgradeFree && resp->upgradeCtx) resp->upgradeFree(resp->upgradeCtx);
    memset(resp, 0, sizeof(*resp));
}

/* A header value fit to echo: printable ASCII, not too long. */
static int echoable(const char *v) {
    size_t n = 0;
    if (!v) return 0;
    for (; v[n]; n++)
        if ((unsigned char)v[n] < 0x20 || (unsigned char)v[n] > 0x7e || n >= MAX_ECHOED_HEADER)
            return 0;
    return n > 0;
}

/* The CORS headers for a request that carries Origin: that origin, with credentials. */
static void addCors(struct httpdRequest *r, struct MHD_Response *mr) {
    const char *origin = httpdHeader(r, "Origin");
    if (!echoable(origin)) return;
    MHD_add_response_header(mr, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(mr, "Access-Control-Allow-Credentials", "true");
    MHD_add_response_header(mr, "Vary", "Origin");
}

static void onUpgrade(void *cls, struct MHD_Connection *conn, void *reqCls, const char *extraIn,
                      size_t extraInSize, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh);

static void closeUpgraded(void *urh) {
    if (MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) != MHD_YES)
        logWarn("libmicrohttpd refused to close an upgraded connection");
}

/* Queues resp on r's connection and releases resp. */
static enum MHD_Result respond(struct httpdRequest *r, struct httpdResponse *resp) {
    struct MHD_Response *mr;
    enum MHD_Result ret;
    if (resp->status == MHD_HTTP_SWITCHING_PROTOCOLS && resp->upgrade) {
        mr = MHD_create_response_for_upgrade(onUpgrade, NULL);
    } else {
        mr = MHD_create_response_from_buffer(resp->bodyLen, resp->body ? resp->body : "",
                                             resp->body ? MHD_RESPMEM_MUST_FREE
                                                        : MHD_RESPMEM_PERSISTENT);
        if (mr) resp->body = NULL; /* libmicrohttpd frees it now */
    }
    if (!mr) {
        responseClear(resp);
        return MHD_NO;
    }
    if (resp->contentType) MHD_add_response_header(mr, "Content-Type", resp->contentType);
    for (int i = 0; i < resp->headerCount; i++)
        MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value);
    if (resp->status != MHD_HTTP_SWITCHING_PROTOCOLS)
        MHD_add_response_header(mr, "Cache-Control", "no-store");
    addCors(r, mr);
    if (resp->status == MHD_HTTP_SWITCHING_PROTOCOLS && resp->upgrade) {
        /* The request keeps the hand-off until the switch happens (or frees it if not). */
        r->upgrade = resp->upgrade;
        r->upgradeCtx = resp->upgradeCtx;
        r->upgradeFree = resp->upgradeFree;
        resp->upgradeCtx = NULL;
    }
    ret = MHD_queue_response(r->conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    responseClear(resp);
    return ret;
}

static void onUpgrade(void *cls, struct MHD_Connection *conn, void *reqCls, const char *extraIn,
                      size_t extraInSize, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    struct httpdRequest *r = reqCls; /* still ours: completion comes when the socket closes */
    httpdUpgradeFn fn = r->upgrade;
    void *ctx = r->upgradeCtx;
    (void)cls;
    (void)conn;
    r->upgrade = NULL;
    r->upgradeCtx = NULL;
    if (!fn) {
        closeUpgraded(urh);
        return;
    }
    fn(ctx, sock, extraIn, extraInSize, closeUpgraded, urh);
}

/* 204 to a CORS preflight (and to any OPTIONS). */
static enum MHD_Result preflight(struct httpdRequest *r) {
    const char *asked = httpdHeader(r, "Access-Control-Request-Headers");
    struct MHD_Response *mr;
    enum MHD_Result ret;
    char headers[MAX_ECHOED_HEADER + sizeof(CORS_ALLOW_HEADERS) + 8];
    mr = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!mr) return MHD_NO;
    if (echoable(asked))
        snprintf(headers, sizeof(headers), "%s, %s", asked, CORS_ALLOW_HEADERS);
    else
        snprintf(headers, sizeof(headers), "%s", CORS_ALLOW_HEADERS);
    addCors(r, mr);
    MHD_add_response_header(mr, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    MHD_add_response_header(mr, "Access-Control-Allow-Headers", headers);
    MHD_add_response_header(mr, "Access-Control-Max-Age", CORS_MAX_AGE);
    MHD_add_response_header(mr, "Allow", CORS_ALLOW_METHODS);
    ret = MHD_queue_response(r->conn, MHD_HTTP_NO_CONTENT, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void tooLarge(struct httpd *d, struct httpdResponse *resp) {
    char text[96];
    snprintf(text, sizeof(text), "request body larger than %zu bytes\n", d->maxBody);
    responseClear(resp);
    httpdSetText(resp, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain; charset=utf-8", text);
}

static enum MHD_Result onRequest(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *uploadSize, void **reqCls) {
    struct httpd *d = cls;
    struct httpdRequest *r = *reqCls;
    struct httpdResponse resp;
    (void)version;

    if (!r) { /* the headers are in */
        const char *length;
        r = calloc(1, sizeof(*r));
        if (!r) return MHD_NO;
        r->conn = conn;
        r->method = method;
        bufInit(&r->body, d->maxBody);
        r->path = strdup(url);
        *reqCls = r;
        if (!r->path) return MHD_NO;
        if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
            r->preflight = r->discard = 1; /* answered once the (empty) body is read */
            return MHD_YES;
        }
        d->early(r, &r->answer, d->ctx);
        length = httpdHeader(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length) {
            char *end = NULL;
            unsigned long long n = strtoull(length, &end, 10);
            if (end && *end == '\0' && n > d->maxBody) {
                if (!r->answer.status) tooLarge(d, &r->answer);
                /* Far too large to read and drop: answer now; the connection then closes. */
                if (n / DISCARD_LIMIT_FACTOR > d->maxBody) return respond(r, &r->answer);
            }
        }
        r->discard = r->answer.status != 0;
        return MHD_YES;
    }
    if (*uploadSize) {
        if (!r->discard && bufAppend(&r->body, upload, *uploadSize) != 0) { /* body freed */
            tooLarge(d, &r->answer);
            r->discard = 1;
        }
        *uploadSize = 0;
        return MHD_YES;
    }
    if (r->preflight) return preflight(r);
    if (r->answer.status) return respond(r, &r->answer);
    r->bodyReady = 1;
    memset(&resp, 0, sizeof(resp));
    d->full(r, &resp, d->ctx);
    if (!resp.status)
        httpdSetText(&resp, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "not answered\n");
    return respond(r, &resp);
}

static void onCompleted(void *cls, struct MHD_Connection *conn, void **reqCls,
                        enum MHD_RequestTerminationCode why) {
    struct httpdRequest *r = *reqCls;
    (void)cls;
    (void)conn;
    (void)why;
    if (!r) return;
    if (r->upgradeFree && r->upgradeCtx) r->upgradeFree(r->upgradeCtx); /* never switched */
    responseClear(&r->answer);
    free(r->path);
    bufFree(&r->body);
    free(r);
    *reqCls = NULL;
}

/* Keeps paths and query values as sent: routes and audiences need the raw text. */
static size_t keepRaw(void *cls, struct MHD_Connection *conn, char *uri) {
    (void)cls;
    (void)conn;
    return strlen(uri);
}

static void onLibraryLog(void *cls, const char *fmt, va_list ap) {
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    logWarn("libmicrohttpd: %s", line);
}

struct httpd *httpdStart(const char *host, int port, size_t maxBody, httpdHandler early,
                         httpdHandler full, void *ctx, char *err, size_t errlen) {
    struct httpd *d = calloc(1, sizeof(*d));
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    const struct sockaddr *addr;
    /* A thread per connection: a long poll blocks its request's thread until it has output. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;

    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memset(&a4, 0, sizeof(a4));
    memset(&a6, 0, sizeof(a6));
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((unsigned short)port);
        addr = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((unsigned short)port);
        addr = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "not a numeric address: %s", host);
        free(d);
        return NULL;
    }
    d->early = early;
    d->full = full;
    d->ctx = ctx;
    d->maxBody = maxBody;
    d->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, onRequest, d, MHD_OPTION_EXTERNAL_LOGGER, onLibraryLog,
        NULL, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_SECONDS, MHD_OPTION_NOTIFY_COMPLETED, onCompleted, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, keepRaw, NULL, MHD_OPTION_END);
    if (!d->daemon) {
        snprintf(err, errlen,
                 "cannot listen on %s port %d (in use, or not an address of this host)", host,
                 port);
        free(d);
        return NULL;
    }
    return d;
}

void httpdStop(struct httpd *d) {
    if (!d) return;
    MHD_stop_daemon(d->daemon);
    free(d);
}
