/* Unit tests: invocation (every payload encoding the host produces, bad envelopes, times). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "invocation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (run from the repository root)", path);
    char *d = malloc(1 << 20);
    *len = fread(d, 1, (1 << 20) - 1, f);
    d[*len] = '\0';
    fclose(f);
    return d;
}

/* Fixture, events expected, which of them have a JSON body, device of event 0, partition. */
static const struct {
    const char *file;
    size_t events;
    const char *json_mask; /* '1' JSON body, '0' not JSON */
    const char *device0;
    int64_t seq0;
} fixtures[] = {
    {"eventhub-datatype-string.json", 3, "111", "pi-kitchen", 1017},
    {"eventhub-datatype-binary.json", 3, "111", "pi-kitchen", 1017},
    {"eventhub-no-datatype.json", 3, "111", "pi-kitchen", 1017},
    {"eventhub-unwrapped.json", 3, "111", "pi-kitchen", 1017},
    {"eventhub-array-body-and-garbage.json", 2, "10", NULL, 1017},
};

static void test_fixtures(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        char path[256], err[INVOCATION_ERR_LEN] = "";
        size_t len;
        snprintf(path, sizeof(path), "tests/fixtures/host/%s", fixtures[i].file);
        char *body = slurp(path, &len);
        hostBatch b;
        if (invocationDecodeBatch(body, len, &b, err, sizeof(err)))
            fail_msg("%s: %s", fixtures[i].file, err);
        assert_int_equal(b.count, fixtures[i].events);
        assert_string_equal(b.partition, "1");
        for (size_t e = 0; e < b.count; e++) {
            int is_json = b.events[e].body != NULL;
            if (is_json != (fixtures[i].json_mask[e] == '1'))
                fail_msg("%s event %zu: json %d", fixtures[i].file, e, is_json);
            assert_true(b.events[e].hasSeq);
            assert_int_equal(b.events[e].seq, fixtures[i].seq0 + (int64_t)e);
            assert_non_null(b.events[e].raw);
        }
        if (fixtures[i].device0)
            assert_string_equal(b.events[0].deviceId, fixtures[i].device0);
        else
            assert_null(b.events[0].deviceId);
        /* 2026-11-27T08:00:00.5210000Z */
        assert_int_equal(b.events[0].enqueuedMs, 1795766400521LL);
        invocationBatchFree(&b);
        free(body);
    }
}

static void test_binary_body_is_decoded(void **state) {
    (void)state;
    size_t len;
    char err[INVOCATION_ERR_LEN];
    char *body = slurp("tests/fixtures/host/eventhub-datatype-binary.json", &len);
    hostBatch b;
    assert_int_equal(invocationDecodeBatch(body, len, &b, err, sizeof(err)), 0);
    json_t *t = json_object_get(b.events[0].body, "temperature");
    assert_float_equal(json_real_value(t), 24.93, 1e-9);
    assert_non_null(strstr(b.events[0].raw, "\"temperature\""));
    invocationBatchFree(&b);
    free(body);
}

static void test_nul_in_an_unread_field(void **state) {
    (void)state;
    /* the event's JSON holds \u0000 in a field the handler never reads: still a JSON body */
    const char *body =
        "{\"Data\":{\"events\":\"[\\\"{\\\\\\\"t\\\\\\\":1,\\\\\\\"x\\\\\\\":"
        "\\\\\\\"a\\\\\\\\u0000b\\\\\\\"}\\\"]\"},\"Metadata\":{\"SequenceNumberArray\":\"[5]\"}}";
    char err[INVOCATION_ERR_LEN] = "";
    hostBatch b;
    if (invocationDecodeBatch(body, strlen(body), &b, err, sizeof(err))) fail_msg("%s", err);
    assert_int_equal(b.count, 1);
    assert_non_null(b.events[0].body);
    assert_int_equal(json_string_length(json_object_get(b.events[0].body, "x")), 3);
    assert_true(b.allSeq);
    invocationBatchFree(&b);
}

