/* jsonscan: a validating JSON scanner that builds no tree: it checks a text once, then walks an
 * object's members and an array's elements as spans of that text, and decodes the strings it is
 * asked for. For the host's envelope, where most bytes (every system property but the device id)
 * are never used: jansson built a hash table for each of them, twice over for the arrays the
 * host encodes as strings.
 *
 * What it accepts is what jansson's json_loadb accepts with JSON_DECODE_ANY | JSON_ALLOW_NUL
 * (RFC 8259: UTF-8 only, no control characters in strings, \u escapes paired when surrogates,
 * nesting up to JSONSCAN_MAX_DEPTH, no \u0000 in keys), except that it does not convert numbers,
 * so a number beyond the double or int64 range is not an error here (callers that read a number
 * hand its span to jansson), and that a raw NUL byte is an error, where jansson takes it for the
 * end of the text. tests/fuzz/fuzz_jsonscan.c holds the two to that.
 *
 * Ownership: spans borrow the scanned text; jsonscanString writes into the caller's buffer. */
#ifndef ENVIROMON_JSONSCAN_H
#define ENVIROMON_JSONSCAN_H

#include <stddef.h>

#define JSONSCAN_MAX_DEPTH 2048 /* as jansson's JSON_PARSER_MAX_DEPTH */

enum jsonscanType {
    JSONSCAN_NONE = 0,
    JSONSCAN_OBJECT,
    JSONSCAN_ARRAY,
    JSONSCAN_STRING,
    JSONSCAN_NUMBER,
    JSONSCAN_TRUE,
    JSONSCAN_FALSE,
    JSONSCAN_NULL
};

/* A value: its text (from its first byte to its last; a string's quotes included). */
typedef struct jsonscanSpan {
    const char *s;
    size_t n;
    int type; /* enum jsonscanType */
} jsonscanSpan;

/* Checks that text[0..len) is one JSON value with only whitespace around it. Returns 0 with *v
 * set, or -1 with the reason and the byte offset in err. */
int jsonscanCheck(const char *text, size_t len, jsonscanSpan *v, char *err, size_t errlen);

/* Walks a checked object or array: start with it zeroed on v, then each call gives the next
 * member (key: the key's string span, NULL for an array) and value. Returns 1, or 0 at the end. */
typedef struct jsonscanIter {
    const char *p, *end;
    int type;
} jsonscanIter;
void jsonscanOpen(jsonscanIter *it, const jsonscanSpan *v);
int jsonscanNext(jsonscanIter *it, jsonscanSpan *key, jsonscanSpan *value);

/* The last member named key (plain text, no escapes) of a checked object, in *value (jansson
 * keeps the last of duplicate keys too). Returns 1, or 0 when absent or v is not an object. */
int jsonscanMember(const jsonscanSpan *v, const char *key, jsonscanSpan *value);

/* The number of elements of a checked array (0 when v is not one). */
size_t jsonscanCount(const jsonscanSpan *v);

/* Decodes a checked string span into out (at least v->n bytes: a decoded string is never longer
 * than its text), NUL-terminated; returns its length in bytes (it may hold NULs). */
size_t jsonscanString(const jsonscanSpan *v, char *out);

/* 1 when the checked string span decodes to exactly key (a plain C string). */
int jsonscanStringIs(const jsonscanSpan *v, const char *key);

#endif
