/* fn_http: the HTTP functions the dashboard calls (negotiate, getdevicestate,
 * sendsignalrmessage), forwarded by the host as the original request, and in local mode the
 * dashboard's static files. */
#include "functions.h"
#include "buf.h"
#include "devicestate.h"
#include "escape.h"
#include "historyread.h"
#include "log.h"
#include "signalr.h"
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEND_TIMEOUT_MS 5000        /* a send the caller waits for */
#define STATIC_MAX_BYTES (16 << 20) /* the largest dashboard file served */
#define NOT_CONFIGURED                                                                             \
    "SignalR is not configured: set " SIGNALR_SETTING " to the connection string of an Azure "     \
    "SignalR Service (Serverless mode) or of the local stand-in"

static int methodIs(const serverRequest *req, const char *m) { return strcmp(req->method, m) == 0; }

/* Answers 405 unless the method is GET or POST (post_only: POST). Returns 1 when it answered. */
static int rejectMethod(const serverRequest *req, serverResponse *res, int post_only) {
    if (methodIs(req, "POST") || (!post_only && methodIs(req, "GET"))) return 0;
    serverSetError(res, 405,
                   post_only ? "this function takes POST" : "this function takes GET or POST");
    serverAddHeader(res, "Allow", post_only ? "POST" : "GET, POST");
    return 1;
}

/* The user App Service authentication signed in, or NULL. The platform puts it in these headers
 * and, while authentication is on, strips any copy a caller sent ("External requests aren't
 * allowed to set these headers, so they're present only if set by App Service": Microsoft Learn,
 * "Work with user identities in Azure App Service authentication", configure-authentication-user-
 * identities.md, ms.date 2021-03-29). With authentication off nothing strips them, so anyone could
 * name any user: they are believed only when the platform says authentication is on
 * (WEBSITE_AUTH_ENABLED). */
static const char *principal(const fnContext *ctx, const serverRequest *req) {
    if (!ctx->s->platformAuth) return NULL;
    const char *id = serverHeader(req, "x-ms-client-principal-id");
    if (!id || !*id) id = serverHeader(req, "x-ms-client-principal-name");
    return id && *id ? id : NULL;
}

void fnNegotiate(const fnContext *ctx, const serverRequest *req, serverResponse *res) {
    if (rejectMethod(req, res, 0)) return;
    const signalrService *svc = signalrDefault();
    if (!svc) {
        serverSetError(res, 503, NOT_CONFIGURED);
        return;
    }
    const char *user = principal(ctx, req);
    if (user && strlen(user) > SIGNALR_ID_MAX) {
        serverSetError(res, 400, "the authenticated user id is longer than 256 bytes");
        return;
    }
    json_t *answer = signalrNegotiate(svc, user, (long long)time(NULL));
    if (!answer) {
        serverSetError(res, user ? 400 : 500,
                       user ? "the authenticated user id is not valid UTF-8" : "out of memory");
        return;
    }
    serverSetJson(res, 200, answer);
    serverAddHeader(res, "Cache-Control", "no-store");
}

/* ---- getdevicestate ---- */

/* The columns the answer is made of (devicestateToJson): a row's other properties (the
 * watermarks, anything an operator added) are never read. */
#define STATE_COLUMNS "RowKey,Celsius,Humidity,hPa,Light,Geo,Count,Rejected,LastSeen,LastMessageId"
/* With history=1h, the minute slots too (history format v2, historyread.h). */
#define STATE_SLOT_COLUMNS                                                                         \
    STATE_COLUMNS ",HistHour,Min00,Min01,Min02,Min03,Min04,Min05,Min06,Min07,Min08,Min09,Min10,"   \
                  "Min11,Min12,Min13,Min14,Min15,Min16,Min17,Min18,Min19,Min20,Min21,Min22,"       \
                  "Min23,Min24,Min25,Min26,Min27,Min28,Min29,Min30,Min31,Min32,Min33,Min34,"       \
                  "Min35,Min36,Min37,Min38,Min39,Min40,Min41,Min42,Min43,Min44,Min45,Min46,"       \
                  "Min47,Min48,Min49,Min50,Min51,Min52,Min53,Min54,Min55,Min56,Min57,Min58,"       \
                  "Min59," HISTORY_GROUP_COLUMNS
