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

/* One frame's header, as read by frameHeader. */
struct frame {
    int fin, op;
    uint64_t len;
    size_t hdr; /* bytes before the mask */
};

/* Reads the header at p (avail bytes) and checks it against the reader's state. Returns 1 with
 * *f filled, 0 when more bytes are needed, or -code (a WS_CLOSE_* code) when it is refused. */
static int frameHeader(const struct wsReader *r, const unsigned char *p, size_t avail,
                       struct frame *f) {
    if (avail < 2) return 0;
    f->fin = p[0] & 0x80;
    f->op = p[0] & 0x0f;
    f->hdr = 2;
    if (p[0] & 0x70) return -WS_CLOSE_PROTOCOL_ERROR;    /* no extension agreed */
    if (!(p[1] & 0x80)) return -WS_CLOSE_PROTOCOL_ERROR; /* clients must mask */
    f->len = p[1] & 0x7f;
    if (f->len == 126) {
        if (avail < 4) return 0;
        f->len = (uint64_t)p[2] << 8 | p[3];
        f->hdr = 4;
    } else if (f->len == 127) {
        if (avail < 10) return 0;
        f->len = 0;
        for (int i = 0; i < 8; i++)
            f->len = f->len << 8 | p[2 + i];
        if (f->len >> 63) return -WS_CLOSE_PROTOCOL_ERROR;
        f->hdr = 10;
    }
    if (f->op >= WS_OP_CLOSE) {
        if (f->op > WS_OP_PONG) return -WS_CLOSE_PROTOCOL_ERROR;
        if (!f->fin || f->len > sizeof(r->control)) return -WS_CLOSE_PROTOCOL_ERROR;
    } else {
        if (f->op > WS_OP_BINARY) return -WS_CLOSE_PROTOCOL_ERROR;
        if ((f->op == WS_OP_CONTINUATION) != (r->msgOp != 0))
            return -WS_CLOSE_PROTOCOL_ERROR; /* stray or interrupted fragment */
        if (f->len > r->maxMessage - r->msg.len) return -WS_CLOSE_TOO_BIG;
    }
    return 1;
}

/* A control frame, unmasked in r->control, as an event. */
static int controlEvent(struct wsReader *r, const struct frame *f, struct wsEvent *ev) {
    ev->opcode = f->op;
    ev->data = r->control;
    ev->len = (size_t)f->len;
    ev->closeCode = 0;
    if (f->op != WS_OP_CLOSE) return WS_READ_EVENT;
    ev->closeCode = WS_CLOSE_NO_STATUS;
    if (f->len == 1) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
    if (f->len >= 2) {
        unsigned code = (unsigned)r->control[0] << 8 | r->control[1];
        if (!closeCodeValid(code)) return fail(ev, WS_CLOSE_PROTOCOL_ERROR);
        if (!utf8Valid(r->control + 2, (size_t)f->len - 2)) return fail(ev, WS_CLOSE_INVALID_DATA);
        ev->closeCode = (int)code;
        ev->data = r->control + 2;
        ev->len = (size_t)f->len - 2;
    }
    return WS_READ_EVENT;
}

/* The whole message in r->msg, as an event. */
static int messageEvent(struct wsReader *r, struct wsEvent *ev) {
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

int wsReaderNext(struct wsReader *r, struct wsEvent *ev) {
    if (r->msgDone) {
        bufReset(&r->msg);
        r->msgDone = 0;
    }
    for (;;) {
        const unsigned char *p = (const unsigned char *)r->in.data + r->inPos;
        size_t avail = r->in.len - r->inPos;
        struct frame f;
        unsigned char *dst;

        int h = frameHeader(r, p, avail, &f);
        if (h < 0) return fail(ev, -h);
        if (h == 0 || avail - f.hdr < 4 + f.len) return WS_READ_MORE;
        const unsigned char *mask = p + f.hdr;
        p += f.hdr + 4;
        if (f.op >= WS_OP_CLOSE) {
            dst = r->control;
        } else { /* appended masked, then unmasked in place */
            if (bufAppend(&r->msg, p, (size_t)f.len)) return fail(ev, WS_CLOSE_INTERNAL_ERROR);
            dst = (unsigned char *)r->msg.data + r->msg.len - (size_t)f.len;
        }
        for (size_t i = 0; i < f.len; i++)
            dst[i] = p[i] ^ mask[i & 3];
        r->inPos += f.hdr + 4 + (size_t)f.len;

        if (f.op >= WS_OP_CLOSE) return controlEvent(r, &f, ev);
        if (f.op != WS_OP_CONTINUATION) r->msgOp = f.op;
        if (f.fin) return messageEvent(r, ev);
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
