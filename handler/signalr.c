/* signalr: Azure SignalR Service in serverless mode, spoken over its REST API v1 (no SDK): the
 * connection string, HS256 access tokens, negotiate answers, and sends to the whole hub, one
 * connection or one user. The local stand-in speaks the same. */
#include "signalr.h"

#include "audience.h"
#include "buf.h"
#include "connstr.h"
#include "crypto.h"
#include "escape.h"
#include "httpc.h"
#include "log.h"
#include "url.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RESP_CAP (16 * 1024) /* the service's answers are small: an error message at most */
/* base64url of {"alg":"HS256","typ":"JWT"} */
#define JWT_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

static signalrService service;
static int configured;

/* ---- connection string ---- */

/* Checks an http(s) URL (no user info, query or fragment, no spaces or quotes) and writes it with
 * scheme and host lowercased and no trailing '/'. port > 0 goes into the URL (an explicit port in
 * the URL must then agree). what names the part for messages; the URL itself is never quoted. */
static int normalizeUrl(const char *what, const char *in, long port, char *out, size_t outlen,
                        char *err, size_t errlen) {
    urlParts u;
    int rc = urlParse(in, strlen(in), &u);
    if (rc != URL_OK)
        return logSetError(err, errlen, SIGNALR_SETTING ": %s %s", what, urlError(rc));
    if (port > 0 && u.port > 0 && u.port != port)
        return logSetError(err, errlen, SIGNALR_SETTING ": %s names port %ld but Port is %ld", what,
                           u.port, port);
    if (urlFormat(&u, port, 1, out, outlen) != 0)
        return logSetError(err, errlen, SIGNALR_SETTING ": %s is too long", what);
    return 0;
}

/* An optional URL part (ClientEndpoint, ServerEndpoint) normalized into out ("" when absent). */
static int optionalUrl(const char *cs, const char *name, char *out, size_t outlen, char *err,
                       size_t errlen) {
    char v[SIGNALR_URL_MAX];
    int r = connstrGet(cs, name, v, sizeof(v));
    if (r < 0) return logSetError(err, errlen, SIGNALR_SETTING ": %s is too long", name);
    if (r == 1 && v[0] && normalizeUrl(name, v, -1, out, outlen, err, errlen) != 0) return -1;
    return 0;
}

/* Endpoint (with Port=), ClientEndpoint and ServerEndpoint, each SIGNALR_URL_MAX bytes. */
static int readEndpoints(const char *cs, char *endpoint, char *client, char *server, char *err,
                         size_t errlen) {
    char v[SIGNALR_URL_MAX], text[SETTINGS_ERR_LEN];
    long port = -1;
    int r = connstrGet(cs, "Endpoint", v, sizeof(v));
    if (r < 0) return logSetError(err, errlen, SIGNALR_SETTING ": Endpoint is too long");
    if (r == 0 || !v[0]) return logSetError(err, errlen, SIGNALR_SETTING " has no Endpoint");
    r = connstrGet(cs, "Port", text, sizeof(text));
    if (r < 0 || (r == 1 && connstrParseLong(text, strlen(text), 1, 65535, &port) != 0))
        return logSetError(err, errlen,
                           SIGNALR_SETTING ": Port must be a whole number from 1 to 65535");
    if (normalizeUrl("Endpoint", v, port, endpoint, SIGNALR_URL_MAX, err, errlen) != 0) return -1;
    if (optionalUrl(cs, "ClientEndpoint", client, SIGNALR_URL_MAX, err, errlen)) return -1;
    /* ServerEndpoint (private endpoints, proxies): where this server's REST calls go. The SDK
     * sends each REST request to ServerEndpoint and signs its token for the service's own
     * Endpoint (RestApiProvider.cs: request prefix from ServerEndpoint, audience from
     * AudienceBaseUrl, which ServiceEndpoint.cs builds from Endpoint; Azure/azure-signalr
     * 31686ed71ff8140f5b02c24b4bb08a7a04f4d788). Port= applies to Endpoint only
     * (ConnectionStringParser.cs), so ServerEndpoint carries its own port if any. */
    return optionalUrl(cs, "ServerEndpoint", server, SIGNALR_URL_MAX, err, errlen);
}

