/* Unit tests: tablebatch (the $batch request writer and the bounded response reader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "settings.h"
#include "table.h"
#include "tablebatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEV_CS "UseDevelopmentStorage=true"

/* The responses are written with "\n" for readability; the services send "\r\n". */
static char *crlf(const char *s, size_t *len) {
    size_t n = strlen(s), o = 0;
    char *out = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') out[o++] = '\r';
        out[o++] = s[i];
    }
    out[o] = '\0';
    *len = o;
    return out;
}

#define AZ_CT "multipart/mixed; boundary=batchresponse_11111111-2222-3333-4444-555555555555"

/* What Azurite 3.35.0 answers to a transaction of two MERGEs (its serializeResponses and
 * serializeTableMergeEntityBatchResponse, github.com/Azure/Azurite src/table/batch/). */
static const char AZURITE_OK[] =
    "--batchresponse_11111111-2222-3333-4444-555555555555\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_aaaa-bbbb\n"
    "\n"
    "--changesetresponse_aaaa-bbbb\n"
    "Content-Type: application/http\n"
    "Content-Transfer-Encoding: binary\n"
    "\n"
    "HTTP/1.1 204 No Content\n"
    "X-Content-Type-Options: nosniff\n"
    "Cache-Control: no-cache\n"
    "DataServiceVersion: 3.0;\n"
    "ETag: W/\"datetime'2026-12-02T13%3A13%3A08.7706784Z'\"\n"
    "\n"
    "\n"
    "--changesetresponse_aaaa-bbbb\n"
    "Content-Type: application/http\n"
    "Content-Transfer-Encoding: binary\n"
    "\n"
    "HTTP/1.1 204 No Content\n"
    "X-Content-Type-Options: nosniff\n"
    "Cache-Control: no-cache\n"
    "DataServiceVersion: 3.0;\n"
    "ETag: W/\"datetime'2026-12-02T13%3A13%3A08.7706789Z'\"\n"
    "\n"
    "\n"
    "--changesetresponse_aaaa-bbbb--\n"
    "--batchresponse_11111111-2222-3333-4444-555555555555--\n";

/* Azure's answer to three DELETEs, as recorded by azure-sdk-for-js's tests against a real
 * account (nock recording of batchTableTestSASConnectionStringnode, 2021-06-04). */
static const char AZURE_OK[] = "--batchresponse_0e4a8e7e-c06b-41f1-93e5-3a84801abeb2\n"
                               "Content-Type: multipart/mixed; "
                               "boundary=changesetresponse_9f199607-e070-4712-a44f-eb57a93bf295\n"
                               "\n"
                               "--changesetresponse_9f199607-e070-4712-a44f-eb57a93bf295\n"
                               "Content-Type: application/http\n"
                               "Content-Transfer-Encoding: binary\n"
                               "\n"
                               "HTTP/1.1 204 No Content\n"
                               "X-Content-Type-Options: nosniff\n"
                               "Cache-Control: no-cache\n"
                               "DataServiceVersion: 1.0;\n"
                               "\n"
                               "\n"
                               "--changesetresponse_9f199607-e070-4712-a44f-eb57a93bf295\n"
                               "Content-Type: application/http\n"
                               "Content-Transfer-Encoding: binary\n"
                               "\n"
                               "HTTP/1.1 204 No Content\n"
                               "DataServiceVersion: 1.0;\n"
                               "\n"
                               "\n"
                               "--changesetresponse_9f199607-e070-4712-a44f-eb57a93bf295\n"
                               "Content-Type: application/http\n"
                               "Content-Transfer-Encoding: binary\n"
                               "\n"
                               "HTTP/1.1 204 No Content\n"
                               "DataServiceVersion: 1.0;\n"
                               "\n"
                               "\n"
                               "--changesetresponse_9f199607-e070-4712-a44f-eb57a93bf295--\n"
                               "--batchresponse_0e4a8e7e-c06b-41f1-93e5-3a84801abeb2--\n";
