/*
 * pad.h - the source index of PyTorch's "reflect" padding, one definition
 * for every backend: compiled by gcc for the CPU backends and by nvcc for
 * the CUDA one (NF_HD, as in correct.h), so the CPU tests check the math
 * the GPU runs.
 */
#ifndef NF_PAD_H
#define NF_PAD_H

#ifdef __CUDACC__
#define NF_PAD_HD __host__ __device__
#else
#define NF_PAD_HD
#endif

/*
 * The index that position i (possibly outside 0..n-1) reflects to.
 * Reflection without repeating the edge has period 2n - 2, and a size of 1
 * has nothing to reflect; folding by the period extends PyTorch's rule
 * (which needs padding < n) to any padding.
 */
NF_PAD_HD static inline int nf_reflect_index(int i, int n)
{
    if (n == 1)
        return 0;
    int period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

#endif /* NF_PAD_H */
