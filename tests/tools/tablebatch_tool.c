/* tablebatch-tool: drives the entity group transaction writer and tableBatchSubmit from a test
 * or a benchmark, against the Table endpoint named by $STORAGE (a connection string).
 *
 *   tablebatch-tool run < spec.json
 *     spec: {"table":T, "pk":P, "maxbytes":N?, "ops":[{"op":"insert|merge|update|delete",
 *            "rk":R, "etag":E?, "props":{...}?}, ...]}
 *     prints {"added":[...per op "added|full|invalid"], "addError":S?, "sent":bool,
 *             "rc":"ok|not_found|conflict|precondition|error", "status":N, "unknown":bool,
 *             "failed":I, "failedStatus":N, "code":S, "message":S, "ops":[{"status","etag"}],
 *             "requests":N}; the transaction is sent only when every operation was added, or
 *             with "sendWhatFits":true in the spec, with the operations added before a refusal.
 *   tablebatch-tool bench <table> <pk> <rows> <seconds> <batch|single> <threads>
 *     each thread MERGEs its own <rows> rows with If-Match (the etags it was answered), as one
 *     transaction per round or one request per row; prints {"writes","requests","seconds"}. */
#include "httpc.h"
#include "settings.h"
#include "table.h"
#include "tablebatch.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static storageAccount acct;

static const char *rcName(int rc) {
    static const char *names[] = {"ok", "not_found", "conflict", "precondition", "error"};
    return rc >= 0 && rc <= TABLE_ERROR ? names[rc] : "?";
}

static int run(void) {
    json_error_t je;
    json_t *spec = json_loadf(stdin, 0, &je);
    if (!json_is_object(spec)) {
        fprintf(stderr, "tablebatch-tool: spec: %s\n", je.text);
        return 2;
    }
    char err[256] = "";
    json_t *out = json_object(), *added = json_array();
    json_object_set_new(out, "added", added);
    tableBatch *b = tableBatchNew(&acct, json_string_value(json_object_get(spec, "table")),
                                  json_string_value(json_object_get(spec, "pk")),
                                  (size_t)json_integer_value(json_object_get(spec, "maxbytes")),
                                  err, sizeof(err));
    if (!b) {
        json_object_set_new(out, "newError", json_string(err));
        goto print;
    }
    int all = 1;
    size_t i;
    json_t *op;
    json_array_foreach(json_object_get(spec, "ops"), i, op) {
        const char *kind = json_string_value(json_object_get(op, "op"));
        enum tableBatchOp k = !kind                         ? (enum tableBatchOp)99
                              : strcmp(kind, "insert") == 0 ? TABLEBATCH_INSERT
                              : strcmp(kind, "merge") == 0  ? TABLEBATCH_MERGE
                              : strcmp(kind, "update") == 0 ? TABLEBATCH_UPDATE
                              : strcmp(kind, "delete") == 0 ? TABLEBATCH_DELETE
                                                            : (enum tableBatchOp)99;
        json_t *props = json_object_get(op, "props");
        json_t *empty = json_object();
        int rc =
            tableBatchAdd(b, k, json_string_value(json_object_get(op, "rk")), props ? props : empty,
                          json_string_value(json_object_get(op, "etag")), err, sizeof(err));
        json_decref(empty);
        json_array_append_new(added, json_string(rc == TABLEBATCH_ADDED  ? "added"
                                                 : rc == TABLEBATCH_FULL ? "full"
                                                                         : "invalid"));
        if (rc != TABLEBATCH_ADDED) {
            if (all) json_object_set_new(out, "addError", json_string(err));
            all = 0;
        }
    }
    json_object_set_new(out, "count", json_integer((json_int_t)tableBatchCount(b)));
    json_object_set_new(out, "bytes", json_integer((json_int_t)tableBatchSize(b)));
    /* "sendWhatFits": send the operations added before the first refusal. */
    if (!all && json_is_true(json_object_get(spec, "sendWhatFits"))) all = 1;
    json_object_set_new(out, "sent", json_boolean(all));
    if (all) {
        tableBatchResult *res = malloc(sizeof(*res));
        unsigned long before = tableRequestCount();
        int rc = tableBatchSubmit(&acct, b, res);
        json_t *ops = json_array();
        for (size_t j = 0; j < res->count; j++)
            json_array_append_new(ops,
                                  json_pack("{s:I,s:s}", "status", (json_int_t)res->ops[j].status,
                                            "etag", res->ops[j].etag));
        json_object_set_new(out, "rc", json_string(rcName(rc)));
        json_object_set_new(out, "status", json_integer(res->status));
        json_object_set_new(out, "unknown", json_boolean(res->unknown));
        json_object_set_new(out, "failed", json_integer(res->failed));
        json_object_set_new(out, "failedStatus", json_integer(res->failedStatus));
        json_object_set_new(out, "code", json_string(res->code));
        json_object_set_new(out, "message", json_string(res->message));
        json_object_set_new(out, "ops", ops);
        json_object_set_new(out, "requests",
                            json_integer((json_int_t)(tableRequestCount() - before)));
        free(res);
    }
    tableBatchFree(b);
print:
    json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    json_decref(spec);
    return 0;
}

static pthread_barrier_t ready; /* every worker's rows exist: the measured window starts */
static double seconds;

typedef struct worker {
    const char *table, *pk, *mode;
    int rows, id;
    unsigned long writes;
    int failed;
} worker;