#define AZURE_CT "multipart/mixed; boundary=batchresponse_0e4a8e7e-c06b-41f1-93e5-3a84801abeb2"

/* Azurite refusing a transaction whose first operation's etag is stale (serializeError). */
static const char AZURITE_412[] =
    "--batchresponse_11111111-2222-3333-4444-555555555555\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_aaaa-bbbb\n"
    "\n"
    "--changesetresponse_aaaa-bbbb\n"
    "Content-Type: application/http\n"
    "Content-Transfer-Encoding: binary\n"
    "\n"
    "HTTP/1.1 412 Precondition Failed\n"
    "Content-ID: 1\n"
    "DataServiceVersion: 3.0;\n"
    "Content-Type: application/json;odata=minimalmetadata;charset=utf-8\n"
    "\n"
    "{\"odata.error\":{\"code\":\"UpdateConditionNotSatisfied\",\"message\":{\"lang\":\"en-US\","
    "\"value\":\"0:The update condition specified in the request was not satisfied.\\n"
    "RequestId:x\\nTime:2026-12-02T13:00:00.000Z\"}}}\n"
    "--changesetresponse_aaaa-bbbb--\n"
    "--batchresponse_11111111-2222-3333-4444-555555555555--\n";

/* The shape of Azure's documented error answer: the failed operation's index leads the message
 * ("Performing entity group transactions", sample error response). */
static const char AZURE_400[] =
    "--batchresponse_11111111-2222-3333-4444-555555555555\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_cccc\n"
    "\n"
    "--changesetresponse_cccc\n"
    "Content-Type: application/http\n"
    "Content-Transfer-Encoding: binary\n"
    "\n"
    "HTTP/1.1 400 Bad Request\n"
    "Content-ID: 2\n"
    "X-Content-Type-Options: nosniff\n"
    "DataServiceVersion: 1.0;\n"
    "Content-Type: application/json\n"
    "\n"
    "{\"odata.error\":{\"code\":\"InvalidInput\",\"message\":{\"lang\":\"en-US\",\"value\":\"1:One "
    "of "
    "the request inputs is not valid.\\nRequestId:y\\nTime:2026-12-02T13:00:00.000Z\"}}}\n"
    "--changesetresponse_cccc--\n"
    "--batchresponse_11111111-2222-3333-4444-555555555555--\n";

/* No index in the message: the Content-ID (1-based) names the operation. */
static const char CONTENT_ID_ONLY[] =
    "--batchresponse_11111111-2222-3333-4444-555555555555\n"
    "Content-Type: multipart/mixed; boundary=\"changesetresponse_dddd\"\n"
    "\n"
    "--changesetresponse_dddd\n"
    "Content-Type: application/http\n"
    "Content-ID: 3\n"
    "\n"
    "HTTP/1.1 404 Not Found\n"
    "\n"
    "{\"odata.error\":{\"code\":\"ResourceNotFound\",\"message\":{\"value\":\"gone\"}}}\n"
    "--changesetresponse_dddd--\n"
    "--batchresponse_11111111-2222-3333-4444-555555555555--\n";

/* The documented shape: a stale etag answered as 400 with the cause in the code. */
static const char DOC_400_STALE[] =
    "--batchresponse_11111111-2222-3333-4444-555555555555\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_eeee\n"
    "\n"
    "--changesetresponse_eeee\n"
    "Content-Type: application/http\n"
    "Content-Transfer-Encoding: binary\n"
    "\n"
    "HTTP/1.1 400 Bad Request\n"
    "Content-Type: application/json\n"
    "\n"
    "{\"odata.error\":{\"code\":\"UpdateConditionNotSatisfied\",\"message\":{\"value\":\"7:The "
    "update condition specified in the request was not satisfied.\"}}}\n"
    "--changesetresponse_eeee--\n"
    "--batchresponse_11111111-2222-3333-4444-555555555555--\n";

