/* test_signalr: the SignalR module (connection string, tokens, URLs, send errors) and the live
 * push circuit breaker, without a SignalR Service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto.h"
#include "hooks.h"
#include "httpc.h"
#include "livepush.h"
#include "settings.h"
#include "signalr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* An access key with '=' inside (pairs split at the first '=') and a non-ASCII character (the
 * key is used as its UTF-8 bytes, not base64-decoded). */
#define KEY "Zm9v=bar/+\xc3\x84="
#define SECRET "S3cr3tKey"

static signalrService parse_ok(const char *cs) {
    signalrService s;
    char err[SETTINGS_ERR_LEN] = "";
    int rc = signalrParse(cs, "Enviromon", &s, err, sizeof(err));
    if (rc != 0) fail_msg("parse '%s' failed: %s", cs, err);
    return s;
}

static void test_parse_basic(void **state) {
    (void)state;
    signalrService s =
        parse_ok("Endpoint=https://X.Service.SignalR.net/;AccessKey=" KEY ";Version=1.0;");
    assert_string_equal(s.endpoint, "https://x.service.signalr.net");
    assert_string_equal(s.hub, "enviromon");
    assert_string_equal(s.clientUrl, "https://x.service.signalr.net/client/?hub=enviromon");
    assert_string_equal(s.clientAud, "https://x.service.signalr.net/client/?hub=enviromon");
    assert_string_equal(s.restBase, "https://x.service.signalr.net/api/v1/hubs/enviromon");
    assert_int_equal(s.keylen, strlen(KEY));
    assert_memory_equal(s.key, KEY, strlen(KEY));
}

static void test_parse_port(void **state) {
    (void)state;
    signalrService s = parse_ok("Endpoint=http://localhost;Port=8888;AccessKey=k;Version=1.0;");
    assert_string_equal(s.endpoint, "http://localhost:8888");
    assert_string_equal(s.clientUrl, "http://localhost:8888/client/?hub=enviromon");
    assert_string_equal(s.restBase, "http://localhost:8888/api/v1/hubs/enviromon");
    /* The same port twice is fine; the port goes before a path. */
    s = parse_ok("Endpoint=http://127.0.0.1:9000/base/;Port=9000;AccessKey=k");
    assert_string_equal(s.endpoint, "http://127.0.0.1:9000/base");
    assert_string_equal(s.clientAud, "http://127.0.0.1:9000/base/client/?hub=enviromon");
    s = parse_ok("Endpoint=http://[::1];Port=7;AccessKey=k");
    assert_string_equal(s.endpoint, "http://[::1]:7");
}

static void test_parse_client_endpoint(void **state) {
    (void)state;
    signalrService s = parse_ok("Endpoint=https://a.service.signalr.net;AccessKey=k;"
                                "ClientEndpoint=https://Proxy.example.com/sig/;Version=1.0");
    /* Browsers go to the client endpoint; the token's audience stays the service's own URL. */
    assert_string_equal(s.clientUrl, "https://proxy.example.com/sig/client/?hub=enviromon");
    assert_string_equal(s.clientAud, "https://a.service.signalr.net/client/?hub=enviromon");
    assert_string_equal(s.restBase, "https://a.service.signalr.net/api/v1/hubs/enviromon");
}

