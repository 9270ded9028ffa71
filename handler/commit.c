/* commit: the DeviceState rows of a batch in entity group transactions. See commit.h.
 *
 * What a refused transaction means, from "Performing entity group transactions" (Azure Storage
 * REST reference, learn.microsoft.com/rest/api/storageservices/performing-entity-group-
 * transactions, read 2026-12-02): the transaction is atomic, so when one operation fails nothing
 * is applied and the answer holds that operation's response alone, its message starting with its
 * index ("1:The update condition specified in the request was not satisfied."). tablebatch.c
 * reads that index into tableBatchResult.failed. */
#include "commit.h"

#include "clock.h"
#include "fanout.h"
#include "history.h"
#include "log.h"
#include "table.h"
#include "tablebatch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MODE_MERGE, MODE_INSERT, MODE_READ };

/* One device on its way to storage. */
typedef struct slot {
    deviceWork *w;
    json_t *row;    /* the row as believed stored (owned), NULL when there is none */
    size_t bytes;   /* its cache estimate (devicestateUpdate), 0 when not known */
    char etag[160]; /* its etag */
    int fromCache;  /* row and etag come from this process's memory, not from a read */
    int guess;      /* the next write rests on a belief (memory, or "no row yet") */
    int mode;
    int done;
    int fallback;         /* left to devicestateCommit */
    size_t cachedReplays; /* events memory called applied, before the confirming read */
    json_t *props;        /* this round's fold, NULL when none */
    devicestateFoldResult f;
    historyRows hist;    /* the history rows of this round's fold (HistoryEnabled) */
    historyRows written; /* the history rows last written for this slot */
    json_t *writtenBase; /* the row their fold was made on, when they hold a frozen hour row */
    size_t late;         /* late readings in this round's fold */
} slot;

