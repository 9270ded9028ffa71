/* hub: the client side's state: connection tokens handed out by negotiate, the live WebSocket
 * connections (each served by its own thread with a bounded outgoing queue), and delivery of
 * hub messages to a hub's connections, one connection, or one user's connections. Long-polling
 * connections share the registry and the queues; they have no thread: their requests (each on
 * its own httpd thread) take the queued records, a poll waiting on the connection's condition.
 *
 * Locking: one mutex guards the registry, the pending tokens and every connection's queue and
 * flags. A connection's socket, reader and timers belong to its thread alone. Senders only
 * append to queues and wake the thread through its eventfd; they never touch a socket. */
#include "hub.h"

#include "crypto.h"
#include "hubproto.h"
#include "log.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PENDING_TTL_MS (120 * 1000) /* a negotiated token must be used within this */
#define PENDING_MAX 10000
#define HANDSHAKE_TIMEOUT_MS (15 * 1000)
#define CLOSE_WAIT_MS 2000 /* after our close frame: flush and wait for the client's */
#define READ_CHUNK 16384
#define READS_PER_WAKE 16 /* bound the work of one wake-up, so output is not starved */

/* One outgoing WebSocket frame, shared by every queue it is on. A long-polling connection sends
 * its payload only, past the hdrLen bytes of frame header. */
struct hubMsg {
    atomic_int refs;
    size_t len, hdrLen;
    unsigned char data[];
};

struct hubClaim {
    struct hubClaim *next;
    char token[HUB_TOKEN_LEN];
    char id[HUB_ID_LEN];
    char hub[HUB_NAME_MAX + 1];
    char *user;
    long long created; /* ms, monotonic */
};

struct hubConn {
    struct hubConn *prev, *next;
    char id[HUB_ID_LEN];
    char hub[HUB_NAME_MAX + 1];
    char *user;
    int fd, efd;
    void (*closeFn)(void *);
    void *closeCtx;
    /* Guarded by the lock. */
    struct hubMsg **ring; /* outgoing frames, ringCount of them from ringHead */
    size_t ringAlloc, ringHead, ringCount, queuedBytes;
    int ready;         /* handshake answered: hub messages may be queued */
    int closing;       /* our close frame is queued: nothing more may be */
    int dropped;       /* the queue overflowed: abort */
    int stopCode;      /* a close was asked for (shutdown, REST): the WebSocket close code */
    int stopReconnect; /* ... and whether the hub close message allows a reconnect */
    /* The connection thread's own. */
    size_t headWritten; /* bytes of ring[ringHead] already sent */
    unsigned char *extra;
    size_t extraLen;
    struct wsReader reader;
    struct hubprotoRecords records;
    /* Long polling only (lp set): no thread, no socket; requests find it by token. */
    int lp;
    char token[HUB_TOKEN_LEN];
    pthread_cond_t cond;      /* signalled when output is queued or the connection ends */
    pthread_mutex_t postLock; /* serialises POSTs: records, handshake state */
    int linked;               /* guarded: in the registry */
    int users;                /* guarded: requests using it now */
    long long lastSeen;       /* guarded: ms, when a request last started or ended */
    int handshakeDone;        /* under postLock */
};

static struct hubOptions opts;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER;
static struct hubConn *conns;
static struct hubClaim *pending;
static size_t pendingCount;
static int live; /* connection threads not yet finished */
static int stopping;

static void pollReapLocked(long long now);

static long long nowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hubInit(const struct hubOptions *options) { opts = *options; }

/* ---- outgoing frames ---- */

/* A frame of opcode around payload. refs 1, caller owns. NULL on OOM. */
static struct hubMsg *msgNew(int opcode, const void *payload, size_t len) {
    unsigned char hdr[WS_MAX_HEADER];
    size_t hlen = wsFrameHeader(hdr, opcode, len);
    struct hubMsg *m = malloc(sizeof(*m) + hlen + len);
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    m->len = hlen + len;
    m->hdrLen = hlen;
    memcpy(m->data, hdr, hlen);
    if (len) memcpy(m->data + hlen, payload, len);
    return m;
}

static void msgUnref(struct hubMsg *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) free(m);
}

static void wake(struct hubConn *c) {
    uint64_t one = 1;
    if (c->lp) { /* with the lock held, as every caller has it */
        pthread_cond_broadcast(&c->cond);
        return;
    }
    ssize_t n = write(c->efd, &one, sizeof(one));
    (void)n; /* a full counter already means "awake" */
}

/* Appends m (adding a reference) to c's queue; with the lock held. A queue past its caps marks
 * the connection dropped instead. Returns 0, or -1 when not queued. */
