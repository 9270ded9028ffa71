/* Unit tests: the shared HTTP server (common/httpd) on a free loopback port, driven by libcurl and
 * by raw sockets: both passes, the server's own errors, spooling, streams, long calls in each
 * mode, and the drain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "httpd.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY 1024
#define BIG_STREAM (3 * HTTPD_STREAM_BUFFER + 17)

/* What a long call waits for: a second request opens the gate. */
static pthread_mutex_t gateLock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gateCond = PTHREAD_COND_INITIALIZER;
static int gateOpen, fullCalls;

static void early(const httpdRequest *req, httpdResponse *resp, void *ctx) {
    (void)ctx;
    assert_null(httpdBody(req, NULL));
    if (strcmp(httpdPath(req), "/deny") == 0) {
        httpdSetText(resp, 401, "text/plain", "no\n");
        httpdAddHeader(resp, "WWW-Authenticate", "Bearer");
    }
}

static void full(const httpdRequest *req, httpdResponse *resp, void *ctx) {
    const char *path = httpdPath(req);
    size_t len = 0;
    const char *body = httpdBody(req, &len);
    char text[256];
    (void)ctx;
    pthread_mutex_lock(&gateLock);
    fullCalls++;
    pthread_mutex_unlock(&gateLock);
    assert_non_null(body);
    if (strcmp(path, "/echo") == 0) {
        char *q = httpdQuery(req, "q");
        snprintf(text, sizeof(text), "%s %zu %s %s", httpdMethod(req), len, q ? q : "-",
                 httpdHeader(req, "X-Test") ? httpdHeader(req, "x-test") : "-");
        free(q);
        httpdSetText(resp, 200, "text/plain", text);
        httpdAddHeader(resp, "X-Answer", "yes");
    } else if (strcmp(path, "/spool") == 0) {
        FILE *f = httpdSpool(req);
        size_t n = 0;
        int c;
        while (f && (c = fgetc(f)) != EOF)
            n += c == 'z';
        snprintf(text, sizeof(text), "%s %zu %zu", f ? "spooled" : "memory", len, n);
        httpdSetText(resp, 200, "text/plain", text);
    } else if (strcmp(path, "/stream") == 0) {
        httpdResponse head = {0};
        httpdSetBody(&head, 200, "application/octet-stream", NULL, 0);
        httpdStream *s = httpdStreamOpen(req, &head);
        if (!s) {
            httpdSetText(resp, 200, "text/plain", "no stream");
            return;
        }
        char chunk[4096];
        memset(chunk, 's', sizeof(chunk));
        for (size_t sent = 0; sent < BIG_STREAM;) {
            size_t k = BIG_STREAM - sent < sizeof(chunk) ? BIG_STREAM - sent : sizeof(chunk);
            if (httpdStreamWrite(s, chunk, k) != 0) break;
            sent += k;
        }
        httpdStreamClose(s, 1);
    } else if (strcmp(path, "/wait") == 0) {
        pthread_mutex_lock(&gateLock);
        while (!gateOpen)
            pthread_cond_wait(&gateCond, &gateLock);
        pthread_mutex_unlock(&gateLock);
        httpdSetText(resp, 200, "text/plain", "waited");
    } else if (strcmp(path, "/open") == 0) {
        pthread_mutex_lock(&gateLock);
        gateOpen = 1;
        pthread_cond_broadcast(&gateCond);
        pthread_mutex_unlock(&gateLock);
        httpdSetText(resp, 200, "text/plain", "opened");
    } else if (strcmp(path, "/silent") != 0) {
        httpdSetText(resp, 404, "text/plain", "none");
    }
}

static httpd *start(int threadPerConnection) {
    char err[256] = "";
    httpdOptions o = {.port = 0,
                      .maxBody = MAX_BODY,
                      .deadlineSeconds = threadPerConnection ? 0 : 30,
                      .idleSeconds = 30,
                      .threadPerConnection = threadPerConnection,
                      .rawUrls = 1,
                      .early = early,
                      .full = full,
                      .spoolPath = "/spool",
                      .spoolCeiling = 64 * MAX_BODY};
    httpd *d = httpdStart(&o, err, sizeof(err));
    if (!d) fail_msg("httpdStart: %s", err);
    assert_true(httpdPort(d) > 0);
    pthread_mutex_lock(&gateLock);
    gateOpen = 0;
    fullCalls = 0;
    pthread_mutex_unlock(&gateLock);
    return d;
}