static void test_parse_server_endpoint(void **state) {
    (void)state;
    /* Azure/azure-signalr 31686ed7 (RestApiProvider.cs, ServiceEndpoint.cs): REST requests go to
     * ServerEndpoint, their tokens name the service's own Endpoint; browsers are not affected. */
    signalrService s = parse_ok("Endpoint=https://a.service.signalr.net;AccessKey=k;Version=1.0;"
                                "ServerEndpoint=https://A-Private.privatelink.example:8443/p/");
    assert_string_equal(s.endpoint, "https://a.service.signalr.net");
    assert_string_equal(s.serverEndpoint, "https://a-private.privatelink.example:8443/p");
    assert_string_equal(s.restBase,
                        "https://a-private.privatelink.example:8443/p/api/v1/hubs/enviromon");
    assert_string_equal(s.restAudBase, "https://a.service.signalr.net/api/v1/hubs/enviromon");
    assert_string_equal(s.clientUrl, "https://a.service.signalr.net/client/?hub=enviromon");
    assert_string_equal(s.clientAud, "https://a.service.signalr.net/client/?hub=enviromon");
    char url[SIGNALR_URL_MAX * 2], aud[SIGNALR_URL_MAX * 2];
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_CONNECTION, "c 1", url, sizeof(url)), 0);
    assert_int_equal(signalrRestAudience(&s, SIGNALR_TO_CONNECTION, "c 1", aud, sizeof(aud)), 0);
    assert_string_equal(
        url,
        "https://a-private.privatelink.example:8443/p/api/v1/hubs/enviromon/connections/c%201");
    assert_string_equal(aud,
                        "https://a.service.signalr.net/api/v1/hubs/enviromon/connections/c%201");
    /* Port= belongs to Endpoint only. All three endpoints together. */
    s = parse_ok(
        "Endpoint=http://localhost;Port=8888;AccessKey=k;ServerEndpoint=http://127.0.0.1:9;"
        "ClientEndpoint=https://public.example");
    assert_string_equal(s.endpoint, "http://localhost:8888");
    assert_string_equal(s.restBase, "http://127.0.0.1:9/api/v1/hubs/enviromon");
    assert_string_equal(s.restAudBase, "http://localhost:8888/api/v1/hubs/enviromon");
    assert_string_equal(s.clientUrl, "https://public.example/client/?hub=enviromon");
    /* Without it, both are the Endpoint. */
    s = parse_ok("Endpoint=https://b.service.signalr.net;AccessKey=k;ServerEndpoint=");
    assert_string_equal(s.restBase, s.restAudBase);
    assert_string_equal(s.serverEndpoint, s.endpoint);
    /* A bad one is refused at start, named, the key never shown. */
    static const char *const bad[] = {
        "Endpoint=http://x;AccessKey=" SECRET ";ServerEndpoint=nope",
        "Endpoint=http://x;AccessKey=" SECRET ";ServerEndpoint=http://u@host",
        "Endpoint=http://x;AccessKey=" SECRET ";ServerEndpoint=http://host?q=1",
        "Endpoint=http://x;AccessKey=" SECRET ";ServerEndpoint=http://host:0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[SETTINGS_ERR_LEN] = "";
        if (signalrParse(bad[i], "Enviromon", &s, err, sizeof(err)) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        if (!strstr(err, "ServerEndpoint"))
            fail_msg("'%s': '%s' names no ServerEndpoint", bad[i], err);
        if (strstr(err, SECRET)) fail_msg("'%s': message '%s' shows the key", bad[i], err);
    }
}

static void test_parse_loose_forms(void **state) {
    (void)state;
    /* Names in any case, spaces around names and values, no trailing ';', empty parts. */
    signalrService s = parse_ok(" endpoint = http://127.0.0.1 ;; ACCESSKEY = " KEY " ; port = 9 ");
    assert_string_equal(s.endpoint, "http://127.0.0.1:9");
    assert_memory_equal(s.key, KEY, strlen(KEY));
    assert_int_equal(s.keylen, strlen(KEY));
}

