/* hubpoll: the LongPolling transport: a connection made of HTTP requests that name it by its
 * connection token. It has no thread: a poll (each request on its own httpd thread) waits on the
 * connection's condition variable for queued records; a POST feeds the session. */
#include "hub.h"

#include "crypto.h"
#include "hubconn.h"
#include "log.h"
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_DROP_MIN_MS (10 * 1000)

struct pollConn {
    struct hubConn base; /* first: a struct hubConn * is a struct pollConn * */
    char token[HUB_TOKEN_LEN];
    pthread_cond_t cond;      /* signalled when output is queued or the connection ends */
    pthread_mutex_t postLock; /* serialises POSTs: the session's records and handshake state */
    /* Guarded by hubLock. */
    int linked;         /* in the registry */
    int users;          /* requests using it now */
    long long lastSeen; /* ms, when a request last started or ended */
};

static struct pollConn *lp(struct hubConn *c) { return (struct pollConn *)c; }

static void pollFree(struct pollConn *p) {
    hubConnRelease(&p->base);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->postLock);
    free(p);
}

/* A long-polling connection not polled for this long is dropped. */
static long long dropMs(void) {
    long long ms = 2LL * hubOpts.pollSeconds * 1000;
    return ms > POLL_DROP_MIN_MS ? ms : POLL_DROP_MIN_MS;
}

static void pollWake(struct hubConn *c) { pthread_cond_broadcast(&lp(c)->cond); }

/* Takes p out of the registry and wakes its polls. Frees it when no request uses it. */
static void unlinkLocked(struct pollConn *p) {
    if (!p->linked) return;
    hubUnlinkLocked(&p->base);
    p->linked = 0;
    pthread_cond_broadcast(&p->cond);
    logInfo("hub %s connection %s: closed (long polling)", p->base.hub, p->base.id);
    if (!p->users) pollFree(p);
}

/* The next poll takes the close message, the one after gets 204. */
static void pollDisconnect(struct hubConn *c) {
    size_t n = 0;
    char *rec = c->ready ? hubprotoClose("The connection was closed by the server.", 0, &n) : NULL;
    struct hubMsg *m = rec ? hubMsgNew(WS_OP_TEXT, rec, n) : NULL;
    if (m) hubEnqueueLocked(c, m);
    hubMsgUnref(m);
    free(rec);
    c->closing = 1;
    pollWake(c);
}

/* Its polls answer 204. */
static void pollShutdown(struct hubConn *c) { unlinkLocked(lp(c)); }

/* Drops the connection when it stopped polling or overflowed. */
static void pollReap(struct hubConn *c, long long now) {
    struct pollConn *p = lp(c);
    if (p->users) return;
    if (c->dropped)
        logWarn("hub %s connection %s: dropped, it does not keep up with its messages", c->hub,
                c->id);
    else if (now - p->lastSeen > dropMs())
        logInfo("hub %s connection %s: not polled for %lld s, dropping", c->hub, c->id,
                (now - p->lastSeen) / 1000);
    else
        return;
    unlinkLocked(p);
}

/* Ends c after the records already queued (the next poll gets them, the one after 204). */
static void pollEnd(struct hubConn *c, int code) {
    (void)code; /* no close frame on this transport */
    pthread_mutex_lock(&hubLock);
    c->closing = 1;
    pollWake(c);
    pthread_mutex_unlock(&hubLock);
}

static int pollFinished(struct hubConn *c) {
    int over;
    pthread_mutex_lock(&hubLock);
    over = c->closing || !lp(c)->linked;
    pthread_mutex_unlock(&hubLock);
    return over;
}

static const struct hubTransport pollTransport = {
    .name = "long polling",
    .wake = pollWake,
    .disconnect = pollDisconnect,
    .shutdown = pollShutdown,
    .reap = pollReap,
    .end = pollEnd,
    .finished = pollFinished,
};

