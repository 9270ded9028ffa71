/* httpc: the HTTP client (libcurl behind it): pooled handles so connections are reused,
 * bounded timeouts, capped response buffers. The only module that calls libcurl. */
#include "httpc.h"

#include "log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define POOL_MAX 64
#define HEADERS_CAP (32 * 1024)
/* The bundle deploy/stage-app.sh puts in the app folder (Debian's ca-certificates). */
#define CA_APP_FILE "ca-certificates.crt"
/* Debian's whole bundle is about 220 KB; a file far larger is not a CA bundle. */
#define CA_FILE_MAX (64 << 20)
/* The Functions host gives the custom handler the app folder's path in this variable
 * (Azure/azure-functions-host, src/WebJobs.Script/Workers/Http/HttpWorkerProcess.cs and
 * HttpWorkerConstants.cs, commit 89dc438d476542786f2fc4070f553423213a6223). */
#define APP_ROOT_ENV "FUNCTIONS_APP_ROOT_PATH"

/* Idle easy handles; each keeps its own connection cache, so a handle taken from the pool
 * usually finds a live keep-alive connection to the same service. */
static CURL *pool[POOL_MAX];
static int pooled;
static pthread_mutex_t poolLock = PTHREAD_MUTEX_INITIALIZER;
/* The CA bundle every request trusts, chosen once by httpcCaInit; empty: libcurl's defaults. */
static char caFile[PATH_MAX];

int httpcGlobalInit(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

/* Is path a readable regular file holding at least one PEM certificate? Returns 1, or 0 with
 * the reason in why. */
static int pemBundle(const char *path, char *why, size_t whylen) {
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    char line[256];
    struct stat st;
    int found = 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, whylen, "%s", strerror(errno));
        return 0;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        goto out;
    }
    if (st.st_size > CA_FILE_MAX) {
        snprintf(why, whylen, "larger than %d MB", CA_FILE_MAX >> 20);
        goto out;
    }
    while (!found && fgets(line, sizeof(line), f))
        found = strncmp(line, begin, sizeof(begin) - 1) == 0;
    if (!found)
        snprintf(why, whylen, "%s", ferror(f) ? strerror(errno) : "no PEM certificate in it");
out:
    fclose(f);
    return found;
}

/* Does dir hold OpenSSL's hashed certificate names (8 hex digits, '.', a digit)? */
static int hashedCertDir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d) return 0;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;
        int i = 0;
        while (i < 8 && isxdigit((unsigned char)n[i]))
            i++;
        found = i == 8 && n[8] == '.' && isdigit((unsigned char)n[9]);
    }
    closedir(d);
    return found;
}

/* Only for the tests (tests/unit/hooks.h declares it). */
const char *httpcCaFile(void) { return caFile; }

int httpcCaInit(const char *bundle, const char *setting, int required, char *err, size_t errlen) {
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    char why[128] = "", app[PATH_MAX];
    const char *root = getenv(APP_ROOT_ENV);

    caFile[0] = '\0';
    if (bundle && bundle[0]) {
        /* Resolved now, so later requests do not depend on the working directory. */
        if (!pemBundle(bundle, why, sizeof(why)) || !realpath(bundle, caFile)) {
            if (!why[0]) snprintf(why, sizeof(why), "%s", strerror(errno));
            caFile[0] = '\0';
            if (required)
                return logSetError(err, errlen, "%s: cannot use '%s' as a CA bundle: %s", setting,
                                   bundle, why);
            logWarn("https: %s: cannot use '%s' as a CA bundle (%s): passing it over", setting,
                    bundle, why);
        } else {
            logInfo("https: CA bundle %s (from %s)", caFile, setting);
            return 0;
        }
    }
    if (v->cainfo && pemBundle(v->cainfo, why, sizeof(why))) {
        logInfo("https: CA bundle %s (the system's)", v->cainfo);
        return 0;
    }
    if (v->capath && hashedCertDir(v->capath)) {
        logInfo("https: CA certificates in %s (the system's)", v->capath);
        return 0;
    }
    if (root && root[0] &&
        snprintf(app, sizeof(app), "%s/%s", root, CA_APP_FILE) < (int)sizeof(app) &&
        pemBundle(app, why, sizeof(why)) && realpath(app, caFile)) {
        logInfo("https: CA bundle %s (the app's: the system has none)", caFile);
        return 0;
    }
    caFile[0] = '\0';
    logWarn("https: no CA certificates (none in the system, none in the app folder, no "
            "EnviromonCaBundle): HTTPS requests will fail");
    return 0;
}

