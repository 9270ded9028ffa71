/* httpd: the HTTP server both programs use, the only module that calls libmicrohttpd.
 *
 * Why lanes: with one thread per connection, 1,000 idle or slow local clients took every slot of
 * the handler and the host's own invocations were refused. In lane mode a connection costs a
 * socket and a small buffer on an epoll set served by HTTPD_IO_THREADS threads; a request reaches
 * a worker only once it has arrived whole, and the connection is suspended
 * (MHD_suspend_connection) while the handler runs. Why thread-per-connection stays: the stand-in's
 * long polls wait up to 90 s each for output; on a lane they would take every worker.
 *
 * The deadline: libmicrohttpd times out idle connections only, so a client sending one byte a
 * minute kept its connection for ever. A sweeper thread closes (shutdown(2)) every connection
 * that has spent more than deadlineSeconds receiving a request (since it connected or since its
 * previous answer) or taking an answer. The time a handler runs does not count, nor an upgraded
 * connection. The record of a connection is dropped in libmicrohttpd's "closed" notification,
 * which comes before it closes the socket (daemon.c, MHD_cleanup_connections, v0.9.75), and both
 * sides hold the lock: the sweeper never shuts a descriptor that has been reused. */
#include "httpd.h"

#include "buf.h"
#include "clock.h"
#include "escape.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WORKER_IDLE_MS 30000 /* a lane's worker idle this long ends */

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
    RQ_EARLY,    /* answered by the early call: the body is dropped, then the answer queued */
    RQ_WORKING,  /* suspended; a worker runs the full call */
    RQ_INLINE,   /* the full call runs on this connection's thread (or is quick) */
    RQ_ANSWER,   /* the full call answered; resumed to queue it */
    RQ_STREAM,   /* the full call opened a stream; resumed to queue it */
    RQ_ANSWERED, /* the answer is queued */
};

typedef struct lane {
    httpdRequest *head, *tail;
    int queued, threads, idle;
    pthread_cond_t wake;
} lane;

struct httpd {
    struct MHD_Daemon *daemon;
    httpdOptions opt;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* inflight, busy, stream space */
    int inflight;           /* requests begun and not completed */
    int busy;               /* requests a worker holds */
    conninfo *conns;
    lane lanes[2];
    pthread_t sweeper;
    int sweeping, stopping;
    pthread_cond_t sweepWake;
};

struct httpdRequest {
    httpd *d;
    int refs; /* libmicrohttpd's (until completed) and the worker's (until the call returns) */
    int state;
    buf body;
    int bodyReady; /* the full call: the body is all here */
    int tooLarge;
    int spoolable; /* a POST to the spooling path */
    FILE *spool;   /* the body, once it passed maxBody on the spooling path */
    size_t total;  /* bytes received */
    int lane;
    struct MHD_Connection *conn;
    conninfo *ci;
    const char *method, *path; /* libmicrohttpd's, valid until the request completes */
    httpdResponse res;
    httpdUpgradeFn upgrade; /* set when a 101 was queued, until the switch */
    void *upgradeCtx;
    void (*upgradeFree)(void *ctx);
    httpdStream *stream;       /* open for writing by the full call, or NULL */
    httpdStream *streamQueued; /* the stream to queue once resumed (its reader's reference) */
    struct httpdRequest *next; /* in a lane's queue */
    int64_t openedUs, bodyUs, startedUs; /* header seen, body whole, full call started */
};

struct httpdStream {
    httpd *d;
    int refs; /* the writer's (until closed) and the response's (until destroyed) */
    char *data;
    size_t off, len; /* data[off, len) waits to be sent */
    int ended, ok, readerGone, waiting, sending;
    struct MHD_Connection *conn;
    conninfo *ci;       /* only touched by the reader (libmicrohttpd's thread) */
    httpdRequest *rq;   /* until closed: the request whose full call writes */
    httpdResponse head; /* status and headers, queued by the reader */
};

/* ---- requests and responses ---- */

const char *httpdMethod(const httpdRequest *req) { return req->method; }

const char *httpdPath(const httpdRequest *req) { return req->path; }

