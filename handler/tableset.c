/* tableset: the handler's four tables, created once (the first invocation waits for them) and
 * created again after the service said one of them is gone (deleted while the handler ran). */
#include "tableset.h"

#include "table.h"

#include <stdio.h>

void tablesetInit(tableSet *t, const settings *s) {
    t->s = s;
    pthread_mutex_init(&t->lock, NULL);
    t->ready = 0;
}

int tablesetEnsure(tableSet *t, char *err, size_t errlen) {
    const char *tables[] = {t->s->deviceTable, t->s->calibrationTable, t->s->rejectedTable,
                            t->s->quarantineTable, t->s->historyTable};
    int rc = 0;
    if (__atomic_load_n(&t->ready, __ATOMIC_ACQUIRE)) return 0;
    pthread_mutex_lock(&t->lock);
    /* another thread may have made them while this one waited for the lock */
    int ready = __atomic_load_n(&t->ready, __ATOMIC_ACQUIRE);
    for (size_t i = 0; !ready && i < sizeof(tables) / sizeof(tables[0]); i++) {
        tableResult r;
        if (tableCreate(&t->s->storage, tables[i], &r) != TABLE_OK) {
            snprintf(err, errlen, "cannot create table %s: %s", tables[i], r.message);
            rc = -1;
            break;
        }
    }
    if (rc == 0) __atomic_store_n(&t->ready, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void tablesetLost(tableSet *t) { __atomic_store_n(&t->ready, 0, __ATOMIC_RELEASE); }
