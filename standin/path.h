/* path: the stand-in's URL grammar, pure: percent-decoding, hub names, the routes of the client
 * side and of the REST API, and audiences compared by meaning with a request's route. */
#ifndef STANDIN_PATH_H
#define STANDIN_PATH_H

#include <stddef.h>

#define PATH_HUB_MAX 128 /* as Azure SignalR Service allows */
#define PATH_ID_MAX 1024 /* connection and user ids in paths */

enum pathKind {
    PATH_NONE = 0,
    PATH_HEALTH,     /* /api/v1/health */
    PATH_HUB,        /* /api/v1/hubs/{hub} */
    PATH_CONNECTION, /* /api/v1/hubs/{hub}/connections/{id} */
    PATH_USER,       /* /api/v1/hubs/{hub}/users/{user} */
    PATH_NEGOTIATE,  /* /client/negotiate */
    PATH_CLIENT      /* /client/ */
};

struct pathRoute {
    enum pathKind kind;
    int sendForm;               /* the 2022-06-01 form: /api/hubs/{hub}[/...]/:send */
    char hub[PATH_HUB_MAX + 1]; /* lowercased */
    char *who;                  /* connection or user id, decoded; owned, free with pathRouteFree */
};

/* Checks a hub name (a letter, then letters, digits and _`,.[]) and copies it lowercased into
 * out. Returns 0, or -1 when it is not a valid name. */
int pathHubName(const char *name, size_t len, char out[PATH_HUB_MAX + 1]);

/* Parses a path as sent (not decoded, no query) into r; r->kind is PATH_NONE for anything
 * unknown. Returns 0, or -1 when out of memory. Release r with pathRouteFree in every case. */
int pathParse(const char *path, struct pathRoute *r);

/* Frees what r owns. Accepts NULL. */
void pathRouteFree(struct pathRoute *r);

/* 1 when aud is base followed by a REST path naming the same route as r (hub case-insensitive,
 * ids after decoding, any query ignored), else 0. base is "http://host:port", compared
 * case-insensitively. */
int pathRestAudience(const char *base, const char *aud, const struct pathRoute *r);

/* 1 when aud is base/client/?hub=<hub> (also /client?hub=, other parameters allowed) for this
 * lowercased hub, else 0. */
int pathClientAudience(const char *base, const char *aud, const char *hub);

#endif
