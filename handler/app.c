/* app: the handler's shared state (settings, table set-up) and the routing of requests to the
 * functions. */
#include "app.h"

#include "calibration.h"
#include "devicestate.h"
#include "httpc.h"
#include "livepush.h"
#include "log.h"
#include "signalr.h"
#include "table.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

settings appSettings;

static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;
static int tables_ready;

int appInit(char *err, size_t errlen) {
    if (settingsLoad(&appSettings, err, errlen) != 0) return -1;
    if (httpcGlobalInit() != 0 || calibrationInit(&appSettings) != 0 ||
        devicestateInit(&appSettings) != 0) {
        snprintf(err, errlen, "out of memory at start");
        return -1;
    }
    if (httpcCaInit(appSettings.caBundle, appSettings.caBundleSetting, appSettings.caBundleRequired,
                    err, errlen) != 0)
        return -1;
    if (signalrInit(&appSettings, err, errlen) != 0) return -1;
    livepushInit(appSettings.missedPushBytes);
    return 0;
}

void appShutdown(void) {
    calibrationShutdown();
    devicestateShutdown();
    httpcGlobalCleanup();
}

int appEnsureTables(char *err, size_t errlen) {
    const char *tables[] = {appSettings.deviceTable, appSettings.calibrationTable,
                            appSettings.rejectedTable, appSettings.quarantineTable,
                            appSettings.historyTable};
    int rc = 0;
    if (__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) return 0;
    pthread_mutex_lock(&tables_lock);
    for (size_t i = 0; !tables_ready && i < sizeof(tables) / sizeof(tables[0]); i++) {
        tableResult r;
        if (tableCreate(&appSettings.storage, tables[i], &r) != TABLE_OK) {
            snprintf(err, errlen, "cannot create table %s: %s", tables[i], r.message);
            rc = -1;
            break;
        }
    }
    if (rc == 0) __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&tables_lock);
    return rc;
}

void appTablesLost(void) { __atomic_store_n(&tables_ready, 0, __ATOMIC_RELEASE); }

static const struct {
    const char *path;
    void (*fn)(const serverRequest *, serverResponse *);
} routes[] = {
    {"/EnvironmentEventTrigger", fnEnvironmentEventTrigger},
    {"/api/negotiate", fnNegotiate},
    {"/api/getdevicestate", fnGetDeviceState},
    {"/api/gethistory", fnGetHistory},
    {"/HistoryRetention", fnHistoryRetention},
    {"/api/sendsignalrmessage", fnSendSignalRMessage},
};

int appIsQuick(const char *method, const char *path) {
    /* The readiness probe and the dashboard's files: answered on the server's I/O thread. */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return 0;
    if (strncasecmp(path, "/api/", 5) == 0) return 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcasecmp(path, routes[i].path) == 0) return 0;
    return 1;
}

void appDispatch(const serverRequest *req, serverResponse *res) {
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcasecmp(req->path, routes[i].path) == 0) {
            routes[i].fn(req, res);
            return;
        }
    }
    if (fnStatic(req, res)) return;
    if (strcmp(req->path, "/") == 0) {
        /* The host's readiness probe: any answer means ready. */
        serverSetJson(res, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    serverSetError(res, 404, "no such function");
}
