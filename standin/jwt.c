/* jwt: verification of the HS256 JSON Web Tokens that SignalR Service accepts (RFC 7519). */
#include "jwt.h"

#include "crypto.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one part of a token: canonical base64url only (RFC 7515 section 2: no padding, no
 * other characters, and the unused bits of the last character zero), so that one token has exactly
 * one spelling. Checked by encoding the bytes again and comparing. Returns the bytes (caller
 * frees) with their count in *outlen, or NULL. */
static unsigned char *decodeCanonical(const char *text, size_t len, size_t *outlen) {
    unsigned char *raw = cryptoBase64UrlDecode(text, len, outlen);
    char *again = raw ? cryptoBase64UrlEncode(raw, *outlen) : NULL;
    int same = again && strlen(again) == len && memcmp(again, text, len) == 0;
    free(again);
    if (same) return raw;
    free(raw);
    return NULL;
}

/* Decodes one base64url part as a JSON object. Returns a new reference, or NULL. */
static json_t *decodePart(const char *text, size_t len) {
    size_t rawLen = 0;
    unsigned char *raw = decodeCanonical(text, len, &rawLen);
    json_t *obj = NULL;
    if (!raw) return NULL;
    obj = json_loadb((const char *)raw, rawLen, 0, NULL);
    free(raw);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* A NumericDate claim: 1 with *out when present and a number, 0 when absent, -1 when malformed. */
static int numericDate(json_t *claims, const char *name, double *out) {
    json_t *v = json_object_get(claims, name);
    if (!v) return 0;
    if (!json_is_number(v)) return -1;
    *out = json_number_value(v);
    return isfinite(*out) ? 1 : -1;
}

static int audienceOk(json_t *aud, jwtAudienceCheck check, void *ctx) {
    size_t i;
    json_t *v;
    if (json_is_string(aud)) return check(json_string_value(aud), ctx);
    if (!json_is_array(aud)) return 0;
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && check(json_string_value(v), ctx)) return 1;
    }
    return 0;
}

int jwtVerify(const char *token, size_t len, const void *key, size_t keylen, long long now,
              jwtAudienceCheck check, void *ctx, char **user) {
    const char *dot1, *dot2;
    json_t *header = NULL, *claims = NULL, *alg, *uid;
    unsigned char mac[CRYPTO_SHA256_LEN], *sig = NULL;
    size_t sigLen = 0;
    double exp = 0, nbf = 0;
    int rc = JWT_MALFORMED, has;

    if (user) *user = NULL;
    if (!token || len == 0 || len > JWT_MAX_LEN || memchr(token, '\0', len)) goto out;
    dot1 = memchr(token, '.', len);
    if (!dot1) goto out;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) goto out;

    header = decodePart(token, (size_t)(dot1 - token));
    if (!header) goto out;
    alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        rc = JWT_BAD_ALGORITHM;
        goto out;
    }
    /* The signature before anything else of the token is believed or parsed further. */
    sig = decodeCanonical(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sigLen);
    if (!sig) goto out;
    if (cryptoHmacSha256(key, keylen, token, (size_t)(dot2 - token), mac) != 0) {
        rc = JWT_NO_MEMORY;
        goto out;
    }
    if (sigLen != sizeof(mac) || !cryptoBytesEqual(sig, mac, sizeof(mac))) {
        rc = JWT_BAD_SIGNATURE;
        goto out;
    }
    claims = decodePart(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!claims) goto out;

    has = numericDate(claims, "exp", &exp);
    if (has < 0) goto out;
    if (has == 0) {
        rc = JWT_NO_EXPIRY;
        goto out;
    }
    if ((double)now > exp + JWT_CLOCK_SKEW) {
        rc = JWT_EXPIRED;
        goto out;
    }
    has = numericDate(claims, "nbf", &nbf);
    if (has < 0) goto out;
    if (has && (double)now + JWT_CLOCK_SKEW < nbf) {
        rc = JWT_NOT_YET_VALID;
        goto out;
    }
    if (!audienceOk(json_object_get(claims, "aud"), check, ctx)) {
        rc = JWT_BAD_AUDIENCE;
        goto out;
    }
    uid = json_object_get(claims, "asrs.s.uid");
    if (!uid) uid = json_object_get(claims, "nameid");
    if (uid && !json_is_string(uid)) goto out;
    if (uid && user && json_string_length(uid) > 0) {
        *user = strdup(json_string_value(uid));
        if (!*user) {
            rc = JWT_NO_MEMORY;
            goto out;
        }
    }
    rc = JWT_OK;
out:
    free(sig);
    json_decref(header);
    json_decref(claims);
    return rc;
}

const char *jwtStatusText(int status) {
    switch (status) {
    case JWT_OK:
        return "valid";
    case JWT_MALFORMED:
        return "malformed token";
    case JWT_BAD_ALGORITHM:
        return "token algorithm is not HS256";
    case JWT_BAD_SIGNATURE:
        return "invalid token signature";
    case JWT_NO_EXPIRY:
        return "token has no exp claim";
    case JWT_EXPIRED:
        return "token expired";
    case JWT_NOT_YET_VALID:
        return "token not yet valid (nbf)";
    case JWT_BAD_AUDIENCE:
        return "token audience does not match";
    case JWT_NO_MEMORY:
        return "out of memory";
    default:
        return "invalid token";
    }
}