typedef struct reply {
    long status;
    char body[256];
    size_t len; /* every byte received, even past body */
    char header[128];
} reply;

static size_t onBody(char *data, size_t size, size_t n, void *ctx) {
    reply *r = ctx;
    size_t k = size * n;
    if (r->len < sizeof(r->body) - 1) {
        size_t room = sizeof(r->body) - 1 - r->len;
        memcpy(r->body + r->len, data, k < room ? k : room);
    }
    r->len += k;
    return k;
}

static size_t onHeader(char *data, size_t size, size_t n, void *ctx) {
    reply *r = ctx;
    size_t k = size * n;
    if (k > 9 && strncasecmp(data, "X-Answer:", 9) == 0)
        snprintf(r->header, sizeof(r->header), "%.*s", (int)(k - 9), data + 9);
    if (k > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0)
        snprintf(r->header, sizeof(r->header), "%.*s", (int)(k - 17), data + 17);
    return k;
}

/* One request; body NULL for a GET. The 60 s limit only stops a hung test. */
static reply call(httpd *d, const char *method, const char *path, const char *body, size_t len) {
    reply r;
    char url[256];
    struct curl_slist *h = curl_slist_append(NULL, "X-Test: here");
    CURL *c = curl_easy_init();
    memset(&r, 0, sizeof(r));
    assert_non_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", httpdPort(d), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, onHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return r;
}

/* Sends raw bytes on a new connection and reads the answer's status line. */
static int rawStatus(httpd *d, const char *request) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)httpdPort(d))};
    char line[64] = "";
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
    struct timeval tv = {.tv_sec = 60};
    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
    ssize_t n = recv(fd, line, sizeof(line) - 1, 0);
    if (n > 12 && sscanf(line, "HTTP/1.1 %d", &status) != 1) status = -1;
    close(fd);
    return status;
}

static void bothModes(void (*body)(httpd *d, int tpc)) {
    for (int tpc = 0; tpc < 2; tpc++) {
        httpd *d = start(tpc);
        body(d, tpc);
        assert_int_equal(httpdStop(d, 5), 0);
    }
}

/* The full call sees method, body, raw query (decoded by httpdQuery), headers; its headers go
 * out. */
static void echo(httpd *d, int tpc) {
    (void)tpc;
    reply r = call(d, "POST", "/echo?q=a%20b+c", "hello", 5);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST 5 a b c here");
    assert_string_equal(r.header, " yes\r\n");
    r = call(d, "GET", "/silent", NULL, 0);
    assert_int_equal(r.status, 500); /* left unanswered */
}
static void test_echo(void **state) {
    (void)state;
    bothModes(echo);
}

/* An early answer stands; the body is dropped and the full call never made. */
static void earlyAnswer(httpd *d, int tpc) {
    char big[4 * MAX_BODY];
    (void)tpc;
    memset(big, 'x', sizeof(big));
    reply r = call(d, "POST", "/deny", big, sizeof(big));
    assert_int_equal(r.status, 401);
    assert_string_equal(r.header, " Bearer\r\n");
    assert_int_equal(fullCalls, 0);
}
static void test_early(void **state) {
    (void)state;
    bothModes(earlyAnswer);
}

/* Bodies over the cap: 413 whether announced or chunked; the spooling path keeps them in a
 * file up to its ceiling. */