static double nowSeconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The properties a device row's merge carries in the pipeline (a similar size). */
static json_t *deviceProps(unsigned long n) {
    json_t *p = json_object();
    tableSetDouble(p, "Temperature", 20.0 + (double)(n % 50) / 10);
    tableSetDouble(p, "Humidity", 40.0 + (double)(n % 30));
    tableSetInt64(p, "ReadingCount", (int64_t)n);
    tableSetInt64(p, "LastSequence", (int64_t)n * 7);
    tableSetDateTime(p, "LastReadingTime", "2026-12-02T13:00:00.000Z");
    tableSetString(p, "Status", "ok");
    return p;
}

static void *benchWorker(void *arg) {
    worker *w = arg;
    char(*etags)[TABLEBATCH_ETAG_MAX] = calloc((size_t)w->rows, TABLEBATCH_ETAG_MAX);
    char(*rks)[64] = calloc((size_t)w->rows, 64);
    tableBatchResult *res = malloc(sizeof(*res));
    tableResult r;
    char err[256];
    for (int i = 0; i < w->rows; i++) {
        snprintf(rks[i], 64, "w%d-dev-%d", w->id, i);
        json_t *e = deviceProps(0);
        json_object_set_new(e, "PartitionKey", json_string(w->pk));
        json_object_set_new(e, "RowKey", json_string(rks[i]));
        tableUpsert(&acct, w->table, w->pk, rks[i], e, &r);
        json_decref(e);
        json_t *got = NULL;
        if (tableGetEntity(&acct, w->table, w->pk, rks[i], &got, &r) != TABLE_OK) {
            fprintf(stderr, "get: %s\n", r.message);
            w->failed = 1;
            goto out;
        }
        json_decref(got);
        snprintf(etags[i], TABLEBATCH_ETAG_MAX, "%s", r.etag);
    }
out:
    pthread_barrier_wait(&ready);
    double until = nowSeconds() + seconds;
    for (unsigned long n = 1; !w->failed && nowSeconds() < until; n++) {
        json_t *p = deviceProps(n);
        if (strcmp(w->mode, "batch") == 0) {
            tableBatch *b = tableBatchNew(&acct, w->table, w->pk, 0, err, sizeof(err));
            for (int i = 0; b && i < w->rows; i++)
                if (tableBatchAdd(b, TABLEBATCH_MERGE, rks[i], p, etags[i], err, sizeof(err)))
                    w->failed = 1;
            if (!b || w->failed || tableBatchSubmit(&acct, b, res) != TABLE_OK) {
                fprintf(stderr, "batch: %s %s\n", err, res->message);
                w->failed = 1;
            } else {
                for (int i = 0; i < w->rows; i++)
                    snprintf(etags[i], TABLEBATCH_ETAG_MAX, "%s", res->ops[i].etag);
                w->writes += (unsigned long)w->rows;
            }
            tableBatchFree(b);
        } else {
            for (int i = 0; i < w->rows && !w->failed; i++) {
                if (tableMerge(&acct, w->table, w->pk, rks[i], p, etags[i], &r) != TABLE_OK) {
                    fprintf(stderr, "merge: %s\n", r.message);
                    w->failed = 1;
                } else {
                    snprintf(etags[i], TABLEBATCH_ETAG_MAX, "%s", r.etag);
                    w->writes++;
                }
            }
        }
        json_decref(p);
    }
    free(etags);
    free(rks);
    free(res);
    return NULL;
}

static int bench(char **argv) {
    tableResult r;
    int rows = atoi(argv[3]), threads = atoi(argv[6]);
    seconds = atof(argv[4]);
    if (rows < 1 || rows > TABLEBATCH_MAX_OPS || threads < 1 || threads > 64 || seconds <= 0) {
        fprintf(stderr, "tablebatch-tool bench: bad arguments\n");
        return 2;
    }
    if (tableCreate(&acct, argv[1], &r) != TABLE_OK) {
        fprintf(stderr, "create: %s\n", r.message);
        return 1;
    }
    worker w[64];
    pthread_t t[64];
    pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){argv[1], argv[2], argv[5], rows, i, 0, 0};
        pthread_create(&t[i], NULL, benchWorker, &w[i]);
    }
    pthread_barrier_wait(&ready);
    unsigned long before = tableRequestCount();
    double t0 = nowSeconds();
    unsigned long writes = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        writes += w[i].writes;
        failed |= w[i].failed;
    }
    double el = nowSeconds() - t0;
    pthread_barrier_destroy(&ready);
    printf("{\"writes\":%lu,\"requests\":%lu,\"seconds\":%.3f,\"failed\":%s}\n", writes,
           tableRequestCount() - before, el, failed ? "true" : "false");
    return failed;
}

int main(int argc, char **argv) {
    char err[256];
    const char *cs = getenv("STORAGE");
    if (!cs || settingsParseStorage("STORAGE", cs, &acct, err, sizeof(err)) != 0) {
        fprintf(stderr, "tablebatch-tool: STORAGE: %s\n", cs ? err : "not set");
        return 2;
    }
    if (httpcGlobalInit() != 0) return 2;
    int rc = 2;
    if (argc == 2 && strcmp(argv[1], "run") == 0)
        rc = run();
    else if (argc == 8 && strcmp(argv[1], "bench") == 0)
        rc = bench(argv + 1);
    else
        fprintf(stderr, "usage: tablebatch-tool run < spec.json | tablebatch-tool bench <table> "
                        "<pk> <rows> <seconds> <batch|single> <threads>\n");
    httpcGlobalCleanup();
    return rc;
}