static void test_failed_decode_keeps_what_it_can(void **state) {
    (void)state;
    const char *body = "{\"Data\":{\"events\":\"[1,2]\"},\"Metadata\":{\"PartitionContext\":"
                       "{\"PartitionId\":\"3\"},\"SequenceNumberArray\":\"[9,7,8]\"}}";
    char err[INVOCATION_ERR_LEN] = "";
    hostBatch b;
    assert_int_equal(invocationDecodeBatch(body, strlen(body), &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "one entry per event"));
    assert_string_equal(b.partition, "3");
    assert_true(b.hasSeqRange);
    assert_int_equal(b.seqFirst, 7);
    assert_int_equal(b.seqLast, 9);
}

static void test_array_body(void **state) {
    (void)state;
    size_t len;
    char err[INVOCATION_ERR_LEN];
    char *body = slurp("tests/fixtures/host/eventhub-array-body-and-garbage.json", &len);
    hostBatch b;
    assert_int_equal(invocationDecodeBatch(body, len, &b, err, sizeof(err)), 0);
    assert_true(json_is_array(b.events[0].body));
    assert_int_equal(json_array_size(b.events[0].body), 2);
    assert_string_equal(b.events[1].raw, "not json");
    invocationBatchFree(&b);
    free(body);
}

static void test_bad_envelopes(void **state) {
    (void)state;
    static const struct {
        const char *body, *says;
    } cases[] = {
        {"{", "not valid JSON"},
        {"[]", "no 'Data'"},
        {"{\"Metadata\":{}}", "no 'Data'"},
        {"{\"Data\":\"x\"}", "no 'Data'"},
        {"{\"Data\":{}}", "no 'events'"},
        {"{\"Data\":{\"events\":5}}", "must be an array"},
        {"{\"Data\":{\"events\":\"not an array\"}}", "must be an array"},
        {"{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":7}", "'Metadata' must be an object"},
        {"{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"SequenceNumberArray\":\"[1,2]\"}}",
         "one entry per event"},
        {"{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"SequenceNumberArray\":[\"x\"]}}",
         "must hold integers"},
        {"{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"TriggerPartitionContext\":"
         "{\"PartitionId\":3}}}",
         "PartitionId"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hostBatch b;
        char err[INVOCATION_ERR_LEN] = "";
        assert_int_equal(
            invocationDecodeBatch(cases[i].body, strlen(cases[i].body), &b, err, sizeof(err)), -1);
        if (!strstr(err, cases[i].says))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].says);
    }
}

static void test_partition_context_variants(void **state) {
    (void)state;
    const char *body =
        "{\"Data\":{\"events\":[{\"t\":1}]},\"Metadata\":{\"PartitionContext\":"
        "{\"PartitionId\":\"7\"},\"SequenceNumberArray\":[\"42\"],"
        "\"EnqueuedTimeUtcArray\":[\"2026-11-27T08:00:01\"],"
        "\"SystemPropertiesArray\":[\"{\\\"iothub-connection-device-id\\\":\\\"d9\\\"}\"]}}";
    hostBatch b;
    char err[INVOCATION_ERR_LEN] = "";
    if (invocationDecodeBatch(body, strlen(body), &b, err, sizeof(err))) fail_msg("%s", err);
    assert_string_equal(b.partition, "7");
    assert_int_equal(b.events[0].seq, 42);
    assert_int_equal(b.events[0].enqueuedMs, 1795766401000LL);
    assert_string_equal(b.events[0].deviceId, "d9");
    invocationBatchFree(&b);
}

/* System properties: only the device id is decoded, from an object or an object encoded once
 * more, escaped or not, the last of duplicate keys; the others are only checked. */