#define LAST_HOUR_MAX 8192 /* bytes of one device's lastHour (60 minutes x 4 metrics: ~3 KB) */
/* The answer is held whole up to this size (what one SignalR message can carry, so that a
 * connectionId can be sent it); past it, it is streamed to the client page by page. */
#define STATE_WHOLE_MAX (SIGNALR_BODY_MAX - 2)
#define STATE_TOO_LARGE "not sent: the state is larger than one SignalR message may be"

typedef struct stateOut {
    const serverRequest *req;
    serverResponse *res;
    buf text;             /* "[dev,dev,..." while the answer is held whole */
    serverStream *stream; /* once it is streamed */
    size_t count;
    int oom, gone;
    const char *conn; /* the connectionId asked for, or NULL */
    int lastHour;     /* history=1h: each device's last hour of per-minute means too */
    int64_t nowMinute;
} stateOut;

/* Switches to streaming: the 200 and the headers go out, then what was held. Returns 0 or -1. */
static int startStream(stateOut *o) {
    serverSetBody(o->res, 200, "application/json; charset=utf-8", NULL, 0);
    serverAddHeader(o->res, "Cache-Control", "no-store");
    if (o->conn) serverAddHeader(o->res, "X-Enviromon-SignalR", STATE_TOO_LARGE);
    o->stream = serverStreamOpen(o->req, o->res);
    if (!o->stream) return -1;
    if (o->conn) logWarn("getdevicestate: connection %.64s: %s", o->conn, STATE_TOO_LARGE);
    int rc = serverStreamWrite(o->stream, o->text.data, o->text.len);
    bufFree(&o->text);
    if (rc != 0) o->gone = 1;
    return 0;
}

/* The device object's text t (malloc'd, "{...}") with "lastHour" added from row's slots when
 * they hold minutes of the last hour. Returns the text (t itself or a new one; t is then freed),
 * or NULL when out of memory (t freed). */
static char *withLastHour(const stateOut *o, const json_t *row, char *t) {
    buf lh;
    bufInit(&lh, LAST_HOUR_MAX);
    int n = historyreadLastHour(row, o->nowMinute, &lh);
    size_t len = strlen(t);
    if (n <= 0 || len < 2) {
        bufFree(&lh);
        if (n < 0) logWarn("getdevicestate: a device's last hour is over %d bytes", LAST_HOUR_MAX);
        return t; /* no minute in the last hour (or, impossible, too large): left out */
    }
    size_t total = len - 1 + 12 + lh.len + 2;
    char *out = malloc(total);
    if (out)
        snprintf(out, total, "%.*s,\"lastHour\":%.*s}", (int)(len - 1), t, (int)lh.len, lh.data);
    bufFree(&lh);
    free(t);
    return out;
}

static int addRow(json_t *row, void *ctx) {
    stateOut *o = ctx;
    json_t *d = devicestateToJson(row);
    char *t = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (t && o->lastHour) t = withLastHour(o, row, t);
    if (!t) {
        o->oom = 1;
        return 1;
    }
    size_t n = strlen(t);
    const char *sep = o->count++ ? "," : "[";
    if (!o->stream && o->text.len + 1 + n > STATE_WHOLE_MAX && startStream(o) != 0) {
        o->oom = 1;
    } else if (!o->stream) {
        if (bufAppend(&o->text, sep, 1) != 0 || bufAppend(&o->text, t, n) != 0) o->oom = 1;
    } else if (!o->gone) {
        if (serverStreamWrite(o->stream, sep, 1) != 0 || serverStreamWrite(o->stream, t, n) != 0)
            o->gone = 1;
    }
    free(t);
    return o->oom || o->gone;
}

/* The connection id named by the query or, failing that, by a JSON body {"connectionId": ...}.
 * *id is NULL when none is named; it is borrowed from the request or from *body (caller decrefs).
 * Returns 0, or -1 with a message for a 400. */
