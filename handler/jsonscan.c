/* jsonscan: a validating JSON scanner without a tree (see jsonscan.h). */
#include "jsonscan.h"

#include "utf8.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *skipSpace(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexValue(p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A \u escape at p (pointing at the 'u'): one code point, two escapes for a surrogate pair.
 * Returns the code point and sets *next past the escape(s), or -1. */
static long unicodeEscape(const char *p, const char *end, const char **next) {
    if (end - p < 5) return -1;
    long cp = hex4(p + 1);
    p += 5;
    if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return -1; /* a lone low surrogate */
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
        long lo = hex4(p + 2);
        if (lo < 0xDC00 || lo > 0xDFFF) return -1;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    }
    *next = p;
    return cp;
}

/* 1 for the bytes a string holds as they are: printable ASCII but the quote and the backslash. */
static unsigned char plain[256];
static pthread_once_t plainOnce = PTHREAD_ONCE_INIT;

static void makePlain(void) {
    for (int c = 0x20; c < 0x80; c++)
        plain[c] = c != '"' && c != '\\';
}

/* A string at p (at its opening quote); key: an object's key, where jansson refuses \u0000.
 * Returns the byte past its closing quote, or NULL. */
static const char *scanString(const char *p, const char *end, int key, const char **why) {
    p++;
    while (p < end) {
        while (p < end && plain[(unsigned char)*p])
            p++;
        if (p >= end) break;
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) {
            *why = "control character in a string";
            return NULL;
        }
        if (c == '\\') {
            if (end - p < 2) break;
            char e = p[1];
            if (e == 'u') {
                long cp = unicodeEscape(p + 1, end, &p);
                if (cp < 0 || (cp == 0 && key)) {
                    *why = cp < 0 ? "invalid \\u escape" : "NUL in an object key";
                    return NULL;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                *why = "invalid escape";
                return NULL;
            }
            p += 2;
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t used;
        if (utf8Next((const unsigned char *)p, (size_t)(end - p), &used) < 0) {
            *why = "invalid UTF-8";
            return NULL;
        }
        p += used;
    }
    *why = "unterminated string";
    return NULL;
}

static const char *digits(const char *p, const char *end) {
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    return q == p ? NULL : q;
}

/* A number at p: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. Returns the byte past it, or
 * NULL. */
static const char *scanNumber(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0')
        p++;
    else if (!(p = digits(p, end)))
        return NULL;
    if (p < end && *p == '.' && !(p = digits(p + 1, end))) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (!(p = digits(p, end))) return NULL;
    }
    return p;
}