static void test_device_ids(void **state) {
    (void)state;
    const char *body =
        "{\"Data\":{\"events\":[\"{}\",\"{}\",\"{}\",\"{}\",\"{}\"]},\"Metadata\":{"
        "\"SystemPropertiesArray\":\"[{\\\"x-opt-offset\\\":\\\"1\\\",\\\"iothub-connection-device-"
        "id\\\":\\\"d\\\\\\\"q\\\\u00e9\\\"},"
        "{\\\"iothub-connection-device-id\\\":\\\"first\\\",\\\"iothub-connection-device-id\\\":"
        "\\\"second\\\"},"
        "\\\"{\\\\\\\"iothub-connection-device-id\\\\\\\":\\\\\\\"inner\\\\\\\"}\\\","
        "{\\\"iothub-connection-device-id\\\":\\\"a\\\\u0000b\\\"},"
        "{\\\"iothub-connection-device-id\\\":7}]\"}}";
    hostBatch b;
    char err[INVOCATION_ERR_LEN] = "";
    if (invocationDecodeBatch(body, strlen(body), &b, err, sizeof(err))) fail_msg("%s", err);
    assert_int_equal(b.count, 5);
    assert_string_equal(b.events[0].deviceId, "d\"q\xc3\xa9");
    assert_string_equal(b.events[1].deviceId, "second");
    assert_string_equal(b.events[2].deviceId, "inner");
    assert_true(b.events[3].badDeviceId);
    assert_false(b.events[0].badDeviceId);
    assert_null(b.events[4].deviceId);
    invocationBatchFree(&b);
    /* a broken element inside the string is a broken array: the envelope cannot be read */
    const char *broken = "{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{"
                         "\"SystemPropertiesArray\":\"[{\\\"a\\\":}]\"}}";
    assert_int_equal(invocationDecodeBatch(broken, strlen(broken), &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "one entry per event"));
}

/* Sequence numbers exactly: what is not an integer in 0..INT64_MAX makes the batch unreadable
 * (never a clamped or negative watermark). */
static void test_sequence_numbers_exact(void **state) {
    (void)state;
    static const struct {
        const char *seqs; /* the SequenceNumberArray value as sent */
        int ok;
        int64_t seq;
    } cases[] = {
        {"[9223372036854775807]", 1, INT64_MAX},
        {"\"[9223372036854775807]\"", 1, INT64_MAX},
        {"[\"9223372036854775807\"]", 1, INT64_MAX},
        {"[\"000000000000000000000042\"]", 1, 42},
        {"[0]", 1, 0},
        {"[\"9223372036854775808\"]", 0, 0},     /* strtoll saturated this to INT64_MAX */
        {"[\"99999999999999999999999\"]", 0, 0}, /* and this */
        {"\"[9223372036854775808]\"", 0, 0},     /* beyond int64 inside the string */
        {"\"[-1]\"", 0, 0},
        {"[-1]", 0, 0},
        {"[\"-1\"]", 0, 0},
        {"[\"+1\"]", 0, 0},
        {"[\" 1\"]", 0, 0},
        {"[\"1e3\"]", 0, 0},
        {"[1.0]", 0, 0},
        {"[\"\"]", 0, 0},
        {"[true]", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512], err[INVOCATION_ERR_LEN] = "";
        snprintf(body, sizeof(body),
                 "{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"SequenceNumberArray\":%s}}",
                 cases[i].seqs);
        hostBatch b;
        int rc = invocationDecodeBatch(body, strlen(body), &b, err, sizeof(err));
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("case %zu (%s): rc %d, %s", i, cases[i].seqs, rc, err);
        if (cases[i].ok) {
            assert_true(b.events[0].hasSeq);
            assert_int_equal(b.events[0].seq, cases[i].seq);
            invocationBatchFree(&b);
        } else if (!strstr(err, "SequenceNumberArray")) {
            fail_msg("case %zu: '%s' does not name the sequence numbers", i, err);
        }
    }
    /* null: an event without a number (left to the caller) */
    const char *none =
        "{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"SequenceNumberArray\":[null]}}";
    hostBatch b;
    char err[INVOCATION_ERR_LEN] = "";
    assert_int_equal(invocationDecodeBatch(none, strlen(none), &b, err, sizeof(err)), 0);
    assert_false(b.events[0].hasSeq);
    invocationBatchFree(&b);
}

