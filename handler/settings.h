/* settings: every setting, read once at start from the environment; connection strings parsed
 * here, so a malformed one stops the handler at start with a message naming the setting. */
#ifndef ENVIROMON_SETTINGS_H
#define ENVIROMON_SETTINGS_H

#include <stddef.h>

#define SETTINGS_ERR_LEN 256

/* A Table Storage account, from a storage connection string. */
typedef struct storageAccount {
    char account[64];       /* account name; empty with a SAS and an explicit endpoint */
    unsigned char key[128]; /* decoded account key (Shared Key), keylen 0 when using a SAS */
    size_t keylen;
    char sas[1024];     /* SAS query without the leading '?', empty with Shared Key */
    char endpoint[512]; /* table endpoint without a trailing '/' */
} storageAccount;

typedef struct settings {
    int port;
    storageAccount storage;
    char storageSetting[32]; /* which setting the connection string came from */
    char partitionKey[256];
    char deviceTable[64];
    char calibrationTable[64];
    char rejectedTable[64];
    char quarantineTable[64];
    char historyTable[64]; /* every accepted reading (history.h) */
    int historyEnabled;    /* HistoryEnabled: 1 (default) keeps every reading, 0 does not */
    int historyDays;       /* HistoryDays: rows older than this many days are deleted */
    int backoffBaseMs;
    int backoffCapMs;
    int backoffAttempts;
    int batchConcurrency;
    size_t maxBodyBytes;
    int calibrationCacheSeconds;
    char signalrConnectionString[2048]; /* empty when not configured; parsed by signalr */
    char hubName[128];
    int tokenLifetimeSeconds;
    char dashboardDir[1024];  /* empty unless serving the dashboard locally */
    char caBundle[1024];      /* CA bundle for HTTPS; empty: the system's, else the app's */
    char caBundleSetting[32]; /* which setting named it (EnviromonCaBundle or SSL_CERT_FILE) */
    int caBundleRequired;     /* 1 for EnviromonCaBundle: a bundle it cannot use stops the start */
    int platformAuth;         /* WEBSITE_AUTH_ENABLED: App Service authentication is on */
    int requestDeadlineSeconds;
    size_t rowCacheBytes;   /* the row cache's budget (devicestate) */
    size_t missedPushBytes; /* the budget of pushes kept while SignalR is failing (livepush) */
} settings;

/* Reads every setting from the environment into *s. Returns 0, or -1 with a message in err
 * (naming the setting and what is wrong, never a key's value). */
int settingsLoad(settings *s, char *err, size_t errlen);

/* Parses a storage connection string (account key, SAS, UseDevelopmentStorage=true, explicit
 * TableEndpoint). name is the setting's name for messages. Returns 0, or -1 with err. */
int settingsParseStorage(const char *name, const char *cs, storageAccount *out, char *err,
                         size_t errlen);

#endif
