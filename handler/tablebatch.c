/* tablebatch: Table Storage entity group transactions ($batch): the multipart/mixed writer, the
 * bounded reader of the answer, and the call that sends one transaction.
 *
 * The request, as "Performing entity group transactions" (Azure Storage REST reference, read
 * 2026-12-02) describes it and @azure/data-tables writes it (github.com/Azure/azure-sdk-for-js,
 * sdk/tables/data-tables/src/TableTransaction.ts and utils/baseTransactionHeaders.ts, commits
 * 0d2ec9bc and 19bd1d4e): POST {endpoint}/$batch with Content-Type multipart/mixed;
 * boundary=batch_{id}; one batch part holding one changeset (multipart/mixed;
 * boundary=changeset_{id}); in it one application/http part per operation, each a whole HTTP/1.1
 * request with an absolute URL, its own headers (If-Match) and a one-line JSON body.
 *
 * The answer: 202 with Content-Type multipart/mixed; boundary=batchresponse_{id}, one changeset
 * (changesetresponse_{id}) with one application/http part per operation, in order, each with its
 * status line and ETag, when the transaction was applied (a recorded answer of a real account in
 * azure-sdk-for-js's tests, a fixture in tests/unit/test_tablebatch.c). The operations of a
 * changeset are applied atomically (the document above); when one fails, the answer is still 202
 * but the changeset holds one part: the failed operation's status and an OData error whose message
 * starts with its 0-based index ("1:..."): so Azurite writes it (github.com/Azure/Azurite commit
 * 9074bea3, src/table/batch/TableBatchSerialization.ts serializeError, after the document's
 * sample error response; it adds "Content-ID: {index+1}"). A request the service cannot read at
 * all, and on Cosmos DB some refused transactions (a row twice: azure-sdk-for-java
 * TableAsyncClientTest.java at 00024579), is a plain error status with an OData error body. */
#include "tablebatch.h"

#include "buf.h"
#include "crypto.h"
#include "httpc.h"
#include "table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENDPOINT_MAX 512
#define TABLE_NAME_MAX 63 /* Azure: 3 to 63 alphanumerics, a letter first */

struct tableBatch {
    char endpoint[ENDPOINT_MAX];
    char table[TABLE_NAME_MAX + 1];
    char pk[TABLE_KEY_MAX + 1];
    char boundary[64];  /* batch_{uuid} */
    char changeset[64]; /* changeset_{uuid} */
    char ctype[128];    /* multipart/mixed; boundary=batch_{uuid} */
    size_t maxbytes;
    size_t count;
    char *rks[TABLEBATCH_MAX_OPS];   /* each operation's RowKey, to refuse a row twice */
    buf parts;                       /* the changeset's parts, each "--changeset_..\r\n...\r\n" */
    buf part;                        /* the part being written (storage kept between operations) */
    char epk[TABLE_KEY_MAX * 6 + 1]; /* pk escaped for a URL, once */
    char *jpk;                       /* pk as a JSON string literal (ASCII), once */
};

static void setErr(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static int tableNameValid(const char *t) {
    size_t n = t ? strlen(t) : 0;
    if (n < 3 || n > TABLE_NAME_MAX) return 0;
    if (!((t[0] >= 'A' && t[0] <= 'Z') || (t[0] >= 'a' && t[0] <= 'z'))) return 0;
    for (size_t i = 1; i < n; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
              (t[i] >= '0' && t[i] <= '9')))
            return 0;
    return 1;
}

/* An etag goes verbatim into an If-Match header: printable ASCII, no line breaks. */
static int etagValid(const char *e) {
    size_t n = strlen(e);
    if (n == 0 || n >= TABLEBATCH_ETAG_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)e[i] < 0x20 || (unsigned char)e[i] > 0x7e) return 0;
    return 1;
}

/* 1 when the endpoint is the Cosmos DB Table API's: its host holds ".table.cosmos." or
 * ".table.cosmosdb." (the test @azure/data-tables makes, src/utils/isCosmosEndpoint.ts at
 * 0f43fdb7, github.com/Azure/azure-sdk-for-js). */
static int cosmos(const char *endpoint) {
    const char *h = strstr(endpoint, "://");
    h = h ? h + 3 : endpoint;
    size_t n = strcspn(h, "/:?");
    const char *marks[] = {".table.cosmos.", ".table.cosmosdb."};
    for (int i = 0; i < 2; i++) {
        const char *m = memmem(h, n, marks[i], strlen(marks[i]));
        if (m) return 1;
    }
    return 0;
}