static void test_parse_bad(void **state) {
    (void)state;
    static const struct {
        const char *cs;
        const char *says;
    } cases[] = {
        {"", "is not set"},
        {"Endpoint=http://x;Version=1.0", "no AccessKey"},
        {"Endpoint=http://x;AccessKey=", "no AccessKey"},
        {"AccessKey=" SECRET, "no Endpoint"},
        {"Endpoint=ftp://x;AccessKey=" SECRET, "must start with http:// or https://"},
        {"Endpoint=http://;AccessKey=" SECRET, "has no host"},
        {"Endpoint=http://x?y=1;AccessKey=" SECRET, "no user name, query or fragment"},
        {"Endpoint=http://u@x;AccessKey=" SECRET, "no user name, query or fragment"},
        {"Endpoint=http://x y;AccessKey=" SECRET, "character a URL may not hold"},
        {"Endpoint=http://x:99999;AccessKey=" SECRET, "invalid port"},
        {"Endpoint=http://x;AccessKey=" SECRET ";Port=0", "Port must be a whole number"},
        {"Endpoint=http://x;AccessKey=" SECRET ";Port=70000", "Port must be a whole number"},
        {"Endpoint=http://x;AccessKey=" SECRET ";Port=8o", "Port must be a whole number"},
        {"Endpoint=http://x;AccessKey=" SECRET ";Port=", "Port must be a whole number"},
        {"Endpoint=http://x:80;Port=81;AccessKey=" SECRET, "names port 80 but Port is 81"},
        {"Endpoint=http://x;AccessKey=" SECRET ";Version=2.0", "Version must be 1.0"},
        {"Endpoint=http://x;ClientEndpoint=nope;AccessKey=" SECRET,
         "ClientEndpoint must start with http"},
        /* A key pasted without its name: the part is not quoted. */
        {"Endpoint=http://x;" SECRET "==;Version=1.0", "part 2 has an unknown name"},
        {"Endpoint=http://x;" SECRET, "has no '='"},
        {"Endpoint=http://x;AuthType=aad;ClientId=" SECRET, "AuthType"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        signalrService s;
        char err[SETTINGS_ERR_LEN] = "";
        int rc = signalrParse(cases[i].cs, "Enviromon", &s, err, sizeof(err));
        if (rc != -1) fail_msg("'%s' was accepted", cases[i].cs);
        if (!strstr(err, cases[i].says))
            fail_msg("'%s': message '%s' does not say '%s'", cases[i].cs, err, cases[i].says);
        if (!strstr(err, SIGNALR_SETTING))
            fail_msg("'%s': message '%s' does not name the setting", cases[i].cs, err);
        if (strstr(err, SECRET)) fail_msg("'%s': message '%s' shows the key", cases[i].cs, err);
    }
    /* A key too long for the buffer, and never shown. */
    char cs[1200], err[SETTINGS_ERR_LEN];
    size_t o = (size_t)snprintf(cs, sizeof(cs), "Endpoint=http://x;AccessKey=");
    while (o + 10 < sizeof(cs))
        o += (size_t)snprintf(cs + o, sizeof(cs) - o, "%s", SECRET);
    signalrService s;
    assert_int_equal(signalrParse(cs, "Enviromon", &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "longer than"));
    assert_null(strstr(err, SECRET));
    assert_int_equal(s.keylen, 0);
}

/* Expected tokens computed once, independently, with Node's crypto:
 *   node -e 'const c=require("crypto"),u=b=>Buffer.from(b).toString("base64url"),
 *     t=(k,p)=>{const i=u(JSON.stringify({alg:"HS256",typ:"JWT"}))+"."+u(JSON.stringify(p));
 *     return i+"."+c.createHmac("sha256",Buffer.from(k,"utf8")).update(i).digest("base64url")};
 *     const k="Zm9v=bar/+\u00c4=";
 *     console.log(t(k,{aud:"http://127.0.0.1:8888/client/?hub=enviromon",exp:1700003600,
 *       iat:1700000000,nbf:1700000000}));
 *     console.log(t(k,{aud:"https://x.service.signalr.net/api/v1/hubs/enviromon/users/al%20ice",
 *       exp:1700000300,iat:1700000000,nbf:1700000000,"asrs.s.uid":"alice \"\u00fc\" \\ /",
 *       nameid:"alice \"\u00fc\" \\ /"}))' */
static const char TOKEN1[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJhdWQiOiJodHRwOi8vMTI3LjAuMC4xOjg4ODgvY2xpZW50Lz9odWI9ZW52aXJvbW9uIiwiZXhwIjoxNzAwMDAzNjAwLC"
    "JpYXQiOjE3MDAwMDAwMDAsIm5iZiI6MTcwMDAwMDAwMH0.3c9FMv5BDTSmWlPIRaOldr0J7e2kucgyxE4U46u7ibU";
static const char TOKEN2[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJhdWQiOiJodHRwczovL3guc2VydmljZS5zaWduYWxyLm5ldC9hcGkvdjEvaHVicy9lbnZpcm9tb24vdXNlcnMvYWwlMj"
    "BpY2UiLCJleHAiOjE3MDAwMDAzMDAsImlhdCI6MTcwMDAwMDAwMCwibmJmIjoxNzAwMDAwMDAwLCJhc3JzLnMudWlkIjoi"
    "YWxpY2UgXCLDvFwiIFxcIC8iLCJuYW1laWQiOiJhbGljZSBcIsO8XCIgXFwgLyJ9."
    "KUi2LiaednaSIiqdDB2KyWocd9XZbzb3GD0HC7PMY5c";

static void test_token_vectors(void **state) {
    (void)state;
    signalrService s = parse_ok("Endpoint=http://127.0.0.1;Port=8888;AccessKey=" KEY);
    char *t = signalrToken(&s, s.clientAud, NULL, 1700000000, 3600);
    assert_non_null(t);
    assert_string_equal(t, TOKEN1);
    free(t);
    t = signalrToken(&s, "https://x.service.signalr.net/api/v1/hubs/enviromon/users/al%20ice",
                     "alice \"\xc3\xbc\" \\ /", 1700000000, 300);
    assert_non_null(t);
    assert_string_equal(t, TOKEN2);
    free(t);
    /* A user id that is not UTF-8 gives no token. */
    assert_null(signalrToken(&s, s.clientAud, "bad \xff", 1700000000, 300));
}

/* Decodes the claims of a token. Caller decrefs. */
static json_t *claims_of(const char *token) {
    const char *a = strchr(token, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    assert_non_null(b);
    size_t len;
    unsigned char *text = cryptoBase64UrlDecode(a + 1, (size_t)(b - a - 1), &len);
    assert_non_null(text);
    json_t *j = json_loadb((char *)text, len, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

static void test_negotiate(void **state) {
    (void)state;
    signalrService s = parse_ok("Endpoint=http://localhost;Port=8888;AccessKey=k;"
                                "ClientEndpoint=http://public.example:80/x");
    s.tokenLifetime = 900;
    json_t *n = signalrNegotiate(&s, "user-7", 1800000000);
    assert_non_null(n);
    assert_string_equal(json_string_value(json_object_get(n, "url")),
                        "http://public.example:80/x/client/?hub=enviromon");
    json_t *c = claims_of(json_string_value(json_object_get(n, "accessToken")));
    assert_string_equal(json_string_value(json_object_get(c, "aud")),
                        "http://localhost:8888/client/?hub=enviromon");
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1800000000);
    assert_int_equal(json_integer_value(json_object_get(c, "nbf")), 1800000000);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1800000900);
    assert_string_equal(json_string_value(json_object_get(c, "asrs.s.uid")), "user-7");
    assert_string_equal(json_string_value(json_object_get(c, "nameid")), "user-7");
    json_decref(c);
    json_decref(n);
    /* Anonymous: no user claims. */
    n = signalrNegotiate(&s, NULL, 1800000000);
    c = claims_of(json_string_value(json_object_get(n, "accessToken")));
    assert_null(json_object_get(c, "asrs.s.uid"));
    assert_null(json_object_get(c, "nameid"));
    json_decref(c);
    json_decref(n);
}

static void test_rest_urls(void **state) {
    (void)state;
    signalrService s = parse_ok("Endpoint=https://a.service.signalr.net;AccessKey=k");
    char url[SIGNALR_URL_MAX * 2];
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_ALL, NULL, url, sizeof(url)), 0);
    assert_string_equal(url, "https://a.service.signalr.net/api/v1/hubs/enviromon");
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_CONNECTION, "a/b c?#%~._-Z9", url, sizeof(url)),
                     0);
    assert_string_equal(url, "https://a.service.signalr.net/api/v1/hubs/enviromon/connections/"
                             "a%2Fb%20c%3F%23%25~._-Z9");
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_USER, "\xc3\xbc", url, sizeof(url)), 0);
    assert_string_equal(url, "https://a.service.signalr.net/api/v1/hubs/enviromon/users/%C3%BC");
    /* Ids: 1 to SIGNALR_ID_MAX bytes. */
    char id[SIGNALR_ID_MAX + 2];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_USER, id, url, sizeof(url)), -1);
    id[SIGNALR_ID_MAX] = '\0';
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_USER, id, url, sizeof(url)), 0);
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_CONNECTION, "", url, sizeof(url)), -1);
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_CONNECTION, NULL, url, sizeof(url)), -1);
    /* Too small an output. */
    assert_int_equal(signalrRestUrl(&s, SIGNALR_TO_ALL, NULL, url, 20), -1);
}

