/* hub: the client side's state: connection tokens handed out by negotiate (hubclaim.c), the live
 * connections of both transports, WebSocket (hubws.c) and long polling (hubpoll.c), each with a
 * bounded outgoing queue, and delivery of hub messages to a hub's connections, one connection, or
 * one user's connections (hub.c). */
#ifndef STANDIN_HUB_H
#define STANDIN_HUB_H

#include <stddef.h>

#define HUB_NAME_MAX 128
#define HUB_ID_LEN 23    /* connection id: base64url of 16 random bytes, plus NUL */
#define HUB_TOKEN_LEN 44 /* connection token: base64url of 32 random bytes, plus NUL */

struct hubOptions {
    int pingSeconds;          /* send {"type":6} after this long without sending anything */
    int pollSeconds;          /* a long poll with nothing to send answers after this long */
    int clientTimeoutSeconds; /* close a connection silent for this long */
    size_t maxMessage;        /* cap on one incoming WebSocket message, and on a pending record */
    size_t queueMaxBytes;     /* a connection whose unsent output exceeds either cap is dropped */
    size_t queueMaxMessages;
};

enum hubScope { HUB_ALL, HUB_CONNECTION, HUB_USER };

/* A negotiated connection, claimed for a WebSocket that is being opened. */
struct hubClaim;

/* Sets the options; call once before anything else. */
void hubInit(const struct hubOptions *options);

/* Records a new connection of hub (lowercase) for user (may be NULL; copied) and fills its id
 * and its single-use token. Returns 0, or -1 when out of memory, out of randomness or when too
 * many negotiated connections are waiting. */
int hubNegotiate(const char *hub, const char *user, char id[HUB_ID_LEN], char token[HUB_TOKEN_LEN]);

enum hubClaimStatus {
    HUB_CLAIM_OK = 0,
    HUB_CLAIM_UNKNOWN, /* never negotiated, already used, or expired */
    HUB_CLAIM_MISMATCH /* negotiated for another hub or another user */
};

/* Takes the connection negotiated with token, which must be of hub (lowercase) and user (may be
 * NULL). On HUB_CLAIM_OK *claim receives it (caller passes it to hubAttach or frees it with
 * hubClaimFree). A token works once, also when the claim fails. */
int hubClaimToken(const char *token, const char *hub, const char *user, struct hubClaim **claim);

/* A short English reason for a claim status, static. */
const char *hubClaimText(int status);

/* Frees a claim that was not attached. Accepts NULL. */
void hubClaimFree(struct hubClaim *claim);

/* Serves the upgraded socket fd as the claimed connection, on a thread of its own; extra holds
 * bytes already read from the socket (copied). Steals claim. closeFn(closeCtx) is called exactly
 * once, from any thread, when the connection is over (also when this call fails); the socket is
 * never close()d here. Returns 0, or -1. */
int hubAttach(struct hubClaim *claim, int fd, const void *extra, size_t extraLen,
              void (*closeFn)(void *), void *closeCtx);

/* Queues record[0..len) (a whole hub protocol record, 0x1E included; copied once and shared) to
 * the matching connections of hub (lowercase): every one, the one with id who, or those of user
 * who. Never waits for a client: one whose queue is full is dropped. Returns the number of
 * connections reached, or -1 when out of memory. */
int hubSend(enum hubScope scope, const char *hub, const char *who, const char *record, size_t len);

/* 1 when hub has a connection with id who (HUB_CONNECTION) or of user who (HUB_USER), else 0. */
int hubHas(enum hubScope scope, const char *hub, const char *who);

/* Closes the connection with id who, with a hub close message that does not invite a
 * reconnect. Returns 1 when it existed, else 0. */
int hubDisconnect(const char *hub, const char *who);

/* ---- the LongPolling transport: a connection made of HTTP requests that name it by its
 * connection token (hub and user must match the negotiated ones on every request) ---- */

enum hubPollStatus {
    HUB_POLL_OK = 0,   /* 200: *body holds the records to send (possibly none) */
    HUB_POLL_CLOSED,   /* 204: the connection is over */
    HUB_POLL_UNKNOWN,  /* 404 */
    HUB_POLL_MISMATCH, /* 403 */
    HUB_POLL_NO_MEMORY /* 500 */
};

/* A poll (GET). The first one, with a token fresh from negotiate, opens the connection and
 * returns at once with no records; later ones wait until records are queued (all of them are
 * returned, concatenated, 0x1E ended) or the poll timeout passes (then a ping record, once the
 * handshake is done). *body (caller frees, may be NULL when *len is 0) and *len receive them. */
int hubPoll(const char *token, const char *hub, const char *user, char **body, size_t *len);

/* Client records (POST): the handshake first, then hub messages. Returns HUB_POLL_OK,
 * _UNKNOWN, _MISMATCH or _CLOSED. */
int hubPollSend(const char *token, const char *hub, const char *user, const char *data, size_t len);

/* Ends the connection (DELETE); a pending poll answers 204. Returns HUB_POLL_OK, _UNKNOWN or
 * _MISMATCH. */
int hubPollDelete(const char *token, const char *hub, const char *user);

/* Refuses new connections, ends every long-polling connection (its polls answer 204), closes
 * every WebSocket (hub close message allowing reconnect, then a 1001 close frame), and waits up to
 * waitMs for their threads to finish. Frees the negotiated tokens. */
void hubShutdown(int waitMs);

#endif
