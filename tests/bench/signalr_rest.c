/* signalr_rest: measures what a batch's live pushes cost the handler, against a running SignalR
 * endpoint: one REST call per device made by livepushDevices (concurrent, bounded), the same
 * calls one after another, and one call carrying every device as arguments of a single message.
 * Built and run by tests/bench/signalr-bench.mjs.
 *   signalr_rest "<connection string>" <devices per batch> <rounds> */
#include "httpc.h"
#include "livepush.h"
#include "settings.h"
#include "signalr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, long n) {
    qsort(t, (size_t)n, sizeof(double), cmp);
    printf("%-44s median %8.0f us   p99 %8.0f us\n", what, t[n / 2], t[(n * 99) / 100]);
}

int main(int argc, char **argv) {
    settings s;
    char err[SETTINGS_ERR_LEN];
    if (argc != 4) {
        fprintf(stderr, "usage: signalr_rest CONNECTION_STRING DEVICES ROUNDS\n");
        return 2;
    }
    long ndev, rounds;
    if (settingsParseInt(argv[2], 1, 10000, &ndev) ||
        settingsParseInt(argv[3], 1, 1000000, &rounds))
        return 2;
    memset(&s, 0, sizeof(s));
    snprintf(s.signalrConnectionString, sizeof(s.signalrConnectionString), "%s", argv[1]);
    snprintf(s.hubName, sizeof(s.hubName), "Enviromon");
    s.tokenLifetimeSeconds = 3600;
    if (httpcGlobalInit() != 0 || signalrInit(&s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const signalrService *svc = signalrDefault();
    json_t *devs = json_array();
    for (long i = 0; i < ndev; i++) {
        char id[32];
        snprintf(id, sizeof(id), "bench-%ld", i);
        json_array_append_new(
            devs, json_pack("{s:s,s:f,s:f,s:f,s:n,s:s,s:i,s:i,s:s}", "deviceId", id, "temperature",
                            21.5, "humidity", 40.25, "pressure", 1012.5, "light", "geo", "Sydney",
                            "count", 12345, "rejected", 0, "lastSeen", "2026-11-27T08:00:00.123Z"));
    }
    char *all = json_dumps(devs, JSON_COMPACT);
    double *t = calloc((size_t)rounds, sizeof(double));
    livepushStats ls;

    /* warm the pooled connections */
    for (int r = 0; r < 3; r++)
        livepushDevices(devs);

    for (long r = 0; r < rounds; r++) {
        double t0 = now_us();
        livepushDevices(devs);
        t[r] = now_us() - t0;
    }
    char what[80];
    snprintf(what, sizeof(what), "%ld devices, livepushDevices (concurrent)", ndev);
    report(what, t, rounds);

    for (long r = 0; r < rounds; r++) {
        double t0 = now_us();
        for (long i = 0; i < ndev; i++) {
            signalrResult res;
            char *one = json_dumps(json_array_get(devs, (size_t)i), JSON_COMPACT);
            char args[1024];
            snprintf(args, sizeof(args), "[%s]", one);
            free(one);
            if (signalrSend(svc, SIGNALR_TO_ALL, NULL, "newMessage", args, strlen(args), 2000,
                            &res) != SIGNALR_OK)
                fprintf(stderr, "send: %s\n", res.message);
        }
        t[r] = now_us() - t0;
    }
    snprintf(what, sizeof(what), "%ld devices, one call each, in sequence", ndev);
    report(what, t, rounds);

    for (long r = 0; r < rounds; r++) {
        double t0 = now_us();
        signalrResult res;
        if (signalrSend(svc, SIGNALR_TO_ALL, NULL, "newMessage", all, strlen(all), 2000, &res) !=
            SIGNALR_OK)
            fprintf(stderr, "send: %s\n", res.message);
        t[r] = now_us() - t0;
    }
    snprintf(what, sizeof(what), "%ld devices as arguments of one call", ndev);
    report(what, t, rounds);

    livepushGetStats(&ls);
    printf("livepush: %lu sent, %lu failed, %lu skipped\n", ls.sent, ls.failed, ls.skipped);
    free(t);
    free(all);
    json_decref(devs);
    httpcGlobalCleanup();
    return ls.failed ? 1 : 0;
}
