/* table: the Azure Table Storage REST client (Azure, Azurite and the Cosmos DB Table API speak
 * it): Shared Key and SAS signing, get, insert, merge with If-Match, upsert, query with
 * continuation, key escaping, typed properties. */
#include "table.h"

#include "buf.h"
#include "crypto.h"
#include "escape.h"
#include "httpc.h"
#include "utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMEOUT_MS 10000L
#define ENTITY_CAP (1 << 20)
#define PAGE_CAP (8 << 20)
#define URL_MAX 8192

/* ---- keys ---- */

size_t tableUtf16Length(const char *text, size_t len) {
    const unsigned char *p = (const unsigned char *)text;
    size_t units = 0, used;
    for (size_t i = 0; i < len; i += used) {
        long cp = utf8Next(p + i, len - i, &used);
        if (cp < 0) return (size_t)-1;
        units += cp >= 0x10000 ? 2 : 1;
    }
    return units;
}

size_t tableUtf16Prefix(const char *text, size_t len, size_t units) {
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0, u = 0, used;
    while (i < len) {
        long cp = utf8Next(p + i, len - i, &used);
        size_t w = cp >= 0x10000 ? 2 : 1;
        if (cp < 0 || u + w > units) break;
        u += w;
        i += used;
    }
    return i;
}

int tableKeyValid(const char *key) {
    if (!key || !*key) return 0;
    size_t len = strlen(key), used, units = 0;
    const unsigned char *p = (const unsigned char *)key;
    for (size_t i = 0; i < len; i += used) {
        long cp = utf8Next(p + i, len - i, &used);
        if (cp < 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == '/' ||
            cp == '\\' || cp == '#' || cp == '?')
            return 0;
        units += cp >= 0x10000 ? 2 : 1;
        if (units > TABLE_KEY_UNITS) return 0;
    }
    return 1;
}

/* Appends key as it goes between the quotes of PartitionKey='...' in a URL: quotes doubled (an
 * OData string), then percent-encoded. Returns 0, or -1 with b freed. */
static int appendKey(buf *b, const char *key) {
    buf d;
    bufInit(&d, b->cap);
    if (escapeODataString(&d, key, 0) != 0) {
        bufFree(b);
        return -1;
    }
    int rc = escapePercent(b, d.data, d.len);
    bufFree(&d);
    return rc;
}

int tableEscapeKey(const char *key, char *out, size_t outlen) {
    buf b;
    if (outlen == 0) return -1;
    bufInit(&b, outlen - 1);
    if (appendKey(&b, key) != 0) return -1;
    memcpy(out, b.data, b.len + 1);
    bufFree(&b);
    return 0;
}

/* ---- signing and requests ---- */

static unsigned long requests; /* round trips made, for the benchmark's figures */

unsigned long tableRequestCount(void) { return __atomic_load_n(&requests, __ATOMIC_RELAXED); }

char *tableSignature(const storageAccount *a, const char *verb, const char *content_type,
                     const char *date, const char *path) {
    unsigned char mac[CRYPTO_SHA256_LEN];
    buf sts;
    bufInit(&sts, URL_MAX * 2);
    if (bufPrintf(&sts, "%s\n\n%s\n%s\n/%s%s", verb, content_type ? content_type : "", date,
                  a->account, path) != 0)
        return NULL;
    int rc = cryptoHmacSha256(a->key, a->keylen, sts.data, sts.len, mac);
    bufFree(&sts);
    return rc == 0 ? cryptoBase64Encode(mac, sizeof(mac)) : NULL;
}

