/* Unit tests: utf8 (decoding, and validation's edges: overlongs, surrogates, range, truncation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "utf8.h"

static void test_valid(void **state) {
    (void)state;
    assert_int_equal(utf8Valid("", 0), 1);
    assert_int_equal(utf8Valid("caf\xc3\xa9 \xe2\x82\xac", 9), 1);
    assert_int_equal(utf8Valid("\xf0\x9f\x98\x80", 4), 1);
    assert_int_equal(utf8Valid("\xf4\x8f\xbf\xbf", 4), 1); /* U+10FFFF */
    assert_int_equal(utf8Valid("a\0b", 3), 1);             /* NUL is a character */
    assert_int_equal(utf8Valid("\xc0\xaf", 2), 0);         /* overlong */
    assert_int_equal(utf8Valid("\xe0\x80\xaf", 3), 0);     /* overlong, three bytes */
    assert_int_equal(utf8Valid("\xf0\x8f\xbf\xbf", 4), 0); /* overlong, four bytes */
    assert_int_equal(utf8Valid("\xed\xa0\x80", 3), 0);     /* surrogate */
    assert_int_equal(utf8Valid("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    assert_int_equal(utf8Valid("\xf5\x80\x80\x80", 4), 0);
    assert_int_equal(utf8Valid("\xe2\x82", 2), 0); /* truncated */
    assert_int_equal(utf8Valid("\x80", 1), 0);     /* lone continuation */
    assert_int_equal(utf8Valid("\xc3\x28", 2), 0); /* bad continuation */
    assert_int_equal(utf8Valid("\xff", 1), 0);
}

static void test_next(void **state) {
    (void)state;
    size_t used = 99;
    assert_int_equal(utf8Next((const unsigned char *)"A", 1, &used), 'A');
    assert_int_equal(used, 1);
    assert_int_equal(utf8Next((const unsigned char *)"\xc3\xa9", 2, &used), 0xe9);
    assert_int_equal(used, 2);
    assert_int_equal(utf8Next((const unsigned char *)"\xf0\x9f\x98\x80", 4, &used), 0x1f600);
    assert_int_equal(used, 4);
    used = 99;
    /* n bounds the read: the bytes past it are never looked at */
    assert_int_equal(utf8Next((const unsigned char *)"\xf0\x9f\x98\x80", 3, &used), -1);
    assert_int_equal(used, 99);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