static int requestedConnection(const serverRequest *req, json_t **body, const char **id, char *err,
                               size_t errlen) {
    *id = serverQuery(req, "connectionId");
    *body = NULL;
    size_t i = 0;
    while (i < req->bodylen && strchr(" \t\r\n", req->body[i]))
        i++;
    if (i < req->bodylen) {
        json_error_t e;
        *body = json_loadb(req->body, req->bodylen, 0, &e);
        if (!*body) {
            snprintf(err, errlen, "the body is not a JSON object: %s (line %d, column %d)", e.text,
                     e.line, e.column);
            return -1;
        }
        if (!json_is_object(*body)) {
            snprintf(err, errlen,
                     "the body must be a JSON object such as {\"connectionId\": \"...\"}");
            return -1;
        }
        json_t *c = json_object_get(*body, "connectionId");
        if (c && !json_is_string(c) && !json_is_null(c)) {
            snprintf(err, errlen, "connectionId must be a string");
            return -1;
        }
        if ((!*id || !**id) && json_is_string(c)) *id = json_string_value(c);
    }
    if (*id && !**id) *id = NULL;
    if (*id && strlen(*id) > SIGNALR_ID_MAX) {
        snprintf(err, errlen, "connectionId is longer than %d bytes", SIGNALR_ID_MAX);
        return -1;
    }
    return 0;
}

/* Sends the device list (text, len bytes) to one connection as newMessage. Returns what became
 * of it for the X-Enviromon-SignalR header: a constant, or note (notelen bytes). */
static const char *sendState(const char *conn, const char *text, size_t len, char *note,
                             size_t notelen) {
    const signalrService *svc = signalrDefault();
    signalrResult sr;
    if (!svc) return "not sent: SignalR is not configured";
    /* The arguments array: the device list is its one element. */
    char *args = malloc(len + 3);
    if (!args) return "not sent: out of memory";
    snprintf(args, len + 3, "[%s]", text);
    int s = signalrSend(svc, SIGNALR_TO_CONNECTION, conn, "newMessage", args, len + 2,
                        SEND_TIMEOUT_MS, &sr);
    free(args);
    if (s == SIGNALR_OK) return "sent";
    snprintf(note, notelen, "not sent: %s", sr.message);
    logWarn("getdevicestate: sending to connection %.64s: %s", conn, sr.message);
    return note;
}

/* Ends a streamed answer: the closing bracket, or cut short when the query failed. */
static void finishStream(stateOut *o, int c, const tableResult *tr) {
    /* The 200 went out with the first rows: a failure now can only cut the answer short, so that
     * the client sees an unfinished body rather than a complete-looking partial list. */
    int ok = !o->oom && !o->gone && c == TABLE_OK;
    if (ok) ok = serverStreamWrite(o->stream, "]", 1) == 0;
    if (!ok && !o->gone)
        logWarn("getdevicestate: the answer was cut short after %zu devices: %s", o->count,
                o->oom ? "out of memory" : tr->message);
    serverStreamClose(o->stream, ok);
}