static int sameUser(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* Finds the long-polling connection of token, checks its hub and user and takes a use of it. */
static int findLocked(const char *token, const char *hub, const char *user, struct pollConn **out) {
    struct pollConn *found = NULL;
    *out = NULL;
    for (struct hubConn *c = hubConnsLocked(); c; c = c->next)
        if (c->transport == &pollTransport && cryptoSecretEqual(lp(c)->token, token)) found = lp(c);
    if (!found) return HUB_POLL_UNKNOWN;
    if (strcmp(found->base.hub, hub) != 0 || !sameUser(found->base.user, user))
        return HUB_POLL_MISMATCH;
    found->users++;
    found->lastSeen = clockNowMs();
    *out = found;
    return HUB_POLL_OK;
}

/* Gives back a use taken by findLocked. */
static void releaseLocked(struct pollConn *p) {
    p->users--;
    p->lastSeen = clockNowMs();
    if (!p->linked && !p->users) pollFree(p);
}

/* Opens the connection negotiated with token (the client's first poll). */
static int pollOpen(const char *token, const char *hub, const char *user) {
    struct hubClaim *claim = NULL;
    struct pollConn *p;
    pthread_condattr_t attr;
    int status = hubClaimToken(token, hub, user, &claim), registered = 0;
    if (status != HUB_CLAIM_OK)
        return status == HUB_CLAIM_UNKNOWN ? HUB_POLL_UNKNOWN : HUB_POLL_MISMATCH;
    if (!(p = calloc(1, sizeof(*p)))) {
        hubClaimFree(claim);
        return HUB_POLL_NO_MEMORY;
    }
    hubConnInit(&p->base, &pollTransport, claim);
    memcpy(p->token, claim->token, sizeof(p->token));
    hubClaimFree(claim);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->postLock, NULL);
    pthread_mutex_lock(&hubLock);
    if (hubLinkLocked(&p->base) == 0) {
        p->lastSeen = clockNowMs();
        p->linked = 1;
        registered = 1;
    }
    pthread_mutex_unlock(&hubLock);
    if (!registered) {
        pollFree(p);
        return HUB_POLL_CLOSED;
    }
    logInfo("hub %s connection %s: connected (long polling)", p->base.hub, p->base.id);
    return HUB_POLL_OK;
}

/* Moves every queued record's payload into a new buffer. */
static int takeLocked(struct hubConn *c, char **body, size_t *len) {
    size_t total = 0, at = 0;
    char *out;
    for (size_t i = 0; i < c->ringCount; i++) {
        struct hubMsg *m = c->ring[(c->ringHead + i) % c->ringAlloc];
        total += m->len - m->hdrLen;
    }
    if (!(out = malloc(total ? total : 1))) return -1;
    for (struct hubMsg *m; (m = hubQueueHeadLocked(c)); hubQueuePopLocked(c)) {
        memcpy(out + at, m->data + m->hdrLen, m->len - m->hdrLen);
        at += m->len - m->hdrLen;
    }
    *body = out;
    *len = total;
    return 0;
}

int hubPoll(const char *token, const char *hub, const char *user, char **body, size_t *len) {
    struct pollConn *p;
    struct hubConn *c;
    struct timespec deadline;
    int status;
    *body = NULL;
    *len = 0;
    pthread_mutex_lock(&hubLock);
    hubReapLocked(clockNowMs());
    status = findLocked(token, hub, user, &p);
    pthread_mutex_unlock(&hubLock);
    if (status == HUB_POLL_UNKNOWN) return pollOpen(token, hub, user);
    if (status != HUB_POLL_OK) return status;
    c = &p->base;

    clockDeadline(&deadline, CLOCK_MONOTONIC, (int64_t)hubOpts.pollSeconds * 1000);
    pthread_mutex_lock(&hubLock);
    while (p->linked && !c->ringCount && !c->closing && !c->dropped && !hubStoppingLocked())
        if (pthread_cond_timedwait(&p->cond, &hubLock, &deadline) == ETIMEDOUT) break;
    if (!p->linked || c->dropped || hubStoppingLocked()) {
        status = HUB_POLL_CLOSED;
    } else if (c->ringCount) {
        status = takeLocked(c, body, len) == 0 ? HUB_POLL_OK : HUB_POLL_NO_MEMORY;
    } else if (c->closing) { /* its last records went out with the previous poll */
        status = HUB_POLL_CLOSED;
    } else if (c->ready) { /* nothing to send: keep the connection alive */
        status = (*body = strdup(HUBPROTO_PING_RECORD)) ? HUB_POLL_OK : HUB_POLL_NO_MEMORY;
        if (*body) *len = strlen(*body);
    }
    if (status == HUB_POLL_CLOSED) unlinkLocked(p);
    releaseLocked(p);
    pthread_mutex_unlock(&hubLock);
    return status;
}

int hubPollSend(const char *token, const char *hub, const char *user, const char *data,
                size_t len) {
    struct pollConn *p;
    int status, closing;
    pthread_mutex_lock(&hubLock);
    status = findLocked(token, hub, user, &p);
    closing = status == HUB_POLL_OK && p->base.closing;
    pthread_mutex_unlock(&hubLock);
    if (status != HUB_POLL_OK) return status;
    if (!closing) {
        pthread_mutex_lock(&p->postLock);
        hubSessionInput(&p->base, data, len);
        pthread_mutex_unlock(&p->postLock);
    }
    pthread_mutex_lock(&hubLock);
    status = p->linked ? HUB_POLL_OK : HUB_POLL_CLOSED;
    releaseLocked(p);
    pthread_mutex_unlock(&hubLock);
    return status;
}

int hubPollDelete(const char *token, const char *hub, const char *user) {
    struct pollConn *p;
    int status;
    pthread_mutex_lock(&hubLock);
    status = findLocked(token, hub, user, &p);
    if (status == HUB_POLL_OK) {
        unlinkLocked(p);
        releaseLocked(p);
    }
    pthread_mutex_unlock(&hubLock);
    return status;
}
