/* utf8: strict UTF-8 decoding and validation (RFC 3629: no overlongs, no UTF-16 surrogates,
 * nothing past U+10FFFF, nothing truncated), for table keys and WebSocket text frames. */
#ifndef ENVIROMON_UTF8_H
#define ENVIROMON_UTF8_H

#include <stddef.h>

/* Decodes the character at p (n > 0 bytes left): its code point, with its byte length in *used,
 * or -1 when the bytes there are not valid UTF-8 (*used unchanged). */
long utf8Next(const unsigned char *p, size_t n, size_t *used);
/* 1 when s[0..len) is valid UTF-8 (an empty string is), else 0. */
int utf8Valid(const void *s, size_t len);

#endif
