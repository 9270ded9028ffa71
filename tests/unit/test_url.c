/* Unit tests: url (parsing http(s) URLs, every error code, the normal form). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "url.h"

#include <string.h>

static int parse(const char *text, urlParts *u) { return urlParse(text, strlen(text), u); }

static void test_parse_good(void **state) {
    (void)state;
    urlParts u;
    assert_int_equal(parse("HTTPS://Example.COM:8443/A/b/", &u), URL_OK);
    assert_int_equal(u.https, 1);
    assert_int_equal(u.hostLen, 11);
    assert_memory_equal(u.host, "Example.COM", 11);
    assert_int_equal(u.port, 8443);
    assert_int_equal(u.pathLen, 5);
    assert_memory_equal(u.path, "/A/b/", 5);
    assert_int_equal(parse("http://h", &u), URL_OK);
    assert_int_equal(u.https, 0);
    assert_int_equal(u.port, -1);
    assert_int_equal(u.pathLen, 0);
    assert_int_equal(parse("http://[::1]:7/", &u), URL_OK);
    assert_int_equal(u.hostLen, 5);
    assert_int_equal(u.port, 7);
    assert_int_equal(parse("http://a_b-c.d", &u), URL_OK);
    /* only len bytes are read */
    assert_int_equal(urlParse("http://h?q", 8, &u), URL_OK);
}

static void test_parse_bad(void **state) {
    (void)state;
    static const struct {
        const char *text;
        int code;
    } cases[] = {
        {"", URL_BAD_SCHEME},
        {"ftp://x", URL_BAD_SCHEME},
        {"http:/x", URL_BAD_SCHEME},
        {"http://x y", URL_BAD_CHAR},
        {"http://x\x7f", URL_BAD_CHAR},
        {"http://x\xc3\xa9", URL_BAD_CHAR},
        {"http://x/<", URL_BAD_CHAR},
        {"http://x?q=1", URL_EXTRA},
        {"http://x#f", URL_EXTRA},
        {"http://u@x", URL_EXTRA},
        {"http://[::1", URL_BAD_BRACKET},
        {"http://[::1]x", URL_BAD_BRACKET},
        {"http://[zz]", URL_NO_HOST},
        {"http://[]", URL_NO_HOST},
        {"http://", URL_NO_HOST},
        {"http:///p", URL_NO_HOST},
        {"http://:80", URL_NO_HOST},
        {"http://ho%st", URL_NO_HOST},
        {"http://x:", URL_BAD_PORT},
        {"http://x:0", URL_BAD_PORT},
        {"http://x:65536", URL_BAD_PORT},
        {"http://x:+80", URL_BAD_PORT},
        {"http://x:8o", URL_BAD_PORT},
        {"http://x:99999999999999999999", URL_BAD_PORT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        urlParts u;
        int code = parse(cases[i].text, &u);
        if (code != cases[i].code)
            fail_msg("'%s': code %d, expected %d", cases[i].text, code, cases[i].code);
        assert_true(strlen(urlError(code)) > 0);
    }
    char longHost[300];
    memset(longHost, 'a', sizeof(longHost));
    memcpy(longHost, "http://", 7);
    urlParts u;
    assert_int_equal(urlParse(longHost, 7 + 253, &u), URL_OK);
    assert_int_equal(urlParse(longHost, 7 + 254, &u), URL_NO_HOST);
}

static void test_format(void **state) {
    (void)state;
    urlParts u;
    char out[64];
    assert_int_equal(parse("HTTPS://Example.COM:8443/A/b//", &u), URL_OK);
    assert_int_equal(urlFormat(&u, -1, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "https://example.com:8443/A/b");
    assert_int_equal(urlFormat(&u, 9000, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "https://example.com:9000");
    assert_int_equal(parse("http://H/", &u), URL_OK);
    assert_int_equal(urlFormat(&u, -1, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "http://h");
    /* too small: every length up to the exact fit fails, the exact fit works */
    assert_int_equal(parse("http://host:80/p", &u), URL_OK);
    for (size_t n = 0; n < strlen("http://host:80/p") + 1; n++)
        assert_int_equal(urlFormat(&u, -1, 1, out, n), -1);
    assert_int_equal(urlFormat(&u, -1, 1, out, strlen("http://host:80/p") + 1), 0);
    assert_string_equal(out, "http://host:80/p");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
