/* Unit tests: httpc's choice of CA certificates at start (httpcCaInit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hooks.h"
#include "httpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/enviromon-httpc-XXXXXX";

static void put(const char *name, const char *text, char *path, size_t pathlen) {
    snprintf(path, pathlen, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    if (!mkdtemp(dir)) return -1;
    return httpcGlobalInit();
}

static int teardown(void **state) {
    (void)state;
    httpcGlobalCleanup();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A bad bundle named by a setting stops the start with a message naming the setting. */
static void test_bad_bundles(void **state) {
    (void)state;
    char err[256], path[256];
    assert_int_equal(httpcCaInit("/nonexistent/ca.pem", "EnviromonCaBundle", 1, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "EnviromonCaBundle"));
    assert_non_null(strstr(err, "No such file"));

    put("empty.pem", "", path, sizeof(path));
    assert_int_equal(httpcCaInit(path, "EnviromonCaBundle", 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "EnviromonCaBundle"));
    assert_non_null(strstr(err, "no PEM certificate"));

    put("key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", path,
        sizeof(path));
    assert_int_equal(httpcCaInit(path, "EnviromonCaBundle", 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no PEM certificate"));

    assert_int_equal(httpcCaInit(dir, "EnviromonCaBundle", 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));

    /* SSL_CERT_FILE (which the image may set) naming nothing usable is passed over, as OpenSSL
     * does: the start goes on with the system's certificates. */
    err[0] = '\0';
    assert_int_equal(httpcCaInit("/nonexistent/ca.pem", "SSL_CERT_FILE", 0, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_string_equal(httpcCaFile(), "");

    /* A huge file is refused before it is read. */
    put("huge.pem", "", path, sizeof(path));
    assert_int_equal(truncate(path, (off_t)65 << 20), 0);
    assert_int_equal(httpcCaInit(path, "EnviromonCaBundle", 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than 64 MB"));
}

/* A good bundle is used, by its absolute path, whatever the working directory later is. */
static void test_good_bundle(void **state) {
    (void)state;
    char err[256], path[256], cwd[256];
    put("ca.pem", "# a comment\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        path, sizeof(path));
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(httpcCaInit("ca.pem", "EnviromonCaBundle", 1, err, sizeof(err)), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(httpcCaFile(), path);

    /* No setting: this machine has a system bundle (ca-certificates), so libcurl's default. */
    unsetenv("FUNCTIONS_APP_ROOT_PATH");
    assert_int_equal(httpcCaInit("", "", 0, err, sizeof(err)), 0);
    assert_string_equal(httpcCaFile(), "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_bundles),
        cmocka_unit_test(test_good_bundle),
    };
    return cmocka_run_group_tests_name("httpc", tests, setup, teardown);
}
