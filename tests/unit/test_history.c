/* Unit tests: history (keys, OData quoting, summary rows read back, malformed minutes skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "history.h"

#include <jansson.h>
#include <string.h>

static void test_partition_key(void **state) {
    (void)state;
    char pk[HISTORY_PK_LEN];
    historyPartitionKey(1764669599999LL, pk); /* 2025-12-02T09:59:59.999Z */
    assert_string_equal(pk, "h2025120209");
    historyPartitionKey(1764669600000LL, pk);
    assert_string_equal(pk, "h2025120210");
}

static void test_row_key(void **state) {
    (void)state;
    reading r;
    memset(&r, 0, sizeof(r));
    historyReading v = {"dev 1", &r, "3", 42, 2, 1764669600123LL};
    char rk[HISTORY_RK_MAX];
    assert_int_equal(historyRowKey(&v, rk, sizeof(rk)), 0);
    assert_string_equal(rk, "dev 1 1764669600123 3 00000000000000000042 2");
    /* a partition that cannot be in a key is "p"; a long id is its digest */
    char longid[400];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    historyReading w = {longid, &r, "a/b", 1, 0, 1764669600123LL};
    assert_int_equal(historyRowKey(&w, rk, sizeof(rk)), 0);
    assert_int_equal(rk[0], '~');
    assert_non_null(strstr(rk, " 1764669600123 p 00000000000000000001 0"));
    assert_int_equal(historyRowKey(&v, rk, 10), -1);
    char sk[HISTORY_RK_MAX];
    assert_int_equal(historySummaryKey("dev 1", sk, sizeof(sk)), 0);
    assert_string_equal(sk, "~~m dev 1");
}

static void test_quote(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(historyQuote("o'brien' or 'a'", out, sizeof(out)), 0);
    assert_string_equal(out, "'o''brien'' or ''a'''");
    assert_int_equal(historyQuote("abcdef", out, 5), -1);
}

static void test_summary_row(void **state) {
    (void)state;
    json_t *row = json_pack("{s:s,s:s,s:s,s:s}", "M00", "3|3,1,5,9|0,,,|1,1000,1000,1000|0,,,",
                            "M59", "1|1,-2.5,-2.5,-2.5|1,50,50,50|0,,,|1,7,7,7", "M10",
                            "2|2,1,x,3|0,,,|0,,,|0,,,", "M11", "2|2,1,2,3");
    historySummary s;
    historySummaryFromRow(row, &s);
    assert_int_equal(s.count, 4); /* M10 and M11 are malformed: skipped */
    assert_int_equal(s.minute[0].count, 3);
    assert_int_equal(s.minute[0].m[METRIC_CELSIUS].n, 3);
    assert_true(s.minute[0].m[METRIC_CELSIUS].max == 5);
    assert_int_equal(s.minute[0].m[METRIC_HUMIDITY].n, 0);
    assert_true(s.minute[59].m[METRIC_CELSIUS].min == -2.5);
    assert_true(s.minute[59].m[METRIC_LIGHT].sum == 7);
    assert_int_equal(s.minute[10].count, 0);
    assert_int_equal(s.minute[11].count, 0);
    json_decref(row);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_key),
        cmocka_unit_test(test_row_key),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_summary_row),
    };
    return cmocka_run_group_tests_name("history", tests, NULL, NULL);
}