static void test_reader_table(void **state) {
    (void)state;
    static const struct {
        const char *name, *ctype, *text;
        long status;
        size_t nops;
        int rc, unknown, failed;
        long failedStatus;
        size_t count;
        const char *code, *etag0;
    } cases[] = {
        {"azurite ok", AZ_CT, AZURITE_OK, 202, 2, TABLE_OK, 0, -1, 0, 2, "",
         "W/\"datetime'2026-12-02T13%3A13%3A08.7706784Z'\""},
        {"azure ok", AZURE_CT, AZURE_OK, 202, 3, TABLE_OK, 0, -1, 0, 3, "", ""},
        {"no Content-Type: the first line names the boundary", NULL, AZURE_OK, 202, 3, TABLE_OK, 0,
         -1, 0, 3, "", ""},
        {"azurite 412", AZ_CT, AZURITE_412, 202, 2, TABLE_PRECONDITION, 0, 0, 412, 1,
         "UpdateConditionNotSatisfied", ""},
        {"azure 400 index 1", AZ_CT, AZURE_400, 202, 5, TABLE_ERROR, 0, 1, 400, 1, "InvalidInput",
         ""},
        {"index out of range", AZ_CT, AZURE_400, 202, 1, TABLE_ERROR, 0, -1, 400, 1, "InvalidInput",
         ""},
        {"400 naming a stale etag", AZ_CT, DOC_400_STALE, 202, 8, TABLE_PRECONDITION, 0, 7, 400, 1,
         "UpdateConditionNotSatisfied", ""},
        {"content-id only", AZ_CT, CONTENT_ID_ONLY, 202, 4, TABLE_NOT_FOUND, 0, 2, 404, 1,
         "ResourceNotFound", ""},
        {"answered 2 of 3", AZ_CT, AZURITE_OK, 202, 3, TABLE_ERROR, 1, -1, 0, 2, "", NULL},
        {"answered 2 of 1", AZ_CT, AZURITE_OK, 202, 1, TABLE_ERROR, 1, -1, 0, 2, "", NULL},
        {"whole request refused (Cosmos style)", "application/json",
         "{\"odata.error\":{\"code\":\"InvalidDuplicateRow\",\"message\":{\"value\":\"3:The "
         "batch request contains multiple changes with same row key.\"}}}",
         400, 5, TABLE_ERROR, 0, 3, 400, 0, "InvalidDuplicateRow", NULL},
        {"server error: outcome unknown", "text/plain", "oops", 503, 5, TABLE_ERROR, 1, -1, 503, 0,
         "", NULL},
        {"no answer", NULL, "", 0, 5, TABLE_ERROR, 1, -1, 0, 0, "", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *body = crlf(cases[i].text, &len);
        tableBatchResult *res = malloc(sizeof(*res));
        print_message("case: %s\n", cases[i].name);
        int rc = tableBatchParse(cases[i].status, cases[i].ctype, body, len, cases[i].nops, res);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(res->unknown, cases[i].unknown);
        assert_int_equal(res->failed, cases[i].failed);
        assert_int_equal(res->failedStatus, cases[i].failedStatus);
        assert_int_equal(res->count, cases[i].count);
        assert_string_equal(res->code, cases[i].code);
        if (cases[i].etag0) assert_string_equal(res->ops[0].etag, cases[i].etag0);
        if (rc != TABLE_OK) assert_true(res->message[0] != '\0');
        assert_null(strchr(res->message, '\n')); /* one log line */
        free(res);
        free(body);
    }
}

/* LF line ends are read as CRLF ones. */
static void test_reader_lf(void **state) {
    (void)state;
    tableBatchResult res;
    assert_int_equal(tableBatchParse(202, AZ_CT, AZURITE_OK, strlen(AZURITE_OK), 2, &res),
                     TABLE_OK);
    assert_int_equal(res.ops[1].status, 204);
    assert_string_equal(res.ops[1].etag, "W/\"datetime'2026-12-02T13%3A13%3A08.7706789Z'\"");
}

/* Every proper prefix of a good answer is an error with an unknown outcome, never a success. */
static void test_reader_truncated(void **state) {
    (void)state;
    const char *texts[] = {AZURITE_OK, AZURITE_412, AZURE_OK};
    size_t nops[] = {2, 2, 3};
    for (size_t t = 0; t < 3; t++) {
        size_t len;
        char *body = crlf(texts[t], &len);
        tableBatchResult res;
        for (size_t cut = 0; cut < len; cut++) {
            char *copy = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees any overread */
            memcpy(copy, body, cut);
            assert_int_equal(tableBatchParse(202, AZ_CT, copy, cut, nops[t], &res), TABLE_ERROR);
            assert_int_equal(res.unknown, 1);
            free(copy);
        }
        free(body);
    }
}

static void test_reader_malformed(void **state) {
    (void)state;
    static const struct {
        const char *name, *text;
    } cases[] = {
        {"not multipart", "hello\n"},
        {"empty batch", "--batchresponse_11111111-2222-3333-4444-555555555555--\n"},
        {"bad status line",
         "--batchresponse_11111111-2222-3333-4444-555555555555\n"
         "Content-Type: multipart/mixed; boundary=cs\n\n--cs\nContent-Type: application/http\n\n"
         "HTTP/1.1 2x4 No\n\n\n--cs--\n--batchresponse_11111111-2222-3333-4444-555555555555--\n"},
        {"no closing batch boundary",
         "--batchresponse_11111111-2222-3333-4444-555555555555\n"
         "Content-Type: multipart/mixed; boundary=cs\n\n--cs\nContent-Type: application/http\n\n"
         "HTTP/1.1 204 No Content\n\n\n--cs--\n"},
        {"wrong changeset close",
         "--batchresponse_11111111-2222-3333-4444-555555555555\n"
         "Content-Type: multipart/mixed; boundary=cs\n\n--cs\nContent-Type: application/http\n\n"
         "HTTP/1.1 204 No Content\n\n\n--other--\n"
         "--batchresponse_11111111-2222-3333-4444-555555555555--\n"},
        {"part without HTTP response",
         "--batchresponse_11111111-2222-3333-4444-555555555555\n"
         "Content-Type: multipart/mixed; boundary=cs\n\n--cs\nContent-Type: application/http\n"
         "--cs--\n--batchresponse_11111111-2222-3333-4444-555555555555--\n"},
        {"changeset boundary missing", "--batchresponse_11111111-2222-3333-4444-555555555555\n"
                                       "Content-Type: multipart/mixed\n\n--cs\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *body = crlf(cases[i].text, &len);
        tableBatchResult res;
        print_message("case: %s\n", cases[i].name);
        assert_int_equal(tableBatchParse(202, AZ_CT, body, len, 1, &res), TABLE_ERROR);
        assert_int_equal(res.unknown, 1);
        assert_int_equal(res.failed, -1);
        assert_non_null(strstr(res.message, "unreadable $batch answer"));
        free(body);
    }
}

/* An ETag longer than the result can hold, 101 sub-responses, an answer over 1 MiB. */
static void test_reader_oversized(void **state) {
    (void)state;
    tableBatchResult res;
    char etag[400];
    memset(etag, 'e', sizeof(etag) - 1);
    etag[sizeof(etag) - 1] = '\0';
    char text[1024];
    snprintf(
        text, sizeof(text),
        "--b\nContent-Type: multipart/mixed; boundary=cs\n\n--cs\n"
        "Content-Type: application/http\n\nHTTP/1.1 204 No Content\nETag: %s\n\n\n--cs--\n--b--\n",
        etag);
    size_t len;
    char *body = crlf(text, &len);
    assert_int_equal(tableBatchParse(202, "multipart/mixed; boundary=b", body, len, 1, &res),
                     TABLE_ERROR);
    assert_int_equal(res.unknown, 1);
    assert_non_null(strstr(res.message, "ETag"));
    free(body);

    /* 101 parts of 204. */
    const char *part = "--cs\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n"
                       "\r\n\r\n";
    size_t plen = strlen(part), cap = 200 + 101 * plen;
    char *many = malloc(cap);
    size_t o =
        (size_t)snprintf(many, cap, "--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n");
    for (int i = 0; i < 101; i++) {
        memcpy(many + o, part, plen);
        o += plen;
    }
    o += (size_t)snprintf(many + o, cap - o, "--cs--\r\n--b--\r\n");
    assert_int_equal(tableBatchParse(202, "multipart/mixed; boundary=b", many, o, 100, &res),
                     TABLE_ERROR);
    assert_int_equal(res.unknown, 1);
    assert_non_null(strstr(res.message, "over 100"));
    free(many);

    size_t big = TABLEBATCH_RESPONSE_MAX + 1;
    char *huge = calloc(1, big);
    assert_int_equal(tableBatchParse(202, "multipart/mixed; boundary=b", huge, big, 1, &res),
                     TABLE_ERROR);
    assert_int_equal(res.unknown, 1);
    free(huge);
}

/* ---- writer ---- */

static storageAccount dev(void) {
    storageAccount a;
    char err[256];
    assert_int_equal(settingsParseStorage("S", DEV_CS, &a, err, sizeof(err)), 0);
    return a;
}

static void test_writer_format(void **state) {
    (void)state;
    storageAccount a = dev();
    char err[256];
    tableBatch *b = tableBatchNew(&a, "DeviceState", "Sydney", 0, err, sizeof(err));
    assert_non_null(b);
    json_t *p = json_pack("{s:i}", "Count", 3);
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_MERGE, "d 1", p, "W/\"x'1'\"", err, sizeof(err)),
                     TABLEBATCH_ADDED);
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_INSERT, "O'Brien", p, NULL, err, sizeof(err)),
                     TABLEBATCH_ADDED);
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_DELETE, "gone", NULL, "*", err, sizeof(err)),
                     TABLEBATCH_ADDED);
    assert_int_equal(tableBatchCount(b), 3);
    assert_string_equal(tableBatchRowKey(b, 1), "O'Brien");
    assert_null(tableBatchRowKey(b, 3));
    size_t len;
    char *body = tableBatchBody(b, &len);
    assert_non_null(body);
    assert_int_equal(len, tableBatchSize(b));
    assert_int_equal(len, strlen(body));

    const char *ct = tableBatchContentType(b);
    assert_int_equal(strncmp(ct, "multipart/mixed; boundary=batch_", 32), 0);
    const char *bb = ct + 26; /* batch_... */
    char head[200];
    snprintf(head, sizeof(head), "--%s\r\nContent-Type: multipart/mixed; boundary=changeset_", bb);
    assert_int_equal(strncmp(body, head, strlen(head)), 0);
    char cs[80];
    size_t cl = strcspn(body + strlen(head) - 10, "\r");
    snprintf(cs, sizeof(cs), "%.*s", (int)cl, body + strlen(head) - 10);
    char tail[200];
    snprintf(tail, sizeof(tail), "--%s--\r\n--%s--\r\n", cs, bb);
    assert_string_equal(body + len - strlen(tail), tail);

    assert_non_null(strstr(body,
                           "\r\n\r\nMERGE http://127.0.0.1:10002/devstoreaccount1/DeviceState("
                           "PartitionKey='Sydney',RowKey='d%201') HTTP/1.1\r\n"
                           "Accept: application/json;odata=nometadata\r\n"
                           "DataServiceVersion: 3.0;\r\nContent-Type: application/json\r\n"
                           "If-Match: W/\"x'1'\"\r\n\r\n{\"Count\":3}\r\n--changeset_"));
    assert_non_null(strstr(body, "POST http://127.0.0.1:10002/devstoreaccount1/DeviceState "
                                 "HTTP/1.1\r\n"));
    assert_non_null(strstr(body, "Prefer: return-no-content\r\n\r\n"));
    assert_non_null(strstr(body, "\"PartitionKey\":\"Sydney\""));
    assert_non_null(strstr(body, "\"RowKey\":\"O'Brien\""));
    assert_non_null(strstr(body, "DELETE http://127.0.0.1:10002/devstoreaccount1/DeviceState("
                                 "PartitionKey='Sydney',RowKey='gone') HTTP/1.1\r\n"));
    assert_non_null(strstr(body, "If-Match: *\r\n\r\n\r\n--changeset_"));
    /* The props were borrowed, not changed (the INSERT's keys went into a copy). */
    assert_null(json_object_get(p, "RowKey"));
    free(body);
    json_decref(p);
    tableBatchFree(b);
}

