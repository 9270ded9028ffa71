/* server: the HTTP server the Functions host talks to (libmicrohttpd behind it): loopback only,
 * a few I/O threads (epoll) for any number of connections, handlers on worker threads, a capped
 * request body (413 past it), a deadline for every request, streamed answers, graceful stop. The
 * handler's only module that calls libmicrohttpd (the stand-in has its own, standin/httpd.c).
 *
 * Why this shape: with one thread per connection, 1,000 idle or slow local clients took every
 * slot and the host's own invocations were refused. Here a connection costs a socket and a small
 * buffer on an epoll set served by SERVER_IO_THREADS threads; a request reaches a worker thread
 * only once it has arrived whole, and the connection is suspended (MHD_suspend_connection) while
 * the handler runs, so a batch commit that waits seconds on storage blocks no other connection.
 * Workers come in two lanes, the host's invocations (POST to a function path) and the rest
 * (HTTP functions, static files), each capped, so that neither can take the other's threads.
 *
 * The deadline: libmicrohttpd times out idle connections only, so a client sending one byte a
 * minute kept its connection for ever. A sweeper thread closes (shutdown(2)) every connection
 * that has spent more than deadlineSeconds receiving a request (since it connected or since its
 * previous answer) or taking an answer. The time a handler runs does not count. The record of a
 * connection is dropped in libmicrohttpd's "closed" notification, which comes before it closes
 * the socket (daemon.c, MHD_cleanup_connections, v0.9.75), and both sides hold the lock: the
 * sweeper never shuts a descriptor that has been reused. */
#include "server.h"

#include "buf.h"
#include "clock.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { PHASE_RECEIVING, PHASE_WORKING, PHASE_SENDING };

/* One TCP connection, for the deadline. */
typedef struct conninfo {
    struct conninfo *prev, *next;
    int fd;
    int phase;
    int64_t since; /* ms, CLOCK_MONOTONIC: start of the phase */
    int shut;
} conninfo;

enum {
    RQ_READING,  /* the body is arriving */
    RQ_WORKING,  /* suspended; a worker runs the handler */
    RQ_ANSWER,   /* the handler answered; resumed to queue it */
    RQ_STREAM,   /* the handler opened a stream; resumed to queue it */
    RQ_ANSWERED, /* the answer is queued */
};

typedef struct request {
    int refs; /* libmicrohttpd's (until completed) and the worker's (until the handler returns) */
    int state;
    buf body;
    int tooLarge;
    int spoolable; /* a POST to the spooling path */
    FILE *spool;   /* the body, once it passed maxBody on the spooling path */
    size_t total;  /* bytes received */
    int lane;
    struct MHD_Connection *conn;
    conninfo *ci;
    const char *method, *url; /* libmicrohttpd's, valid until the request completes */
    serverResponse res;
    serverStream *stream;       /* open for writing by the handler, or NULL */
    serverStream *streamQueued; /* the stream to queue once resumed (its reader's reference) */
    struct request *next;       /* in a lane's queue */
} request;

struct serverStream {
    int refs; /* the writer's (until closed) and the response's (until destroyed) */
    char *data;
    size_t off, len; /* data[off, len) waits to be sent */
    int ended, ok, readerGone, waiting, sending;
    struct MHD_Connection *conn;
    conninfo *ci;       /* only touched by the reader (libmicrohttpd's thread) */
    struct request *rq; /* until closed: the request whose handler writes */
};

typedef struct lane {
    request *head, *tail;
    int queued, threads, idle;
    pthread_cond_t wake;
} lane;

static struct MHD_Daemon *daemon_;
static serverOptions opt;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER; /* inflight, busy, stream space */
static int inflight;                                      /* requests begun and not completed */
static int busy; /* requests a worker holds, or whose stream waits for its writer */
static conninfo *conns;
static lane lanes[2] = {{.wake = PTHREAD_COND_INITIALIZER}, {.wake = PTHREAD_COND_INITIALIZER}};
static pthread_t sweeper;
static int stopping;
static pthread_cond_t sweep_wake = PTHREAD_COND_INITIALIZER;

