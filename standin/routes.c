/* routes: what the stand-in answers: the client side (negotiate, the WebSocket connect, long
 * polling) and the server REST API (send to a hub, a connection or a user; health), with their
 * token checks.
 *
 * Audiences are built from the connection string (config.base), never from the Host header:
 * client tokens name base/client/?hub=<hub>, REST tokens the request URL without its query. They
 * are compared by meaning: the hub case-insensitively, ids after percent-decoding. */
#include "routes.h"

#include "config.h"
#include "hub.h"
#include "hubproto.h"
#include "jwt.h"
#include "log.h"
#include "path.h"
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TEXT "text/plain; charset=utf-8"
#define JSON "application/json"

/* ---- helpers ---- */

static void reply(struct httpdResponse *resp, int status, const char *text) {
    httpdSetText(resp, status, TEXT, text);
}

static void replyf(struct httpdResponse *resp, int status, const char *fmt, const char *arg) {
    char text[512];
    snprintf(text, sizeof(text), fmt, arg);
    reply(resp, status, text);
}

static int methodIs(const struct httpdRequest *req, const char *m) {
    return strcmp(httpdMethod(req), m) == 0;
}

/* The token from "Authorization: Bearer ..." or, for the client side, ?access_token=. Caller
 * frees. */
static char *bearer(const struct httpdRequest *req, int allowQuery) {
    const char *auth = httpdHeader(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        while (*auth == ' ')
            auth++;
        return strdup(auth);
    }
    return allowQuery ? httpdQuery(req, "access_token") : NULL;
}

/* ---- audiences ---- */

struct audienceCheck {
    const struct config *cfg;
    const struct pathRoute *route;
};

static int restAudience(const char *aud, void *ctx) {
    const struct audienceCheck *a = ctx;
    return pathRestAudience(a->cfg->base, aud, a->route);
}

static int clientAudience(const char *aud, void *ctx) {
    const struct audienceCheck *a = ctx;
    return pathClientAudience(a->cfg->base, aud, a->route->hub);
}

/* Checks the request's token. Returns 0, or -1 having answered 401. *user receives the token's
 * user id when user is not NULL (caller frees; may stay NULL). */
