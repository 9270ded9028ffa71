/* Unit tests: escape (percent-encoding both ways, the OData string literal, caps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "escape.h"

#include <stdlib.h>
#include <string.h>

static void test_percent(void **state) {
    (void)state;
    buf b;
    bufInit(&b, 64);
    assert_int_equal(escapePercent(&b, "a b/\xc3\xa9~-._'", 11), 0);
    assert_string_equal(b.data, "a%20b%2F%C3%A9~-._%27");
    assert_int_equal(escapePercentLength("a b/\xc3\xa9~-._'", 11), strlen(b.data));
    bufFree(&b);
    bufInit(&b, 64);
    assert_int_equal(escapePercent(&b, "", 0), 0);
    assert_string_equal(b.data, ""); /* always a string, even empty */
    bufFree(&b);
    bufInit(&b, 4);
    assert_int_equal(escapePercent(&b, "ab c", 4), -1); /* past the cap: freed */
    assert_null(b.data);
    /* the NUL inside the span is encoded, not a terminator */
    bufInit(&b, 64);
    assert_int_equal(escapePercent(&b, "a\0b", 3), 0);
    assert_string_equal(b.data, "a%00b");
    bufFree(&b);
}

static void test_percent_to(void **state) {
    (void)state;
    char small[4], out[32];
    assert_int_equal(escapePercentTo("a b", small, sizeof(small)), -1);
    assert_string_equal(small, "");
    assert_int_equal(escapePercentTo("abc", small, sizeof(small)), 0);
    assert_string_equal(small, "abc");
    assert_int_equal(escapePercentTo("abcd", small, sizeof(small)), -1);
    assert_int_equal(escapePercentTo("x", small, 0), -1);
    assert_int_equal(escapePercentTo("user@contoso.com", out, sizeof(out)), 0);
    assert_string_equal(out, "user%40contoso.com");
}

static void test_decode(void **state) {
    (void)state;
    char *s = escapePercentDecode("a%2Fb+c%e2%82%ac", 16, 1);
    assert_string_equal(s, "a/b c\xe2\x82\xac");
    free(s);
    s = escapePercentDecode("a+b", 3, 0);
    assert_string_equal(s, "a+b");
    free(s);
    s = escapePercentDecode("abc%41", 3, 0); /* only len bytes are read */
    assert_string_equal(s, "abc");
    free(s);
    assert_null(escapePercentDecode("abc%41", 5, 0)); /* "%4": cut short */
    assert_null(escapePercentDecode("%zz", 3, 0));
    assert_null(escapePercentDecode("%4", 2, 0));
    assert_null(escapePercentDecode("%", 1, 0));
    assert_null(escapePercentDecode("a%00b", 5, 0)); /* an encoded NUL */
    s = escapePercentDecode("", 0, 1);
    assert_string_equal(s, "");
    free(s);
}

static void test_odata(void **state) {
    (void)state;
    buf b;
    bufInit(&b, 64);
    assert_int_equal(escapeODataString(&b, "O'Brien''s", 1), 0);
    assert_string_equal(b.data, "'O''Brien''''s'");
    bufReset(&b);
    assert_int_equal(escapeODataString(&b, "'", 0), 0);
    assert_string_equal(b.data, "''");
    bufReset(&b);
    assert_int_equal(escapeODataString(&b, "", 1), 0);
    assert_string_equal(b.data, "''");
    bufFree(&b);
    bufInit(&b, 0);
    assert_int_equal(escapeODataString(&b, "", 0), 0);
    assert_string_equal(b.data, "");
    bufFree(&b);
    /* a literal that does not fit fails whole: never cut short */
    bufInit(&b, 5);
    assert_int_equal(escapeODataString(&b, "ab'c", 1), -1);
    assert_null(b.data);
    bufInit(&b, 6);
    assert_int_equal(escapeODataString(&b, "ab'c", 0), 0);
    assert_string_equal(b.data, "ab''c");
    bufFree(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_percent_to),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_odata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
