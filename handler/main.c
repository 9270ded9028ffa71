/* main: starts the Enviromon custom handler: settings, the modules, the HTTP server, the
 * tables; wires the functions' context into the router; stops gracefully on SIGTERM or SIGINT. */
#include "calibration.h"
#include "devicestate.h"
#include "dispatch.h"
#include "functions.h"
#include "httpc.h"
#include "livepush.h"
#include "log.h"
#include "server.h"
#include "signalr.h"
#include "table.h"
#include "tableset.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double msSince(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static settings cfg;
static tableSet tables;
static const fnContext context = {.s = &cfg, .tables = &tables};

/* Loads the settings and starts the modules. Returns 0, or -1 with err. */
static int start(char *err, size_t errlen) {
    if (settingsLoad(&cfg, err, errlen) != 0) return -1;
    if (httpcGlobalInit() != 0 || calibrationInit(&cfg) != 0 || devicestateInit(&cfg) != 0) {
        snprintf(err, errlen, "out of memory at start");
        return -1;
    }
    if (httpcCaInit(cfg.caBundle, cfg.caBundleSetting, cfg.caBundleRequired, err, errlen) != 0)
        return -1;
    if (signalrInit(&cfg, err, errlen) != 0) return -1;
    livepushInit(cfg.missedPushBytes);
    tablesetInit(&tables, &cfg);
    dispatchInit(&context);
    return 0;
}

static void shutdownModules(void) {
    calibrationShutdown();
    devicestateShutdown();
    httpcGlobalCleanup();
}

int main(void) {
    char err[SETTINGS_ERR_LEN * 2];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sigset_t set;
    int sig = 0;

    logSetLevel(getenv("EnviromonLogLevel"));
    /* Two malloc arenas instead of eight per core: the worker threads are short-lived and the
     * allocations small, so the extra arenas only cost resident memory. */
    mallopt(M_ARENA_MAX, 2);
    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (start(err, sizeof(err)) != 0) {
        logError("enviromon: cannot start: %s", err);
        return 2;
    }
    /* A trigger body over MaxRequestBodyBytes is spooled to disk and quarantined whole (a 413
     * would be retried forever); past 1 GiB it is refused. README, "Failure handling". */
    serverOptions so = {.port = cfg.port,
                        .maxBody = cfg.maxBodyBytes,
                        .deadlineSeconds = cfg.requestDeadlineSeconds,
                        .handler = dispatchRequest,
                        .quick = dispatchIsQuick,
                        .spoolPath = "/EnvironmentEventTrigger",
                        .spoolCeiling = (size_t)1 << 30};
    if (serverStart(&so, err, sizeof(err))) {
        logError("enviromon: %s", err);
        shutdownModules();
        return 1;
    }
    logInfo("enviromon: listening on 127.0.0.1:%d after %.2f ms (tables in %s, partition '%s')",
            cfg.port, msSince(&t0), cfg.storageSetting, cfg.partitionKey);
    /* Tables are created once listening, so the host's readiness probe is answered at once; an
     * invocation that comes first waits for them. A storage outage here is not fatal: every
     * invocation retries the creation. */
    if (tablesetEnsure(&tables, err, sizeof(err)) != 0) logWarn("enviromon: %s (will retry)", err);

    /* SIGUSR1 prints the counters (the benchmark reads them); SIGTERM/SIGINT stop. */
    while (sigwait(&set, &sig) == 0 && sig == SIGUSR1) {
        size_t rows, bytes;
        unsigned long evicted;
        livepushStats ps;
        devicestateCacheStats(&rows, &bytes, &evicted);
        livepushGetStats(&ps);
        logInfo("enviromon: %lu table round trips so far; row cache %zu rows, %zu bytes, %lu "
                "evicted; live push %lu sent, %lu failed, %lu skipped, %lu dropped",
                tableRequestCount(), rows, bytes, evicted, ps.sent, ps.failed, ps.skipped,
                ps.dropped);
    }
    logInfo("enviromon: %s received, finishing in-flight invocations",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    int running = serverStop(30);
    if (running) {
        /* Their state (caches, pooled connections) stays: the process ends around them, and the
         * host re-delivers what they did not answer. */
        logWarn("enviromon: stopped with %d handler(s) still running", running);
        return 0;
    }
    shutdownModules();
    logInfo("enviromon: stopped after %lu table round trips", tableRequestCount());
    return 0;
}
