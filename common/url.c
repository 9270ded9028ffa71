/* url: parsing and the normal form of http(s) URLs (see url.h). */
#include "url.h"

#include "connstr.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 253 /* RFC 1035: the longest DNS name in text */

static int hostChar(unsigned char c) { return isalnum(c) || c == '.' || c == '-' || c == '_'; }

int urlParse(const char *text, size_t len, urlParts *u) {
    const char *rest, *end;
    size_t restLen;
    memset(u, 0, sizeof(*u));
    u->port = -1;
    u->path = "";
    if (len >= 8 && strncasecmp(text, "https://", 8) == 0) {
        rest = text + 8;
        u->https = 1;
    } else if (len >= 7 && strncasecmp(text, "http://", 7) == 0) {
        rest = text + 7;
    } else {
        return URL_BAD_SCHEME;
    }
    restLen = len - (size_t)(rest - text);
    end = rest + restLen;
    for (const unsigned char *c = (const unsigned char *)rest; c < (const unsigned char *)end;
         c++) {
        if (*c <= ' ' || *c >= 0x7f || strchr("\"<>\\^`{|}", *c)) return URL_BAD_CHAR;
        if (*c == '?' || *c == '#' || *c == '@') return URL_EXTRA;
    }
    const char *slash = memchr(rest, '/', restLen);
    const char *aend = slash ? slash : end; /* end of host[:port] */
    const char *hend = aend;                /* end of the host */
    if (rest < aend && rest[0] == '[') {
        const char *br = memchr(rest, ']', (size_t)(aend - rest));
        if (!br) return URL_BAD_BRACKET;
        hend = br + 1;
        if (hend < aend && *hend != ':') return URL_BAD_BRACKET;
        if (hend - rest < 3) return URL_NO_HOST;
        for (const char *c = rest + 1; c < br; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.') return URL_NO_HOST;
    } else {
        const char *colon = memchr(rest, ':', (size_t)(aend - rest));
        if (colon) hend = colon;
        for (const char *c = rest; c < hend; c++)
            if (!hostChar((unsigned char)*c)) return URL_NO_HOST;
    }
    if (hend == rest || hend - rest > HOST_MAX) return URL_NO_HOST;
    if (hend < aend &&
        connstrParseLong(hend + 1, (size_t)(aend - hend - 1), 1, 65535, &u->port) != 0)
        return URL_BAD_PORT;
    if (hend < aend && !isdigit((unsigned char)hend[1])) return URL_BAD_PORT; /* no sign, blank */
    u->host = rest;
    u->hostLen = (size_t)(hend - rest);
    u->path = aend;
    u->pathLen = restLen - (size_t)(aend - rest);
    return URL_OK;
}

const char *urlError(int code) {
    switch (code) {
    case URL_OK:
        return "is a URL";
    case URL_BAD_SCHEME:
        return "must start with http:// or https://";
    case URL_BAD_CHAR:
        return "holds a character a URL may not hold";
    case URL_EXTRA:
        return "must be scheme://host[:port][/path], with no user name, query or fragment";
    case URL_BAD_BRACKET:
        return "has an unclosed '[' or text after ']'";
    case URL_NO_HOST:
        return "has no host";
    default:
        return "has an invalid port";
    }
}

int urlFormat(const urlParts *u, long port, int withPath, char *out, size_t outlen) {
    size_t o;
    int n = snprintf(out, outlen, "%s", u->https ? "https://" : "http://");
    if (n < 0 || (size_t)n >= outlen) return -1;
    o = (size_t)n;
    if (u->hostLen >= outlen - o) return -1;
    for (size_t i = 0; i < u->hostLen; i++)
        out[o++] = (char)tolower((unsigned char)u->host[i]);
    out[o] = '\0';
    if (port <= 0) port = u->port;
    if (port > 0) {
        n = snprintf(out + o, outlen - o, ":%ld", port);
        if (n < 0 || (size_t)n >= outlen - o) return -1;
        o += (size_t)n;
    }
    size_t plen = withPath ? u->pathLen : 0;
    while (plen > 0 && u->path[plen - 1] == '/')
        plen--;
    if (plen >= outlen - o) return -1;
    memcpy(out + o, u->path, plen);
    out[o + plen] = '\0';
    return 0;
}