static int enqueueLocked(struct hubConn *c, struct hubMsg *m) {
    if (c->dropped) return -1;
    if (c->ringCount >= opts.queueMaxMessages || c->queuedBytes + m->len > opts.queueMaxBytes) {
        c->dropped = 1;
        wake(c);
        return -1;
    }
    if (c->ringCount == c->ringAlloc) {
        size_t n = c->ringAlloc ? c->ringAlloc * 2 : 16;
        struct hubMsg **r = malloc(n * sizeof(*r));
        if (!r) { /* a client that silently misses messages is worse than one dropped */
            c->dropped = 1;
            wake(c);
            return -1;
        }
        for (size_t i = 0; i < c->ringCount; i++)
            r[i] = c->ring[(c->ringHead + i) % c->ringAlloc];
        free(c->ring);
        c->ring = r;
        c->ringAlloc = n;
        c->ringHead = 0;
    }
    c->ring[(c->ringHead + c->ringCount) % c->ringAlloc] = m;
    atomic_fetch_add(&m->refs, 1);
    c->ringCount++;
    c->queuedBytes += m->len;
    if (c->ringCount == 1) wake(c); /* otherwise the thread is already busy writing */
    return 0;
}

/* Queues a frame from the connection's own thread. Returns 0, or -1. */
static int enqueueOwn(struct hubConn *c, int opcode, const void *payload, size_t len) {
    struct hubMsg *m = msgNew(opcode, payload, len);
    int rc;
    if (!m) return -1;
    pthread_mutex_lock(&lock);
    rc = enqueueLocked(c, m);
    pthread_mutex_unlock(&lock);
    msgUnref(m);
    return rc;
}

/* ---- negotiate and claim ---- */

static int randomId(char *out, size_t outLen, size_t bytes) {
    unsigned char raw[32];
    char *text;
    if (bytes > sizeof(raw) || cryptoRandomBytes(raw, bytes) != 0) return -1;
    text = cryptoBase64UrlEncode(raw, bytes);
    if (!text) return -1;
    if (strlen(text) + 1 != outLen) {
        free(text);
        return -1;
    }
    memcpy(out, text, outLen);
    free(text);
    return 0;
}

static void claimFree(struct hubClaim *p) {
    if (!p) return;
    free(p->user);
    free(p);
}

/* Drops tokens past their time; with the lock held. */
static void expireLocked(long long now) {
    struct hubClaim **pp = &pending;
    while (*pp) {
        struct hubClaim *p = *pp;
        if (now - p->created > PENDING_TTL_MS) {
            *pp = p->next;
            pendingCount--;
            claimFree(p);
        } else {
            pp = &p->next;
        }
    }
}

