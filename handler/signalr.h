/* signalr: Azure SignalR Service in serverless mode, spoken over its REST API v1 (no SDK): the
 * connection string, HS256 access tokens, negotiate answers, and sends to the whole hub, one
 * connection or one user. The local stand-in speaks the same. */
#ifndef ENVIROMON_SIGNALR_H
#define ENVIROMON_SIGNALR_H

#include "settings.h"

#include <jansson.h>
#include <stddef.h>

#define SIGNALR_SETTING "AzureSignalRConnectionString"
#define SIGNALR_URL_MAX 1024
#define SIGNALR_KEY_MAX 512 /* bytes of AccessKey */
#define SIGNALR_HUB_MAX 128
#define SIGNALR_ID_MAX 256 /* bytes of a connection or user id */
/* Azure SignalR Service accepts at most 1 MB in one REST message body (16 KB of headers); a body
 * past this is refused here, before it is sent. */
#define SIGNALR_BODY_MAX 1000000
#define SIGNALR_TOKEN_LIFETIME_REST 300 /* seconds; a REST token is used at once */

typedef struct signalrService {
    char endpoint[SIGNALR_URL_MAX];  /* scheme://host[:port][/path], no trailing '/': REST base */
    char clientUrl[SIGNALR_URL_MAX]; /* {ClientEndpoint or endpoint}/client/?hub=<hub lowercased> */
    char clientAud[SIGNALR_URL_MAX]; /* {endpoint}/client/?hub=<hub lowercased> */
    char serverEndpoint[SIGNALR_URL_MAX]; /* ServerEndpoint, or endpoint: where REST calls go */
    char restBase[SIGNALR_URL_MAX];       /* {serverEndpoint}/api/v1/hubs/<hub lowercased> */
    char restAudBase[SIGNALR_URL_MAX];  /* {endpoint}/api/v1/hubs/<hub lowercased>: REST audience */
    char hub[SIGNALR_HUB_MAX];          /* lowercased */
    unsigned char key[SIGNALR_KEY_MAX]; /* AccessKey's UTF-8 bytes, used as they are */
    size_t keylen;
    int tokenLifetime; /* seconds, for client tokens */
} signalrService;

/* Where a message goes. */
enum signalrTo { SIGNALR_TO_ALL = 0, SIGNALR_TO_CONNECTION, SIGNALR_TO_USER };

enum signalrStatus {
    SIGNALR_OK = 0,      /* the service accepted it (202) */
    SIGNALR_REJECTED,    /* the service answered something else: r->status says what */
    SIGNALR_UNREACHABLE, /* no answer: refused, reset, timed out (r->status is 0) */
    SIGNALR_TOO_LARGE,   /* the body would pass SIGNALR_BODY_MAX; nothing was sent */
    SIGNALR_BAD_ID,      /* the connection or user id is empty or longer than SIGNALR_ID_MAX */
    SIGNALR_NO_MEMORY
};

typedef struct signalrResult {
    long status;       /* the service's HTTP status, 0 when it did not answer */
    char message[256]; /* what went wrong, for a log line or an error answer */
} signalrResult;

/* Parses an AzureSignalRConnectionString ("Endpoint=...;AccessKey=...;Version=1.0;" with optional
 * Port=, ClientEndpoint= and ServerEndpoint=; names case-insensitive, each pair split at its first
 * '=') for hub
 * into *out. Returns 0, or -1 with a message in err that names the setting and what is wrong and
 * never quotes the key (nor any text that could be it). */
int signalrParse(const char *cs, const char *hub, signalrService *out, char *err, size_t errlen);

/* Once at start: parses s->signalrConnectionString (when set) into the process's service.
 * Returns 0 (also when SignalR is not configured), or -1 with err as signalrParse. */
int signalrInit(const settings *s, char *err, size_t errlen);

/* The process's service (borrowed, constant after signalrInit), or NULL when not configured. */
const signalrService *signalrDefault(void);

/* An HS256 JWT signed with svc's key: aud, exp = now + lifetime, iat = nbf = now (Unix seconds),
 * and when userId is not NULL, asrs.s.uid and nameid. Caller frees. NULL on OOM or when userId
 * is not valid UTF-8. */
char *signalrToken(const signalrService *svc, const char *aud, const char *userId, long long now,
                   long lifetime);

/* The negotiate answer {"url": clientUrl, "accessToken": JWT for clientAud} for userId (may be
 * NULL), valid for svc->tokenLifetime seconds from now. New reference (caller decrefs); NULL on OOM
 * or a user id that is not UTF-8. */
json_t *signalrNegotiate(const signalrService *svc, const char *userId, long long now);

/* The REST URL of a send: restBase, or restBase/connections/<id> or restBase/users/<id> with id
 * percent-encoded. Returns 0, or -1 when id is unusable or out is too small. */
int signalrRestUrl(const signalrService *svc, int to, const char *id, char *out, size_t outlen);

/* The audience of that send's token: the same path under restAudBase (the service's Endpoint,
 * also when ServerEndpoint sends the request elsewhere). Returns as signalrRestUrl. */
int signalrRestAudience(const signalrService *svc, int to, const char *id, char *out,
                        size_t outlen);

/* Sends {"target": target, "arguments": argsJson} to the hub, a connection or a user (id is NULL
 * for SIGNALR_TO_ALL). argsJson is the JSON text of the arguments array (borrowed, not checked).
 * Waits at most timeoutMs, on a pooled keep-alive connection. Returns an enum signalrStatus, with
 * details in *r (may not be NULL). Thread-safe. */
int signalrSend(const signalrService *svc, int to, const char *id, const char *target,
                const char *argsJson, size_t argslen, long timeoutMs, signalrResult *r);

/* As signalrSend, with the arguments as a JSON array (borrowed). */
int signalrSendJson(const signalrService *svc, int to, const char *id, const char *target,
                    const json_t *args, long timeoutMs, signalrResult *r);

#endif
