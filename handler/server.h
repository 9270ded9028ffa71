/* server: the HTTP server the Functions host talks to (common/httpd behind it): loopback only,
 * a few I/O threads (epoll) for any number of connections, handlers on worker threads, a capped
 * request body (413 past it), a deadline for every request, streamed answers, graceful stop. */
#ifndef ENVIROMON_SERVER_H
#define ENVIROMON_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define SERVER_MAX_HEADERS 8
/* Threads, lanes, queue and stream sizes: common/httpd.h (HTTPD_*). */

typedef struct serverRequest {
    const char *method;
    const char *path; /* without the query */
    const char *body; /* the whole body, NUL-terminated ("" when none) */
    size_t bodylen;
    /* A body over maxBody on the spooling path (serverOptions.spoolPath): body is "" and the
     * bytes (bodylen of them) are in this temporary file, from its start. Borrowed; else NULL. */
    FILE *spool;
    void *conn; /* opaque, for serverQuery/serverHeader */
    void *rq;   /* opaque, for serverStreamOpen */
    /* For timing lines: how long the request took to arrive, and then waited for a worker. */
    double receiveMs, queuedMs;
} serverRequest;

typedef struct serverResponse {
    int status;
    char *body; /* owned: freed by the server */
    size_t len;
    char contentType[96];
    int nheaders;
    char *headers[SERVER_MAX_HEADERS][2]; /* owned name/value pairs */
} serverResponse;

/* Answers one request. Runs on a worker thread (it may block: its lane has other workers), or,
 * when the quick predicate says so, on an I/O thread (it must not block). */
typedef void (*serverHandlerFn)(const serverRequest *req, serverResponse *res);
/* 1 when the request is answered without waiting on anything (no network, no lock held long). */
typedef int (*serverQuickFn)(const char *method, const char *path);

typedef struct serverOptions {
    int port;
    size_t maxBody;
    int deadlineSeconds; /* to receive a whole request, and to take a whole answer */
    serverHandlerFn handler;
    serverQuickFn quick; /* may be NULL */
    /* POSTs to spoolPath (may be NULL) over maxBody, up to spoolCeiling bytes, go to a temporary
     * file (serverRequest.spool) instead of a 413, so that the handler can keep them. */
    const char *spoolPath;
    size_t spoolCeiling;
} serverOptions;

/* Starts listening on 127.0.0.1:port (raising the soft RLIMIT_NOFILE to the hard one). Returns
 * 0, or -1 with a message in err. */
int serverStart(const serverOptions *o, char *err, size_t errlen);

/* Stops accepting, lets in-flight requests finish (up to drainSeconds), then stops. Returns 0, or
 * the number of handlers still running (the server is then left as it is: the process should
 * exit without freeing what they use). */
int serverStop(int drainSeconds);

/* A query-string argument (decoded) or request header (case-insensitive), borrowed for the
 * request's life; NULL when absent. Not after serverStreamOpen. */
const char *serverQuery(const serverRequest *req, const char *name);
const char *serverHeader(const serverRequest *req, const char *name);

/* Sets the answer. serverSetBody steals body (may be NULL); serverSetJson steals j and encodes
 * it; serverSetError answers {"error": message}. */
void serverSetBody(serverResponse *res, int status, const char *contentType, char *body,
                   size_t len);
void serverSetJson(serverResponse *res, int status, json_t *j);
void serverSetError(serverResponse *res, int status, const char *message);
/* Adds a response header (both copied). */
void serverAddHeader(serverResponse *res, const char *name, const char *value);

/* A streamed answer (chunked): for bodies too large to hold whole. */
typedef struct serverStream serverStream;

/* Sends res's status, content type and headers now; the body follows through serverStreamWrite
 * (res's own body, if any, is dropped). At most once per request, from its handler (worker
 * thread). Returns the stream, or NULL (out of memory, or a quick request): then answer as
 * usual. */
serverStream *serverStreamOpen(const serverRequest *req, serverResponse *res);
/* Appends data; waits while SERVER_STREAM_BUFFER bytes are still to be sent. Returns 0, or -1
 * when the client is gone or took nothing for the deadline (stop writing, then close). */
int serverStreamWrite(serverStream *s, const char *data, size_t len);
/* Ends the answer and frees s. ok 0 cuts it short: the client sees an unfinished chunked body
 * (never one that looks complete), and the connection closes. */
void serverStreamClose(serverStream *s, int ok);

#endif