static void test_writer_limits(void **state) {
    (void)state;
    storageAccount a = dev();
    char err[256], rk[16];
    tableBatch *b = tableBatchNew(&a, "DeviceState", "Sydney", 0, err, sizeof(err));
    json_t *p = json_pack("{s:s}", "Status", "ok");
    for (int i = 0; i < TABLEBATCH_MAX_OPS; i++) {
        snprintf(rk, sizeof(rk), "d%d", i);
        assert_int_equal(tableBatchAdd(b, TABLEBATCH_MERGE, rk, p, "*", err, sizeof(err)),
                         TABLEBATCH_ADDED);
    }
    size_t size = tableBatchSize(b);
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_MERGE, "d100", p, "*", err, sizeof(err)),
                     TABLEBATCH_FULL);
    assert_non_null(strstr(err, "100 operations"));
    assert_int_equal(tableBatchCount(b), TABLEBATCH_MAX_OPS);
    assert_int_equal(tableBatchSize(b), size);
    tableBatchFree(b);

    /* Bytes: a small limit fills up; an operation that could never fit is invalid. */
    b = tableBatchNew(&a, "DeviceState", "Sydney", 2000, err, sizeof(err));
    int added = 0, rc;
    for (;;) {
        snprintf(rk, sizeof(rk), "r%d", added);
        rc = tableBatchAdd(b, TABLEBATCH_MERGE, rk, p, "*", err, sizeof(err));
        if (rc != TABLEBATCH_ADDED) break;
        added++;
    }
    assert_int_equal(rc, TABLEBATCH_FULL);
    assert_true(added >= 2);
    assert_true(tableBatchSize(b) <= 2000);
    char *big = malloc(3000);
    memset(big, 'x', 2999);
    big[2999] = '\0';
    json_t *bp = json_pack("{s:s}", "Blob", big);
    tableBatch *e = tableBatchNew(&a, "DeviceState", "Sydney", 2000, err, sizeof(err));
    assert_int_equal(tableBatchAdd(e, TABLEBATCH_MERGE, "one", bp, "*", err, sizeof(err)),
                     TABLEBATCH_INVALID);
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_MERGE, "one", bp, "*", err, sizeof(err)),
                     TABLEBATCH_INVALID);
    assert_int_equal(tableBatchCount(e), 0);
    free(big);
    json_decref(bp);
    tableBatchFree(e);
    tableBatchFree(b);
    json_decref(p);
}

