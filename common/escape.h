/* escape: percent-encoding and decoding (RFC 3986) and the OData string literal, for URLs the
 * handler builds (table keys and filters, SignalR REST paths) and the stand-in reads. */
#ifndef ENVIROMON_ESCAPE_H
#define ENVIROMON_ESCAPE_H

#include "buf.h"

#include <stddef.h>

/* Appends text[0..len) to b with every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~)
 * written as %XX (upper-case hex). Returns 0, or -1 as bufAppend (b freed). */
int escapePercent(buf *b, const char *text, size_t len) __attribute__((warn_unused_result));
/* The bytes escapePercent would append for text[0..len). */
size_t escapePercentLength(const char *text, size_t len);
/* escapePercent of the NUL-terminated text into out (outlen bytes with the NUL). Returns 0, or
 * -1 when it does not fit (out is then the empty string when outlen > 0). */
int escapePercentTo(const char *text, char *out, size_t outlen);
/* Decodes text[0..len): %XX (either case) to its byte, and '+' to a space when plus (a query).
 * Returns a NUL-terminated malloc'd copy (caller frees), or NULL on a malformed escape, an
 * encoded NUL (%00: the result is a C string) or OOM. */
char *escapePercentDecode(const char *text, size_t len, int plus);
/* Appends text as an OData string literal: in single quotes, every quote doubled
 * (OData v4 ABNF, SQUOTE-in-string). quoted == 0 leaves the enclosing quotes out (a key inside
 * PartitionKey='...'). Returns 0, or -1 as bufAppend (b freed). */
int escapeODataString(buf *b, const char *text, int quoted) __attribute__((warn_unused_result));

#endif
