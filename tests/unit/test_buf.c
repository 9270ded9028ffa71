/* Unit tests: buf (the cap, the free-on-failure rule, bufDrop). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"

#include <stdlib.h>
#include <string.h>

static void test_cap(void **state) {
    (void)state;
    buf b;
    bufInit(&b, 5);
    assert_int_equal(bufAppend(&b, "abc", 3), 0);
    assert_int_equal(bufPrintf(&b, "%d", 12), 0);
    assert_string_equal(b.data, "abc12");
    assert_int_equal(bufAppend(&b, "x", 1), -1); /* past the cap: freed and emptied */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(bufPrintf(&b, "%s", "123456"), -1);
    assert_null(b.data);
    bufFree(&b);
}

static void test_drop(void **state) {
    (void)state;
    buf b;
    bufInit(&b, 64);
    assert_int_equal(bufAppend(&b, "hello world", 11), 0);
    bufDrop(&b, 6);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "world");
    bufDrop(&b, 0);
    assert_string_equal(b.data, "world");
    bufDrop(&b, 99); /* more than held: empty */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    bufFree(&b);
    bufInit(&b, 8);
    bufDrop(&b, 3); /* nothing held yet */
    assert_null(b.data);
    /* the room dropped is usable again under the cap */
    assert_int_equal(bufAppend(&b, "12345678", 8), 0);
    bufDrop(&b, 4);
    assert_int_equal(bufAppend(&b, "abcd", 4), 0);
    assert_string_equal(b.data, "5678abcd");
    char *d = bufDetach(&b);
    assert_null(b.data);
    assert_string_equal(d, "5678abcd");
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