static void limits(httpd *d, int tpc) {
    char big[8 * MAX_BODY];
    (void)tpc;
    memset(big, 'z', sizeof(big));
    assert_int_equal(call(d, "POST", "/echo", big, MAX_BODY + 1).status, 413);
    reply r = call(d, "POST", "/echo", big, MAX_BODY);
    assert_int_equal(r.status, 200);
    r = call(d, "POST", "/spool", big, sizeof(big));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "spooled 8192 8192");
    r = call(d, "POST", "/spool", big, 10);
    assert_string_equal(r.body, "memory 10 0");
    char chunked[128 + 2 * MAX_BODY];
    int n = snprintf(chunked, sizeof(chunked),
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                     2 * MAX_BODY);
    memset(chunked + n, 'c', 2 * MAX_BODY);
    snprintf(chunked + n + 2 * MAX_BODY, sizeof(chunked) - (size_t)n - 2 * MAX_BODY,
             "\r\n0\r\n\r\n");
    assert_int_equal(rawStatus(d, chunked), 413);
    assert_int_equal(
        rawStatus(d, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n"), 413);
    assert_int_equal(
        rawStatus(d, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
    assert_int_equal(rawStatus(d, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                  "Content-Length: 3\r\n\r\n"),
                     400);
}
static void test_limits(void **state) {
    (void)state;
    bothModes(limits);
}

/* A streamed answer larger than the stream's buffer arrives whole (lanes); with a thread per
 * connection no stream opens and the call answers as usual. */
static void stream(httpd *d, int tpc) {
    reply r = call(d, "GET", "/stream", NULL, 0);
    assert_int_equal(r.status, 200);
    if (tpc) {
        assert_string_equal(r.body, "no stream");
    } else {
        assert_int_equal(r.len, BIG_STREAM);
        assert_int_equal(r.body[0], 's');
    }
}
static void test_stream(void **state) {
    (void)state;
    bothModes(stream);
}

static void *waitCall(void *arg) {
    reply *r = malloc(sizeof(*r));
    *r = call(arg, "GET", "/wait", NULL, 0);
    return r;
}

/* A call that waits (a long poll) does not stop another connection's call: the second one is
 * what releases the first, so the test can only end if both are served at once. */
static void longCall(httpd *d, int tpc) {
    pthread_t t;
    reply *w;
    (void)tpc;
    assert_int_equal(pthread_create(&t, NULL, waitCall, d), 0);
    for (;;) { /* until the waiting call is in its full call */
        pthread_mutex_lock(&gateLock);
        int n = fullCalls;
        pthread_mutex_unlock(&gateLock);
        if (n) break;
        usleep(1000);
    }
    assert_string_equal(call(d, "GET", "/open", NULL, 0).body, "opened");
    assert_int_equal(pthread_join(t, (void **)&w), 0);
    assert_int_equal(w->status, 200);
    assert_string_equal(w->body, "waited");
    free(w);
}
static void test_long_call(void **state) {
    (void)state;
    bothModes(longCall);
}

/* Opens the gate a little later, most likely once the stop has begun (either way the call must
 * get its answer). */
static void *openLater(void *arg) {
    (void)arg;
    usleep(200 * 1000);
    pthread_mutex_lock(&gateLock);
    gateOpen = 1;
    pthread_cond_broadcast(&gateCond);
    pthread_mutex_unlock(&gateLock);
    return NULL;
}

/* The drain: a call in flight when the stop begins still gets its answer. */
static void test_drain(void **state) {
    (void)state;
    for (int tpc = 0; tpc < 2; tpc++) {
        httpd *d = start(tpc);
        pthread_t t;
        reply *w;
        assert_int_equal(pthread_create(&t, NULL, waitCall, d), 0);
        for (;;) {
            pthread_mutex_lock(&gateLock);
            int n = fullCalls;
            pthread_mutex_unlock(&gateLock);
            if (n) break;
            usleep(1000);
        }
        pthread_t opener;
        assert_int_equal(pthread_create(&opener, NULL, openLater, NULL), 0);
        assert_int_equal(httpdStop(d, 30), 0);
        pthread_join(opener, NULL);
        assert_int_equal(pthread_join(t, (void **)&w), 0);
        assert_int_equal(w->status, 200);
        free(w);
    }
}

/* Options that cannot work are refused with a reason. */
static void test_bad_options(void **state) {
    char err[256] = "";
    httpdOptions o = {.host = "localhost", .full = full};
    (void)state;
    assert_null(httpdStart(&o, err, sizeof(err)));
    assert_string_equal(err, "not a numeric address: localhost");
    o.host = "::1";
    o.full = NULL;
    assert_null(httpdStart(&o, err, sizeof(err)));
    assert_string_equal(err, "no handler");
    assert_int_equal(httpdStop(NULL, 1), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),        cmocka_unit_test(test_early),
        cmocka_unit_test(test_limits),      cmocka_unit_test(test_stream),
        cmocka_unit_test(test_long_call),   cmocka_unit_test(test_drain),
        cmocka_unit_test(test_bad_options),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("httpd", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