static int authorize(const struct httpdRequest *req, struct httpdResponse *resp,
                     const struct config *cfg, const struct pathRoute *route, int client,
                     char **user) {
    struct audienceCheck a = {cfg, route};
    char *token = bearer(req, client);
    int status;
    if (!token) {
        reply(resp, 401, "missing bearer token\n");
        httpdAddHeader(resp, "WWW-Authenticate", "Bearer");
        return -1;
    }
    status = jwtVerify(token, strlen(token), cfg->access_key, cfg->access_key_len,
                       (long long)time(NULL), client ? clientAudience : restAudience, &a, user);
    free(token);
    if (status == JWT_OK) return 0;
    replyf(resp, status == JWT_NO_MEMORY ? 500 : 401, "%s\n", jwtStatusText(status));
    httpdAddHeader(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return -1;
}

/* ---- the client side ---- */

static void negotiate(const struct httpdRequest *req, struct httpdResponse *resp,
                      const struct config *cfg, struct pathRoute *route) {
    char *hub = httpdQuery(req, "hub"), *user = NULL;
    char id[HUB_ID_LEN], token[HUB_TOKEN_LEN], body[512];
    if (!hub || pathHubName(hub, strlen(hub), route->hub) != 0) {
        reply(resp, 400, "negotiate needs ?hub= with a valid hub name\n");
        goto out;
    }
    if (authorize(req, resp, cfg, route, 1, &user) != 0) goto out;
    if (hubNegotiate(route->hub, user, id, token) != 0) {
        reply(resp, 503, "cannot take more connections now\n");
        goto out;
    }
    /* ids and tokens are base64url: nothing to escape */
    snprintf(body, sizeof(body),
             "{\"negotiateVersion\":1,\"connectionId\":\"%s\",\"connectionToken\":\"%s\","
             "\"availableTransports\":[{\"transport\":\"WebSockets\",\"transferFormats\":"
             "[\"Text\",\"Binary\"]},{\"transport\":\"LongPolling\",\"transferFormats\":"
             "[\"Text\",\"Binary\"]}]}",
             id, token);
    httpdSetText(resp, 200, JSON, body);
    logDebug("negotiated connection %s on hub %s", id, route->hub);
out:
    free(hub);
    free(user);
}

/* 1 when the comma-separated header value list holds token (case-insensitive). */
static int headerHasToken(const char *value, const char *token) {
    size_t n = strlen(token);
    while (value && *value) {
        while (*value == ' ' || *value == ',' || *value == '\t')
            value++;
        if (strncasecmp(value, token, n) == 0 &&
            (value[n] == '\0' || value[n] == ',' || value[n] == ' ' || value[n] == '\t'))
            return 1;
        value = strchr(value, ',');
    }
    return 0;
}

static void attach(void *ctx, int fd, const char *extra, size_t extraLen, void (*closeFn)(void *),
                   void *closeCtx) {
    hubAttach(ctx, fd, extra, extraLen, closeFn, closeCtx);
}

static void freeClaim(void *ctx) { hubClaimFree(ctx); }

static void openWebSocket(const struct httpdRequest *req, struct httpdResponse *resp,
                          const struct config *cfg, struct pathRoute *route) {
    char *hub = httpdQuery(req, "hub"), *id = httpdQuery(req, "id"), *user = NULL;
    const char *key = httpdHeader(req, "Sec-WebSocket-Key");
    const char *version = httpdHeader(req, "Sec-WebSocket-Version");
    char accept[WS_ACCEPT_LEN + 1];
    struct hubClaim *claim = NULL;
    int status;

    if (!hub || pathHubName(hub, strlen(hub), route->hub) != 0 || !id) {
        reply(resp, 400, "the WebSocket URL needs ?hub= and ?id=\n");
        goto out;
    }
    if (!headerHasToken(httpdHeader(req, "Connection"), "upgrade") || !key ||
        wsAcceptKey(key, accept) != 0) {
        reply(resp, 400, "not a valid WebSocket handshake\n");
        goto out;
    }
    if (!version || strcmp(version, "13") != 0) {
        reply(resp, 426, "WebSocket version 13 only\n");
        httpdAddHeader(resp, "Sec-WebSocket-Version", "13");
        goto out;
    }
    if (authorize(req, resp, cfg, route, 1, &user) != 0) goto out;
    status = hubClaimToken(id, route->hub, user, &claim);
    if (status != HUB_CLAIM_OK) {
        replyf(resp, status == HUB_CLAIM_UNKNOWN ? 404 : 403, "%s\n", hubClaimText(status));
        goto out;
    }
    resp->status = 101;
    httpdAddHeader(resp, "Upgrade", "websocket");
    httpdAddHeader(resp, "Sec-WebSocket-Accept", accept);
    resp->upgrade = attach;
    resp->upgradeCtx = claim;
    resp->upgradeFree = freeClaim;
out:
    free(hub);
    free(id);
    free(user);
}

/* The LongPolling transport: GET polls, POST carries the client's records, DELETE ends it. */
static void longPolling(const struct httpdRequest *req, struct httpdResponse *resp,
                        const struct config *cfg, struct pathRoute *route) {
    char *hub = httpdQuery(req, "hub"), *id = httpdQuery(req, "id"), *user = NULL, *body = NULL;
    const char *data;
    size_t len = 0;
    int status;

    if (!hub || pathHubName(hub, strlen(hub), route->hub) != 0 || !id) {
        reply(resp, 400, "the client URL needs ?hub= and ?id=\n");
        goto out;
    }
    if (authorize(req, resp, cfg, route, 1, &user) != 0) goto out;
    if (methodIs(req, "POST")) {
        data = httpdBody(req, &len);
        status = hubPollSend(id, route->hub, user, data ? data : "", len);
    } else if (methodIs(req, "DELETE")) {
        status = hubPollDelete(id, route->hub, user);
    } else {
        status = hubPoll(id, route->hub, user, &body, &len);
    }
    switch (status) {
    case HUB_POLL_OK:
        if (methodIs(req, "DELETE")) {
            reply(resp, 202, "");
        } else if (body) {
            httpdSetBody(resp, 200, TEXT, body, len); /* steals body */
            body = NULL;
        } else {
            reply(resp, 200, "");
        }
        break;
    case HUB_POLL_CLOSED:
        reply(resp, 204, NULL);
        break;
    case HUB_POLL_UNKNOWN:
        reply(resp, 404, "no such connection\n");
        break;
    case HUB_POLL_MISMATCH:
        replyf(resp, 403, "%s\n", hubClaimText(HUB_CLAIM_MISMATCH));
        break;
    default:
        reply(resp, 500, "out of memory\n");
        break;
    }
out:
    free(hub);
    free(id);
    free(user);
    free(body);
}

/* ---- the REST API ---- */

/* Which methods a route takes, as an Allow header value; NULL when the method is one of them. */
static const char *methodProblem(const struct httpdRequest *req, const struct pathRoute *r) {
    int get = methodIs(req, "GET") || methodIs(req, "HEAD"), post = methodIs(req, "POST");
    switch (r->kind) {
    case PATH_HEALTH:
        return get ? NULL : "GET, HEAD";
    case PATH_HUB:
        return post ? NULL : "POST";
    case PATH_CONNECTION:
        if (r->sendForm) return post ? NULL : "POST";
        return post || get || methodIs(req, "DELETE") ? NULL : "POST, GET, HEAD, DELETE";
    case PATH_USER:
        if (r->sendForm) return post ? NULL : "POST";
        return post || get ? NULL : "POST, GET, HEAD";
    case PATH_NEGOTIATE:
        return post || get ? NULL : "POST";
    case PATH_CLIENT:
        return methodIs(req, "GET") || post || methodIs(req, "DELETE") ? NULL : "GET, POST, DELETE";
    default:
        return NULL;
    }
}

/* Route, method and token of a REST request; answers and returns -1 when one is wrong. */
static int restGate(const struct httpdRequest *req, struct httpdResponse *resp,
                    const struct config *cfg, struct pathRoute *route) {
    const char *allow = methodProblem(req, route);
    if (allow) {
        reply(resp, 405, "method not allowed\n");
        httpdAddHeader(resp, "Allow", allow);
        return -1;
    }
    if (route->kind == PATH_HEALTH) return 0;
    return authorize(req, resp, cfg, route, 0, NULL);
}

static void rest(const struct httpdRequest *req, struct httpdResponse *resp,
                 struct pathRoute *route) {
    static const enum hubScope scopes[] = {
        [PATH_HUB] = HUB_ALL, [PATH_CONNECTION] = HUB_CONNECTION, [PATH_USER] = HUB_USER};
    char err[256];
    const char *body;
    char *record = NULL;
    size_t bodyLen = 0, recordLen = 0;
    int reached;

    /* Method and token were checked by routesEarly: httpd makes the full call only for a
     * request its early call left unanswered, so a REST request here has passed restGate. */
    if (route->kind == PATH_HEALTH) {
        httpdSetText(resp, 200, JSON, "{\"status\":\"healthy\"}");
        return;
    }
    if (!methodIs(req, "POST")) {
        if (methodIs(req, "DELETE")) {
            if (hubDisconnect(route->hub, route->who))
                reply(resp, 202, "");
            else
                reply(resp, 404, "no such connection\n");
        } else if (hubHas(scopes[route->kind], route->hub, route->who)) {
            reply(resp, 200, "");
        } else {
            reply(resp, 404,
                  route->kind == PATH_USER ? "no connection of that user\n"
                                           : "no such connection\n");
        }
        return;
    }
    body = httpdBody(req, &bodyLen);
    record = hubprotoInvocationFromBody(body, bodyLen, &recordLen, err, sizeof(err));
    if (!record) {
        replyf(resp, 400, "%s\n", err);
        return;
    }
    reached = hubSend(scopes[route->kind], route->hub, route->who, record, recordLen);
    free(record);
    if (reached < 0) {
        reply(resp, 500, "out of memory\n");
        return;
    }
    logDebug("REST send on hub %s reached %d connection(s)", route->hub, reached);
    reply(resp, 202, "");
}

/* ---- the two entry points ---- */

void routesEarly(const struct httpdRequest *req, struct httpdResponse *resp, void *ctx) {
    const struct config *cfg = ctx;
    struct pathRoute route;
    if (strncmp(httpdPath(req), "/api/", 5) != 0) return;
    if (pathParse(httpdPath(req), &route) != 0) {
        reply(resp, 500, "out of memory\n");
        return;
    }
    if (route.kind == PATH_NONE)
        reply(resp, 404, "no such route\n");
    else
        restGate(req, resp, cfg, &route);
    pathRouteFree(&route);
}

void routesHandle(const struct httpdRequest *req, struct httpdResponse *resp, void *ctx) {
    const struct config *cfg = ctx;
    struct pathRoute route;
    const char *allow;
    if (pathParse(httpdPath(req), &route) != 0) {
        reply(resp, 500, "out of memory\n");
        return;
    }
    switch (route.kind) {
    case PATH_NONE:
        reply(resp, 404, "no such route\n");
        break;
    case PATH_NEGOTIATE:
    case PATH_CLIENT:
        allow = methodProblem(req, &route);
        if (allow) {
            reply(resp, 405, "method not allowed\n");
            httpdAddHeader(resp, "Allow", allow);
        } else if (route.kind == PATH_NEGOTIATE) {
            negotiate(req, resp, cfg, &route);
        } else if (methodIs(req, "GET") &&
                   headerHasToken(httpdHeader(req, "Upgrade"), "websocket")) {
            openWebSocket(req, resp, cfg, &route);
        } else {
            longPolling(req, resp, cfg, &route);
        }
        break;
    default:
        rest(req, resp, &route);
        break;
    }
    pathRouteFree(&route);
}