/* The byte limit follows the service: 2 MB on the Cosmos DB Table API, 4 MiB elsewhere; bodies
 * are one line of ASCII whatever the text. */
static void test_writer_cosmos_and_ascii(void **state) {
    (void)state;
    storageAccount az = dev(), cos;
    char err[256];
    assert_int_equal(settingsParseStorage("S",
                                          "DefaultEndpointsProtocol=https;AccountName=acct;"
                                          "AccountKey=AAAA;TableEndpoint=https://acct.table."
                                          "cosmos.azure.com:443/;",
                                          &cos, err, sizeof(err)),
                     0);
    size_t n = 2500000;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    json_t *p = json_pack("{s:s}", "Big", text);
    tableBatch *b = tableBatchNew(&cos, "DeviceState", "Sydney", 0, err, sizeof(err));
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_MERGE, "r", p, "*", err, sizeof(err)),
                     TABLEBATCH_INVALID);
    assert_non_null(strstr(err, "2000000"));
    tableBatchFree(b);
    b = tableBatchNew(&az, "DeviceState", "Sydney", 0, err, sizeof(err));
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_MERGE, "r", p, "*", err, sizeof(err)),
                     TABLEBATCH_ADDED);
    tableBatchFree(b);
    json_decref(p);
    free(text);

    /* U+2028 (a line end to Azurite's reader), U+00E9, an emoji, a newline. */
    p = json_pack("{s:s}", "T",
                  "a\xe2\x80\xa8"
                  "b\xc3\xa9"
                  "\xf0\x9f\x8c\xa1\n");
    b = tableBatchNew(&az, "DeviceState", "Sydney", 0, err, sizeof(err));
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_MERGE, "r", p, "*", err, sizeof(err)),
                     TABLEBATCH_ADDED);
    size_t len;
    char *body = tableBatchBody(b, &len);
    for (size_t i = 0; i < len; i++)
        assert_true((unsigned char)body[i] < 0x80);
    assert_non_null(strstr(body, "{\"T\":\"a\\u2028b\\u00E9\\uD83C\\uDF21\\n\"}\r\n"));
    free(body);
    tableBatchFree(b);
    json_decref(p);
}

