/* Unit tests: the router (dispatch): which requests are quick, where each goes, and that the
 * functions see the context they were given (no I/O: only answers that need no storage). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dispatch.h"
#include "functions.h"
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static settings cfg;
static fnContext ctx = {.s = &cfg};

static void answer_free(serverResponse *res) {
    free(res->body);
    for (int i = 0; i < res->nheaders; i++) {
        free(res->headers[i][0]);
        free(res->headers[i][1]);
    }
    memset(res, 0, sizeof(*res));
}

/* Routes one bodiless request; the answer in *res (caller frees with answer_free). */
static void route(const char *method, const char *path, serverResponse *res) {
    serverRequest req = {.method = method, .path = path, .body = ""};
    memset(res, 0, sizeof(*res));
    dispatchRequest(&req, res);
}

static void test_quick(void **state) {
    (void)state;
    /* the readiness probe and static files: quick */
    assert_int_equal(dispatchIsQuick("GET", "/"), 1);
    assert_int_equal(dispatchIsQuick("HEAD", "/index.html"), 1);
    assert_int_equal(dispatchIsQuick("GET", "/app/model.js"), 1);
    /* functions, the /api/ space and anything but GET/HEAD: a worker */
    assert_int_equal(dispatchIsQuick("GET", "/api/negotiate"), 0);
    assert_int_equal(dispatchIsQuick("GET", "/API/anything"), 0);
    assert_int_equal(dispatchIsQuick("GET", "/EnvironmentEventTrigger"), 0);
    assert_int_equal(dispatchIsQuick("GET", "/environmenteventtrigger"), 0);
    assert_int_equal(dispatchIsQuick("POST", "/"), 0);
    assert_int_equal(dispatchIsQuick("PUT", "/index.html"), 0);
}

static void test_routes(void **state) {
    (void)state;
    serverResponse res;
    cfg.dashboardDir[0] = '\0';
    dispatchInit(&ctx);
    route("GET", "/", &res); /* readiness */
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "ready"));
    answer_free(&res);
    route("POST", "/nosuch", &res);
    assert_int_equal(res.status, 404);
    assert_non_null(strstr(res.body, "no such function"));
    answer_free(&res);
    /* the trigger, matched without regard to case, answers a GET itself */
    route("GET", "/environmentEventTrigger", &res);
    assert_int_equal(res.status, 405);
    answer_free(&res);
    /* without a dashboard folder a file path is not found */
    route("GET", "/index.html", &res);
    assert_int_equal(res.status, 404);
    answer_free(&res);
}

static void test_context_reaches_functions(void **state) {
    (void)state;
    char dir[] = "/tmp/enviromon-dispatch-XXXXXX", file[sizeof(dir) + 16];
    serverResponse res;
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/index.html", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("<p>dispatch</p>", f);
    fclose(f);
    /* the static files come from the context's settings, not from a global */
    snprintf(cfg.dashboardDir, sizeof(cfg.dashboardDir), "%s", dir);
    dispatchInit(&ctx);
    route("GET", "/", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.len, strlen("<p>dispatch</p>"));
    assert_memory_equal(res.body, "<p>dispatch</p>", res.len);
    answer_free(&res);
    unlink(file);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quick),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_context_reaches_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
