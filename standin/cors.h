/* cors: the stand-in's CORS, for browsers on another origin (the dashboard): the request's origin
 * echoed with credentials on every answer, and preflights (OPTIONS) answered 204. */
#ifndef STANDIN_CORS_H
#define STANDIN_CORS_H

#include "httpd.h"

/* Answers an OPTIONS request (a preflight, or any OPTIONS) with 204 and returns 1; else 0. */
int corsPreflight(const httpdRequest *req, httpdResponse *resp);

/* An httpdFinishFn: adds the CORS headers when the request carries an Origin fit to echo, and
 * Cache-Control: no-store to every answer but a 101. */
void corsFinish(const httpdRequest *req, httpdResponse *resp, void *ctx);

#endif