int hubNegotiate(const char *hub, const char *user, char id[HUB_ID_LEN],
                 char token[HUB_TOKEN_LEN]) {
    struct hubClaim *p = calloc(1, sizeof(*p));
    int rc = -1;
    if (!p || strlen(hub) > HUB_NAME_MAX) goto out;
    if (randomId(p->id, sizeof(p->id), 16) != 0 || randomId(p->token, sizeof(p->token), 32) != 0)
        goto out;
    memcpy(p->hub, hub, strlen(hub) + 1);
    if (user && !(p->user = strdup(user))) goto out;
    p->created = nowMs();
    pthread_mutex_lock(&lock);
    expireLocked(p->created);
    pollReapLocked(p->created);
    if (pendingCount < PENDING_MAX && !stopping) {
        p->next = pending;
        pending = p;
        pendingCount++;
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    if (rc != 0) goto out;
    memcpy(id, p->id, HUB_ID_LEN);
    memcpy(token, p->token, HUB_TOKEN_LEN);
    p = NULL;
out:
    claimFree(p);
    return rc;
}

/* Tokens are secrets: compare without an early exit. */
static int tokenEqual(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static int sameUser(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

int hubClaimToken(const char *token, const char *hub, const char *user, struct hubClaim **claim) {
    struct hubClaim **pp, *found = NULL;
    *claim = NULL;
    pthread_mutex_lock(&lock);
    expireLocked(nowMs());
    for (pp = &pending; *pp; pp = &(*pp)->next) {
        if (tokenEqual((*pp)->token, token)) {
            found = *pp;
            *pp = found->next;
            pendingCount--;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    if (!found) return HUB_CLAIM_UNKNOWN;
    if (strcmp(found->hub, hub) != 0 || !sameUser(found->user, user)) {
        claimFree(found);
        return HUB_CLAIM_MISMATCH;
    }
    found->next = NULL;
    *claim = found;
    return HUB_CLAIM_OK;
}

const char *hubClaimText(int status) {
    switch (status) {
    case HUB_CLAIM_OK:
        return "ok";
    case HUB_CLAIM_UNKNOWN:
        return "unknown, used or expired connection token (negotiate first)";
    case HUB_CLAIM_MISMATCH:
        return "connection token was negotiated for another hub or user";
    default:
        return "connection token refused";
    }
}

void hubClaimFree(struct hubClaim *claim) { claimFree(claim); }

/* ---- a connection's thread ---- */

/* What the thread knows about the state of its connection. */
struct connState {
    long long lastRecv, lastSent, handshakeDeadline, closeDeadline;
    int sentClose;  /* our close frame is queued */
    int peerClosed; /* the client's close frame arrived, or its side of TCP closed */
    int readFailed; /* stop reading: a protocol error was answered with a close */
    int dead;       /* the socket is unusable: end now */
};

/* Queues the closing sequence: a hub close message (when the handshake was answered and
 * hubClose), then a close frame with code. */
static void startClose(struct hubConn *c, struct connState *st, int code, int hubClose,
                       const char *error, int allowReconnect) {
    unsigned char payload[2];
    int ready;
    if (st->sentClose) return;
    pthread_mutex_lock(&lock);
    ready = c->ready;
    pthread_mutex_unlock(&lock);
    if (ready && hubClose) {
        size_t len = 0;
        char *rec = hubprotoClose(error, allowReconnect, &len);
        if (rec) enqueueOwn(c, WS_OP_TEXT, rec, len);
        free(rec);
    }
    payload[0] = (unsigned char)(code >> 8);
    payload[1] = (unsigned char)code;
    enqueueOwn(c, WS_OP_CLOSE, payload, code == WS_CLOSE_NO_STATUS ? 0 : 2);
    pthread_mutex_lock(&lock);
    c->closing = 1;
    pthread_mutex_unlock(&lock);
    st->sentClose = 1;
    st->closeDeadline = nowMs() + CLOSE_WAIT_MS;
}

static void answerHandshake(struct hubConn *c, struct connState *st, const char *rec, size_t len) {
    char err[HUBPROTO_ERR_LEN];
    struct hubMsg *m;
    if (hubprotoHandshake(rec, len, err, sizeof(err)) != 0) {
        size_t n = 0;
        char *answer = hubprotoHandshakeError(err, &n);
        logInfo("hub %s connection %s: handshake refused: %s", c->hub, c->id, err);
        if (answer) enqueueOwn(c, WS_OP_TEXT, answer, n);
        free(answer);
        startClose(c, st, WS_CLOSE_NORMAL, 0, NULL, 0);
        return;
    }
    m = msgNew(WS_OP_TEXT, HUBPROTO_HANDSHAKE_OK, strlen(HUBPROTO_HANDSHAKE_OK));
    if (!m) {
        st->dead = 1;
        return;
    }
    /* The answer goes first, and in the same step the connection starts taking messages. */
    pthread_mutex_lock(&lock);
    if (enqueueLocked(c, m) == 0) c->ready = 1;
    pthread_mutex_unlock(&lock);
    msgUnref(m);
    st->handshakeDeadline = 0;
}

static void handleRecord(struct hubConn *c, struct connState *st, const char *rec, size_t len) {
    int type = 0;
    char *invocationId = NULL;
    if (st->handshakeDeadline) {
        answerHandshake(c, st, rec, len);
        return;
    }
    if (hubprotoMessage(rec, len, &type, &invocationId) != 0) {
        startClose(c, st, WS_CLOSE_NORMAL, 1, "Connection closed with an error: invalid message.",
                   0);
        return;
    }
    switch (type) {
    case HUBPROTO_INVOCATION:
    case HUBPROTO_STREAM_INVOCATION:
        if (invocationId) { /* the caller waits for a result: tell it there is none */
            size_t n = 0;
            char *answer = hubprotoCompletionError(
                invocationId, "The SignalR stand-in is serverless: it has no hub methods.", &n);
            if (answer) enqueueOwn(c, WS_OP_TEXT, answer, n);
            free(answer);
        }
        break;
    case HUBPROTO_CLOSE:
        startClose(c, st, WS_CLOSE_NORMAL, 0, NULL, 0);
        break;
    default: /* pings, completions, stream items, cancels, and later types: nothing to do */
        break;
    }
    free(invocationId);
}

static void handleData(struct hubConn *c, struct connState *st, const unsigned char *data,
                       size_t len) {
    const char *rec;
    size_t recLen;
    if (hubprotoRecordsAppend(&c->records, data, len) != 0) {
        startClose(c, st, WS_CLOSE_TOO_BIG, 1, "Connection closed with an error: message too big.",
                   0);
        st->readFailed = 1;
        return;
    }
    while (!st->sentClose && !st->dead && hubprotoRecordsNext(&c->records, &rec, &recLen))
        handleRecord(c, st, rec, recLen);
}

/* Consumes received bytes: frames, then records. */
static void handleInput(struct hubConn *c, struct connState *st, const void *data, size_t len) {
    struct wsEvent ev;
    int r;
    if (wsReaderFeed(&c->reader, data, len) != 0) {
        startClose(c, st, WS_CLOSE_TOO_BIG, 0, NULL, 0);
        st->readFailed = 1;
        return;
    }
    while (!st->readFailed && !st->dead && (r = wsReaderNext(&c->reader, &ev)) != WS_READ_MORE) {
        if (r == WS_READ_FAIL) {
            logInfo("hub %s connection %s: WebSocket protocol error, closing with %d", c->hub,
                    c->id, ev.closeCode);
            startClose(c, st, ev.closeCode, 0, NULL, 0);
            st->readFailed = 1;
            return;
        }
        switch (ev.opcode) {
        case WS_OP_TEXT:
        case WS_OP_BINARY:
            if (!st->sentClose) handleData(c, st, ev.data, ev.len);
            break;
        case WS_OP_PING:
            if (!st->sentClose) enqueueOwn(c, WS_OP_PONG, ev.data, ev.len);
            break;
        case WS_OP_CLOSE:
            st->peerClosed = 1;
            st->readFailed = 1; /* nothing may follow a close frame */
            startClose(c, st, ev.closeCode == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : ev.closeCode,
                       0, NULL, 0);
            return;
        default: /* pong */
            break;
        }
    }
}

/* Reads what the socket has. */
static void readSocket(struct hubConn *c, struct connState *st) {
    unsigned char buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_WAKE && !st->readFailed && !st->dead; i++) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            st->lastRecv = nowMs();
            handleInput(c, st, buf, (size_t)n);
            if ((size_t)n < sizeof(buf)) return;
        } else if (n == 0) {
            st->peerClosed = 1;
            st->dead = 1; /* the client is gone without a close frame */
            return;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK) st->dead = 1;
            return;
        }
    }
}

/* Writes queued frames until the queue is empty or the socket is full. */
static void writeSocket(struct hubConn *c, struct connState *st) {
    for (;;) {
        struct hubMsg *m;
        ssize_t n;
        pthread_mutex_lock(&lock);
        m = c->ringCount ? c->ring[c->ringHead] : NULL; /* only this thread removes it */
        pthread_mutex_unlock(&lock);
        if (!m) return;
        n = send(c->fd, m->data + c->headWritten, m->len - c->headWritten, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) st->dead = 1;
            return;
        }
        c->headWritten += (size_t)n;
        if (c->headWritten < m->len) return;
        c->headWritten = 0;
        pthread_mutex_lock(&lock);
        c->ringHead = (c->ringHead + 1) % c->ringAlloc;
        c->ringCount--;
        c->queuedBytes -= m->len;
        pthread_mutex_unlock(&lock);
        msgUnref(m);
        st->lastSent = nowMs();
    }
}

