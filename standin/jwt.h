/* jwt: verification of the HS256 JSON Web Tokens that SignalR Service accepts (RFC 7519). */
#ifndef STANDIN_JWT_H
#define STANDIN_JWT_H

#include <stddef.h>

#define JWT_MAX_LEN 16384 /* longer tokens are refused unread */
#define JWT_CLOCK_SKEW 5  /* seconds of leeway on exp and nbf */

enum jwtStatus {
    JWT_OK = 0,
    JWT_MALFORMED,     /* not three base64url parts of JSON objects, or claims of the wrong type */
    JWT_BAD_ALGORITHM, /* alg is not HS256 */
    JWT_BAD_SIGNATURE,
    JWT_NO_EXPIRY, /* no exp claim: SignalR Service requires one */
    JWT_EXPIRED,
    JWT_NOT_YET_VALID, /* nbf in the future */
    JWT_BAD_AUDIENCE,
    JWT_NO_MEMORY
};

/* Decides whether an aud value names this request. Returns 1 to accept. aud is borrowed. */
typedef int (*jwtAudienceCheck)(const char *aud, void *ctx);

/* Verifies token[0..len) against key[0..keylen) at time now (Unix seconds): the HS256 signature
 * (compared in constant time), exp (required), nbf (when present), and aud (a string or an array
 * of strings, one of which must satisfy check). On JWT_OK and when user is not NULL, *user
 * receives the user id from the claim asrs.s.uid, else nameid (caller frees), or NULL when the
 * token names none. */
int jwtVerify(const char *token, size_t len, const void *key, size_t keylen, long long now,
              jwtAudienceCheck check, void *ctx, char **user);

/* A short English reason for a status, static. */
const char *jwtStatusText(int status);

#endif
