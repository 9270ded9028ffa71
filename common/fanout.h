/* fanout: runs n independent tasks on a few short-lived threads, the caller's thread one of them;
 * each task index is handed out exactly once. */
#ifndef ENVIROMON_FANOUT_H
#define ENVIROMON_FANOUT_H

#include <stddef.h>

/* One task: index in [0, n); ctx as given to fanoutRun. Called on any of the threads. */
typedef void (*fanoutTask)(size_t index, void *ctx);

/* Calls task(i, ctx) once for every i in [0, n) on up to maxThreads threads (the caller's
 * included; 0 counts as 1) and returns when every call has returned. A thread that cannot be
 * started leaves its share to the others, so every task runs even when none can be started.
 * Returns the number of threads that took part (0 when n is 0). */
size_t fanoutRun(size_t n, size_t maxThreads, fanoutTask task, void *ctx);

#endif