/* The hub (lowercased), the endpoints and the audiences derived from them into out. Returns 0,
 * or -1 with out cleared. */
static int fillService(signalrService *out, const char *hub, const char *endpoint,
                       const char *client, const char *server, char *err, size_t errlen) {
    if (!hub || !*hub || strlen(hub) >= sizeof(out->hub)) {
        memset(out, 0, sizeof(*out));
        return logSetError(err, errlen, "SignalRHubName must be 1 to %d characters",
                           SIGNALR_HUB_MAX - 1);
    }
    for (size_t i = 0; hub[i]; i++)
        out->hub[i] = (char)tolower((unsigned char)hub[i]);
    snprintf(out->endpoint, sizeof(out->endpoint), "%s", endpoint);
    snprintf(out->serverEndpoint, sizeof(out->serverEndpoint), "%s", server[0] ? server : endpoint);
    /* The browsers' URL has the client audience's form under ClientEndpoint. */
    if (audienceClient(client[0] ? client : endpoint, out->hub, out->clientUrl,
                       sizeof(out->clientUrl)) ||
        audienceClient(endpoint, out->hub, out->clientAud, sizeof(out->clientAud)) ||
        audienceRest(out->serverEndpoint, out->hub, out->restBase, sizeof(out->restBase)) ||
        audienceRest(endpoint, out->hub, out->restAudBase, sizeof(out->restAudBase))) {
        memset(out, 0, sizeof(*out));
        return logSetError(err, errlen, SIGNALR_SETTING ": Endpoint is too long");
    }
    out->tokenLifetime = 3600;
    return 0;
}

int signalrParse(const char *cs, const char *hub, signalrService *out, char *err, size_t errlen) {
    static const char *const known[] = {
        "Endpoint",       "AccessKey",      "Version",  "Port",
        "ClientEndpoint", "AuthType",       "ClientId", "ClientSecret",
        "TenantId",       "ServerEndpoint", NULL};
    char msg[SETTINGS_ERR_LEN], v[SIGNALR_URL_MAX], endpoint[SIGNALR_URL_MAX];
    char client[SIGNALR_URL_MAX] = "", server[SIGNALR_URL_MAX] = "";
    int r;
    memset(out, 0, sizeof(*out));
    if (!cs || !*cs) return logSetError(err, errlen, SIGNALR_SETTING " is not set");
    if (connstrCheck(cs, known, msg, sizeof(msg)) != 0)
        return logSetError(err, errlen, SIGNALR_SETTING " is malformed: %s", msg);
    r = connstrGet(cs, "AuthType", v, sizeof(v));
    if (r != 0 && (r < 0 || v[0]))
        return logSetError(err, errlen,
                           SIGNALR_SETTING
                           ": AuthType (a Microsoft Entra ID connection) is not supported; "
                           "use the connection string with an AccessKey");
    if (readEndpoints(cs, endpoint, client, server, err, errlen)) return -1;

    r = connstrGet(cs, "Version", msg, sizeof(msg));
    if (r != 0 && (r < 0 || strcmp(msg, "1.0") != 0))
        return logSetError(err, errlen, SIGNALR_SETTING ": Version must be 1.0");

    r = connstrGet(cs, "AccessKey", (char *)out->key, sizeof(out->key));
    if (r < 0) {
        memset(out, 0, sizeof(*out));
        return logSetError(err, errlen, SIGNALR_SETTING ": AccessKey is longer than %d bytes",
                           SIGNALR_KEY_MAX - 1);
    }
    if (r == 0 || !out->key[0])
        return logSetError(err, errlen, SIGNALR_SETTING " has no AccessKey");
    out->keylen = strlen((char *)out->key);
    return fillService(out, hub, endpoint, client, server, err, errlen);
}

