/* hubproto: the SignalR JSON hub protocol, version 1: records ended by 0x1E, the handshake, and
 * the messages the stand-in reads and writes. Pure: no sockets, no threads. */
#ifndef STANDIN_HUBPROTO_H
#define STANDIN_HUBPROTO_H

#include "buf.h"

#include <stddef.h>

#define HUBPROTO_RS '\x1e'
#define HUBPROTO_ERR_LEN 200

enum hubprotoType {
    HUBPROTO_INVOCATION = 1,
    HUBPROTO_STREAM_ITEM = 2,
    HUBPROTO_COMPLETION = 3,
    HUBPROTO_STREAM_INVOCATION = 4,
    HUBPROTO_CANCEL_INVOCATION = 5,
    HUBPROTO_PING = 6,
    HUBPROTO_CLOSE = 7
};

/* Fixed records, 0x1E included. */
#define HUBPROTO_HANDSHAKE_OK "{}\x1e"
#define HUBPROTO_PING_RECORD "{\"type\":6}\x1e"

/* Collects incoming text and yields whole records; a record may span several messages. */
struct hubprotoRecords {
    buf text; /* received text; from pos on not yet handed out */
    size_t pos;
};

/* Prepares r to hold at most max bytes of unfinished records. */
void hubprotoRecordsInit(struct hubprotoRecords *r, size_t max);

/* Frees what r holds. Accepts NULL. */
void hubprotoRecordsFree(struct hubprotoRecords *r);

/* Appends text (copied). Returns 0, or -1 past the cap or on OOM (what was held is then
 * dropped: the connection is closed). */
int hubprotoRecordsAppend(struct hubprotoRecords *r, const void *data, size_t len);

/* Takes the next whole record, without its 0x1E, borrowed until the next append. Returns 1, or
 * 0 when no whole record is buffered. */
int hubprotoRecordsNext(struct hubprotoRecords *r, const char **rec, size_t *len);

/* Checks a handshake request. Returns 0 for {"protocol":"json","version":1}; otherwise -1 with
 * the reason for the client in err. */
int hubprotoHandshake(const char *rec, size_t len, char *err, size_t errlen);

/* Reads a message's type and, for an invocation that expects a result, its invocationId
 * (*invocationId caller frees, NULL when absent). Returns 0, or -1 when the record is not a JSON
 * object with an integer type. */
int hubprotoMessage(const char *rec, size_t len, int *type, char **invocationId);

/* Builds {"type":1,"target":...,"arguments":[...]} + 0x1E from a REST body
 * {"target":"...","arguments":[...]} (arguments may be absent). Returns the record (caller
 * frees) with its length in *outLen, or NULL with the reason for a 400 in err. */
char *hubprotoInvocationFromBody(const char *body, size_t len, size_t *outLen, char *err,
                                 size_t errlen);

/* {"error":"..."} + 0x1E, a failed handshake's answer. Caller frees; NULL on OOM. */
char *hubprotoHandshakeError(const char *error, size_t *outLen);

/* {"type":3,"invocationId":"...","error":"..."} + 0x1E. Caller frees; NULL on OOM. */
char *hubprotoCompletionError(const char *invocationId, const char *error, size_t *outLen);

/* {"type":7[,"error":"..."],"allowReconnect":bool} + 0x1E; error may be NULL. Caller frees;
 * NULL on OOM. */
char *hubprotoClose(const char *error, int allowReconnect, size_t *outLen);

#endif