const char *httpdHeader(const httpdRequest *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *httpdArgument(const httpdRequest *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

char *httpdQuery(const httpdRequest *req, const char *name) {
    const char *raw = httpdArgument(req, name);
    if (!raw) return NULL;
    return escapePercentDecode(raw, strlen(raw), 1);
}

const char *httpdBody(const httpdRequest *req, size_t *len) {
    if (len) *len = !req->bodyReady ? 0 : req->spool ? req->total : req->body.len;
    if (!req->bodyReady) return NULL;
    return req->body.data ? req->body.data : "";
}

FILE *httpdSpool(const httpdRequest *req) { return req->bodyReady ? req->spool : NULL; }

void httpdTiming(const httpdRequest *req, int64_t *receiveUs, int64_t *queuedUs) {
    *receiveUs = req->bodyUs > req->openedUs ? req->bodyUs - req->openedUs : 0;
    *queuedUs = req->startedUs > req->bodyUs ? req->startedUs - req->bodyUs : 0;
}

void httpdSetBody(httpdResponse *resp, int status, const char *contentType, char *body,
                  size_t len) {
    free(resp->body);
    resp->status = status;
    resp->body = body;
    resp->bodyLen = body ? len : 0;
    snprintf(resp->contentType, sizeof(resp->contentType), "%s", contentType ? contentType : "");
}

int httpdSetText(httpdResponse *resp, int status, const char *contentType, const char *text) {
    char *copy = text ? strdup(text) : NULL;
    httpdSetBody(resp, status, contentType, copy, copy ? strlen(copy) : 0);
    return text && !copy ? -1 : 0;
}

int httpdAddHeader(httpdResponse *resp, const char *name, const char *value) {
    if (resp->headerCount >= HTTPD_MAX_HEADERS) return -1;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    resp->headers[resp->headerCount][0] = n;
    resp->headers[resp->headerCount][1] = v;
    resp->headerCount++;
    return 0;
}

void httpdResponseClear(httpdResponse *resp) {
    free(resp->body);
    for (int i = 0; i < resp->headerCount; i++) {
        free(resp->headers[i][0]);
        free(resp->headers[i][1]);
    }
    if (resp->upgradeFree && resp->upgradeCtx) resp->upgradeFree(resp->upgradeCtx);
    memset(resp, 0, sizeof(*resp));
}

/* ---- connections, for the deadline (under the lock) ---- */

static void setPhase(conninfo *ci, int phase) {
    if (!ci) return;
    ci->phase = phase;
    ci->since = clockNowMs();
}

static conninfo *connInfo(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static void streamUnref(httpdStream *s);

/* Drops one reference; under the lock. */
static void release(httpdRequest *rq) {
    if (--rq->refs > 0) return;
    if (rq->state == RQ_STREAM && rq->streamQueued) { /* gone before the stream was queued */
        rq->streamQueued->readerGone = 1;
        pthread_cond_broadcast(&rq->d->changed);
        streamUnref(rq->streamQueued);
    }
    bufFree(&rq->body);
    if (rq->spool) fclose(rq->spool);
    httpdResponseClear(&rq->res);
    free(rq);
}

/* ---- answers ---- */

static void onUpgrade(void *cls, struct MHD_Connection *conn, void *reqCls, const char *extraIn,
                      size_t extraInSize, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh);

static void closeUpgraded(void *urh) {
    if (MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) != MHD_YES)
        logWarn("libmicrohttpd refused to close an upgraded connection");
}

static void addHeaders(struct MHD_Response *mr, const httpdResponse *resp) {
    if (resp->contentType[0]) MHD_add_response_header(mr, "Content-Type", resp->contentType);
    for (int i = 0; i < resp->headerCount; i++)
        MHD_add_response_header(mr, resp->headers[i][0], resp->headers[i][1]);
}

/* Queues resp on rq's connection and empties resp. close: "Connection: close". */
static enum MHD_Result queueAnswer(httpdRequest *rq, httpdResponse *resp, int close) {
    httpd *d = rq->d;
    struct MHD_Response *mr;
    enum MHD_Result ret;
    int upgrade =
        resp->status == MHD_HTTP_SWITCHING_PROTOCOLS && resp->upgrade && d->opt.allowUpgrade;
    if (d->opt.finish) d->opt.finish(rq, resp, d->opt.ctx);
    if (upgrade) {
        mr = MHD_create_response_for_upgrade(onUpgrade, NULL);
    } else {
        mr = MHD_create_response_from_buffer(resp->bodyLen, resp->body ? resp->body : (char *)"",
                                             resp->body ? MHD_RESPMEM_MUST_FREE
                                                        : MHD_RESPMEM_PERSISTENT);
        if (mr) resp->body = NULL; /* libmicrohttpd frees it now */
    }
    if (!mr) {
        httpdResponseClear(resp);
        return MHD_NO;
    }
    addHeaders(mr, resp);
    if (close) MHD_add_response_header(mr, "Connection", "close");
    if (upgrade) {
        /* The request keeps the hand-off until the switch happens (or frees it if not). */
        rq->upgrade = resp->upgrade;
        rq->upgradeCtx = resp->upgradeCtx;
        rq->upgradeFree = resp->upgradeFree;
        resp->upgradeCtx = NULL;
    }
    ret = MHD_queue_response(rq->conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    httpdResponseClear(resp);
    return ret;
}

/* Answers with the server's own error. */
static enum MHD_Result answerError(httpdRequest *rq, int status, const char *msg,
                                   const char *retryAfter, int close) {
    httpdResponse resp;
    memset(&resp, 0, sizeof(resp));
    if (rq->d->opt.error) {
        rq->d->opt.error(&resp, status, msg);
    } else {
        char text[256];
        snprintf(text, sizeof(text), "%s\n", msg);
        httpdSetText(&resp, status, "text/plain; charset=utf-8", text);
    }
    if (retryAfter) httpdAddHeader(&resp, "Retry-After", retryAfter);
    return queueAnswer(rq, &resp, close);
}

static enum MHD_Result tooLarge(httpdRequest *rq, int close) {
    char msg[128];
    snprintf(msg, sizeof(msg), "request body larger than %zu bytes", rq->d->opt.maxBody);
    return answerError(rq, 413, msg, NULL, close);
}

static void onUpgrade(void *cls, struct MHD_Connection *conn, void *reqCls, const char *extraIn,
                      size_t extraInSize, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    httpdRequest *rq = reqCls; /* still ours: completion comes when the socket closes */
    httpdUpgradeFn fn = rq->upgrade;
    void *ctx = rq->upgradeCtx;
    (void)cls;
    pthread_mutex_lock(&rq->d->lock);
    setPhase(connInfo(conn), PHASE_WORKING); /* no deadline for what follows the switch */
    pthread_mutex_unlock(&rq->d->lock);
    rq->upgrade = NULL;
    rq->upgradeCtx = NULL;
    if (!fn) {
        closeUpgraded(urh);
        return;
    }
    fn(ctx, sock, extraIn, extraInSize, closeUpgraded, urh);
}

/* ---- framing: what libmicrohttpd would otherwise wait on until its timeout ---- */

typedef struct framing {
    int te, cl, chunkedOnly;
} framing;

static enum MHD_Result countFraming(void *cls, enum MHD_ValueKind kind, const char *key,
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
static int badFraming(httpdRequest *rq, enum MHD_Result *ret) {
    framing f = {.chunkedOnly = 1};
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, countFraming, &f);
    if (f.te == 0) return 0;
    /* RFC 9112 section 6.1: a coding the server does not understand is answered 501; a request
     * with both Transfer-Encoding and Content-Length "ought to be handled as an error". */
    if (!f.chunkedOnly || f.te > 1)
        *ret = answerError(
            rq, 501, "Transfer-Encoding other than a single 'chunked' is not supported", NULL, 1);
    else if (f.cl)
        *ret = answerError(
            rq, 400, "a request may not have both Transfer-Encoding and Content-Length", NULL, 1);
    else
        return 0;
    return 1;
}

/* Appends a piece of the body: to memory up to maxBody, then (on the spooling path) to a
 * temporary file up to spoolCeiling. Returns 0, or -1 when the body is too large or cannot be
 * spooled. Runs on an I/O thread: the writes go to the page cache. */
static int takeBody(httpdRequest *rq, const char *data, size_t n) {
    const httpdOptions *o = &rq->d->opt;
    if (rq->total + n < rq->total) return -1;
    rq->total += n;
    if (!rq->spool && rq->body.len + n <= o->maxBody) return bufAppend(&rq->body, data, n);
    if (!rq->spoolable || rq->total > o->spoolCeiling) return -1;
    if (!rq->spool) {
        rq->spool = tmpfile();
        if (!rq->spool) {
            logError("cannot spool a body of more than %zu bytes: %s", o->maxBody, strerror(errno));
            return -1;
        }
        if (rq->body.len && fwrite(rq->body.data, 1, rq->body.len, rq->spool) != rq->body.len)
            return -1;
        bufFree(&rq->body);
    }
    return fwrite(data, 1, n, rq->spool) == n ? 0 : -1;
}

/* ---- workers ---- */

static void *worker(void *arg);

typedef struct workerArg {
    httpd *d;
    lane *l;
} workerArg;

/* Queues rq for a worker of its lane, starting one if none is idle. Under the lock. Returns 0,
 * or -1 when the lane's queue is full. */
static int enqueue(httpdRequest *rq) {
    httpd *d = rq->d;
    lane *l = &d->lanes[rq->lane];
    if (l->queued >= HTTPD_LANE_QUEUE) return -1;
    /* Idle workers not yet claimed by a request already queued: none left, start one more. */
    if (l->queued >= l->idle && l->threads < HTTPD_LANE_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        workerArg *a = malloc(sizeof(*a));
        if (a) {
            a->d = d;
            a->l = l;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            pthread_attr_setstacksize(&attr, 1 << 20);
            if (pthread_create(&t, &attr, worker, a) == 0)
                l->threads++;
            else
                free(a);
            pthread_attr_destroy(&attr);
        }
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
    d->busy++;
    pthread_cond_signal(&l->wake); /* an idle worker, or the new one, or the next free one */
    return 0;
}

static void run(httpdRequest *rq) {
    httpd *d = rq->d;
    rq->startedUs = clockNowUs();
    d->opt.full(rq, &rq->res, d->opt.ctx);
    pthread_mutex_lock(&d->lock);
    if (rq->state == RQ_WORKING) {
        rq->state = RQ_ANSWER;
        MHD_resume_connection(rq->conn); /* the access handler queues the answer */
    } else if (rq->stream) {
        pthread_mutex_unlock(&d->lock);
        httpdStreamClose(rq->stream, 0); /* the full call forgot: cut short */
        pthread_mutex_lock(&d->lock);
    }
    d->busy--;
    release(rq);
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
}

static void *worker(void *arg) {
    workerArg *a = arg;
    httpd *d = a->d;
    lane *l = a->l;
    free(a);
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!l->head) {
            struct timespec ts;
            clockDeadline(&ts, CLOCK_REALTIME, WORKER_IDLE_MS);
            l->idle++;
            int rc = pthread_cond_timedwait(&l->wake, &d->lock, &ts);
            l->idle--;
            if ((rc == ETIMEDOUT || d->stopping) && !l->head) goto out;
        }
        httpdRequest *rq = l->head;
        l->head = rq->next;
        if (!l->head) l->tail = NULL;
        l->queued--;
        pthread_mutex_unlock(&d->lock);
        run(rq);
        pthread_mutex_lock(&d->lock);
    }
out:
    l->threads--;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* ---- streams ---- */

static ssize_t streamRead(void *cls, uint64_t pos, char *out, size_t max) {
    httpdStream *s = cls;
    ssize_t n;
    (void)pos;
    pthread_mutex_lock(&s->d->lock);
    if (s->len > s->off) {
        size_t k = s->len - s->off < max ? s->len - s->off : max;
        memcpy(out, s->data + s->off, k);
        s->off += k;
        if (s->off == s->len) s->off = s->len = 0;
        pthread_cond_broadcast(&s->d->changed);
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
        setPhase(s->ci, PHASE_SENDING);
    }
    pthread_mutex_unlock(&s->d->lock);
    return n;
}

static void streamUnref(httpdStream *s) {
    if (--s->refs > 0) return;
    httpdResponseClear(&s->head);
    free(s->data);
    free(s);
}

static void streamFree(void *cls) {
    httpdStream *s = cls;
    httpd *d = s->d;
    pthread_mutex_lock(&d->lock);
    s->readerGone = 1;
    s->ci = NULL;
    pthread_cond_broadcast(&d->changed);
    streamUnref(s);
    pthread_mutex_unlock(&d->lock);
}

/* Under the lock: lets the reader run again if it stepped aside. */
static void wakeReader(httpdStream *s) {
    if (s->waiting && !s->readerGone) {
        s->waiting = 0;
        MHD_resume_connection(s->conn);
    }
}

httpdStream *httpdStreamOpen(const httpdRequest *req, httpdResponse *resp) {
    httpdRequest *rq = (httpdRequest *)req;
    httpd *d = rq->d;
    httpdStream *s = NULL;
    pthread_mutex_lock(&d->lock);
    if (rq->state != RQ_WORKING || rq->stream) goto out;
    s = calloc(1, sizeof(*s));
    if (s) s->data = malloc(HTTPD_STREAM_BUFFER);
    if (!s || !s->data) {
        if (s) free(s);
        s = NULL;
        goto out;
    }
    s->d = d;
    s->refs = 2;
    s->conn = rq->conn;
    s->rq = rq;
    s->head = *resp; /* takes the headers */
    memset(resp, 0, sizeof(*resp));
    resp->status = s->head.status;
    free(s->head.body);
    s->head.body = NULL;
    s->head.bodyLen = 0;
    rq->stream = rq->streamQueued = s;
    rq->state = RQ_STREAM;
    MHD_resume_connection(rq->conn);
out:
    pthread_mutex_unlock(&d->lock);
    return s;
}

int httpdStreamWrite(httpdStream *s, const char *data, size_t len) {
    httpd *d = s->d;
    int rc = 0;
    int64_t stuck = 0; /* when the buffer was found full with nothing taken since */
    int seconds = d->opt.deadlineSeconds ? d->opt.deadlineSeconds : d->opt.idleSeconds;
    pthread_mutex_lock(&d->lock);
    while (len > 0) {
        if (s->readerGone) {
            rc = -1;
            break;
        }
        if (s->len == HTTPD_STREAM_BUFFER && s->off > 0) {
            memmove(s->data, s->data + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        size_t room = HTTPD_STREAM_BUFFER - s->len;
        if (room == 0) {
            int64_t now = clockNowMs(), limit = (int64_t)seconds * 1000;
            if (!stuck) stuck = now;
            if (now - stuck >= limit) {
                rc = -1; /* the client took nothing for the deadline */
                break;
            }
            struct timespec ts;
            clockDeadline(&ts, CLOCK_REALTIME, stuck + limit - now);
            wakeReader(s);
            pthread_cond_timedwait(&d->changed, &d->lock, &ts);
            continue;
        }
        stuck = 0;
        size_t k = len < room ? len : room;
        memcpy(s->data + s->len, data, k);
        s->len += k;
        data += k;
        len -= k;
        wakeReader(s);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void httpdStreamClose(httpdStream *s, int ok) {
    if (!s) return;
    httpd *d = s->d;
    pthread_mutex_lock(&d->lock);
    if (!s->ended) {
        if (s->rq) s->rq->stream = NULL;
        s->rq = NULL;
        s->ended = 1;
        s->ok = ok;
        wakeReader(s);
        streamUnref(s);
    }
    pthread_mutex_unlock(&d->lock);
}

/* Queues the stream's response (libmicrohttpd's thread). */
static enum MHD_Result queueStream(httpdRequest *rq, httpdStream *s) {
    httpd *d = rq->d;
    pthread_mutex_lock(&d->lock);
    s->ci = rq->ci;
    pthread_mutex_unlock(&d->lock);
    if (d->opt.finish) d->opt.finish(rq, &s->head, d->opt.ctx);
    struct MHD_Response *mr =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, streamRead, s, streamFree);
    if (!mr) {
        streamFree(s); /* the writer sees the reader gone */
        return MHD_NO;
    }
    addHeaders(mr, &s->head);
    enum MHD_Result ok = MHD_queue_response(rq->conn, (unsigned)s->head.status, mr);
    MHD_destroy_response(mr);
    return ok;
}

/* ---- libmicrohttpd's callbacks ---- */

/* The first call for a request: its state, the early call, and an early answer for bad framing
 * or a Content-Length over the limit. */
static enum MHD_Result openRequest(httpd *d, struct MHD_Connection *c, const char *url,
                                   const char *method, void **reqCls) {
    const httpdOptions *o = &d->opt;
    enum MHD_Result ret;
    httpdRequest *rq = calloc(1, sizeof(*rq));
    if (!rq) return MHD_NO;
    rq->d = d;
    rq->refs = 1;
    bufInit(&rq->body, o->maxBody);
    rq->conn = c;
    rq->openedUs = clockNowUs();
    rq->method = method;
    rq->path = url;
    rq->lane = o->lane && o->lane(method, url) ? 1 : 0;
    rq->spoolable =
        o->spoolPath && strcmp(method, "POST") == 0 && strcasecmp(url, o->spoolPath) == 0;
    *reqCls = rq;
    pthread_mutex_lock(&d->lock);
    rq->ci = connInfo(c);
    d->inflight++;
    pthread_mutex_unlock(&d->lock);
    if (badFraming(rq, &ret)) {
        rq->state = RQ_ANSWERED;
        return ret;
    }
    if (o->early) {
        o->early(rq, &rq->res, o->ctx);
        if (rq->res.status) rq->state = RQ_EARLY;
    }
    const char *cl = httpdHeader(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
    size_t limit = rq->spoolable ? o->spoolCeiling : o->maxBody;
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (n > limit) {
        if (o->readPastFactor <= 0 || n / (unsigned)o->readPastFactor > limit) {
            /* Far too large to read and drop: answer now; the connection then closes. */
            int early = rq->state == RQ_EARLY;
            rq->state = RQ_ANSWERED;
            return early ? queueAnswer(rq, &rq->res, 1) : tooLarge(rq, 1);
        }
        rq->tooLarge = 1; /* read and dropped, then 413 (unless answered early) */
    }
    return MHD_YES;
}

/* A piece of the body: kept (in memory or in the spool file) or, past the limit, dropped. */
static enum MHD_Result takeUpload(httpdRequest *rq, const char *data, size_t *size) {
    if (rq->state == RQ_READING && !rq->tooLarge && takeBody(rq, data, *size) != 0) {
        rq->tooLarge = 1;
        bufFree(&rq->body);
        if (rq->spool) fclose(rq->spool);
        rq->spool = NULL;
    }
    *size = 0;
    return MHD_YES;
}

/* The full call on this thread (quick, or a thread per connection). */
static enum MHD_Result runInline(httpdRequest *rq) {
    httpd *d = rq->d;
    pthread_mutex_lock(&d->lock);
    rq->state = RQ_INLINE;
    setPhase(rq->ci, PHASE_WORKING);
    pthread_mutex_unlock(&d->lock);
    d->opt.full(rq, &rq->res, d->opt.ctx);
    pthread_mutex_lock(&d->lock);
    rq->state = RQ_ANSWERED;
    setPhase(rq->ci, PHASE_SENDING);
    pthread_mutex_unlock(&d->lock);
    if (!rq->res.status) httpdSetText(&rq->res, 500, "text/plain", "not answered\n");
    return queueAnswer(rq, &rq->res, 0);
}

/* The body is complete (called with the lock held; releases it): the early answer, a 413, the
 * full call on this thread, or the request queued for a worker (503 when its lane is full). */
static enum MHD_Result bodyRead(httpdRequest *rq) {
    httpd *d = rq->d;
    if (!rq->tooLarge && rq->spool &&
        (fflush(rq->spool) != 0 || fseek(rq->spool, 0, SEEK_SET) != 0)) {
        fclose(rq->spool);
        rq->spool = NULL;
        rq->tooLarge = 1;
    }
    if (rq->state == RQ_EARLY || rq->tooLarge) {
        int early = rq->state == RQ_EARLY;
        rq->state = RQ_ANSWERED;
        setPhase(rq->ci, PHASE_SENDING);
        pthread_mutex_unlock(&d->lock);
        return early ? queueAnswer(rq, &rq->res, 0) : tooLarge(rq, 0);
    }
    rq->bodyReady = 1;
    rq->bodyUs = rq->startedUs = clockNowUs();
    if (d->opt.threadPerConnection || (d->opt.quick && d->opt.quick(rq->method, rq->path))) {
        pthread_mutex_unlock(&d->lock);
        return runInline(rq);
    }
    rq->state = RQ_WORKING;
    rq->res.status = 500; /* unless the full call says otherwise */
    if (enqueue(rq) != 0) {
        rq->state = RQ_ANSWERED;
        pthread_mutex_unlock(&d->lock);
        logWarn("http server: %s %.100s refused: %d requests already wait for a worker", rq->method,
                rq->path, HTTPD_LANE_QUEUE);
        return answerError(rq, 503, "the server is busy; retry shortly", "1", 1);
    }
    setPhase(rq->ci, PHASE_WORKING);
    MHD_suspend_connection(rq->conn);
    pthread_mutex_unlock(&d->lock);
    return MHD_YES;
}

static enum MHD_Result onRequest(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *uploadSize, void **reqCls) {
    httpd *d = cls;
    httpdRequest *rq = *reqCls;
    (void)version;
    if (!rq) return openRequest(d, c, url, method, reqCls);
    if (*uploadSize) return takeUpload(rq, upload, uploadSize);

    pthread_mutex_lock(&d->lock);
    int state = rq->state;
    if (state == RQ_READING || state == RQ_EARLY) return bodyRead(rq);
    if (state == RQ_ANSWER) {
        rq->state = RQ_ANSWERED;
        setPhase(rq->ci, PHASE_SENDING);
        pthread_mutex_unlock(&d->lock);
        return queueAnswer(rq, &rq->res, 0);
    }
    if (state == RQ_STREAM) {
        /* The stream holds its own reference, so it is alive even if its writer closed it. */
        httpdStream *s = rq->streamQueued;
        rq->state = RQ_ANSWERED;
        pthread_mutex_unlock(&d->lock);
        return queueStream(rq, s);
    }
    pthread_mutex_unlock(&d->lock);
    return MHD_YES;
}

static void onCompleted(void *cls, struct MHD_Connection *c, void **reqCls,
                        enum MHD_RequestTerminationCode why) {
    httpd *d = cls;
    httpdRequest *rq = *reqCls;
    (void)why;
    if (rq && rq->upgradeFree && rq->upgradeCtx) rq->upgradeFree(rq->upgradeCtx); /* no switch */
    if (rq) rq->upgradeCtx = NULL;
    pthread_mutex_lock(&d->lock);
    setPhase(connInfo(c), PHASE_RECEIVING); /* the next request's time starts now */
    if (rq) {
        *reqCls = NULL;
        release(rq);
        if (--d->inflight == 0) pthread_cond_broadcast(&d->changed);
    }
    pthread_mutex_unlock(&d->lock);
}

static void onConnection(void *cls, struct MHD_Connection *c, void **socketContext,
                         enum MHD_ConnectionNotificationCode toe) {
    httpd *d = cls;
    pthread_mutex_lock(&d->lock);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *i =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conninfo *ci = i ? calloc(1, sizeof(*ci)) : NULL;
        if (ci) {
            ci->fd = i->connect_fd;
            setPhase(ci, PHASE_RECEIVING);
            ci->next = d->conns;
            if (d->conns) d->conns->prev = ci;
            d->conns = ci;
        }
        *socketContext = ci;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conninfo *ci = *socketContext;
        if (ci) {
            if (ci->prev)
                ci->prev->next = ci->next;
            else
                d->conns = ci->next;
            if (ci->next) ci->next->prev = ci->prev;
            free(ci);
        }
        *socketContext = NULL;
    }
    pthread_mutex_unlock(&d->lock);
}

static void *sweep(void *arg) {
    httpd *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct timespec ts;
        clockDeadline(&ts, CLOCK_REALTIME, 500);
        pthread_cond_timedwait(&d->sweepWake, &d->lock, &ts);
        int64_t limit = clockNowMs() - (int64_t)d->opt.deadlineSeconds * 1000;
        int cut = 0;
        for (conninfo *ci = d->conns; ci; ci = ci->next) {
            if (ci->shut || ci->phase == PHASE_WORKING || ci->since > limit) continue;
            /* libmicrohttpd sees the end of the stream and closes the connection itself. */
            shutdown(ci->fd, SHUT_RDWR);
            ci->shut = 1;
            cut++;
        }
        if (cut)
            logInfo("http server: closed %d connection(s) that spent over %d s on one request or "
                    "answer",
                    cut, d->opt.deadlineSeconds);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* Keeps paths and query values as sent (rawUrls), or decodes them as libmicrohttpd would. */
static size_t keepRaw(void *cls, struct MHD_Connection *conn, char *uri) {
    (void)cls;
    (void)conn;
    return strlen(uri);
}

static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes a path or an argument in place, as MHD_http_unescape does, except %00, which
 * stays as it is: a NUL inside a decoded value would cut it short wherever it is read as a C
 * string (gethistory?device=%00x read as no device, so all of them). Returns the decoded
 * length. */
static size_t decode(void *cls, struct MHD_Connection *conn, char *uri) {
    char *r = uri, *w = uri;
    (void)cls;
    (void)conn;
    while (*r) {
        int hi = r[0] == '%' ? hexValue(r[1]) : -1, lo = hi >= 0 ? hexValue(r[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - uri);
}

static void onLibraryLog(void *cls, const char *fmt, va_list ap) {
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    logDebug("libmicrohttpd: %s", line);
}

/* The connections the descriptor limit allows (raising the soft limit first when asked),
 * keeping some for outgoing connections and files. */
static unsigned connectionLimit(int raise) {
    struct rlimit rl;
    unsigned limit = HTTPD_MAX_CONNECTIONS;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return limit;
    if (raise && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)limit + 256)
        limit = rl.rlim_cur > 512 ? (unsigned)(rl.rlim_cur - 256) : (unsigned)rl.rlim_cur / 2;
    return limit;
}

/* Fills the address to bind; 0, or -1 when host is not a numeric address. */
static int bindAddress(const char *host, int port, struct sockaddr_storage *ss, int *ipv6) {
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    *ipv6 = 0;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    return -1;
}

/* Starts libmicrohttpd for d in the mode its options ask for. */
static struct MHD_Daemon *startDaemon(httpd *d, struct sockaddr_storage *addr, int ipv6) {
    const httpdOptions *o = &d->opt;
    unsigned flags = MHD_USE_ERROR_LOG;
    if (o->threadPerConnection)
        /* ITC: MHD_quiesce_daemon needs it here; with epoll it works without, and the handler
         * started measurably slower with it (tests/bench/ready.py, 4 ms). */
        flags |= MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC;
    else
        flags |= MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (o->allowUpgrade) flags |= MHD_ALLOW_UPGRADE;
    if (ipv6) flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, addr},
        /* Lanes: a pool of I/O threads; a thread per connection takes no pool (the timeout
         * again stands in for the option). */
        {o->threadPerConnection ? MHD_OPTION_CONNECTION_TIMEOUT : MHD_OPTION_THREAD_POOL_SIZE,
         o->threadPerConnection ? o->idleSeconds : HTTPD_IO_THREADS, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)onCompleted, d},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)onConnection, d},
        {MHD_OPTION_CONNECTION_TIMEOUT, o->idleSeconds, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, connectionLimit(o->raiseFileLimit), NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)onLibraryLog, NULL},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)(o->rawUrls ? keepRaw : decode), NULL},
        /* Absent, libmicrohttpd sets SO_REUSEADDR; present and 1, SO_REUSEPORT too. */
        {o->reuseAddress ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, 1, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, onRequest, d, MHD_OPTION_ARRAY,
                            opts, MHD_OPTION_END);
}

httpd *httpdStart(const httpdOptions *o, char *err, size_t errlen) {
    struct sockaddr_storage addr;
    const char *host = o->host ? o->host : "127.0.0.1";
    int ipv6, ok = 0;
    httpd *d = NULL;

    if (bindAddress(host, o->port, &addr, &ipv6) != 0) {
        snprintf(err, errlen, "not a numeric address: %s", host);
        return NULL;
    }
    if (!o->full) {
        snprintf(err, errlen, "no handler");
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->opt = *o;
    if (d->opt.deadlineSeconds < 0) d->opt.deadlineSeconds = 0;
    if (d->opt.idleSeconds <= 0) d->opt.idleSeconds = d->opt.deadlineSeconds;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->changed, NULL);
    pthread_cond_init(&d->sweepWake, NULL);
    for (int i = 0; i < 2; i++)
        pthread_cond_init(&d->lanes[i].wake, NULL);
    errno = 0;
    d->daemon = startDaemon(d, &addr, ipv6);
    if (!d->daemon) {
        snprintf(err, errlen, "cannot listen on %s%s%s:%d%s%s", ipv6 ? "[" : "", host,
                 ipv6 ? "]" : "", o->port, errno ? ": " : "", errno ? strerror(errno) : "");
        goto out;
    }
    if (d->opt.deadlineSeconds) {
        if (pthread_create(&d->sweeper, NULL, sweep, d) != 0) {
            MHD_stop_daemon(d->daemon);
            snprintf(err, errlen, "cannot start a thread");
            goto out;
        }
        d->sweeping = 1;
    }
    logDebug("http server on %s port %d: %s, request deadline %d s", host, o->port,
             d->opt.threadPerConnection ? "a thread per connection" : "lanes",
             d->opt.deadlineSeconds);
    ok = 1;
out:
    if (!ok) {
        pthread_mutex_destroy(&d->lock);
        free(d);
        d = NULL;
    }
    return d;
}

int httpdPort(const httpd *d) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(d->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

int httpdStop(httpd *d, int drainSeconds) {
    if (!d) return 0;
    if (drainSeconds > 0) {
        /* Stop accepting, then wait for what is in flight. */
        MHD_socket fd = MHD_quiesce_daemon(d->daemon);
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
    struct timespec until;
    clockDeadline(&until, CLOCK_REALTIME, (int64_t)(drainSeconds > 0 ? drainSeconds : 0) * 1000);
    pthread_mutex_lock(&d->lock);
    while (drainSeconds > 0 && d->inflight > 0)
        if (pthread_cond_timedwait(&d->changed, &d->lock, &until) != 0) break;
    int left = d->inflight, working = d->busy;
    d->stopping = 1;
    pthread_cond_broadcast(&d->sweepWake);
    pthread_mutex_unlock(&d->lock);
    if (d->sweeping) pthread_join(d->sweeper, NULL);
    d->sweeping = 0;
    if (left && drainSeconds > 0) logWarn("stopping with %d request(s) still in flight", left);
    /* libmicrohttpd may not be stopped with a connection suspended: a full call still running
     * keeps the server as it is, and the process ends around it. */
    if (working) return working;
    MHD_stop_daemon(d->daemon);
    /* Workers idle on their lanes hold no request; they end within WORKER_IDLE_MS but use d:
     * wake them and wait until they are gone before freeing it. */
    pthread_mutex_lock(&d->lock);
    while (d->lanes[0].threads + d->lanes[1].threads > 0) {
        for (int i = 0; i < 2; i++)
            pthread_cond_broadcast(&d->lanes[i].wake);
        pthread_cond_wait(&d->changed, &d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    free(d);
    return 0;
}
