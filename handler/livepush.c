/* livepush: sends committed device states to the dashboard through SignalR (target newMessage).
 * A failed push is logged and never fails the invocation: the state is safe in the table.
 *
 * One REST call per device (the dashboard contract: one newMessage, one device object), made
 * concurrently with a small bound, within the invocation: the pushes of a batch leave before the
 * host gets its answer, so a dashboard sees a device's updates in the order they were committed by
 * this process. A failure burst is logged once (and again every few minutes while it lasts), and
 * after SignalR did not answer at all the pushes are skipped for a few seconds, so that an outage
 * does not add a connect timeout to every batch. */
#include "livepush.h"

#include "clock.h"
#include "dict.h"
#include "fanout.h"
#include "log.h"
#include "signalr.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct pushRun {
    const signalrService *svc;
    char **args; /* the arguments array of each push, "[<device>]" (owned) */
    char **ids;  /* the device of each push (owned) */
    size_t n;
} pushRun;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t pausedUntil; /* ms, CLOCK_MONOTONIC; read without the lock as a hint */
static int failing;         /* inside a failure burst */
static int64_t warnedAt;
static unsigned long burstFailed, burstSkipped;
static livepushStats stats;
static unsigned long droppedWarned; /* stats.dropped when the last drop was logged */
/* The latest state of each device whose push was skipped or failed (id -> "[<device>]"): sent
 * with the next batch that finds SignalR answering, so that a dashboard connected meanwhile does
 * not keep a stale card. */
static dict missed;

static size_t missedBudget = 16 << 20; /* MissedPushBytes */

void livepushInit(size_t missedBytes) { missedBudget = missedBytes; }

/* Remembers a push that did not go out; steals args. Past the budget the pushes missed longest
 * ago are forgotten: the state stays safe in the table, but a dashboard that stayed connected
 * through the failure shows those devices as they were until their next reading or a reload
 * (every dashboard re-reads the whole state when it reconnects). Counted and logged. */
static void rememberMissed(const char *id, char *args) {
    if (!args) return;
    pthread_mutex_lock(&lock);
    if (!dictReady(&missed) && dictInit(&missed, 256, free) != 0) {
        free(args);
        stats.dropped++;
    } else {
        dictSetBudget(&missed, missedBudget);
        unsigned long before = dictEvicted(&missed);
        int rc = dictSetSized(&missed, id, args, strlen(args) + 1);
        unsigned long lost = dictEvicted(&missed) - before + (rc != 0);
        if (lost && stats.dropped == droppedWarned)
            logWarn(
                "live push: MissedPushBytes (%zu) is full: the oldest missed device updates are "
                "dropped; dashboards connected meanwhile show those devices as they were until "
                "their next reading or a reload (the state itself is safe in the table)",
                missedBudget);
        stats.dropped += lost;
        if (lost) droppedWarned = stats.dropped;
    }
    pthread_mutex_unlock(&lock);
}

static void noteSuccess(void) {
    pthread_mutex_lock(&lock);
    stats.sent++;
    if (failing) {
        failing = 0;
        logInfo("live push: SignalR Service accepts pushes again (%lu failed and %lu skipped "
                "meanwhile; dashboards re-read the state when they reconnect)",
                burstFailed, burstSkipped);
    }
    pthread_mutex_unlock(&lock);
}

static void noteFailure(int status, const signalrResult *r) {
    /* No answer, or the service is overloaded: stop trying for a while. A refusal (401, 404) is
     * quick and tried every time, so the first push after a fix gets through. */
    int pause = status == SIGNALR_UNREACHABLE || r->status >= 500 || r->status == 429;
    int64_t now = clockNowMs();
    pthread_mutex_lock(&lock);
    stats.failed++;
    if (pause) __atomic_store_n(&pausedUntil, now + LIVEPUSH_PAUSE_MS, __ATOMIC_RELAXED);
    if (!failing) {
        failing = 1;
        burstFailed = burstSkipped = 0;
        warnedAt = now;
        char paused[64] = "";
        if (pause)
            snprintf(paused, sizeof(paused), ", pushes paused for %d ms after each failure",
                     LIVEPUSH_PAUSE_MS);
        logWarn("live push: %s; device updates are not reaching dashboards%s (logged once until "
                "it recovers)",
                r->message, paused);
    } else if (now - warnedAt >= LIVEPUSH_REWARN_MS) {
        warnedAt = now;
        logWarn("live push: still failing: %s (%lu failed, %lu skipped so far)", r->message,
                burstFailed, burstSkipped);
    } else {
        logDebug("live push: %s", r->message);
    }
    burstFailed++;
    pthread_mutex_unlock(&lock);
}