static int makeId(char *out, size_t outlen, const char *prefix) {
    unsigned char r[16];
    if (cryptoRandomBytes(r, sizeof(r))) return -1;
    snprintf(out, outlen, "%s_%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             prefix, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
             r[12], r[13], r[14], r[15]);
    return 0;
}

tableBatch *tableBatchNew(const storageAccount *a, const char *table, const char *pk,
                          size_t maxbytes, char *err, size_t errlen) {
    if (!tableNameValid(table)) {
        setErr(err, errlen, "table name not allowed in Table Storage");
        return NULL;
    }
    if (!tableKeyValid(pk)) {
        setErr(err, errlen, "PartitionKey not allowed in Table Storage");
        return NULL;
    }
    if (strlen(a->endpoint) >= ENDPOINT_MAX) {
        setErr(err, errlen, "endpoint too long");
        return NULL;
    }
    tableBatch *b = calloc(1, sizeof(*b));
    if (!b) {
        setErr(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(b->endpoint, sizeof(b->endpoint), "%s", a->endpoint);
    snprintf(b->table, sizeof(b->table), "%s", table);
    snprintf(b->pk, sizeof(b->pk), "%s", pk);
    if (makeId(b->boundary, sizeof(b->boundary), "batch") ||
        makeId(b->changeset, sizeof(b->changeset), "changeset")) {
        free(b);
        setErr(err, errlen, "no random bytes for the boundaries");
        return NULL;
    }
    snprintf(b->ctype, sizeof(b->ctype), "multipart/mixed; boundary=%s", b->boundary);
    b->maxbytes = maxbytes              ? maxbytes
                  : cosmos(a->endpoint) ? TABLEBATCH_COSMOS_MAX_BYTES
                                        : TABLEBATCH_MAX_BYTES;
    bufInit(&b->parts, b->maxbytes);
    bufInit(&b->part, b->maxbytes);
    json_t *k = json_string(pk);
    b->jpk = k ? json_dumps(k, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    json_decref(k);
    if (!b->jpk || tableEscapeKey(pk, b->epk, sizeof(b->epk))) {
        setErr(err, errlen, b->jpk ? "PartitionKey too long" : "out of memory");
        tableBatchFree(b);
        return NULL;
    }
    return b;
}

void tableBatchFree(tableBatch *b) {
    if (!b) return;
    for (size_t i = 0; i < b->count; i++)
        free(b->rks[i]);
    bufFree(&b->parts);
    bufFree(&b->part);
    free(b->jpk);
    free(b);
}

size_t tableBatchCount(const tableBatch *b) { return b->count; }
const char *tableBatchRowKey(const tableBatch *b, size_t i) {
    return i < b->count ? b->rks[i] : NULL;
}
const char *tableBatchContentType(const tableBatch *b) { return b->ctype; }

/* The bytes around the parts: the batch part's head and the two closing delimiters. */
static size_t frameSize(const tableBatch *b) {
    return strlen("--\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n") + strlen(b->boundary) +
           strlen(b->changeset) + strlen("----\r\n") + strlen(b->changeset) + strlen("----\r\n") +
           strlen(b->boundary);
}

size_t tableBatchSize(const tableBatch *b) { return frameSize(b) + b->parts.len; }

char *tableBatchBody(const tableBatch *b, size_t *len) {
    buf out;
    bufInit(&out, tableBatchSize(b));
    if (bufPrintf(&out, "--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", b->boundary,
                  b->changeset) ||
        (b->parts.len && bufAppend(&out, b->parts.data, b->parts.len)) ||
        bufPrintf(&out, "--%s--\r\n--%s--\r\n", b->changeset, b->boundary))
        return NULL;
    *len = out.len;
    return bufDetach(&out);
}

/* Checks that props is an object whose PartitionKey and RowKey, where given, are the operation's;
 * *missing is set when an INSERT must add them. Returns 0 or -1 with err set. */
static int checkProps(const tableBatch *b, enum tableBatchOp op, const char *rk,
                      const json_t *props, int *missing, char *err, size_t errlen) {
    const char *keys[2] = {"PartitionKey", "RowKey"};
    const char *want[2] = {b->pk, rk};
    if (!json_is_object(props)) {
        setErr(err, errlen, "the properties are not a JSON object");
        return -1;
    }
    *missing = 0;
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(props, keys[i]);
        if (v && (!json_is_string(v) || strcmp(json_string_value(v), want[i]) != 0)) {
            setErr(err, errlen, "a key in the properties differs from the operation's");
            return -1;
        }
        *missing |= op == TABLEBATCH_INSERT && !v;
    }
    return 0;
}

static int appendCallback(const char *s, size_t n, void *data) {
    return bufAppend(data, s, n) ? -1 : 0;
}

/* Appends the JSON string of s (len bytes, UTF-8) to part, every character outside printable
 * ASCII as an escape (as JSON_ENSURE_ASCII). Returns 0, 1 when part's cap was reached or memory
 * ran out, -1 when s is not UTF-8 (then part may hold a partial string: the caller resets it). */
static int appendString(buf *part, const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
    const unsigned char *u = (const unsigned char *)s;
    if (bufAppend(part, "\"", 1)) return 1;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
            j++;
        if (j > i && bufAppend(part, s + i, j - i)) return 1;
        if (j == len) break;
        uint32_t c = u[j];
        size_t n = 1;
        if (c >= 0x80) {
            size_t more = c >= 0xf0 && c < 0xf5   ? 3
                          : c >= 0xe0 && c < 0xf0 ? 2
                          : c >= 0xc2 && c < 0xe0 ? 1
                                                  : 0;
            if (!more || more >= len - j) return -1;
            c &= 0x3fu >> more;
            for (size_t k = 1; k <= more; k++) {
                if ((u[j + k] & 0xc0) != 0x80) return -1;
                c = (c << 6) | (u[j + k] & 0x3fu);
            }
            if ((more == 2 && (c < 0x800 || (c >= 0xd800 && c < 0xe000))) ||
                (more == 3 && (c < 0x10000 || c > 0x10ffff)))
                return -1;
            n = more + 1;
        }
        char esc[12];
        size_t e = 0;
        if (c == '"' || c == '\\') {
            esc[e++] = '\\';
            esc[e++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            esc[e++] = '\\';
            esc[e++] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
        } else {
            uint32_t units[2] = {c, 0};
            int nu = 1;
            if (c > 0xffff) {
                units[0] = 0xd800 | ((c - 0x10000) >> 10);
                units[1] = 0xdc00 | ((c - 0x10000) & 0x3ff);
                nu = 2;
            }
            for (int k = 0; k < nu; k++) {
                esc[e++] = '\\';
                esc[e++] = 'u';
                for (int sh = 12; sh >= 0; sh -= 4)
                    esc[e++] = hex[(units[k] >> sh) & 15];
            }
        }
        if (bufAppend(part, esc, e)) return 1;
        i = j + n;
    }
    return bufAppend(part, "\"", 1) ? 1 : 0;
}

/* Appends the number v as jansson 2.14 writes a real (dump.c, jsonp_dtostr: "%.17g", ".0" when
 * neither a point nor an exponent, the exponent without '+' or leading zeros). Returns 0, 1 when
 * part's cap was reached or memory ran out, -1 for a value jansson refuses (not finite). */
static int appendReal(buf *part, double v) {
    char num[40];
    if (!isfinite(v)) return -1;
    int n = snprintf(num, sizeof(num), "%.17g", v);
    if (n <= 0 || (size_t)n + 3 > sizeof(num)) return -1;
    size_t len = (size_t)n;
    if (!strchr(num, '.') && !strchr(num, 'e')) {
        memcpy(num + len, ".0", 3);
        len += 2;
    }
    char *start = strchr(num, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-') start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len + 1 - (size_t)(end - num));
            len -= (size_t)(end - start);
        }
    }
    return bufAppend(part, num, len) ? 1 : 0;
}

/* Appends props as JSON when every value is a string, integer, boolean or null (what the handler
 * writes, reals too; jansson's dumper walked a string a code point at a time and showed in the
 * profile). Returns 0, 1 when part's cap was reached or memory ran out, -1 when props holds
 * anything else (then part is as it was: the caller dumps with jansson). */
static int appendFlat(const json_t *props, buf *part) {
    size_t at = part->len;
    const char *key;
    json_t *v;
    int first = 1, rc = 0;
    if (bufAppend(part, "{", 1)) return 1;
    json_object_foreach((json_t *)props, key, v) {
        char num[32];
        if (!first && bufAppend(part, ",", 1)) return 1;
        first = 0;
        if ((rc = appendString(part, key, strlen(key))) != 0) break;
        if (bufAppend(part, ":", 1)) return 1;
        switch (json_typeof(v)) {
        case JSON_STRING:
            rc = appendString(part, json_string_value(v), json_string_length(v));
            break;
        case JSON_INTEGER:
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            rc = bufAppend(part, num, strlen(num)) ? 1 : 0;
            break;
        case JSON_TRUE:
            rc = bufAppend(part, "true", 4) ? 1 : 0;
            break;
        case JSON_FALSE:
            rc = bufAppend(part, "false", 5) ? 1 : 0;
            break;
        case JSON_NULL:
            rc = bufAppend(part, "null", 4) ? 1 : 0;
            break;
        case JSON_REAL:
            rc = appendReal(part, json_real_value(v));
            break;
        default:
            rc = -1; /* a nested value: jansson's own dumper */
        }
        if (rc) break;
    }
    if (rc == -1) {
        part->len = at;
        part->data[at] = '\0';
    }
    if (rc) return rc;
    return bufAppend(part, "}", 1) ? 1 : 0;
}

/* Appends the JSON body of one operation to part: props, and for an INSERT without them the
 * keys first. One line of ASCII, as Azurite's reader needs: TableBatchSerialization.ts matches
 * the body with /{+.+}+/, whose '.' stops at a line end and at U+2028 and U+2029 too (a raw U+2028
 * in a string made Azurite 3.35.0 answer 500), so every non-ASCII character goes as \uXXXX.
 * Dumped straight into part (no copy of props). Returns nonzero when part's cap was reached or
 * memory ran out. */
static int appendJson(const tableBatch *b, const char *rk, const json_t *props, int keys,
                      buf *part) {
    size_t flags = JSON_COMPACT | JSON_ENSURE_ASCII;
    int flat;
    if (!keys) {
        if ((flat = appendFlat(props, part)) >= 0) return flat;
        return json_dump_callback(props, appendCallback, part, flags) != 0;
    }
    json_t *k = json_string(rk);
    char *jrk = k ? json_dumps(k, JSON_ENCODE_ANY | flags) : NULL;
    json_decref(k);
    int bad = !jrk || bufPrintf(part, "{\"PartitionKey\":%s,\"RowKey\":%s", b->jpk, jrk);
    free(jrk);
    if (bad) return 1;
    if (json_object_size(props) == 0) return bufAppend(part, "}", 1);
    size_t at = part->len;
    if ((flat = appendFlat(props, part)) > 0) return 1;
    if (flat < 0 && json_dump_callback(props, appendCallback, part, flags) != 0) return 1;
    part->data[at] = ','; /* the dumped object's '{' */
    return 0;
}

/* Checks an operation before it is written. Returns 0, or TABLEBATCH_INVALID / TABLEBATCH_FULL
 * with err set. */
static int addRefused(const tableBatch *b, enum tableBatchOp op, const char *rk, const char *etag,
                      char *err, size_t errlen) {
    const char *why = NULL;
    if ((unsigned)op > TABLEBATCH_DELETE)
        why = "unknown operation";
    else if (!tableKeyValid(rk))
        why = "RowKey not allowed in Table Storage";
    else if (op == TABLEBATCH_DELETE && !etag)
        why = "a DELETE needs an etag (or \"*\")";
    else if (op == TABLEBATCH_INSERT && etag)
        why = "an INSERT takes no etag";
    else if (etag && !etagValid(etag))
        why = "etag not usable in an If-Match header";
    for (size_t i = 0; !why && i < b->count; i++)
        if (strcmp(b->rks[i], rk) == 0)
            /* Azure refuses it (InvalidDuplicateRow): one operation per entity. */
            why = "the row is already in this transaction";
    if (why) {
        setErr(err, errlen, why);
        return TABLEBATCH_INVALID;
    }
    if (b->count >= TABLEBATCH_MAX_OPS) {
        setErr(err, errlen, "the transaction has 100 operations");
        return TABLEBATCH_FULL;
    }
    return 0;
}

static int appendText(buf *part, const char *s) { return bufAppend(part, s, strlen(s)); }

/* Writes one application/http part into part (erk: the escaped RowKey; props NULL for a
 * DELETE). *json is set to where the JSON body starts. Returns nonzero when part's cap was
 * reached. */
static int writePart(const tableBatch *b, enum tableBatchOp op, const char *rk, const char *erk,
                     const json_t *props, int keys, const char *etag, buf *part, size_t *json) {
    static const char *verbs[] = {"POST", "MERGE", "PUT", "DELETE"};
    int bad = appendText(part, "--") || appendText(part, b->changeset) ||
              appendText(part, "\r\nContent-Type: application/http\r\n"
                               "Content-Transfer-Encoding: binary\r\n\r\n");
    if (op == TABLEBATCH_INSERT)
        bad = bad || bufPrintf(part, "POST %s/%s HTTP/1.1\r\n", b->endpoint, b->table);
    else
        bad = bad || bufPrintf(part, "%s %s/%s(PartitionKey='%s',RowKey='%s') HTTP/1.1\r\n",
                               verbs[op], b->endpoint, b->table, b->epk, erk);
    bad = bad || appendText(part, "Accept: application/json;odata=nometadata\r\n"
                                  "DataServiceVersion: 3.0;\r\n");
    if (props) bad = bad || appendText(part, "Content-Type: application/json\r\n");
    if (op == TABLEBATCH_INSERT) bad = bad || appendText(part, "Prefer: return-no-content\r\n");
    if (etag) bad = bad || bufPrintf(part, "If-Match: %s\r\n", etag);
    bad = bad || appendText(part, "\r\n");
    *json = part->len;
    if (props) bad = bad || appendJson(b, rk, props, keys, part);
    return bad || appendText(part, "\r\n");
}

/* Appends a written part and remembers its RowKey. Returns TABLEBATCH_ADDED, or
 * TABLEBATCH_INVALID when memory ran out (then the transaction is emptied). */
static int keepPart(tableBatch *b, const char *rk, const buf *part, char *err, size_t errlen) {
    char *copy = strdup(rk);
    if (!copy || bufAppend(&b->parts, part->data, part->len)) {
        /* bufAppend cannot pass the cap here (checked by the caller): only memory ran out, and
         * then the parts are gone; forget every operation so the transaction stays consistent
         * (empty). */
        free(copy);
        for (size_t i = 0; i < b->count; i++)
            free(b->rks[i]);
        b->count = 0;
        bufFree(&b->parts);
        setErr(err, errlen, "out of memory (the transaction was emptied)");
        return TABLEBATCH_INVALID;
    }
    b->rks[b->count++] = copy;
    return TABLEBATCH_ADDED;
}

int tableBatchAdd(tableBatch *b, enum tableBatchOp op, const char *rk, const json_t *props,
                  const char *etag, char *err, size_t errlen) {
    char erk[TABLE_KEY_MAX * 6 + 1];
    buf *part = &b->part;
    size_t json = 0;
    int rc, keys = 0;
    bufReset(part);

    if ((rc = addRefused(b, op, rk, etag, err, errlen))) return rc;
    if (op == TABLEBATCH_DELETE)
        props = NULL;
    else if (checkProps(b, op, rk, props, &keys, err, errlen) != 0)
        return TABLEBATCH_INVALID;
    if (tableEscapeKey(rk, erk, sizeof(erk))) {
        setErr(err, errlen, "key too long");
        return TABLEBATCH_INVALID;
    }
    if (writePart(b, op, rk, erk, props, keys, etag, part, &json) ||
        frameSize(b) + part->len > b->maxbytes) {
        /* the cap was reached (bufAppend then freed part) or memory ran out */
        if (err && errlen)
            snprintf(err, errlen, "the operation alone is over the transaction's %zu bytes",
                     b->maxbytes);
        return TABLEBATCH_INVALID;
    }
    if (memmem(part->data + json, part->len - json, b->changeset, strlen(b->changeset))) {
        setErr(err, errlen, "the properties contain the transaction's boundary");
        return TABLEBATCH_INVALID;
    }
    if (tableBatchSize(b) + part->len > b->maxbytes) {
        if (err && errlen)
            snprintf(err, errlen, "the transaction would pass %zu bytes", b->maxbytes);
        return TABLEBATCH_FULL;
    }
    return keepPart(b, rk, part, err, errlen);
}

/* ---- reading the answer ---- */

typedef struct cursor {
    const char *p, *end;
} cursor;

/* The next line, without its CRLF or LF. Returns 0, or -1 when the text ends before a line end
 * (a truncated answer: every line of a well-formed answer, the last delimiter too, ends). */
static int nextLine(cursor *c, const char **line, size_t *n) {
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    if (!nl) return -1;
    *line = c->p;
    *n = (size_t)(nl - c->p);
    if (*n && (*line)[*n - 1] == '\r') (*n)--;
    c->p = nl + 1;
    return 0;
}

/* 1 when line is "--boundary", 2 when "--boundary--" (trailing blanks allowed), else 0. */
static int delimiter(const char *line, size_t n, const char *boundary) {
    size_t bl = strlen(boundary);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n < bl + 2 || line[0] != '-' || line[1] != '-' || memcmp(line + 2, boundary, bl) != 0)
        return 0;
    if (n == bl + 2) return 1;
    if (n == bl + 4 && line[bl + 2] == '-' && line[bl + 3] == '-') return 2;
    return 0;
}

