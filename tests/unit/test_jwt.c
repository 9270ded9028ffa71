/* Unit tests: the stand-in's token check (jwt): known vectors, algorithms, exp and nbf with the
 * skew, audiences, canonical base64url, size limit, the user id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto.h"
#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUD "http://127.0.0.1:8080/client/?hub=enviromon"
#define KEY "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
#define HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define NOW 1750000000LL

/* A known vector: HEADER, the claims {"aud":AUD,"exp":1800000000,"nbf":1700000000,
 * "asrs.s.uid":"alice","nameid":"bob"} and KEY, encoded and signed at test-writing time with
 * Python's base64.urlsafe_b64encode (padding stripped) and hmac.new(key, msg, hashlib.sha256). */
static const char knownToken[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJhdWQiOiJodHRwOi8vMTI3LjAuMC4xOjgwODAvY2xpZW50Lz9odWI9ZW52aXJvbW9uIiwiZXhwIjoxODAwMDAwMDAwLC"
    "JuYmYiOjE3MDAwMDAwMDAsImFzcnMucy51aWQiOiJhbGljZSIsIm5hbWVpZCI6ImJvYiJ9."
    "_YhJhEZaYSGIUZWCI-jQ3t-SFOC6VcZtZQwDlEWiITY";

static int audIs(const char *aud, void *ctx) { return strcmp(aud, (const char *)ctx) == 0; }

static int verify(const char *token, const char *key, long long now, char **user) {
    return jwtVerify(token, strlen(token), key, strlen(key), now, audIs, (void *)AUD, user);
}

/* header.claims.signature: parts given already encoded, signed over what is given. Caller frees. */
static char *signEncoded(const char *h64, const char *c64, const char *key) {
    unsigned char mac[CRYPTO_SHA256_LEN];
    size_t n = strlen(h64) + strlen(c64) + 1;
    char *input = malloc(n + 1);
    assert_non_null(input);
    snprintf(input, n + 1, "%s.%s", h64, c64);
    assert_int_equal(cryptoHmacSha256(key, strlen(key), input, n, mac), 0);
    char *s64 = cryptoBase64UrlEncode(mac, sizeof(mac));
    assert_non_null(s64);
    char *token = malloc(n + strlen(s64) + 2);
    assert_non_null(token);
    snprintf(token, n + strlen(s64) + 2, "%s.%s", input, s64);
    free(input);
    free(s64);
    return token;
}

/* A token of the JSON texts header and claims, signed with key. Caller frees. */
static char *makeToken(const char *header, const char *claims, const char *key) {
    char *h64 = cryptoBase64UrlEncode(header, strlen(header));
    char *c64 = cryptoBase64UrlEncode(claims, strlen(claims));
    assert_non_null(h64);
    assert_non_null(c64);
    char *token = signEncoded(h64, c64, key);
    free(h64);
    free(c64);
    return token;
}

/* verify() of a token made from claims with KEY at now. */
static int verifyClaims(const char *claims, long long now, char **user) {
    char *t = makeToken(HEADER, claims, KEY);
    int rc = verify(t, KEY, now, user);
    free(t);
    return rc;
}

static void test_known_vector(void **state) {
    (void)state;
    char *user = NULL;
    assert_int_equal(verify(knownToken, KEY, NOW, &user), JWT_OK);
    assert_string_equal(user, "alice"); /* asrs.s.uid before nameid */
    free(user);
    /* The test's own signer writes the same bytes as the independent one. */
    char *t = makeToken(HEADER,
                        "{\"aud\":\"" AUD "\",\"exp\":1800000000,\"nbf\":1700000000,"
                        "\"asrs.s.uid\":\"alice\",\"nameid\":\"bob\"}",
                        KEY);
    assert_string_equal(t, knownToken);
    free(t);
    /* RFC 7515 appendix A.1 (HS256; its key is the JWK's k, base64url): the signature checks out
     * and exp is read; it has no aud, so it is refused for that reason only. */
    static const char rfc[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                              "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
                              "LmNvbS9pc19yb290Ijp0cnVl"
                              "fQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    static const char rfcKey[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    size_t keyLen = 0;
    unsigned char *k = cryptoBase64UrlDecode(rfcKey, strlen(rfcKey), &keyLen);
    assert_non_null(k);
    assert_int_equal(jwtVerify(rfc, strlen(rfc), k, keyLen, 1300819380, audIs, (void *)AUD, NULL),
                     JWT_BAD_AUDIENCE);
    assert_int_equal(
        jwtVerify(rfc, strlen(rfc), k, keyLen - 1, 1300819380, audIs, (void *)AUD, NULL),
        JWT_BAD_SIGNATURE);
    free(k);
}

static void test_signature(void **state) {
    (void)state;
    assert_int_equal(verify(knownToken, "another key", NOW, NULL), JWT_BAD_SIGNATURE);
    /* A claim changed after signing: one character of the claims part. */
    char *t = strdup(knownToken);
    assert_non_null(t);
    char *claims = strchr(t, '.') + 1;
    claims[5] = claims[5] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(t, KEY, NOW, NULL), JWT_BAD_SIGNATURE);
    free(t);
    /* A signature of the right size for another text. */
    char *other = makeToken(HEADER, "{\"aud\":\"" AUD "\",\"exp\":1800000001}", KEY);
    char *mix = malloc(strlen(knownToken) + 1);
    assert_non_null(mix);
    size_t signedLen = (size_t)(strrchr(knownToken, '.') - knownToken);
    memcpy(mix, knownToken, signedLen);
    snprintf(mix + signedLen, strlen(knownToken) + 1 - signedLen, "%s", strrchr(other, '.'));
    assert_int_equal(verify(mix, KEY, NOW, NULL), JWT_BAD_SIGNATURE);
    free(mix);
    free(other);
}

static void test_algorithms(void **state) {
    (void)state;
    static const char *const refused[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}",
                                          "{\"alg\":\"HS512\"}",
                                          "{\"alg\":\"RS256\"}",
                                          "{\"alg\":\"hs256\"}",
                                          "{\"typ\":\"JWT\"}",
                                          "{\"alg\":256}"};
    const char *claims = "{\"aud\":\"" AUD "\",\"exp\":1800000000}";
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *t = makeToken(refused[i], claims, KEY);
        if (verify(t, KEY, NOW, NULL) != JWT_BAD_ALGORITHM) fail_msg("accepted %s", refused[i]);
        free(t);
    }
    /* alg none as attackers send it: an empty signature part. */
    char *h64 = cryptoBase64UrlEncode("{\"alg\":\"none\"}", 14);
    char *c64 = cryptoBase64UrlEncode(claims, strlen(claims));
    char none[512];
    snprintf(none, sizeof(none), "%s.%s.", h64, c64);
    assert_int_equal(verify(none, KEY, NOW, NULL), JWT_BAD_ALGORITHM);
    free(h64);
    free(c64);
}

