/* Unit tests: settings (storage connection strings, numeric settings, start-up errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "settings.h"

#include <stdlib.h>
#include <string.h>

#define KEY "c2VjcmV0LWtleS1ieXRlcy0xMjM0NTY3ODkw" /* base64 of "secret-key-bytes-1234567890" */

static void test_storage_good(void **state) {
    (void)state;
    static const struct {
        const char *cs, *endpoint, *account;
        int sas;
    } cases[] = {
        {"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=" KEY
         ";EndpointSuffix=core.windows.net",
         "https://acct1.table.core.windows.net", "acct1", 0},
        {"AccountName=acct1;AccountKey=" KEY, "https://acct1.table.core.windows.net", "acct1", 0},
        {"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" KEY
         ";TableEndpoint=http://127.0.0.1:10002/devstoreaccount1/;",
         "http://127.0.0.1:10002/devstoreaccount1", "devstoreaccount1", 0},
        {"UseDevelopmentStorage=true", "http://127.0.0.1:10002/devstoreaccount1",
         "devstoreaccount1", 0},
        {"UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite",
         "http://azurite:10002/devstoreaccount1", "devstoreaccount1", 0},
        {"TableEndpoint=https://acct1.table.core.windows.net;SharedAccessSignature=sv=2019-02-02&"
         "sig=abc%3D",
         "https://acct1.table.core.windows.net", "", 1},
        {" AccountName = acct2 ; accountkey=" KEY
         "; TableEndpoint=https://acct2.table.cosmos.azure.com:443/ ",
         "https://acct2.table.cosmos.azure.com:443", "acct2", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        storageAccount a;
        char err[256] = "";
        if (settingsParseStorage("StorageConnectionString", cases[i].cs, &a, err, sizeof(err)))
            fail_msg("case %zu: %s", i, err);
        assert_string_equal(a.endpoint, cases[i].endpoint);
        assert_string_equal(a.account, cases[i].account);
        assert_int_equal(a.sas[0] != 0, cases[i].sas);
        assert_int_equal(a.keylen == 0, cases[i].sas);
    }
}

static void test_storage_bad(void **state) {
    (void)state;
    static const struct {
        const char *cs, *says;
    } cases[] = {
        {"", "is not set"},
        {"AccountName=acct1", "needs AccountKey or SharedAccessSignature"},
        {"AccountName=acct1;AccountKey=not*base64!", "AccountKey is not valid base64"},
        {"AccountKey=" KEY, "AccountKey needs AccountName"},
        {"AccountName=acct1;AccountKey=" KEY ";garbage", "has no '='"},
        {"AccountName=acct1;AccountKey=" KEY ";Colour=blue", "part 3 has an unknown name"},
        {"AccountName=acct1;c2VjcmV0LWtleQ==", "part 2 has an unknown name"},
        {"AccountName=acct1;AccountKey=" KEY ";TableEndpoint=ftp://x", "not an http(s) URL"},
        {"AccountName=acct1;AccountKey=" KEY ";DefaultEndpointsProtocol=gopher",
         "must be http or https"},
        {"AccountName=ac-ct;AccountKey=" KEY, "only letters and digits"},
        {"UseDevelopmentStorage=yes", "must be 'true'"},
        {"AccountName=a;AccountKey=" KEY ";SharedAccessSignature=sv=1", "not both"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        storageAccount a;
        char err[256] = "";
        assert_int_equal(
            settingsParseStorage("StorageConnectionString", cases[i].cs, &a, err, sizeof(err)), -1);
        if (!strstr(err, cases[i].says))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].says);
        if (!strstr(err, "StorageConnectionString")) fail_msg("case %zu: setting not named", i);
        if (strstr(err, KEY) || strstr(err, "not*base64") || strstr(err, "c2VjcmV0LWtleQ"))
            fail_msg("case %zu: key in message", i);
    }
}

static void test_load(void **state) {
    (void)state;
    settings s;
    char err[256];
    setenv("StorageConnectionString", "UseDevelopmentStorage=true", 1);
    unsetenv("FUNCTIONS_CUSTOMHANDLER_PORT");
    unsetenv("PartitionKey");
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), 0);
    assert_int_equal(s.port, 7071);
    assert_string_equal(s.partitionKey, "Sydney");
    assert_string_equal(s.deviceTable, "DeviceState");
    assert_string_equal(s.quarantineTable, "QuarantinedBatches");
    /* the largest invocation the host sends with this host.json: 100 x 256 KiB x 7 < 192 MiB */
    assert_int_equal(s.maxBodyBytes, 192u << 20);
    assert_true(s.maxBodyBytes >= 100u * 256 * 1024 * 7);
    assert_int_equal(s.backoffBaseMs, 40);
    assert_int_equal(s.backoffCapMs, 1000);
    assert_int_equal(s.backoffAttempts, 10);
    assert_string_equal(s.hubName, "Enviromon");

    setenv("BackoffAttempts", "many", 1);
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "BackoffAttempts"));
    unsetenv("BackoffAttempts");

    setenv("DeviceStateTable", "bad-name", 1);
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "DeviceStateTable"));
    unsetenv("DeviceStateTable");

    unsetenv("StorageConnectionString");
    setenv("AzureWebJobsStorage", "AccountName=x;AccountKey=" KEY, 1);
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), 0);
    assert_string_equal(s.storageSetting, "AzureWebJobsStorage");
    unsetenv("AzureWebJobsStorage");
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), -1);
}

static void test_ca_bundle(void **state) {
    (void)state;
    settings s;
    char err[256];
    setenv("StorageConnectionString", "UseDevelopmentStorage=true", 1);
    unsetenv("EnviromonCaBundle");
    unsetenv("SSL_CERT_FILE");
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), 0);
    assert_string_equal(s.caBundle, "");
    assert_string_equal(s.caBundleSetting, "");

    setenv("SSL_CERT_FILE", "/etc/ssl/other.pem", 1);
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), 0);
    assert_string_equal(s.caBundle, "/etc/ssl/other.pem");
    assert_string_equal(s.caBundleSetting, "SSL_CERT_FILE");
    assert_int_equal(s.caBundleRequired, 0);

    /* The project's own setting wins over OpenSSL's variable. */
    setenv("EnviromonCaBundle", "ca/test.pem", 1);
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), 0);
    assert_string_equal(s.caBundle, "ca/test.pem");
    assert_string_equal(s.caBundleSetting, "EnviromonCaBundle");
    assert_int_equal(s.caBundleRequired, 1);

    char long_path[1100];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    setenv("EnviromonCaBundle", long_path, 1);
    assert_int_equal(settingsLoad(&s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "EnviromonCaBundle"));
    unsetenv("EnviromonCaBundle");
    unsetenv("SSL_CERT_FILE");
    unsetenv("StorageConnectionString");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage_good),
        cmocka_unit_test(test_storage_bad),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_ca_bundle),
    };
    return cmocka_run_group_tests_name("settings", tests, NULL, NULL);
}
