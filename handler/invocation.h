/* invocation: decodes the Functions host's {Data, Metadata} payload for an Event Hubs batch in
 * all its encodings, and builds the {Outputs, Logs, ReturnValue} answer. */
#ifndef ENVIROMON_INVOCATION_H
#define ENVIROMON_INVOCATION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define INVOCATION_ERR_LEN 256

typedef struct hostEvent {
    json_t *body;         /* the event's body as JSON (owned), NULL when it is not JSON */
    const char *raw;      /* the body's text as received, for rejected readings: borrowed from
                             the batch, or rawOwned */
    size_t rawlen;        /* its length in bytes */
    char *rawOwned;       /* owned text when raw is not borrowed (base64-decoded, re-encoded) */
    const char *deviceId; /* iothub-connection-device-id, borrowed from the batch, or NULL */
    int badDeviceId;      /* the id holds a NUL character: no row can be named by it */
    int hasSeq;
    int64_t seq;        /* Event Hubs sequence number within the partition: 0 to INT64_MAX */
    int64_t enqueuedMs; /* enqueued time, ms since the epoch; 0 when unknown */
} hostEvent;

typedef struct hostBatch {
    hostEvent *events;
    size_t count;
    char partition[64]; /* PartitionId, "" when the host sent none */
    /* The Event Hub the partition belongs to (PartitionContext.FullyQualifiedNamespace and
     * EventHubName), borrowed from context; NULL when the host sent none. */
    const char *eventHubNamespace;
    const char *eventHubName;
    json_t *context;  /* the partition context (owned): keeps the two strings above alive */
    char *text;       /* the events' decoded texts (owned): raw is borrowed from here */
    char *ids;        /* the decoded device ids (owned): deviceId is borrowed from here */
    int allSeq;       /* every event has a sequence number */
    int hasSeqRange;  /* seqFirst/seqLast hold the lowest and highest sequence numbers seen, */
    int64_t seqFirst; /* also filled, as far as the metadata could be read, when decoding */
    int64_t seqLast;  /* failed (for the quarantine record) */
} hostBatch;

/* Decodes an invocation body. Event bodies may be JSON text, base64 of JSON, objects or arrays,
 * or not JSON at all (kept raw, body NULL); the arrays may come wrapped in a JSON string or not.
 * A \u0000 inside an event's JSON is accepted here; the strings the handler uses are checked
 * where they are used. Returns 0, or -1 with a message (malformed JSON, no Data, wrong types,
 * metadata arrays of another length than the events, a sequence number that is not an integer
 * in 0..INT64_MAX: such a batch cannot be deduplicated): the envelope cannot be read, and the
 * caller quarantines it. On -1, b->partition and the sequence range hold what could be read
 * from the metadata, and nothing needs freeing. Free a decoded batch with invocationBatchFree. */
int invocationDecodeBatch(const char *body, size_t len, hostBatch *b, char *err, size_t errlen);

void invocationBatchFree(hostBatch *b);

/* Parses an ISO 8601 UTC time ("2026-11-27T08:00:00.5210000Z", "Z" optional, any fraction).
 * Returns ms since the epoch, or -1. */
int64_t invocationParseTime(const char *text);

/* Formats ms since the epoch as "2026-11-27T08:00:00.521Z" into out (at least 25 bytes). */
void invocationFormatTime(int64_t ms, char *out, size_t outlen);

/* The host's answer: {"Outputs":{},"Logs":logs,"ReturnValue":null}, plus "error" when error is
 * not NULL. Steals logs (may be NULL). Returns the JSON text; caller frees. */
char *invocationAnswer(json_t *logs, const char *error);

#endif
