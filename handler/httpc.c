/* httpc: the HTTP client (libcurl behind it): pooled handles so connections are reused,
 * bounded timeouts, capped response buffers. The only module that calls libcurl. */
#include "httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define POOL_MAX 64
#define HEADERS_CAP (32 * 1024)

/* Idle easy handles; each keeps its own connection cache, so a handle taken from the pool
 * usually finds a live keep-alive connection to the same service. */
static CURL *pool[POOL_MAX];
static int pooled;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

int httpcGlobalInit(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

void httpcGlobalCleanup(void) {
    pthread_mutex_lock(&pool_lock);
    while (pooled > 0)
        curl_easy_cleanup(pool[--pooled]);
    pthread_mutex_unlock(&pool_lock);
    curl_global_cleanup();
}

static CURL *acquire(void) {
    CURL *h = NULL;
    pthread_mutex_lock(&pool_lock);
    if (pooled > 0) h = pool[--pooled];
    pthread_mutex_unlock(&pool_lock);
    if (h)
        curl_easy_reset(h); /* keeps the connection cache */
    else
        h = curl_easy_init();
    return h;
}

static void release(CURL *h) {
    pthread_mutex_lock(&pool_lock);
    if (pooled < POOL_MAX) {
        pool[pooled++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (h) curl_easy_cleanup(h);
}

static size_t on_body(char *data, size_t size, size_t n, void *userp) {
    buf *b = userp;
    return bufAppend(b, data, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp) {
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
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
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
