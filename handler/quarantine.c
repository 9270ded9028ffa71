/* quarantine: keeps, whole, what the handler cannot process but must not lose: an invocation
 * whose envelope cannot be read (or cannot be made exactly-once), and a rejected reading too
 * large for one row. Kept in Table Storage as chunk rows of Edm.Binary properties under one id. */
#include "quarantine.h"

#include "clock.h"
#include "crypto.h"
#include "invocation.h"
#include "table.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void quarantineId(const char *prefix, const void *data, size_t len, char *out) {
    static const char key[] = "enviromon-quarantine";
    unsigned char mac[CRYPTO_SHA256_LEN];
    char hex[33];
    if (cryptoHmacSha256(key, sizeof(key) - 1, data, len, mac) != 0) {
        /* cannot hash: a time-based id, still unique */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(out, QUARANTINE_ID_LEN, "%s%016" PRIx64 "%016lx", prefix, (uint64_t)ts.tv_sec,
                 (unsigned long)ts.tv_nsec);
        return;
    }
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    snprintf(out, QUARANTINE_ID_LEN, "%s%s", prefix, hex);
}

static int statusOf(int c, const tableResult *r) {
    if (c == TABLE_OK) return QUARANTINE_OK;
    if (r->tableGone) return QUARANTINE_TABLE_GONE;
    return r->permanent ? QUARANTINE_REFUSED : QUARANTINE_TRANSIENT;
}

/* Writes one chunk row of n bytes. Returns an enum quarantineStatus. */
static int writeChunk(const storageAccount *a, const char *table, const char *id, size_t index,
                      const char *bytes, size_t n, char *err, size_t errlen) {
    char rk[32];
    tableResult r;
    json_t *p = json_object();
    int rc = QUARANTINE_TRANSIENT;
    snprintf(rk, sizeof(rk), "chunk-%06zu", index);
    if (!p) goto out;
    tableSetInt64(p, "Bytes", (int64_t)n);
    for (size_t part = 0, off = 0; off < n; part++) {
        char name[16];
        size_t take = n - off < TABLE_BINARY_MAX ? n - off : TABLE_BINARY_MAX;
        snprintf(name, sizeof(name), "Data%zu", part);
        if (tableSetBinary(p, name, bytes + off, take) != 0) goto out;
        off += take;
    }
    rc = statusOf(tableUpsert(a, table, id, rk, p, &r), &r);
    if (rc != QUARANTINE_OK) snprintf(err, errlen, "quarantine %s %s: %s", id, rk, r.message);
out:
    if (rc != QUARANTINE_OK && !p) snprintf(err, errlen, "quarantine %s: out of memory", id);
    json_decref(p);
    return rc;
}

int quarantineKeep(const storageAccount *a, const char *table, const char *id,
                   const quarantineItem *q, const char *data, size_t len, FILE *f, char *err,
                   size_t errlen) {
    char *chunk = NULL, when[40];
    size_t chunks = 0;
    int64_t total = 0;
    int rc = QUARANTINE_TRANSIENT;
    json_t *h = NULL;
    tableResult r;

    if (!data) {
        chunk = malloc(QUARANTINE_CHUNK_BYTES);
        if (!chunk) {
            snprintf(err, errlen, "quarantine %s: out of memory", id);
            goto out;
        }
    }
    for (;;) {
        const char *bytes;
        size_t n;
        if (data) {
            n = len - (size_t)total < QUARANTINE_CHUNK_BYTES ? len - (size_t)total
                                                             : QUARANTINE_CHUNK_BYTES;
            bytes = data + total;
        } else {
            n = fread(chunk, 1, QUARANTINE_CHUNK_BYTES, f);
            if (ferror(f)) {
                snprintf(err, errlen, "quarantine %s: cannot read the spooled body", id);
                goto out;
            }
            bytes = chunk;
        }
        if (n == 0) break;
        rc = writeChunk(a, table, id, ++chunks, bytes, n, err, errlen);
        if (rc != QUARANTINE_OK) goto out;
        rc = QUARANTINE_TRANSIENT;
        total += (int64_t)n;
    }

    h = json_object();
    if (!h) goto out;
    tableSetString(h, "Reason", q->reason);
    tableSetString(h, "EventHubPartition", q->partition ? q->partition : "");
    if (q->hasSeqRange) {
        tableSetInt64(h, "SequenceFirst", q->seqFirst);
        tableSetInt64(h, "SequenceLast", q->seqLast);
    }
    tableSetInt64(h, "Bytes", total);
    tableSetInt64(h, "Chunks", (int64_t)chunks);
    if (q->invocationId && tableUtf16Length(q->invocationId, strlen(q->invocationId)) <= 256)
        tableSetString(h, "InvocationId", q->invocationId);
    invocationFormatTime(clockWallMs(), when, sizeof(when));
    tableSetDateTime(h, "ReceivedAt", when);
    rc = statusOf(tableUpsert(a, table, id, "batch", h, &r), &r);
    if (rc != QUARANTINE_OK) snprintf(err, errlen, "quarantine %s header: %s", id, r.message);
out:
    json_decref(h);
    free(chunk);
    return rc;
}
