/* config: the stand-in's settings, from its command line and the SignalR connection string. */
#ifndef STANDIN_CONFIG_H
#define STANDIN_CONFIG_H

#include <stddef.h>

#define CONFIG_ERR_LEN 256
#define CONFIG_HOST_LEN 64

struct config {
    char *base;       /* "http://host:port", lowercased, no trailing slash: the audiences' base */
    char *access_key; /* the signing key, used as its UTF-8 bytes */
    size_t access_key_len;
    int port;                   /* the port to listen on: Port=, else the Endpoint's, else 80 */
    char host[CONFIG_HOST_LEN]; /* address to bind, numeric IPv4 or IPv6 */
    int ping_seconds;           /* hub protocol keep-alive interval */
};

/* Parses "Endpoint=http://h;Port=N;AccessKey=K;Version=1.0;" into cfg->base, access_key and port.
 * Pairs split at the first '=', keys are case-insensitive, unknown keys are ignored. Returns 0,
 * or -1 with the reason in err (at most errlen bytes; err may be NULL). The reason never quotes
 * the access key or any part of the text that could be it. Frees what it allocated on failure. */
int configParseConnectionString(struct config *cfg, const char *text, char *err, size_t errlen);

/* Fills cfg from argv and, when --connection-string is absent, from the environment variable
 * AzureSignalRConnectionString. Returns 0, 1 when --help was asked (usage already printed), or -1
 * with the reason in err. cfg must be zeroed; release it with configFree in every case. */
int configFromArgs(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Frees what cfg owns and zeroes it (wiping the key). Accepts NULL. */
void configFree(struct config *cfg);

#endif