/* The Event Hub a batch comes from, from either context the extension sends. */
static void test_event_hub_identity(void **state) {
    (void)state;
    const char *both =
        "{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"TriggerPartitionContext\":"
        "{\"FullyQualifiedNamespace\":\"ihsu-1.servicebus.windows.net\",\"EventHubName\":\"iot-a\","
        "\"ConsumerGroup\":\"$Default\",\"PartitionId\":\"3\",\"IsCheckpointingAfterInvocation\":"
        "true},"
        "\"PartitionContext\":{\"FullyQualifiedNamespace\":\"ihsu-1.servicebus.windows.net\","
        "\"EventHubName\":\"iot-a\",\"ConsumerGroup\":\"$Default\",\"PartitionId\":\"3\"}}}";
    const char *older = "{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"PartitionContext\":"
                        "{\"EventHubName\":\"iot-b\",\"PartitionId\":\"a-b\"}}}";
    const char *none = "{\"Data\":{\"events\":[\"{}\"]}}";
    hostBatch b;
    char err[INVOCATION_ERR_LEN] = "";
    if (invocationDecodeBatch(both, strlen(both), &b, err, sizeof(err))) fail_msg("%s", err);
    assert_string_equal(b.eventHubNamespace, "ihsu-1.servicebus.windows.net");
    assert_string_equal(b.eventHubName, "iot-a");
    assert_string_equal(b.partition, "3");
    invocationBatchFree(&b);
    if (invocationDecodeBatch(older, strlen(older), &b, err, sizeof(err))) fail_msg("%s", err);
    assert_null(b.eventHubNamespace);
    assert_string_equal(b.eventHubName, "iot-b");
    assert_string_equal(b.partition, "a-b");
    invocationBatchFree(&b);
    if (invocationDecodeBatch(none, strlen(none), &b, err, sizeof(err))) fail_msg("%s", err);
    assert_null(b.eventHubNamespace);
    assert_null(b.eventHubName);
    assert_string_equal(b.partition, "");
    invocationBatchFree(&b);

    static const char *const bad[] = {
        "{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"PartitionContext\":{\"EventHubName\":5}}}",
        "{\"Data\":{\"events\":[\"{}\"]},\"Metadata\":{\"PartitionContext\":"
        "{\"FullyQualifiedNamespace\":\"a\\u0000b\"}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(invocationDecodeBatch(bad[i], strlen(bad[i]), &b, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "must be a string"));
    }
}

static void test_times(void **state) {
    (void)state;
    assert_int_equal(invocationParseTime("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(invocationParseTime("2026-11-27T08:00:00.5Z"), 1795766400500LL);
    assert_int_equal(invocationParseTime("2026-11-27T08:00:00.1234567"), 1795766400123LL);
    assert_int_equal(invocationParseTime("2026-11-27T08:00:00+00:00"), 1795766400000LL);
    assert_int_equal(invocationParseTime("2026-13-27T08:00:00Z"), -1);
    assert_int_equal(invocationParseTime("yesterday"), -1);
    assert_int_equal(invocationParseTime("2026-11-27T08:00:00.Z"), -1);
    char out[40];
    invocationFormatTime(1795766400521LL, out, sizeof(out));
    assert_string_equal(out, "2026-11-27T08:00:00.521Z");
}

static void test_answer(void **state) {
    (void)state;
    json_t *logs = json_array();
    json_array_append_new(logs, json_string("batch: 1 events"));
    char *a = invocationAnswer(logs, NULL);
    assert_string_equal(a, "{\"Outputs\":{},\"Logs\":[\"batch: 1 events\"],\"ReturnValue\":null}");
    free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_binary_body_is_decoded),
        cmocka_unit_test(test_nul_in_an_unread_field),
        cmocka_unit_test(test_failed_decode_keeps_what_it_can),
        cmocka_unit_test(test_array_body),
        cmocka_unit_test(test_bad_envelopes),
        cmocka_unit_test(test_partition_context_variants),
        cmocka_unit_test(test_device_ids),
        cmocka_unit_test(test_sequence_numbers_exact),
        cmocka_unit_test(test_event_hub_identity),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_answer),
    };
    return cmocka_run_group_tests_name("invocation", tests, NULL, NULL);
}