static const char *scanWord(const char *p, const char *end, const char *w) {
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

/* One scalar at p (not an object or array). Returns the byte past it, or NULL. */
static const char *scanScalar(const char *p, const char *end, int *type, const char **why) {
    const char *q;
    switch (*p) {
    case '"':
        *type = JSONSCAN_STRING;
        return scanString(p, end, 0, why);
    case 't':
        *type = JSONSCAN_TRUE;
        q = scanWord(p, end, "true");
        break;
    case 'f':
        *type = JSONSCAN_FALSE;
        q = scanWord(p, end, "false");
        break;
    case 'n':
        *type = JSONSCAN_NULL;
        q = scanWord(p, end, "null");
        break;
    default:
        *type = JSONSCAN_NUMBER;
        q = (*p == '-' || (*p >= '0' && *p <= '9')) ? scanNumber(p, end) : NULL;
    }
    if (!q) *why = "invalid token";
    return q;
}

/* The state of jsonscanCheck: where it is, and one bit per open container (1: an object), so
 * that nesting costs no recursion. */
typedef struct checker {
    const char *p, *end, *why;
    unsigned char open[JSONSCAN_MAX_DEPTH / 8];
    int depth, type;
} checker;

/* What comes next in the text. */
enum { NEXT_VALUE, NEXT_KEY, NEXT_DONE, NEXT_BAD };

static int openIsObject(const checker *c, int d) { return (c->open[d / 8] >> (d % 8)) & 1; }

/* A key and its ':' at c->p. Returns 0, or -1 with c->why set (c->p where it failed). */
static int checkKey(checker *c) {
    if (c->p >= c->end || *c->p != '"') {
        c->why = "expected a string key";
        return -1;
    }
    const char *q = scanString(c->p, c->end, 1, &c->why);
    if (!q) return -1;
    c->p = skipSpace(q, c->end);
    if (c->p >= c->end || *c->p != ':') {
        c->why = "expected ':'";
        return -1;
    }
    c->p = skipSpace(c->p + 1, c->end);
    return 0;
}

/* After a value: closes the containers that end here. Returns what comes next. */
static int checkAfter(checker *c) {
    while (c->depth > 0) {
        c->p = skipSpace(c->p, c->end);
        if (c->p >= c->end) return NEXT_BAD;
        int obj = openIsObject(c, c->depth - 1);
        if (*c->p == ',') {
            c->p = skipSpace(c->p + 1, c->end);
            return obj ? NEXT_KEY : NEXT_VALUE;
        }
        if (*c->p != (obj ? '}' : ']')) {
            c->why = obj ? "expected ',' or '}'" : "expected ',' or ']'";
            return NEXT_BAD;
        }
        c->p++;
        c->depth--;
    }
    return NEXT_DONE;
}

/* One value at c->p: a scalar, or a container's opening (and its closing when empty). Returns
 * what comes next. */
static int checkValue(checker *c) {
    if (c->p >= c->end) return NEXT_BAD;
    if (*c->p == '{' || *c->p == '[') {
        int obj = *c->p == '{', d = c->depth;
        if (d == 0) c->type = obj ? JSONSCAN_OBJECT : JSONSCAN_ARRAY;
        if (d == JSONSCAN_MAX_DEPTH) {
            c->why = "nested too deep";
            return NEXT_BAD;
        }
        if (obj)
            c->open[d / 8] |= (unsigned char)(1u << (d % 8));
        else
            c->open[d / 8] &= (unsigned char)~(1u << (d % 8));
        c->depth++;
        c->p = skipSpace(c->p + 1, c->end);
        if (c->p >= c->end || *c->p != (obj ? '}' : ']')) return obj ? NEXT_KEY : NEXT_VALUE;
        c->p++;
        c->depth--;
        return checkAfter(c);
    }
    int t;
    const char *q = scanScalar(c->p, c->end, &t, &c->why);
    if (!q) return NEXT_BAD;
    c->p = q;
    if (c->depth == 0) c->type = t;
    return checkAfter(c);
}

int jsonscanCheck(const char *text, size_t len, jsonscanSpan *v, char *err, size_t errlen) {
    checker c = {.end = text + len, .why = "unexpected end of input", .type = JSONSCAN_NONE};
    int next = NEXT_VALUE;
    pthread_once(&plainOnce, makePlain);
    c.p = skipSpace(text, c.end);
    const char *start = c.p;
    while (next == NEXT_VALUE || next == NEXT_KEY)
        next = next == NEXT_KEY && checkKey(&c) != 0 ? NEXT_BAD : checkValue(&c);
    if (next == NEXT_DONE) {
        v->s = start;
        v->n = (size_t)(c.p - start);
        v->type = c.type;
        if (skipSpace(c.p, c.end) == c.end) return 0;
        c.why = "end of input expected";
    }
    snprintf(err, errlen, "%s near byte %zu", c.why, (size_t)(c.p - text));
    return -1;
}

/* The byte past the checked string at p (at its opening quote): the first quote after it that
 * an even number of backslashes precedes. */
static const char *skipString(const char *p, const char *end) {
    const char *from = p + 1;
    for (;;) {
        const char *q = memchr(from, '"', (size_t)(end - from));
        if (!q) return end;
        const char *b = q;
        while (b > p + 1 && b[-1] == '\\')
            b--;
        if ((q - b) % 2 == 0) return q + 1;
        from = q + 1;
    }
}

/* The byte past the checked value at p. */
static const char *skipValue(const char *p, const char *end) {
    int depth = 0;
    const char *why;
    do {
        if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else if (*p == '"') {
            p = skipString(p, end);
        } else if (*p == ',' || *p == ':' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            p++;
        } else {
            int t;
            p = scanScalar(p, end, &t, &why);
        }
    } while (p && p < end && depth > 0);
    return p ? p : end;
}

static int spanType(char c) {
    switch (c) {
    case '{':
        return JSONSCAN_OBJECT;
    case '[':
        return JSONSCAN_ARRAY;
    case '"':
        return JSONSCAN_STRING;
    case 't':
        return JSONSCAN_TRUE;
    case 'f':
        return JSONSCAN_FALSE;
    case 'n':
        return JSONSCAN_NULL;
    default:
        return JSONSCAN_NUMBER;
    }
}

void jsonscanOpen(jsonscanIter *it, const jsonscanSpan *v) {
    it->type = v->type;
    if (v->type != JSONSCAN_OBJECT && v->type != JSONSCAN_ARRAY) {
        it->p = it->end = v->s;
        return;
    }
    it->p = v->s + 1;
    it->end = v->s + v->n - 1; /* at the closing bracket */
}

int jsonscanNext(jsonscanIter *it, jsonscanSpan *key, jsonscanSpan *value) {
    const char *p = skipSpace(it->p, it->end), *q;
    if (p < it->end && *p == ',') p = skipSpace(p + 1, it->end);
    if (p >= it->end) return 0;
    if (it->type == JSONSCAN_OBJECT) {
        q = skipValue(p, it->end);
        if (key) *key = (jsonscanSpan){p, (size_t)(q - p), JSONSCAN_STRING};
        p = skipSpace(q, it->end);
        p = skipSpace(p + 1, it->end); /* the ':' */
    } else if (key) {
        key->s = NULL;
        key->n = 0;
        key->type = JSONSCAN_NONE;
    }
    q = skipValue(p, it->end);
    *value = (jsonscanSpan){p, (size_t)(q - p), spanType(*p)};
    it->p = q;
    return 1;
}

int jsonscanMember(const jsonscanSpan *v, const char *key, jsonscanSpan *value) {
    jsonscanIter it;
    jsonscanSpan k, x;
    int found = 0;
    if (v->type != JSONSCAN_OBJECT) return 0;
    jsonscanOpen(&it, v);
    while (jsonscanNext(&it, &k, &x))
        if (jsonscanStringIs(&k, key)) {
            *value = x;
            found = 1;
        }
    return found;
}

size_t jsonscanCount(const jsonscanSpan *v) {
    jsonscanIter it;
    jsonscanSpan x;
    size_t n = 0;
    if (v->type != JSONSCAN_ARRAY) return 0;
    jsonscanOpen(&it, v);
    while (jsonscanNext(&it, NULL, &x))
        n++;
    return n;
}

/* Appends code point cp as UTF-8 at o; returns the byte past it. */
static char *putUtf8(char *o, long cp) {
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

size_t jsonscanString(const jsonscanSpan *v, char *out) {
    const char *p = v->s + 1, *end = v->s + v->n - 1; /* inside the quotes */
    char *o = out;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
        memcpy(o, p, run);
        o += run;
        p += run;
        if (p >= end) break;
        char e = p[1];
        if (e == 'u') {
            long cp = unicodeEscape(p + 1, end, &p);
            o = putUtf8(o, cp < 0 ? 0xFFFD : cp); /* not on a checked span */
            continue;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = strchr(from, e);
        *o++ = k ? to[k - from] : e;
        p += 2;
    }
    *o = '\0';
    return (size_t)(o - out);
}

int jsonscanStringIs(const jsonscanSpan *v, const char *key) {
    size_t n = strlen(key);
    if (v->type != JSONSCAN_STRING || v->n < 2) return 0;
    if (v->n - 2 == n && !memchr(v->s + 1, '\\', n)) return memcmp(v->s + 1, key, n) == 0;
    if (v->n - 2 < n || !memchr(v->s + 1, '\\', v->n - 2)) return 0;
    /* escaped: decode (a key is short; a long one cannot match) */
    char tmp[512];
    if (v->n > sizeof(tmp)) return 0;
    size_t got = jsonscanString(v, tmp);
    return got == n && memcmp(tmp, key, n) == 0;
}
