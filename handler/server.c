/* server: the handler's HTTP front on the shared server (common/httpd): loopback only, two worker
 * lanes (the host's invocations and the rest), quick routes answered on the I/O threads, a
 * request deadline, over-limit trigger bodies spooled, streamed answers, graceful stop. It keeps
 * the serverRequest/serverResponse API the function files use and adds no HTTP of its own. */
#include "server.h"

#include "httpd.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static httpd *server;
static serverOptions opt;

struct serverStream {
    httpdStream *s;
};

/* Functions host invocations (POST /<FunctionName>) in lane 0, everything else in lane 1. */
static int laneOf(const char *method, const char *path) {
    return !(strcmp(method, "POST") == 0 && strncasecmp(path, "/api/", 5) != 0);
}

/* Moves res (status, type, body, headers) into out, emptying res. */
static void toHttpd(serverResponse *res, httpdResponse *out) {
    httpdSetBody(out, res->status, res->contentType, res->body, res->len);
    res->body = NULL;
    res->len = 0;
    for (int i = 0; i < res->nheaders; i++) {
        if (out->headerCount < HTTPD_MAX_HEADERS) {
            out->headers[out->headerCount][0] = res->headers[i][0];
            out->headers[out->headerCount][1] = res->headers[i][1];
            out->headerCount++;
        } else {
            free(res->headers[i][0]);
            free(res->headers[i][1]);
        }
    }
    res->nheaders = 0;
}

static void onFull(const httpdRequest *hr, httpdResponse *resp, void *ctx) {
    size_t len = 0;
    const char *body = httpdBody(hr, &len);
    serverRequest req = {.method = httpdMethod(hr),
                         .path = httpdPath(hr),
                         .body = body ? body : "",
                         .bodylen = len,
                         .spool = httpdSpool(hr),
                         .conn = (void *)hr,
                         .rq = (void *)hr};
    serverResponse res = {.status = 500};
    int64_t receiveUs, queuedUs;
    (void)ctx;
    httpdTiming(hr, &receiveUs, &queuedUs);
    req.receiveMs = (double)receiveUs / 1e3;
    req.queuedMs = (double)queuedUs / 1e3;
    opt.handler(&req, &res);
    toHttpd(&res, resp);
}

/* The server's own errors as the function files give theirs: {"error": message}. */
static void onError(httpdResponse *resp, int status, const char *message) {
    serverResponse res = {0};
    char msg[128];
    if (status == 413) {
        snprintf(msg, sizeof(msg), "request body is larger than MaxRequestBodyBytes (%zu bytes)",
                 opt.maxBody);
        message = msg;
    }
    serverSetError(&res, status, message);
    toHttpd(&res, resp);
}

int serverStart(const serverOptions *o, char *err, size_t errlen) {
    opt = *o;
    httpdOptions h = {.host = "127.0.0.1",
                      .port = o->port,
                      .maxBody = o->maxBody,
                      .deadlineSeconds = o->deadlineSeconds < 1 ? 1 : o->deadlineSeconds,
                      .raiseFileLimit = 1,
                      .reuseAddress = 1,
                      .full = onFull,
                      .quick = o->quick,
                      .lane = laneOf,
                      .error = onError,
                      .spoolPath = o->spoolPath,
                      .spoolCeiling = o->spoolCeiling};
    server = httpdStart(&h, err, errlen);
    return server ? 0 : -1;
}

int serverStop(int drainSeconds) {
    int running = httpdStop(server, drainSeconds);
    if (!running) server = NULL;
    return running;
}

const char *serverQuery(const serverRequest *req, const char *name) {
    return httpdArgument(req->conn, name);
}

const char *serverHeader(const serverRequest *req, const char *name) {
    return httpdHeader(req->conn, name);
}

serverStream *serverStreamOpen(const serverRequest *req, serverResponse *res) {
    httpdResponse head;
    serverStream *s;
    if (!req->rq) return NULL;
    s = malloc(sizeof(*s));
    if (!s) return NULL;
    /* Copies, so that res is whole for an answer as usual when no stream can be opened. */
    memset(&head, 0, sizeof(head));
    httpdSetBody(&head, res->status, res->contentType, NULL, 0);
    for (int i = 0; i < res->nheaders; i++)
        httpdAddHeader(&head, res->headers[i][0], res->headers[i][1]);
    s->s = httpdStreamOpen(req->rq, &head);
    httpdResponseClear(&head);
    if (!s->s) {
        free(s);
        return NULL;
    }
    free(res->body);
    res->body = NULL;
    res->len = 0;
    return s;
}

int serverStreamWrite(serverStream *s, const char *data, size_t len) {
    return httpdStreamWrite(s->s, data, len);
}

void serverStreamClose(serverStream *s, int ok) {
    if (!s) return;
    httpdStreamClose(s->s, ok);
    free(s);
}

void serverSetBody(serverResponse *res, int status, const char *contentType, char *body,
                   size_t len) {
    free(res->body);
    res->status = status;
    res->body = body;
    res->len = body ? len : 0;
    snprintf(res->contentType, sizeof(res->contentType), "%s", contentType ? contentType : "");
}

void serverSetJson(serverResponse *res, int status, json_t *j) {
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!text) {
        serverSetBody(res, 500, "text/plain", NULL, 0);
        return;
    }
    serverSetBody(res, status, "application/json; charset=utf-8", text, strlen(text));
}

void serverSetError(serverResponse *res, int status, const char *message) {
    serverSetJson(res, status, json_pack("{s:s}", "error", message));
}

void serverAddHeader(serverResponse *res, const char *name, const char *value) {
    if (res->nheaders >= SERVER_MAX_HEADERS) return;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    res->headers[res->nheaders][0] = n;
    res->headers[res->nheaders][1] = v;
    res->nheaders++;
}
