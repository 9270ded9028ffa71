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

/* The parts of a connection string the stand-in reads, each borrowed from the text. */
enum { CS_ENDPOINT, CS_ACCESS_KEY, CS_PORT, CS_VERSION, CS_AUTH_TYPE, CS_FIELDS };
static const char *const csNames[CS_FIELDS] = {"Endpoint", "AccessKey", "Port", "Version",
                                               "AuthType"};
struct csFields {
    const char *value[CS_FIELDS]; /* NULL when absent */
    size_t len[CS_FIELDS];
};

/* Splits text into f. Returns 0, or -1 with err set (never quoting a value). */
static int csCollect(const char *text, struct csFields *f, char *err, size_t errlen) {
    const char *pos = text;
    int part = 0, r;
    connstrPart p;
    memset(f, 0, sizeof(*f));
    while ((r = connstrNext(&pos, &part, &p)) != 0) {
        /* Never quote a part: a pasted key without its "AccessKey=" would be printed. */
        if (r < 0) return logSetError(err, errlen, "connection string part %d has no '='", p.index);
        if (p.nameLen == 0)
            return logSetError(err, errlen, "connection string part %d has an empty key", p.index);
        int i = 0;
        while (i < CS_FIELDS && !connstrNameIs(&p, csNames[i]))
            i++;
        if (i == CS_FIELDS) continue; /* ClientEndpoint, ServerEndpoint and the like: not used */
        if (f->value[i]) /* The key name is one of the known names above, safe to print. */
            return logSetError(err, errlen, "connection string names %.*s twice", (int)p.nameLen,
                               p.name);
        f->value[i] = p.value;
        f->len[i] = p.valueLen;
    }
    return 0;
}

/* Checks the parts other than the endpoint; *port gets Port= when given. Returns 0 or -1. */
static int csCheck(const struct csFields *f, long *port, char *err, size_t errlen) {
    const char *version = f->value[CS_VERSION], *auth = f->value[CS_AUTH_TYPE];
    if (!f->value[CS_ENDPOINT] || f->len[CS_ENDPOINT] == 0)
        return logSetError(err, errlen, "connection string has no Endpoint");
    if (!f->value[CS_ACCESS_KEY] || f->len[CS_ACCESS_KEY] == 0)
        return logSetError(err, errlen, "connection string has no AccessKey");
    if (version && !(f->len[CS_VERSION] == 3 && memcmp(version, "1.0", 3) == 0))
        return logSetError(err, errlen, "connection string Version must be 1.0");
    if (auth && f->len[CS_AUTH_TYPE] && !keyIs(auth, f->len[CS_AUTH_TYPE], "AccessKey"))
        return logSetError(err, errlen,
                           "connection string AuthType is not supported: the stand-in checks "
                           "AccessKey tokens only");
    if (f->value[CS_PORT] &&
        connstrParseLong(f->value[CS_PORT], f->len[CS_PORT], 1, 65535, port) != 0)
        return logSetError(err, errlen, "connection string Port must be a number from 1 to 65535");
    return 0;
}

/* Replaces cfg's base, key and port. Returns 0, or -1 (out of memory; cfg unchanged). */
static int csStore(struct config *cfg, const struct csFields *f, const char *hostBase, long port,
                   long endpointPort, char *err, size_t errlen) {
    /* The issuer (the SDK, the handler) puts Port= into the audience; without it the Endpoint is
     * used as written, default port implied. */
    int hasPort = f->value[CS_PORT] != NULL;
    size_t keyLen = f->len[CS_ACCESS_KEY];
    size_t cap = strlen(hostBase) + 8;
    char *base = malloc(cap);
    char *k = malloc(keyLen + 1);
    if (!base || !k) {
        free(base);
        free(k);
        return logSetError(err, errlen, "out of memory");
    }
    if (hasPort || endpointPort)
        snprintf(base, cap, "%s:%ld", hostBase, hasPort ? port : endpointPort);
    else
        snprintf(base, cap, "%s", hostBase);
    memcpy(k, f->value[CS_ACCESS_KEY], keyLen);
    k[keyLen] = '\0';
    configFree(cfg);
    cfg->base = base;
    cfg->access_key = k;
    cfg->access_key_len = keyLen;
    cfg->port = (int)(hasPort ? port : endpointPort ? endpointPort : 80);
    return 0;
}

int configParseConnectionString(struct config *cfg, const char *text, char *err, size_t errlen) {
    struct csFields f;
    char *hostBase = NULL;
    long endpointPort = 0, port = 0;
    int rc = -1;

    if (!text || !*text) {
        logSetError(err, errlen, "connection string is empty");
        goto out;
    }
    if (csCollect(text, &f, err, errlen) || csCheck(&f, &port, err, errlen)) goto out;
    if (parseEndpoint(f.value[CS_ENDPOINT], f.len[CS_ENDPOINT], &hostBase, &endpointPort, err,
                      errlen) != 0)
        goto out;
    if (csStore(cfg, &f, hostBase, port, endpointPort, err, errlen)) goto out;
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
