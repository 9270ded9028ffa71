/* config: the stand-in's settings, from its command line and the SignalR connection string. */
#include "config.h"

#include "connstr.h"
#include "log.h"
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PING_SECONDS 15
#define MAX_PING_SECONDS 3600
#define URL_HOST_BASE_MAX 300 /* "http://" and a host name of up to 253 bytes */

static int keyIs(const char *k, size_t klen, const char *name) {
    return strlen(name) == klen && strncasecmp(k, name, klen) == 0;
}

/* Splits "http://host[:port][/]" into a lowercased "http://host" and the port (0 when absent).
 * *out is malloc'd; caller frees. Returns 0, or -1 with the reason in err. */
static int parseEndpoint(const char *v, size_t len, char **out, long *port, char *err,
                         size_t errlen) {
    char text[URL_HOST_BASE_MAX];
    urlParts u;
    int rc;

    *out = NULL;
    *port = 0;
    if (len >= 8 && strncasecmp(v, "https://", 8) == 0)
        return logSetError(
            err, errlen,
            "Endpoint must start with http:// (the stand-in serves plain HTTP, not TLS)");
    rc = urlParse(v, len, &u);
    if (rc != URL_OK) return logSetError(err, errlen, "Endpoint %s", urlError(rc));
    if (u.pathLen > 1 || (u.pathLen == 1 && u.path[0] != '/'))
        return logSetError(err, errlen,
                           "Endpoint must be http://host[:port] with no path or query");
    long own = u.port;
    u.port = -1; /* the base alone; the port is given apart */
    if (urlFormat(&u, -1, 0, text, sizeof(text)) != 0 || !(*out = strdup(text)))
        return logSetError(err, errlen, "out of memory");
    *port = own > 0 ? own : 0;
    return 0;
}

int configParseConnectionString(struct config *cfg, const char *text, char *err, size_t errlen) {
    const char *endpoint = NULL, *key = NULL, *portText = NULL, *version = NULL, *auth = NULL;
    size_t endpointLen = 0, keyLen = 0, portLen = 0, versionLen = 0, authLen = 0;
    char *hostBase = NULL;
    long endpointPort = 0, port = 0;
    int part = 0, rc = -1;
    const char *pos = text;
    connstrPart p;
    int r;

    if (!text || !*text) {
        logSetError(err, errlen, "connection string is empty");
        goto out;
    }
    while ((r = connstrNext(&pos, &part, &p)) != 0) {
        const char **slot = NULL;
        size_t *slotLen = NULL;
        /* Never quote a part: a pasted key without its "AccessKey=" would be printed. */
        if (r < 0) {
            logSetError(err, errlen, "connection string part %d has no '='", p.index);
            goto out;
        }
        if (p.nameLen == 0) {
            logSetError(err, errlen, "connection string part %d has an empty key", p.index);
            goto out;
        }
        if (connstrNameIs(&p, "Endpoint"))
            slot = &endpoint, slotLen = &endpointLen;
        else if (connstrNameIs(&p, "AccessKey"))
            slot = &key, slotLen = &keyLen;
        else if (connstrNameIs(&p, "Port"))
            slot = &portText, slotLen = &portLen;
        else if (connstrNameIs(&p, "Version"))
            slot = &version, slotLen = &versionLen;
        else if (connstrNameIs(&p, "AuthType"))
            slot = &auth, slotLen = &authLen;
        if (!slot) continue; /* ClientEndpoint, ServerEndpoint and the like: not used here */
        if (*slot) {
            /* The key name is one of the known names above, safe to print. */
            logSetError(err, errlen, "connection string names %.*s twice", (int)p.nameLen, p.name);
            goto out;
        }
        *slot = p.value;
        *slotLen = p.valueLen;
    }
    if (!endpoint || endpointLen == 0) {
        logSetError(err, errlen, "connection string has no Endpoint");
        goto out;
    }
    if (!key || keyLen == 0) {
        logSetError(err, errlen, "connection string has no AccessKey");
        goto out;
    }
    if (version && !(versionLen == 3 && memcmp(version, "1.0", 3) == 0)) {
        logSetError(err, errlen, "connection string Version must be 1.0");
        goto out;
    }
    if (auth && authLen && !keyIs(auth, authLen, "AccessKey")) {
        logSetError(err, errlen,
                    "connection string AuthType is not supported: the stand-in checks "
                    "AccessKey tokens only");
        goto out;
    }
    if (portText && connstrParseLong(portText, portLen, 1, 65535, &port) != 0) {
        logSetError(err, errlen, "connection string Port must be a number from 1 to 65535");
        goto out;
    }
    if (parseEndpoint(endpoint, endpointLen, &hostBase, &endpointPort, err, errlen) != 0) goto out;

    {
        /* The issuer (the SDK, the handler) puts Port= into the audience; without it the
         * Endpoint is used as written, default port implied. */
        size_t cap = strlen(hostBase) + 8;
        char *base = malloc(cap);
        char *k = malloc(keyLen + 1);
        if (!base || !k) {
            free(base);
            free(k);
            logSetError(err, errlen, "out of memory");
            goto out;
        }
        if (portText || endpointPort)
            snprintf(base, cap, "%s:%ld", hostBase, portText ? port : endpointPort);
        else
            snprintf(base, cap, "%s", hostBase);
        memcpy(k, key, keyLen);
        k[keyLen] = '\0';
        configFree(cfg);
        cfg->base = base;
        cfg->access_key = k;
        cfg->access_key_len = keyLen;
        cfg->port = (int)(portText ? port : endpointPort ? endpointPort : 80);
    }
    rc = 0;
out:
    free(hostBase);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: signalr-standin [--connection-string \"Endpoint=http://127.0.0.1;Port=8888;"
            "AccessKey=...;Version=1.0;\"]\n"
            "                       [--host ADDR] [--ping-seconds S]\n"
            "A local stand-in for Azure SignalR Service (serverless mode).\n"
            "  --connection-string  else the environment variable AzureSignalRConnectionString\n"
            "  --host               address to listen on (default %s)\n"
            "  --ping-seconds       hub keep-alive ping interval (default %d)\n",
            DEFAULT_HOST, DEFAULT_PING_SECONDS);
}