/* When line is "Name: value" (name case-insensitive), copies the trimmed value into out and
 * returns 1; -1 when the value does not fit; 0 for another header. */
static int header(const char *line, size_t n, const char *name, char *out, size_t outlen) {
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) return 0;
    const char *v = line + nl + 1, *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if ((size_t)(e - v) >= outlen) return -1;
    memcpy(out, v, (size_t)(e - v));
    out[e - v] = '\0';
    return 1;
}

/* The boundary parameter of a multipart Content-Type value, quotes removed. Returns 0, or -1
 * when there is none or it is not 1 to 70 characters (RFC 2046 section 5.1.1). */
static int boundaryOf(const char *ctype, char *out, size_t outlen) {
    const char *p = ctype;
    if (!p) return -1;
    for (;;) {
        p = strchr(p, ';');
        if (!p) return -1;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) == 0) break;
    }
    p += 9;
    size_t n;
    if (*p == '"') {
        const char *q = strchr(++p, '"');
        if (!q) return -1;
        n = (size_t)(q - p);
    } else {
        n = strcspn(p, "; \t");
    }
    if (n == 0 || n > 70 || n >= outlen) return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* A failed operation's class. The REST document says a failed operation's part carries 400 with
 * the index in its error; Azurite (and, per the measurements, @azure/data-tables against
 * it) answers the operation's own status (412, 409, 404). Both are read the same way: the error
 * code names the cause when the status does not (Azurite's table-batch-api-error-handling.md,
 * tests/table/apis/, commit 9074bea3, lists the documented behaviour it checks against). */