/* Under the lock. */
static void set_phase(conninfo *ci, int phase) {
    if (!ci) return;
    ci->phase = phase;
    ci->since = clockNowMs();
}

static conninfo *conn_info(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static void free_response_parts(serverResponse *res) {
    free(res->body);
    res->body = NULL;
    for (int i = 0; i < res->nheaders; i++) {
        free(res->headers[i][0]);
        free(res->headers[i][1]);
    }
    res->nheaders = 0;
}

static void stream_unref(serverStream *s);

/* Drops one reference; under the lock. */
static void release(request *rq) {
    if (--rq->refs > 0) return;
    if (rq->state == RQ_STREAM && rq->streamQueued) { /* gone before the stream was queued */
        rq->streamQueued->readerGone = 1;
        pthread_cond_broadcast(&changed);
        stream_unref(rq->streamQueued);
    }
    bufFree(&rq->body);
    if (rq->spool) fclose(rq->spool);
    free_response_parts(&rq->res);
    free(rq);
}

/* Appends a piece of the body: to memory up to maxBody, then (on the spooling path) to a
 * temporary file up to spoolCeiling. Returns 0, or -1 when the body is too large or cannot be
 * spooled. Runs on an I/O thread: the writes go to the page cache. */
static int take_body(request *rq, const char *data, size_t n) {
    if (rq->total + n < rq->total) return -1;
    rq->total += n;
    if (!rq->spool && rq->body.len + n <= opt.maxBody) return bufAppend(&rq->body, data, n);
    if (!rq->spoolable || rq->total > opt.spoolCeiling) return -1;
    if (!rq->spool) {
        rq->spool = tmpfile();
        if (!rq->spool) {
            logError("cannot spool a body of more than %zu bytes: %s", opt.maxBody,
                     strerror(errno));
            return -1;
        }
        if (rq->body.len && fwrite(rq->body.data, 1, rq->body.len, rq->spool) != rq->body.len)
            return -1;
        bufFree(&rq->body);
    }
    return fwrite(data, 1, n, rq->spool) == n ? 0 : -1;
}

static void add_headers(struct MHD_Response *r, serverResponse *res) {
    if (res->contentType[0]) MHD_add_response_header(r, "Content-Type", res->contentType);
    for (int i = 0; i < res->nheaders; i++)
        MHD_add_response_header(r, res->headers[i][0], res->headers[i][1]);
}

/* Queues res (its body is taken; the rest stays the caller's). close: "Connection: close". */
static enum MHD_Result send_response(struct MHD_Connection *c, serverResponse *res, int close) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(res->len, res->body ? res->body : (char *)"",
                                        res->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    res->body = NULL; /* the response owns it now */
    add_headers(r, res);
    if (close) MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)res->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Answers at once with an error, then closes the connection. */
static enum MHD_Result refuse(struct MHD_Connection *c, int status, const char *msg,
                              const char *retryAfter) {
    serverResponse res = {0};
    serverSetError(&res, status, msg);
    if (retryAfter) serverAddHeader(&res, "Retry-After", retryAfter);
    enum MHD_Result ok = send_response(c, &res, 1);
    free_response_parts(&res);
    return ok;
}

static enum MHD_Result too_large(struct MHD_Connection *c) {
    char msg[128];
    snprintf(msg, sizeof(msg), "request body is larger than MaxRequestBodyBytes (%zu bytes)",
             opt.maxBody);
    return refuse(c, 413, msg, NULL);
}

/* ---- framing: what libmicrohttpd would otherwise wait on until its timeout ---- */

typedef struct framing {
    int te, cl, chunkedOnly;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    framing *f = cls;
    (void)kind;
    if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->te++;
        /* libmicrohttpd decodes exactly "chunked" (any case) and nothing else; any other coding
         * or list ("chunked, identity", "xchunked", "gzip, chunked") left it waiting for a body
         * whose end it could not find. */
        if (!value || strcasecmp(value, "chunked") != 0) f->chunkedOnly = 0;
    } else if (strcasecmp(key, "Content-Length") == 0) {
        f->cl++;
    }
    return MHD_YES;
}