/* The writer's own dumper for flat properties writes what jansson writes (COMPACT, ENSURE_ASCII):
 * escapes, control characters, every UTF-8 length, integers, booleans, null, and a real (jansson's
 * own formatting), in the object's order, with and without the keys of an INSERT. */
static void test_writer_flat_as_jansson(void **state) {
    (void)state;
    storageAccount az = dev();
    char err[256];
    json_t *p = json_object();
    json_object_set_new(p, "Q\"k\\ey",
                        json_string("quote \" back \\ slash / tab\t cr\r bs\b ff\f"));
    json_object_set_new(p, "Ctl", json_string("\x01\x1f\x7f end"));
    json_object_set_new(p, "Utf",
                        json_string("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xa1 \xef\xbf\xbf"));
    json_object_set_new(
        p, "Readings", json_string("1700000000000;0;42;0;20.5;;1012;\n1700000000020;0;43;0;;50;;"));
    json_object_set_new(p, "Empty", json_string(""));
    json_object_set_new(p, "N", json_integer(-9223372036854775807LL - 1));
    json_object_set_new(p, "T", json_true());
    json_object_set_new(p, "F", json_false());
    json_object_set_new(p, "Z", json_null());
    char *want = json_dumps(p, JSON_COMPACT | JSON_ENSURE_ASCII);
    for (int op = 0; op < 2; op++) {
        tableBatch *b = tableBatchNew(&az, "DeviceState", "P", 0, err, sizeof(err));
        assert_int_equal(tableBatchAdd(b, op ? TABLEBATCH_INSERT : TABLEBATCH_UPDATE, "r", p, NULL,
                                       err, sizeof(err)),
                         TABLEBATCH_ADDED);
        size_t len;
        char *body = tableBatchBody(b, &len);
        /* the INSERT's body starts with the keys, then the same members */
        assert_non_null(strstr(body, op ? want + 1 : want));
        if (op) assert_non_null(strstr(body, "{\"PartitionKey\":\"P\",\"RowKey\":\"r\","));
        free(body);
        tableBatchFree(b);
    }
    free(want);
    /* reals, as jansson formats them (exponents, integral values, the 17 digits) */
    const double reals[] = {
        0.1,    1e20, 1e-5, -2.5, 3.0, 1e300, -1e-300, 123456789012345678.0, 20.100000000000001,
        5e-324, 1e16, 0.0};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        char name[8];
        snprintf(name, sizeof(name), "R%zu", i);
        json_object_set_new(p, name, json_real(reals[i]));
    }
    want = json_dumps(p, JSON_COMPACT | JSON_ENSURE_ASCII);
    tableBatch *b = tableBatchNew(&az, "DeviceState", "P", 0, err, sizeof(err));
    assert_int_equal(tableBatchAdd(b, TABLEBATCH_UPDATE, "r", p, NULL, err, sizeof(err)),
                     TABLEBATCH_ADDED);
    size_t len;
    char *body = tableBatchBody(b, &len);
    assert_non_null(strstr(body, want));
    free(body);
    tableBatchFree(b);
    free(want);
    json_decref(p);
}