static void test_times(void **state) {
    (void)state;
    const char *claims = "{\"aud\":\"" AUD "\",\"exp\":1750000100,\"nbf\":1750000000}";
    assert_int_equal(verifyClaims(claims, 1750000100 + JWT_CLOCK_SKEW, NULL), JWT_OK);
    assert_int_equal(verifyClaims(claims, 1750000100 + JWT_CLOCK_SKEW + 1, NULL), JWT_EXPIRED);
    assert_int_equal(verifyClaims(claims, 1750000000 - JWT_CLOCK_SKEW, NULL), JWT_OK);
    assert_int_equal(verifyClaims(claims, 1750000000 - JWT_CLOCK_SKEW - 1, NULL),
                     JWT_NOT_YET_VALID);
    assert_int_equal(verifyClaims("{\"aud\":\"" AUD "\"}", NOW, NULL), JWT_NO_EXPIRY);
    assert_int_equal(verifyClaims("{\"aud\":\"" AUD "\",\"exp\":\"1800000000\"}", NOW, NULL),
                     JWT_MALFORMED);
    assert_int_equal(
        verifyClaims("{\"aud\":\"" AUD "\",\"exp\":1800000000,\"nbf\":null}", NOW, NULL),
        JWT_MALFORMED);
    /* Without nbf only exp counts; a fractional exp is a NumericDate too. */
    assert_int_equal(verifyClaims("{\"aud\":\"" AUD "\",\"exp\":1750000000.5}", NOW, NULL), JWT_OK);
}

