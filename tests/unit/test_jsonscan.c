/* Unit tests: jsonscan (what it accepts against jansson, strings, walking, keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jsonscan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Texts both sides judge alike: accepted (1) or refused (0) by the scanner and by jansson. */
static const struct {
    const char *text;
    int ok;
} texts[] = {
    {"{}", 1},
    {" [ ] ", 1},
    {"\"a\"", 1},
    {"-0.5e+3", 1},
    {"0", 1},
    {"true", 1},
    {"null", 1},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud83d\\ude00\"}", 1},
    {"\"\\u0000\"", 1},
    {"", 0},
    {"{", 0},
    {"[1,]", 0},
    {"{\"a\" 1}", 0},
    {"{\"a\":1,}", 0},
    {"01", 0},
    {"1.", 0},
    {"-", 0},
    {".5", 0},
    {"tru", 0},
    {"\"a", 0},
    {"\"\\x\"", 0},
    {"\"\\ud800\"", 0},        /* a lone high surrogate */
    {"\"\\udc00\"", 0},        /* a lone low surrogate */
    {"\"\\ud800\\u0041\"", 0}, /* a high surrogate without its low half */
    {"\"\x01\"", 0},           /* a control character */
    {"\"\xc3\x28\"", 0},       /* not UTF-8 */
    {"\"\xed\xa0\x80\"", 0},   /* a UTF-16 surrogate in UTF-8 */
    {"{\"a\\u0000\":1}", 0},   /* jansson: NUL byte in object key not supported */
    {"[] []", 0},
    {"NaN", 0},
};

static void test_accepts_what_jansson_accepts(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        jsonscanSpan v;
        char err[128] = "";
        size_t n = strlen(texts[i].text);
        int mine = jsonscanCheck(texts[i].text, n, &v, err, sizeof(err)) == 0;
        json_t *j = json_loadb(texts[i].text, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (mine != texts[i].ok || (j != NULL) != texts[i].ok)
            fail_msg("case %zu (%s): scanner %d (%s), jansson %d, expected %d", i, texts[i].text,
                     mine, err, j != NULL, texts[i].ok);
        if (!mine) assert_non_null(strstr(err, "near byte"));
        json_decref(j);
    }
}

static void test_depth_limit(void **state) {
    (void)state;
    size_t n = JSONSCAN_MAX_DEPTH + 1;
    char *deep = malloc(2 * n + 1);
    jsonscanSpan v;
    char err[128];
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    assert_int_equal(jsonscanCheck(deep, 2 * n, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nested too deep"));
    assert_int_equal(jsonscanCheck(deep + 1, 2 * n - 2, &v, err, sizeof(err)), 0);
    assert_int_equal(v.type, JSONSCAN_ARRAY);
    free(deep);
}

static void test_strings(void **state) {
    (void)state;
    const char *t = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\"";
    jsonscanSpan v;
    char err[128], out[64];
    assert_int_equal(jsonscanCheck(t, strlen(t), &v, err, sizeof(err)), 0);
    size_t n = jsonscanString(&v, out);
    const char want[] = "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
}

static void test_walk_and_members(void **state) {
    (void)state;
    const char *t = "{\"k\":1, \"x\" : [ \"a\" , {\"y\":\"}\"} ,-2 ], \"k\" : \"last\", "
                    "\"\\u006b2\":true}";
    jsonscanSpan v, k, x, m;
    jsonscanIter it;
    char err[128], out[16];
    assert_int_equal(jsonscanCheck(t, strlen(t), &v, err, sizeof(err)), 0);
    /* duplicate keys: the last, as jansson keeps */
    assert_int_equal(jsonscanMember(&v, "k", &m), 1);
    assert_int_equal(m.type, JSONSCAN_STRING);
    jsonscanString(&m, out);
    assert_string_equal(out, "last");
    /* an escaped key */
    assert_int_equal(jsonscanMember(&v, "k2", &m), 1);
    assert_int_equal(m.type, JSONSCAN_TRUE);
    assert_int_equal(jsonscanMember(&v, "absent", &m), 0);
    assert_int_equal(jsonscanMember(&v, "x", &m), 1);
    assert_int_equal(jsonscanCount(&m), 3);
    jsonscanOpen(&it, &m);
    int types[3], n = 0;
    while (jsonscanNext(&it, &k, &x))
        types[n++] = x.type;
    assert_int_equal(n, 3);
    assert_int_equal(types[0], JSONSCAN_STRING);
    assert_int_equal(types[1], JSONSCAN_OBJECT);
    assert_int_equal(types[2], JSONSCAN_NUMBER);
    assert_null(k.s); /* array elements have no key */
    jsonscanOpen(&it, &v);
    n = 0;
    while (jsonscanNext(&it, &k, &x))
        n++;
    assert_int_equal(n, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_what_jansson_accepts),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_walk_and_members),
    };
    return cmocka_run_group_tests_name("jsonscan", tests, NULL, NULL);
}