/* 0 when the request's framing can be read; otherwise answers (501 or 400) and returns 1. */
static int bad_framing(struct MHD_Connection *c, enum MHD_Result *ret) {
    framing f = {.chunkedOnly = 1};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.te == 0) return 0;
    /* RFC 9112 section 6.1: a coding the server does not understand is answered 501; a request
     * with both Transfer-Encoding and Content-Length "ought to be handled as an error". */
    if (!f.chunkedOnly || f.te > 1)
        *ret = refuse(c, 501, "Transfer-Encoding other than a single 'chunked' is not supported",
                      NULL);
    else if (f.cl)
        *ret = refuse(c, 400, "a request may not have both Transfer-Encoding and Content-Length",
                      NULL);
    else
        return 0;
    return 1;
}

/* ---- workers ---- */

static void *worker(void *arg);

/* Queues rq for a worker of its lane, starting one if none is idle. Under the lock. Returns 0,
 * or -1 when the lane's queue is full. */
static int enqueue(request *rq) {
    lane *l = &lanes[rq->lane];
    if (l->queued >= SERVER_LANE_QUEUE) return -1;
    /* Idle workers not yet claimed by a request already queued: none left, start one more. */
    if (l->queued >= l->idle && l->threads < SERVER_LANE_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20);
        if (pthread_create(&t, &attr, worker, l) == 0) l->threads++;
        pthread_attr_destroy(&attr);
    }
    if (l->threads == 0) return -1; /* no thread could be started */
    rq->next = NULL;
    if (l->tail)
        l->tail->next = rq;
    else
        l->head = rq;
    l->tail = rq;
    l->queued++;
    rq->refs++;
    busy++;
    pthread_cond_signal(&l->wake); /* an idle worker, or the new one, or the next free one */
    return 0;
}

static void run(request *rq) {
    serverRequest req = {.method = rq->method,
                         .path = rq->url,
                         .body = rq->body.data ? rq->body.data : "",
                         .bodylen = rq->spool ? rq->total : rq->body.len,
                         .spool = rq->spool,
                         .conn = rq->conn,
                         .rq = rq};
    opt.handler(&req, &rq->res);
    pthread_mutex_lock(&lock);
    if (rq->state == RQ_WORKING) {
        rq->state = RQ_ANSWER;
        MHD_resume_connection(rq->conn); /* the access handler queues the answer */
    } else if (rq->stream) {
        pthread_mutex_unlock(&lock);
        serverStreamClose(rq->stream, 0); /* the handler forgot: cut short */
        pthread_mutex_lock(&lock);
    }
    busy--;
    release(rq);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void *worker(void *arg) {
    lane *l = arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!l->head) {
            struct timespec ts;
            clockDeadline(&ts, CLOCK_REALTIME, 30000);
            l->idle++;
            int rc = pthread_cond_timedwait(&l->wake, &lock, &ts);
            l->idle--;
            if (rc == ETIMEDOUT && !l->head) goto out; /* idle for 30 s: the thread ends */
        }
        request *rq = l->head;
        l->head = rq->next;
        if (!l->head) l->tail = NULL;
        l->queued--;
        pthread_mutex_unlock(&lock);
        run(rq);
        pthread_mutex_lock(&lock);
    }
out:
    l->threads--;
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* ---- streams ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
    serverStream *s = cls;
    ssize_t n;
    (void)pos;
    pthread_mutex_lock(&lock);
    if (s->len > s->off) {
        size_t k = s->len - s->off < max ? s->len - s->off : max;
        memcpy(out, s->data + s->off, k);
        s->off += k;
        if (s->off == s->len) s->off = s->len = 0;
        pthread_cond_broadcast(&changed);
        n = (ssize_t)k;
    } else if (s->ended) {
        n = s->ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
        /* Nothing yet: step aside until the writer adds some (no busy loop). */
        s->waiting = 1;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    if (s->ended && !s->sending) {
        /* The writer is done: what is left must now be taken within the deadline. */
        s->sending = 1;
        set_phase(s->ci, PHASE_SENDING);
    }
    pthread_mutex_unlock(&lock);
    return n;
}

