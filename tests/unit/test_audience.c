/* Unit tests: audience (client and REST token audiences, hub lowercased, caps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audience.h"

#include <string.h>

static void test_forms(void **state) {
    (void)state;
    char out[128];
    assert_int_equal(audienceClient("https://a.service.signalr.net", "EnviroMon", out, sizeof(out)),
                     0);
    assert_string_equal(out, "https://a.service.signalr.net/client/?hub=enviromon");
    assert_int_equal(audienceRest("http://127.0.0.1:8888", "Hub_1", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8888/api/v1/hubs/hub_1");
}

static void test_caps(void **state) {
    (void)state;
    const char *want = "http://h/client/?hub=ab";
    char out[64];
    for (size_t n = 0; n <= strlen(want); n++) {
        memset(out, 'x', sizeof(out));
        assert_int_equal(audienceClient("http://h", "AB", out, n), -1);
        if (n) assert_int_equal(out[0], '\0'); /* never a cut-short audience */
    }
    assert_int_equal(audienceClient("http://h", "AB", out, strlen(want) + 1), 0);
    assert_string_equal(out, want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