static int classifyOp(long status, const char *code) {
    if (status == 400) {
        if (strcmp(code, "UpdateConditionNotSatisfied") == 0) return TABLE_PRECONDITION;
        if (strcmp(code, "EntityAlreadyExists") == 0) return TABLE_CONFLICT;
        if (strcmp(code, "ResourceNotFound") == 0) return TABLE_NOT_FOUND;
    }
    return tableStatusOf(status);
}

/* The operation index an error message starts with ("12:The ..."), or -1. */
static int messageIndex(const char *m) {
    int v = 0, digits = 0;
    while (m[digits] >= '0' && m[digits] <= '9' && digits < 4)
        v = v * 10 + (m[digits++] - '0');
    return digits && m[digits] == ':' ? v : -1;
}

/* Fills code and message from an OData error body ({"odata.error":{"code":..,"message":{"value":
 * ..}}}); a body that is not one is kept, cut, as the message. */
/* A service's text made fit for one log line: control characters become spaces. */
static void oneLine(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
}

static void odataError(const char *body, size_t len, tableBatchResult *res) {
    json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "odata.error");
    json_t *c = json_object_get(e, "code");
    json_t *m = json_object_get(json_object_get(e, "message"), "value");
    if (json_is_string(c)) snprintf(res->code, sizeof(res->code), "%s", json_string_value(c));
    if (json_is_string(m))
        snprintf(res->message, sizeof(res->message), "%s", json_string_value(m));
    else if (len)
        snprintf(res->message, sizeof(res->message), "%.*s", (int)(len < 200 ? len : 200), body);
    oneLine(res->code);
    oneLine(res->message);
    json_decref(j);
}

