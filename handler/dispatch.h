/* dispatch: routes each request to its function (the route table), and says which requests are
 * answered on the server's I/O thread without waiting (readiness, static files). */
#ifndef ENVIROMON_DISPATCH_H
#define ENVIROMON_DISPATCH_H

#include "functions.h"
#include "server.h"

/* Once at start, before the server: the context every function receives (borrowed; it outlives
 * the server). */
void dispatchInit(const fnContext *ctx);

/* Routes a request to its function (a serverHandlerFn). */
void dispatchRequest(const serverRequest *req, serverResponse *res);

/* 1 for requests answered without waiting (readiness, static files): a serverQuickFn. */
int dispatchIsQuick(const char *method, const char *path);

#endif
