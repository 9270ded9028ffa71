/* Fuzz harness: history's format v2 readers on any bytes: a reading text and a minute text
 * parsed, then a device row whose slots, pending slots and groups and counters hold the bytes
 * folded with two readings (the fold must never trust what a row holds), and every pending text
 * kept once: the row's pending texts + the readings added = the row's after the fold + the chunks'
 * + the unreadable ones dropped. Q00 holds the bytes themselves when they start with a digit (the
 * fuzzer picks its generation) and Q01 a group of generation 1. */
#include "history.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int countText(const char *text, size_t len, void *ctx) {
    (void)text;
    (void)len;
    ++*(long *)ctx;
    return 0;
}

static long pendingCount(const json_t *row) {
    long n = 0;
    historyPendingWalk(row, countText, &n);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *t = malloc(size + 1);
    if (!t) return 0;
    memcpy(t, data, size);
    t[size] = '\0';
    historyParsed p;
    historyMinute mi;
    (void)historyReadingParse(t, size, &p);
    (void)historyMinuteParse(t, &mi);
    char *e1, *e2;
    double a = strtod(t, &e1), b = historyParseDouble(t, &e2);
    if (memcmp(&a, &b, sizeof(a)) != 0 || e1 != e2) abort(); /* the fast path is strtod */
    json_t *row = json_object();
    json_t *s = json_stringn_nocheck(t, strlen(t));
    const char *names[] = {"Min00", "Min01",    "Min59", "P00", "P01",
                           "P31",   "HistHour", "PendN", "Q01", "Q31"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        json_object_set(row, names[i], s);
    json_object_set_new(row, "PendN", json_integer(size % 40));
    /* a group of the bytes after a current Q00, so that the walk reaches them */
    char *g = malloc(size + 4);
    if (g) {
        snprintf(g, size + 4, "7|%s", t);
        json_object_set_new(row, "Q00", json_string_nocheck(*t >= '0' && *t <= '9' ? t : g));
        json_object_set_new(row, "Q01", json_string_nocheck(g));
        free(g);
    }
    if (size % 3 == 0) json_object_set_new(row, "Q01", json_string("1|1764669600000;0;9;0;1;;;"));
    if (size % 5 == 0) json_object_set_new(row, "QLater", json_string(size % 2 ? "7" : "1"));
    /* the readers' view of the slots, with the ":" groups' readings in them */
    int64_t minute[60];
    historyMinute view[60];
    historySlotsView(row, minute, view);
    reading r;
    memset(&r, 0, sizeof(r));
    r.has[0] = 1;
    r.value[0] = (double)size / 7;
    historyReading v[2] = {{"d", &r, "0", 1, 0, 1764669600000LL + (int64_t)size * 60000},
                           {"d", &r, "0", 2, 0, 1764669600000LL}};
    json_t *props = json_object();
    historyRows out = {0};
    long before = pendingCount(row);
    if (historyFold(row, "d", v, 2, props, &out) == 0) {
        long chunks = 0;
        for (size_t i = 0; i < out.n; i++)
            if (!out.v[i].frozen)
                chunks += (long)json_integer_value(json_object_get(out.v[i].props, "Count"));
        json_object_update(row, props);
        if (before + (long)out.added != pendingCount(row) + chunks + (long)out.dropped) abort();
        historySlotsView(row, minute, view);
    }
    historyRowsFree(&out);
    json_decref(props);
    json_decref(s);
    json_decref(row);
    free(t);
    return 0;
}
