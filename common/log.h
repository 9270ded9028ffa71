/* log: levelled logging to stdout (information) and stderr (errors), as the Functions host reads
 * them. */
#ifndef ENVIROMON_LOG_H
#define ENVIROMON_LOG_H

#include <stddef.h>

enum logLevel { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO = 1, LOG_LEVEL_WARN = 2, LOG_LEVEL_ERROR = 3 };

extern int logMinLevel;

/* Sets the minimum level from a name ("debug", "info", "warn", "error"); unknown names keep it. */
void logSetLevel(const char *name);

void logWrite(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills a caller's error buffer (at most errlen bytes; err may be NULL) for a person to read.
 * Returns -1, so a failing function can end with `return logSetError(...)`. */
int logSetError(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The level is checked before the arguments are formatted. */
#define logAt(level, ...)                                                                          \
    do {                                                                                           \
        if ((level) >= logMinLevel) logWrite((level), __VA_ARGS__);                                \
    } while (0)
#define logDebug(...) logAt(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define logInfo(...) logAt(LOG_LEVEL_INFO, __VA_ARGS__)
#define logWarn(...) logAt(LOG_LEVEL_WARN, __VA_ARGS__)
#define logError(...) logAt(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
