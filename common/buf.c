/* buf: a growing byte buffer with a cap fixed at creation; an append past the cap fails. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bufInit(buf *b, size_t cap) {
    b->data = NULL;
    b->len = b->size = 0;
    b->cap = cap;
}

static int grow(buf *b, size_t need) {
    if (need > b->cap) return -1;
    if (need + 1 <= b->size) return 0;
    size_t size = b->size ? b->size : 256;
    while (size < need + 1)
        size *= 2;
    if (size > b->cap + 1) size = b->cap + 1;
    char *d = realloc(b->data, size);
    if (!d) return -1;
    b->data = d;
    b->size = size;
    return 0;
}

int bufAppend(buf *b, const void *data, size_t len) {
    if (len > b->cap - b->len || grow(b, b->len + len) != 0) {
        bufFree(b);
        return -1;
    }
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int bufPrintf(buf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        bufFree(b);
        return -1;
    }
    if ((size_t)n < sizeof(small)) return bufAppend(b, small, (size_t)n);
    if ((size_t)n > b->cap - b->len || grow(b, b->len + (size_t)n) != 0) {
        bufFree(b);
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void bufDrop(buf *b, size_t n) {
    if (n >= b->len) {
        bufReset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void bufReset(buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void bufFree(buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
}

char *bufDetach(buf *b) {
    char *d = b->data;
    b->data = NULL;
    b->len = b->size = 0;
    return d;
}