static void sleepMs(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void fail(slot *sl, const char *why) {
    sl->done = 1;
    sl->w->ok = 0;
    snprintf(sl->w->error, sizeof(sl->w->error), "%s", why);
    json_decref(sl->props);
    sl->props = NULL;
}

/* Reads the device's row. Returns 0, or -1 when the slot failed (w->error set). */
static int readRow(const settings *s, slot *sl) {
    tableResult r;
    json_decref(sl->row);
    sl->row = NULL;
    sl->bytes = 0;
    sl->w->writes++;
    int c =
        tableGetEntity(&s->storage, s->deviceTable, s->partitionKey, sl->w->deviceId, &sl->row, &r);
    sl->fromCache = 0;
    sl->guess = 0;
    if (c == TABLE_OK) {
        snprintf(sl->etag, sizeof(sl->etag), "%s", r.etag);
        sl->mode = MODE_MERGE;
        return 0;
    }
    if (c == TABLE_NOT_FOUND && !r.tableGone) {
        sl->etag[0] = '\0';
        sl->mode = MODE_INSERT;
        return 0;
    }
    /* The table is gone, or no answer: the host retries the batch. */
    fail(sl, r.message);
    sl->w->tableGone = r.tableGone;
    return -1;
}

/* Folds the slot's entries into its row. Returns 1 when the slot needs a read first (memory
 * says some events were applied: storage must confirm), else 0 (sl->props set, or the slot done
 * when every event was applied already). */
static int fold(const settings *s, slot *sl) {
    deviceWork *w = sl->w;
    const devicestateSource src = {w->eventHubNamespace, w->eventHubName, w->partition};
    json_decref(sl->props);
    historyRowsFree(&sl->hist);
    sl->props =
        devicestateFoldHistory(sl->row, &src, s->partitionKey, w->deviceId, w->entries, w->count,
                               clockWallMs(), s->historyEnabled ? &sl->hist : NULL, &sl->f);
    if (!sl->props && sl->f.applied) {
        fail(sl, "out of memory folding the history");
        return 0;
    }
    sl->late = sl->hist.late;
    if (sl->props && sl->guess && historyRowsFrozen(&sl->hist)) {
        /* A frozen hour row is written whole (InsertOrReplace): never from a row this process
         * only believes in (memory, or "no row yet"), which would replace the one the row's
         * real history made. One read per device per hour. */
        json_decref(sl->props);
        sl->props = NULL;
        historyRowsFree(&sl->hist);
        sl->mode = MODE_READ;
        return 1;
    }
    if (sl->props && sl->writtenBase &&
        historyRepair(sl->writtenBase, sl->row, w->deviceId, &sl->written, &sl->hist) != 0) {
        fail(sl, "out of memory folding the history");
        return 0;
    }
    if (sl->f.replayed && sl->fromCache) {
        /* "Already applied" according to memory only: confirm with one read, as
         * devicestateCommit does (storage may have lost writes it acknowledged). */
        json_decref(sl->props);
        sl->props = NULL;
        sl->cachedReplays = sl->f.replayed;
        sl->mode = MODE_READ;
        return 1;
    }
    if (sl->cachedReplays > sl->f.replayed)
        logWarn("device '%s': this process remembered %zu more event(s) as applied than storage "
                "holds (lost writes: a restore, failover or reset?); applying them",
                w->deviceId, sl->cachedReplays - sl->f.replayed);
    sl->cachedReplays = 0;
    w->applied = sl->f.applied;
    w->replayed = sl->f.replayed;
    if (!sl->props) {
        /* Every event was applied already (a replay): nothing to write. */
        sl->done = 1;
        w->ok = 1;
        if (sl->row) {
            w->state = devicestateToJson(sl->row);
            devicestateRemember(w->deviceId, sl->row, sl->etag, sl->bytes);
            sl->row = NULL;
        }
        devicestateLogFold(w, &sl->f);
    }
    return 0;
}

/* The transaction answered for this slot's operation: the row is written with etag. */
static void committed(slot *sl, const char *etag) {
    deviceWork *w = sl->w;
    if (!sl->row) sl->row = json_object(), sl->bytes = 0;
    sl->bytes = devicestateUpdate(sl->row, sl->props, sl->bytes);
    json_object_set_new(sl->row, "RowKey", json_string(w->deviceId));
    json_decref(sl->props);
    sl->props = NULL;
    w->ok = w->changed = 1;
    w->historyLate = sl->late;
    w->state = devicestateToJson(sl->row);
    devicestateRemember(w->deviceId, sl->row, etag, sl->bytes); /* empty etag: forgotten */
    sl->row = NULL;
    sl->done = 1;
    devicestateLogFold(w, &sl->f);
}

/* The slot's row must be read again before its next write. */
static void reread(slot *sl) {
    json_decref(sl->props);
    sl->props = NULL;
    sl->mode = MODE_READ;
}

/* What one round of transactions came to. */
typedef struct round {
    int contended;  /* a transaction lost to another writer (not a stale memory) */
    int staleGuess; /* a transaction refused for a row this process only believed in */
    int gone;       /* the table is gone: stop */
    int unreachable;
} round;

/* Drops the folds of ops[0..nops): they are made again next round, on the same rows. */
static void dropFolds(slot **ops, size_t nops) {
    for (size_t i = 0; i < nops; i++) {
        json_decref(ops[i]->props);
        ops[i]->props = NULL;
    }
}

/* A transaction of ops[0..nops) refused at one operation (res->failed; c its status): the row
 * a stale memory or another writer made it refuse is read again, a value the store refuses
 * fails its row. Returns 1 so, or 0 (nothing done) when the refusal names no operation. */
static int refusedAtOp(slot **ops, size_t nops, const tableBatchResult *res, int c, round *rd,
                       int *guessFailures) {
    int f = res->failed;
    if (f >= 0 && (size_t)f < nops &&
        (c == TABLE_PRECONDITION || c == TABLE_CONFLICT || c == TABLE_NOT_FOUND)) {
        slot *sl = ops[f];
        if (sl->guess) {
            rd->staleGuess = 1;
            (*guessFailures)++;
        } else {
            rd->contended = 1;
        }
        reread(sl);
        dropFolds(ops, nops);
        return 1;
    }
    if (f >= 0 && (size_t)f < nops && res->failedStatus >= 400 && res->failedStatus < 500) {
        /* The store refuses this row's value (EntityTooLarge, PropertyValueTooLarge, ...): it
         * will every time. The caller rejects its readings; the others go again. */
        slot *sl = ops[f];
        char why[256];
        snprintf(why, sizeof(why), "$batch operation %d (%.160s): HTTP %ld %s", f, res->message,
                 res->failedStatus, res->code);
        fail(sl, why);
        sl->w->permanent = 1;
        devicestateForget(sl->w->deviceId);
        dropFolds(ops, nops);
        return 1;
    }
    return 0;
}

/* Sends one transaction of nops slots and applies its answer to them. */
static void submit(const settings *s, tableBatch *b, slot **ops, size_t nops, round *rd,
                   int *guessFailures) {
    tableBatchResult res;
    int c = tableBatchSubmit(&s->storage, b, &res);
    for (size_t i = 0; i < nops; i++)
        ops[i]->w->writes++; /* one request, counted against each row it carried */
    if (c == TABLE_OK) {
        for (size_t i = 0; i < nops; i++)
            committed(ops[i], i < res.count ? res.ops[i].etag : "");
        return;
    }
    if (strcmp(res.code, "TableNotFound") == 0) {
        char why[300];
        snprintf(why, sizeof(why), "TableNotFound: %s", res.message);
        rd->gone = 1;
        for (size_t i = 0; i < nops; i++) {
            fail(ops[i], why);
            ops[i]->w->tableGone = 1;
        }
        return;
    }
    if (res.status == 0) {
        /* No answer at all: the store is unreachable; the host retries the batch. Whether the
         * request was applied is unknown, so memory of these rows is not trusted again. */
        rd->unreachable = 1;
        for (size_t i = 0; i < nops; i++) {
            devicestateForget(ops[i]->w->deviceId);
            fail(ops[i], res.message);
        }
        return;
    }
    if (res.unknown) {
        /* A 5xx, a timeout or an unreadable answer: it may have been applied. Read every row
         * again before the next try (a replayed fold then skips what was applied). */
        logWarn("DeviceState transaction of %zu row(s): %s; reading them again", nops, res.message);
        rd->contended = 1;
        for (size_t i = 0; i < nops; i++)
            reread(ops[i]);
        return;
    }
    /* Refused as a whole: nothing was applied. */
    if (refusedAtOp(ops, nops, &res, c, rd, guessFailures)) return;
    /* Refused without naming an operation (a 4xx for the request itself): the rows go one by
     * one, where each answer is the row's own. */
    logWarn("DeviceState transaction of %zu row(s) refused (%s); committing them one by one", nops,
            res.message);
    for (size_t i = 0; i < nops; i++) {
        json_decref(ops[i]->props);
        ops[i]->props = NULL;
        ops[i]->fallback = 1;
    }
}

/* Builds this round's transactions from the slots holding props and sends them. */
static void sendRound(const settings *s, slot *sl, size_t n, round *rd, int *guessFailures) {
    slot *ops[TABLEBATCH_MAX_OPS];
    size_t nops = 0;
    char err[256];
    tableBatch *b = NULL;
    for (size_t i = 0; i <= n && !rd->gone && !rd->unreachable; i++) {
        slot *x = i < n ? &sl[i] : NULL;
        if (x && (x->done || x->fallback || !x->props)) continue;
        for (int again = 0; again < 2; again++) {
            if (!b && x) {
                b = tableBatchNew(&s->storage, s->deviceTable, s->partitionKey, 0, err,
                                  sizeof(err));
                if (!b) {
                    fail(x, err);
                    break;
                }
                nops = 0;
            }
            int a = TABLEBATCH_FULL;
            if (x) {
                int insert = x->mode == MODE_INSERT;
                a = tableBatchAdd(b, insert ? TABLEBATCH_INSERT : TABLEBATCH_MERGE, x->w->deviceId,
                                  x->props, insert ? NULL : x->etag, err, sizeof(err));
            }
            if (a == TABLEBATCH_ADDED) {
                ops[nops++] = x;
                break;
            }
            if (x && (a == TABLEBATCH_INVALID || (a == TABLEBATCH_FULL && nops == 0))) {
                /* Not sendable in a transaction (a value the writer cannot put in one, or over
                 * the byte limit alone): this row goes on its own, where the store's answer
                 * decides. */
                logWarn("device '%s': not in a transaction (%s); committed on its own",
                        x->w->deviceId, err);
                json_decref(x->props);
                x->props = NULL;
                x->fallback = 1;
                break;
            }
            /* full, or the end: send what is there */
            if (b && nops) submit(s, b, ops, nops, rd, guessFailures);
            tableBatchFree(b);
            b = NULL;
            nops = 0;
            if (!x || rd->gone || rd->unreachable) break;
        }
    }
    tableBatchFree(b);
}

enum { FAN_READ, FAN_COMMIT };

/* Work shared by the threads of fan(). */
typedef struct fanwork {
    const settings *s;
    slot *sl;
    int kind;
} fanwork;

static int fanWants(int kind, const slot *x) {
    if (kind == FAN_READ) return !x->done && !x->fallback && x->mode == MODE_READ;
    return !x->done;
}

static void fanTask(size_t i, void *arg) {
    fanwork *f = arg;
    slot *x = &f->sl[i];
    if (!fanWants(f->kind, x)) return;
    if (f->kind == FAN_READ) {
        readRow(f->s, x);
    } else {
        int writes = x->w->writes;
        devicestateCommit(x->w);
        x->w->writes += writes;
        x->done = 1;
    }
}

/* Reads the rows waiting for a read (FAN_READ), or commits every slot not done one device at a
 * time (FAN_COMMIT), on up to BatchConcurrency threads (this one among them): each is a round
 * trip of its own, so they go at once rather than one after another. */
static void fan(const settings *s, slot *sl, size_t n, int kind) {
    fanwork f = {s, sl, kind};
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += fanWants(kind, &sl[i]);
    if (want == 0) return;
    size_t most = s->batchConcurrency > 0 ? (size_t)s->batchConcurrency : 1;
    fanoutRun(n, want < most ? want : most, fanTask, &f);
}

/* Each slot of sl[0..n) on its work of works, the work reset, the slot starting from what
 * memory holds of the device's row. */
static void startSlots(slot *sl, deviceWork *works, size_t n) {
    for (size_t i = 0; i < n; i++) {
        slot *x = &sl[i];
        x->w = &works[i];
        x->w->ok = x->w->changed = 0;
        x->w->writes = 0;
        x->w->tableGone = 0;
        x->fromCache =
            devicestateRecall(x->w->deviceId, &x->row, x->etag, sizeof(x->etag), &x->bytes);
        x->mode = x->fromCache ? MODE_MERGE : MODE_INSERT;
        x->guess = 1;
    }
}

/* The reads the slots need, then the folds. A fold that needs a confirming read gets it in the
 * next pass; a row read is never memory, so the second pass folds every slot. */
static void readAndFold(const settings *s, slot *sl, size_t n) {
    for (int pass = 0, reads = 1; pass < 2 && reads; pass++) {
        reads = 0;
        fan(s, sl, n, FAN_READ);
        for (size_t i = 0; i < n; i++) {
            slot *x = &sl[i];
            if (x->done || x->fallback || x->mode == MODE_READ) continue;
            if (!x->props) reads += fold(s, x);
        }
    }
}

/* 1 when the slot's fold has history rows not yet written (the same rows written by an earlier
 * round are not written again). */
static int historyDue(const slot *x) {
    return !x->done && !x->fallback && x->props && x->hist.n &&
           !historyRowsEqual(&x->hist, &x->written);
}

/* After its rows went: the slot's rows are written (kept to compare with a re-fold's), or the
 * slot fails (permanent when the store refuses one of them every time: its readings are then
 * rejected, and the row keeps its history as it was). */
static void historySettle(slot *x) {
    const historyRow *bad = NULL;
    for (size_t k = 0; k < x->hist.n && !bad; k++)
        if (!x->hist.v[k].ok) bad = &x->hist.v[k];
    if (!bad) {
        x->w->historyRows += x->hist.n;
        historyRowsFree(&x->written);
        json_decref(x->writtenBase);
        /* a frozen hour row written on a row another writer may change first: kept to repair */
        x->writtenBase = !historyRowsFrozen(&x->hist) ? NULL
                         : x->row                     ? json_deep_copy(x->row)
                                                      : json_object(); /* made on no row */
        x->written = x->hist;
        memset(&x->hist, 0, sizeof(x->hist));
        return;
    }
    char why[256];
    logError("device '%s': history row %s '%s' not written: %s", x->w->deviceId, bad->pk, bad->rk,
             bad->error);
    snprintf(why, sizeof(why), "history row not written: %s", bad->error);
    int permanent = 0, gone = 0;
    for (size_t k = 0; k < x->hist.n; k++) {
        permanent |= x->hist.v[k].permanent;
        gone |= x->hist.v[k].tableGone;
    }
    fail(x, why);
    x->w->permanent = permanent;
    x->w->tableGone = gone;
    devicestateForget(x->w->deviceId);
}

/* Writes the history rows of every fold of this round (all devices together: transactions per
 * hour partition) before the device rows that record them. */
static void writeHistory(const settings *s, slot *sl, size_t n) {
    size_t total = 0, o = 0;
    for (size_t i = 0; i < n; i++)
        if (historyDue(&sl[i])) total += sl[i].hist.n;
    if (!total) return;
    historyRow *all = calloc(total, sizeof(*all));
    if (!all) {
        for (size_t i = 0; i < n; i++)
            if (historyDue(&sl[i])) fail(&sl[i], "history: out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (historyDue(&sl[i])) {
            memcpy(all + o, sl[i].hist.v, sl[i].hist.n * sizeof(*all)); /* keys borrowed */
            o += sl[i].hist.n;
        }
    historyWriteRows(s, s->historyTable, all, total);
    o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!historyDue(&sl[i])) continue;
        for (size_t k = 0; k < sl[i].hist.n; k++) {
            historyRow *x = &sl[i].hist.v[k];
            const historyRow *r = &all[o + k];
            x->ok = r->ok;
            x->permanent = r->permanent;
            x->tableGone = r->tableGone;
            snprintf(x->error, sizeof(x->error), "%s", r->error);
        }
        o += sl[i].hist.n;
        historySettle(&sl[i]);
    }
    free(all);
}