/* Matches "--name VALUE" and "--name=VALUE". Returns 1 and sets *value (or NULL when the value
 * is missing), or 0 when argv[*i] is another option. */
static int option(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0') return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

int configFromArgs(struct config *cfg, int argc, char **argv, char *err, size_t errlen) {
    const char *cs = NULL, *host = DEFAULT_HOST, *ping = NULL, *v;
    unsigned char addr[sizeof(struct in6_addr)];
    long pingSeconds = DEFAULT_PING_SECONDS;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (option(argc, argv, &i, "--connection-string", &v)) {
            if (!v) goto missing;
            cs = v;
        } else if (option(argc, argv, &i, "--host", &v)) {
            if (!v) goto missing;
            host = v;
        } else if (option(argc, argv, &i, "--ping-seconds", &v)) {
            if (!v) goto missing;
            ping = v;
        } else {
            /* An unknown argument may be a mistyped connection string: do not echo it. */
            logSetError(err, errlen, "unknown argument #%d (see --help)", i);
            return -1;
        }
        continue;
    missing:
        logSetError(err, errlen, "%s needs a value", argv[i]);
        return -1;
    }
    if (!cs) cs = getenv("AzureSignalRConnectionString");
    if (!cs) {
        logSetError(err, errlen,
                    "no connection string: pass --connection-string or set "
                    "AzureSignalRConnectionString");
        return -1;
    }
    if (ping && connstrParseLong(ping, strlen(ping), 1, MAX_PING_SECONDS, &pingSeconds) != 0) {
        logSetError(err, errlen, "--ping-seconds must be a whole number from 1 to %d",
                    MAX_PING_SECONDS);
        return -1;
    }
    if (strlen(host) >= sizeof(cfg->host) ||
        (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)) {
        logSetError(err, errlen, "--host must be a numeric IPv4 or IPv6 address");
        return -1;
    }
    if (configParseConnectionString(cfg, cs, err, errlen) != 0) return -1;
    snprintf(cfg->host, sizeof(cfg->host), "%s", host);
    cfg->ping_seconds = (int)pingSeconds;
    return 0;
}

void configFree(struct config *cfg) {
    if (!cfg) return;
    free(cfg->base);
    if (cfg->access_key) {
        /* volatile so the wipe is not optimised away before free */
        volatile char *p = cfg->access_key;
        for (size_t i = 0; i < cfg->access_key_len; i++)
            p[i] = 0;
        free(cfg->access_key);
    }
    memset(cfg, 0, sizeof(*cfg));
}
