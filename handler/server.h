/* server: the HTTP server the Functions host talks to (libmicrohttpd behind it): loopback only,
 * parallel requests, a capped request body (413 past it), graceful stop. The only module that
 * calls libmicrohttpd. */
#ifndef ENVIROMON_SERVER_H
#define ENVIROMON_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define SERVER_MAX_HEADERS 8

typedef struct serverRequest {
    const char *method;
    const char *path; /* without the query */
    const char *body; /* the whole body, NUL-terminated ("" when none) */
    size_t bodylen;
    /* A body over the limit on the spooling path (serverSpoolPath): body is "" and the bytes
     * (bodylen of them) are in this temporary file, at its start. Borrowed; NULL otherwise. */
    FILE *spool;
    void *conn; /* opaque, for serverQuery/serverHeader */
} serverRequest;

typedef struct serverResponse {
    int status;
    char *body; /* owned: freed by the server */
    size_t len;
    char contentType[96];
    int nheaders;
    char *headers[SERVER_MAX_HEADERS][2]; /* owned name/value pairs */
} serverResponse;

/* Answers one request; runs on the request's own thread, so it may block. */
typedef void (*serverHandlerFn)(const serverRequest *req, serverResponse *res);

/* Starts listening on 127.0.0.1:port. Returns 0, or -1 with a message in err. */
int serverStart(int port, size_t maxBody, serverHandlerFn fn, char *err, size_t errlen);

/* Bodies of POSTs to path over maxBody, up to ceiling bytes, go to a temporary file instead of
 * a 413 (serverRequest.spool), so that the handler can keep them. Call before serverStart. */
void serverSpoolPath(const char *path, size_t ceiling);

/* Stops accepting, lets in-flight requests finish (up to drainSeconds), then stops. */
void serverStop(int drainSeconds);

/* A query-string argument (decoded) or request header (case-insensitive), borrowed for the
 * request's life; NULL when absent. */
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

#endif
