/* tablebatch: Table Storage entity group transactions ($batch): a multipart/mixed request writer
 * (one changeset, one PartitionKey, INSERT / MERGE / UPDATE / DELETE each with its own If-Match),
 * a bounded reader of the answer, and the call that sends one transaction.
 *
 * Format and limits: "Performing entity group transactions", Azure Storage REST reference
 * (learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions, read
 * 2026-12-02); Azurite's reader and writer (github.com/Azure/Azurite, src/table/batch/,
 * commit 9074bea3528e23e50f5a1d576e13072d6c94d17c). The README's "Table Storage transactions"
 * section says what differs on the Cosmos DB Table API.
 *
 * Ownership: every function borrows its arguments; what a function returns as char * the caller
 * frees; a tableBatch is freed with tableBatchFree. */
#ifndef ENVIROMON_TABLEBATCH_H
#define ENVIROMON_TABLEBATCH_H

#include "settings.h"

#include <jansson.h>
#include <stddef.h>

#define TABLEBATCH_MAX_OPS 100                 /* Azure, Azurite and Cosmos DB: 100 operations */
#define TABLEBATCH_MAX_BYTES ((size_t)4 << 20) /* Azure and Azurite: 4 MiB of request body */
#define TABLEBATCH_COSMOS_MAX_BYTES ((size_t)2000000) /* Cosmos DB Table API: "2 MB" */
#define TABLEBATCH_RESPONSE_MAX ((size_t)1 << 20)     /* the most we read of an answer */
#define TABLEBATCH_ETAG_MAX 160                       /* as tableResult.etag */

enum tableBatchOp {
    TABLEBATCH_INSERT, /* POST to the table; TABLE_CONFLICT when the row exists */
    TABLEBATCH_MERGE,  /* MERGE; etag: If-Match (an etag or "*"), NULL: insert-or-merge */
    TABLEBATCH_UPDATE, /* PUT (replace); etag as MERGE, NULL: insert-or-replace */
    TABLEBATCH_DELETE  /* DELETE; etag required (an etag or "*") */
};

/* What tableBatchAdd answers. */
enum tableBatchAddStatus {
    TABLEBATCH_ADDED = 0, /* the operation is in the transaction */
    TABLEBATCH_FULL,      /* it would pass 100 operations or the byte limit: start another
                             transaction for it (this one is unchanged) */
    TABLEBATCH_INVALID    /* the operation can never be sent (bad key or etag, a row already in
                             this transaction, a property the writer cannot encode); unchanged */
};

typedef struct tableBatch tableBatch;

/* A new, empty transaction on one table and one PartitionKey. maxbytes: the most bytes the
 * request body may have; 0 for the service's limit (TABLEBATCH_COSMOS_MAX_BYTES when the
 * endpoint's host is the Cosmos DB Table API's, else TABLEBATCH_MAX_BYTES). Returns NULL, with
 * the reason in err, when table or pk cannot be used or memory ran out. */
tableBatch *tableBatchNew(const storageAccount *a, const char *table, const char *pk,
                          size_t maxbytes, char *err, size_t errlen);
void tableBatchFree(tableBatch *b);

/* Appends one operation on row rk. props: the properties to write (ignored for DELETE; may hold
 * PartitionKey and RowKey, which must then equal pk and rk). Returns an enum
 * tableBatchAddStatus; err says why on TABLEBATCH_FULL and TABLEBATCH_INVALID. */
int tableBatchAdd(tableBatch *b, enum tableBatchOp op, const char *rk, const json_t *props,
                  const char *etag, char *err, size_t errlen);

size_t tableBatchCount(const tableBatch *b);
/* The RowKey of operation i (borrowed while b lives), NULL when i is past the last operation: to
 * map a result's index (ops[i], failed) back to its row. */
const char *tableBatchRowKey(const tableBatch *b, size_t i);
/* The request body's size in bytes, as tableBatchBody would write it now. */
size_t tableBatchSize(const tableBatch *b);
/* "multipart/mixed; boundary=batch_..." (borrowed while b lives). */
const char *tableBatchContentType(const tableBatch *b);
/* The request body (caller frees), its length in *len. NULL when memory ran out. */
char *tableBatchBody(const tableBatch *b, size_t *len);

typedef struct tableBatchOpResult {
    long status;                    /* the operation's HTTP status */
    char etag[TABLEBATCH_ETAG_MAX]; /* its new ETag, verbatim; "" for DELETE or none */
} tableBatchOpResult;

typedef struct tableBatchResult {
    long status; /* the $batch request's HTTP status (202 when the service read it), 0: none */
    int unknown; /* 1: no answer or one we cannot read, so whether the transaction was applied
                    is not known (re-read before retrying); 0: the answer is certain */
    int failed;  /* index of the operation that failed the transaction, -1 when none/unknown */
    long failedStatus; /* its HTTP status (412 stale etag, 409 exists, 404 missing, 400 value) */
    size_t count;      /* operations answered in ops[], in request order (all of them on success) */
    tableBatchOpResult ops[TABLEBATCH_MAX_OPS];
    char code[64];     /* the service's error code (UpdateConditionNotSatisfied, ...) */
    char message[256]; /* what went wrong, for a log line */
} tableBatchResult;

/* Reads the answer to a transaction of nops operations: status and content_type are the
 * response's status and Content-Type header (content_type may be NULL), body its len bytes (not
 * necessarily NUL-terminated). Returns an enum tableStatus: TABLE_OK when every operation was
 * applied (res->ops has each new etag); when the service refused the transaction (nothing
 * applied), the class of the failed operation's status (TABLE_PRECONDITION, TABLE_CONFLICT,
 * TABLE_NOT_FOUND, TABLE_ERROR) with its index in res->failed; TABLE_ERROR with res->unknown set
 * for a truncated, oversized or malformed answer. Pure: no I/O. */
int tableBatchParse(long status, const char *content_type, const char *body, size_t len,
                    size_t nops, tableBatchResult *res);

/* Sends the transaction (Shared Key or SAS, as every table call) and reads the answer as
 * tableBatchParse does. An empty transaction is TABLE_OK without a request. The caller decides
 * what a failure means (re-read the failed row, drop the operation, retry). Thread-safe. */
int tableBatchSubmit(const storageAccount *a, const tableBatch *b, tableBatchResult *res);

#endif
