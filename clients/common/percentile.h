/*
 * percentile.h - order statistics over a latency array.
 *
 * Sort once with nf_percentile_sort(), then read any number of percentiles
 * with nf_percentile_of(). Percentiles interpolate linearly between the two
 * closest ranks (numpy's default), so p50 of {1, 2} is 1.5.
 */
#ifndef NF_PERCENTILE_H
#define NF_PERCENTILE_H

#include <stddef.h>

/* Sorts v (n values) in place, ascending. Any thread. */
void nf_percentile_sort(double *v, size_t n);

/*
 * Returns the p-th percentile (p in 0..100, clamped) of sorted (n values,
 * ascending), or 0 when n is 0. Any thread.
 */
double nf_percentile_of(const double *sorted, size_t n, double p);

/* Returns the arithmetic mean of v (n values), or 0 when n is 0. */
double nf_percentile_mean(const double *v, size_t n);

#endif /* NF_PERCENTILE_H */
