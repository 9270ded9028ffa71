/* fanout: n tasks on up to maxThreads threads (see fanout.h). */
#include "fanout.h"

#include <pthread.h>
#include <stdlib.h>

#define STACK_BYTES (256 * 1024) /* the tasks are shallow: a request or two each */

typedef struct fanoutRunState {
    size_t next; /* the next index to hand out; atomic */
    size_t n;
    fanoutTask task;
    void *ctx;
} fanoutRunState;

static void *drain(void *arg) {
    fanoutRunState *r = arg;
    for (;;) {
        size_t i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
        if (i >= r->n) break;
        r->task(i, r->ctx);
    }
    return NULL;
}

size_t fanoutRun(size_t n, size_t maxThreads, fanoutTask task, void *ctx) {
    fanoutRunState r = {.next = 0, .n = n, .task = task, .ctx = ctx};
    size_t want = maxThreads < n ? maxThreads : n, started = 0;
    pthread_t *tids = NULL;
    if (n == 0) return 0;
    if (want > 1 && (tids = calloc(want - 1, sizeof(*tids))) != NULL) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, STACK_BYTES);
        for (size_t i = 1; i < want; i++)
            if (pthread_create(&tids[started], &attr, drain, &r) == 0) started++;
        pthread_attr_destroy(&attr);
    }
    drain(&r);
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    return started + 1;
}
