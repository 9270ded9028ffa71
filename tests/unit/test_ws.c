/* Unit tests: the stand-in's WebSocket framing (ws): client frames read incrementally, the rules
 * of RFC 6455 section 5, server frame headers, the accept key, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ws.h"

#include <stdlib.h>
#include <string.h>

/* A masked client frame of payload into out; returns its length. */
static size_t client_frame(unsigned char *out, int fin, int opcode, const void *payload,
                           size_t len) {
    static const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
    size_t n = 0;
    out[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        out[n++] = (unsigned char)(0x80 | len);
    } else {
        out[n++] = 0x80 | 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    }
    memcpy(out + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n + i] = ((const unsigned char *)payload)[i] ^ mask[i % 4];
    return n + len;
}

/* RFC 6455 section 1.3's example key and answer. */
static void test_accept_key(void **state) {
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    assert_int_equal(wsAcceptKey("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(wsAcceptKey("c2hvcnQ=", out), -1); /* not 16 bytes */
    assert_int_equal(wsAcceptKey("not base64!", out), -1);
}

static void test_frame_header(void **state) {
    (void)state;
    unsigned char h[WS_MAX_HEADER];
    assert_int_equal(wsFrameHeader(h, WS_OP_TEXT, 5), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 5);
    assert_int_equal(wsFrameHeader(h, WS_OP_BINARY, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal((h[2] << 8) | h[3], 126);
    assert_int_equal(wsFrameHeader(h, WS_OP_TEXT, 70000), 10);
    assert_int_equal(h[1], 127);
    assert_int_equal(((size_t)h[7] << 16) | ((size_t)h[8] << 8) | h[9], 70000);
}

/* A fragmented text message, fed one byte at a time with a ping between its fragments. */
static void test_reader_fragments(void **state) {
    (void)state;
    unsigned char wire[256];
    size_t n = 0;
    struct wsReader r;
    struct wsEvent ev;
    int events = 0;
    n += client_frame(wire + n, 0, WS_OP_TEXT, "hel", 3);
    n += client_frame(wire + n, 1, WS_OP_PING, "p", 1);
    n += client_frame(wire + n, 1, WS_OP_CONTINUATION, "lo", 2);
    wsReaderInit(&r, 1024);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(wsReaderFeed(&r, wire + i, 1), 0);
        int got;
        while ((got = wsReaderNext(&r, &ev)) == WS_READ_EVENT) {
            if (events == 0) {
                assert_int_equal(ev.opcode, WS_OP_PING);
                assert_memory_equal(ev.data, "p", 1);
            } else {
                assert_int_equal(ev.opcode, WS_OP_TEXT);
                assert_int_equal(ev.len, 5);
                assert_memory_equal(ev.data, "hello", 5);
            }
            events++;
        }
        assert_int_equal(got, WS_READ_MORE);
    }
    assert_int_equal(events, 2);
    wsReaderFree(&r);
}

/* Each broken frame fails with the close code the RFC asks for. */
static void test_reader_violations(void **state) {
    (void)state;
    struct {
        const char *what;
        unsigned char wire[16];
        size_t len;
        int code;
    } cases[] = {
        {"unmasked", {0x81, 0x01, 'x'}, 3, WS_CLOSE_PROTOCOL_ERROR},
        {"reserved bits", {0xc1, 0x81, 0, 0, 0, 0, 'x'}, 7, WS_CLOSE_PROTOCOL_ERROR},
        {"unknown opcode", {0x83, 0x80, 0, 0, 0, 0}, 6, WS_CLOSE_PROTOCOL_ERROR},
        {"fragmented ping", {0x09, 0x80, 0, 0, 0, 0}, 6, WS_CLOSE_PROTOCOL_ERROR},
        {"continuation first", {0x80, 0x80, 0, 0, 0, 0}, 6, WS_CLOSE_PROTOCOL_ERROR},
        {"bad UTF-8", {0x81, 0x81, 0, 0, 0, 0, 0xff}, 7, WS_CLOSE_INVALID_DATA},
        {"too big", {0x81, 0xfe, 0x10, 0x00, 0, 0, 0, 0}, 8, WS_CLOSE_TOO_BIG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wsReader r;
        struct wsEvent ev;
        wsReaderInit(&r, 1024);
        assert_int_equal(wsReaderFeed(&r, cases[i].wire, cases[i].len), 0);
        int got = wsReaderNext(&r, &ev);
        if (got != WS_READ_FAIL || ev.closeCode != cases[i].code)
            fail_msg("%s: result %d, close code %d, want %d", cases[i].what, got, ev.closeCode,
                     cases[i].code);
        wsReaderFree(&r);
    }
}

static void test_reader_close_code(void **state) {
    (void)state;
    unsigned char wire[32];
    const unsigned char payload[] = {0x03, 0xe9, 'b', 'y', 'e'}; /* 1001 */
    struct wsReader r;
    struct wsEvent ev;
    size_t n = client_frame(wire, 1, WS_OP_CLOSE, payload, sizeof(payload));
    wsReaderInit(&r, 1024);
    assert_int_equal(wsReaderFeed(&r, wire, n), 0);
    assert_int_equal(wsReaderNext(&r, &ev), WS_READ_EVENT);
    assert_int_equal(ev.opcode, WS_OP_CLOSE);
    assert_int_equal(ev.closeCode, 1001);
    wsReaderFree(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_reader_fragments),  cmocka_unit_test(test_reader_violations),
        cmocka_unit_test(test_reader_close_code),
    };
    return cmocka_run_group_tests_name("ws", tests, NULL, NULL);
}