static void stream_unref(serverStream *s) {
    if (--s->refs > 0) return;
    free(s->data);
    free(s);
}

static void stream_free(void *cls) {
    serverStream *s = cls;
    pthread_mutex_lock(&lock);
    s->readerGone = 1;
    s->ci = NULL;
    pthread_cond_broadcast(&changed);
    stream_unref(s);
    pthread_mutex_unlock(&lock);
}

/* Under the lock: lets the reader run again if it stepped aside. */
static void wake_reader(serverStream *s) {
    if (s->waiting && !s->readerGone) {
        s->waiting = 0;
        MHD_resume_connection(s->conn);
    }
}

serverStream *serverStreamOpen(const serverRequest *req, serverResponse *res) {
    request *rq = req->rq;
    serverStream *s = NULL;
    if (!rq) return NULL;
    pthread_mutex_lock(&lock);
    if (rq->state != RQ_WORKING || &rq->res != res || rq->stream) goto out;
    s = calloc(1, sizeof(*s));
    if (s) s->data = malloc(SERVER_STREAM_BUFFER);
    if (!s || !s->data) {
        if (s) free(s);
        s = NULL;
        goto out;
    }
    s->refs = 2;
    s->conn = rq->conn;
    s->rq = rq;
    free(res->body);
    res->body = NULL;
    res->len = 0;
    rq->stream = rq->streamQueued = s;
    rq->state = RQ_STREAM;
    MHD_resume_connection(rq->conn);
out:
    pthread_mutex_unlock(&lock);
    return s;
}

