/* path: the stand-in's URL grammar, pure: percent-decoding, hub names, the routes of the client
 * side and of the REST API, and audiences compared by meaning with a request's route. */
#include "path.h"

#include "escape.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SEGMENTS 8

int pathHubName(const char *name, size_t len, char out[PATH_HUB_MAX + 1]) {
    if (len == 0 || len > PATH_HUB_MAX || !isalpha((unsigned char)name[0])) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && !(c && strchr("_`,.[]", c))) return -1;
        out[i] = (char)tolower(c);
    }
    out[len] = '\0';
    return 0;
}

/* Splits path into at most max '/'-separated segments (an empty final one, from a trailing '/',
 * is dropped). Returns the count, or -1 when path is not absolute or has more than max. */
static int segments(const char *path, const char *seg[], size_t segLen[], int max) {
    int n = 0;
    if (*path != '/') return -1;
    while (*path == '/') {
        const char *start = ++path;
        while (*path && *path != '/')
            path++;
        if (path == start && !*path) break; /* trailing '/' */
        if (n == max) return -1;
        seg[n] = start;
        segLen[n] = (size_t)(path - start);
        n++;
    }
    return n;
}

static int segIs(const char *seg, size_t len, const char *text) {
    return strlen(text) == len && memcmp(seg, text, len) == 0;
}

void pathRouteFree(struct pathRoute *r) {
    if (!r) return;
    free(r->who);
    r->who = NULL;
}

int pathParse(const char *path, struct pathRoute *r) {
    const char *seg[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    int n = segments(path, seg, len, MAX_SEGMENTS), base;
    memset(r, 0, sizeof(*r));
    if (n < 1) return 0;
    if (segIs(seg[0], len[0], "client")) {
        if (n == 1)
            r->kind = PATH_CLIENT;
        else if (n == 2 && segIs(seg[1], len[1], "negotiate"))
            r->kind = PATH_NEGOTIATE;
        return 0;
    }
    if (!segIs(seg[0], len[0], "api") || n < 2) return 0;
    if (segIs(seg[1], len[1], "v1")) {
        if (n == 3 && segIs(seg[2], len[2], "health")) {
            r->kind = PATH_HEALTH;
            return 0;
        }
        if (n < 4 || !segIs(seg[2], len[2], "hubs")) return 0;
        base = 3;
    } else if (segIs(seg[1], len[1], "hubs") && n >= 4 && segIs(seg[n - 1], len[n - 1], ":send")) {
        r->sendForm = 1;
        n--;
        base = 2;
    } else {
        return 0;
    }
    {
        char *hub = escapePercentDecode(seg[base], len[base], 0);
        int bad = !hub || pathHubName(hub, strlen(hub), r->hub) != 0;
        free(hub);
        if (bad) return 0;
    }
    if (n == base + 1) {
        r->kind = PATH_HUB;
        return 0;
    }
    if (n != base + 3 || len[base + 2] == 0 || len[base + 2] > PATH_ID_MAX) return 0;
    if (segIs(seg[base + 1], len[base + 1], "connections"))
        r->kind = PATH_CONNECTION;
    else if (segIs(seg[base + 1], len[base + 1], "users"))
        r->kind = PATH_USER;
    else
        return 0;
    r->who = escapePercentDecode(seg[base + 2], len[base + 2], 0);
    if (r->who) return 0;
    r->kind = PATH_NONE; /* a bad escape: no such route (or no memory: no route either) */
    return 0;
}

/* The part of aud after base, or NULL when aud does not start with base and a '/'. */
static const char *afterBase(const char *base, const char *aud) {
    size_t n = strlen(base);
    if (strncasecmp(aud, base, n) != 0 || aud[n] != '/') return NULL;
    return aud + n;
}

int pathRestAudience(const char *base, const char *aud, const struct pathRoute *r) {
    const char *rest = afterBase(base, aud);
    struct pathRoute a;
    char *path;
    int ok = 0;
    memset(&a, 0, sizeof(a));
    if (!rest) return 0;
    path = strndup(rest, strcspn(rest, "?#"));
    if (path && pathParse(path, &a) == 0)
        ok = a.kind == r->kind && a.kind != PATH_NONE && a.sendForm == r->sendForm &&
             strcmp(a.hub, r->hub) == 0 &&
             (a.who && r->who ? strcmp(a.who, r->who) == 0 : a.who == r->who);
    pathRouteFree(&a);
    free(path);
    return ok;
}

int pathClientAudience(const char *base, const char *aud, const char *hub) {
    const char *rest = afterBase(base, aud), *p;
    char name[PATH_HUB_MAX + 1], *decoded;
    int ok;
    if (!rest) return 0;
    if (strncmp(rest, "/client/?", 9) == 0)
        p = rest + 9;
    else if (strncmp(rest, "/client?", 8) == 0)
        p = rest + 8;
    else
        return 0;
    while (strncmp(p, "hub=", 4) != 0) { /* find the hub parameter */
        p = strchr(p, '&');
        if (!p) return 0;
        p++;
    }
    p += 4;
    decoded = escapePercentDecode(p, strcspn(p, "&#"), 1);
    if (!decoded) return 0;
    ok = pathHubName(decoded, strlen(decoded), name) == 0 && strcmp(name, hub) == 0;
    free(decoded);
    return ok;
}
