/* percentile.c - sort, percentile by linear interpolation, mean. */
#include "percentile.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

void nf_percentile_sort(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_double);
}

double nf_percentile_of(const double *sorted, size_t n, double p)
{
    double rank, lo;
    size_t i;

    if (n == 0)
        return 0.0;
    if (!(p > 0.0))
        p = 0.0;
    if (p > 100.0)
        p = 100.0;
    rank = p / 100.0 * (double)(n - 1);
    lo = floor(rank);
    i = (size_t)lo;
    if (i + 1 >= n)
        return sorted[n - 1];
    return sorted[i] + (sorted[i + 1] - sorted[i]) * (rank - lo);
}

double nf_percentile_mean(const double *v, size_t n)
{
    double sum = 0.0;

    if (n == 0)
        return 0.0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    return sum / (double)n;
}
