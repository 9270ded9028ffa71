/* Unit tests: crypto (HMAC-SHA256, base64, base64url). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const unsigned char *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* RFC 4231, test case 2. */
static void test_hmac_rfc4231(void **state) {
    (void)state;
    unsigned char mac[32];
    char h[65];
    const char *msg = "what do ya want for nothing?";
    assert_int_equal(cryptoHmacSha256("Jefe", 4, msg, strlen(msg), mac), 0);
    hex(mac, 32, h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_base64_vectors(void **state) {
    (void)state;
    /* RFC 4648 section 10 */
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = cryptoBase64Encode(in[i], strlen(in[i]));
        assert_string_equal(e, out[i]);
        size_t n = 99;
        unsigned char *d = cryptoBase64Decode(e, strlen(e), &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(in[i]));
        assert_memory_equal(d, in[i], n);
        free(e);
        free(d);
    }
}

static void test_base64_invalid(void **state) {
    (void)state;
    static const char *bad[] = {"Zg=", "Z", "Zm9v!", "not json", "Zm 9v", "Zm9vY===", "===="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        unsigned char *d = cryptoBase64Decode(bad[i], strlen(bad[i]), &n);
        if (d) fail_msg("'%s' decoded", bad[i]);
    }
}

static void test_base64url(void **state) {
    (void)state;
    const unsigned char bytes[] = {0xfb, 0xff, 0xfe};
    char *e = cryptoBase64UrlEncode(bytes, 3);
    assert_string_equal(e, "-__-");
    free(e);
    e = cryptoBase64UrlEncode("f", 1);
    assert_string_equal(e, "Zg"); /* no padding */
    size_t n;
    unsigned char *d = cryptoBase64UrlDecode(e, strlen(e), &n);
    assert_int_equal(n, 1);
    assert_int_equal(d[0], 'f');
    free(d);
    free(e);
}

/* FIPS 180-2 appendix A.1. */
static void test_sha1(void **state) {
    (void)state;
    unsigned char d[CRYPTO_SHA1_LEN];
    char h[2 * CRYPTO_SHA1_LEN + 1];
    assert_int_equal(cryptoSha1("abc", 3, d), 0);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static void test_secret_equal(void **state) {
    (void)state;
    assert_int_equal(cryptoSecretEqual("token", "token"), 1);
    assert_int_equal(cryptoSecretEqual("token", "tokem"), 0);
    assert_int_equal(cryptoSecretEqual("token", "token2"), 0);
    assert_int_equal(cryptoSecretEqual("token2", "token"), 0);
    assert_int_equal(cryptoSecretEqual("", ""), 1);
    assert_int_equal(cryptoSecretEqual("", "x"), 0);
    assert_int_equal(cryptoBytesEqual("ab\0c", "ab\0c", 4), 1);
    assert_int_equal(cryptoBytesEqual("ab\0c", "ab\0d", 4), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_invalid),
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_secret_equal),
    };
    return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