static long long earliest(long long a, long long b) { return !a ? b : !b ? a : a < b ? a : b; }

static void serve(struct hubConn *c) {
    struct connState st;
    long long now = nowMs();
    memset(&st, 0, sizeof(st));
    st.lastRecv = st.lastSent = now;
    st.handshakeDeadline = now + HANDSHAKE_TIMEOUT_MS;
    if (c->extraLen) handleInput(c, &st, c->extra, c->extraLen);

    while (!st.dead) {
        struct pollfd fds[2];
        size_t queued;
        int dropped, stopCode, stopReconnect, timeout;
        long long due;

        pthread_mutex_lock(&lock);
        queued = c->ringCount;
        dropped = c->dropped;
        stopCode = c->stopCode;
        stopReconnect = c->stopReconnect;
        pthread_mutex_unlock(&lock);
        now = nowMs();
        if (dropped) {
            logWarn("hub %s connection %s: dropped, it does not keep up with its messages", c->hub,
                    c->id);
            break;
        }
        if (stopCode && !st.sentClose)
            startClose(c, &st, stopCode, 1,
                       stopReconnect ? NULL : "The connection was closed by the server.",
                       stopReconnect);
        if (st.sentClose) {
            if (now >= st.closeDeadline) break;
            /* Close handshake complete, or the client is past listening to. */
            if (!queued && (st.peerClosed || st.readFailed)) break;
        } else if (st.handshakeDeadline && now >= st.handshakeDeadline) {
            logInfo("hub %s connection %s: no handshake, closing", c->hub, c->id);
            startClose(c, &st, WS_CLOSE_POLICY, 0, NULL, 0);
        } else if (now - st.lastRecv >= (long long)opts.clientTimeoutSeconds * 1000) {
            logInfo("hub %s connection %s: client silent for %d s, closing", c->hub, c->id,
                    opts.clientTimeoutSeconds);
            startClose(c, &st, WS_CLOSE_NORMAL, 1,
                       "Connection closed with an error: the client timed out.", 0);
        } else if (!st.handshakeDeadline &&
                   now - st.lastSent >= (long long)opts.pingSeconds * 1000 && !queued) {
            enqueueOwn(c, WS_OP_TEXT, HUBPROTO_PING_RECORD, strlen(HUBPROTO_PING_RECORD));
            st.lastSent = now; /* counts from the queueing; the write updates it again */
        }
        pthread_mutex_lock(&lock);
        queued = c->ringCount;
        pthread_mutex_unlock(&lock);

        if (st.sentClose)
            due = st.closeDeadline;
        else
            due = earliest(st.handshakeDeadline,
                           earliest(st.lastRecv + (long long)opts.clientTimeoutSeconds * 1000,
                                    st.lastSent + (long long)opts.pingSeconds * 1000));
        timeout = due > now ? (int)(due - now < 60000 ? due - now : 60000) : 0;

        fds[0].fd = c->fd;
        fds[0].events = (short)((st.readFailed ? 0 : POLLIN) | (queued ? POLLOUT : 0));
        fds[0].revents = 0;
        fds[1].fd = c->efd;
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        if (poll(fds, 2, timeout) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents & POLLIN) {
            uint64_t n;
            ssize_t r = read(c->efd, &n, sizeof(n));
            (void)r;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (st.readFailed)
                st.dead = 1; /* hung up, or data after a close frame */
            else
                readSocket(c, &st);
        }
        if (!st.dead && (fds[0].revents & POLLOUT)) writeSocket(c, &st);
    }
}

