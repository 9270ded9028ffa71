/* Unit tests: the stand-in's URL grammar (path): hub names, routes, audiences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "path.h"

#include <stdlib.h>
#include <string.h>

static void test_hub_name(void **state) {
    (void)state;
    char out[PATH_HUB_MAX + 1];
    assert_int_equal(pathHubName("Enviromon", 9, out), 0);
    assert_string_equal(out, "enviromon");
    assert_int_equal(pathHubName("1hub", 4, out), -1); /* must start with a letter */
    assert_int_equal(pathHubName("a/b", 3, out), -1);
    assert_int_equal(pathHubName("", 0, out), -1);
    char longName[PATH_HUB_MAX + 2];
    memset(longName, 'a', sizeof(longName));
    assert_int_equal(pathHubName(longName, PATH_HUB_MAX, out), 0);
    assert_int_equal(pathHubName(longName, PATH_HUB_MAX + 1, out), -1);
}

static void test_routes(void **state) {
    (void)state;
    struct {
        const char *path;
        enum pathKind kind;
        const char *hub, *who;
        int sendForm;
    } cases[] = {
        {"/api/v1/health", PATH_HEALTH, "", NULL, 0},
        {"/api/v1/hubs/Enviromon", PATH_HUB, "enviromon", NULL, 0},
        {"/api/v1/hubs/h/connections/c%2F1", PATH_CONNECTION, "h", "c/1", 0},
        {"/api/v1/hubs/h/users/u%20x", PATH_USER, "h", "u x", 0},
        {"/api/hubs/h/:send", PATH_HUB, "h", NULL, 1},
        {"/client/negotiate", PATH_NEGOTIATE, "", NULL, 0},
        {"/client/", PATH_CLIENT, "", NULL, 0},
        {"/api/v1/hubs/1bad", PATH_NONE, "", NULL, 0},
        {"/api/v1/hubs/h/elsewhere/x", PATH_NONE, "", NULL, 0},
        {"/nothing", PATH_NONE, "", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pathRoute r;
        assert_int_equal(pathParse(cases[i].path, &r), 0);
        if (r.kind != cases[i].kind)
            fail_msg("%s: kind %d, want %d", cases[i].path, r.kind, cases[i].kind);
        if (cases[i].kind != PATH_NONE && *cases[i].hub) assert_string_equal(r.hub, cases[i].hub);
        if (cases[i].who) assert_string_equal(r.who, cases[i].who);
        if (cases[i].kind != PATH_NONE) assert_int_equal(r.sendForm, cases[i].sendForm);
        pathRouteFree(&r);
    }
}

static void test_audiences(void **state) {
    (void)state;
    struct pathRoute r;
    const char *base = "http://127.0.0.1:8888";
    assert_int_equal(pathParse("/api/v1/hubs/enviromon/connections/abc", &r), 0);
    assert_int_equal(
        pathRestAudience(base, "http://127.0.0.1:8888/api/v1/hubs/Enviromon/connections/abc", &r),
        1);
    assert_int_equal(
        pathRestAudience(base, "HTTP://127.0.0.1:8888/api/v1/hubs/enviromon/connections/a%62c", &r),
        1);
    assert_int_equal(
        pathRestAudience(base, "http://127.0.0.1:8888/api/v1/hubs/enviromon/connections/abd", &r),
        0);
    assert_int_equal(pathRestAudience(base, "http://127.0.0.1:8889/api/v1/hubs/enviromon", &r), 0);
    pathRouteFree(&r);
    assert_int_equal(
        pathClientAudience(base, "http://127.0.0.1:8888/client/?hub=enviromon", "enviromon"), 1);
    assert_int_equal(
        pathClientAudience(base, "http://127.0.0.1:8888/client?hub=enviromon&x=1", "enviromon"), 1);
    assert_int_equal(
        pathClientAudience(base, "http://127.0.0.1:8888/client/?hub=other", "enviromon"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hub_name),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_audiences),
    };
    return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