void fnGetDeviceState(const fnContext *ctx, const serverRequest *req, serverResponse *res) {
    char err[512];
    buf filter;
    json_t *body = NULL;
    stateOut o = {.req = req, .res = res};
    char *text = NULL;
    tableResult tr;

    bufInit(&o.text, STATE_WHOLE_MAX + 2);
    bufInit(&filter, TABLE_KEY_MAX * 8 + 32);
    if (rejectMethod(req, res, 0)) goto out;
    if (requestedConnection(req, &body, &o.conn, err, sizeof(err)) != 0) {
        serverSetError(res, 400, err);
        goto out;
    }
    const char *history = serverQuery(req, "history");
    if (history && *history && strcmp(history, "1h") != 0) {
        serverSetError(res, 400,
                       "history: must be 1h (each device's per-minute means over the last hour)");
        goto out;
    }
    o.lastHour = history && *history;
    o.nowMinute = (int64_t)time(NULL) / 60;
    /* PartitionKey eq '<key, quotes doubled>': a key too long for the filter is an error, never
     * cut short (a shorter key would name another partition). */
    if (bufAppend(&filter, "PartitionKey eq ", 16) ||
        escapeODataString(&filter, ctx->s->partitionKey, 1)) {
        serverSetError(res, 500, "the partition key does not fit in a query filter");
        goto out;
    }
    int c = tableQuerySelect(&ctx->s->storage, ctx->s->deviceTable, filter.data,
                             o.lastHour ? STATE_SLOT_COLUMNS : STATE_COLUMNS, addRow, &o, &tr);
    if (o.stream) {
        finishStream(&o, c, &tr);
        goto out;
    }
    if (o.oom) {
        serverSetError(res, 500, "out of memory");
        goto out;
    }
    if (c != TABLE_OK && c != TABLE_NOT_FOUND) { /* not found: no device has reported yet */
        snprintf(err, sizeof(err), "cannot read the device states from Table Storage: %s",
                 tr.message);
        logWarn("getdevicestate: %s", err);
        serverSetError(res, tr.status == 0 ? 503 : 502, err);
        goto out;
    }
    if (bufAppend(&o.text, o.count ? "]" : "[]", o.count ? 1 : 2) != 0) {
        serverSetError(res, 500, "out of memory");
        goto out;
    }
    size_t len = o.text.len;
    text = bufDetach(&o.text);
    char note[300];
    const char *outcome = o.conn ? sendState(o.conn, text, len, note, sizeof(note)) : NULL;
    /* The answer holds the state whatever became of the send, so a dashboard never waits on a
     * push that did not come; the header says what happened. */
    serverSetBody(res, 200, "application/json; charset=utf-8", text, len);
    text = NULL;
    serverAddHeader(res, "Cache-Control", "no-store");
    if (outcome) serverAddHeader(res, "X-Enviromon-SignalR", outcome);
out:
    json_decref(body);
    bufFree(&filter);
    bufFree(&o.text);
    free(text);
}

/* ---- sendsignalrmessage ---- */

void fnSendSignalRMessage(const fnContext *ctx, const serverRequest *req, serverResponse *res) {
    (void)ctx; /* the SignalR service is signalrDefault(), set up at start */
    char err[512];
    char *args = NULL;
    json_t *value = NULL;
    if (rejectMethod(req, res, 1)) goto out;
    if (req->bodylen > SIGNALR_BODY_MAX) {
        snprintf(err, sizeof(err),
                 "the message is %zu bytes; Azure SignalR Service takes at most %d bytes in one "
                 "message",
                 req->bodylen, SIGNALR_BODY_MAX);
        serverSetError(res, 413, err);
        goto out;
    }
    json_error_t e;
    value = json_loadb(req->body, req->bodylen, JSON_DECODE_ANY, &e);
    if (!value) {
        snprintf(err, sizeof(err), "the body must be JSON: %s (line %d, column %d)", e.text, e.line,
                 e.column);
        serverSetError(res, 400, err);
        goto out;
    }
    const signalrService *svc = signalrDefault();
    if (!svc) {
        serverSetError(res, 503, NOT_CONFIGURED);
        goto out;
    }
    /* The posted text goes out as it came (numbers keep their spelling), as the one argument. */
    args = malloc(req->bodylen + 3);
    if (!args) {
        serverSetError(res, 500, "out of memory");
        goto out;
    }
    args[0] = '[';
    memcpy(args + 1, req->body, req->bodylen);
    memcpy(args + 1 + req->bodylen, "]", 2);
    signalrResult sr;
    int s = signalrSend(svc, SIGNALR_TO_ALL, NULL, "newMessage", args, req->bodylen + 2,
                        SEND_TIMEOUT_MS, &sr);
    if (s == SIGNALR_OK) {
        serverSetJson(res, 202, json_pack("{s:b,s:s}", "sent", 1, "target", "newMessage"));
    } else if (s == SIGNALR_TOO_LARGE) {
        snprintf(err, sizeof(err), "%s", sr.message);
        serverSetError(res, 413, err);
    } else {
        logWarn("sendsignalrmessage: %s", sr.message);
        serverSetJson(res, s == SIGNALR_NO_MEMORY ? 500 : 502,
                      json_pack("{s:s,s:i}", "error", sr.message, "signalrStatus", (int)sr.status));
    }
out:
    json_decref(value);
    free(args);
}