/* Fails every slot not done: the table is gone (rd->gone) or did not answer. */
static void failUndone(slot *sl, size_t n, const round *rd) {
    for (size_t i = 0; i < n; i++)
        if (!sl[i].done) {
            fail(&sl[i], rd->gone ? "TableNotFound" : "no answer");
            sl[i].w->tableGone = rd->gone;
        }
}

/* Rounds of reads, folds and transactions until no slot is pending, the table is gone or does
 * not answer, or contention persists (rnd drives the backoff). Returns the number of contended
 * rounds. */
static int commitRounds(const settings *s, slot *sl, size_t n, uint64_t *rnd) {
    int contended = 0, guessFailures = 0;
    /* Each round: reads where needed, folds, transactions. A round ends every pending slot
     * committed, failed, or waiting for a read; a stale memory costs one round per row (the
     * second time, every row still resting on memory is read), a slot set aside one. */
    for (int rounds = 0; rounds < (int)n * 2 + COMMIT_CONTENDED_TRIES + 4; rounds++) {
        int pending = 0;
        round rd = {0};
        readAndFold(s, sl, n);
        for (size_t i = 0; i < n; i++)
            pending += !sl[i].done && !sl[i].fallback;
        if (!pending) break;
        writeHistory(s, sl, n);
        sendRound(s, sl, n, &rd, &guessFailures);
        if (rd.gone || rd.unreachable) {
            failUndone(sl, n, &rd);
            break;
        }
        if (guessFailures >= 2)
            /* Memory is stale for more than one row (another instance writes these devices, or
             * this one restarted): read every row still resting on memory at once. */
            for (size_t i = 0; i < n; i++)
                if (!sl[i].done && !sl[i].fallback && sl[i].guess) reread(&sl[i]);
        if (rd.contended) {
            if (++contended >= COMMIT_CONTENDED_TRIES) break;
            sleepMs(devicestateBackoffMs(s->backoffBaseMs, s->backoffCapMs, contended - 1, rnd));
        }
    }
    return contended;
}