void httpcGlobalCleanup(void) {
    pthread_mutex_lock(&poolLock);
    while (pooled > 0)
        curl_easy_cleanup(pool[--pooled]);
    pthread_mutex_unlock(&poolLock);
    curl_global_cleanup();
}

static CURL *acquire(void) {
    CURL *h = NULL;
    pthread_mutex_lock(&poolLock);
    if (pooled > 0) h = pool[--pooled];
    pthread_mutex_unlock(&poolLock);
    if (h)
        curl_easy_reset(h); /* keeps the connection cache */
    else
        h = curl_easy_init();
    return h;
}

static void release(CURL *h) {
    pthread_mutex_lock(&poolLock);
    if (pooled < POOL_MAX) {
        pool[pooled++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&poolLock);
    if (h) curl_easy_cleanup(h);
}

static size_t onBody(char *data, size_t size, size_t n, void *userp) {
    buf *b = userp;
    return bufAppend(b, data, size * n) == 0 ? size * n : 0;
}

static size_t onHeader(char *data, size_t size, size_t n, void *userp) {
    buf *b = userp;
    /* A new status line starts a new response (after 100 Continue or a redirect). */
    if (size * n >= 5 && memcmp(data, "HTTP/", 5) == 0) bufReset(b);
    return bufAppend(b, data, size * n) == 0 ? size * n : 0;
}

int httpcRequest(const char *method, const char *url, const char *const *headers, const void *body,
                 size_t bodylen, size_t respcap, long timeout_ms, httpcResponse *resp) {
    struct curl_slist *list = NULL;
    int rc = -1;
    memset(resp, 0, sizeof(*resp));
    bufInit(&resp->body, respcap);
    bufInit(&resp->headers, HEADERS_CAP);

    CURL *h = acquire();
    if (!h) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return -1;
    }
    for (const char *const *hd = headers; hd && *hd; hd++) {
        struct curl_slist *l = curl_slist_append(list, *hd);
        if (!l) {
            snprintf(resp->error, sizeof(resp->error), "out of memory");
            goto out;
        }
        list = l;
    }
    /* No "Expect: 100-continue" round trip for bodies. */
    struct curl_slist *l = curl_slist_append(list, "Expect:");
    if (!l) goto out;
    list = l;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (caFile[0]) {
        /* Exactly the bundle logged at start, without libcurl's default directory beside it. */
        curl_easy_setopt(h, CURLOPT_CAINFO, caFile);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp->headers);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? bodylen : 0));
    }

    CURLcode res = curl_easy_perform(h);
    if (res != CURLE_OK) {
        resp->tooLarge = res == CURLE_WRITE_ERROR;
        snprintf(resp->error, sizeof(resp->error), "%s",
                 resp->tooLarge ? "response too large" : curl_easy_strerror(res));
        /* A handle whose transfer failed may hold a broken connection: do not pool it. */
        curl_easy_cleanup(h);
        h = NULL;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = 0;
out:
    curl_slist_free_all(list);
    if (h) release(h);
    return rc;
}

const char *httpcHeader(const httpcResponse *resp, const char *name, char *out, size_t outlen) {
    size_t nlen = strlen(name);
    const char *p = resp->headers.data;
    if (!p || outlen == 0) return NULL;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) eol = p + strlen(p);
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if ((size_t)(e - v) >= outlen) return NULL;
            memcpy(out, v, (size_t)(e - v));
            out[e - v] = '\0';
            return out;
        }
        p = *eol ? eol + 2 : eol;
    }
    return NULL;
}

void httpcResponseFree(httpcResponse *resp) {
    bufFree(&resp->body);
    bufFree(&resp->headers);
}