/* The path part of the endpoint ("/devstoreaccount1" on Azurite, "" on Azure). */
static const char *endpointPath(const storageAccount *a) {
    const char *p = strstr(a->endpoint, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    return p ? p : "";
}

static void setError(tableResult *r, const httpcResponse *resp, const char *what) {
    r->status = resp->status;
    if (!resp->status) {
        snprintf(r->message, sizeof(r->message), "%s: %s", what, resp->error);
        return;
    }
    if (!httpcHeader(resp, "x-ms-error-code", r->code, sizeof(r->code))) {
        /* Some services put the code only in the body. */
        json_t *j = resp->body.data ? json_loads(resp->body.data, 0, NULL) : NULL;
        json_t *c = json_object_get(json_object_get(j, "odata.error"), "code");
        snprintf(r->code, sizeof(r->code), "%s", json_is_string(c) ? json_string_value(c) : "");
        json_decref(j);
    }
    snprintf(r->message, sizeof(r->message), "%s: HTTP %ld %s", what, resp->status, r->code);
    /* Deterministic refusals: the same request gets the same answer (PropertyValueTooLarge,
     * EntityTooLarge, InvalidInput, a URI or header too long). 401/403 are not among them: they
     * change when an operator fixes a key, so they stay transient. */
    r->permanent =
        resp->status == 400 || resp->status == 413 || resp->status == 414 || resp->status == 431;
    /* The code the service gives a request to a table that does not exist: TableNotFound
     * (Azure.Data.Tables TableErrorCode.TableNotFound, learn.microsoft.com, read 2026-12-02),
     * with a 404 (Azurite does the same: tests/integration/failure.test.mjs deletes a table
     * under a running handler). */
    r->tableGone = resp->status == 404 && strcmp(r->code, "TableNotFound") == 0;
}

int tableStatusOf(long status) {
    if (status >= 200 && status < 300) return TABLE_OK;
    if (status == 404) return TABLE_NOT_FOUND;
    if (status == 409) return TABLE_CONFLICT;
    if (status == 412) return TABLE_PRECONDITION;
    return TABLE_ERROR;
}

/* One signed request. resource: the path after the endpoint, already escaped ("DeviceState()").
 * query: without '?', may be NULL. extra: one more header or NULL. ctype: the body's Content-Type
 * (signed), NULL without a body. On return *resp holds the answer (caller frees). Returns the
 * classification. */
static int sendRequest(const storageAccount *a, const char *method, const char *resource,
                       const char *query, const char *extra, const char *ctype, const void *body,
                       size_t bodylen, size_t respcap, httpcResponse *resp, tableResult *r,
                       const char *what) {
    char url[URL_MAX], path[URL_MAX], date[64], auth[512] = "", xdate[80], cth[256];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(xdate, sizeof(xdate), "x-ms-date: %s", date);
    memset(r, 0, sizeof(*r));

    int n = snprintf(path, sizeof(path), "%s/%s", endpointPath(a), resource);
    int m = snprintf(url, sizeof(url), "%s/%s%s%s%s%s", a->endpoint, resource,
                     (query && *query) || a->sas[0] ? "?" : "", query ? query : "",
                     query && *query && a->sas[0] ? "&" : "", a->sas);
    if (n < 0 || (size_t)n >= sizeof(path) || m < 0 || (size_t)m >= sizeof(url)) {
        snprintf(r->message, sizeof(r->message), "%s: request URL too long", what);
        r->permanent = 1;
        memset(resp, 0, sizeof(*resp));
        return TABLE_ERROR;
    }
    if (ctype) snprintf(cth, sizeof(cth), "Content-Type: %s", ctype);
    if (!a->sas[0]) {
        char *sig = tableSignature(a, method, ctype ? ctype : "", date, path);
        if (!sig) {
            snprintf(r->message, sizeof(r->message), "%s: signing failed", what);
            memset(resp, 0, sizeof(*resp));
            return TABLE_ERROR;
        }
        snprintf(auth, sizeof(auth), "Authorization: SharedKey %s:%s", a->account, sig);
        free(sig);
    }
    const char *headers[10];
    int h = 0;
    headers[h++] = xdate;
    headers[h++] = "x-ms-version: 2019-02-02";
    headers[h++] = "Accept: application/json;odata=nometadata";
    headers[h++] = "DataServiceVersion: 3.0;NetFx";
    headers[h++] = "MaxDataServiceVersion: 3.0;NetFx";
    if (auth[0]) headers[h++] = auth;
    if (ctype) headers[h++] = cth;
    if (extra) headers[h++] = extra;
    headers[h] = NULL;

    __atomic_add_fetch(&requests, 1, __ATOMIC_RELAXED);
    httpcRequest(method, url, headers, body, bodylen, respcap, TIMEOUT_MS, resp);
    int c = tableStatusOf(resp->status);
    httpcHeader(resp, "ETag", r->etag, sizeof(r->etag));
    if (c != TABLE_OK)
        setError(r, resp, what);
    else
        r->status = resp->status;
    return c;
}

static int request(const storageAccount *a, const char *method, const char *resource,
                   const char *query, const char *extra, const char *body, size_t respcap,
                   httpcResponse *resp, tableResult *r, const char *what) {
    return sendRequest(a, method, resource, query, extra, body ? "application/json" : NULL, body,
                       body ? strlen(body) : 0, respcap, resp, r, what);
}

int tableSend(const storageAccount *a, const char *method, const char *resource,
              const char *content_type, const void *body, size_t bodylen, size_t respcap,
              httpcResponse *resp, tableResult *r, const char *what) {
    return sendRequest(a, method, resource, NULL, NULL, content_type, body, bodylen, respcap, resp,
                       r, what);
}

static int entityResource(const char *table, const char *pk, const char *rk, char *out,
                          size_t outlen) {
    buf b;
    bufInit(&b, outlen - 1);
    if (bufPrintf(&b, "%s(PartitionKey='", table) || appendKey(&b, pk) ||
        bufAppend(&b, "',RowKey='", 10) || appendKey(&b, rk) || bufAppend(&b, "')", 2))
        return -1;
    memcpy(out, b.data, b.len + 1);
    bufFree(&b);
    return 0;
}

static int badKeys(const char *pk, const char *rk, tableResult *r) {
    memset(r, 0, sizeof(*r));
    if (tableKeyValid(pk) && tableKeyValid(rk)) return 0;
    snprintf(r->message, sizeof(r->message), "key not allowed in Table Storage");
    r->permanent = 1;
    return 1;
}

int tableCreate(const storageAccount *a, const char *table, tableResult *r) {
    httpcResponse resp;
    json_t *j = json_pack("{s:s}", "TableName", table);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        memset(r, 0, sizeof(*r));
        snprintf(r->message, sizeof(r->message), "out of memory");
        return TABLE_ERROR;
    }
    int c = request(a, "POST", "Tables", NULL, "Prefer: return-no-content", body, ENTITY_CAP, &resp,
                    r, "create table");
    free(body);
    httpcResponseFree(&resp);
    return c == TABLE_CONFLICT ? TABLE_OK : c;
}

