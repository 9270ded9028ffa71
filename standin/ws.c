/* ws: RFC 6455 WebSocket framing for the server side: a frame reader, frame headers, the
 * handshake's accept key. Pure: no sockets, no threads. */
#include "ws.h"

#include "crypto.h"
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_BYTES 16
#define WS_FEED_SLACK (256 * 1024) /* bytes past one whole frame the caller may feed at once */

void wsReaderInit(struct wsReader *r, size_t maxMessage) {
    memset(r, 0, sizeof(*r));
    r->maxMessage = maxMessage;
    bufInit(&r->in, maxMessage + WS_MAX_HEADER + WS_FEED_SLACK);
    bufInit(&r->msg, maxMessage);
}

void wsReaderFree(struct wsReader *r) {
    if (!r) return;
    bufFree(&r->in);
    bufFree(&r->msg);
    r->inPos = 0;
}

int wsReaderFeed(struct wsReader *r, const void *data, size_t len) {
    if (r->inPos) { /* drop what was consumed */
        bufDrop(&r->in, r->inPos);
        r->inPos = 0;
    }
    if (len == 0) return 0;
    return bufAppend(&r->in, data, len); /* past the cap: the connection is closed */
}

static int closeCodeValid(unsigned code) {
    if (code >= 3000 && code <= 4999) return 1;
    return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

static int fail(struct wsEvent *ev, int code) {
    ev->opcode = WS_OP_CLOSE;
    ev->data = NULL;
    ev->len = 0;
    ev->closeCode = code;
    return WS_READ_FAIL;
}

int wsReaderNext(struct wsReader *r, struct wsEvent *ev) {
    if (r->msgDone) {
        bufReset(&r->msg);
        r->msgDone = 0;
    }
    for (;;) {
        const unsigned char *p = (const unsigned char *)r->in.data + r->inPos;
        size_t avail = r->in.len - r->inPos, hdr = 2;
        uint64_t len;
        int fin, op;
        const unsigned char *mask;
        unsigned char *dst;

        if (avail < 2) return WS_READ_MORE;
        fin = p[0] & 0x80;
        op = p[0] & 0x0f;
        if (p[0] & 0x70) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);    /* no extension agreed */
        if (!(p[1] & 0x80)) return fail(ev, WS_CLOSE_PROTOCOL_ERROR); /* clients must mask */
        len = p[1] & 0x7f;
        if (len == 126) {
            if (avail < 4) return WS_READ_MORE;
            len = (uint64_t)p[2] << 8 | p[3];
            hdr = 4;
        } else if (len == 127) {
            if (avail < 10) return WS_READ_MORE;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            if (len >> 63) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
            hdr = 10;
        }
        if (op >= WS_OP_CLOSE) {
            if (op > WS_OP_PONG) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
            if (!fin || len > sizeof(r->control)) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
        } else {
            if (op > WS_OP_BINARY) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
            if ((op == WS_OP_CONTINUATION) != (r->msgOp != 0))
                return fail(ev, WS_CLOSE_PROTOCOL_ERROR); /* stray or interrupted fragment */
            if (len > r->maxMessage - r->msg.len) return fail(ev, WS_CLOSE_TOO_BIG);
        }
        if (avail - hdr < 4 + len) return WS_READ_MORE;
        mask = p + hdr;
        p += hdr + 4;
        if (op >= WS_OP_CLOSE) {
            dst = r->control;
        } else { /* appended masked, then unmasked in place */
            if (bufAppend(&r->msg, p, (size_t)len)) return fail(ev, WS_CLOSE_INTERNAL_ERROR);
            dst = (unsigned char *)r->msg.data + r->msg.len - (size_t)len;
        }
        for (size_t i = 0; i < len; i++)
            dst[i] = p[i] ^ mask[i & 3];
        r->inPos += hdr + 4 + (size_t)len;

        if (op >= WS_OP_CLOSE) {
            ev->opcode = op;
            ev->data = r->control;
            ev->len = (size_t)len;
            ev->closeCode = 0;
            if (op == WS_OP_CLOSE) {
                ev->closeCode = WS_CLOSE_NO_STATUS;
                if (len == 1) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
                if (len >= 2) {
                    unsigned code = (unsigned)r->control[0] << 8 | r->control[1];
                    if (!closeCodeValid(code)) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
                    if (!utf8Valid(r->control + 2, (size_t)len - 2))
                        return fail(ev, WS_CLOSE_INVALID_DATA);
                    ev->closeCode = (int)code;
                    ev->data = r->control + 2;
                    ev->len = (size_t)len - 2;
                }
            }
            return WS_READ_EVENT;
        }
        if (op != WS_OP_CONTINUATION) r->msgOp = op;
        if (!fin) continue;
        if (r->msgOp == WS_OP_TEXT && !utf8Valid(r->msg.data, r->msg.len))
            return fail(ev, WS_CLOSE_INVALID_DATA);
        ev->opcode = r->msgOp;
        ev->data = r->msg.data ? (const unsigned char *)r->msg.data : (const unsigned char *)"";
        ev->len = r->msg.len;
        ev->closeCode = 0;
        r->msgOp = 0;
        r->msgDone = 1;
        return WS_READ_EVENT;
    }
}

size_t wsFrameHeader(unsigned char out[WS_MAX_HEADER], int opcode, size_t len) {
    out[0] = (unsigned char)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

int wsAcceptKey(const char *clientKey, char out[WS_ACCEPT_LEN + 1]) {
    char buf[64];
    unsigned char digest[CRYPTO_SHA1_LEN], *raw = NULL;
    char *b64 = NULL;
    size_t keyLen = strlen(clientKey), rawLen = 0;
    int rc = -1;

    if (keyLen != 24) goto out; /* base64 of 16 bytes */
    raw = cryptoBase64Decode(clientKey, keyLen, &rawLen);
    if (!raw || rawLen != WS_KEY_BYTES) goto out;
    memcpy(buf, clientKey, keyLen);
    memcpy(buf + keyLen, WS_GUID, sizeof(WS_GUID) - 1);
    if (cryptoSha1(buf, keyLen + sizeof(WS_GUID) - 1, digest) != 0) goto out;
    b64 = cryptoBase64Encode(digest, sizeof(digest));
    if (!b64 || strlen(b64) != WS_ACCEPT_LEN) goto out;
    memcpy(out, b64, WS_ACCEPT_LEN + 1);
    rc = 0;
out:
    free(raw);
    free(b64);
    return rc;
}
