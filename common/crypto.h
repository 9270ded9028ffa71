/* crypto: SHA-256, HMAC-SHA256, SHA-1, base64 and base64url, random bytes, constant-time
 * comparison; the only module that calls OpenSSL. */
#ifndef ENVIROMON_CRYPTO_H
#define ENVIROMON_CRYPTO_H

#include <stddef.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA1_LEN 20

/* HMAC-SHA256 of msg under key into out. Returns 0, or -1 on a library failure. */
int cryptoHmacSha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                     unsigned char out[CRYPTO_SHA256_LEN]);

/* SHA-256 of msg into out. Returns 0, or -1 on a library failure. */
int cryptoSha256(const void *msg, size_t msglen, unsigned char out[CRYPTO_SHA256_LEN]);

/* SHA-1 of data into out (for the WebSocket handshake, RFC 6455: never where collision
 * resistance matters). Returns 0, or -1 on a library failure. */
int cryptoSha1(const void *data, size_t len, unsigned char out[CRYPTO_SHA1_LEN]);

/* 1 when the strings a and b are equal, else 0, in a time that depends on their lengths only:
 * for secrets (tokens, signatures). */
int cryptoSecretEqual(const char *a, const char *b);

/* 1 when the n bytes at a and at b are equal, else 0, in a time that depends on n only. */
int cryptoBytesEqual(const void *a, const void *b, size_t n);

/* Standard base64 with padding. Returns a NUL-terminated string; caller frees. NULL on OOM. */
char *cryptoBase64Encode(const void *data, size_t len);

/* base64url without padding (RFC 7515 section 2). Caller frees. NULL on OOM. */
char *cryptoBase64UrlEncode(const void *data, size_t len);

/* Decodes standard base64 (padding required, no whitespace). Returns the bytes, NUL-terminated
 * for convenience, with their count in *outlen; caller frees. NULL when the text is not valid
 * base64. */
unsigned char *cryptoBase64Decode(const char *text, size_t len, size_t *outlen);

/* Decodes base64url, padding optional. Same ownership and errors as cryptoBase64Decode. */
unsigned char *cryptoBase64UrlDecode(const char *text, size_t len, size_t *outlen);

/* Fills buf with cryptographically random bytes. Returns 0, or -1. */
int cryptoRandomBytes(void *buf, size_t len);

#endif
