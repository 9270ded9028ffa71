/* audience: SignalR token audiences (see audience.h for the rules and their sources). */
#include "audience.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int build(const char *endpoint, const char *path, const char *hub, char *out,
                 size_t outlen) {
    int n = snprintf(out, outlen, "%s%s", endpoint, path);
    size_t o, hl = strlen(hub);
    o = n < 0 ? outlen : (size_t)n;
    if (o >= outlen || hl >= outlen - o) {
        if (outlen) out[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < hl; i++)
        out[o + i] = (char)tolower((unsigned char)hub[i]);
    out[o + hl] = '\0';
    return 0;
}

int audienceClient(const char *endpoint, const char *hub, char *out, size_t outlen) {
    return build(endpoint, AUDIENCE_CLIENT_PATH, hub, out, outlen);
}

int audienceRest(const char *endpoint, const char *hub, char *out, size_t outlen) {
    return build(endpoint, AUDIENCE_REST_PATH, hub, out, outlen);
}