/* Readies the slots not done for one-by-one commits: their folds dropped, a row read or taken
 * from memory in this call handed on as memory (its etag makes the first merge right when nobody
 * else wrote since). Returns how many are left. */
static size_t handOnLeft(slot *sl, size_t n) {
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        slot *x = &sl[i];
        if (x->done) continue;
        json_decref(x->props);
        x->props = NULL;
        if (x->row && x->mode != MODE_READ) {
            devicestateRemember(x->w->deviceId, x->row, x->etag, x->bytes);
            x->row = NULL;
        }
        left++;
    }
    return left;
}

size_t commitDevices(const settings *s, deviceWork *works, size_t n) {
    slot *sl = calloc(n ? n : 1, sizeof(*sl));
    size_t notOk = 0;
    uint64_t rnd = (uint64_t)clockWallMs() ^ (uint64_t)(uintptr_t)works;
    if (!sl) {
        for (size_t i = 0; i < n; i++)
            notOk += devicestateCommit(&works[i]) != 0;
        return notOk;
    }
    startSlots(sl, works, n);
    int contended = commitRounds(s, sl, n, &rnd);
    /* What is left goes one device at a time, each with its own backoff (heavy contention, or a
     * transaction refused as a whole). */
    size_t left = handOnLeft(sl, n);
    fan(s, sl, n, FAN_COMMIT);
    if (left)
        logWarn("%zu DeviceState row(s) committed one by one after %d contended transaction(s)",
                left, contended);
    for (size_t i = 0; i < n; i++) {
        json_decref(sl[i].row);
        json_decref(sl[i].props);
        historyRowsFree(&sl[i].hist);
        historyRowsFree(&sl[i].written);
        json_decref(sl[i].writtenBase);
        notOk += !works[i].ok;
    }
    free(sl);
    return notOk;
}

