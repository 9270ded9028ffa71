/* Unit tests: fanout (every index exactly once, on the threads asked for) and clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "fanout.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TASKS 1000

typedef struct tally {
    int seen[MAX_TASKS];
    pthread_t who[MAX_TASKS];
} tally;

static void count(size_t i, void *ctx) {
    tally *t = ctx;
    __atomic_fetch_add(&t->seen[i], 1, __ATOMIC_RELAXED);
    t->who[i] = pthread_self();
    if (i % 97 == 0) usleep(1000); /* let the other threads take some */
}

static void run_and_check(size_t n, size_t threads, size_t expectThreads) {
    tally *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(fanoutRun(n, threads, count, t), expectThreads);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(t->seen[i], 1);
    for (size_t i = n; i < MAX_TASKS; i++)
        assert_int_equal(t->seen[i], 0);
    free(t);
}

static void test_every_index_once(void **state) {
    (void)state;
    run_and_check(MAX_TASKS, 8, 8);
    run_and_check(MAX_TASKS, 100, 100); /* more than the 64 the old fixed array held */
    run_and_check(3, 8, 3);             /* never more threads than tasks */
    run_and_check(5, 1, 1);
    run_and_check(5, 0, 1); /* 0 counts as 1 */
    run_and_check(0, 8, 0);
}

static void test_single_thread_is_caller(void **state) {
    (void)state;
    tally *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    fanoutRun(10, 1, count, t);
    for (size_t i = 0; i < 10; i++)
        assert_true(pthread_equal(t->who[i], pthread_self()));
    free(t);
}

static void test_clock(void **state) {
    (void)state;
    int64_t a = clockNowMs(), w = clockWallMs();
    usleep(20 * 1000);
    int64_t b = clockNowMs();
    assert_true(b >= a + 19);                /* monotonic: never backwards, and it moves */
    assert_true(w > (int64_t)1600000000000); /* the wall clock is epoch-based (after 2020) */
    struct timespec ts, now;
    clockDeadline(&ts, CLOCK_MONOTONIC, 1500);
    clock_gettime(CLOCK_MONOTONIC, &now);
    assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
    assert_true(ts.tv_sec >= now.tv_sec + 1);
    clockDeadline(&ts, CLOCK_REALTIME, -5); /* a past deadline is now */
    clock_gettime(CLOCK_REALTIME, &now);
    assert_true(ts.tv_sec <= now.tv_sec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once),
        cmocka_unit_test(test_single_thread_is_caller),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
