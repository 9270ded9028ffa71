/* httpd: the HTTP server both programs use, the only module that calls libmicrohttpd. Two
 * passes per request (early on the headers, full with the body), capped bodies (413), bodies
 * over the cap spooled to a temporary file on one path, a deadline for receiving a request and
 * taking its answer, answers streamed in chunks, the WebSocket upgrade hand-off, and a graceful
 * stop that lets in-flight requests finish.
 *
 * Two ways to run the full pass, chosen at start:
 * - lanes (the default): a few I/O threads (epoll) carry every connection; a request reaches a
 *   worker thread only once it has arrived whole, and its connection is suspended while the
 *   handler runs. Workers come in two lanes (the lane function picks), each capped, so that
 *   neither starves the other. A handler may block for seconds without holding up any socket.
 * - threadPerConnection: each connection has its own thread and the full pass runs on it. For
 *   handlers that wait without bound (the stand-in's long polls wait up to 90 s for output): a
 *   lane's workers would be taken by idle polls, a thread per connection never starves.
 *
 * Ownership: a request and everything borrowed from it live until its answer is queued; a
 * response owns its body and headers and the server frees them. Thread-safety: handlers run on
 * several threads at once; a server's functions may be called from any thread. */
#ifndef ENVIROMON_HTTPD_H
#define ENVIROMON_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HTTPD_MAX_HEADERS 12            /* response headers a handler may add */
#define HTTPD_CONTENT_TYPE_LEN 96       /* with the NUL */
#define HTTPD_IO_THREADS 2              /* lanes: libmicrohttpd's threads, sockets only */
#define HTTPD_MAX_CONNECTIONS 16384     /* or what RLIMIT_NOFILE allows, whichever is lower */
#define HTTPD_LANE_WORKERS 64           /* handler threads per lane */
#define HTTPD_LANE_QUEUE 1024           /* requests waiting for a worker per lane; 503 past it */
#define HTTPD_STREAM_BUFFER (256 << 10) /* bytes of a streamed answer waiting to be sent */

typedef struct httpd httpd;
typedef struct httpdRequest httpdRequest;

/* Called once the connection is upgraded: fd is the socket (never close() it: call
 * closeFn(closeCtx) once instead, from any thread), extra the bytes already read past the request
 * (borrowed for the call). ctx is the response's upgradeCtx, now owned by the callee. */
typedef void (*httpdUpgradeFn)(void *ctx, int fd, const char *extra, size_t extraLen,
                               void (*closeFn)(void *), void *closeCtx);

typedef struct httpdResponse {
    int status; /* 0: not answered */
    char contentType[HTTPD_CONTENT_TYPE_LEN];
    char *body; /* owned: the server frees it; may be NULL */
    size_t bodyLen;
    int headerCount;
    char *headers[HTTPD_MAX_HEADERS][2]; /* owned name/value pairs */
    /* With status 101: what serves the connection after the switch. When the switch does not
     * happen, upgradeFree(upgradeCtx) is called instead. */
    httpdUpgradeFn upgrade;
    void *upgradeCtx;
    void (*upgradeFree)(void *ctx);
} httpdResponse;

/* Decides a request. The early call sees the headers only (httpdBody gives NULL) and runs on an
 * I/O thread (it must not block): it may answer (401, 404...) so that the body is dropped unread.
 * The full call sees the body too, and is made only when the early call left the request
 * unanswered; left unanswered it gives a 500. */
typedef void (*httpdHandler)(const httpdRequest *req, httpdResponse *resp, void *ctx);
/* 1 when the request is answered without waiting on anything: its full call then runs on the
 * I/O thread (lanes only). */
typedef int (*httpdQuickFn)(const char *method, const char *path);
/* The lane (0 or 1) of a request (lanes only). */
typedef int (*httpdLaneFn)(const char *method, const char *path);
/* Fills resp with an error the server itself gives (400, 413, 501, 503); message is a sentence. */
typedef void (*httpdErrorFn)(httpdResponse *resp, int status, const char *message);
/* Called on every answer just before it is queued (the server's own errors too): to add headers
 * every answer carries (CORS, Cache-Control). */
typedef void (*httpdFinishFn)(const httpdRequest *req, httpdResponse *resp, void *ctx);