static void connFree(struct hubConn *c) {
    if (!c) return;
    for (size_t i = 0; i < c->ringCount; i++)
        msgUnref(c->ring[(c->ringHead + i) % c->ringAlloc]);
    free(c->ring);
    if (c->efd >= 0) close(c->efd);
    if (c->lp) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->postLock);
    }
    wsReaderFree(&c->reader);
    hubprotoRecordsFree(&c->records);
    free(c->extra);
    free(c->user);
    free(c);
}

/* Takes c out of the registry. The caller holds the lock. */
static void unlinkConn(struct hubConn *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
}

static void *connMain(void *arg) {
    struct hubConn *c = arg;
    serve(c);
    pthread_mutex_lock(&lock);
    unlinkConn(c);
    pthread_mutex_unlock(&lock);
    logInfo("hub %s connection %s: closed", c->hub, c->id);
    c->closeFn(c->closeCtx); /* before "live" drops, so shutdown waits for it */
    connFree(c);
    pthread_mutex_lock(&lock);
    if (--live == 0) pthread_cond_broadcast(&drained);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int hubAttach(struct hubClaim *claim, int fd, const void *extra, size_t extraLen,
              void (*closeFn)(void *), void *closeCtx) {
    struct hubConn *c = calloc(1, sizeof(*c));
    pthread_attr_t attr;
    pthread_t thread;
    int one = 1, flags, rc = -1, registered = 0;

    if (!c) goto out;
    c->fd = fd;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->closeFn = closeFn;
    c->closeCtx = closeCtx;
    memcpy(c->id, claim->id, sizeof(c->id));
    memcpy(c->hub, claim->hub, sizeof(c->hub));
    c->user = claim->user;
    claim->user = NULL;
    wsReaderInit(&c->reader, opts.maxMessage);
    hubprotoRecordsInit(&c->records, opts.maxMessage);
    if (c->efd < 0) goto out;
    if (extraLen) {
        if (!(c->extra = malloc(extraLen))) goto out;
        memcpy(c->extra, extra, extraLen);
        c->extraLen = extraLen;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) goto out;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* small frames, sent at once */

    pthread_mutex_lock(&lock);
    if (!stopping) {
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        live++;
        registered = 1;
    }
    pthread_mutex_unlock(&lock);
    if (!registered) goto out;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, connMain, c) == 0 ? 0 : -1;
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&lock);
        unlinkConn(c);
        if (--live == 0) pthread_cond_broadcast(&drained);
        pthread_mutex_unlock(&lock);
        goto out;
    }
    logInfo("hub %s connection %s: connected", c->hub, c->id);
    c = NULL; /* the thread owns it */
