/*
 * norm.cu - instance normalization (kernels/cpu/norm.c): per plane,
 *
 *   y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c]
 *
 * with the biased variance, both statistics and the normalization in
 * double like the reference. One block per (n, c) plane: a strided sum per
 * thread, then a tree in shared memory; two passes (mean, then the squared
 * deviations), as the reference does.
 */
#include "ops.cuh"

/* Sum of v over the block; every thread gets it. */
static __device__ double block_sum(double v, double *shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads(); /* shared is reused by the next call. */
    return total;
}

static __global__ void instance_norm_kernel(const float *weight,
                                            const float *bias, double eps,
                                            const float *x, float *y, int c,
                                            size_t plane)
{
    __shared__ double shared[NF_CUDA_THREADS];
    size_t p = blockIdx.x;
    int ch = (int)(p % (size_t)c);
    const float *a = x + p * plane;
    float *o = y + p * plane;
    double sum = 0, sq = 0;
    for (size_t i = threadIdx.x; i < plane; i += blockDim.x)
        sum += a[i];
    double mean = block_sum(sum, shared) / (double)plane;
    for (size_t i = threadIdx.x; i < plane; i += blockDim.x)
        sq += (a[i] - mean) * (a[i] - mean);
    double rstd = 1.0 / sqrt(block_sum(sq, shared) / (double)plane + eps);
    double w = weight ? weight[ch] : 1.0;
    double b = bias ? bias[ch] : 0.0;
    for (size_t i = threadIdx.x; i < plane; i += blockDim.x)
        o[i] = (float)((a[i] - mean) * rstd * w + b);
}

cudaError_t nf__cuda_instance_norm(const float *weight, const float *bias,
                                   float eps, const struct nf_cuda_tensor *x,
                                   const struct nf_cuda_tensor *y,
                                   cudaStream_t s)
{
    unsigned planes = (unsigned)((size_t)x->n * x->c);
    size_t plane = (size_t)x->h * x->w;
    instance_norm_kernel<<<planes, NF_CUDA_THREADS, 0, s>>>(
        weight, bias, (double)eps, x->data, y->data, x->c, plane);
    return cudaGetLastError();
}