/* What the reader keeps of one sub-response beyond ops[]. */
typedef struct subinfo {
    long contentId; /* -1 when absent */
    const char *body;
    size_t bodylen;
} subinfo;

static int malformed(tableBatchResult *res, const char *why) {
    res->unknown = 1;
    res->failed = -1;
    snprintf(res->message, sizeof(res->message), "unreadable $batch answer: %s", why);
    return TABLE_ERROR;
}

/* Reads one application/http part, from its MIME headers (already read when mime is 0) to the
 * next delimiter of boundary (the delimiter line is consumed). Returns 1 when a part follows, 2
 * after the closing delimiter, or -1 with why set. */
static int readSub(cursor *c, const char *boundary, int mime, tableBatchOpResult *op, subinfo *si,
                   const char **why) {
    const char *line;
    size_t n;
    char tmp[32];
    si->contentId = -1;
    /* MIME headers of the part. */
    while (mime) {
        if (nextLine(c, &line, &n)) return *why = "it ends inside a part's headers", -1;
        if (n == 0) break;
        int h = header(line, n, "Content-ID", tmp, sizeof(tmp));
        if (h == 1) {
            char *end;
            long v = strtol(tmp, &end, 10);
            if (end != tmp && !*end && v >= 0 && v <= 100000) si->contentId = v;
        }
        if (delimiter(line, n, boundary)) return *why = "a part has no HTTP response", -1;
    }
    /* Status line: HTTP/1.1 412 Precondition Failed */
    if (nextLine(c, &line, &n)) return *why = "it ends before a status line", -1;
    if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' || line[9] < '1' ||
        line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
        (n > 12 && line[12] != ' '))
        return *why = "a part's status line is not HTTP/1.x NNN", -1;
    op->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    op->etag[0] = '\0';
    /* Response headers. */
    for (;;) {
        if (nextLine(c, &line, &n)) return *why = "it ends inside a sub-response's headers", -1;
        if (n == 0) break;
        if (delimiter(line, n, boundary)) return *why = "a sub-response's headers do not end", -1;
        if (header(line, n, "ETag", op->etag, sizeof(op->etag)) < 0)
            return *why = "an ETag is too long", -1;
    }
    /* Body: up to the line end before the next delimiter. */
    si->body = c->p;
    for (;;) {
        const char *start = c->p;
        if (nextLine(c, &line, &n)) return *why = "it ends inside a sub-response's body", -1;
        int d = delimiter(line, n, boundary);
        if (d) {
            const char *e = start;
            if (e > si->body && e[-1] == '\n') e--;
            if (e > si->body && e[-1] == '\r') e--;
            si->bodylen = (size_t)(e - si->body);
            return d;
        }
    }
}

