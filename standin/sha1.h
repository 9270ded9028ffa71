/* sha1: SHA-1 (FIPS 180-4), only for the WebSocket handshake's Sec-WebSocket-Accept (RFC 6455). */
#ifndef STANDIN_SHA1_H
#define STANDIN_SHA1_H

#include <stddef.h>

#define SHA1_LEN 20

/* The SHA-1 digest of data[0..len) into out. Not for anything that needs collision resistance. */
void sha1Digest(const void *data, size_t len, unsigned char out[SHA1_LEN]);

#endif