static void test_audiences(void **state) {
    (void)state;
    struct {
        const char *aud; /* the JSON value, NULL for none */
        int want;
    } cases[] = {
        {"\"" AUD "\"", JWT_OK},
        {"\"http://127.0.0.1:8080/client/?hub=other\"", JWT_BAD_AUDIENCE},
        {"[\"http://elsewhere/\",\"" AUD "\"]", JWT_OK},
        {"[\"http://elsewhere/\",42]", JWT_BAD_AUDIENCE},
        {"[]", JWT_BAD_AUDIENCE},
        {"42", JWT_BAD_AUDIENCE},
        {"{\"aud\":\"" AUD "\"}", JWT_BAD_AUDIENCE},
        {NULL, JWT_BAD_AUDIENCE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char claims[256];
        if (cases[i].aud)
            snprintf(claims, sizeof(claims), "{\"exp\":1800000000,\"aud\":%s}", cases[i].aud);
        else
            snprintf(claims, sizeof(claims), "{\"exp\":1800000000}");
        int rc = verifyClaims(claims, NOW, NULL);
        if (rc != cases[i].want) fail_msg("aud %s: %d, want %d", cases[i].aud, rc, cases[i].want);
    }
}

static void test_canonical_base64url(void **state) {
    (void)state;
    /* Padding on a part, signed as written: the signature is right, the spelling is not. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *claims = "{\"aud\":\"" AUD "\",\"exp\":1800000000}"; /* 71 bytes: 2 left over */
    char *h64 = cryptoBase64UrlEncode(HEADER, strlen(HEADER));
    char *c64 = cryptoBase64UrlEncode(claims, strlen(claims));
    assert_int_not_equal(strlen(c64) % 4, 0);
    char padded[256];
    snprintf(padded, sizeof(padded), "%s%.*s", c64, (int)(4 - strlen(c64) % 4), "===");
    char *t = signEncoded(h64, c64, KEY);
    assert_int_equal(verify(t, KEY, NOW, NULL), JWT_OK);
    free(t);
    t = signEncoded(h64, padded, KEY);
    assert_int_equal(verify(t, KEY, NOW, NULL), JWT_MALFORMED);
    free(t);
    /* A non-zero unused bit in the claims' last character: the same bytes for a lenient decoder. */
    char odd[256];
    snprintf(odd, sizeof(odd), "%s", c64);
    char *last = &odd[strlen(odd) - 1];
    *last = alphabet[(strchr(alphabet, *last) - alphabet) ^ 1];
    t = signEncoded(h64, odd, KEY);
    assert_int_equal(verify(t, KEY, NOW, NULL), JWT_MALFORMED);
    free(t);
    /* The standard alphabet's '+' and '/' are not base64url. */
    t = signEncoded(h64, c64, KEY);
    char *sig = strrchr(t, '.') + 1;
    for (char *c = sig; *c; c++)
        if (*c == '-')
            *c = '+';
        else if (*c == '_')
            *c = '/';
    if (strpbrk(sig, "+/")) assert_int_equal(verify(t, KEY, NOW, NULL), JWT_MALFORMED);
    free(t);
    /* Padding on the signature (43 characters: 1 left over in the last quantum). */
    t = signEncoded(h64, c64, KEY);
    char sigPadded[512];
    snprintf(sigPadded, sizeof(sigPadded), "%s=", t);
    assert_int_equal(verify(sigPadded, KEY, NOW, NULL), JWT_MALFORMED);
    free(t);
    free(h64);
    free(c64);
}

static void test_shape_and_size(void **state) {
    (void)state;
    static const char *const bad[] = {"", "abc", "a.b", "a.b.c.d", "..", knownToken + 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (verify(bad[i], KEY, NOW, NULL) == JWT_OK) fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(jwtVerify(NULL, 0, KEY, strlen(KEY), NOW, audIs, (void *)AUD, NULL),
                     JWT_MALFORMED);
    /* A NUL inside: the token is refused, not cut short. */
    char withNul[sizeof(knownToken) + 1];
    memcpy(withNul, knownToken, sizeof(knownToken));
    withNul[sizeof(knownToken) - 1] = '\0';
    assert_int_equal(
        jwtVerify(withNul, sizeof(knownToken), KEY, strlen(KEY), NOW, audIs, (void *)AUD, NULL),
        JWT_MALFORMED);
    /* Claims of other types than an object. */
    char *t = makeToken(HEADER, "[1,2]", KEY);
    assert_int_equal(verify(t, KEY, NOW, NULL), JWT_MALFORMED);
    free(t);
    t = makeToken(HEADER, "{\"exp\":1800000000", KEY);
    assert_int_equal(verify(t, KEY, NOW, NULL), JWT_MALFORMED);
    free(t);

    /* Size: a valid token of exactly JWT_MAX_LEN bytes passes; one byte more is refused unread. */
    char claims[JWT_MAX_LEN];
    size_t fill = 1;
    for (;; fill++) {
        snprintf(claims, sizeof(claims), "{\"aud\":\"" AUD "\",\"exp\":1800000000,\"pad\":\"%*s\"}",
                 (int)fill, "");
        t = makeToken(HEADER, claims, KEY);
        size_t n = strlen(t);
        free(t);
        if (n >= JWT_MAX_LEN - 3) break;
    }
    int hitMax = 0, hitOver = 0;
    for (size_t extra = 0; extra < 8; extra++) {
        snprintf(claims, sizeof(claims), "{\"aud\":\"" AUD "\",\"exp\":1800000000,\"pad\":\"%*s\"}",
                 (int)(fill + extra), "");
        t = makeToken(HEADER, claims, KEY);
        size_t n = strlen(t);
        int rc = verify(t, KEY, NOW, NULL);
        if (n <= JWT_MAX_LEN) {
            assert_int_equal(rc, JWT_OK);
            hitMax |= n == JWT_MAX_LEN;
        } else {
            assert_int_equal(rc, JWT_MALFORMED);
            hitOver = 1;
        }
        free(t);
    }
    assert_true(hitMax);
    assert_true(hitOver);
}

static void test_user(void **state) {
    (void)state;
    char *user = (char *)"unset";
    assert_int_equal(
        verifyClaims("{\"aud\":\"" AUD "\",\"exp\":1800000000,\"nameid\":\"bob\"}", NOW, &user),
        JWT_OK);
    assert_string_equal(user, "bob");
    free(user);
    user = (char *)"unset";
    assert_int_equal(verifyClaims("{\"aud\":\"" AUD "\",\"exp\":1800000000}", NOW, &user), JWT_OK);
    assert_null(user);
    user = (char *)"unset";
    assert_int_equal(
        verifyClaims("{\"aud\":\"" AUD "\",\"exp\":1800000000,\"asrs.s.uid\":\"\"}", NOW, &user),
        JWT_OK);
    assert_null(user); /* an empty id names no user */
    /* asrs.s.uid wins even when nameid is not a string; a non-string uid is malformed. */
    assert_int_equal(verifyClaims("{\"aud\":\"" AUD "\",\"exp\":1800000000,\"asrs.s.uid\":\"a\","
                                  "\"nameid\":7}",
                                  NOW, &user),
                     JWT_OK);
    assert_string_equal(user, "a");
    free(user);
    user = (char *)"unset";
    assert_int_equal(
        verifyClaims("{\"aud\":\"" AUD "\",\"exp\":1800000000,\"asrs.s.uid\":7}", NOW, &user),
        JWT_MALFORMED);
    assert_null(user);
    /* A refused token never hands out a user. */
    user = (char *)"unset";
    assert_int_equal(verify(knownToken, KEY, 1800000000LL + 60, &user), JWT_EXPIRED);
    assert_null(user);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vector),   cmocka_unit_test(test_signature),
        cmocka_unit_test(test_algorithms),     cmocka_unit_test(test_times),
        cmocka_unit_test(test_audiences),      cmocka_unit_test(test_canonical_base64url),
        cmocka_unit_test(test_shape_and_size), cmocka_unit_test(test_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