int tableGetEntity(const storageAccount *a, const char *table, const char *pk, const char *rk,
                   json_t **entity, tableResult *r) {
    char res[URL_MAX];
    httpcResponse resp;
    *entity = NULL;
    if (badKeys(pk, rk, r)) return TABLE_ERROR;
    if (entityResource(table, pk, rk, res, sizeof(res))) {
        snprintf(r->message, sizeof(r->message), "key too long");
        r->permanent = 1;
        return TABLE_ERROR;
    }
    int c = request(a, "GET", res, NULL, NULL, NULL, ENTITY_CAP, &resp, r, "get");
    if (c == TABLE_OK) {
        *entity = resp.body.data ? json_loads(resp.body.data, 0, NULL) : NULL;
        if (!json_is_object(*entity)) {
            json_decref(*entity);
            *entity = NULL;
            snprintf(r->message, sizeof(r->message), "get: the answer is not a JSON entity");
            c = TABLE_ERROR;
        }
    }
    httpcResponseFree(&resp);
    return c;
}

static int writeEntity(const storageAccount *a, const char *method, const char *resource,
                       const char *extra, json_t *props, tableResult *r, const char *what) {
    httpcResponse resp;
    char *body = json_dumps(props, JSON_COMPACT);
    if (!body) {
        memset(r, 0, sizeof(*r));
        snprintf(r->message, sizeof(r->message), "%s: cannot encode the entity", what);
        return TABLE_ERROR;
    }
    int c = request(a, method, resource, NULL, extra, body, ENTITY_CAP, &resp, r, what);
    free(body);
    httpcResponseFree(&resp);
    return c;
}

int tableInsert(const storageAccount *a, const char *table, json_t *entity, tableResult *r) {
    const char *pk = json_string_value(json_object_get(entity, "PartitionKey"));
    const char *rk = json_string_value(json_object_get(entity, "RowKey"));
    if (badKeys(pk, rk, r)) return TABLE_ERROR;
    return writeEntity(a, "POST", table, "Prefer: return-no-content", entity, r, "insert");
}

int tableMerge(const storageAccount *a, const char *table, const char *pk, const char *rk,
               json_t *props, const char *etag, tableResult *r) {
    char res[URL_MAX], ifm[200];
    if (badKeys(pk, rk, r)) return TABLE_ERROR;
    if (entityResource(table, pk, rk, res, sizeof(res))) {
        snprintf(r->message, sizeof(r->message), "key too long");
        r->permanent = 1;
        return TABLE_ERROR;
    }
    if (etag) snprintf(ifm, sizeof(ifm), "If-Match: %s", etag);
    return writeEntity(a, "MERGE", res, etag ? ifm : NULL, props, r, "merge");
}

int tableUpsert(const storageAccount *a, const char *table, const char *pk, const char *rk,
                json_t *props, tableResult *r) {
    char res[URL_MAX];
    if (badKeys(pk, rk, r)) return TABLE_ERROR;
    if (entityResource(table, pk, rk, res, sizeof(res))) {
        snprintf(r->message, sizeof(r->message), "key too long");
        r->permanent = 1;
        return TABLE_ERROR;
    }
    return writeEntity(a, "PUT", res, NULL, props, r, "upsert");
}

int tableQuery(const storageAccount *a, const char *table, const char *filter, tableEntityFn fn,
               void *ctx, tableResult *r) {
    return tableQuerySelect(a, table, filter, NULL, fn, ctx, r);
}

