/* Unit tests: the stand-in's JSON hub protocol (hubproto): records, handshake, messages and the
 * records it builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hubproto.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Records spanning appends, several in one append, and the cap on an unfinished one. */
static void test_records(void **state) {
    (void)state;
    struct hubprotoRecords r;
    const char *rec;
    size_t len;
    hubprotoRecordsInit(&r, 16);
    assert_int_equal(hubprotoRecordsAppend(&r, "{\"a\"", 4), 0);
    assert_int_equal(hubprotoRecordsNext(&r, &rec, &len), 0);
    assert_int_equal(hubprotoRecordsAppend(&r, ":1}\x1e{}\x1e{", 9), 0);
    assert_int_equal(hubprotoRecordsNext(&r, &rec, &len), 1);
    assert_int_equal(len, 7);
    assert_memory_equal(rec, "{\"a\":1}", 7);
    assert_int_equal(hubprotoRecordsNext(&r, &rec, &len), 1);
    assert_int_equal(len, 2);
    assert_int_equal(hubprotoRecordsNext(&r, &rec, &len), 0);
    assert_int_equal(hubprotoRecordsAppend(&r, "xxxxxxxxxxxxxxxxxxxx", 20), -1); /* past 16 */
    hubprotoRecordsFree(&r);
}

static void test_handshake(void **state) {
    (void)state;
    char err[HUBPROTO_ERR_LEN];
    const char *ok = "{\"protocol\":\"json\",\"version\":1}";
    assert_int_equal(hubprotoHandshake(ok, strlen(ok), err, sizeof(err)), 0);
    const char *mp = "{\"protocol\":\"messagepack\",\"version\":1}";
    assert_int_equal(hubprotoHandshake(mp, strlen(mp), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "messagepack"));
    const char *v2 = "{\"protocol\":\"json\",\"version\":2}";
    assert_int_equal(hubprotoHandshake(v2, strlen(v2), err, sizeof(err)), -1);
    assert_int_equal(hubprotoHandshake("nope", 4, err, sizeof(err)), -1);
}

static void test_message(void **state) {
    (void)state;
    int type = 0;
    char *id = NULL;
    const char *inv = "{\"type\":1,\"invocationId\":\"7\",\"target\":\"x\",\"arguments\":[]}";
    assert_int_equal(hubprotoMessage(inv, strlen(inv), &type, &id), 0);
    assert_int_equal(type, HUBPROTO_INVOCATION);
    assert_string_equal(id, "7");
    free(id);
    id = NULL;
    assert_int_equal(hubprotoMessage("{\"type\":6}", 10, &type, &id), 0);
    assert_int_equal(type, HUBPROTO_PING);
    assert_null(id);
    assert_int_equal(hubprotoMessage("{\"type\":\"6\"}", 12, &type, &id), -1);
    assert_int_equal(hubprotoMessage("[6]", 3, &type, &id), -1);
}

/* Parses a built record (0x1E at its end) as JSON. */
static json_t *parse_record(const char *rec, size_t len) {
    assert_true(len > 0);
    assert_int_equal(rec[len - 1], HUBPROTO_RS);
    return json_loadb(rec, len - 1, 0, NULL);
}

static void test_built_records(void **state) {
    (void)state;
    char err[HUBPROTO_ERR_LEN];
    size_t len = 0;
    const char *body = "{\"target\":\"newMessage\",\"arguments\":[{\"a\":1}]}";
    char *rec = hubprotoInvocationFromBody(body, strlen(body), &len, err, sizeof(err));
    assert_non_null(rec);
    json_t *j = parse_record(rec, len);
    assert_int_equal(json_integer_value(json_object_get(j, "type")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "target")), "newMessage");
    assert_int_equal(json_array_size(json_object_get(j, "arguments")), 1);
    json_decref(j);
    free(rec);
    assert_null(hubprotoInvocationFromBody("{\"arguments\":[]}", 16, &len, err, sizeof(err)));
    assert_null(hubprotoInvocationFromBody("not json", 8, &len, err, sizeof(err)));

    rec = hubprotoClose("bye \"now\"", 1, &len);
    j = parse_record(rec, len);
    assert_int_equal(json_integer_value(json_object_get(j, "type")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "bye \"now\"");
    assert_true(json_is_true(json_object_get(j, "allowReconnect")));
    json_decref(j);
    free(rec);

    rec = hubprotoCompletionError("i\\d", "no", &len);
    j = parse_record(rec, len);
    assert_int_equal(json_integer_value(json_object_get(j, "type")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "invocationId")), "i\\d");
    json_decref(j);
    free(rec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_built_records),
    };
    return cmocka_run_group_tests_name("hubproto", tests, NULL, NULL);
}