/* The answer to a request refused as a whole (a status outside 2xx). */
static int parseRefused(long status, const char *body, size_t len, size_t nops,
                        tableBatchResult *res) {
    /* The service refused the request as a whole (nothing was applied), or, for 5xx and 408
     * (a timeout on its side), it may or may not have been applied. */
    odataError(body, len, res);
    res->unknown = status >= 500 || status == 408;
    if (res->message[0]) {
        int i = messageIndex(res->message);
        res->failed = i >= 0 && (size_t)i < nops ? i : -1;
    } else {
        snprintf(res->message, sizeof(res->message), "$batch: HTTP %ld", status);
    }
    res->failedStatus = status;
    return tableStatusOf(status);
}

/* Reads up to the end of the batch part's headers: the batch boundary into bb (from
 * content_type, or else the first line), and the changeset's boundary into cb when the part is
 * a changeset (*changeset set). Returns 0, or -1 with why set. */
static int readBatchHead(cursor *c, const char *content_type, char *bb, size_t bblen, char *cb,
                         size_t cblen, int *changeset, const char **why) {
    const char *line;
    size_t n;
    char tmp[160];
    if (boundaryOf(content_type, bb, bblen)) {
        /* No usable Content-Type: the first line names the boundary ("--batchresponse_..."). */
        cursor f = *c;
        if (nextLine(&f, &line, &n) || n < 3 || n > 72 || n - 2 >= bblen || line[0] != '-' ||
            line[1] != '-')
            return *why = "no multipart boundary", -1;
        memcpy(bb, line + 2, n - 2);
        bb[n - 2] = '\0';
    }
    /* Preamble, then the batch part's delimiter. */
    for (;;) {
        if (nextLine(c, &line, &n)) return *why = "no batch part", -1;
        int d = delimiter(line, n, bb);
        if (d == 2) return *why = "an empty batch", -1;
        if (d == 1) break;
    }
    /* The batch part's headers: a changeset (multipart/mixed) or one application/http part. */
    *changeset = 0;
    for (;;) {
        if (nextLine(c, &line, &n)) return *why = "it ends in the batch part's headers", -1;
        if (n == 0) break;
        int h = header(line, n, "Content-Type", tmp, sizeof(tmp));
        if (h < 0) return *why = "a Content-Type is too long", -1;
        if (h == 1 && strncasecmp(tmp, "multipart/mixed", 15) == 0) {
            if (boundaryOf(tmp, cb, cblen)) return *why = "a changeset boundary", -1;
            *changeset = 1;
        }
    }
    return 0;
}

