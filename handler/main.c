/* main: starts the Enviromon custom handler: settings, the HTTP server, the tables; stops it
 * gracefully on SIGTERM or SIGINT. */
#include "app.h"
#include "log.h"
#include "server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char err[SETTINGS_ERR_LEN * 2];
    sigset_t set;
    int sig = 0;

    logSetLevel(getenv("EnviromonLogLevel"));
    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (appInit(err, sizeof(err)) != 0) {
        logError("enviromon: cannot start: %s", err);
        return 2;
    }
    if (serverStart(appSettings.port, appSettings.maxBodyBytes, appDispatch, err, sizeof(err))) {
        logError("enviromon: %s", err);
        appShutdown();
        return 1;
    }
    logInfo("enviromon: listening on 127.0.0.1:%d (tables in %s, partition '%s')",
            appSettings.port, appSettings.storageSetting, appSettings.partitionKey);
    /* Tables are created once listening, so the host's readiness probe is answered at once; an
     * invocation that comes first waits for them. A storage outage here is not fatal: every
     * invocation retries the creation. */
    if (appEnsureTables(err, sizeof(err)) != 0) logWarn("enviromon: %s (will retry)", err);

    sigwait(&set, &sig);
    logInfo("enviromon: %s received, finishing in-flight invocations",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    serverStop(30);
    appShutdown();
    logInfo("enviromon: stopped");
    return 0;
}
