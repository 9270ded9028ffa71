/* Unit tests: dict (lookups, replacement, the byte budget and its least-recently-used eviction). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int freed;

static void count_free(void *v) {
    freed++;
    free(v);
}

static char *val(const char *s) { return strdup(s); }

/* The bytes one entry of key with a value of n bytes costs. */
static size_t cost(const char *key, size_t n) { return dictEntryBytes(key, n); }

static void test_basics(void **state) {
    (void)state;
    dict d;
    freed = 0;
    assert_int_equal(dictInit(&d, 4, count_free), 0);
    assert_int_equal(dictSet(&d, "a", val("1")), 0);
    assert_int_equal(dictSet(&d, "b", val("2")), 0);
    assert_string_equal(dictGet(&d, "a"), "1");
    assert_int_equal(dictSet(&d, "a", val("3")), 0); /* replaced: the old value freed */
    assert_int_equal(freed, 1);
    assert_string_equal(dictGet(&d, "a"), "3");
    assert_int_equal(dictSize(&d), 2);
    assert_int_equal(dictDelete(&d, "a"), 1);
    assert_int_equal(dictDelete(&d, "a"), 0);
    assert_null(dictGet(&d, "a"));
    dictFree(&d);
    assert_int_equal(freed, 3);
}

static void test_budget_evicts_least_recently_used(void **state) {
    (void)state;
    dict d;
    freed = 0;
    assert_int_equal(dictInit(&d, 8, count_free), 0);
    dictSetBudget(&d, 3 * cost("k0", 100));
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(dictSetSized(&d, k, val(k), 100), 0);
    }
    assert_int_equal(dictSize(&d), 3);
    assert_int_equal(dictBytes(&d), 3 * cost("k0", 100));
    assert_non_null(dictTouch(&d, "k0")); /* k0 used: k1 is now the oldest */
    assert_int_equal(dictSetSized(&d, "k3", val("k3"), 100), 0);
    assert_int_equal(dictSize(&d), 3);
    assert_int_equal(dictEvicted(&d), 1);
    assert_null(dictGet(&d, "k1"));
    assert_non_null(dictGet(&d, "k0"));
    assert_non_null(dictGet(&d, "k3"));
    /* A larger value evicts as many as it needs. */
    assert_int_equal(dictSetSized(&d, "k4", val("k4"), 2 * cost("k0", 100)), 0);
    assert_true(dictBytes(&d) <= 3 * cost("k0", 100));
    assert_non_null(dictGet(&d, "k4"));
    /* One value over the whole budget is not kept, and replaces nothing stale. */
    assert_int_equal(dictSetSized(&d, "k4", val("big"), 10000), 1);
    assert_null(dictGet(&d, "k4"));
    assert_true(dictBytes(&d) <= 3 * cost("k0", 100));
    /* Replacing an entry accounts for the new size. */
    assert_int_equal(dictSetSized(&d, "k5", val("k5"), 100), 0);
    size_t before = dictBytes(&d);
    assert_int_equal(dictSetSized(&d, "k5", val("k5"), 10), 0);
    assert_true(dictBytes(&d) < before);
    dictFree(&d);
    assert_int_equal(dictBytes(&d), 0);
}

static void test_budget_under_churn(void **state) {
    (void)state;
    dict d;
    freed = 0;
    assert_int_equal(dictInit(&d, 64, count_free), 0);
    dictSetBudget(&d, 64 * 1024);
    for (int i = 0; i < 20000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "dev%d", i % 5000);
        assert_true(dictSetSized(&d, k, val(k), (size_t)(i % 700)) >= 0);
        assert_true(dictBytes(&d) <= (size_t)(64 * 1024));
        if (i % 3 == 0) dictTouch(&d, "dev7");
    }
    size_t n = 0;
    dictIter it;
    dictIterInit(&it, &d);
    while (dictIterNext(&it, NULL, NULL))
        n++;
    assert_int_equal(n, dictSize(&d));
    dictFree(&d);
    assert_int_equal(freed, 20000);
}

static int take_odd(const char *key, void *value, void *ctx) {
    int *taken = ctx;
    if ((key[1] - '0') % 2) {
        free(value);
        (*taken)++;
        return 1;
    }
    return 0;
}

static void test_take_each(void **state) {
    (void)state;
    dict d;
    int taken = 0;
    freed = 0;
    assert_int_equal(dictInit(&d, 4, count_free), 0);
    for (int i = 0; i < 6; i++) {
        char k[4];
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(dictSet(&d, k, val(k)), 0);
    }
    dictTakeEach(&d, take_odd, &taken);
    assert_int_equal(taken, 3);
    assert_int_equal(dictSize(&d), 3);
    assert_int_equal(freed, 0); /* taken values are the visitor's */
    assert_null(dictGet(&d, "k1"));
    assert_non_null(dictGet(&d, "k2"));
    dictFree(&d);
}

static void test_iterator(void **state) {
    (void)state;
    dict d = {0};
    assert_false(dictReady(&d));
    assert_int_equal(dictInit(&d, 2, count_free), 0);
    assert_true(dictReady(&d));
    dictIter it;
    dictIterInit(&it, &d);
    assert_int_equal(dictIterNext(&it, NULL, NULL), 0); /* empty */
    assert_int_equal(dictSet(&d, "a", val("1")), 0);
    assert_int_equal(dictSet(&d, "b", val("2")), 0);
    assert_int_equal(dictSet(&d, "c", val("3")), 0);
    assert_non_null(dictTouch(&d, "a")); /* now the newest */
    const char *want[] = {"b", "c", "a"}, *key;
    void *value;
    size_t n = 0;
    dictIterInit(&it, &d);
    while (dictIterNext(&it, &key, &value)) {
        assert_true(n < 3);
        assert_string_equal(key, want[n]);
        assert_non_null(dictGet(&d, key)); /* lookups are fine during a walk */
        n++;
    }
    assert_int_equal(n, 3);
    assert_int_equal(dictSize(&d), 3);
    dictFree(&d);
    assert_false(dictReady(&d));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_iterator),
        cmocka_unit_test(test_budget_evicts_least_recently_used),
        cmocka_unit_test(test_budget_under_churn),
        cmocka_unit_test(test_take_each),
    };
    return cmocka_run_group_tests_name("dict", tests, NULL, NULL);
}
