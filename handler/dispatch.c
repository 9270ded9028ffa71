/* dispatch: routes each request to its function (the route table), and says which requests are
 * answered on the server's I/O thread without waiting (readiness, static files). */
#include "dispatch.h"

#include <string.h>
#include <strings.h>

static const fnContext *context;

static const struct {
    const char *path;
    void (*fn)(const fnContext *, const serverRequest *, serverResponse *);
} routes[] = {
    {"/EnvironmentEventTrigger", fnEnvironmentEventTrigger},
    {"/api/negotiate", fnNegotiate},
    {"/api/getdevicestate", fnGetDeviceState},
    {"/api/gethistory", fnGetHistory},
    {"/HistoryRetention", fnHistoryRetention},
    {"/api/sendsignalrmessage", fnSendSignalRMessage},
};

void dispatchInit(const fnContext *ctx) { context = ctx; }

int dispatchIsQuick(const char *method, const char *path) {
    /* The readiness probe and the dashboard's files: answered on the server's I/O thread. */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return 0;
    if (strncasecmp(path, "/api/", 5) == 0) return 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcasecmp(path, routes[i].path) == 0) return 0;
    return 1;
}

void dispatchRequest(const serverRequest *req, serverResponse *res) {
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcasecmp(req->path, routes[i].path) == 0) {
            routes[i].fn(context, req, res);
            return;
        }
    }
    if (fnStatic(context, req, res)) return;
    if (strcmp(req->path, "/") == 0) {
        /* The host's readiness probe: any answer means ready. */
        serverSetJson(res, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    serverSetError(res, 404, "no such function");
}
