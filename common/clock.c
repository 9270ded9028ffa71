/* clock: milliseconds on the monotonic and the wall clock, and timed-wait deadlines. */
#include "clock.h"

static int64_t msOn(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clockNowMs(void) { return msOn(CLOCK_MONOTONIC); }

int64_t clockNowUs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clockWallMs(void) { return msOn(CLOCK_REALTIME); }

void clockDeadline(struct timespec *ts, clockid_t clock, int64_t ms) {
    if (ms < 0) ms = 0;
    clock_gettime(clock, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
