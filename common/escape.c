/* escape: percent-encoding and decoding, the OData string literal (see escape.h). */
#include "escape.h"

#include <stdlib.h>
#include <string.h>

static const char hexDigits[] = "0123456789ABCDEF";

static int unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int escapePercent(buf *b, const char *text, size_t len) {
    const unsigned char *p = (const unsigned char *)text;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (unreserved(p[i])) {
            run++;
            continue;
        }
        char e[3] = {'%', hexDigits[p[i] >> 4], hexDigits[p[i] & 15]};
        if (run && bufAppend(b, p + i - run, run)) return -1;
        run = 0;
        if (bufAppend(b, e, 3)) return -1;
    }
    if (run && bufAppend(b, p + len - run, run)) return -1;
    if (len == 0 && bufAppend(b, "", 0)) return -1; /* the result is always a string */
    return 0;
}

size_t escapePercentLength(const char *text, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += unreserved((unsigned char)text[i]) ? 1 : 3;
    return n;
}

int escapePercentTo(const char *text, char *out, size_t outlen) {
    buf b;
    if (outlen == 0) return -1;
    out[0] = '\0';
    bufInit(&b, outlen - 1);
    if (escapePercent(&b, text, strlen(text)) != 0) return -1;
    memcpy(out, b.data, b.len + 1);
    bufFree(&b);
    return 0;
}

static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *escapePercentDecode(const char *text, size_t len, int plus) {
    char *out = malloc(len + 1);
    size_t o = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '%') {
            int hi = len - i >= 3 ? hexValue(text[i + 1]) : -1;
            int lo = len - i >= 3 ? hexValue(text[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) { /* bad escape, or an encoded NUL */
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (plus && text[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = text[i];
        }
    }
    out[o] = '\0';
    return out;
}

int escapeODataString(buf *b, const char *text, int quoted) {
    if (quoted && bufAppend(b, "'", 1)) return -1;
    for (const char *p = text, *q; *p; p = q + 1) {
        q = strchr(p, '\'');
        if (!q) {
            if (bufAppend(b, p, strlen(p))) return -1;
            break;
        }
        if (bufAppend(b, p, (size_t)(q - p + 1)) || bufAppend(b, "'", 1)) return -1;
    }
    if (quoted && bufAppend(b, "'", 1)) return -1;
    if (!b->data && bufAppend(b, "", 0)) return -1;
    return 0;
}
