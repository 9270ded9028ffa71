/* Unit tests: table (Shared Key signature, key escaping and validity, typed properties). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "settings.h"
#include "table.h"

#include <stdlib.h>
#include <string.h>

#define DEV_CS "UseDevelopmentStorage=true"

/* Expected value computed independently with Python's hmac:
 *   python3 -c "import hmac,hashlib,base64; k=base64.b64decode('<emulator key>');
 *   s='MERGE\n\napplication/json\nFri, 27 Nov 2026 08:00:00 GMT\n/devstoreaccount1/
 *   devstoreaccount1/DeviceState(PartitionKey=\'Sydney\',RowKey=\'d%201\')';
 *   print(base64.b64encode(hmac.new(k,s.encode(),hashlib.sha256).digest()).decode())" */
static void test_signature_vector(void **state) {
    (void)state;
    storageAccount a;
    char err[256];
    assert_int_equal(settingsParseStorage("S", DEV_CS, &a, err, sizeof(err)), 0);
    char *sig =
        tableSignature(&a, "MERGE", "application/json", "Fri, 27 Nov 2026 08:00:00 GMT",
                       "/devstoreaccount1/DeviceState(PartitionKey='Sydney',RowKey='d%201')");
    assert_non_null(sig);
    assert_string_equal(sig, "gA1KM44wyd4oHIYBU7Nn25/SsaefYrrNCUddSpoMpgc=");
    free(sig);
}

static void test_escape_key(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"d1", "d1"},           {"O'Brien", "O%27%27Brien"},
        {"a b", "a%20b"},       {"caf\xc3\xa9", "caf%C3%A9"},
        {"x&y=z", "x%26y%3Dz"}, {"A-Z_a.z~0", "A-Z_a.z~0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        assert_int_equal(tableEscapeKey(cases[i].in, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].out);
    }
    char small[4];
    assert_int_equal(tableEscapeKey("abcdef", small, sizeof(small)), -1);
}

static void test_key_valid(void **state) {
    (void)state;
    assert_true(tableKeyValid("pi-kitchen"));
    assert_true(tableKeyValid("O'Brien \"quoted\""));
    assert_true(tableKeyValid("\xe6\xb8\xa9\xe5\xba\xa6-\xf0\x9f\x8c\xa1")); /* CJK + emoji */
    assert_false(tableKeyValid(""));
    assert_false(tableKeyValid(NULL));
    assert_false(tableKeyValid("a/b"));
    assert_false(tableKeyValid("a\\b"));
    assert_false(tableKeyValid("a#b"));
    assert_false(tableKeyValid("a?b"));
    assert_false(tableKeyValid("a\tb"));
    assert_false(tableKeyValid("a\x7f"));
    assert_false(tableKeyValid("\xc2\x85"));     /* C1 control NEL */
    assert_false(tableKeyValid("\xc3"));         /* truncated UTF-8 */
    assert_false(tableKeyValid("\xc0\xaf"));     /* overlong '/' */
    assert_false(tableKeyValid("\xed\xa0\x80")); /* surrogate */
    /* The limit is 512 UTF-16 units (1 KiB), not 1 KiB of UTF-8. */
    char big[TABLE_KEY_MAX + 8];
    memset(big, 'k', sizeof(big));
    big[TABLE_KEY_UNITS] = '\0';
    assert_true(tableKeyValid(big));
    big[TABLE_KEY_UNITS] = 'k';
    big[TABLE_KEY_UNITS + 1] = '\0';
    assert_false(tableKeyValid(big)); /* 513 ASCII characters: 513 bytes, past the limit */
    /* 511 ASCII + one emoji: 513 units (a supplementary character counts 2) */
    memset(big, 'k', 511);
    memcpy(big + 511, "\xf0\x9f\x8c\xa1", 5);
    assert_false(tableKeyValid(big));
    memcpy(big + 510, "\xf0\x9f\x8c\xa1", 5); /* 510 + 2 = 512 */
    assert_true(tableKeyValid(big));
    /* 512 CJK characters: 1536 bytes of UTF-8, 512 units */
    for (int i = 0; i < 512; i++)
        memcpy(big + 3 * i, "\xe6\xb8\xa9", 3);
    big[1536] = '\0';
    assert_true(tableKeyValid(big));
}

static void test_utf16_length(void **state) {
    (void)state;
    assert_int_equal(tableUtf16Length("abc", 3), 3);
    assert_int_equal(tableUtf16Length("\xe6\xb8\xa9\xf0\x9f\x8c\xa1", 7), 3);
    assert_int_equal(tableUtf16Length("\xc3", 1), (size_t)-1);
    /* a prefix never splits a character, nor goes past the units asked */
    assert_int_equal(tableUtf16Prefix("a\xf0\x9f\x8c\xa1"
                                      "b",
                                      6, 2),
                     1);
    assert_int_equal(tableUtf16Prefix("a\xf0\x9f\x8c\xa1"
                                      "b",
                                      6, 3),
                     5);
    assert_int_equal(tableUtf16Prefix("a\xf0\x9f\x8c\xa1"
                                      "b",
                                      6, 9),
                     6);
}

static void test_typed_properties(void **state) {
    (void)state;
    json_t *e = json_object();
    tableSetDouble(e, "Celsius", 20.0);
    tableSetInt64(e, "Count", 9007199254740993LL);
    char *text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"Celsius\":20.0,\"Celsius@odata.type\":\"Edm.Double\","
                              "\"Count\":\"9007199254740993\",\"Count@odata.type\":\"Edm.Int64\"}");
    free(text);
    assert_int_equal(tableGetInt64(e, "Count", -1), 9007199254740993LL);
    json_object_set_new(e, "N", json_integer(42));
    assert_int_equal(tableGetInt64(e, "N", -1), 42);
    json_object_set_new(e, "S", json_string("4x"));
    assert_int_equal(tableGetInt64(e, "S", -1), -1);
    assert_int_equal(tableGetInt64(e, "Missing", 7), 7);
    json_decref(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vector), cmocka_unit_test(test_escape_key),
        cmocka_unit_test(test_key_valid),        cmocka_unit_test(test_utf16_length),
        cmocka_unit_test(test_typed_properties),
    };
    return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