/* ---- local mode: the dashboard's files ---- */

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".map", "application/json; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *contentType(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcasecmp(dot, content_types[i].ext) == 0) return content_types[i].type;
    return "application/octet-stream";
}

/* The dashboard folder, resolved on the first request for a file (an error is logged once). */
static char staticRoot[PATH_MAX];
static pthread_mutex_t staticLock = PTHREAD_MUTEX_INITIALIZER;
static int staticResolved;

static const char *resolveRoot(const char *dir) {
    if (__atomic_load_n(&staticResolved, __ATOMIC_ACQUIRE)) return staticRoot;
    pthread_mutex_lock(&staticLock);
    if (!staticResolved && !realpath(dir, staticRoot)) {
        logError("EnviromonDashboardDir: cannot open '%s': %s", dir, strerror(errno));
        staticRoot[0] = '\0';
    }
    __atomic_store_n(&staticResolved, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&staticLock);
    return staticRoot;
}

/* Reads a regular file of at most STATIC_MAX_BYTES. Returns the bytes (caller frees) or NULL with
 * *status for the answer. Anything but a regular file is "not found", decided without blocking:
 * O_NONBLOCK makes open() return at once on a FIFO with no writer (a plain open waits for one, and
 * SIGTERM would then wait for that request forever), and fstat on the opened descriptor says what
 * it is; O_NOFOLLOW because path is already resolved (a link swapped in since is refused). Reads
 * of a regular file ignore O_NONBLOCK. */
static char *readFile(const char *path, size_t *len, int *status) {
    char *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
    struct stat st;
    *status = 404;
    if (fd < 0) return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) goto out;
    if (st.st_size > STATIC_MAX_BYTES) {
        *status = 500;
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        *status = 500;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    *len = got;
out:
    close(fd);
    return data;
}

int fnStatic(const fnContext *ctx, const serverRequest *req, serverResponse *res) {
    char want[PATH_MAX], real[PATH_MAX];
    if (!ctx->s->dashboardDir[0]) return 0;
    if (!methodIs(req, "GET") && !methodIs(req, "HEAD")) return 0;
    const char *path = req->path;
    if (strncasecmp(path, "/api/", 5) == 0 || strcasecmp(path, "/api") == 0 || path[0] != '/')
        return 0;
    if (!resolveRoot(ctx->s->dashboardDir)[0]) {
        serverSetError(res, 500, "EnviromonDashboardDir cannot be opened");
        return 1;
    }
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c < 0x20 || *c == 0x7f || *c == '\\') {
            serverSetError(res, 400, "invalid path");
            return 1;
        }
    }
    if (strstr(path, "..")) {
        serverSetError(res, 404, "not found");
        return 1;
    }
    while (*path == '/')
        path++;
    size_t plen = strlen(path);
    int n = snprintf(want, sizeof(want), "%s/%s%s", staticRoot, path,
                     plen == 0 || path[plen - 1] == '/' ? "index.html" : "");
    if (n < 0 || (size_t)n >= sizeof(want)) {
        serverSetError(res, 404, "not found");
        return 1;
    }
    size_t rl = strlen(staticRoot);
    /* realpath resolves symbolic links: the file must still be inside the folder. */
    if (!realpath(want, real) || strncmp(real, staticRoot, rl) != 0 ||
        (real[rl] != '/' && strcmp(staticRoot, "/") != 0)) {
        serverSetError(res, 404, "not found");
        return 1;
    }
    size_t len = 0;
    int status;
    char *data = readFile(real, &len, &status);
    if (!data) {
        serverSetError(res, status, status == 404 ? "not found" : "file too large or unreadable");
        return 1;
    }
    serverSetBody(res, 200, contentType(real), data, len);
    serverAddHeader(res, "Cache-Control", "no-cache");
    serverAddHeader(res, "X-Content-Type-Options", "nosniff");
    return 1;
}
