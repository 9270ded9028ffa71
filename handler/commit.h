/* commit: the DeviceState rows of a batch in entity group transactions (tablebatch.c): one
 * request for up to 100 devices (more requests past 100 or the byte limit), MERGE with If-Match
 * for rows this process knows, INSERT for the others, the etags answered kept for the next batch.
 * A refused transaction names its failed operation: that row alone is read again (412, 409, 404)
 * or set aside (a value the store refuses, 400), and the others go again. After
 * COMMIT_CONTENDED_TRIES transactions lost to other writers, the rest go through
 * devicestateCommit, one device at a time, so that progress never needs every row uncontended at
 * once. Also: rows of any table upserted in transactions (rejected readings). */
#ifndef ENVIROMON_COMMIT_H
#define ENVIROMON_COMMIT_H

#include "devicestate.h"
#include "settings.h"

#include <jansson.h>
#include <stddef.h>

/* Transactions refused because another writer changed a row since this process read it (not
 * counting a first refusal that only shows this process's memory was stale). */
#define COMMIT_CONTENDED_TRIES 3

/* Commits every work's entries, as devicestateCommit does for one (the same results in each
 * work: ok, changed, applied, replayed, writes, state, permanent, error), with the same
 * guarantees: events skipped as replays only on what storage holds, each applied once. A work
 * left with permanent set holds a row the store refuses (the caller rejects its readings).
 * Returns how many works are not ok. s and works are borrowed. Thread-safe. */
size_t commitDevices(const settings *s, deviceWork *works, size_t n);

/* One row to upsert (insert or replace) into a table. */
typedef struct commitRow {
    const char *rk; /* borrowed */
    json_t *props;  /* borrowed */
    /* 1: a row that cannot exist yet (a history chunk): sent as a plain insert, which Azurite
     * 3.35.0 looks up once, not twice as an insert-or-replace; when the store answers 409 (it
     * exists: a replay), its transaction is sent again with insert-or-replace. Cleared then.
     * Azure: an insert of an existing entity fails with 409 EntityAlreadyExists ("Table Storage
     * error codes"), and a change set succeeds or fails whole ("Performing entity group
     * transactions"; both learn.microsoft.com/rest/api/storageservices, read 2026-12-02). */
    int insert;
    /* results */
    int ok;
    int permanent; /* the store refuses this row every time */
    int tableGone; /* the table does not exist (deleted while running) */
    char error[256];
} commitRow;

/* Upserts rows (unconditional, so a replay writes the same rows again) into table under pk, in
 * transactions; a row the store refuses is marked permanent and the others go again. Returns
 * how many rows are not ok. */
size_t commitUpsertRows(const settings *s, const char *table, const char *pk, commitRow *rows,
                        size_t n);

#endif
