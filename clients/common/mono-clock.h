/*
 * mono-clock.h - a monotonic microsecond clock for the C clients and tests.
 *
 * The clock's zero is arbitrary (CLOCK_MONOTONIC): use it for intervals and
 * for the capture_us field a client sends and gets echoed back, never as a
 * wall-clock time.
 */
#ifndef NF_MONO_CLOCK_H
#define NF_MONO_CLOCK_H

#include <stdint.h>

/* Returns CLOCK_MONOTONIC in microseconds. Any thread. */
uint64_t nf_mono_us(void);

#endif /* NF_MONO_CLOCK_H */