static void test_writer_refusals(void **state) {
    (void)state;
    storageAccount a = dev();
    char err[256];
    assert_null(tableBatchNew(&a, "Device-State", "Sydney", 0, err, sizeof(err)));
    assert_null(tableBatchNew(&a, "ab", "Sydney", 0, err, sizeof(err)));
    assert_null(tableBatchNew(&a, "1abc", "Sydney", 0, err, sizeof(err)));
    assert_null(tableBatchNew(&a, "DeviceState", "a/b", 0, err, sizeof(err)));
    assert_null(tableBatchNew(&a, "DeviceState", "", 0, err, sizeof(err)));

    tableBatch *b = tableBatchNew(&a, "DeviceState", "Sydney", 0, err, sizeof(err));
    json_t *p = json_object();
    json_t *wrongpk = json_pack("{s:s}", "PartitionKey", "Perth");
    json_t *samekeys = json_pack("{s:s,s:s}", "PartitionKey", "Sydney", "RowKey", "k1");
    json_t *notobj = json_string("x");
    static const struct {
        const char *name;
        enum tableBatchOp op;
        const char *rk, *etag;
        int props; /* 0 empty, 1 wrong pk, 2 same keys, 3 not an object */
        int rc;
    } cases[] = {
        {"merge", TABLEBATCH_MERGE, "k0", "*", 0, TABLEBATCH_ADDED},
        {"same row twice", TABLEBATCH_UPDATE, "k0", "*", 0, TABLEBATCH_INVALID},
        {"bad rowkey", TABLEBATCH_MERGE, "a#b", "*", 0, TABLEBATCH_INVALID},
        {"etag with CRLF", TABLEBATCH_MERGE, "k2", "W/\"x\"\r\nX-Evil: 1", 0, TABLEBATCH_INVALID},
        {"empty etag", TABLEBATCH_MERGE, "k2", "", 0, TABLEBATCH_INVALID},
        {"delete without etag", TABLEBATCH_DELETE, "k2", NULL, 0, TABLEBATCH_INVALID},
        {"insert with etag", TABLEBATCH_INSERT, "k2", "*", 0, TABLEBATCH_INVALID},
        {"PartitionKey differs", TABLEBATCH_INSERT, "k2", NULL, 1, TABLEBATCH_INVALID},
        {"props not an object", TABLEBATCH_MERGE, "k2", "*", 3, TABLEBATCH_INVALID},
        {"unknown op", (enum tableBatchOp)7, "k2", "*", 0, TABLEBATCH_INVALID},
        {"keys in props that agree", TABLEBATCH_INSERT, "k1", NULL, 2, TABLEBATCH_ADDED},
        {"upsert (no etag)", TABLEBATCH_MERGE, "k3", NULL, 0, TABLEBATCH_ADDED},
    };
    json_t *props[] = {p, wrongpk, samekeys, notobj};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].name);
        err[0] = '\0';
        assert_int_equal(tableBatchAdd(b, cases[i].op, cases[i].rk, props[cases[i].props],
                                       cases[i].etag, err, sizeof(err)),
                         cases[i].rc);
        if (cases[i].rc != TABLEBATCH_ADDED) assert_true(err[0] != '\0');
    }
    assert_int_equal(tableBatchCount(b), 3);
    json_decref(p);
    json_decref(wrongpk);
    json_decref(samekeys);
    json_decref(notobj);
    tableBatchFree(b);
    tableBatchFree(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_table),     cmocka_unit_test(test_reader_lf),
        cmocka_unit_test(test_reader_truncated), cmocka_unit_test(test_reader_malformed),
        cmocka_unit_test(test_reader_oversized), cmocka_unit_test(test_writer_format),
        cmocka_unit_test(test_writer_limits),    cmocka_unit_test(test_writer_cosmos_and_ascii),
        cmocka_unit_test(test_writer_refusals),  cmocka_unit_test(test_writer_flat_as_jansson),
    };
    return cmocka_run_group_tests_name("tablebatch", tests, NULL, NULL);
}
