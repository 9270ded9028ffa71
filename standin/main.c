/* main: the SignalR Service stand-in: reads its settings, serves until SIGTERM or SIGINT, then
 * closes every WebSocket with a close frame and exits 0.
 *
 * Out of memory, everywhere in standin/: every allocation is checked; a failure answers the
 * request concerned with 500 or 503, or closes the WebSocket concerned, and the process goes on.
 * Exit codes: 0 after a signal or --help, 1 when the port cannot be bound, 2 for bad settings. */
#include "audience.h"
#include "config.h"
#include "cors.h"
#include "httpd.h"
#include "hub.h"
#include "log.h"
#include "routes.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_TIMEOUT_SECONDS 60 /* generous: background browser tabs ping late */
#define MAX_WS_MESSAGE (1024 * 1024)
#define QUEUE_MAX_BYTES (16 * 1024 * 1024)
#define QUEUE_MAX_MESSAGES 8192
#define SHUTDOWN_WAIT_MS 5000
#define MAX_POLL_SECONDS 90
#define IDLE_SECONDS 300    /* keep-alive connections idle past this are closed */
#define READ_PAST_FACTOR 16 /* bodies up to 16 times the cap are read and dropped, kept alive */

/* Preflights are answered before any route sees them. */
static void early(const httpdRequest *req, httpdResponse *resp, void *ctx) {
    if (corsPreflight(req, resp)) return;
    routesEarly(req, resp, ctx);
}

int main(int argc, char **argv) {
    struct config cfg;
    struct hubOptions hub;
    struct httpd *server = NULL;
    char err[CONFIG_ERR_LEN];
    sigset_t stop;
    int sig = 0, rc = 2, parsed;

    memset(&cfg, 0, sizeof(cfg));
    logSetLevel(getenv("EnviromonLogLevel"));
    parsed = configFromArgs(&cfg, argc, argv, err, sizeof(err));
    if (parsed != 0) {
        if (parsed < 0) fprintf(stderr, "signalr-standin: %s\n", err);
        rc = parsed > 0 ? 0 : 2;
        goto out;
    }

    /* Every thread started from here on inherits the blocked signals; main waits for them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&hub, 0, sizeof(hub));
    hub.pingSeconds = cfg.ping_seconds;
    /* A long poll with nothing to say answers with a ping: the same interval, within the 100 s
     * the official client waits for a poll. */
    hub.pollSeconds = cfg.ping_seconds < MAX_POLL_SECONDS ? cfg.ping_seconds : MAX_POLL_SECONDS;
    hub.clientTimeoutSeconds = CLIENT_TIMEOUT_SECONDS > 4 * cfg.ping_seconds
                                   ? CLIENT_TIMEOUT_SECONDS
                                   : 4 * cfg.ping_seconds;
    hub.maxMessage = MAX_WS_MESSAGE;
    hub.queueMaxBytes = QUEUE_MAX_BYTES;
    hub.queueMaxMessages = QUEUE_MAX_MESSAGES;
    hubInit(&hub);

    server = httpdStart(&(httpdOptions){.host = cfg.host,
                                        .port = cfg.port,
                                        .maxBody = ROUTES_MAX_BODY,
                                        .readPastFactor = READ_PAST_FACTOR,
                                        .idleSeconds = IDLE_SECONDS,
                                        /* A long poll holds its thread for up to
                                         * MAX_POLL_SECONDS: a fixed worker pool would be
                                         * starved by idle polls, a thread per connection
                                         * never is. */
                                        .threadPerConnection = 1,
                                        .allowUpgrade = 1,
                                        .raiseFileLimit = 1,
                                        .rawUrls = 1, /* routes and audiences need the raw text */
                                        .early = early,
                                        .full = routesHandle,
                                        .finish = corsFinish,
                                        .ctx = &cfg},
                        err, sizeof(err));
    if (!server) {
        fprintf(stderr, "signalr-standin: %s\n", err);
        rc = 1;
        goto out;
    }
    printf("signalr-standin listening on http://%s%s%s:%d\n", strchr(cfg.host, ':') ? "[" : "",
           cfg.host, strchr(cfg.host, ':') ? "]" : "", cfg.port);
    fflush(stdout);
    logInfo("audiences: %s" AUDIENCE_CLIENT_PATH "<hub>, %s" AUDIENCE_REST_PATH
            "<hub>; ping every %d s",
            cfg.base, cfg.base, cfg.ping_seconds);

    if (sigwait(&stop, &sig) != 0) sig = SIGTERM;
    logInfo("signal %d: closing WebSockets and stopping", sig);
    hubShutdown(SHUTDOWN_WAIT_MS);
    httpdStop(server, 0);
    rc = 0;
out:
    configFree(&cfg);
    return rc;
}
