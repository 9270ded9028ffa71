/* connstr: connection-string parts and the whole-number parser (see connstr.h for the rules). */
#include "connstr.h"

#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int isBlank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *len) {
    while (*len && isBlank(**s))
        (*s)++, (*len)--;
    while (*len && isBlank((*s)[*len - 1]))
        (*len)--;
}

int connstrNext(const char **pos, int *index, connstrPart *part) {
    const char *p = *pos;
    while (p && *p) {
        const char *semi = strchr(p, ';');
        size_t seglen = semi ? (size_t)(semi - p) : strlen(p);
        const char *seg = p;
        size_t l = seglen;
        p += seglen + (semi ? 1 : 0);
        *pos = p;
        part->index = ++*index;
        trim(&seg, &l);
        if (l == 0) continue;
        const char *eq = memchr(seg, '=', l);
        if (!eq) return -1;
        part->name = seg;
        part->nameLen = (size_t)(eq - seg);
        part->value = eq + 1;
        part->valueLen = l - part->nameLen - 1;
        trim(&part->name, &part->nameLen);
        trim(&part->value, &part->valueLen);
        return 1;
    }
    return 0;
}

int connstrNameIs(const connstrPart *part, const char *name) {
    return strlen(name) == part->nameLen && strncasecmp(part->name, name, part->nameLen) == 0;
}

int connstrGet(const char *cs, const char *key, char *out, size_t outlen) {
    const char *pos = cs;
    int index = 0, r;
    connstrPart part;
    while ((r = connstrNext(&pos, &index, &part)) != 0) {
        if (r < 0 || !connstrNameIs(&part, key)) continue;
        if (part.valueLen >= outlen) return -1;
        memcpy(out, part.value, part.valueLen);
        out[part.valueLen] = '\0';
        return 1;
    }
    return 0;
}

int connstrCheck(const char *cs, const char *const *known, char *err, size_t errlen) {
    const char *pos = cs;
    int index = 0, r;
    connstrPart part;
    while ((r = connstrNext(&pos, &index, &part)) != 0) {
        if (r < 0)
            return logSetError(err, errlen, "part %d has no '=' (expected Name=value)", part.index);
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = connstrNameIs(&part, *k);
        if (ok) continue;
        char names[512] = "";
        size_t o = 0;
        for (const char *const *k = known; *k && o < sizeof(names); k++)
            o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "", *k);
        return logSetError(err, errlen, "part %d has an unknown name (known: %s)", part.index,
                           names);
    }
    return 0;
}

int connstrParseLong(const char *s, size_t len, long min, long max, long *out) {
    int neg = 0;
    long long v = 0;
    size_t digits = 0;
    if (!s) return -1;
    trim(&s, &len);
    if (len && (*s == '-' || *s == '+')) {
        neg = *s == '-';
        s++, len--;
    }
    if (len == 0 || len > 18) return -1;
    for (; digits < len; digits++) {
        if (s[digits] < '0' || s[digits] > '9') return -1;
        v = v * 10 + (s[digits] - '0');
    }
    if (neg) v = -v;
    if (v < min || v > max) return -1;
    *out = (long)v;
    return 0;
}