int signalrInit(const settings *s, char *err, size_t errlen) {
    configured = 0;
    memset(&service, 0, sizeof(service));
    if (!s->signalrConnectionString[0]) {
        logInfo("SignalR: " SIGNALR_SETTING " is not set: negotiate answers 503 and live pushes "
                "are off");
        return 0;
    }
    if (signalrParse(s->signalrConnectionString, s->hubName, &service, err, errlen) != 0) return -1;
    service.tokenLifetime = s->tokenLifetimeSeconds;
    configured = 1;
    if (strcmp(service.serverEndpoint, service.endpoint) != 0)
        logInfo("SignalR: hub '%s' at %s, REST calls through %s (clients connect to %s)",
                service.hub, service.endpoint, service.serverEndpoint, service.clientUrl);
    else
        logInfo("SignalR: hub '%s' at %s (clients connect to %s)", service.hub, service.endpoint,
                service.clientUrl);
    return 0;
}

const signalrService *signalrDefault(void) { return configured ? &service : NULL; }

/* ---- tokens ---- */

char *signalrToken(const signalrService *svc, const char *aud, const char *userId, long long now,
                   long lifetime) {
    char *payload = NULL, *p64 = NULL, *sig64 = NULL, *token = NULL;
    unsigned char mac[CRYPTO_SHA256_LEN];
    buf b;
    bufInit(&b, 64 * 1024);
    json_t *claims = json_object();
    if (!claims || json_object_set_new(claims, "aud", json_string(aud)) ||
        json_object_set_new(claims, "exp", json_integer(now + lifetime)) ||
        json_object_set_new(claims, "iat", json_integer(now)) ||
        json_object_set_new(claims, "nbf", json_integer(now)))
        goto out;
    if (userId) {
        /* json_string refuses text that is not UTF-8; the set then fails. */
        if (json_object_set_new(claims, "asrs.s.uid", json_string(userId)) ||
            json_object_set_new(claims, "nameid", json_string(userId)))
            goto out;
    }
    payload = json_dumps(claims, JSON_COMPACT);
    p64 = payload ? cryptoBase64UrlEncode(payload, strlen(payload)) : NULL;
    if (!p64 || bufPrintf(&b, "%s.%s", JWT_HEADER_B64, p64) != 0) goto out;
    if (cryptoHmacSha256(svc->key, svc->keylen, b.data, b.len, mac) != 0) goto out;
    sig64 = cryptoBase64UrlEncode(mac, sizeof(mac));
    if (!sig64 || bufAppend(&b, ".", 1) != 0 || bufAppend(&b, sig64, strlen(sig64)) != 0) goto out;
    token = bufDetach(&b);
out:
    json_decref(claims);
    free(payload);
    free(p64);
    free(sig64);
    bufFree(&b);
    return token;
}

json_t *signalrNegotiate(const signalrService *svc, const char *userId, long long now) {
    char *token = signalrToken(svc, svc->clientAud, userId, now, svc->tokenLifetime);
    if (!token) return NULL;
    json_t *j = json_object();
    if (j && (json_object_set_new(j, "url", json_string(svc->clientUrl)) ||
              json_object_set_new(j, "accessToken", json_string(token)))) {
        json_decref(j);
        j = NULL;
    }
    free(token);
    return j;
}

/* ---- REST ---- */