out:
    if (rc != 0) {
        closeFn(closeCtx);
        connFree(c);
    }
    claimFree(claim);
    return rc;
}

/* ---- long polling ---- */

#define POLL_DROP_MIN_MS (10 * 1000)

/* A long-polling connection not polled for this long is dropped. */
static long long pollDropMs(void) {
    long long ms = 2LL * opts.pollSeconds * 1000;
    return ms > POLL_DROP_MIN_MS ? ms : POLL_DROP_MIN_MS;
}

/* Takes a long-polling connection out of the registry and wakes its polls; with the lock held.
 * Frees it when no request uses it. */
static void pollUnlinkLocked(struct hubConn *c) {
    if (!c->linked) return;
    unlinkConn(c);
    c->linked = 0;
    c->prev = c->next = NULL;
    pthread_cond_broadcast(&c->cond);
    logInfo("hub %s connection %s: closed (long polling)", c->hub, c->id);
    if (!c->users) connFree(c);
}

/* Drops long-polling connections that stopped polling or overflowed; with the lock held. */
static void pollReapLocked(long long now) {
    struct hubConn *c = conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (!c->lp || c->users) continue;
        if (c->dropped)
            logWarn("hub %s connection %s: dropped, it does not keep up with its messages", c->hub,
                    c->id);
        else if (now - c->lastSeen > pollDropMs())
            logInfo("hub %s connection %s: not polled for %lld s, dropping", c->hub, c->id,
                    (now - c->lastSeen) / 1000);
        else
            continue;
        pollUnlinkLocked(c);
    }
}

/* Finds the long-polling connection of token, checks its hub and user and takes a use of it;
 * with the lock held. */
static int pollFindLocked(const char *token, const char *hub, const char *user,
                          struct hubConn **out) {
    struct hubConn *found = NULL;
    *out = NULL;
    for (struct hubConn *c = conns; c; c = c->next)
        if (c->lp && tokenEqual(c->token, token)) found = c;
    if (!found) return HUB_POLL_UNKNOWN;
    if (strcmp(found->hub, hub) != 0 || !sameUser(found->user, user)) return HUB_POLL_MISMATCH;
    found->users++;
    found->lastSeen = nowMs();
    *out = found;
    return HUB_POLL_OK;
}

/* Gives back a use taken by pollFindLocked; with the lock held. */
static void pollReleaseLocked(struct hubConn *c) {
    c->users--;
    c->lastSeen = nowMs();
    if (!c->linked && !c->users) connFree(c);
}

/* Opens the connection negotiated with token (the client's first poll). */
static int pollOpen(const char *token, const char *hub, const char *user) {
    struct hubClaim *claim = NULL;
    struct hubConn *c;
    pthread_condattr_t attr;
    int status = hubClaimToken(token, hub, user, &claim), registered = 0;
    if (status != HUB_CLAIM_OK)
        return status == HUB_CLAIM_UNKNOWN ? HUB_POLL_UNKNOWN : HUB_POLL_MISMATCH;
    if (!(c = calloc(1, sizeof(*c)))) {
        claimFree(claim);
        return HUB_POLL_NO_MEMORY;
    }
    c->lp = 1;
    c->fd = c->efd = -1;
    memcpy(c->id, claim->id, sizeof(c->id));
    memcpy(c->hub, claim->hub, sizeof(c->hub));
    memcpy(c->token, claim->token, sizeof(c->token));
    c->user = claim->user;
    claim->user = NULL;
    claimFree(claim);
    wsReaderInit(&c->reader, opts.maxMessage);
    hubprotoRecordsInit(&c->records, opts.maxMessage);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->postLock, NULL);
    pthread_mutex_lock(&lock);
    if (!stopping) {
        c->lastSeen = nowMs();
        c->linked = 1;
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        registered = 1;
    }
    pthread_mutex_unlock(&lock);
    if (!registered) {
        connFree(c);
        return HUB_POLL_CLOSED;
    }
    logInfo("hub %s connection %s: connected (long polling)", c->hub, c->id);
    return HUB_POLL_OK;
}

/* Moves every queued record's payload into a new buffer; with the lock held. */
static int pollTakeLocked(struct hubConn *c, char **body, size_t *len) {
    size_t total = 0, at = 0;
    char *out;
    for (size_t i = 0; i < c->ringCount; i++) {
        struct hubMsg *m = c->ring[(c->ringHead + i) % c->ringAlloc];
        total += m->len - m->hdrLen;
    }
    if (!(out = malloc(total ? total : 1))) return -1;
    while (c->ringCount) {
        struct hubMsg *m = c->ring[c->ringHead];
        memcpy(out + at, m->data + m->hdrLen, m->len - m->hdrLen);
        at += m->len - m->hdrLen;
        c->ringHead = (c->ringHead + 1) % c->ringAlloc;
        c->ringCount--;
        c->queuedBytes -= m->len;
        msgUnref(m);
    }
    *body = out;
    *len = total;
    return 0;
}

