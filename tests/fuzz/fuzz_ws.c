/* fuzz_ws: the stand-in's WebSocket input: client frames fed in chunks of a fuzzed size, the hub
 * protocol records inside the messages, the handshake and message parsers, and a REST body.
 */
#include "hubproto.h"
#include "utf8.h"
#include "ws.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void records(struct hubprotoRecords *rec, const unsigned char *data, size_t len) {
    const char *r;
    size_t n;
    char err[HUBPROTO_ERR_LEN], *id = NULL;
    int type;
    if (hubprotoRecordsAppend(rec, data, len) != 0) return;
    while (hubprotoRecordsNext(rec, &r, &n)) {
        hubprotoHandshake(r, n, err, sizeof(err));
        if (hubprotoMessage(r, n, &type, &id) == 0) free(id);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct wsReader reader;
    struct hubprotoRecords rec;
    struct wsEvent ev;
    size_t chunk, n = 0;
    int res = WS_READ_MORE;
    char *body;
    if (size < 1) return 0;
    chunk = (size_t)data[0] + 1;
    wsReaderInit(&reader, 4096);
    hubprotoRecordsInit(&rec, 4096);
    for (size_t off = 1; off < size && res != WS_READ_FAIL; off += n) {
        n = size - off < chunk ? size - off : chunk;
        if (wsReaderFeed(&reader, data + off, n) != 0) break;
        while ((res = wsReaderNext(&reader, &ev)) == WS_READ_EVENT) {
            assert(ev.opcode != WS_OP_TEXT || utf8Valid(ev.data, ev.len));
            assert(ev.opcode == WS_OP_CLOSE || ev.opcode == WS_OP_PING || ev.opcode == WS_OP_PONG ||
                   ev.opcode == WS_OP_TEXT || ev.opcode == WS_OP_BINARY);
            if (ev.opcode == WS_OP_TEXT || ev.opcode == WS_OP_BINARY)
                records(&rec, ev.data, ev.len);
        }
    }
    wsReaderFree(&reader);
    hubprotoRecordsFree(&rec);
    body = hubprotoInvocationFromBody((const char *)data, size, &n, NULL, 0);
    assert(!body || (n > 0 && body[n - 1] == HUBPROTO_RS));
    free(body);
    return 0;
}