int serverStreamWrite(serverStream *s, const char *data, size_t len) {
    int rc = 0;
    int64_t stuck = 0; /* when the buffer was found full with nothing taken since */
    pthread_mutex_lock(&lock);
    while (len > 0) {
        if (s->readerGone) {
            rc = -1;
            break;
        }
        if (s->len == SERVER_STREAM_BUFFER && s->off > 0) {
            memmove(s->data, s->data + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        size_t room = SERVER_STREAM_BUFFER - s->len;
        if (room == 0) {
            int64_t now = clockNowMs(), limit = (int64_t)opt.deadlineSeconds * 1000;
            if (!stuck) stuck = now;
            if (now - stuck >= limit) {
                rc = -1; /* the client took nothing for the deadline */
                break;
            }
            struct timespec ts;
            clockDeadline(&ts, CLOCK_REALTIME, stuck + limit - now);
            wake_reader(s);
            pthread_cond_timedwait(&changed, &lock, &ts);
            continue;
        }
        stuck = 0;
        size_t k = len < room ? len : room;
        memcpy(s->data + s->len, data, k);
        s->len += k;
        data += k;
        len -= k;
        wake_reader(s);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void serverStreamClose(serverStream *s, int ok) {
    if (!s) return;
    pthread_mutex_lock(&lock);
    if (!s->ended) {
        if (s->rq) s->rq->stream = NULL;
        s->rq = NULL;
        s->ended = 1;
        s->ok = ok;
        wake_reader(s);
        stream_unref(s);
    }
    pthread_mutex_unlock(&lock);
}

/* Queues the stream's response (libmicrohttpd's thread). */
static enum MHD_Result queue_stream(struct MHD_Connection *c, request *rq, serverStream *s) {
    pthread_mutex_lock(&lock);
    s->ci = rq->ci;
    pthread_mutex_unlock(&lock);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s, stream_free);
    if (!r) {
        stream_free(s); /* the writer sees the reader gone */
        return MHD_NO;
    }
    add_headers(r, &rq->res);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rq->res.status, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- libmicrohttpd's callbacks ---- */

/* The first call for a request: its state, and an early answer for bad framing or a
 * Content-Length over the limit. */
static enum MHD_Result open_request(struct MHD_Connection *c, const char *url, const char *method,
                                    void **con_cls) {
    enum MHD_Result ret;
    request *rq = calloc(1, sizeof(*rq));
    if (!rq) return MHD_NO;
    rq->refs = 1;
    rq->res.status = 500;
    bufInit(&rq->body, opt.maxBody);
    rq->conn = c;
    rq->ci = conn_info(c);
    rq->method = method;
    rq->url = url;
    /* Functions host invocations (POST /<FunctionName>) get their own lane. */
    rq->lane = !(strcmp(method, "POST") == 0 && strncasecmp(url, "/api/", 5) != 0);
    rq->spoolable =
        opt.spoolPath && strcmp(method, "POST") == 0 && strcasecmp(url, opt.spoolPath) == 0;
    *con_cls = rq;
    pthread_mutex_lock(&lock);
    inflight++;
    pthread_mutex_unlock(&lock);
    if (bad_framing(c, &ret)) {
        rq->state = RQ_ANSWERED;
        return ret;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > (rq->spoolable ? opt.spoolCeiling : opt.maxBody)) {
        rq->tooLarge = 1;
        rq->state = RQ_ANSWERED;
        return too_large(c); /* answered before the body is read */
    }
    return MHD_YES;
}

/* A piece of the body: kept (in memory or in the spool file) or, past the limit, dropped. */
static enum MHD_Result take_upload(request *rq, const char *data, size_t *size) {
    if (rq->state == RQ_ANSWERED) { /* answered early: the rest of the body is dropped */
        *size = 0;
        return MHD_YES;
    }
    if (!rq->tooLarge && take_body(rq, data, *size) != 0) {
        rq->tooLarge = 1;
        bufFree(&rq->body);
        if (rq->spool) fclose(rq->spool);
        rq->spool = NULL;
    }
    *size = 0;
    return MHD_YES;
}

/* The body is complete (called with the lock held; releases it): a 413, a quick answer on this
 * thread, or the request queued for a worker (a 503 when its lane's queue is full). */
static enum MHD_Result body_read(struct MHD_Connection *c, request *rq, const char *method,
                                 const char *url) {
    if (!rq->tooLarge && rq->spool &&
        (fflush(rq->spool) != 0 || fseek(rq->spool, 0, SEEK_SET) != 0)) {
        fclose(rq->spool);
        rq->spool = NULL;
        rq->tooLarge = 1;
    }
    if (rq->tooLarge) {
        rq->state = RQ_ANSWERED;
        pthread_mutex_unlock(&lock);
        return too_large(c);
    }
    if (opt.quick && opt.quick(method, url)) {
        rq->state = RQ_ANSWERED;
        set_phase(rq->ci, PHASE_SENDING);
        pthread_mutex_unlock(&lock);
        serverRequest req = {.method = method,
                             .path = url,
                             .body = rq->body.data ? rq->body.data : "",
                             .bodylen = rq->body.len,
                             .conn = c};
        opt.handler(&req, &rq->res);
        return send_response(c, &rq->res, 0);
    }
    rq->state = RQ_WORKING;
    if (enqueue(rq) != 0) {
        rq->state = RQ_ANSWERED;
        pthread_mutex_unlock(&lock);
        logWarn("http server: %s %.100s refused: %d requests already wait for a worker", method,
                url, SERVER_LANE_QUEUE);
        return refuse(c, 503, "the server is busy; retry shortly", "1");
    }
    set_phase(rq->ci, PHASE_WORKING);
    MHD_suspend_connection(c);
    pthread_mutex_unlock(&lock);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)cls;
    (void)version;
    request *rq = *con_cls;
    if (!rq) return open_request(c, url, method, con_cls);
    if (*upload_data_size) return take_upload(rq, upload_data, upload_data_size);

    pthread_mutex_lock(&lock);
    int state = rq->state;
    if (state == RQ_READING) return body_read(c, rq, method, url);
    if (state == RQ_ANSWER) {
        rq->state = RQ_ANSWERED;
        set_phase(rq->ci, PHASE_SENDING);
        pthread_mutex_unlock(&lock);
        return send_response(c, &rq->res, 0);
    }
    if (state == RQ_STREAM) {
        /* The stream holds its own reference, so it is alive even if its writer closed it. */
        serverStream *s = rq->streamQueued;
        rq->state = RQ_ANSWERED;
        pthread_mutex_unlock(&lock);
        return queue_stream(c, rq, s);
    }
    pthread_mutex_unlock(&lock);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)toe;
    request *rq = *con_cls;
    pthread_mutex_lock(&lock);
    set_phase(conn_info(c), PHASE_RECEIVING); /* the next request's time starts now */
    if (rq) {
        *con_cls = NULL;
        release(rq);
        if (--inflight == 0) pthread_cond_broadcast(&changed);
    }
    pthread_mutex_unlock(&lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    (void)cls;
    pthread_mutex_lock(&lock);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *i =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conninfo *ci = i ? calloc(1, sizeof(*ci)) : NULL;
        if (ci) {
            ci->fd = i->connect_fd;
            set_phase(ci, PHASE_RECEIVING);
            ci->next = conns;
            if (conns) conns->prev = ci;
            conns = ci;
        }
        *socket_context = ci;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conninfo *ci = *socket_context;
        if (ci) {
            if (ci->prev)
                ci->prev->next = ci->next;
            else
                conns = ci->next;
            if (ci->next) ci->next->prev = ci->prev;
            free(ci);
        }
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&lock);
}

static void *sweep(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        struct timespec ts;
        clockDeadline(&ts, CLOCK_REALTIME, 500);
        pthread_cond_timedwait(&sweep_wake, &lock, &ts);
        int64_t limit = clockNowMs() - (int64_t)opt.deadlineSeconds * 1000;
        int cut = 0;
        for (conninfo *ci = conns; ci; ci = ci->next) {
            if (ci->shut || ci->phase == PHASE_WORKING || ci->since > limit) continue;
            /* libmicrohttpd sees the end of the stream and closes the connection itself. */
            shutdown(ci->fd, SHUT_RDWR);
            ci->shut = 1;
            cut++;
        }
        if (cut)
            logInfo("http server: closed %d connection(s) that spent over %d s on one request or "
                    "answer",
                    cut, opt.deadlineSeconds);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
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

int serverStart(const serverOptions *o, char *err, size_t errlen) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    opt = *o;
    if (opt.deadlineSeconds < 1) opt.deadlineSeconds = 1;

    /* Every connection is a descriptor: take what the hard limit allows, keep some for storage
     * and SignalR connections and files. */
    struct rlimit rl;
    unsigned limit = SERVER_MAX_CONNECTIONS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)limit + 256)
            limit = rl.rlim_cur > 512 ? (unsigned)(rl.rlim_cur - 256) : (unsigned)rl.rlim_cur / 2;
    }
    errno = 0;
    daemon_ = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        (uint16_t)o->port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)SERVER_IO_THREADS, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opt.deadlineSeconds, MHD_OPTION_CONNECTION_LIMIT,
        limit, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_END);
    if (!daemon_) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%d%s%s", o->port, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        return -1;
    }
    stopping = 0;
    if (pthread_create(&sweeper, NULL, sweep, NULL) != 0) {
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
        snprintf(err, errlen, "cannot start a thread");
        return -1;
    }
    logDebug("http server: up to %u connections, %d I/O threads, request deadline %d s", limit,
             SERVER_IO_THREADS, opt.deadlineSeconds);
    return 0;
}

int serverStop(int drainSeconds) {
    if (!daemon_) return 0;
    MHD_socket fd = MHD_quiesce_daemon(daemon_);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    struct timespec until;
    clockDeadline(&until, CLOCK_REALTIME, (int64_t)drainSeconds * 1000);
    pthread_mutex_lock(&lock);
    while (inflight > 0)
        if (pthread_cond_timedwait(&changed, &lock, &until) != 0) break;
    int left = inflight, working = busy;
    stopping = 1;
    pthread_cond_broadcast(&sweep_wake);
    pthread_mutex_unlock(&lock);
    pthread_join(sweeper, NULL);
    if (left) logWarn("stopping with %d request(s) still in flight", left);
    /* libmicrohttpd may not be stopped with a connection suspended: a handler still running
     * keeps the server as it is, and the process ends around it. */
    if (working) return working;
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    return 0;
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
