/* functions: the functions the host invokes (fn_events.c: the Event Hubs trigger; fn_http.c: the
 * HTTP functions and the dashboard's files), and the context each of them receives. */
#ifndef ENVIROMON_FUNCTIONS_H
#define ENVIROMON_FUNCTIONS_H

#include "server.h"
#include "settings.h"
#include "tableset.h"

/* What a function works with; borrowed, set up once at start and read-only afterwards (the
 * tables' own state is thread-safe). */
typedef struct fnContext {
    const settings *s;
    tableSet *tables;
} fnContext;

/* Each answers one request on a worker thread; thread-safe. */
void fnEnvironmentEventTrigger(const fnContext *ctx, const serverRequest *req, serverResponse *res);
void fnNegotiate(const fnContext *ctx, const serverRequest *req, serverResponse *res);
void fnGetDeviceState(const fnContext *ctx, const serverRequest *req, serverResponse *res);
void fnSendSignalRMessage(const fnContext *ctx, const serverRequest *req, serverResponse *res);
/* gethistory (fn_history.c). */
void fnGetHistory(const fnContext *ctx, const serverRequest *req, serverResponse *res);
/* The HistoryRetention timer function (fn_retention.c). */
void fnHistoryRetention(const fnContext *ctx, const serverRequest *req, serverResponse *res);
/* Local mode: the dashboard's static files. 1 when it answered, 0 when the request is not for a
 * file (the caller goes on). */
int fnStatic(const fnContext *ctx, const serverRequest *req, serverResponse *res);

#endif
