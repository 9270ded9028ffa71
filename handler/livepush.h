/* livepush: sends committed device states to the dashboard through SignalR (target newMessage).
 * A failed push is logged and never fails the invocation: the state is safe in the table. */
#ifndef ENVIROMON_LIVEPUSH_H
#define ENVIROMON_LIVEPUSH_H

#include <jansson.h>

#define LIVEPUSH_TIMEOUT_MS 2000  /* the longest one push may take */
#define LIVEPUSH_CONCURRENCY 8    /* pushes of one batch in flight at once */
#define LIVEPUSH_PAUSE_MS 5000    /* after SignalR did not answer, pushes are skipped this long */
#define LIVEPUSH_REWARN_MS 300000 /* a failure burst is logged again this often */

/* Sets the budget of the missed-push memory (MissedPushBytes) once at start. */
void livepushInit(size_t missedBytes);

/* Pushes each device object of the array (borrowed) as its own newMessage with one argument,
 * the device, up to LIVEPUSH_CONCURRENCY at once; returns when all are answered or timed out.
 * No-op without a SignalR connection. During LIVEPUSH_PAUSE_MS after SignalR did not answer,
 * returns at once (the pushes are counted as skipped). A push that failed or was skipped is
 * remembered (the latest state per device) and sent with the next batch that finds SignalR
 * answering. Logs a failure once per burst. Thread-safe. */
void livepushDevices(json_t *devices);

/* Counters since start, for the SIGUSR1 log line and the benchmark. */
typedef struct livepushStats {
    unsigned long sent, failed, skipped;
    unsigned long dropped; /* missed pushes forgotten for MissedPushBytes */
} livepushStats;
void livepushGetStats(livepushStats *out);

#endif