int hubPoll(const char *token, const char *hub, const char *user, char **body, size_t *len) {
    struct hubConn *c;
    struct timespec deadline;
    int status;
    *body = NULL;
    *len = 0;
    pthread_mutex_lock(&lock);
    pollReapLocked(nowMs());
    status = pollFindLocked(token, hub, user, &c);
    pthread_mutex_unlock(&lock);
    if (status == HUB_POLL_UNKNOWN) return pollOpen(token, hub, user);
    if (status != HUB_POLL_OK) return status;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += opts.pollSeconds;
    pthread_mutex_lock(&lock);
    while (c->linked && !c->ringCount && !c->closing && !c->dropped && !stopping)
        if (pthread_cond_timedwait(&c->cond, &lock, &deadline) == ETIMEDOUT) break;
    if (!c->linked || c->dropped || stopping) {
        status = HUB_POLL_CLOSED;
    } else if (c->ringCount) {
        status = pollTakeLocked(c, body, len) == 0 ? HUB_POLL_OK : HUB_POLL_NO_MEMORY;
    } else if (c->closing) { /* its last records went out with the previous poll */
        status = HUB_POLL_CLOSED;
    } else if (c->ready) { /* nothing to send: keep the connection alive */
        status = (*body = strdup(HUBPROTO_PING_RECORD)) ? HUB_POLL_OK : HUB_POLL_NO_MEMORY;
        if (*body) *len = strlen(*body);
    }
    if (status == HUB_POLL_CLOSED) pollUnlinkLocked(c);
    pollReleaseLocked(c);
    pthread_mutex_unlock(&lock);
    return status;
}

/* Queues a record from a request of c's. */
static void pollQueue(struct hubConn *c, const char *rec, size_t len) {
    if (rec) enqueueOwn(c, WS_OP_TEXT, rec, len);
}

/* Ends c after the records already queued (the next poll gets them, the one after 204). */
static void pollFinish(struct hubConn *c) {
    pthread_mutex_lock(&lock);
    c->closing = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&lock);
}

static void pollHandshake(struct hubConn *c, const char *rec, size_t len) {
    char err[HUBPROTO_ERR_LEN];
    struct hubMsg *m;
    c->handshakeDone = 1;
    if (hubprotoHandshake(rec, len, err, sizeof(err)) != 0) {
        size_t n = 0;
        char *answer = hubprotoHandshakeError(err, &n);
        logInfo("hub %s connection %s: handshake refused: %s", c->hub, c->id, err);
        pollQueue(c, answer, n);
        free(answer);
        pollFinish(c);
        return;
    }
    m = msgNew(WS_OP_TEXT, HUBPROTO_HANDSHAKE_OK, strlen(HUBPROTO_HANDSHAKE_OK));
    pthread_mutex_lock(&lock);
    if (m && enqueueLocked(c, m) == 0)
        c->ready = 1;
    else
        c->dropped = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&lock);
    msgUnref(m);
}

static void pollRecord(struct hubConn *c, const char *rec, size_t len) {
    int type = 0;
    char *invocationId = NULL;
    size_t n = 0;
    char *answer;
    if (!c->handshakeDone) {
        pollHandshake(c, rec, len);
        return;
    }
    if (hubprotoMessage(rec, len, &type, &invocationId) != 0) {
        answer = hubprotoClose("Connection closed with an error: invalid message.", 0, &n);
        pollQueue(c, answer, n);
        free(answer);
        pollFinish(c);
        return;
    }
    if ((type == HUBPROTO_INVOCATION || type == HUBPROTO_STREAM_INVOCATION) && invocationId) {
        answer = hubprotoCompletionError(
            invocationId, "The SignalR stand-in is serverless: it has no hub methods.", &n);
        pollQueue(c, answer, n);
        free(answer);
    } else if (type == HUBPROTO_CLOSE) {
        pollFinish(c);
    }
    free(invocationId);
}

