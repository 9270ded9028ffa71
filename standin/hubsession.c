/* hubsession: what a client's hub-protocol records do, the same for every transport: the
 * handshake first, then hub messages (the stand-in is serverless: invocations get an error
 * completion, a close message ends the connection). */
#include "hubconn.h"

#include "log.h"
#include "ws.h"

#include <stdlib.h>
#include <string.h>

#define NO_HUB_METHODS "The SignalR stand-in is serverless: it has no hub methods."

/* Queues a built record (may be NULL after OOM) and frees it. Build it first: an argument
 * list leaves the order of evaluation open, so the length must not be read in the same call. */
static void queueOwned(struct hubConn *c, char *rec, size_t len) {
    if (rec) hubEnqueueText(c, rec, len);
    free(rec);
}

/* Ends the connection with code, after a hub close message carrying error when the handshake
 * was answered and error is not NULL. */
static void endWith(struct hubConn *c, int code, const char *error) {
    int ready;
    pthread_mutex_lock(&hubLock);
    ready = c->ready;
    pthread_mutex_unlock(&hubLock);
    if (ready && error) {
        size_t n = 0;
        char *rec = hubprotoClose(error, 0, &n);
        queueOwned(c, rec, n);
    }
    c->transport->end(c, code);
}

static void handshake(struct hubConn *c, const char *rec, size_t len) {
    char err[HUBPROTO_ERR_LEN];
    struct hubMsg *m;
    c->handshakeDone = 1;
    if (hubprotoHandshake(rec, len, err, sizeof(err)) != 0) {
        size_t n = 0;
        logInfo("hub %s connection %s: handshake refused: %s", c->hub, c->id, err);
        char *answer = hubprotoHandshakeError(err, &n);
        queueOwned(c, answer, n);
        endWith(c, WS_CLOSE_NORMAL, NULL);
        return;
    }
    m = hubMsgNew(WS_OP_TEXT, HUBPROTO_HANDSHAKE_OK, strlen(HUBPROTO_HANDSHAKE_OK));
    /* The answer goes first, and in the same step the connection starts taking messages. */
    pthread_mutex_lock(&hubLock);
    if (m && hubEnqueueLocked(c, m) == 0) {
        c->ready = 1;
    } else if (!c->dropped) {
        c->dropped = 1;
        c->transport->wake(c);
    }
    pthread_mutex_unlock(&hubLock);
    hubMsgUnref(m);
}

static void record(struct hubConn *c, const char *rec, size_t len) {
    int type = 0;
    char *invocationId = NULL;
    size_t n = 0;
    if (!c->handshakeDone) {
        handshake(c, rec, len);
        return;
    }
    if (hubprotoMessage(rec, len, &type, &invocationId) != 0) {
        endWith(c, WS_CLOSE_NORMAL, "Connection closed with an error: invalid message.");
        return;
    }
    switch (type) {
    case HUBPROTO_INVOCATION:
    case HUBPROTO_STREAM_INVOCATION:
        if (invocationId) { /* the caller waits for a result: tell it there is none */
            char *answer = hubprotoCompletionError(invocationId, NO_HUB_METHODS, &n);
            queueOwned(c, answer, n);
        }
        break;
    case HUBPROTO_CLOSE:
        endWith(c, WS_CLOSE_NORMAL, NULL);
        break;
    default: /* pings, completions, stream items, cancels, and later types: nothing to do */
        break;
    }
    free(invocationId);
}

int hubSessionInput(struct hubConn *c, const void *data, size_t len) {
    const char *rec;
    size_t recLen;
    if (hubprotoRecordsAppend(&c->records, data, len) != 0) {
        endWith(c, WS_CLOSE_TOO_BIG, "Connection closed with an error: message too big.");
        return -1;
    }
    while (!c->transport->finished(c) && hubprotoRecordsNext(&c->records, &rec, &recLen))
        record(c, rec, recLen);
    return 0;
}