/* Reads a changeset's parts into res->ops and sub, then the batch's closing delimiter. Returns
 * 0, or -1 with why set. */
static int readChangeset(cursor *c, const char *bb, const char *cb, tableBatchResult *res,
                         subinfo *sub, const char **why) {
    const char *line;
    size_t n;
    int more;
    for (;;) {
        if (nextLine(c, &line, &n)) return *why = "no changeset part", -1;
        if (delimiter(line, n, bb)) return *why = "an empty changeset", -1;
        int d = delimiter(line, n, cb);
        if (d == 2) return *why = "an empty changeset", -1;
        if (d == 1) break;
    }
    do {
        if (res->count == TABLEBATCH_MAX_OPS) return *why = "over 100 sub-responses", -1;
        more = readSub(c, cb, 1, &res->ops[res->count], &sub[res->count], why);
        if (more < 0) return -1;
        res->count++;
    } while (more == 1);
    /* The changeset is closed; the batch's closing delimiter must follow. */
    for (;;) {
        if (nextLine(c, &line, &n)) return *why = "no closing batch boundary", -1;
        int d = delimiter(line, n, bb);
        if (d == 2) break;
        if (d == 1) return *why = "a second batch part", -1;
    }
    return 0;
}

/* Sets res from the first sub-response outside 2xx, if any. Returns its class, or TABLE_OK when
 * every operation was applied (res->count == nops, else the answer is malformed). */