int hubPollSend(const char *token, const char *hub, const char *user, const char *data,
                size_t len) {
    struct hubConn *c;
    const char *rec;
    size_t recLen;
    int status, closing;
    pthread_mutex_lock(&lock);
    status = pollFindLocked(token, hub, user, &c);
    closing = status == HUB_POLL_OK && c->closing;
    pthread_mutex_unlock(&lock);
    if (status != HUB_POLL_OK) return status;
    if (!closing) {
        pthread_mutex_lock(&c->postLock);
        if (hubprotoRecordsAppend(&c->records, data, len) != 0) {
            size_t n = 0;
            char *answer =
                hubprotoClose("Connection closed with an error: message too big.", 0, &n);
            pollQueue(c, answer, n);
            free(answer);
            pollFinish(c);
        } else {
            while (hubprotoRecordsNext(&c->records, &rec, &recLen)) {
                pthread_mutex_lock(&lock);
                closing = c->closing || !c->linked;
                pthread_mutex_unlock(&lock);
                if (closing) break;
                pollRecord(c, rec, recLen);
            }
        }
        pthread_mutex_unlock(&c->postLock);
    }
    pthread_mutex_lock(&lock);
    status = c->linked ? HUB_POLL_OK : HUB_POLL_CLOSED;
    pollReleaseLocked(c);
    pthread_mutex_unlock(&lock);
    return status;
}

int hubPollDelete(const char *token, const char *hub, const char *user) {
    struct hubConn *c;
    int status;
    pthread_mutex_lock(&lock);
    status = pollFindLocked(token, hub, user, &c);
    if (status == HUB_POLL_OK) {
        pollUnlinkLocked(c);
        pollReleaseLocked(c);
    }
    pthread_mutex_unlock(&lock);
    return status;
}

/* ---- delivery ---- */

static int matches(const struct hubConn *c, enum hubScope scope, const char *hub, const char *who) {
    if (strcmp(c->hub, hub) != 0) return 0;
    if (scope == HUB_CONNECTION) return strcmp(c->id, who) == 0;
    if (scope == HUB_USER) return c->user && strcmp(c->user, who) == 0;
    return 1;
}

int hubSend(enum hubScope scope, const char *hub, const char *who, const char *record, size_t len) {
    struct hubMsg *m = msgNew(WS_OP_TEXT, record, len);
    int reached = 0;
    if (!m) return -1;
    pthread_mutex_lock(&lock);
    pollReapLocked(nowMs());
    for (struct hubConn *c = conns; c; c = c->next) {
        if (!c->ready || c->closing || !matches(c, scope, hub, who)) continue;
        if (enqueueLocked(c, m) == 0) reached++;
        if (scope == HUB_CONNECTION) break;
    }
    pthread_mutex_unlock(&lock);
    msgUnref(m);
    return reached;
}

int hubHas(enum hubScope scope, const char *hub, const char *who) {
    int found = 0;
    pthread_mutex_lock(&lock);
    for (struct hubConn *c = conns; c && !found; c = c->next)
        found = c->ready && !c->closing && matches(c, scope, hub, who);
    pthread_mutex_unlock(&lock);
    return found;
}

int hubDisconnect(const char *hub, const char *who) {
    int found = 0;
    pthread_mutex_lock(&lock);
    for (struct hubConn *c = conns; c && !found; c = c->next) {
        if (!matches(c, HUB_CONNECTION, hub, who) || c->closing) continue;
        if (c->lp) { /* the next poll takes the close message, the one after gets 204 */
            size_t n = 0;
            char *rec =
                c->ready ? hubprotoClose("The connection was closed by the server.", 0, &n) : NULL;
            struct hubMsg *m = rec ? msgNew(WS_OP_TEXT, rec, n) : NULL;
            if (m) enqueueLocked(c, m);
            msgUnref(m);
            free(rec);
            c->closing = 1;
            wake(c);
            found = 1;
            continue;
        }
        c->stopCode = WS_CLOSE_NORMAL;
        c->stopReconnect = 0;
        wake(c);
        found = 1;
    }
    pthread_mutex_unlock(&lock);
    return found;
}

void hubShutdown(int waitMs) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += waitMs / 1000;
    deadline.tv_nsec += (long)(waitMs % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) deadline.tv_sec++, deadline.tv_nsec -= 1000000000;

    pthread_mutex_lock(&lock);
    stopping = 1;
    for (struct hubConn *c = conns, *next; c; c = next) {
        next = c->next;
        if (c->lp) { /* its polls answer 204 */
            pollUnlinkLocked(c);
            continue;
        }
        if (!c->stopCode) c->stopCode = WS_CLOSE_GOING_AWAY, c->stopReconnect = 1;
        wake(c);
    }
    while (live > 0)
        if (pthread_cond_timedwait(&drained, &lock, &deadline) == ETIMEDOUT) break;
    if (live > 0) logWarn("%d WebSocket connection(s) still open at exit", live);
    while (pending) {
        struct hubClaim *p = pending;
        pending = p->next;
        claimFree(p);
    }
    pendingCount = 0;
    pthread_mutex_unlock(&lock);
}
