/* hubws: the WebSocket transport: each connection served by a thread of its own, which alone
 * reads and writes its socket; senders append to its queue and wake it through an eventfd. */
#include "hub.h"

#include "hubconn.h"
#include "log.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_MS (15 * 1000)
#define CLOSE_WAIT_MS 2000 /* after our close frame: flush and wait for the client's */
#define READ_CHUNK 16384
#define READS_PER_WAKE 16 /* bound the work of one wake-up, so output is not starved */

struct wsConn {
    struct hubConn base; /* first: a struct hubConn * is a struct wsConn * */
    int fd, efd;
    void (*closeFn)(void *);
    void *closeCtx;
    /* Guarded by hubLock. */
    int stopCode;      /* a close was asked for (shutdown, REST): the WebSocket close code */
    int stopReconnect; /* ... and whether the hub close message allows a reconnect */
    /* The connection thread's own. */
    size_t headWritten; /* bytes of the queue's head already sent */
    unsigned char *extra;
    size_t extraLen;
    struct wsReader reader;
    long long lastRecv, lastSent, handshakeDeadline, closeDeadline;
    int sentClose;  /* our close frame is queued */
    int peerClosed; /* the client's close frame arrived, or its side of TCP closed */
    int readFailed; /* stop reading: a protocol error was answered with a close */
    int dead;       /* the socket is unusable: end now */
};

static struct wsConn *ws(struct hubConn *c) { return (struct wsConn *)c; }

static void wsWake(struct hubConn *c) {
    uint64_t one = 1;
    ssize_t n = write(ws(c)->efd, &one, sizeof(one));
    (void)n; /* a full counter already means "awake" */
}

static void askStop(struct wsConn *w, int code, int reconnect) {
    w->stopCode = code;
    w->stopReconnect = reconnect;
    wsWake(&w->base);
}

static void wsDisconnect(struct hubConn *c) { askStop(ws(c), WS_CLOSE_NORMAL, 0); }

static void wsShutdown(struct hubConn *c) {
    if (!ws(c)->stopCode) askStop(ws(c), WS_CLOSE_GOING_AWAY, 1);
}

/* Queues a frame from the connection's own thread. Returns 0, or -1. */
static int enqueueOwn(struct wsConn *w, int opcode, const void *payload, size_t len) {
    struct hubMsg *m = hubMsgNew(opcode, payload, len);
    int rc;
    if (!m) return -1;
    pthread_mutex_lock(&hubLock);
    rc = hubEnqueueLocked(&w->base, m);
    pthread_mutex_unlock(&hubLock);
    hubMsgUnref(m);
    return rc;
}

/* Queues the closing sequence: a hub close message (when the handshake was answered and
 * hubClose), then a close frame with code. */
static void startClose(struct wsConn *w, int code, int hubClose, const char *error,
                       int allowReconnect) {
    unsigned char payload[2];
    int ready;
    if (w->sentClose) return;
    pthread_mutex_lock(&hubLock);
    ready = w->base.ready;
    pthread_mutex_unlock(&hubLock);
    if (ready && hubClose) {
        size_t len = 0;
        char *rec = hubprotoClose(error, allowReconnect, &len);
        if (rec) enqueueOwn(w, WS_OP_TEXT, rec, len);
        free(rec);
    }
    payload[0] = (unsigned char)(code >> 8);
    payload[1] = (unsigned char)code;
    enqueueOwn(w, WS_OP_CLOSE, payload, code == WS_CLOSE_NO_STATUS ? 0 : 2);
    pthread_mutex_lock(&hubLock);
    w->base.closing = 1;
    pthread_mutex_unlock(&hubLock);
    w->sentClose = 1;
    w->closeDeadline = clockNowMs() + CLOSE_WAIT_MS;
}

/* The session's end: its hub close message, if any, is already queued. */
static void wsEnd(struct hubConn *c, int code) { startClose(ws(c), code, 0, NULL, 0); }

static int wsFinished(struct hubConn *c) { return ws(c)->sentClose || ws(c)->dead; }

static const struct hubTransport wsTransport = {
    .name = "WebSocket",
    .wake = wsWake,
    .disconnect = wsDisconnect,
    .shutdown = wsShutdown,
    .reap = NULL,
    .end = wsEnd,
    .finished = wsFinished,
};

