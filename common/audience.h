/* audience: the URLs an Azure SignalR Service access token names in its "aud" claim, worked out
 * once for the issuer (the handler) and the checker (the stand-in).
 *
 * Client tokens: the service's endpoint + "/client/?hub=" + the hub lowercased
 * (Azure/azure-signalr DefaultServiceEndpointGenerator.cs, GetClientAudience: AudienceBaseUrl +
 * "client/?hub=" + hubName.ToLower()). REST tokens: the request URL without its query, that is
 * endpoint + "/api/v1/hubs/" + hub [+ "/connections/<id>" | "/users/<id>"] (RestApiProvider.cs,
 * Azure/azure-signalr 31686ed71ff8140f5b02c24b4bb08a7a04f4d788). The endpoint is the connection
 * string's Endpoint with Port= applied (url.h's normal form), never ClientEndpoint or
 * ServerEndpoint. */
#ifndef ENVIROMON_AUDIENCE_H
#define ENVIROMON_AUDIENCE_H

#include <stddef.h>

#define AUDIENCE_CLIENT_PATH "/client/?hub="
#define AUDIENCE_REST_PATH "/api/v1/hubs/"

/* endpoint + "/client/?hub=" + hub lowercased, into out. Returns 0, or -1 when it does not fit. */
int audienceClient(const char *endpoint, const char *hub, char *out, size_t outlen);
/* endpoint + "/api/v1/hubs/" + hub lowercased: the REST audience of a send to the whole hub, and
 * the base of the others. Returns 0, or -1 when it does not fit. */
int audienceRest(const char *endpoint, const char *hub, char *out, size_t outlen);

#endif
