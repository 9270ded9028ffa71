/* app: the handler's shared state (settings, table set-up) and the routing of requests to the
 * functions. */
#ifndef ENVIROMON_APP_H
#define ENVIROMON_APP_H

#include "server.h"
#include "settings.h"

extern settings appSettings;

/* Loads the settings and starts the modules. Returns 0, or -1 with err. */
int appInit(char *err, size_t errlen);
void appShutdown(void);

/* Creates the tables once (later calls return at once); retried after a failure. Returns 0, or
 * -1 with err. Thread-safe. */
int appEnsureTables(char *err, size_t errlen);

/* Called when the service said a table does not exist (deleted while running): the next
 * appEnsureTables creates the tables again. */
void appTablesLost(void);

/* Routes a request to its function. */
void appDispatch(const serverRequest *req, serverResponse *res);
/* 1 for requests answered without waiting (readiness, static files): see serverQuickFn. */
int appIsQuick(const char *method, const char *path);

/* The functions (one file each). */
void fnEnvironmentEventTrigger(const serverRequest *req, serverResponse *res);
void fnNegotiate(const serverRequest *req, serverResponse *res);
void fnGetDeviceState(const serverRequest *req, serverResponse *res);
void fnSendSignalRMessage(const serverRequest *req, serverResponse *res);
/* gethistory (fn_history.c). */
void fnGetHistory(const serverRequest *req, serverResponse *res);
/* The HistoryRetention timer function (fn_retention.c). */
void fnHistoryRetention(const serverRequest *req, serverResponse *res);
/* Local mode: the dashboard's static files. 1 when it answered. */
int fnStatic(const serverRequest *req, serverResponse *res);

#endif
