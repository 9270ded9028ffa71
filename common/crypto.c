/* crypto: SHA-256, HMAC-SHA256, SHA-1, base64 and base64url, random bytes, constant-time
 * comparison; the only module that calls OpenSSL. */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

int cryptoHmacSha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                     unsigned char out[CRYPTO_SHA256_LEN]) {
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen)) return -1;
    return outlen == CRYPTO_SHA256_LEN ? 0 : -1;
}

/* A digest of data under md into out, which must hold len bytes. */
static int digest(const EVP_MD *md, const void *data, size_t datalen, unsigned char *out,
                  unsigned int len) {
    unsigned int outlen = 0;
    if (!EVP_Digest(data, datalen, out, &outlen, md, NULL)) return -1;
    return outlen == len ? 0 : -1;
}

int cryptoSha256(const void *msg, size_t msglen, unsigned char out[CRYPTO_SHA256_LEN]) {
    return digest(EVP_sha256(), msg, msglen, out, CRYPTO_SHA256_LEN);
}

int cryptoSha1(const void *data, size_t len, unsigned char out[CRYPTO_SHA1_LEN]) {
    return digest(EVP_sha1(), data, len, out, CRYPTO_SHA1_LEN);
}

int cryptoSecretEqual(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    /* Compare a with itself when the lengths differ, so the time does not depend on b's bytes. */
    return CRYPTO_memcmp(a, la == lb ? b : a, la) == 0 && la == lb;
}

int cryptoBytesEqual(const void *a, const void *b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *encode(const unsigned char *in, size_t len, const char *alphabet, int pad) {
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    size_t o = 0, i = 0;
    if (!out) return NULL;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        if (i + 1 < len)
            out[o++] = alphabet[v >> 6 & 63];
        else if (pad)
            out[o++] = '=';
        if (pad) out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

char *cryptoBase64Encode(const void *data, size_t len) { return encode(data, len, b64, 1); }

char *cryptoBase64UrlEncode(const void *data, size_t len) { return encode(data, len, b64url, 0); }

static int valueOf(char c, int url) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

static unsigned char *decode(const char *text, size_t len, size_t *outlen, int url) {
    size_t pad = 0;
    while (pad < 2 && len > pad && text[len - 1 - pad] == '=')
        pad++;
    if (!url && (len % 4 != 0)) return NULL;
    size_t n = len - pad; /* significant characters */
    if (n % 4 == 1) return NULL;
    if (url && pad && (n + pad) % 4 != 0) return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = valueOf(text[i], url);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    out[o] = '\0';
    if (outlen) *outlen = o;
    return out;
}

unsigned char *cryptoBase64Decode(const char *text, size_t len, size_t *outlen) {
    return decode(text, len, outlen, 0);
}

unsigned char *cryptoBase64UrlDecode(const char *text, size_t len, size_t *outlen) {
    return decode(text, len, outlen, 1);
}

int cryptoRandomBytes(void *buf, size_t len) { return RAND_bytes(buf, (int)len) == 1 ? 0 : -1; }