static int findFailed(size_t nops, const subinfo *sub, tableBatchResult *res) {
    char tmp[80];
    for (size_t k = 0; k < res->count; k++) {
        long st = res->ops[k].status;
        if (st >= 200 && st < 300) continue;
        /* The transaction was refused: this is the failed operation. */
        odataError(sub[k].body, sub[k].bodylen, res);
        int i = messageIndex(res->message);
        if (i < 0 && sub[k].contentId > 0) i = (int)sub[k].contentId - 1;
        if (i < 0 && res->count == nops) i = (int)k;
        res->failed = i >= 0 && (size_t)i < nops ? i : -1;
        res->failedStatus = st;
        if (!res->message[0])
            snprintf(res->message, sizeof(res->message), "operation %d: HTTP %ld", res->failed, st);
        return classifyOp(st, res->code);
    }
    if (res->count != nops) {
        snprintf(tmp, sizeof(tmp), "%zu operations answered of %zu", res->count, nops);
        return malformed(res, tmp);
    }
    return TABLE_OK;
}

int tableBatchParse(long status, const char *content_type, const char *body, size_t len,
                    size_t nops, tableBatchResult *res) {
    char bb[80], cb[80];
    const char *why = NULL;
    int changeset;
    subinfo sub[TABLEBATCH_MAX_OPS];
    memset(res, 0, sizeof(*res));
    res->status = status;
    res->failed = -1;
    if (!body) {
        body = "";
        len = 0;
    }
    if (status == 0) return malformed(res, "no answer");
    if (len > TABLEBATCH_RESPONSE_MAX) return malformed(res, "over 1 MiB");
    if (status < 200 || status > 299) return parseRefused(status, body, len, nops, res);

    cursor c = {body, body + len};
    if (readBatchHead(&c, content_type, bb, sizeof(bb), cb, sizeof(cb), &changeset, &why))
        return malformed(res, why);
    if (changeset) {
        if (readChangeset(&c, bb, cb, res, sub, &why)) return malformed(res, why);
    } else {
        int more = readSub(&c, bb, 0, &res->ops[0], &sub[0], &why);
        if (more < 0) return malformed(res, why);
        if (more == 1) return malformed(res, "a second batch part");
        res->count = 1;
    }
    return findFailed(nops, sub, res);
}

int tableBatchSubmit(const storageAccount *a, const tableBatch *b, tableBatchResult *res) {
    httpcResponse resp;
    tableResult r;
    char ctype[256];
    size_t len;
    if (b->count == 0) {
        memset(res, 0, sizeof(*res));
        res->failed = -1;
        return TABLE_OK;
    }
    char *body = tableBatchBody(b, &len);
    if (!body) {
        memset(res, 0, sizeof(*res));
        res->failed = -1;
        snprintf(res->message, sizeof(res->message), "$batch: out of memory");
        return TABLE_ERROR;
    }
    tableSend(a, "POST", "$batch", b->ctype, body, len, TABLEBATCH_RESPONSE_MAX, &resp, &r,
              "$batch");
    free(body);
    int c = tableBatchParse(resp.status, httpcHeader(&resp, "Content-Type", ctype, sizeof(ctype)),
                            resp.body.data, resp.body.len, b->count, res);
    if (resp.status == 0)
        snprintf(res->message, sizeof(res->message), "%s", r.message);
    else if (!res->code[0] && r.code[0])
        snprintf(res->code, sizeof(res->code), "%s", r.code);
    httpcResponseFree(&resp);
    return c;
}