typedef struct httpdOptions {
    const char *host; /* numeric IPv4 or IPv6; NULL: 127.0.0.1 */
    int port;
    size_t maxBody;
    /* A Content-Length over maxBody is answered at once (413) and the connection closed, unless
     * it is under maxBody * readPastFactor: then the body is read, dropped, and the connection
     * kept. 0: always at once. */
    int readPastFactor;
    /* Receiving a whole request and taking a whole answer (the time a handler runs does not
     * count); past it the connection is closed. 0: no deadline. */
    int deadlineSeconds;
    int idleSeconds; /* a keep-alive connection idle this long is closed; 0: deadlineSeconds */
    int threadPerConnection;
    int allowUpgrade;
    int rawUrls;        /* paths and query values as sent (not percent-decoded) */
    int raiseFileLimit; /* raise RLIMIT_NOFILE's soft limit to the hard one */
    int reuseAddress;   /* SO_REUSEPORT as well as SO_REUSEADDR on the listening socket */
    httpdHandler early; /* may be NULL */
    httpdHandler full;
    void *ctx;            /* for early, full and finish */
    httpdQuickFn quick;   /* may be NULL */
    httpdLaneFn lane;     /* may be NULL: every request in lane 0 */
    httpdErrorFn error;   /* may be NULL: text/plain */
    httpdFinishFn finish; /* may be NULL */
    /* POSTs to spoolPath (may be NULL; case-insensitive) over maxBody, up to spoolCeiling bytes,
     * go to a temporary file (httpdSpool) instead of a 413. */
    const char *spoolPath;
    size_t spoolCeiling;
} httpdOptions;

/* Starts serving o->host:o->port on internal threads (o is copied; its strings must outlive the
 * server). Returns the server, or NULL with the reason in err. */
httpd *httpdStart(const httpdOptions *o, char *err, size_t errlen);

/* The port d listens on (the one chosen by the system when started with port 0). */
int httpdPort(const httpd *d);

/* Stops accepting, lets in-flight requests finish (up to drainSeconds), then stops and frees d.
 * Returns 0, or the number of handlers still running: d is then left as it is (the process should
 * exit without freeing what they use). Upgraded sockets must all have been closed through their
 * closeFn first. Accepts NULL. */
int httpdStop(httpd *d, int drainSeconds);

/* The request's method and path (without the query), borrowed for the request. */
const char *httpdMethod(const httpdRequest *req);
const char *httpdPath(const httpdRequest *req);
/* A request header (case-insensitive name), borrowed for the request; NULL when absent. */
const char *httpdHeader(const httpdRequest *req, const char *name);
/* A query argument as the server keeps it (decoded unless rawUrls), borrowed for the request;
 * NULL when absent. */
const char *httpdArgument(const httpdRequest *req, const char *name);
/* A query argument, percent- and '+'-decoded from the raw text (rawUrls). Caller frees; NULL when
 * absent, undecodable or out of memory. */
char *httpdQuery(const httpdRequest *req, const char *name);
/* The body (NUL-terminated, borrowed for the request) and its length; NULL in the early call.
 * A spooled body is "" here, its length the spooled bytes. */
const char *httpdBody(const httpdRequest *req, size_t *len);
/* The spooled body, from its start (borrowed); NULL when the body is in memory. */
FILE *httpdSpool(const httpdRequest *req);
/* For timing lines, in microseconds: how long the request took to arrive (from the call that
 * saw its header to its body's last byte) and then waited for a worker (0 when run inline). */
void httpdTiming(const httpdRequest *req, int64_t *receiveUs, int64_t *queuedUs);

/* Sets status, content type (copied; NULL for none) and a copy of text as the body. Returns 0,
 * or -1 on OOM (the status is still set, without a body). */
int httpdSetText(httpdResponse *resp, int status, const char *contentType, const char *text);
/* Sets status, content type, and body (stolen; may be NULL) of len bytes. */
void httpdSetBody(httpdResponse *resp, int status, const char *contentType, char *body, size_t len);
/* Adds a header (both copied). Returns 0, or -1 when full or out of memory. */
int httpdAddHeader(httpdResponse *resp, const char *name, const char *value);
/* Frees what resp owns and empties it (calls upgradeFree if a hand-off is pending). */
void httpdResponseClear(httpdResponse *resp);

/* A streamed answer (chunked): for bodies too large to hold whole. */
typedef struct httpdStream httpdStream;

/* Sends resp's status, content type and headers now (resp's body is dropped; resp is emptied);
 * the body follows through httpdStreamWrite. At most once per request, from its full call on a
 * worker (lanes only). Returns the stream, or NULL (out of memory, a quick request, or
 * threadPerConnection): then answer as usual. */
httpdStream *httpdStreamOpen(const httpdRequest *req, httpdResponse *resp);
/* Appends data; waits while HTTPD_STREAM_BUFFER bytes are still to be sent. Returns 0, or -1
 * when the client is gone or took nothing for the deadline (stop writing, then close). */
int httpdStreamWrite(httpdStream *s, const char *data, size_t len);
/* Ends the answer and frees s. ok 0 cuts it short: the client sees an unfinished chunked body
 * (never one that looks complete), and the connection closes. Accepts NULL. */
void httpdStreamClose(httpdStream *s, int ok);

#endif