size_t commitUpsertRows(const settings *s, const char *table, const char *pk, commitRow *rows,
                        size_t n) {
    size_t idx[TABLEBATCH_MAX_OPS], notOk = 0;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        rows[i].ok = rows[i].permanent = rows[i].tableGone = 0;
        rows[i].error[0] = '\0';
    }
    /* Each pass sends every row not yet settled; a refused row is settled (permanent), so at
     * most n + 1 passes, and one more when inserts fall back to insert-or-replace (409). A
     * transient failure settles the rows it carried as not ok. */
    for (size_t pass = 0; pass <= n + 1; pass++) {
        int again = 0;
        tableBatch *b = NULL;
        size_t nops = 0;
        for (size_t i = 0; i <= n; i++) {
            commitRow *x = i < n ? &rows[i] : NULL;
            if (x && (x->ok || x->permanent || x->error[0])) continue;
            int a = TABLEBATCH_FULL;
            if (x && !b) {
                b = tableBatchNew(&s->storage, table, pk, 0, err, sizeof(err));
                if (!b) {
                    snprintf(x->error, sizeof(x->error), "%s", err);
                    continue;
                }
            }
            if (x)
                a = tableBatchAdd(b, x->insert ? TABLEBATCH_INSERT : TABLEBATCH_UPDATE, x->rk,
                                  x->props, NULL, err, sizeof(err));
            if (a == TABLEBATCH_ADDED) {
                idx[nops++] = i;
                continue;
            }
            if (x && (a == TABLEBATCH_INVALID || (a == TABLEBATCH_FULL && nops == 0))) {
                /* not sendable in a transaction: on its own, where the store's answer decides */
                tableResult r;
                json_t *copy = json_deep_copy(x->props);
                int c = copy ? tableUpsert(&s->storage, table, pk, x->rk, copy, &r) : TABLE_ERROR;
                json_decref(copy);
                x->ok = c == TABLE_OK;
                if (!x->ok) {
                    x->permanent = copy ? r.permanent : 0;
                    x->tableGone = copy ? r.tableGone : 0;
                    snprintf(x->error, sizeof(x->error), "%s", copy ? r.message : "out of memory");
                }
                continue;
            }
            if (b && nops) {
                tableBatchResult res;
                int c = tableBatchSubmit(&s->storage, b, &res);
                int inserts = 0;
                for (size_t k = 0; k < nops; k++)
                    inserts += rows[idx[k]].insert;
                if (c == TABLE_OK) {
                    for (size_t k = 0; k < nops; k++)
                        rows[idx[k]].ok = 1;
                } else if (inserts && !res.unknown && res.failedStatus == 409) {
                    /* a row sent as an insert exists (a replay; the store names one operation at
                     * most): the whole transaction again, every row insert-or-replace */
                    for (size_t k = 0; k < nops; k++)
                        rows[idx[k]].insert = 0;
                    again = 1;
                } else if (!res.unknown && res.failed >= 0 && (size_t)res.failed < nops &&
                           res.failedStatus >= 400 && res.failedStatus < 500 &&
                           res.failedStatus != 404 && res.failedStatus != 408) {
                    commitRow *bad = &rows[idx[res.failed]];
                    bad->permanent = 1;
                    snprintf(bad->error, sizeof(bad->error),
                             "$batch operation %d (%.160s): HTTP %ld %s", res.failed, res.message,
                             res.failedStatus, res.code);
                    again = 1; /* the others of this transaction go in the next pass */
                } else {
                    for (size_t k = 0; k < nops; k++) {
                        snprintf(rows[idx[k]].error, sizeof(rows[idx[k]].error), "%s%s%s", res.code,
                                 res.code[0] ? ": " : "",
                                 res.message[0] ? res.message : "transaction failed");
                        rows[idx[k]].tableGone = strcmp(res.code, "TableNotFound") == 0;
                    }
                }
            }
            tableBatchFree(b);
            b = NULL;
            nops = 0;
            if (x) i--; /* x goes into the next transaction */
        }
        tableBatchFree(b);
        if (!again) break;
    }
    for (size_t i = 0; i < n; i++)
        notOk += !rows[i].ok;
    return notOk;
}