/* Consumes received bytes: frames, then the session's records. */
static void handleInput(struct wsConn *w, const void *data, size_t len) {
    struct wsEvent ev;
    int r;
    if (wsReaderFeed(&w->reader, data, len) != 0) {
        startClose(w, WS_CLOSE_TOO_BIG, 0, NULL, 0);
        w->readFailed = 1;
        return;
    }
    while (!w->readFailed && !w->dead && (r = wsReaderNext(&w->reader, &ev)) != WS_READ_MORE) {
        if (r == WS_READ_FAIL) {
            logInfo("hub %s connection %s: WebSocket protocol error, closing with %d", w->base.hub,
                    w->base.id, ev.closeCode);
            startClose(w, ev.closeCode, 0, NULL, 0);
            w->readFailed = 1;
            return;
        }
        switch (ev.opcode) {
        case WS_OP_TEXT:
        case WS_OP_BINARY:
            if (!w->sentClose && hubSessionInput(&w->base, ev.data, ev.len) != 0) w->readFailed = 1;
            break;
        case WS_OP_PING:
            if (!w->sentClose) enqueueOwn(w, WS_OP_PONG, ev.data, ev.len);
            break;
        case WS_OP_CLOSE:
            w->peerClosed = 1;
            w->readFailed = 1; /* nothing may follow a close frame */
            startClose(w, ev.closeCode == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : ev.closeCode, 0,
                       NULL, 0);
            return;
        default: /* pong */
            break;
        }
    }
}

/* Reads what the socket has. */
static void readSocket(struct wsConn *w) {
    unsigned char buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_WAKE && !w->readFailed && !w->dead; i++) {
        ssize_t n = recv(w->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            w->lastRecv = clockNowMs();
            handleInput(w, buf, (size_t)n);
            if ((size_t)n < sizeof(buf)) return;
        } else if (n == 0) {
            w->peerClosed = 1;
            w->dead = 1; /* the client is gone without a close frame */
            return;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK) w->dead = 1;
            return;
        }
    }
}

/* Writes queued frames until the queue is empty or the socket is full. */
static void writeSocket(struct wsConn *w) {
    for (;;) {
        struct hubMsg *m;
        ssize_t n;
        pthread_mutex_lock(&hubLock);
        m = hubQueueHeadLocked(&w->base); /* only this thread removes it */
        pthread_mutex_unlock(&hubLock);
        if (!m) return;
        n = send(w->fd, m->data + w->headWritten, m->len - w->headWritten, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) w->dead = 1;
            return;
        }
        w->headWritten += (size_t)n;
        if (w->headWritten < m->len) return;
        w->headWritten = 0;
        pthread_mutex_lock(&hubLock);
        hubQueuePopLocked(&w->base);
        pthread_mutex_unlock(&hubLock);
        w->lastSent = clockNowMs();
    }
}

static long long earliest(long long a, long long b) { return !a ? b : !b ? a : a < b ? a : b; }

/* Decides what is due now: a stop asked for, the close wait over, the handshake or client timeout,
 * a ping. Returns 1 when the connection is over. */
static int housekeep(struct wsConn *w, long long now, size_t queued, int stopCode,
                     int stopReconnect) {
    if (w->base.handshakeDone) w->handshakeDeadline = 0;
    if (stopCode && !w->sentClose)
        startClose(w, stopCode, 1,
                   stopReconnect ? NULL : "The connection was closed by the server.",
                   stopReconnect);
    if (w->sentClose) {
        if (now >= w->closeDeadline) return 1;
        /* Close handshake complete, or the client is past listening to. */
        if (!queued && (w->peerClosed || w->readFailed)) return 1;
    } else if (w->handshakeDeadline && now >= w->handshakeDeadline) {
        logInfo("hub %s connection %s: no handshake, closing", w->base.hub, w->base.id);
        startClose(w, WS_CLOSE_POLICY, 0, NULL, 0);
    } else if (now - w->lastRecv >= (long long)hubOpts.clientTimeoutSeconds * 1000) {
        logInfo("hub %s connection %s: client silent for %d s, closing", w->base.hub, w->base.id,
                hubOpts.clientTimeoutSeconds);
        startClose(w, WS_CLOSE_NORMAL, 1, "Connection closed with an error: the client timed out.",
                   0);
    } else if (!w->handshakeDeadline &&
               now - w->lastSent >= (long long)hubOpts.pingSeconds * 1000 && !queued) {
        enqueueOwn(w, WS_OP_TEXT, HUBPROTO_PING_RECORD, strlen(HUBPROTO_PING_RECORD));
        w->lastSent = now; /* counts from the queueing; the write updates it again */
    }
    return 0;
}

