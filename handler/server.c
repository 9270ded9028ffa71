/* server: the HTTP server the Functions host talks to (libmicrohttpd behind it): loopback only,
 * parallel requests, a capped request body (413 past it), graceful stop. The only module that
 * calls libmicrohttpd. */
#include "server.h"

#include "buf.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct request {
    buf body;
    int tooLarge;
    int spoolable; /* a POST to the spooling path */
    FILE *spool;   /* the body, once it passed max_body on the spooling path */
    size_t total;  /* bytes received */
} request;

static struct MHD_Daemon *daemon_;
static serverHandlerFn handler;
static size_t max_body;
static char spool_path[128];
static size_t spool_ceiling;

void serverSpoolPath(const char *path, size_t ceiling) {
    snprintf(spool_path, sizeof(spool_path), "%s", path);
    spool_ceiling = ceiling;
}

/* Appends a piece of the body: to memory up to max_body, then (on the spooling path) to a
 * temporary file up to spool_ceiling. Returns 0, or -1 when the body is too large. */
static int take_body(request *rq, const char *data, size_t n) {
    if (rq->total + n < rq->total) return -1;
    rq->total += n;
    if (!rq->spool && rq->body.len + n <= max_body) return bufAppend(&rq->body, data, n);
    if (!rq->spoolable || rq->total > spool_ceiling) return -1;
    if (!rq->spool) {
        rq->spool = tmpfile();
        if (!rq->spool) {
            logError("cannot spool a body of more than %zu bytes: %s", max_body, strerror(errno));
            return -1;
        }
        if (rq->body.len && fwrite(rq->body.data, 1, rq->body.len, rq->spool) != rq->body.len)
            return -1;
        bufFree(&rq->body);
    }
    return fwrite(data, 1, n, rq->spool) == n ? 0 : -1;
}
static int inflight;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;

static enum MHD_Result send_response(struct MHD_Connection *c, serverResponse *res) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(res->len, res->body ? res->body : (char *)"",
                                        res->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(res->body);
        res->body = NULL;
        return MHD_NO;
    }
    res->body = NULL; /* the response owns it now */
    if (res->contentType[0]) MHD_add_response_header(r, "Content-Type", res->contentType);
    for (int i = 0; i < res->nheaders; i++) {
        MHD_add_response_header(r, res->headers[i][0], res->headers[i][1]);
        free(res->headers[i][0]);
        free(res->headers[i][1]);
    }
    res->nheaders = 0;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)res->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result too_large(struct MHD_Connection *c) {
    serverResponse res = {0};
    char msg[128];
    snprintf(msg, sizeof(msg), "request body is larger than MaxRequestBodyBytes (%zu bytes)",
             max_body);
    serverSetError(&res, 413, msg);
    return send_response(c, &res);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)cls;
    (void)version;
    request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq) return MHD_NO;
        bufInit(&rq->body, max_body);
        *con_cls = rq;
        pthread_mutex_lock(&lock);
        inflight++;
        pthread_mutex_unlock(&lock);
        rq->spoolable =
            spool_path[0] && strcmp(method, "POST") == 0 && strcasecmp(url, spool_path) == 0;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (rq->spoolable ? spool_ceiling : max_body)) {
            rq->tooLarge = 1;
            return too_large(c); /* answered before the body is read */
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rq->tooLarge && take_body(rq, upload_data, *upload_data_size) != 0) {
            rq->tooLarge = 1;
            bufFree(&rq->body);
            if (rq->spool) fclose(rq->spool);
            rq->spool = NULL;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->tooLarge) return too_large(c);

    if (rq->spool && (fflush(rq->spool) != 0 || fseek(rq->spool, 0, SEEK_SET) != 0)) {
        fclose(rq->spool);
        rq->spool = NULL;
        return too_large(c);
    }
    serverRequest req = {.method = method,
                         .path = url,
                         .body = rq->body.data ? rq->body.data : "",
                         .bodylen = rq->spool ? rq->total : rq->body.len,
                         .spool = rq->spool,
                         .conn = c};
    serverResponse res = {.status = 500};
    handler(&req, &res);
    return send_response(c, &res);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    request *rq = *con_cls;
    if (!rq) return;
    bufFree(&rq->body);
    if (rq->spool) fclose(rq->spool);
    free(rq);
    *con_cls = NULL;
    pthread_mutex_lock(&lock);
    if (--inflight == 0) pthread_cond_broadcast(&idle);
    pthread_mutex_unlock(&lock);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    logDebug("http server: %s", line);
}

int serverStart(int port, size_t maxBody, serverHandlerFn fn, char *err, size_t errlen) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    handler = fn;
    max_body = maxBody;
    errno = 0;
    daemon_ = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
            MHD_USE_POLL | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)300, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(1 << 20), MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!daemon_) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%d%s%s", port, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        return -1;
    }
    return 0;
}

void serverStop(int drainSeconds) {
    if (!daemon_) return;
    MHD_socket fd = MHD_quiesce_daemon(daemon_);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += drainSeconds;
    pthread_mutex_lock(&lock);
    while (inflight > 0)
        if (pthread_cond_timedwait(&idle, &lock, &until) != 0) break;
    int left = inflight;
    pthread_mutex_unlock(&lock);
    if (left) logWarn("stopping with %d request(s) still in flight", left);
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}

const char *serverQuery(const serverRequest *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *serverHeader(const serverRequest *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
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
