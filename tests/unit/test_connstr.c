/* Unit tests: connstr (parts, lookup, checking against known names, the whole-number parser). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "connstr.h"

#include <string.h>

static void test_get(void **state) {
    (void)state;
    char v[64];
    /* split at the first '=': base64 keys end in '=' */
    assert_int_equal(
        connstrGet("Endpoint=https://x;AccessKey=abc==;Version=1.0;", "accesskey", v, sizeof(v)),
        1);
    assert_string_equal(v, "abc==");
    assert_int_equal(connstrGet("A=1", "B", v, sizeof(v)), 0);
    assert_int_equal(connstrGet(NULL, "B", v, sizeof(v)), 0);
    char tiny[3] = "xy";
    assert_int_equal(connstrGet("A=12345", "A", tiny, sizeof(tiny)), -1);
    assert_string_equal(tiny, "xy"); /* unchanged */
    /* blanks trimmed around names and values; the first of two wins; parts without '=' skipped */
    assert_int_equal(connstrGet(" junk ; a = 1 ;A=2", "A", v, sizeof(v)), 1);
    assert_string_equal(v, "1");
    assert_int_equal(connstrGet("A=", "a", v, sizeof(v)), 1);
    assert_string_equal(v, "");
}

static void test_next(void **state) {
    (void)state;
    const char *pos = ";; Name = v=w ;;x;";
    int index = 0;
    connstrPart p;
    assert_int_equal(connstrNext(&pos, &index, &p), 1);
    assert_int_equal(p.index, 3); /* empty parts are counted */
    assert_true(connstrNameIs(&p, "NAME"));
    assert_int_equal(p.valueLen, 3);
    assert_memory_equal(p.value, "v=w", 3);
    assert_int_equal(connstrNext(&pos, &index, &p), -1); /* "x" */
    assert_int_equal(p.index, 5);
    assert_int_equal(connstrNext(&pos, &index, &p), 0);
    assert_int_equal(connstrNext(&pos, &index, &p), 0); /* stays at the end */
}

static void test_check(void **state) {
    (void)state;
    static const char *const known[] = {"Endpoint", "AccessKey", NULL};
    char err[256];
    assert_int_equal(connstrCheck("endpoint=http://x;AccessKey=k==;;", known, err, sizeof(err)), 0);
    assert_int_equal(connstrCheck("", known, err, sizeof(err)), 0);
    assert_int_equal(connstrCheck("Endpoint=x;SECRETKEYVALUE", known, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "part 2"));
    assert_null(strstr(err, "SECRET")); /* a part is never quoted */
    assert_int_equal(connstrCheck("Endpoint=x;Secret=1", known, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown name"));
    assert_null(strstr(err, "Secret"));
    assert_int_equal(connstrCheck("=x", known, err, sizeof(err)), -1);
}

static void test_parse_long(void **state) {
    (void)state;
    long v = 7;
    assert_int_equal(connstrParseLong("42", 2, 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(connstrParseLong(" 42 ", 4, 0, 100, &v), 0);
    assert_int_equal(connstrParseLong("4299", 2, 0, 100, &v), 0); /* only len bytes are read */
    assert_int_equal(v, 42);
    assert_int_equal(connstrParseLong("-5", 2, -10, 10, &v), 0);
    assert_int_equal(v, -5);
    v = 7;
    assert_int_equal(connstrParseLong("101", 3, 0, 100, &v), -1);
    assert_int_equal(connstrParseLong("4x", 2, 0, 100, &v), -1);
    assert_int_equal(connstrParseLong("", 0, 0, 100, &v), -1);
    assert_int_equal(connstrParseLong("-", 1, -10, 100, &v), -1);
    assert_int_equal(connstrParseLong("4 2", 3, 0, 100, &v), -1);
    assert_int_equal(connstrParseLong("99999999999999999999999", 23, 0, 100, &v), -1);
    assert_int_equal(connstrParseLong(NULL, 0, 0, 100, &v), -1);
    assert_int_equal(v, 7); /* unchanged on failure */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_parse_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
