/* hubclaim: the connection tokens that negotiate hands out, each waiting (for a short time) for
 * its client to open the connection once, by WebSocket or by long polling. A lock of its own. */
#include "hub.h"

#include "crypto.h"
#include "hubconn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_TTL_MS (120 * 1000) /* a negotiated token must be used within this */
#define PENDING_MAX 10000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct hubClaim *pending;
static size_t pendingCount;
static int stopping;

static int randomId(char *out, size_t outLen, size_t bytes) {
    unsigned char raw[32];
    char *text;
    if (bytes > sizeof(raw) || cryptoRandomBytes(raw, bytes) != 0) return -1;
    text = cryptoBase64UrlEncode(raw, bytes);
    if (!text) return -1;
    if (strlen(text) + 1 != outLen) {
        free(text);
        return -1;
    }
    memcpy(out, text, outLen);
    free(text);
    return 0;
}

static void claimFree(struct hubClaim *p) {
    if (!p) return;
    free(p->user);
    free(p);
}

/* Drops tokens past their time; with the lock held. */
static void expireLocked(long long now) {
    struct hubClaim **pp = &pending;
    while (*pp) {
        struct hubClaim *p = *pp;
        if (now - p->created > PENDING_TTL_MS) {
            *pp = p->next;
            pendingCount--;
            claimFree(p);
        } else {
            pp = &p->next;
        }
    }
}

int hubNegotiate(const char *hub, const char *user, char id[HUB_ID_LEN],
                 char token[HUB_TOKEN_LEN]) {
    struct hubClaim *p = calloc(1, sizeof(*p));
    int rc = -1;
    if (!p || strlen(hub) > HUB_NAME_MAX) goto out;
    if (randomId(p->id, sizeof(p->id), 16) != 0 || randomId(p->token, sizeof(p->token), 32) != 0)
        goto out;
    memcpy(p->hub, hub, strlen(hub) + 1);
    if (user && !(p->user = strdup(user))) goto out;
    p->created = clockNowMs();
    /* A good moment to drop long-polling connections that stopped polling. */
    pthread_mutex_lock(&hubLock);
    hubReapLocked(p->created);
    pthread_mutex_unlock(&hubLock);
    pthread_mutex_lock(&lock);
    expireLocked(p->created);
    if (pendingCount < PENDING_MAX && !stopping) {
        p->next = pending;
        pending = p;
        pendingCount++;
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    if (rc != 0) goto out;
    memcpy(id, p->id, HUB_ID_LEN);
    memcpy(token, p->token, HUB_TOKEN_LEN);
    p = NULL;
out:
    claimFree(p);
    return rc;
}

static int sameUser(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

int hubClaimToken(const char *token, const char *hub, const char *user, struct hubClaim **claim) {
    struct hubClaim **pp, *found = NULL;
    *claim = NULL;
    pthread_mutex_lock(&lock);
    expireLocked(clockNowMs());
    for (pp = &pending; *pp; pp = &(*pp)->next) {
        if (cryptoSecretEqual((*pp)->token, token)) {
            found = *pp;
            *pp = found->next;
            pendingCount--;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    if (!found) return HUB_CLAIM_UNKNOWN;
    if (strcmp(found->hub, hub) != 0 || !sameUser(found->user, user)) {
        claimFree(found);
        return HUB_CLAIM_MISMATCH;
    }
    found->next = NULL;
    *claim = found;
    return HUB_CLAIM_OK;
}

const char *hubClaimText(int status) {
    switch (status) {
    case HUB_CLAIM_OK:
        return "ok";
    case HUB_CLAIM_UNKNOWN:
        return "unknown, used or expired connection token (negotiate first)";
    case HUB_CLAIM_MISMATCH:
        return "connection token was negotiated for another hub or user";
    default:
        return "connection token refused";
    }
}

void hubClaimFree(struct hubClaim *claim) { claimFree(claim); }

void hubClaimsShutdown(void) {
    pthread_mutex_lock(&lock);
    stopping = 1;
    while (pending) {
        struct hubClaim *p = pending;
        pending = p->next;
        claimFree(p);
    }
    pendingCount = 0;
    pthread_mutex_unlock(&lock);
}