static void serve(struct wsConn *w) {
    long long now = clockNowMs();
    w->lastRecv = w->lastSent = now;
    w->handshakeDeadline = now + HANDSHAKE_TIMEOUT_MS;
    if (w->extraLen) handleInput(w, w->extra, w->extraLen);

    while (!w->dead) {
        struct pollfd fds[2];
        size_t queued;
        int dropped, stopCode, stopReconnect, timeout;
        long long due;

        pthread_mutex_lock(&hubLock);
        queued = w->base.ringCount;
        dropped = w->base.dropped;
        stopCode = w->stopCode;
        stopReconnect = w->stopReconnect;
        pthread_mutex_unlock(&hubLock);
        now = clockNowMs();
        if (dropped) {
            logWarn("hub %s connection %s: dropped, it does not keep up with its messages",
                    w->base.hub, w->base.id);
            break;
        }
        if (housekeep(w, now, queued, stopCode, stopReconnect)) break;
        pthread_mutex_lock(&hubLock);
        queued = w->base.ringCount;
        pthread_mutex_unlock(&hubLock);

        if (w->sentClose)
            due = w->closeDeadline;
        else
            due = earliest(w->handshakeDeadline,
                           earliest(w->lastRecv + (long long)hubOpts.clientTimeoutSeconds * 1000,
                                    w->lastSent + (long long)hubOpts.pingSeconds * 1000));
        timeout = due > now ? (int)(due - now < 60000 ? due - now : 60000) : 0;

        fds[0].fd = w->fd;
        fds[0].events = (short)((w->readFailed ? 0 : POLLIN) | (queued ? POLLOUT : 0));
        fds[0].revents = 0;
        fds[1].fd = w->efd;
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        if (poll(fds, 2, timeout) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents & POLLIN) {
            uint64_t n;
            ssize_t r = read(w->efd, &n, sizeof(n));
            (void)r;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (w->readFailed)
                w->dead = 1; /* hung up, or data after a close frame */
            else
                readSocket(w);
        }
        if (!w->dead && (fds[0].revents & POLLOUT)) writeSocket(w);
    }
}

static void wsFree(struct wsConn *w) {
    if (!w) return;
    hubConnRelease(&w->base);
    if (w->efd >= 0) close(w->efd);
    wsReaderFree(&w->reader);
    free(w->extra);
    free(w);
}

static void *connMain(void *arg) {
    struct wsConn *w = arg;
    serve(w);
    pthread_mutex_lock(&hubLock);
    hubUnlinkLocked(&w->base);
    pthread_mutex_unlock(&hubLock);
    logInfo("hub %s connection %s: closed", w->base.hub, w->base.id);
    w->closeFn(w->closeCtx); /* before the thread count drops, so shutdown waits for it */
    wsFree(w);
    hubThreadDone();
    return NULL;
}

int hubAttach(struct hubClaim *claim, int fd, const void *extra, size_t extraLen,
              void (*closeFn)(void *), void *closeCtx) {
    struct wsConn *w = calloc(1, sizeof(*w));
    pthread_attr_t attr;
    pthread_t thread;
    int one = 1, flags, rc = -1, registered = 0;

    if (!w) goto out;
    hubConnInit(&w->base, &wsTransport, claim);
    w->fd = fd;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->closeFn = closeFn;
    w->closeCtx = closeCtx;
    wsReaderInit(&w->reader, hubOpts.maxMessage);
    if (w->efd < 0) goto out;
    if (extraLen) {
        if (!(w->extra = malloc(extraLen))) goto out;
        memcpy(w->extra, extra, extraLen);
        w->extraLen = extraLen;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) goto out;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* small frames, sent at once */

    pthread_mutex_lock(&hubLock);
    if (hubLinkLocked(&w->base) == 0) {
        hubThreadAddLocked();
        registered = 1;
    }
    pthread_mutex_unlock(&hubLock);
    if (!registered) goto out;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, connMain, w) == 0 ? 0 : -1;
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&hubLock);
        hubUnlinkLocked(&w->base);
        pthread_mutex_unlock(&hubLock);
        hubThreadDone();
        goto out;
    }
    logInfo("hub %s connection %s: connected", w->base.hub, w->base.id);
    w = NULL; /* the thread owns it */
out:
    if (rc != 0) {
        closeFn(closeCtx);
        wsFree(w);
    }
    hubClaimFree(claim);
    return rc;
}
