/* hubconn: the hub's private parts, shared by the registry (hub.c), negotiate claims
 * (hubclaim.c), the hub-protocol session (hubsession.c) and the two transports (hubws.c,
 * hubpoll.c). Nothing outside the hub includes this header: hub.h is the hub's interface.
 *
 * A connection is a struct hubConn embedded first in its transport's own struct (struct wsConn,
 * struct pollConn); the transport's operations (struct hubTransport) do what differs.
 *
 * Locking: hubLock guards the registry and every connection's queue and flags (the fields marked
 * "guarded" below). Claims have a lock of their own. Senders only append to queues and wake the
 * connection; they never touch a socket. */
#ifndef STANDIN_HUBCONN_H
#define STANDIN_HUBCONN_H

#include "clock.h"
#include "hub.h"
#include "hubproto.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* One outgoing WebSocket frame, shared by every queue it is on. A long-polling connection sends
 * its payload only, past the hdrLen bytes of frame header. */
struct hubMsg {
    atomic_int refs;
    size_t len, hdrLen;
    unsigned char data[];
};

/* A negotiated connection not yet opened by its client. */
struct hubClaim {
    struct hubClaim *next;
    char token[HUB_TOKEN_LEN];
    char id[HUB_ID_LEN];
    char hub[HUB_NAME_MAX + 1];
    char *user;
    long long created; /* ms, monotonic */
};

struct hubConn;

/* What each transport does its own way. Called with hubLock held unless said otherwise. */
struct hubTransport {
    const char *name; /* for logs: "WebSocket", "long polling" */
    /* Output was queued, or the connection must look at its flags again. */
    void (*wake)(struct hubConn *c);
    /* The REST API closes the connection: a hub close message without reconnect. */
    void (*disconnect)(struct hubConn *c);
    /* The server is stopping: close, allowing a reconnect. */
    void (*shutdown)(struct hubConn *c);
    /* Drops the connection when it is idle or overflowed; may unlink and free c. May be NULL. */
    void (*reap)(struct hubConn *c, long long now);
    /* From the session, without the lock: end the connection after what is queued, with the
     * WebSocket close code (hubsession has already queued a hub close message when due). */
    void (*end)(struct hubConn *c, int code);
    /* From the session, without the lock: 1 when no more client records are to be handled. */
    int (*finished)(struct hubConn *c);
};

struct hubConn {
    const struct hubTransport *transport;
    struct hubConn *prev, *next; /* guarded: the registry's list */
    char id[HUB_ID_LEN];
    char hub[HUB_NAME_MAX + 1];
    char *user; /* owned, NULL when anonymous */
    /* Guarded by hubLock. */
    struct hubMsg **ring; /* outgoing frames, ringCount of them from ringHead */
    size_t ringAlloc, ringHead, ringCount, queuedBytes;
    int ready;   /* handshake answered: hub messages may be queued */
    int closing; /* the last record is queued: nothing more may be */
    int dropped; /* the queue overflowed (or memory ran out): abort */
    /* The session's, used by one thread at a time (see hubsession.h's note in hubSessionInput). */
    struct hubprotoRecords records;
    int handshakeDone;
};

extern pthread_mutex_t hubLock;
extern struct hubOptions hubOpts;

/* Initialises the base of a new connection from claim (takes its user). */
void hubConnInit(struct hubConn *c, const struct hubTransport *t, struct hubClaim *claim);

/* Frees what the base holds: queued frames, records, user. Not c itself. */
void hubConnRelease(struct hubConn *c);

/* ---- the registry (hub.c) ---- */

/* Adds c to the registry unless the hub is stopping. Returns 0, or -1 when stopping. */
int hubLinkLocked(struct hubConn *c);

/* The first connection of the registry (then follow ->next), or NULL. */
struct hubConn *hubConnsLocked(void);

/* Takes c out of the registry. */
void hubUnlinkLocked(struct hubConn *c);

/* Runs every connection's reap operation. */
void hubReapLocked(long long now);

/* 1 once hubShutdown has begun. */
int hubStoppingLocked(void);

/* Connections served by a thread of their own: counted so that hubShutdown can wait for them. */
void hubThreadAddLocked(void);
void hubThreadDone(void); /* takes the lock */

/* ---- the outgoing queue (hub.c) ---- */

/* A frame of opcode around payload. refs 1, caller owns. NULL on OOM. */
struct hubMsg *hubMsgNew(int opcode, const void *payload, size_t len);
void hubMsgUnref(struct hubMsg *m);

/* Appends m (adding a reference) to c's queue. A queue past its caps marks the connection
 * dropped instead. Returns 0, or -1 when not queued. */
int hubEnqueueLocked(struct hubConn *c, struct hubMsg *m);

/* Queues a text frame holding record[0..len) (copied); takes the lock. Returns 0, or -1. */
int hubEnqueueText(struct hubConn *c, const char *record, size_t len);

/* The head of c's queue, or NULL when empty; the frame stays queued. */
struct hubMsg *hubQueueHeadLocked(struct hubConn *c);

/* Takes the head off c's queue and drops the queue's reference to it. */
void hubQueuePopLocked(struct hubConn *c);

/* ---- claims (hubclaim.c) ---- */

void hubClaimsShutdown(void); /* refuses new claims and frees the waiting ones */

/* ---- the hub-protocol session (hubsession.c), the same for both transports ---- */

/* Feeds client text to c's session: whole records are handled (the handshake first, then hub
 * messages), answers queued, and the transport's end called when the connection must close.
 * Called by one thread at a time per connection. Returns 0, or -1 when the text overflowed the
 * record buffer (the connection is then being closed). */
int hubSessionInput(struct hubConn *c, const void *data, size_t len);

#endif
