/* mono-clock.c - CLOCK_MONOTONIC in microseconds. */
#include "mono-clock.h"

#include <time.h>

uint64_t nf_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
