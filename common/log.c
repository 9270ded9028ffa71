/* log: levelled logging to stdout (information) and stderr (errors), as the Functions host reads
 * them. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int logMinLevel = LOG_LEVEL_INFO;

void logSetLevel(const char *name) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (!name) return;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0) logMinLevel = i;
}

void logWrite(int level, const char *fmt, ...) {
    static const char *tags[] = {"debug", "info", "warn", "error"};
    char line[2048];
    va_list ap;
    int n = snprintf(line, sizeof(line), "[%s] ", tags[level & 3]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line, so lines from concurrent invocations never interleave. */
    FILE *f = level >= LOG_LEVEL_WARN ? stderr : stdout;
    size_t len = strlen(line);
    if (len < sizeof(line) - 1)
        line[len++] = '\n';
    else
        line[sizeof(line) - 2] = '\n', len = sizeof(line) - 1;
    fwrite(line, 1, len, f);
    fflush(f);
}

int logSetError(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
