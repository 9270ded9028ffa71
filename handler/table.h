/* table: the Azure Table Storage REST client (Azure, Azurite and the Cosmos DB Table API speak
 * it): Shared Key and SAS signing, get, insert, merge with If-Match, upsert, query with
 * continuation, key escaping, typed properties. */
#ifndef ENVIROMON_TABLE_H
#define ENVIROMON_TABLE_H

#include "httpc.h"
#include "settings.h"

#include <jansson.h>
#include <stdint.h>

/* Table service limits, from "Understanding the Table service data model" (Microsoft Learn,
 * learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model, read
 * 2026-12-02): PartitionKey and RowKey up to 1 KiB each, counted in UTF-16 (512 code units; a
 * character outside the BMP takes 2); a String property up to 64 KiB (32,768 UTF-16 units); a
 * Binary property up to 64 KiB; an entity up to 1 MiB with at most 252 properties of its own. */
#define TABLE_KEY_UNITS 512        /* UTF-16 code units in a PartitionKey or RowKey */
#define TABLE_KEY_MAX 1536         /* bytes: the most UTF-8 a valid key can take (512 x 3) */
#define TABLE_STRING_UNITS 32768   /* UTF-16 code units in one String property */
#define TABLE_BINARY_MAX 65536     /* bytes in one Binary property */
#define TABLE_ENTITY_MAX (1 << 20) /* bytes in one entity */

enum tableStatus {
    TABLE_OK = 0,       /* 2xx */
    TABLE_NOT_FOUND,    /* 404 */
    TABLE_CONFLICT,     /* 409: EntityAlreadyExists, TableAlreadyExists */
    TABLE_PRECONDITION, /* 412: UpdateConditionNotSatisfied (etag mismatch) */
    TABLE_ERROR         /* anything else, or no answer */
};

/* The enum tableStatus of an HTTP status (0: no answer, TABLE_ERROR). */
int tableStatusOf(long status);

typedef struct tableResult {
    long status;       /* HTTP status, 0 when the service did not answer */
    char code[64];     /* x-ms-error-code, when the service gave one */
    char etag[160];    /* ETag of the entity read or written, verbatim */
    char message[256]; /* what went wrong, for a log line */
    int permanent;     /* the request itself is refused and will be every time: a 400, 413, 414
                          or 431 answer, or refused here before sending (bad key, URL too long) */
    int tableGone;     /* the table does not exist (404 TableNotFound): deleted while running */
} tableResult;

/* Every call below is thread-safe, reuses pooled connections, and returns an enum tableStatus
 * with details in *r (which may not be NULL). Tables and keys are borrowed. */

/* Creates the table; an existing table is TABLE_OK too. */
int tableCreate(const storageAccount *a, const char *table, tableResult *r);

/* Reads one entity. On TABLE_OK *entity is a new reference (caller decrefs). */
int tableGetEntity(const storageAccount *a, const char *table, const char *pk, const char *rk,
                   json_t **entity, tableResult *r);

/* Inserts an entity (it must hold PartitionKey and RowKey); TABLE_CONFLICT when it exists. */
int tableInsert(const storageAccount *a, const char *table, json_t *entity, tableResult *r);

/* Merges props into the entity. etag: the entity's etag (TABLE_PRECONDITION when it changed),
 * or NULL for an unconditional insert-or-merge. */
int tableMerge(const storageAccount *a, const char *table, const char *pk, const char *rk,
               json_t *props, const char *etag, tableResult *r);

/* Inserts or replaces, unconditionally (idempotent). */
int tableUpsert(const storageAccount *a, const char *table, const char *pk, const char *rk,
                json_t *props, tableResult *r);

/* Called for each entity of a query (borrowed for the call). Return non-zero to stop. */
typedef int (*tableEntityFn)(json_t *entity, void *ctx);

/* Runs an OData query (filter may be NULL), following continuation, calling fn per entity. */
int tableQuery(const storageAccount *a, const char *table, const char *filter, tableEntityFn fn,
               void *ctx, tableResult *r);

/* tableQuery returning only the properties named in select (comma-separated, "$select"; NULL for
 * all). A page larger than the response cap is asked for again with half as many entities
 * ($top), down to one entity a page, so a table of large rows is read whole rather than taken for
 * an unreachable service. fn sees each entity as its page arrives (memory: one page at a time). */
int tableQuerySelect(const storageAccount *a, const char *table, const char *filter,
                     const char *select, tableEntityFn fn, void *ctx, tableResult *r);

/* 1 when key may be a PartitionKey or RowKey: valid UTF-8 of 1 to TABLE_KEY_UNITS UTF-16 code
 * units, none of / \ # ? and no control characters. */
int tableKeyValid(const char *key);

/* The length of len bytes of UTF-8 in UTF-16 code units (what Table Storage counts), or
 * (size_t)-1 when the text is not valid UTF-8. */
size_t tableUtf16Length(const char *text, size_t len);

/* The byte length of the longest prefix of text (len bytes, valid UTF-8) that takes at most
 * units UTF-16 code units and ends on a character boundary. */
size_t tableUtf16Prefix(const char *text, size_t len, size_t units);

/* Writes key as it goes inside '...' in a URL: quotes doubled, then percent-encoded (UTF-8).
 * Returns 0, or -1 when out is too small. */
int tableEscapeKey(const char *key, char *out, size_t outlen);

/* The Shared Key signature (base64) of one request, as Azure computes it:
 * VERB\nContent-MD5\nContent-Type\nx-ms-date\n/{account}{path}. Caller frees. */
char *tableSignature(const storageAccount *a, const char *verb, const char *content_type,
                     const char *date, const char *path);

/* One signed request with a body of any type (a $batch): resource is the escaped path after the
 * endpoint ("$batch"), content_type the body's (signed; NULL without a body). *resp receives the
 * answer, which the caller frees with httpcResponseFree whatever the result; *r the status, the
 * ETag and, on failure, x-ms-error-code. Returns an enum tableStatus. Counted in
 * tableRequestCount. */
int tableSend(const storageAccount *a, const char *method, const char *resource,
              const char *content_type, const void *body, size_t bodylen, size_t respcap,
              httpcResponse *resp, tableResult *r, const char *what);

/* Round trips made to Table Storage since start. */
unsigned long tableRequestCount(void);

/* Typed property helpers for entities being written (the @odata.type annotations Azurite and
 * Azure need so that 20.0 stays a Double and counts stay Int64). */
void tableSetDouble(json_t *e, const char *name, double v);
void tableSetInt64(json_t *e, const char *name, int64_t v);
void tableSetString(json_t *e, const char *name, const char *v);
void tableSetDateTime(json_t *e, const char *name, const char *iso8601);
/* An Edm.Binary property of len bytes (at most TABLE_BINARY_MAX). Returns 0 or -1 (OOM). */
int tableSetBinary(json_t *e, const char *name, const void *data, size_t len);

/* Reads an Int64 property, stored as a string ("12") or a number. def when absent or invalid. */
int64_t tableGetInt64(const json_t *e, const char *name, int64_t def);

#endif
