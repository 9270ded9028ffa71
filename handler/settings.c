/* settings: every setting, read once at start from the environment; connection strings parsed
 * here, so a malformed one stops the handler at start with a message naming the setting. */
#include "settings.h"

#include "crypto.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEV_ACCOUNT "devstoreaccount1"
/* The storage emulator's published, well-known key; not a secret. */
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static const char *trim_span(const char *s, const char *e, size_t *len) {
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    *len = (size_t)(e - s);
    return s;
}

int settingsConnGet(const char *cs, const char *key, char *out, size_t outlen) {
    size_t klen = strlen(key);
    const char *p = cs;
    while (p && *p) {
        const char *end = strchr(p, ';');
        if (!end) end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq) {
            size_t nlen, vlen;
            const char *n = trim_span(p, eq, &nlen);
            const char *v = trim_span(eq + 1, end, &vlen);
            if (nlen == klen && strncasecmp(n, key, klen) == 0) {
                if (vlen >= outlen) return -1;
                memcpy(out, v, vlen);
                out[vlen] = '\0';
                return 1;
            }
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

int settingsConnCheck(const char *cs, const char *const *known, char *err, size_t errlen) {
    const char *p = cs;
    int seg = 0;
    while (*p) {
        const char *end = strchr(p, ';');
        if (!end) end = p + strlen(p);
        size_t len;
        const char *s = trim_span(p, end, &len);
        seg++;
        if (len > 0) {
            const char *eq = memchr(s, '=', len);
            if (!eq)
                return logSetError(err, errlen, "part %d has no '=' (expected Name=value)", seg);
            size_t nlen;
            const char *n = trim_span(s, eq, &nlen);
            int ok = 0;
            for (const char *const *k = known; *k; k++)
                if (strlen(*k) == nlen && strncasecmp(*k, n, nlen) == 0) ok = 1;
            if (!ok) {
                /* The name is not quoted: it may be a pasted secret. */
                char names[512] = "";
                size_t o = 0;
                for (const char *const *k = known; *k && o < sizeof(names); k++)
                    o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "", *k);
                return logSetError(err, errlen, "part %d has an unknown name (known: %s)", seg,
                                   names);
            }
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int valid_url(const char *u) {
    const char *rest = NULL;
    if (strncasecmp(u, "https://", 8) == 0)
        rest = u + 8;
    else if (strncasecmp(u, "http://", 7) == 0)
        rest = u + 7;
    if (!rest || !*rest || *rest == '/') return 0;
    for (const char *c = u; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '"' || *c == '<' || *c == '>' || *c == '\\') return 0;
    return 1;
}

int settingsParseStorage(const char *name, const char *cs, storageAccount *out, char *err,
                         size_t errlen) {
    static const char *const known[] = {"DefaultEndpointsProtocol",
                                        "AccountName",
                                        "AccountKey",
                                        "EndpointSuffix",
                                        "TableEndpoint",
                                        "BlobEndpoint",
                                        "QueueEndpoint",
                                        "FileEndpoint",
                                        "SharedAccessSignature",
                                        "UseDevelopmentStorage",
                                        "DevelopmentStorageProxyUri",
                                        NULL};
    char msg[160], v[1024], proto[16] = "https", suffix[128] = "core.windows.net";
    char key[256] = "";
    memset(out, 0, sizeof(*out));
    if (!cs || !*cs) return logSetError(err, errlen, "%s is not set", name);
    if (settingsConnCheck(cs, known, msg, sizeof(msg)) != 0)
        return logSetError(err, errlen, "%s is malformed: %s", name, msg);

    int dev = settingsConnGet(cs, "UseDevelopmentStorage", v, sizeof(v));
    if (dev == 1) {
        if (strcasecmp(v, "true") != 0)
            return logSetError(err, errlen, "%s: UseDevelopmentStorage must be 'true'", name);
        char proxy[256] = "http://127.0.0.1";
        if (settingsConnGet(cs, "DevelopmentStorageProxyUri", v, sizeof(v)) == 1) {
            if (!valid_url(v) || strlen(v) >= sizeof(proxy))
                return logSetError(err, errlen,
                                   "%s: DevelopmentStorageProxyUri is not an http(s) URL", name);
            snprintf(proxy, sizeof(proxy), "%s", v);
            size_t pl = strlen(proxy);
            while (pl && proxy[pl - 1] == '/')
                proxy[--pl] = '\0';
        }
        snprintf(out->account, sizeof(out->account), DEV_ACCOUNT);
        snprintf(out->endpoint, sizeof(out->endpoint), "%s:10002/" DEV_ACCOUNT, proxy);
        unsigned char *k = cryptoBase64Decode(DEV_KEY, strlen(DEV_KEY), &out->keylen);
        if (!k) return logSetError(err, errlen, "out of memory");
        memcpy(out->key, k, out->keylen);
        free(k);
        return 0;
    }

    int r = settingsConnGet(cs, "AccountName", out->account, sizeof(out->account));
    if (r < 0) return logSetError(err, errlen, "%s: AccountName is too long", name);
    for (const char *c = out->account; *c; c++)
        if (!isalnum((unsigned char)*c))
            return logSetError(err, errlen, "%s: AccountName may hold only letters and digits",
                               name);
    r = settingsConnGet(cs, "AccountKey", key, sizeof(key));
    if (r < 0) return logSetError(err, errlen, "%s: AccountKey is too long", name);
    r = settingsConnGet(cs, "SharedAccessSignature", out->sas, sizeof(out->sas));
    if (r < 0) return logSetError(err, errlen, "%s: SharedAccessSignature is too long", name);
    if (out->sas[0] == '?') memmove(out->sas, out->sas + 1, strlen(out->sas));
    if (key[0] && out->sas[0])
        return logSetError(err, errlen, "%s: give AccountKey or SharedAccessSignature, not both",
                           name);
    if (!key[0] && !out->sas[0])
        return logSetError(err, errlen, "%s: needs AccountKey or SharedAccessSignature", name);
    if (key[0]) {
        if (!out->account[0])
            return logSetError(err, errlen, "%s: AccountKey needs AccountName", name);
        size_t klen = 0;
        unsigned char *k = cryptoBase64Decode(key, strlen(key), &klen);
        if (!k || klen == 0 || klen > sizeof(out->key)) {
            free(k);
            return logSetError(err, errlen, "%s: AccountKey is not valid base64", name);
        }
        memcpy(out->key, k, klen);
        out->keylen = klen;
        free(k);
    }

    r = settingsConnGet(cs, "TableEndpoint", v, sizeof(v));
    if (r < 0) return logSetError(err, errlen, "%s: TableEndpoint is too long", name);
    if (r == 1) {
        if (!valid_url(v) || strlen(v) >= sizeof(out->endpoint))
            return logSetError(err, errlen, "%s: TableEndpoint is not an http(s) URL", name);
        snprintf(out->endpoint, sizeof(out->endpoint), "%s", v);
    } else {
        if (!out->account[0])
            return logSetError(err, errlen, "%s: needs AccountName or TableEndpoint", name);
        if (settingsConnGet(cs, "DefaultEndpointsProtocol", proto, sizeof(proto)) != 0 &&
            strcasecmp(proto, "http") != 0 && strcasecmp(proto, "https") != 0)
            return logSetError(err, errlen, "%s: DefaultEndpointsProtocol must be http or https",
                               name);
        if (settingsConnGet(cs, "EndpointSuffix", suffix, sizeof(suffix)) < 0 || !suffix[0])
            return logSetError(err, errlen, "%s: EndpointSuffix is not valid", name);
        snprintf(out->endpoint, sizeof(out->endpoint), "%s://%s.table.%s", proto, out->account,
                 suffix);
    }
    size_t el = strlen(out->endpoint);
    while (el && out->endpoint[el - 1] == '/')
        out->endpoint[--el] = '\0';
    return 0;
}

int settingsParseInt(const char *text, long min, long max, long *out) {
    char *end;
    if (!text || !*text) return -1;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int int_setting(const char *name, long def, long min, long max, long *out, char *err,
                       size_t errlen) {
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    if (settingsParseInt(v, min, max, out) != 0)
        return logSetError(err, errlen, "%s must be a whole number from %ld to %ld (got '%.40s')",
                           name, min, max, v);
    return 0;
}

static int str_setting(const char *name, const char *def, char *out, size_t outlen, char *err,
                       size_t errlen) {
    const char *v = getenv(name);
    if (!v || !*v) v = def;
    if (strlen(v) >= outlen) return logSetError(err, errlen, "%s is too long", name);
    snprintf(out, outlen, "%s", v);
    return 0;
}

/* Table names: 3 to 63 letters and digits, starting with a letter. */
static int table_setting(const char *name, const char *def, char *out, size_t outlen, char *err,
                         size_t errlen) {
    if (str_setting(name, def, out, outlen, err, errlen) != 0) return -1;
    size_t n = strlen(out);
    int ok = n >= 3 && n <= 63 && isalpha((unsigned char)out[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)out[i]) != 0;
    if (!ok)
        return logSetError(err, errlen, "%s must be 3-63 letters and digits starting with a letter",
                           name);
    return 0;
}

int settingsLoad(settings *s, char *err, size_t errlen) {
    long v;
    memset(s, 0, sizeof(*s));
    if (int_setting("FUNCTIONS_CUSTOMHANDLER_PORT", 7071, 1, 65535, &v, err, errlen)) return -1;
    s->port = (int)v;

    const char *name = "StorageConnectionString";
    const char *cs = getenv(name);
    if (!cs || !*cs) {
        name = "AzureWebJobsStorage";
        cs = getenv(name);
    }
    if (!cs || !*cs)
        return logSetError(err, errlen,
                           "StorageConnectionString (or AzureWebJobsStorage) is not set");
    snprintf(s->storageSetting, sizeof(s->storageSetting), "%s", name);
    if (settingsParseStorage(name, cs, &s->storage, err, errlen) != 0) return -1;

    if (str_setting("PartitionKey", "Sydney", s->partitionKey, sizeof(s->partitionKey), err,
                    errlen))
        return -1;
    for (const unsigned char *c = (const unsigned char *)s->partitionKey; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '\\' || *c == '#' || *c == '?')
            return logSetError(err, errlen,
                               "PartitionKey may not hold / \\ # ? or control characters");
    if (table_setting("DeviceStateTable", "DeviceState", s->deviceTable, sizeof(s->deviceTable),
                      err, errlen) ||
        table_setting("CalibrationTable", "Calibration", s->calibrationTable,
                      sizeof(s->calibrationTable), err, errlen) ||
        table_setting("RejectedTable", "RejectedTelemetry", s->rejectedTable,
                      sizeof(s->rejectedTable), err, errlen) ||
        table_setting("QuarantineTable", "QuarantinedBatches", s->quarantineTable,
                      sizeof(s->quarantineTable), err, errlen) ||
        table_setting("HistoryTable", "ReadingHistory", s->historyTable, sizeof(s->historyTable),
                      err, errlen))
        return -1;
    if (int_setting("HistoryEnabled", 1, 0, 1, &v, err, errlen)) return -1;
    s->historyEnabled = (int)v;
    if (int_setting("HistoryDays", 30, 1, 36500, &v, err, errlen)) return -1;
    s->historyDays = (int)v;

    if (int_setting("BackoffBaseMs", 40, 1, 60000, &v, err, errlen)) return -1;
    s->backoffBaseMs = (int)v;
    if (int_setting("BackoffCapMs", 1000, 1, 600000, &v, err, errlen)) return -1;
    s->backoffCapMs = (int)v;
    if (s->backoffCapMs < s->backoffBaseMs)
        return logSetError(err, errlen, "BackoffCapMs (%d) must not be below BackoffBaseMs (%d)",
                           s->backoffCapMs, s->backoffBaseMs);
    if (int_setting("BackoffAttempts", 10, 1, 100, &v, err, errlen)) return -1;
    s->backoffAttempts = (int)v;
    if (int_setting("BatchConcurrency", 8, 1, 64, &v, err, errlen)) return -1;
    s->batchConcurrency = (int)v;
    /* The largest invocation the host sends with this host.json (maxEventBatchSize 100, IoT Hub
     * messages of up to 256 KiB, every byte a control character escaped twice: 7 bytes) is
     * about 176 MiB; 192 MiB leaves room for the metadata. README, "Request body limit". */
    if (int_setting("MaxRequestBodyBytes", 192L << 20, 1024, 1L << 30, &v, err, errlen)) return -1;
    s->maxBodyBytes = (size_t)v;
    if (int_setting("CalibrationCacheSeconds", 300, 0, 86400, &v, err, errlen)) return -1;
    s->calibrationCacheSeconds = (int)v;
    if (int_setting("RequestDeadlineSeconds", 120, 1, 3600, &v, err, errlen)) return -1;
    s->requestDeadlineSeconds = (int)v;
    if (int_setting("RowCacheBytes", 64L << 20, 64L << 10, 64L << 30, &v, err, errlen)) return -1;
    s->rowCacheBytes = (size_t)v;
    if (int_setting("MissedPushBytes", 16L << 20, 64L << 10, 64L << 30, &v, err, errlen)) return -1;
    s->missedPushBytes = (size_t)v;

    if (str_setting("AzureSignalRConnectionString", "", s->signalrConnectionString,
                    sizeof(s->signalrConnectionString), err, errlen))
        return -1;
    if (str_setting("SignalRHubName", "Enviromon", s->hubName, sizeof(s->hubName), err, errlen))
        return -1;
    for (const char *c = s->hubName; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
            return logSetError(err, errlen, "SignalRHubName may hold only letters, digits, _ - .");
    if (int_setting("SignalRTokenLifetimeSeconds", 3600, 60, 7 * 86400, &v, err, errlen)) return -1;
    s->tokenLifetimeSeconds = (int)v;
    if (str_setting("EnviromonDashboardDir", "", s->dashboardDir, sizeof(s->dashboardDir), err,
                    errlen))
        return -1;
    /* The CA bundle: EnviromonCaBundle, else OpenSSL's own SSL_CERT_FILE (which the image may set:
     * like OpenSSL, a file it names that cannot be used is passed over, with a warning); httpc
     * checks the file and, when neither is set, chooses between the system's bundle and the app's.
     */
    static const char *const ca_names[] = {"EnviromonCaBundle", "SSL_CERT_FILE"};
    for (size_t i = 0; i < sizeof(ca_names) / sizeof(ca_names[0]) && !s->caBundle[0]; i++) {
        if (str_setting(ca_names[i], "", s->caBundle, sizeof(s->caBundle), err, errlen)) return -1;
        if (s->caBundle[0]) {
            snprintf(s->caBundleSetting, sizeof(s->caBundleSetting), "%s", ca_names[i]);
            s->caBundleRequired = i == 0;
        }
    }
    /* Set by the platform, never by the user: "Read-only. Injected into a Windows or Linux app to
     * indicate whether App Service authentication is enabled" (Microsoft Learn, "Environment
     * variables and app settings in Azure App Service", reference-app-settings, 2023-09-14). */
    const char *auth = getenv("WEBSITE_AUTH_ENABLED");
    s->platformAuth = auth && (strcasecmp(auth, "true") == 0 || strcmp(auth, "1") == 0);
    return 0;
}