/* base, or base/connections/<id> or base/users/<id>, id percent-encoded. */
static int restPath(const char *base, int to, const char *id, char *out, size_t outlen) {
    char enc[SIGNALR_ID_MAX * 3 + 1];
    int n;
    if (to == SIGNALR_TO_ALL) {
        n = snprintf(out, outlen, "%s", base);
    } else {
        if (!id || !*id || strlen(id) > SIGNALR_ID_MAX || escapePercentTo(id, enc, sizeof(enc)))
            return -1;
        n = snprintf(out, outlen, "%s/%s/%s", base,
                     to == SIGNALR_TO_CONNECTION ? "connections" : "users", enc);
    }
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int signalrRestUrl(const signalrService *svc, int to, const char *id, char *out, size_t outlen) {
    return restPath(svc->restBase, to, id, out, outlen);
}

int signalrRestAudience(const signalrService *svc, int to, const char *id, char *out,
                        size_t outlen) {
    return restPath(svc->restAudBase, to, id, out, outlen);
}

/* Copies the printable start of an error answer into out, for a message. */
static void snippet(const buf *body, char *out, size_t outlen) {
    size_t o = 0;
    out[0] = '\0';
    if (!body->data || outlen < 4) return;
    for (size_t i = 0; i < body->len && o + 4 < outlen && o < 160; i++) {
        unsigned char c = (unsigned char)body->data[i];
        out[o++] = c >= ' ' && c < 0x7f ? (char)c : ' ';
    }
    if (o && body->len > o) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

int signalrSend(const signalrService *svc, int to, const char *id, const char *target,
                const char *argsJson, size_t argslen, long timeoutMs, signalrResult *r) {
    char url[SIGNALR_URL_MAX + SIGNALR_ID_MAX * 3 + 32];
    char aud[SIGNALR_URL_MAX + SIGNALR_ID_MAX * 3 + 32];
    char *token = NULL, *auth = NULL;
    httpcResponse resp;
    int rc;
    buf body;
    memset(r, 0, sizeof(*r));
    memset(&resp, 0, sizeof(resp));
    bufInit(&body, SIGNALR_BODY_MAX);
    for (const char *c = target; *c; c++)
        assert(isalnum((unsigned char)*c) || *c == '_');

    if (signalrRestUrl(svc, to, id, url, sizeof(url)) != 0 ||
        signalrRestAudience(svc, to, id, aud, sizeof(aud)) != 0) {
        snprintf(r->message, sizeof(r->message), "the %s id is empty or longer than %d bytes",
                 to == SIGNALR_TO_USER ? "user" : "connection", SIGNALR_ID_MAX);
        rc = SIGNALR_BAD_ID;
        goto out;
    }
    if (bufPrintf(&body, "{\"target\":\"%s\",\"arguments\":", target) != 0 ||
        bufAppend(&body, argsJson, argslen) != 0 || bufAppend(&body, "}", 1) != 0) {
        snprintf(r->message, sizeof(r->message),
                 "the message is larger than SignalR Service accepts (%d bytes)", SIGNALR_BODY_MAX);
        rc = SIGNALR_TOO_LARGE;
        goto out;
    }
    token = signalrToken(svc, aud, NULL, (long long)time(NULL), SIGNALR_TOKEN_LIFETIME_REST);
    size_t alen = token ? strlen(token) + 32 : 0;
    auth = token ? malloc(alen) : NULL;
    if (!auth) {
        snprintf(r->message, sizeof(r->message), "out of memory");
        rc = SIGNALR_NO_MEMORY;
        goto out;
    }
    snprintf(auth, alen, "Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    if (httpcRequest("POST", url, headers, body.data, body.len, RESP_CAP, timeoutMs, &resp) != 0) {
        snprintf(r->message, sizeof(r->message), "SignalR Service did not answer: %s", resp.error);
        rc = SIGNALR_UNREACHABLE;
        goto out;
    }
    r->status = resp.status;
    if (resp.status >= 200 && resp.status < 300) {
        rc = SIGNALR_OK;
        goto out;
    }
    char text[200];
    snippet(&resp.body, text, sizeof(text));
    snprintf(r->message, sizeof(r->message), "SignalR Service answered %ld%s%s", resp.status,
             text[0] ? ": " : "", text);
    rc = SIGNALR_REJECTED;
out:
    httpcResponseFree(&resp);
    bufFree(&body);
    free(token);
    free(auth);
    return rc;
}

int signalrSendJson(const signalrService *svc, int to, const char *id, const char *target,
                    const json_t *args, long timeoutMs, signalrResult *r) {
    char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        memset(r, 0, sizeof(*r));
        snprintf(r->message, sizeof(r->message), "out of memory");
        return SIGNALR_NO_MEMORY;
    }
    int rc = signalrSend(svc, to, id, target, text, strlen(text), timeoutMs, r);
    free(text);
    return rc;
}
