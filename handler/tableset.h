/* tableset: the handler's four tables, created once (the first invocation waits for them) and
 * created again after the service said one of them is gone (deleted while the handler ran). */
#ifndef ENVIROMON_TABLESET_H
#define ENVIROMON_TABLESET_H

#include "settings.h"

#include <pthread.h>
#include <stddef.h>

/* The set of tables named by a settings struct (borrowed: it outlives the set). The fields are
 * private. */
typedef struct tableSet {
    const settings *s;
    pthread_mutex_t lock;
    int ready; /* every table exists, as far as this process knows (atomic) */
} tableSet;

void tablesetInit(tableSet *t, const settings *s);

/* Creates the tables once (later calls return at once); retried after a failure. Returns 0, or
 * -1 with err. Thread-safe. */
int tablesetEnsure(tableSet *t, char *err, size_t errlen);

/* Called when the service said a table does not exist (tableResult.tableGone): the next
 * tablesetEnsure creates the tables again. Thread-safe. */
void tablesetLost(tableSet *t);

#endif