static void noteSkipped(size_t n) {
    pthread_mutex_lock(&lock);
    stats.skipped += n;
    burstSkipped += n;
    pthread_mutex_unlock(&lock);
}

static int paused(void) { return __atomic_load_n(&pausedUntil, __ATOMIC_RELAXED) > clockNowMs(); }

/* One push (a task of fanoutRun). */
static void pusher(size_t i, void *arg) {
    pushRun *run = arg;
    if (paused()) { /* an earlier push of this batch found SignalR down */
        noteSkipped(1);
        rememberMissed(run->ids[i], run->args[i]);
        run->args[i] = NULL;
        return;
    }
    signalrResult r;
    int c = signalrSend(run->svc, SIGNALR_TO_ALL, NULL, "newMessage", run->args[i],
                        strlen(run->args[i]), LIVEPUSH_TIMEOUT_MS, &r);
    if (c == SIGNALR_OK) {
        noteSuccess();
    } else {
        noteFailure(c, &r);
        rememberMissed(run->ids[i], run->args[i]);
        run->args[i] = NULL;
    }
}

/* The arguments of a device's push, "[<device>]". Caller frees; NULL on OOM. */
static char *pushArgs(json_t *dev) {
    char *d = json_dumps(dev, JSON_COMPACT);
    size_t len = d ? strlen(d) + 3 : 0;
    char *args = d ? malloc(len) : NULL;
    if (args) snprintf(args, len, "[%s]", d);
    free(d);
    return args;
}

/* Appends one push to run (steals args, which may be NULL on OOM); the id is copied. Returns 0
 * or -1. */
static int addPush(pushRun *run, const char *id, char *args) {
    char *copy = strdup(id);
    if (!copy || !args) {
        free(copy);
        free(args);
        return -1;
    }
    run->ids[run->n] = copy;
    run->args[run->n++] = args;
    return 0;
}

/* dictTakeEach: moves a missed push into the run. */
static int takeMissed(const char *id, void *args, void *ctx) {
    if (addPush(ctx, id, args) != 0) logError("live push: out of memory");
    return 1;
}

void livepushDevices(json_t *devices) {
    const signalrService *svc = signalrDefault();
    size_t n = json_array_size(devices);
    pushRun run = {.svc = svc};
    dict earlier = {0};
    if (!svc || n == 0) return;
    if (paused()) {
        noteSkipped(n);
        for (size_t i = 0; i < n; i++) {
            json_t *dev = json_array_get(devices, i);
            const char *id = json_string_value(json_object_get(dev, "deviceId"));
            if (id) rememberMissed(id, pushArgs(dev));
        }
        return;
    }
    /* SignalR looks reachable: take the pushes missed earlier along with this batch's. */
    pthread_mutex_lock(&lock);
    earlier = missed;
    memset(&missed, 0, sizeof(missed));
    pthread_mutex_unlock(&lock);
    size_t total = n + dictSize(&earlier);
    run.args = calloc(total, sizeof(char *));
    run.ids = calloc(total, sizeof(char *));
    if (!run.args || !run.ids) {
        logError("live push: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *dev = json_array_get(devices, i);
        const char *id = json_string_value(json_object_get(dev, "deviceId"));
        if (!id) continue;
        if (addPush(&run, id, pushArgs(dev)) != 0) logError("live push: out of memory");
        if (dictReady(&earlier)) dictDelete(&earlier, id); /* this batch's state is newer */
    }
    if (dictReady(&earlier)) dictTakeEach(&earlier, takeMissed, &run);

    fanoutRun(run.n, LIVEPUSH_CONCURRENCY, pusher, &run); /* the caller is one of the pushers */

out:
    for (size_t i = 0; i < run.n; i++) {
        free(run.args[i]);
        free(run.ids[i]);
    }
    free(run.args);
    free(run.ids);
    dictFree(&earlier);
}

void livepushGetStats(livepushStats *out) {
    pthread_mutex_lock(&lock);
    *out = stats;
    pthread_mutex_unlock(&lock);
}

/* Only for the tests (tests/unit/hooks.h declares it). */
void livepushReset(void) {
    pthread_mutex_lock(&lock);
    failing = 0;
    burstFailed = burstSkipped = 0;
    __atomic_store_n(&pausedUntil, 0, __ATOMIC_RELAXED);
    memset(&stats, 0, sizeof(stats));
    droppedWarned = 0;
    dictFree(&missed);
    pthread_mutex_unlock(&lock);
}