static void test_send_errors(void **state) {
    (void)state;
    /* Port 1 on loopback: nothing listens, the connection is refused at once. */
    signalrService s = parse_ok("Endpoint=http://127.0.0.1;Port=1;AccessKey=k");
    signalrResult r;
    size_t big = SIGNALR_BODY_MAX;
    char *args = malloc(big + 1);
    assert_non_null(args);
    memset(args, ' ', big);
    args[0] = '[';
    args[big - 1] = ']';
    args[big] = '\0';
    assert_int_equal(signalrSend(&s, SIGNALR_TO_ALL, NULL, "newMessage", args, big, 1000, &r),
                     SIGNALR_TOO_LARGE);
    assert_int_equal(r.status, 0);
    free(args);
    assert_int_equal(signalrSend(&s, SIGNALR_TO_CONNECTION, "", "newMessage", "[1]", 3, 1000, &r),
                     SIGNALR_BAD_ID);
    assert_int_equal(signalrSend(&s, SIGNALR_TO_ALL, NULL, "newMessage", "[1]", 3, 1000, &r),
                     SIGNALR_UNREACHABLE);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.message, "did not answer"));
}

/* One HTTP exchange on a loopback socket: what a ServerEndpoint (a private endpoint or a proxy in
 * front of the service) receives. */
