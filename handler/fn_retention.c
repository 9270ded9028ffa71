/* fn_retention: the HistoryRetention timer function: deletes the history rows older than
 * HistoryDays, in entity group transactions of up to 100 deletes, and logs how many: the hour
 * partitions wholly before the cutoff (chunk rows, frozen hour rows and rows of format v1 alike),
 * then the rows of the cutoff's hour whose readings are all older (v1 Time, chunk To).
 *
 * How a timer reaches a custom handler (Azure/azure-functions-host at 89dc438d):
 * src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs, ProcessDefaultInvocationRequest,
 * POSTs to "/" + the function's name (BuildAndGetUri(FunctionMetadata.Name)) like any non-HTTP
 * trigger, with the body ToHttpScriptInvocationContext makes
 * (src/WebJobs.Script/Workers/MessageExtensions/ScriptInvocationContextExtensions.cs): "Data"
 * holds the trigger's value (the TimerInfo object, JObject.FromObject: Schedule, ScheduleStatus,
 * IsPastDue) under the binding's name, "Metadata" the binding data. Nothing in it changes what
 * is deleted, so the body is not read. A non-2xx answer fails the invocation; the next run
 * deletes what this one left. */
#include "functions.h"
#include "history.h"
#include "invocation.h"
#include "log.h"
#include "table.h"
#include "tablebatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS ((int64_t)86400000)
#define RUN_MAX_SECONDS 240 /* then stop: the next run goes on (a timer's functionTimeout) */

typedef struct sweep {
    const settings *cfg;
    tableBatch *b;
    char pk[HISTORY_PK_LEN];
    size_t deleted, transactions;
    int failed, outOfTime;
    struct timespec start;
    char err[256];
} sweep;

static int flush(sweep *s) {
    tableBatchResult res;
    if (!s->b || tableBatchCount(s->b) == 0) return 0;
    int rc = tableBatchSubmit(&s->cfg->storage, s->b, &res);
    size_t n = tableBatchCount(s->b);
    tableBatchFree(s->b);
    s->b = NULL;
    s->transactions++;
    if (rc == TABLE_OK) {
        s->deleted += n;
        return 0;
    }
    /* a 404 means another run deleted a row first: the rest is deleted next time */
    snprintf(s->err, sizeof(s->err), "delete transaction in %s: %ld %s %s", s->pk, res.status,
             res.code, res.message);
    s->failed = 1;
    return -1;
}

static int deleteRow(json_t *e, void *ctx) {
    sweep *s = ctx;
    const char *pk = json_string_value(json_object_get(e, "PartitionKey"));
    const char *rk = json_string_value(json_object_get(e, "RowKey"));
    char why[256];
    if (!pk || !rk || strlen(pk) >= sizeof(s->pk)) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - s->start.tv_sec > RUN_MAX_SECONDS) {
        s->outOfTime = 1;
        return 1;
    }
    if (s->b && strcmp(s->pk, pk) != 0 && flush(s) != 0) return 1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!s->b) {
            snprintf(s->pk, sizeof(s->pk), "%s", pk);
            s->b = tableBatchNew(&s->cfg->storage, s->cfg->historyTable, pk, 0, why, sizeof(why));
            if (!s->b) {
                snprintf(s->err, sizeof(s->err), "%s", why);
                s->failed = 1;
                return 1;
            }
        }
        int add = tableBatchAdd(s->b, TABLEBATCH_DELETE, rk, NULL, "*", why, sizeof(why));
        if (add == TABLEBATCH_ADDED) return 0;
        if (add != TABLEBATCH_FULL) return 0; /* a key this table cannot hold: not ours */
        if (flush(s) != 0) return 1;
    }
    return 0;
}

void fnHistoryRetention(const fnContext *ctx, const serverRequest *req, serverResponse *res) {
    char filter[256], cutpk[HISTORY_PK_LEN], when[40], line[512], err[256] = "";
    sweep s;
    tableResult tr;
    json_t *logs = json_array();
    memset(&s, 0, sizeof(s));
    s.cfg = ctx->s;
    clock_gettime(CLOCK_MONOTONIC, &s.start);
    if (strcmp(req->method, "POST") != 0) {
        char *t = invocationAnswer(logs, "HistoryRetention takes POST");
        serverSetBody(res, 405, "application/json", t, t ? strlen(t) : 0);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t cutoff =
        (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (int64_t)ctx->s->historyDays * DAY_MS;
    historyPartitionKey(cutoff, cutpk);
    invocationFormatTime(cutoff, when, sizeof(when));
    /* whole hours before the cutoff's hour, then the rows of that hour before the cutoff */
    snprintf(filter, sizeof(filter), "PartitionKey ge 'h' and PartitionKey lt '%s'", cutpk);
    int c = tableQuerySelect(&ctx->s->storage, ctx->s->historyTable, filter, "PartitionKey,RowKey",
                             deleteRow, &s, &tr);
    if (c == TABLE_OK && !s.failed && !s.outOfTime) flush(&s);
    if (c == TABLE_OK && !s.failed && !s.outOfTime) {
        /* format v1 rows carry Time, chunk rows To (their newest reading); a frozen hour row
         * stays with its hour */
        snprintf(filter, sizeof(filter),
                 "PartitionKey eq '%s' and (Time lt datetime'%s' or To lt datetime'%s')", cutpk,
                 when, when);
        c = tableQuerySelect(&ctx->s->storage, ctx->s->historyTable, filter, "PartitionKey,RowKey",
                             deleteRow, &s, &tr);
        if (c == TABLE_OK && !s.failed && !s.outOfTime) flush(&s);
    }
    tableBatchFree(s.b);
    if (c == TABLE_NOT_FOUND) c = TABLE_OK; /* no history table yet */
    if (c != TABLE_OK && !s.failed) snprintf(err, sizeof(err), "query: %s", tr.message);
    if (s.failed) snprintf(err, sizeof(err), "%s", s.err);
    snprintf(line, sizeof(line),
             "HistoryRetention: %zu history rows older than %s (HistoryDays %d) deleted in %zu "
             "transactions%s%s%s",
             s.deleted, when, ctx->s->historyDays, s.transactions,
             s.outOfTime ? "; stopped after the run's time, the next run goes on" : "",
             err[0] ? "; failed: " : "", err);
    if (err[0])
        logError("%s", line);
    else
        logInfo("%s", line);
    json_array_append_new(logs, json_string(line));
    char *t = invocationAnswer(logs, err[0] ? err : NULL);
    serverSetBody(res, t ? (err[0] ? 500 : 200) : 500, "application/json", t, t ? strlen(t) : 0);
}
