/* buf: a growing byte buffer with a cap fixed at creation; an append past the cap fails. */
#ifndef ENVIROMON_BUF_H
#define ENVIROMON_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t size;
    size_t cap; /* the most bytes len may reach */
} buf;

/* Starts an empty buffer that will never hold more than cap bytes. No allocation yet. */
void bufInit(buf *b, size_t cap);

/* Appends len bytes. Returns 0, or -1 when the cap would be passed or memory ran out; on -1 the
 * buffer is freed and emptied, so a caller can stop reading and report the error. */
int bufAppend(buf *b, const void *data, size_t len) __attribute__((warn_unused_result));

/* Appends formatted text, as bufAppend. */
int bufPrintf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));

/* Drops the first n bytes (all of them when n >= len), moving the rest to the front; keeps the
 * storage. */
void bufDrop(buf *b, size_t n);

/* Empties the buffer and keeps its storage. */
void bufReset(buf *b);

/* Frees the storage; the buffer can be used again. Accepts an empty buffer. */
void bufFree(buf *b);

/* Hands the data to the caller (caller frees; NULL when empty) and empties the buffer. */
char *bufDetach(buf *b);

#endif
