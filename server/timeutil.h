/* timeutil.h - the server's monotonic clock in microseconds. */
#ifndef NF_TIMEUTIL_H
#define NF_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

/* Monotonic time in microseconds. Any thread. */
static inline uint64_t nf_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif /* NF_TIMEUTIL_H */
