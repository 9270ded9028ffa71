/* clock: the time in milliseconds on the two clocks the programs need (monotonic for intervals
 * and timeouts, the wall clock for timestamps), and absolute deadlines for timed waits. */
#ifndef ENVIROMON_CLOCK_H
#define ENVIROMON_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC (since an arbitrary start): for intervals and timeouts only. */
int64_t clockNowMs(void);
/* Microseconds on CLOCK_MONOTONIC: for the timing figures of a request's phases. */
int64_t clockNowUs(void);
/* Milliseconds since the Unix epoch on CLOCK_REALTIME: for timestamps that leave the process. */
int64_t clockWallMs(void);
/* Sets *ts to the time ms from now on clock (CLOCK_REALTIME for a default condition variable,
 * CLOCK_MONOTONIC for one made with pthread_condattr_setclock); ms < 0 counts as 0. */
void clockDeadline(struct timespec *ts, clockid_t clock, int64_t ms);

#endif
