/* utf8: strict UTF-8 decoding (see utf8.h). */
#include "utf8.h"

long utf8Next(const unsigned char *p, size_t n, size_t *used) {
    unsigned c = p[0];
    size_t extra;
    if (c < 0x80)
        extra = 0;
    else if ((c & 0xe0) == 0xc0 && c >= 0xc2)
        extra = 1;
    else if ((c & 0xf0) == 0xe0)
        extra = 2;
    else if ((c & 0xf8) == 0xf0 && c <= 0xf4)
        extra = 3;
    else
        return -1;
    if (extra >= n) return -1;
    unsigned long cp = extra ? c & (0x3fu >> extra) : c;
    for (size_t i = 1; i <= extra; i++) {
        if ((p[i] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *used = extra + 1;
    return (long)cp;
}

int utf8Valid(const void *s, size_t len) {
    const unsigned char *p = s;
    size_t i = 0, used;
    while (i < len) {
        if (p[i] < 0x80) { /* ASCII runs: the common case */
            i++;
            continue;
        }
        if (utf8Next(p + i, len - i, &used) < 0) return 0;
        i += used;
    }
    return 1;
}
