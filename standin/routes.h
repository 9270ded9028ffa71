/* routes: what the stand-in answers: the client side (negotiate, the WebSocket connect) and the
 * server REST API (send to a hub, a connection or a user; health), with their token checks. */
#ifndef STANDIN_ROUTES_H
#define STANDIN_ROUTES_H

#include "httpd.h"

#define ROUTES_MAX_BODY (1024 * 1024) /* REST bodies past this get 413 */

/* The headers-only decision (httpdHandler): unknown REST routes, wrong methods and bad tokens
 * are answered before any body is read. ctx is the const struct config *. */
void routesEarly(const struct httpdRequest *req, struct httpdResponse *resp, void *ctx);

/* The full decision (httpdHandler). ctx is the const struct config *. */
void routesHandle(const struct httpdRequest *req, struct httpdResponse *resp, void *ctx);

#endif