int tableQuerySelect(const storageAccount *a, const char *table, const char *filter,
                     const char *select, tableEntityFn fn, void *ctx, tableResult *r) {
    char npk[TABLE_KEY_MAX * 3 + 1] = "", nrk[TABLE_KEY_MAX * 3 + 1] = "";
    char res[128];
    int c = TABLE_OK;
    int top = 0; /* entities a page; 0: the service's default (at most 1,000) */
    snprintf(res, sizeof(res), "%s()", table);
    for (;;) {
        buf q;
        httpcResponse resp;
        bufInit(&q, URL_MAX);
        if (filter && (bufAppend(&q, "$filter=", 8) || escapePercent(&q, filter, strlen(filter))))
            goto too_long;
        if (select && (bufPrintf(&q, "%s$select=", q.len ? "&" : "") ||
                       escapePercent(&q, select, strlen(select))))
            goto too_long;
        if (top && bufPrintf(&q, "%s$top=%d", q.len ? "&" : "", top)) goto too_long;
        if (npk[0] && (bufPrintf(&q, "%sNextPartitionKey=", q.len ? "&" : "") ||
                       escapePercent(&q, npk, strlen(npk))))
            goto too_long;
        if (nrk[0] && (bufAppend(&q, "&NextRowKey=", 12) || escapePercent(&q, nrk, strlen(nrk))))
            goto too_long;
        c = request(a, "GET", res, q.data, NULL, NULL, PAGE_CAP, &resp, r, "query");
        bufFree(&q);
        if (c != TABLE_OK && resp.tooLarge && top != 1) {
            /* The page, not the service, is the problem: the same page again, smaller. */
            httpcResponseFree(&resp);
            top = top ? top / 2 : 500;
            continue;
        }
        if (c != TABLE_OK) {
            httpcResponseFree(&resp);
            return c;
        }
        json_t *page = resp.body.data ? json_loads(resp.body.data, 0, NULL) : NULL;
        json_t *value = json_object_get(page, "value");
        if (!json_is_array(value)) {
            json_decref(page);
            httpcResponseFree(&resp);
            snprintf(r->message, sizeof(r->message), "query: the answer has no 'value' array");
            return TABLE_ERROR;
        }
        size_t i;
        json_t *e;
        int stop = 0;
        json_array_foreach(value, i, e) {
            if (fn && fn(e, ctx)) {
                stop = 1;
                break;
            }
        }
        json_decref(page);
        if (!httpcHeader(&resp, "x-ms-continuation-NextPartitionKey", npk, sizeof(npk)))
            npk[0] = '\0';
        if (!httpcHeader(&resp, "x-ms-continuation-NextRowKey", nrk, sizeof(nrk))) nrk[0] = '\0';
        httpcResponseFree(&resp);
        if (stop || !npk[0]) return TABLE_OK;
        continue;
    too_long:
        bufFree(&q);
        memset(r, 0, sizeof(*r));
        snprintf(r->message, sizeof(r->message), "query: filter too long");
        r->permanent = 1;
        return TABLE_ERROR;
    }
}

/* ---- typed properties ---- */

static void annotate(json_t *e, const char *name, const char *type) {
    char key[256];
    snprintf(key, sizeof(key), "%s@odata.type", name);
    json_object_set_new(e, key, json_string(type));
}

void tableSetDouble(json_t *e, const char *name, double v) {
    json_object_set_new(e, name, json_real(v));
    annotate(e, name, "Edm.Double");
}

void tableSetInt64(json_t *e, const char *name, int64_t v) {
    char s[32];
    snprintf(s, sizeof(s), "%" PRId64, v);
    json_object_set_new(e, name, json_string(s));
    annotate(e, name, "Edm.Int64");
}

void tableSetString(json_t *e, const char *name, const char *v) {
    json_object_set_new(e, name, json_string(v));
}

void tableSetDateTime(json_t *e, const char *name, const char *iso8601) {
    json_object_set_new(e, name, json_string(iso8601));
    annotate(e, name, "Edm.DateTime");
}

int tableSetBinary(json_t *e, const char *name, const void *data, size_t len) {
    char *b64 = len <= TABLE_BINARY_MAX ? cryptoBase64Encode(data, len) : NULL;
    if (!b64 || json_object_set_new(e, name, json_string(b64)) != 0) {
        free(b64);
        return -1;
    }
    free(b64);
    annotate(e, name, "Edm.Binary");
    return 0;
}

int64_t tableGetInt64(const json_t *e, const char *name, int64_t def) {
    json_t *v = json_object_get(e, name);
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        long long x = strtoll(s, &end, 10);
        if (end != s && !*end) return (int64_t)x;
    }
    return def;
}