struct oneshot {
    int fd;
    char request[8192];
};

static void *oneshot_serve(void *arg) {
    struct oneshot *o = arg;
    int c = accept(o->fd, NULL, NULL);
    if (c < 0) return NULL;
    size_t n = 0;
    for (;;) { /* headers, then the body by Content-Length */
        ssize_t r = read(c, o->request + n, sizeof(o->request) - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        o->request[n] = '\0';
        char *end = strstr(o->request, "\r\n\r\n");
        const char *cl = strcasestr(o->request, "Content-Length:");
        if (end && cl && n >= (size_t)(end + 4 - o->request) + strtoul(cl + 15, NULL, 10)) break;
        if (n + 1 >= sizeof(o->request)) break;
    }
    static const char answer[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
    if (write(c, answer, sizeof(answer) - 1) < 0) { /* the client sees the failure */
    }
    close(c);
    return NULL;
}

static void test_send_through_server_endpoint(void **state) {
    (void)state;
    struct oneshot o = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_true(o.fd >= 0);
    assert_int_equal(bind(o.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(o.fd, 1), 0);
    assert_int_equal(getsockname(o.fd, (struct sockaddr *)&a, &alen), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, oneshot_serve, &o), 0);

    /* The Endpoint does not resolve (.invalid): only the ServerEndpoint can answer. */
    char cs[256];
    snprintf(cs, sizeof(cs),
             "Endpoint=https://nowhere.invalid;AccessKey=k;ServerEndpoint=http://127.0.0.1:%d/gw;",
             ntohs(a.sin_port));
    signalrService s = parse_ok(cs);
    signalrResult r;
    assert_int_equal(
        signalrSend(&s, SIGNALR_TO_CONNECTION, "conn/1", "newMessage", "[1]", 3, 5000, &r),
        SIGNALR_OK);
    pthread_join(t, NULL);
    close(o.fd);
    assert_int_equal(r.status, 202);
    assert_non_null(
        strstr(o.request, "POST /gw/api/v1/hubs/enviromon/connections/conn%2F1 HTTP/1.1\r\n"));
    const char *bearer = strstr(o.request, "Authorization: Bearer ");
    assert_non_null(bearer);
    char token[2048];
    size_t tl = strcspn(bearer + 22, "\r\n");
    assert_true(tl < sizeof(token));
    memcpy(token, bearer + 22, tl);
    token[tl] = '\0';
    json_t *c = claims_of(token);
    assert_string_equal(json_string_value(json_object_get(c, "aud")),
                        "https://nowhere.invalid/api/v1/hubs/enviromon/connections/conn%2F1");
    json_decref(c);
}

static void test_livepush_pause(void **state) {
    (void)state;
    settings st;
    char err[SETTINGS_ERR_LEN];
    livepushStats ls;
    memset(&st, 0, sizeof(st));
    snprintf(st.hubName, sizeof(st.hubName), "Enviromon");
    st.tokenLifetimeSeconds = 60;
    /* Not configured: nothing happens. */
    assert_int_equal(signalrInit(&st, err, sizeof(err)), 0);
    assert_null(signalrDefault());
    livepushReset();
    json_t *devs =
        json_pack("[{s:s},{s:s},{s:s}]", "deviceId", "a", "deviceId", "b", "deviceId", "c");
    livepushDevices(devs);
    livepushGetStats(&ls);
    assert_int_equal(ls.sent + ls.failed + ls.skipped, 0);
    /* Unreachable: the first failure pauses the rest of the batch and the next batch. */
    snprintf(st.signalrConnectionString, sizeof(st.signalrConnectionString),
             "Endpoint=http://127.0.0.1;Port=1;AccessKey=k;Version=1.0;");
    assert_int_equal(signalrInit(&st, err, sizeof(err)), 0);
    assert_non_null(signalrDefault());
    livepushDevices(devs);
    livepushGetStats(&ls);
    assert_true(ls.failed >= 1);
    assert_int_equal(ls.sent, 0);
    assert_int_equal(ls.failed + ls.skipped, 3);
    livepushDevices(devs);
    livepushGetStats(&ls);
    assert_int_equal(ls.failed + ls.skipped, 6);
    assert_true(ls.skipped >= 3);
    json_decref(devs);
    /* A malformed string fails init. */
    snprintf(st.signalrConnectionString, sizeof(st.signalrConnectionString),
             "Endpoint=http://x;AccessKey=" SECRET ";Port=no");
    assert_int_equal(signalrInit(&st, err, sizeof(err)), -1);
    assert_null(signalrDefault());
    assert_null(strstr(err, SECRET));
    livepushReset();
}

static int setup(void **state) {
    (void)state;
    return httpcGlobalInit();
}

static int teardown(void **state) {
    (void)state;
    httpcGlobalCleanup();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_port),
        cmocka_unit_test(test_parse_client_endpoint),
        cmocka_unit_test(test_parse_server_endpoint),
        cmocka_unit_test(test_parse_loose_forms),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_token_vectors),
        cmocka_unit_test(test_negotiate),
        cmocka_unit_test(test_rest_urls),
        cmocka_unit_test(test_send_errors),
        cmocka_unit_test(test_send_through_server_endpoint),
        cmocka_unit_test(test_livepush_pause),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
