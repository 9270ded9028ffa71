/* hub: the registry of live connections of both transports, their outgoing queues, and delivery
 * of hub messages to a hub's connections, one connection, or one user's connections. Negotiate
 * claims are in hubclaim.c, the hub protocol in hubsession.c, the transports in hubws.c and
 * hubpoll.c; hubconn.h is what they share. */
#include "hub.h"

#include "hubconn.h"
#include "log.h"
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

pthread_mutex_t hubLock = PTHREAD_MUTEX_INITIALIZER;
struct hubOptions hubOpts;

static pthread_cond_t drained = PTHREAD_COND_INITIALIZER;
static struct hubConn *conns;
static int threads; /* connection threads not yet finished */
static int stopping;

void hubInit(const struct hubOptions *options) { hubOpts = *options; }

/* ---- connections ---- */

void hubConnInit(struct hubConn *c, const struct hubTransport *t, struct hubClaim *claim) {
    c->transport = t;
    memcpy(c->id, claim->id, sizeof(c->id));
    memcpy(c->hub, claim->hub, sizeof(c->hub));
    c->user = claim->user;
    claim->user = NULL;
    hubprotoRecordsInit(&c->records, hubOpts.maxMessage);
}

void hubConnRelease(struct hubConn *c) {
    for (size_t i = 0; i < c->ringCount; i++)
        hubMsgUnref(c->ring[(c->ringHead + i) % c->ringAlloc]);
    free(c->ring);
    c->ring = NULL;
    c->ringCount = 0;
    hubprotoRecordsFree(&c->records);
    free(c->user);
    c->user = NULL;
}

int hubLinkLocked(struct hubConn *c) {
    if (stopping) return -1;
    c->prev = NULL;
    c->next = conns;
    if (conns) conns->prev = c;
    conns = c;
    return 0;
}

struct hubConn *hubConnsLocked(void) {
    return conns;
}

void hubUnlinkLocked(struct hubConn *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

void hubReapLocked(long long now) {
    for (struct hubConn *c = conns, *next; c; c = next) {
        next = c->next;
        if (c->transport->reap) c->transport->reap(c, now);
    }
}

int hubStoppingLocked(void) { return stopping; }

void hubThreadAddLocked(void) { threads++; }

void hubThreadDone(void) {
    pthread_mutex_lock(&hubLock);
    if (--threads == 0) pthread_cond_broadcast(&drained);
    pthread_mutex_unlock(&hubLock);
}

/* ---- outgoing frames ---- */

struct hubMsg *hubMsgNew(int opcode, const void *payload, size_t len) {
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

void hubMsgUnref(struct hubMsg *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) free(m);
}

int hubEnqueueLocked(struct hubConn *c, struct hubMsg *m) {
    if (c->dropped) return -1;
    if (c->ringCount >= hubOpts.queueMaxMessages ||
        c->queuedBytes + m->len > hubOpts.queueMaxBytes) {
        c->dropped = 1;
        c->transport->wake(c);
        return -1;
    }
    if (c->ringCount == c->ringAlloc) {
        size_t n = c->ringAlloc ? c->ringAlloc * 2 : 16;
        struct hubMsg **r = malloc(n * sizeof(*r));
        if (!r) { /* a client that silently misses messages is worse than one dropped */
            c->dropped = 1;
            c->transport->wake(c);
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
    if (c->ringCount == 1) c->transport->wake(c); /* otherwise it is already busy sending */
    return 0;
}

int hubEnqueueText(struct hubConn *c, const char *record, size_t len) {
    struct hubMsg *m = hubMsgNew(WS_OP_TEXT, record, len);
    int rc;
    if (!m) return -1;
    pthread_mutex_lock(&hubLock);
    rc = hubEnqueueLocked(c, m);
    pthread_mutex_unlock(&hubLock);
    hubMsgUnref(m);
    return rc;
}

struct hubMsg *hubQueueHeadLocked(struct hubConn *c) {
    return c->ringCount ? c->ring[c->ringHead] : NULL;
}

void hubQueuePopLocked(struct hubConn *c) {
    struct hubMsg *m = c->ring[c->ringHead];
    c->ringHead = (c->ringHead + 1) % c->ringAlloc;
    c->ringCount--;
    c->queuedBytes -= m->len;
    hubMsgUnref(m);
}

/* ---- delivery ---- */

static int matches(const struct hubConn *c, enum hubScope scope, const char *hub, const char *who) {
    if (strcmp(c->hub, hub) != 0) return 0;
    if (scope == HUB_CONNECTION) return strcmp(c->id, who) == 0;
    if (scope == HUB_USER) return c->user && strcmp(c->user, who) == 0;
    return 1;
}

int hubSend(enum hubScope scope, const char *hub, const char *who, const char *record, size_t len) {
    struct hubMsg *m = hubMsgNew(WS_OP_TEXT, record, len);
    int reached = 0;
    if (!m) return -1;
    pthread_mutex_lock(&hubLock);
    hubReapLocked(clockNowMs());
    for (struct hubConn *c = conns; c; c = c->next) {
        if (!c->ready || c->closing || !matches(c, scope, hub, who)) continue;
        if (hubEnqueueLocked(c, m) == 0) reached++;
        if (scope == HUB_CONNECTION) break;
    }
    pthread_mutex_unlock(&hubLock);
    hubMsgUnref(m);
    return reached;
}

int hubHas(enum hubScope scope, const char *hub, const char *who) {
    int found = 0;
    pthread_mutex_lock(&hubLock);
    for (struct hubConn *c = conns; c && !found; c = c->next)
        found = c->ready && !c->closing && matches(c, scope, hub, who);
    pthread_mutex_unlock(&hubLock);
    return found;
}

int hubDisconnect(const char *hub, const char *who) {
    int found = 0;
    pthread_mutex_lock(&hubLock);
    for (struct hubConn *c = conns; c && !found; c = c->next) {
        if (!matches(c, HUB_CONNECTION, hub, who) || c->closing) continue;
        c->transport->disconnect(c);
        found = 1;
    }
    pthread_mutex_unlock(&hubLock);
    return found;
}

void hubShutdown(int waitMs) {
    struct timespec deadline;
    clockDeadline(&deadline, CLOCK_REALTIME, waitMs);

    hubClaimsShutdown();
    pthread_mutex_lock(&hubLock);
    stopping = 1;
    for (struct hubConn *c = conns, *next; c; c = next) {
        next = c->next; /* shutdown may unlink c */
        c->transport->shutdown(c);
    }
    while (threads > 0)
        if (pthread_cond_timedwait(&drained, &hubLock, &deadline) == ETIMEDOUT) break;
    if (threads > 0) logWarn("%d WebSocket connection(s) still open at exit", threads);
    pthread_mutex_unlock(&hubLock);
}
