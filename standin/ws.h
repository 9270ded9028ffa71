/* ws: RFC 6455 WebSocket framing for the server side: a frame reader, frame headers, the
 * handshake's accept key. Pure: no sockets, no threads. */
#ifndef STANDIN_WS_H
#define STANDIN_WS_H

#include "buf.h"

#include <stddef.h>

#define WS_MAX_HEADER 14 /* 2 + 8 (length) + 4 (mask) */
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

enum wsOpcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa
};

enum wsCloseCode {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_NO_STATUS = 1005, /* reported only: never sent */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL_ERROR = 1011
};

/* Incremental reader of client frames (masked, as RFC 6455 requires of clients). It reassembles
 * fragmented messages, checks the rules of section 5 and the UTF-8 of text, and caps a message
 * at max_message bytes. */
struct wsReader {
    buf in; /* received bytes; those from inPos on are not consumed yet */
    size_t inPos;
    buf msg;     /* the data message being reassembled */
    int msgOp;   /* opcode of the message in progress, 0 when none */
    int msgDone; /* msg was handed out: start afresh on the next call */
    size_t maxMessage;
    unsigned char control[125]; /* unmasked payload of the last control frame */
};

struct wsEvent {
    int opcode;                /* WS_OP_TEXT, _BINARY (whole messages), _CLOSE, _PING, _PONG */
    const unsigned char *data; /* payload (close: the reason), borrowed until the next call */
    size_t len;
    int closeCode; /* WS_OP_CLOSE: the peer's code or WS_CLOSE_NO_STATUS; on WS_READ_FAIL: the
                      code to close with */
};

enum wsReadResult { WS_READ_FAIL = -1, WS_READ_MORE = 0, WS_READ_EVENT = 1 };

/* Prepares r. Nothing is allocated until data arrives. */
void wsReaderInit(struct wsReader *r, size_t maxMessage);

/* Frees what r holds. Accepts NULL. */
void wsReaderFree(struct wsReader *r);

/* Appends received bytes (copied). Returns 0, or -1 on OOM or when more is buffered than one
 * frame could need (the caller did not call wsReaderNext in between). */
int wsReaderFeed(struct wsReader *r, const void *data, size_t len);

/* Takes the next complete event. WS_READ_EVENT fills ev (its data borrowed until the next call
 * of wsReaderNext or wsReaderFeed); WS_READ_MORE needs more bytes; WS_READ_FAIL sets
 * ev->closeCode to the code the connection must be closed with, and the reader must not be used
 * further. */
int wsReaderNext(struct wsReader *r, struct wsEvent *ev);

/* Writes the header of an unmasked, final server frame of len payload bytes into out and
 * returns its size (2, 4 or 10). */
size_t wsFrameHeader(unsigned char out[WS_MAX_HEADER], int opcode, size_t len);

/* The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key, NUL-terminated into out.
 * Returns 0, or -1 when the key is not the base64 of 16 bytes. */
int wsAcceptKey(const char *clientKey, char out[WS_ACCEPT_LEN + 1]);

#endif
