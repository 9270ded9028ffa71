/* hubproto: the SignalR JSON hub protocol, version 1: records ended by 0x1E, the handshake, and
 * the messages the stand-in reads and writes. Pure: no sockets, no threads. */
#include "hubproto.h"

#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TARGET_LEN 1024

void hubprotoRecordsInit(struct hubprotoRecords *r, size_t max) {
    bufInit(&r->text, max);
    r->pos = 0;
}

void hubprotoRecordsFree(struct hubprotoRecords *r) {
    if (!r) return;
    bufFree(&r->text);
    r->pos = 0;
}

int hubprotoRecordsAppend(struct hubprotoRecords *r, const void *data, size_t len) {
    if (r->pos) { /* drop the records handed out */
        bufDrop(&r->text, r->pos);
        r->pos = 0;
    }
    return bufAppend(&r->text, data, len);
}

int hubprotoRecordsNext(struct hubprotoRecords *r, const char **rec, size_t *len) {
    const char *start, *end;
    if (r->pos >= r->text.len) return 0;
    start = r->text.data + r->pos;
    end = memchr(start, HUBPROTO_RS, r->text.len - r->pos);
    if (!end) return 0;
    *rec = start;
    *len = (size_t)(end - start);
    r->pos += *len + 1;
    return 1;
}

int hubprotoHandshake(const char *rec, size_t len, char *err, size_t errlen) {
    json_t *msg = json_loadb(rec, len, 0, NULL), *protocol, *version;
    int rc = -1;
    if (!json_is_object(msg)) {
        logSetError(err, errlen, "Handshake request is not a JSON object.");
        goto out;
    }
    protocol = json_object_get(msg, "protocol");
    version = json_object_get(msg, "version");
    if (!json_is_string(protocol) || !json_is_integer(version)) {
        logSetError(err, errlen, "Handshake request needs a protocol name and a version.");
        goto out;
    }
    if (strcmp(json_string_value(protocol), "json") != 0) {
        const char *name = json_string_value(protocol);
        /* Quote the name only when it is short and plain, so the answer stays valid UTF-8. */
        int plain = strlen(name) <= 32 &&
                    strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == strlen(name);
        logSetError(err, errlen, "The protocol '%s' is not supported: use 'json'.",
                    plain ? name : "?");
        goto out;
    }
    if (json_integer_value(version) != 1) {
        logSetError(err, errlen, "The server does not support version %lld of the 'json' protocol.",
                    (long long)json_integer_value(version));
        goto out;
    }
    rc = 0;
out:
    json_decref(msg);
    return rc;
}

int hubprotoMessage(const char *rec, size_t len, int *type, char **invocationId) {
    json_t *msg = json_loadb(rec, len, 0, NULL), *t, *id;
    int rc = -1;
    *invocationId = NULL;
    if (!json_is_object(msg)) goto out;
    t = json_object_get(msg, "type");
    if (!json_is_integer(t)) goto out;
    *type = (int)json_integer_value(t);
    id = json_object_get(msg, "invocationId");
    if (json_is_string(id)) {
        *invocationId = strdup(json_string_value(id));
        if (!*invocationId) goto out;
    }
    rc = 0;
out:
    json_decref(msg);
    return rc;
}

/* Serialises obj compactly with 0x1E appended. Steals obj. Caller frees the result. */
static char *record(json_t *obj, size_t *outLen) {
    char *text = NULL, *out = NULL;
    size_t n;
    if (!obj) return NULL;
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text) return NULL;
    n = strlen(text);
    out = realloc(text, n + 2);
    if (!out) {
        free(text);
        return NULL;
    }
    out[n] = HUBPROTO_RS;
    out[n + 1] = '\0';
    *outLen = n + 1;
    return out;
}

char *hubprotoInvocationFromBody(const char *body, size_t len, size_t *outLen, char *err,
                                 size_t errlen) {
    json_error_t jerr;
    json_t *in = NULL, *target, *args, *msg = NULL;
    char *out = NULL;

    in = json_loadb(body, len, 0, &jerr);
    if (!in) {
        logSetError(err, errlen, "body is not valid JSON: %s (at %d)", jerr.text, jerr.position);
        goto out;
    }
    if (!json_is_object(in)) {
        logSetError(err, errlen, "body must be a JSON object {\"target\":...,\"arguments\":[...]}");
        goto out;
    }
    target = json_object_get(in, "target");
    args = json_object_get(in, "arguments");
    if (!json_is_string(target) || json_string_length(target) == 0 ||
        json_string_length(target) > MAX_TARGET_LEN) {
        logSetError(err, errlen, "body needs a non-empty string \"target\"");
        goto out;
    }
    if (args && !json_is_array(args) && !json_is_null(args)) {
        logSetError(err, errlen, "\"arguments\" must be an array");
        goto out;
    }
    /* "o" steals the reference (also when json_pack fails), "O" adds one. */
    msg = json_pack("{s:i,s:O,s:o}", "type", HUBPROTO_INVOCATION, "target", target, "arguments",
                    json_is_array(args) ? json_incref(args) : json_array());
    if (!msg) {
        logSetError(err, errlen, "out of memory");
        goto out;
    }
    out = record(msg, outLen);
    if (!out) logSetError(err, errlen, "out of memory");
out:
    json_decref(in);
    return out;
}

char *hubprotoHandshakeError(const char *error, size_t *outLen) {
    return record(json_pack("{s:s}", "error", error), outLen);
}

char *hubprotoCompletionError(const char *invocationId, const char *error, size_t *outLen) {
    return record(json_pack("{s:i,s:s,s:s}", "type", HUBPROTO_COMPLETION, "invocationId",
                            invocationId, "error", error),
                  outLen);
}

char *hubprotoClose(const char *error, int allowReconnect, size_t *outLen) {
    json_t *msg = json_pack("{s:i,s:b}", "type", HUBPROTO_CLOSE, "allowReconnect", allowReconnect);
    if (msg && error && json_object_set_new(msg, "error", json_string(error)) != 0) {
        json_decref(msg);
        msg = NULL;
    }
    return record(msg, outLen);
}
