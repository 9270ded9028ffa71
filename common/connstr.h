/* connstr: connection strings ("Name=value;Name=value;"), as Azure Storage and Azure SignalR
 * Service write them, and the one whole-number parser both programs use. */
#ifndef ENVIROMON_CONNSTR_H
#define ENVIROMON_CONNSTR_H

#include <stddef.h>

/* The rules, for every function here: parts are split at ';' and each at its first '=' (a value
 * may hold '=', as base64 keys do); blanks around names and values are trimmed; names compare
 * without case; empty parts (";;", a final ';') are skipped. Errors name a part by its number,
 * never quote it: a part without its "Name=" may be a pasted secret. */

/* One part; name and value point into the string (not NUL-terminated). */
typedef struct connstrPart {
    const char *name;
    size_t nameLen;
    const char *value;
    size_t valueLen;
    int index; /* 1-based, counting empty parts too */
} connstrPart;

/* Walks the parts: *pos starts at the string and advances; *index starts at 0. Returns 1 with
 * *part filled, 0 at the end, -1 when the part numbered part->index has no '='. */
int connstrNext(const char **pos, int *index, connstrPart *part);
/* 1 when the part's name is name (without case). */
int connstrNameIs(const connstrPart *part, const char *name);
/* Copies the value of the first part named key into out. Returns 1 when found, 0 when absent
 * (or cs is NULL), -1 when the value does not fit in outlen (out is then unchanged). */
int connstrGet(const char *cs, const char *key, char *out, size_t outlen);
/* Checks every part is Name=value with a name in known (NULL-terminated). Returns 0, or -1 with
 * the reason (which names the known names, never the part) in err. */
int connstrCheck(const char *cs, const char *const *known, char *err, size_t errlen);
/* Parses a whole decimal number in [min, max] from s[0..len) (blanks around it allowed, an
 * optional sign, at most 18 digits). Returns 0 with *out set, or -1 (*out unchanged). */
int connstrParseLong(const char *s, size_t len, long min, long max, long *out);

#endif
