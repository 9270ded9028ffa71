/* quarantine: keeps, whole, what the handler cannot process but must not lose: an invocation
 * whose envelope cannot be read (or cannot be made exactly-once), and a rejected reading too
 * large for one row. Kept in Table Storage as chunk rows of Edm.Binary properties under one id.
 *
 * Layout (table QuarantineTable, one PartitionKey per quarantined item, the id):
 *   RowKey "batch"         Reason, EventHubPartition, SequenceFirst, SequenceLast (Int64, when
 *                          known), Bytes (Int64), Chunks (Int64), InvocationId, ReceivedAt
 *   RowKey "chunk-000001"  Bytes (Int64), Data0 .. Data7 (Edm.Binary, 64 KiB each): the bytes in
 *   ...                    order; concatenating every chunk row's Data0..Data7 gives them back.
 * A chunk row holds at most 512 KiB (1 MiB entity limit; Binary properties 64 KiB each). The
 * header row is written last: a header means every chunk is there. */
#ifndef ENVIROMON_QUARANTINE_H
#define ENVIROMON_QUARANTINE_H

#include "settings.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QUARANTINE_CHUNK_PARTS 8
#define QUARANTINE_CHUNK_BYTES (QUARANTINE_CHUNK_PARTS * 65536)
#define QUARANTINE_ID_LEN 48

enum quarantineStatus {
    QUARANTINE_OK = 0,    /* kept */
    QUARANTINE_TRANSIENT, /* the store did not answer or answered 5xx/408/429: try again later */
    QUARANTINE_REFUSED,   /* the store refuses it every time: not kept (the caller logs it) */
    QUARANTINE_TABLE_GONE /* the table does not exist (deleted while running): try again once
                             the tables are created again (tablesetLost) */
};

typedef struct quarantineItem {
    const char *reason;    /* borrowed */
    const char *partition; /* Event Hubs partition, "" when unknown; borrowed */
    int hasSeqRange;       /* first/last known */
    int64_t seqFirst, seqLast;
    const char *invocationId; /* X-Azure-Functions-InvocationId, may be NULL; borrowed */
} quarantineItem;

/* A deterministic id for data (the same bytes get the same id, so a re-delivery writes the same
 * rows again), written into out (QUARANTINE_ID_LEN bytes): prefix + 32 hex digits. */
void quarantineId(const char *prefix, const void *data, size_t len, char *out);

/* Keeps the bytes, from data (len bytes) or, when data is NULL, from file f (read from its
 * current position to its end), in table under id, with the header row from *q. Returns an
 * enum quarantineStatus, with a message in err on failure. Thread-safe. */
int quarantineKeep(const storageAccount *a, const char *table, const char *id,
                   const quarantineItem *q, const char *data, size_t len, FILE *f, char *err,
                   size_t errlen);

#endif
