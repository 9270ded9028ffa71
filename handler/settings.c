/* settings: every setting, read once at start from the environment; connection strings parsed
 * here, so a malformed one stops the handler at start with a message naming the setting. */
#include "settings.h"

#include "connstr.h"
#include "crypto.h"
#include "log.h"
#include "url.h"

#include <ctype.h>
#include <stddef.h>
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

static int validUrl(const char *u) {
    urlParts parts;
    return urlParse(u, strlen(u), &parts) == URL_OK;
}

/* UseDevelopmentStorage=true: the emulator's account at DevelopmentStorageProxyUri (default
 * http://127.0.0.1), table port 10002. */
static int devStorage(const char *name, const char *cs, storageAccount *out, char *err,
                      size_t errlen) {
    char v[1024], proxy[256] = "http://127.0.0.1";
    if (connstrGet(cs, "UseDevelopmentStorage", v, sizeof(v)) != 1 || strcasecmp(v, "true") != 0)
        return logSetError(err, errlen, "%s: UseDevelopmentStorage must be 'true'", name);
    if (connstrGet(cs, "DevelopmentStorageProxyUri", v, sizeof(v)) == 1) {
        if (!validUrl(v) || strlen(v) >= sizeof(proxy))
            return logSetError(err, errlen, "%s: DevelopmentStorageProxyUri is not an http(s) URL",
                               name);
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

/* AccountName, and either AccountKey (decoded into out->key) or SharedAccessSignature. */
static int accountCredentials(const char *name, const char *cs, storageAccount *out, char *err,
                              size_t errlen) {
    char key[256] = "";
    int r = connstrGet(cs, "AccountName", out->account, sizeof(out->account));
    if (r < 0) return logSetError(err, errlen, "%s: AccountName is too long", name);
    for (const char *c = out->account; *c; c++)
        if (!isalnum((unsigned char)*c))
            return logSetError(err, errlen, "%s: AccountName may hold only letters and digits",
                               name);
    r = connstrGet(cs, "AccountKey", key, sizeof(key));
    if (r < 0) return logSetError(err, errlen, "%s: AccountKey is too long", name);
    r = connstrGet(cs, "SharedAccessSignature", out->sas, sizeof(out->sas));
    if (r < 0) return logSetError(err, errlen, "%s: SharedAccessSignature is too long", name);
    if (out->sas[0] == '?') memmove(out->sas, out->sas + 1, strlen(out->sas));
    if (key[0] && out->sas[0])
        return logSetError(err, errlen, "%s: give AccountKey or SharedAccessSignature, not both",
                           name);
    if (!key[0] && !out->sas[0])
        return logSetError(err, errlen, "%s: needs AccountKey or SharedAccessSignature", name);
    if (!key[0]) return 0;
    if (!out->account[0]) return logSetError(err, errlen, "%s: AccountKey needs AccountName", name);
    size_t klen = 0;
    unsigned char *k = cryptoBase64Decode(key, strlen(key), &klen);
    if (!k || klen == 0 || klen > sizeof(out->key)) {
        free(k);
        return logSetError(err, errlen, "%s: AccountKey is not valid base64", name);
    }
    memcpy(out->key, k, klen);
    out->keylen = klen;
    free(k);
    return 0;
}

/* The table endpoint: TableEndpoint, else {protocol}://{account}.table.{suffix}; no trailing
 * slash. */
static int tableEndpoint(const char *name, const char *cs, storageAccount *out, char *err,
                         size_t errlen) {
    char v[1024], proto[16] = "https", suffix[128] = "core.windows.net";
    int r = connstrGet(cs, "TableEndpoint", v, sizeof(v));
    if (r < 0) return logSetError(err, errlen, "%s: TableEndpoint is too long", name);
    if (r == 1) {
        if (!validUrl(v) || strlen(v) >= sizeof(out->endpoint))
            return logSetError(err, errlen, "%s: TableEndpoint is not an http(s) URL", name);
        snprintf(out->endpoint, sizeof(out->endpoint), "%s", v);
    } else {
        if (!out->account[0])
            return logSetError(err, errlen, "%s: needs AccountName or TableEndpoint", name);
        if (connstrGet(cs, "DefaultEndpointsProtocol", proto, sizeof(proto)) != 0 &&
            strcasecmp(proto, "http") != 0 && strcasecmp(proto, "https") != 0)
            return logSetError(err, errlen, "%s: DefaultEndpointsProtocol must be http or https",
                               name);
        if (connstrGet(cs, "EndpointSuffix", suffix, sizeof(suffix)) < 0 || !suffix[0])
            return logSetError(err, errlen, "%s: EndpointSuffix is not valid", name);
        snprintf(out->endpoint, sizeof(out->endpoint), "%s://%s.table.%s", proto, out->account,
                 suffix);
    }
    size_t el = strlen(out->endpoint);
    while (el && out->endpoint[el - 1] == '/')
        out->endpoint[--el] = '\0';
    return 0;
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
    char msg[160], v[1024];
    memset(out, 0, sizeof(*out));
    if (!cs || !*cs) return logSetError(err, errlen, "%s is not set", name);
    if (connstrCheck(cs, known, msg, sizeof(msg)) != 0)
        return logSetError(err, errlen, "%s is malformed: %s", name, msg);
    if (connstrGet(cs, "UseDevelopmentStorage", v, sizeof(v)) == 1)
        return devStorage(name, cs, out, err, errlen);
    if (accountCredentials(name, cs, out, err, errlen)) return -1;
    return tableEndpoint(name, cs, out, err, errlen);
}

static int intSetting(const char *name, long def, long min, long max, long *out, char *err,
                      size_t errlen) {
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    if (connstrParseLong(v, strlen(v), min, max, out) != 0)
        return logSetError(err, errlen, "%s must be a whole number from %ld to %ld (got '%.40s')",
                           name, min, max, v);
    return 0;
}

static int strSetting(const char *name, const char *def, char *out, size_t outlen, char *err,
                      size_t errlen) {
    const char *v = getenv(name);
    if (!v || !*v) v = def;
    if (strlen(v) >= outlen) return logSetError(err, errlen, "%s is too long", name);
    snprintf(out, outlen, "%s", v);
    return 0;
}

/* Table names: 3 to 63 letters and digits, starting with a letter. */
static int tableSetting(const char *name, const char *def, char *out, size_t outlen, char *err,
                        size_t errlen) {
    if (strSetting(name, def, out, outlen, err, errlen) != 0) return -1;
    size_t n = strlen(out);
    int ok = n >= 3 && n <= 63 && isalpha((unsigned char)out[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)out[i]) != 0;
    if (!ok)
        return logSetError(err, errlen, "%s must be 3-63 letters and digits starting with a letter",
                           name);
    return 0;
}

/* Checks run right after a setting is read (or, for a row without a name, the whole step). */
typedef int settingCheck(settings *s, char *err, size_t errlen);

static int readStorage(settings *s, char *err, size_t errlen) {
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
    return settingsParseStorage(name, cs, &s->storage, err, errlen);
}

static int partitionKeyChars(settings *s, char *err, size_t errlen) {
    for (const unsigned char *c = (const unsigned char *)s->partitionKey; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '\\' || *c == '#' || *c == '?')
            return logSetError(err, errlen,
                               "PartitionKey may not hold / \\ # ? or control characters");
    return 0;
}

static int backoffOrder(settings *s, char *err, size_t errlen) {
    if (s->backoffCapMs < s->backoffBaseMs)
        return logSetError(err, errlen, "BackoffCapMs (%d) must not be below BackoffBaseMs (%d)",
                           s->backoffCapMs, s->backoffBaseMs);
    return 0;
}

static int hubNameChars(settings *s, char *err, size_t errlen) {
    for (const char *c = s->hubName; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
            return logSetError(err, errlen, "SignalRHubName may hold only letters, digits, _ - .");
    return 0;
}

/* The CA bundle: EnviromonCaBundle, else OpenSSL's own SSL_CERT_FILE (which the image may set:
 * like OpenSSL, a file it names that cannot be used is passed over, with a warning); httpc
 * checks the file and, when neither is set, chooses between the system's bundle and the app's. */
static int readCaBundle(settings *s, char *err, size_t errlen) {
    static const char *const caNames[] = {"EnviromonCaBundle", "SSL_CERT_FILE"};
    for (size_t i = 0; i < sizeof(caNames) / sizeof(caNames[0]) && !s->caBundle[0]; i++) {
        if (strSetting(caNames[i], "", s->caBundle, sizeof(s->caBundle), err, errlen)) return -1;
        if (s->caBundle[0]) {
            snprintf(s->caBundleSetting, sizeof(s->caBundleSetting), "%s", caNames[i]);
            s->caBundleRequired = i == 0;
        }
    }
    return 0;
}

/* Set by the platform, never by the user: "Read-only. Injected into a Windows or Linux app to
 * indicate whether App Service authentication is enabled" (Microsoft Learn, "Environment
 * variables and app settings in Azure App Service", reference-app-settings, 2023-09-14). */
static int readPlatformAuth(settings *s, char *err, size_t errlen) {
    (void)err, (void)errlen;
    const char *auth = getenv("WEBSITE_AUTH_ENABLED");
    s->platformAuth = auth && (strcasecmp(auth, "true") == 0 || strcmp(auth, "1") == 0);
    return 0;
}

enum settingKind {
    SETTING_NUMBER, /* a whole number from min to max, into an int or size_t field */
    SETTING_TEXT,   /* a string, def when unset */
    SETTING_TABLE,  /* a table name, def when unset */
    SETTING_STEP    /* no setting of its own: check does the work */
};

typedef struct settingRow {
    enum settingKind kind;
    const char *name;
    size_t off, size; /* the field in struct settings */
    const char *def;
    long num, min, max; /* SETTING_NUMBER: default and range */
    settingCheck *check;
} settingRow;

/* A NUMBER row tells an int field from a size_t one by its size. */
_Static_assert(sizeof(int) != sizeof(size_t), "int and size_t differ in size");
#define FIELD(f) offsetof(settings, f), sizeof(((settings *)0)->f)
#define NUMBER(name, f, def, min, max, check)                                                      \
    { SETTING_NUMBER, name, FIELD(f), NULL, def, min, max, check }
#define TEXT(name, f, def, check)                                                                  \
    { SETTING_TEXT, name, FIELD(f), def, 0, 0, 0, check }
#define TABLE(name, f, def)                                                                        \
    { SETTING_TABLE, name, FIELD(f), def, 0, 0, 0, NULL }
#define STEP(check)                                                                                \
    { SETTING_STEP, NULL, 0, 0, NULL, 0, 0, 0, check }

/* Every setting, in the order read (the first error stops the start). */
static const settingRow settingRows[] = {
    NUMBER("FUNCTIONS_CUSTOMHANDLER_PORT", port, 7071, 1, 65535, NULL),
    STEP(readStorage),
    TEXT("PartitionKey", partitionKey, "Sydney", partitionKeyChars),
    TABLE("DeviceStateTable", deviceTable, "DeviceState"),
    TABLE("CalibrationTable", calibrationTable, "Calibration"),
    TABLE("RejectedTable", rejectedTable, "RejectedTelemetry"),
    TABLE("QuarantineTable", quarantineTable, "QuarantinedBatches"),
    TABLE("HistoryTable", historyTable, "ReadingHistory"),
    NUMBER("HistoryEnabled", historyEnabled, 1, 0, 1, NULL),
    NUMBER("HistoryDays", historyDays, 30, 1, 36500, NULL),
    NUMBER("BackoffBaseMs", backoffBaseMs, 40, 1, 60000, NULL),
    NUMBER("BackoffCapMs", backoffCapMs, 1000, 1, 600000, backoffOrder),
    NUMBER("BackoffAttempts", backoffAttempts, 10, 1, 100, NULL),
    NUMBER("BatchConcurrency", batchConcurrency, 8, 1, 64, NULL),
    /* The largest invocation the host sends with this host.json (maxEventBatchSize 100, IoT Hub
     * messages of up to 256 KiB, every byte a control character escaped twice: 7 bytes) is
     * about 176 MiB; 192 MiB leaves room for the metadata. README, "Request body limit". */
    NUMBER("MaxRequestBodyBytes", maxBodyBytes, 192L << 20, 1024, 1L << 30, NULL),
    NUMBER("CalibrationCacheSeconds", calibrationCacheSeconds, 300, 0, 86400, NULL),
    NUMBER("RequestDeadlineSeconds", requestDeadlineSeconds, 120, 1, 3600, NULL),
    NUMBER("RowCacheBytes", rowCacheBytes, 64L << 20, 64L << 10, 64L << 30, NULL),
    NUMBER("MissedPushBytes", missedPushBytes, 16L << 20, 64L << 10, 64L << 30, NULL),
    TEXT("AzureSignalRConnectionString", signalrConnectionString, "", NULL),
    TEXT("SignalRHubName", hubName, "Enviromon", hubNameChars),
    NUMBER("SignalRTokenLifetimeSeconds", tokenLifetimeSeconds, 3600, 60, 7 * 86400, NULL),
    TEXT("EnviromonDashboardDir", dashboardDir, "", NULL),
    STEP(readCaBundle),
    STEP(readPlatformAuth),
};

/* Reads one row's setting into its field of s. Returns 0, or -1 with err set. */
static int readRow(const settingRow *row, settings *s, char *err, size_t errlen) {
    char *field = (char *)s + row->off;
    long v;
    switch (row->kind) {
    case SETTING_NUMBER:
        if (intSetting(row->name, row->num, row->min, row->max, &v, err, errlen)) return -1;
        if (row->size == sizeof(int))
            *(int *)(void *)field = (int)v;
        else
            *(size_t *)(void *)field = (size_t)v;
        return 0;
    case SETTING_TEXT:
        return strSetting(row->name, row->def, field, row->size, err, errlen);
    case SETTING_TABLE:
        return tableSetting(row->name, row->def, field, row->size, err, errlen);
    case SETTING_STEP:
        return 0;
    }
    return -1;
}

int settingsLoad(settings *s, char *err, size_t errlen) {
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < sizeof(settingRows) / sizeof(settingRows[0]); i++) {
        const settingRow *row = &settingRows[i];
        if (readRow(row, s, err, errlen)) return -1;
        if (row->check && row->check(s, err, errlen)) return -1;
    }
    return 0;
}
