/* url: the one checker of http(s) URLs given in settings and connection strings
 * (scheme://host[:port][/path]), and their normal form. */
#ifndef ENVIROMON_URL_H
#define ENVIROMON_URL_H

#include <stddef.h>

enum {
    URL_OK = 0,
    URL_BAD_SCHEME,  /* not http:// or https:// */
    URL_BAD_CHAR,    /* a blank, control, non-ASCII or one of "<>\^`{|} */
    URL_EXTRA,       /* user info, a query or a fragment */
    URL_BAD_BRACKET, /* an unclosed '[' or text after ']' */
    URL_NO_HOST,     /* an empty or malformed host name */
    URL_BAD_PORT,    /* not a whole number from 1 to 65535 */
};

/* The parts of a URL; pointers into the text given to urlParse. */
typedef struct urlParts {
    int https;
    const char *host; /* as written: a name, an IPv4 address or a [bracketed] IPv6 one */
    size_t hostLen;
    long port;        /* -1 when absent */
    const char *path; /* from the first '/' after the host to the end; "" when none */
    size_t pathLen;
} urlParts;

/* Parses text[0..len) (scheme case-insensitive; a host name of letters, digits, '.', '-' and
 * '_', at most 253 bytes). Returns URL_OK with *u filled, or one of the codes above. */
int urlParse(const char *text, size_t len, urlParts *u);
/* A phrase for a code, to follow the URL's name in a message ("Endpoint has no host"). Never
 * quotes the URL. */
const char *urlError(int code);
/* Writes the normal form: scheme and host lowercased, ":port" when port > 0 (else the URL's own
 * port, if any), then the path without its trailing '/'s when withPath (else nothing). Returns
 * 0, or -1 when out is too small. */
int urlFormat(const urlParts *u, long port, int withPath, char *out, size_t outlen);

#endif
